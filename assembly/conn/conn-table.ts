// The connection table: fixed-capacity records in wasm memory, carved once at start-up,
// found by two hash indexes: the client side (what arrives at the director: caddr:cport ->
// vaddr:vport) and, for NAT, the reply side (what the real server sends back: daddr:dport
// -> caddr:cport). Persistence templates live in the same records, flagged F_TEMPLATE.
// Time is a u32 millisecond clock passed in by the host; comparisons are wrap-safe, as the
// kernel's jiffies are, so the clock may wrap every 49.7 days.
// A full table never evicts a live entry: insert fails and the caller drops the new flow,
// so established flows keep working under a flood of new ones.

import { copy16, eq16 } from "../net/bytes";

export const CONN_SIZE: u32 = 112;
export const NONE: u32 = 0xffffffff;

// Record fields.
export const C_NEXT_IN: u32 = 0; // u32 next in the client-side chain (index+1, 0 = end); free-list link
export const C_NEXT_OUT: u32 = 4; // u32 next in the reply-side chain
export const C_PROTO: u32 = 8; // u8
export const C_FAMILY: u32 = 9; // u8 4 | 6
export const C_STATE: u32 = 10; // u8 (tcp-states.ts)
export const C_METHOD: u32 = 11; // u8 forwarding method (dest's)
export const C_CPORT: u32 = 12; // u16
export const C_VPORT: u32 = 14; // u16
export const C_CADDR: u32 = 16; // 16 bytes
export const C_VADDR: u32 = 32; // 16 bytes
export const C_DADDR: u32 = 48; // 16 bytes
export const C_DPORT: u32 = 64; // u16
export const C_FLAGS: u32 = 66; // u16 F_*
export const C_EXPIRES: u32 = 68; // u32 ms
export const C_TIMEOUT: u32 = 72; // u32 ms, the current timeout (for listings and sync)
export const C_DEST: u32 = 76; // u32 destination index
export const C_SERVICE: u32 = 80; // u32 service index
export const C_TEMPLATE: u32 = 84; // u32 controlling template, NONE if none
export const C_NCONTROL: u32 = 88; // u32 templates: connections they control
export const C_INPKTS: u32 = 92; // u32 packets seen client -> server (sync threshold)
export const C_FWMARK: u32 = 96; // u32
export const C_HASH_IN: u32 = 100; // u32 cached client-side hash
export const C_HASH_OUT: u32 = 104; // u32 cached reply-side hash
export const C_SPARE: u32 = 108; // u32

export const F_IN_USE: u32 = 1;
export const F_TEMPLATE: u32 = 2;
/** Counted in InActConn (every connection starts so; ESTABLISHED clears it). */
export const F_INACTIVE: u32 = 4;
/** DR / TUN: replies bypass us, so the INPUT-ONLY state table applies. */
export const F_NOOUTPUT: u32 = 8;
/** Entered in the reply-side index (NAT). */
export const F_OUT_HASHED: u32 = 16;

export let connBase: usize = 0;
export let connCapacity: u32 = 0;
export let connUsed: u32 = 0;
let bucketsIn: usize = 0;
let bucketsOut: usize = 0;
let bucketMask: u32 = 0;
let freeHead: u32 = 0; // index + 1, 0 = none
let hashSeed: u32 = 0;

/** Carves the table for `capacity` entries. Once, at start-up. */
export function initConnTable(capacity: u32, seed: u32): bool {
  if (connBase != 0 || capacity == 0 || capacity > 1 << 24) return false;
  let buckets: u32 = 1;
  while (buckets < capacity) buckets <<= 1;
  connCapacity = capacity;
  bucketMask = buckets - 1;
  hashSeed = seed;
  connBase = heap.alloc(<usize>capacity * CONN_SIZE);
  bucketsIn = heap.alloc(<usize>buckets * 4);
  bucketsOut = heap.alloc(<usize>buckets * 4);
  memory.fill(bucketsIn, 0, <usize>buckets * 4);
  memory.fill(bucketsOut, 0, <usize>buckets * 4);
  // Chain every record into the free list, lowest index first.
  for (let i: u32 = 0; i < capacity; i++) {
    const c = connPtr(i);
    memory.fill(c, 0, CONN_SIZE);
    store<u32>(c + C_NEXT_IN, i + 2 <= capacity ? i + 2 : 0);
  }
  freeHead = 1;
  connUsed = 0;
  return true;
}

@inline export function connPtr(i: u32): usize {
  return connBase + <usize>i * CONN_SIZE;
}

/** Bytes of wasm memory the table takes per entry, indexes included. */
export function connBytesPerEntry(): u32 {
  return CONN_SIZE + <u32>((<u64>(bucketMask + 1) * 8 + connCapacity - 1) / connCapacity);
}

