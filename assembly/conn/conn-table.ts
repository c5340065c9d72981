// The connection table: fixed-capacity records in wasm memory, carved once at start-up,
// found by two hash indexes: the client side (what arrives at the director: caddr:cport ->
// vaddr:vport) and, for NAT, the reply side (what the real server sends back: daddr:dport
// -> caddr:cport). Persistence templates live in the same records, flagged F_TEMPLATE.
// Time is a u32 millisecond clock passed in by the host; comparisons are wrap-safe, as the
// kernel's jiffies are, so the clock may wrap every 49.7 days.
// A full table never evicts a live entry: insert fails and the caller drops the new flow,
// so established flows keep working under a flood of new ones.
//
// Layout, for the cache. A record is 96 bytes split in two: a 64-byte "hot" part, one
// aligned cache line, that holds everything a client-side packet of an established flow
// reads or writes (its key, state, timer, destination, service, counters), and a 32-byte
// "cold" part (the real server's address, template links, fwmark, the reply-side hash).
// Records come in pairs of 192 bytes: [hot 2k][hot 2k+1][cold 2k][cold 2k+1].
//
// The two indexes are open-addressed tables with linear probing, interleaved: position p
// is 8 bytes, the client-side slot at +0 and the reply-side slot at +4, so both lookups
// of one packet (lookupIn then lookupOut hash the same tuple to the same position) read
// the same cache line. Positions = the power of two >= 2 x capacity, so each side stays
// at most half full. A slot is a u32: (tag << 24) | record index, the tag being the
// hash's top byte (1 when that is 0); 0 is an empty slot. A miss therefore usually costs
// one cache line and reads no record (a record is read only on a tag match, 1 in 255), a
// hit costs the index line and the record's hot line. Removal shifts later entries of the
// run back (no tombstones, so probe runs never degrade under churn); the home position of
// a shifted entry is recomputed from its record (client side) or read from the cached
// reply-side hash.
//
// Deferred reply-side entries. A new NAT flow's reply-side slot lands on a random index
// line that nothing could have touched earlier (its hash depends on the scheduled real
// server), so entering it at once costs a full memory latency per new flow. The batch
// datapath instead queues it (insertConnHashed with deferReply) and enters a whole queue
// at a time (flushDeferred): one loop touches every queued line, the next enters them, so the misses
// overlap. Until then the record is F_OUT_PENDING. Nothing can miss a queued entry: a
// reply-side lookup whose hash equals a queued one flushes the queue first, a removal of a
// queued record flushes first, and the datapath flushes before it returns, so outside a
// process() call the queue is always empty.

import { carve } from "../heap/carve";
import { copy16, eq16 } from "../net/bytes";
import { murmurMix as mix, murmurFinal as finalMix } from "../net/murmur";
import { ACTION_FNAT } from "../forward/action";
import { laddrPtr, laddrHold, laddrRelease } from "./local-addresses";

/** Bytes of one record (hot + cold parts). */
export const CONN_SIZE: u32 = 96;
const HOT_SIZE: u32 = 64;
const COLD_SIZE: u32 = 32;
const PAIR_SIZE: u32 = 192;
export const NONE: u32 = 0xffffffff;

// Hot fields: offsets from connPtr(i).
export const C_PROTO: u32 = 0; // u8
export const C_FAMILY: u32 = 1; // u8 4 | 6
export const C_STATE: u32 = 2; // u8 (tcp-states.ts)
export const C_METHOD: u32 = 3; // u8 forwarding method (dest's)
export const C_CPORT: u32 = 4; // u16
export const C_VPORT: u32 = 6; // u16
export const C_CADDR: u32 = 8; // 16 bytes
export const C_VADDR: u32 = 24; // 16 bytes
export const C_DPORT: u32 = 40; // u16
export const C_FLAGS: u32 = 42; // u16 F_*
export const C_EXPIRES: u32 = 44; // u32 ms
export const C_TIMEOUT: u32 = 48; // u32 ms, the current timeout (for listings and sync)
export const C_DEST: u32 = 52; // u32 destination index; free-list link (index+1) when free
export const C_SERVICE: u32 = 56; // u32 service index
export const C_INPKTS: u32 = 60; // u32 packets seen client -> server (sync threshold)
// Cold fields: offsets from connCold(i).
export const CC_DADDR: u32 = 0; // 16 bytes
export const CC_TEMPLATE: u32 = 16; // u32 controlling template, NONE if none
export const CC_NCONTROL: u32 = 20; // u32 templates: connections they control
/** The same word in a full-NAT connection (never a template): local address index << 16 | local port. */
export const CC_LOCAL: u32 = 20;
export const CC_FWMARK: u32 = 24; // u32
export const CC_HASH_OUT: u32 = 28; // u32 reply-side hash (NAT connections)