// ---- hashing (murmur3's finaliser over the tuple words, seeded per instance) ----

@inline function mix(h: u32, k: u32): u32 {
  k *= 0xcc9e2d51;
  k = rotl<u32>(k, 15);
  k *= 0x1b873593;
  h ^= k;
  h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}

@inline function finalMix(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  return h ^ (h >> 16);
}

@inline function mixAddr(h: u32, family: u32, a: usize): u32 {
  if (family == 4) return mix(h, load<u32>(a));
  h = mix(h, load<u32>(a));
  h = mix(h, load<u32>(a + 4));
  h = mix(h, load<u32>(a + 8));
  return mix(h, load<u32>(a + 12));
}

/** Hash of <proto, a:aport, b:bport> (addresses of `family` at a and b). */
export function tupleHash(proto: u32, family: u32, a: usize, aport: u32, b: usize, bport: u32, template: bool): u32 {
  let h = hashSeed ^ (proto | (family << 8) | (template ? 0x10000 : 0));
  h = mixAddr(h, family, a);
  h = mixAddr(h, family, b);
  h = mix(h, (aport << 16) | bport);
  return finalMix(h);
}

@inline function addrEq(family: u32, x: usize, y: usize): bool {
  return family == 4 ? load<u32>(x) == load<u32>(y) : eq16(x, y);
}

// ---- lookups ----

/**
 * The entry whose client side is <proto, caddr:cport -> vaddr:vport>, templates or
 * connections as `template` says; NONE if absent. Expiry is the caller's business.
 */
export function lookupIn(
  proto: u32, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32, template: bool,
): u32 {
  const h = tupleHash(proto, family, caddr, cport, vaddr, vport, template);
  const want = template ? F_TEMPLATE : 0;
  let link = load<u32>(bucketsIn + (<usize>(h & bucketMask) << 2));
  while (link != 0) {
    const c = connPtr(link - 1);
    if (
      load<u32>(c + C_HASH_IN) == h &&
      (<u32>load<u16>(c + C_FLAGS) & F_TEMPLATE) == want &&
      <u32>load<u8>(c + C_PROTO) == proto && <u32>load<u8>(c + C_FAMILY) == family &&
      <u32>load<u16>(c + C_CPORT) == cport && <u32>load<u16>(c + C_VPORT) == vport &&
      addrEq(family, c + C_CADDR, caddr) && addrEq(family, c + C_VADDR, vaddr)
    ) return link - 1;
    link = load<u32>(c + C_NEXT_IN);
  }
  return NONE;
}

/** The NAT connection a reply <proto, daddr:dport -> caddr:cport> belongs to; NONE if absent. */
export function lookupOut(proto: u32, family: u32, daddr: usize, dport: u32, caddr: usize, cport: u32): u32 {
  const h = tupleHash(proto, family, daddr, dport, caddr, cport, false);
  let link = load<u32>(bucketsOut + (<usize>(h & bucketMask) << 2));
  while (link != 0) {
    const c = connPtr(link - 1);
    if (
      load<u32>(c + C_HASH_OUT) == h &&
      <u32>load<u8>(c + C_PROTO) == proto && <u32>load<u8>(c + C_FAMILY) == family &&
      <u32>load<u16>(c + C_DPORT) == dport && <u32>load<u16>(c + C_CPORT) == cport &&
      addrEq(family, c + C_DADDR, daddr) && addrEq(family, c + C_CADDR, caddr)
    ) return link - 1;
    link = load<u32>(c + C_NEXT_OUT);
  }
  return NONE;
}

// ---- insert and remove ----

/**
 * Takes a free record and fills its key; NONE when the table is full (never evicts).
 * Addresses are copied (4 or 16 bytes). The entry is hashed on the client side now, and
 * on the reply side when `indexReplies` (NAT).
 */