export const F_IN_USE: u32 = 1;
export const F_TEMPLATE: u32 = 2;
/** Counted in InActConn (every connection starts so; ESTABLISHED clears it). */
export const F_INACTIVE: u32 = 4;
/** DR / TUN: replies bypass us, so the INPUT-ONLY state table applies. */
export const F_NOOUTPUT: u32 = 8;
/** Entered in the reply-side index (NAT). */
export const F_OUT_HASHED: u32 = 16;
/** Queued for the reply-side index (see flushDeferred); becomes F_OUT_HASHED. */
export const F_OUT_PENDING: u32 = 32;
/** A full-NAT TCP connection that carries the PROXY protocol v2 header (conn/proxy-state.ts). */
export const F_PROXY: u32 = 64;

const SIDE_IN: usize = 0;
const SIDE_OUT: usize = 4;
const INDEX_MASK: u32 = 0xffffff;

export let connBase: usize = 0;
export let connCapacity: u32 = 0;
export let connUsed: u32 = 0;
let index: usize = 0;
let posMask: u32 = 0;
let freeHead: u32 = 0; // index + 1, 0 = none
let hashSeed: u32 = 0;
/**
 * Deferred reply-side entries, as (record index, reply-side hash) pairs: the hashes sit in
 * the queue, not only in the records, so the check every reply-side lookup makes reads one
 * small array instead of a cold line per queued record.
 */
const DEFER_MAX: u32 = 64;
const deferred: usize = memory.data(DEFER_MAX * 8, 16);
let deferredCount: u32 = 0;

/** Carves the table for `capacity` entries. Once, at start-up. */
export function initConnTable(capacity: u32, seed: u32): bool {
  if (connBase != 0 || capacity == 0 || capacity > 1 << 24) return false;
  let positions: u32 = 16;
  while (positions < capacity * 2) positions <<= 1;
  connCapacity = capacity;
  posMask = positions - 1;
  hashSeed = seed;
  const recordBytes = <usize>((capacity + 1) >> 1) * PAIR_SIZE;
  connBase = (carve(recordBytes + 64) + 63) & ~<usize>63;
  index = (carve(<usize>positions * 8 + 64) + 63) & ~<usize>63;
  memory.fill(connBase, 0, recordBytes);
  memory.fill(index, 0, <usize>positions * 8);
  // Chain every record into the free list, lowest index first.
  for (let i: u32 = 0; i < capacity; i++) {
    store<u32>(connPtr(i) + C_DEST, i + 2 <= capacity ? i + 2 : 0);
  }
  freeHead = 1;
  connUsed = 0;
  return true;
}

/** The record's hot part (64 bytes, one cache line). */
@inline export function connPtr(i: u32): usize {
  return connBase + <usize>(i >> 1) * PAIR_SIZE + (<usize>(i & 1) << 6);
}

/** The record's cold part (32 bytes). */
@inline export function connCold(i: u32): usize {
  return connBase + <usize>(i >> 1) * PAIR_SIZE + 128 + (<usize>(i & 1) << 5);
}

/** Bytes of wasm memory the table takes per entry, indexes included. */
export function connBytesPerEntry(): u32 {
  return CONN_SIZE + <u32>((<u64>(posMask + 1) * 8 + connCapacity - 1) / connCapacity);
}

// ---- hashing (murmur3's finaliser over the tuple words, seeded per instance) ----

@inline function mixAddr(h: u32, family: u32, a: usize): u32 {
  if (family == 4) return mix(h, load<u32>(a));
  h = mix(h, load<u32>(a));
  h = mix(h, load<u32>(a + 4));
  h = mix(h, load<u32>(a + 8));
  return mix(h, load<u32>(a + 12));
}

/**
 * Hash of <proto, a:aport, b:bport> (addresses of `family` at a and b). A packet's
 * client-side and reply-side lookups hash the same words, so one hash serves both.
 */
export function tupleHash(proto: u32, family: u32, a: usize, aport: u32, b: usize, bport: u32, template: bool): u32 {
  let h = hashSeed ^ (proto | (family << 8) | (template ? 0x10000 : 0));
  h = mixAddr(h, family, a);
  h = mixAddr(h, family, b);
  h = mix(h, (aport << 16) | bport);
  return finalMix(h);
}