export function insertConn(
  proto: u32, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32,
  daddr: usize, dport: u32, flags: u32, indexReplies: bool,
): u32 {
  if (freeHead == 0) return NONE;
  const i = freeHead - 1;
  const c = connPtr(i);
  freeHead = load<u32>(c + C_NEXT_IN);
  memory.fill(c, 0, CONN_SIZE);
  store<u8>(c + C_PROTO, <u8>proto);
  store<u8>(c + C_FAMILY, <u8>family);
  store<u16>(c + C_CPORT, <u16>cport);
  store<u16>(c + C_VPORT, <u16>vport);
  store<u16>(c + C_DPORT, <u16>dport);
  if (family == 4) {
    store<u32>(c + C_CADDR, load<u32>(caddr));
    store<u32>(c + C_VADDR, load<u32>(vaddr));
    store<u32>(c + C_DADDR, load<u32>(daddr));
  } else {
    copy16(c + C_CADDR, caddr);
    copy16(c + C_VADDR, vaddr);
    copy16(c + C_DADDR, daddr);
  }
  store<u32>(c + C_TEMPLATE, NONE);
  const template = (flags & F_TEMPLATE) != 0;
  const hIn = tupleHash(proto, family, c + C_CADDR, cport, c + C_VADDR, vport, template);
  store<u32>(c + C_HASH_IN, hIn);
  const bIn = bucketsIn + (<usize>(hIn & bucketMask) << 2);
  store<u32>(c + C_NEXT_IN, load<u32>(bIn));
  store<u32>(bIn, i + 1);
  if (indexReplies && !template) {
    flags |= F_OUT_HASHED;
    const hOut = tupleHash(proto, family, c + C_DADDR, dport, c + C_CADDR, cport, false);
    store<u32>(c + C_HASH_OUT, hOut);
    const bOut = bucketsOut + (<usize>(hOut & bucketMask) << 2);
    store<u32>(c + C_NEXT_OUT, load<u32>(bOut));
    store<u32>(bOut, i + 1);
  }
  store<u16>(c + C_FLAGS, <u16>(flags | F_IN_USE));
  connUsed++;
  return i;
}

/** Unlinks entry i from the chain whose head is at bucket, following the link field at `field`. */
function unlink(bucket: usize, i: u32, field: u32): void {
  let prev: usize = bucket;
  let link = load<u32>(bucket);
  while (link != 0) {
    if (link - 1 == i) {
      store<u32>(prev, load<u32>(connPtr(i) + field));
      return;
    }
    prev = connPtr(link - 1) + field;
    link = load<u32>(prev);
  }
}

/** Returns entry i to the free list. Accounting (dest counters, templates) is the caller's. */
export function removeConn(i: u32): void {
  if (i >= connCapacity) return;
  const c = connPtr(i);
  const flags = <u32>load<u16>(c + C_FLAGS);
  if ((flags & F_IN_USE) == 0) return;
  unlink(bucketsIn + (<usize>(load<u32>(c + C_HASH_IN) & bucketMask) << 2), i, C_NEXT_IN);
  if (flags & F_OUT_HASHED) {
    unlink(bucketsOut + (<usize>(load<u32>(c + C_HASH_OUT) & bucketMask) << 2), i, C_NEXT_OUT);
  }
  store<u16>(c + C_FLAGS, 0);
  store<u32>(c + C_NEXT_IN, freeHead);
  freeHead = i + 1;
  connUsed--;
}

// ---- time ----

/** Restarts entry i's timer: it expires `timeoutMs` after now. */
@inline export function touchConn(i: u32, now: u32, timeoutMs: u32): void {
  const c = connPtr(i);
  store<u32>(c + C_TIMEOUT, timeoutMs);
  store<u32>(c + C_EXPIRES, now + timeoutMs);
}

/** Wrap-safe "now is at or past the entry's expiry". */
@inline export function connExpired(i: u32, now: u32): bool {
  return <i32>(now - load<u32>(connPtr(i) + C_EXPIRES)) >= 0;
}

/** Milliseconds left before entry i expires (0 when due). */
@inline export function connRemaining(i: u32, now: u32): u32 {
  const left = <i32>(load<u32>(connPtr(i) + C_EXPIRES) - now);
  return left > 0 ? <u32>left : 0;
}

@inline export function connInUse(i: u32): bool {
  return (<u32>load<u16>(connPtr(i) + C_FLAGS) & F_IN_USE) != 0;
}

/**
 * Makes template i unfindable without moving it, as the kernel's ip_vs_check_template
 * does (vport and dport 0xffff, cport 0, rehashed): connections it controls keep their
 * link to it, and it lives out its timer.
 */
export function invalidateTemplate(i: u32): void {
  const c = connPtr(i);
  const flags = <u32>load<u16>(c + C_FLAGS);
  if ((flags & (F_IN_USE | F_TEMPLATE)) != (F_IN_USE | F_TEMPLATE)) return;
  if (<u32>load<u16>(c + C_VPORT) == 0xffff) return;
  unlink(bucketsIn + (<usize>(load<u32>(c + C_HASH_IN) & bucketMask) << 2), i, C_NEXT_IN);
  store<u16>(c + C_VPORT, 0xffff);
  store<u16>(c + C_DPORT, 0xffff);
  store<u16>(c + C_CPORT, 0);
  const family = <u32>load<u8>(c + C_FAMILY);
  const h = tupleHash(<u32>load<u8>(c + C_PROTO), family, c + C_CADDR, 0, c + C_VADDR, 0xffff, true);
  store<u32>(c + C_HASH_IN, h);
  const b = bucketsIn + (<usize>(h & bucketMask) << 2);
  store<u32>(c + C_NEXT_IN, load<u32>(b));
  store<u32>(b, i + 1);
}