@inline function tagOf(h: u32): u32 {
  const t = h >>> 24;
  return t != 0 ? t : 1;
}

@inline function slotAt(p: u32, side: usize): usize {
  return index + (<usize>p << 3) + side;
}

/** The index line a hash lands on (for callers that want to touch it early). */
@inline export function indexLine(h: u32): usize {
  return index + (<usize>(h & posMask) << 3);
}

/**
 * Touches the client-side index line of hash h and the hot line of the first record on
 * h's probe run whose tag matches: a load whose value is not needed, so that a batch's
 * cache misses overlap (wasm has no prefetch instruction). The run is scanned, not just
 * the home position: at half load about a third of the entries sit past their home
 * position, and a record not touched here costs a full memory latency in the lookup
 * (uniform random traffic over 1M flows: 147 ns per packet with the home slot alone, 101
 * with the scan). Returns a value to keep the loads alive.
 */
export function touchIn(h: u32): u32 {
  const tag = tagOf(h);
  let p = h & posMask;
  for (let n: u32 = 0; n <= posMask; n++) {
    const v = load<u32>(slotAt(p, SIDE_IN));
    if (v == 0) return 0;
    if ((v >>> 24) == tag) return load<u32>(connPtr(v & INDEX_MASK));
    p = (p + 1) & posMask;
  }
  return 0;
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
  return lookupInHashed(h, proto, family, caddr, cport, vaddr, vport, template);
}

/** lookupIn with the hash already computed (tupleHash of the same arguments). */
@inline export function lookupInHashed(
  h: u32, proto: u32, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32, template: bool,
): u32 {
  const want = template ? F_TEMPLATE : 0;
  const tag = tagOf(h);
  let p = h & posMask;
  while (true) {
    const v = load<u32>(slotAt(p, SIDE_IN));
    if (v == 0) return NONE;
    if ((v >>> 24) == tag) {
      const i = v & INDEX_MASK;
      const c = connPtr(i);
      if (
        <u32>load<u16>(c + C_CPORT) == cport && <u32>load<u16>(c + C_VPORT) == vport &&
        <u32>load<u8>(c + C_PROTO) == proto && <u32>load<u8>(c + C_FAMILY) == family &&
        (<u32>load<u16>(c + C_FLAGS) & F_TEMPLATE) == want &&
        addrEq(family, c + C_CADDR, caddr) && addrEq(family, c + C_VADDR, vaddr)
      ) return i;
    }
    p = (p + 1) & posMask;
  }
  return NONE;
}

/** The NAT connection a reply <proto, daddr:dport -> caddr:cport> belongs to; NONE if absent. */
export function lookupOut(proto: u32, family: u32, daddr: usize, dport: u32, caddr: usize, cport: u32): u32 {
  const h = tupleHash(proto, family, daddr, dport, caddr, cport, false);
  return lookupOutHashed(h, proto, family, daddr, dport, caddr, cport);
}

/** lookupOut with the hash already computed (tupleHash of the same arguments). */
@inline export function lookupOutHashed(
  h: u32, proto: u32, family: u32, daddr: usize, dport: u32, caddr: usize, cport: u32,
): u32 {
  if (deferredCount != 0 && deferredHas(h)) flushDeferred();
  const tag = tagOf(h);
  let p = h & posMask;
  while (true) {
    const v = load<u32>(slotAt(p, SIDE_OUT));
    if (v == 0) return NONE;
    if ((v >>> 24) == tag) {
      const i = v & INDEX_MASK;
      const c = connPtr(i);
      if (
        <u32>load<u16>(c + C_DPORT) == dport && <u32>load<u8>(c + C_PROTO) == proto &&
        <u32>load<u8>(c + C_FAMILY) == family && replyEndIs(i, c, family, caddr, cport) &&
        addrEq(family, connCold(i) + CC_DADDR, daddr)
      ) return i;
    }
    p = (p + 1) & posMask;
  }
  return NONE;
}

/**
 * Whether the end a reply of record i goes to is caddr:cport: the client for NAT, the
 * local address and port for full NAT (whose reply-side key is RIP:rport -> LIP:lport).
 */
@inline function replyEndIs(i: u32, c: usize, family: u32, caddr: usize, cport: u32): bool {
  if (<u32>load<u8>(c + C_METHOD) != ACTION_FNAT) {
    return <u32>load<u16>(c + C_CPORT) == cport && addrEq(family, c + C_CADDR, caddr);
  }
  const local = load<u32>(connCold(i) + CC_LOCAL);
  return (local & 0xffff) == cport && addrEq(family, laddrPtr(local >>> 16), caddr);
}

// ---- insert and remove ----

/** Enters record i under hash h on one side (the table is at most half full: a slot is free). */
function indexAdd(h: u32, i: u32, side: usize): void {
  let p = h & posMask;
  while (load<u32>(slotAt(p, side)) != 0) p = (p + 1) & posMask;
  store<u32>(slotAt(p, side), (tagOf(h) << 24) | i);
}

/** Client-side hash of record i, from its key. */
function hashInOf(i: u32): u32 {
  const c = connPtr(i);
  return tupleHash(
    <u32>load<u8>(c + C_PROTO), <u32>load<u8>(c + C_FAMILY), c + C_CADDR, <u32>load<u16>(c + C_CPORT),
    c + C_VADDR, <u32>load<u16>(c + C_VPORT), (<u32>load<u16>(c + C_FLAGS) & F_TEMPLATE) != 0,
  );
}

/**
 * Takes record i (hashed h) out of one side, then closes the gap: each later entry of the
 * run whose home position is not between the gap and itself moves back into the gap.
 */
function indexRemove(h: u32, i: u32, side: usize): void {
  let j = h & posMask;
  let n: u32 = 0;
  while (true) {
    const v = load<u32>(slotAt(j, side));
    if (v == 0 || n > posMask) return; // not entered: nothing to do
    if ((v & INDEX_MASK) == i) break;
    j = (j + 1) & posMask;
    n++;
  }
  let k = (j + 1) & posMask;
  while (true) {
    const v = load<u32>(slotAt(k, side));
    if (v == 0) break;
    const e = v & INDEX_MASK;
    const home = (side == SIDE_IN ? hashInOf(e) : load<u32>(connCold(e) + CC_HASH_OUT)) & posMask;
    if (((k - home) & posMask) >= ((k - j) & posMask)) {
      store<u32>(slotAt(j, side), v);
      j = k;
    }
    k = (k + 1) & posMask;
  }
  store<u32>(slotAt(j, side), 0);
}

/**
 * Takes a free record and fills its key; NONE when the table is full (never evicts).
 * Addresses are copied (4 or 16 bytes). The entry is hashed on the client side now, and
 * on the reply side when `indexReplies` (NAT).
 */
export function insertConn(
  proto: u32, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32,
  daddr: usize, dport: u32, flags: u32, indexReplies: bool,
): u32 {
  const h = tupleHash(proto, family, caddr, cport, vaddr, vport, (flags & F_TEMPLATE) != 0);
  return insertConnHashed(h, proto, family, caddr, cport, vaddr, vport, daddr, dport, flags, indexReplies);
}

/**
 * insertConn with the client-side hash already computed: h must be tupleHash(proto,
 * family, caddr, cport, vaddr, vport, flags has F_TEMPLATE) (the datapath has it from the
 * lookup that missed).
 */
export function insertConnHashed(
  h: u32, proto: u32, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32,
  daddr: usize, dport: u32, flags: u32, indexReplies: bool, deferReply: bool = false,
): u32 {
  if (freeHead == 0) return NONE;
  const i = freeHead - 1;
  const c = connPtr(i);
  const k = connCold(i);
  freeHead = load<u32>(c + C_DEST);
  memory.fill(c, 0, HOT_SIZE);
  memory.fill(k, 0, COLD_SIZE);
  store<u8>(c + C_PROTO, <u8>proto);
  store<u8>(c + C_FAMILY, <u8>family);
  store<u16>(c + C_CPORT, <u16>cport);
  store<u16>(c + C_VPORT, <u16>vport);
  store<u16>(c + C_DPORT, <u16>dport);
  if (family == 4) {
    store<u32>(c + C_CADDR, load<u32>(caddr));
    store<u32>(c + C_VADDR, load<u32>(vaddr));
    store<u32>(k + CC_DADDR, load<u32>(daddr));
  } else {
    copy16(c + C_CADDR, caddr);
    copy16(c + C_VADDR, vaddr);
    copy16(k + CC_DADDR, daddr);
  }
  store<u32>(k + CC_TEMPLATE, NONE);
  const template = (flags & F_TEMPLATE) != 0;
  indexAdd(h, i, SIDE_IN);
  if (indexReplies && !template) {
    flags |= enterReply(i, tupleHash(proto, family, k + CC_DADDR, dport, c + C_CADDR, cport, false), deferReply);
  }
  store<u16>(c + C_FLAGS, <u16>(flags | F_IN_USE));
  connUsed++;
  return i;
}

/** Enters record i on the reply side under hOut, now or queued; returns the flag to set. */
function enterReply(i: u32, hOut: u32, deferReply: bool): u32 {
  store<u32>(connCold(i) + CC_HASH_OUT, hOut);
  if (deferReply) {
    if (deferredCount == DEFER_MAX) flushDeferred();
    const q = deferred + (<usize>deferredCount << 3);
    store<u32>(q, i);
    store<u32>(q, hOut, 4);
    deferredCount++;
    return F_OUT_PENDING;
  }
  indexAdd(hOut, i, SIDE_OUT);
  return F_OUT_HASHED;
}

/**
 * Makes record i (just inserted without its reply side) a full-NAT connection: method,
 * local address `laddr` and port `lport`, and its reply-side entry under RIP:rport ->
 * LIP:lport. The local address is held until the record is removed.
 */
export function bindFullNat(i: u32, laddr: u32, lport: u32, deferReply: bool): void {
  const c = connPtr(i);
  const k = connCold(i);
  store<u8>(c + C_METHOD, <u8>ACTION_FNAT);
  store<u32>(k + CC_LOCAL, (laddr << 16) | lport);
  laddrHold(laddr);
  const family = <u32>load<u8>(c + C_FAMILY);
  const hOut = tupleHash(
    <u32>load<u8>(c + C_PROTO), family, k + CC_DADDR, <u32>load<u16>(c + C_DPORT), laddrPtr(laddr), lport, false,
  );
  const flag = enterReply(i, hOut, deferReply);
  store<u16>(c + C_FLAGS, <u16>(<u32>load<u16>(c + C_FLAGS) | flag));
}

/** Whether a queued reply-side entry has hash h. */
function deferredHas(h: u32): bool {
  for (let n: u32 = 0; n < deferredCount; n++) {
    if (load<u32>(deferred + (<usize>n << 3), 4) == h) return true;
  }
  return false;
}

/**
 * Enters every queued reply-side entry: first a loop that only loads each one's index
 * line (independent loads, so their misses overlap), then the inserts, which hit.
 */
export function flushDeferred(): void {
  const n = deferredCount;
  if (n == 0) return;
  let acc: u32 = 0;
  for (let j: u32 = 0; j < n; j++) acc += load<u32>(indexLine(load<u32>(deferred + (<usize>j << 3), 4)));
  deferredTouched += acc;
  deferredCount = 0;
  for (let j: u32 = 0; j < n; j++) {
    const q = deferred + (<usize>j << 3);
    const i = load<u32>(q);
    const c = connPtr(i);
    indexAdd(load<u32>(q, 4), i, SIDE_OUT);
    store<u16>(c + C_FLAGS, <u16>((<u32>load<u16>(c + C_FLAGS) & ~F_OUT_PENDING) | F_OUT_HASHED));
  }
}
/** Sink for flushDeferred's touch loads, so that the optimiser keeps them. */
let deferredTouched: u32 = 0;

/** Returns entry i to the free list. Accounting (dest counters, templates) is the caller's. */
export function removeConn(i: u32): void {
  if (i >= connCapacity) return;
  const c = connPtr(i);
  let flags = <u32>load<u16>(c + C_FLAGS);
  if ((flags & F_IN_USE) == 0) return;
  if ((flags & F_OUT_PENDING) != 0) {
    flushDeferred(); // its reply-side slot is entered, so the removal below finds it
    flags = <u32>load<u16>(c + C_FLAGS);
  }
  indexRemove(hashInOf(i), i, SIDE_IN);
  if (flags & F_OUT_HASHED) indexRemove(load<u32>(connCold(i) + CC_HASH_OUT), i, SIDE_OUT);
  if (<u32>load<u8>(c + C_METHOD) == ACTION_FNAT && (flags & F_TEMPLATE) == 0) {
    laddrRelease(load<u32>(connCold(i) + CC_LOCAL) >>> 16);
  }
  store<u8>(c + C_METHOD, 0);
  store<u16>(c + C_FLAGS, 0);
  store<u32>(c + C_DEST, freeHead);
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
  indexRemove(hashInOf(i), i, SIDE_IN);
  store<u16>(c + C_VPORT, 0xffff);
  store<u16>(c + C_DPORT, 0xffff);
  store<u16>(c + C_CPORT, 0);
  indexAdd(hashInOf(i), i, SIDE_IN);
}
