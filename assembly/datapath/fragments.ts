// IP fragments. The kernel reassembles before IPVS sees a packet (nf_defrag_ipv4 /
// nf_defrag_ipv6), so a fragmented datagram is balanced as one. We do not reassemble: we
// track each datagram (family, source, destination, IP id, protocol) in a bounded table
// that remembers the decision taken on its first fragment (the one with the L4 header),
// and every later fragment follows it. Later fragments that arrive before the first are
// copied into a held-fragment pool carved at start-up, and released when the first has
// been decided, or dropped when the datagram's time runs out (ipfrag_time).
//
// The kernel's checks on a fragment queue (net/ipv4/ip_fragment.c ip_frag_queue and
// net/ipv4/inet_fragment.c inet_frag_queue_insert, Linux 6.x) are kept, on a bitmap of
// 8-byte units per datagram: a last fragment that ends before data already seen, or a
// second last fragment with another end, or data past a known end, or an empty fragment,
// kills the datagram (`fragment-invalid`); a partial overlap kills it (`fragment-overlap`,
// RFC 5722); a fragment wholly inside what was seen is a duplicate and only it is dropped;
// a datagram longer than 65,535 bytes is killed (`fragment-too-big`). Where we must differ:
// we forward fragments as they come, so what went out before a datagram was killed is
// gone; the rest of it never follows, and the real server's reassembly times out. A
// non-last fragment whose length is not a multiple of 8 (the kernel trims it) is invalid.
// A datagram's time runs from its first fragment seen and is never extended (as
// inet_frag_find's timer). Nothing here allocates after initFragments.

import { rd8, rd16, rd32, copy16, eq16 } from "../net/bytes";
import { murmurMix, murmurFinal } from "../net/murmur";
import { pL3, pFamily, pProto, pIpLen, pFragHdr, pSrcAddr, pDstAddr } from "../net/parse";
import {
  REASON_NONE, REASON_FRAGMENT_INVALID, REASON_FRAGMENT_OVERLAP, REASON_FRAGMENT_DUPLICATE,
  REASON_FRAGMENT_TOO_BIG, REASON_FRAGMENT_NO_ROOM,
} from "../verdict";

export const FRAG_NO_ENTRY: u32 = 0xffffffff;

// Decisions taken on a first fragment, which the later ones follow.
export const DEC_NONE: u32 = 0; // first fragment not seen yet
export const DEC_PASS: u32 = 1; // not ours: to the host
export const DEC_CLIENT: u32 = 2; // client side: transmit to E_DEST with E_PORT
export const DEC_REPLY: u32 = 3; // NAT reply: source back to E_VADDR:E_PORT
export const DEC_DROP: u32 = 4; // the first was dropped or answered: drop with E_REASON

const ST_FREE: u32 = 0;
const ST_OPEN: u32 = 1;
/** Killed (overlap, invalid, too big, no room): its fragments drop until it expires. */
const ST_FAILED: u32 = 2;
/** Every byte seen; kept until its held fragments have gone out. */
const ST_COMPLETE: u32 = 3;

// Datagram entry (128 bytes).
const E_SIZE: u32 = 128;
const E_FAMILY: u32 = 0; // u8
const E_PROTO: u32 = 1; // u8: IPv4 protocol, or the IPv6 fragment header's next header
const E_STATE: u32 = 2; // u8 ST_*
export const E_DECISION: u32 = 3; // u8 DEC_*
const E_ID: u32 = 4;
const E_SRC: u32 = 8; // 16 bytes
const E_DST: u32 = 24; // 16 bytes
const E_EXPIRES: u32 = 40;
const E_CHAIN: u32 = 44; // next entry in the hash bucket
const E_NEWER: u32 = 48; // age list (oldest first): times never extend, so it is expiry order
const E_OLDER: u32 = 52;
const E_HELD: u32 = 56; // held fragments waiting for the first (a list of held records)
const E_RELEASING: u32 = 60; // held fragments in the release queue
const E_TOTAL: u32 = 64; // fragmentable bytes, known once the last fragment was seen
const E_RECEIVED: u32 = 68; // fragmentable bytes seen
const E_MAXEND: u32 = 72; // highest end seen
const E_LAST_IN: u32 = 76; // u32 bool: the last fragment was seen
export const E_DEST: u32 = 80;
export const E_PORT: u32 = 84;
export const E_SVC: u32 = 88;
export const E_REASON: u32 = 92;
export const E_VADDR: u32 = 96; // 16 bytes
const E_BUCKET: u32 = 112;
/** The full-NAT connection a decision belongs to (its local address and client), else NONE. */
export const E_CONN: u32 = 116;

/** One bit per 8-byte unit of a 65,535-byte datagram. */
const BITMAP_BYTES: u32 = 1024;

// Held fragment record (32 bytes); its bytes live in a chain of blocks.
const H_SIZE: u32 = 32;
const H_ENTRY: u32 = 0;
const H_NEXT: u32 = 4;
export const H_LENGTH: u32 = 8;
export const H_LINK: u32 = 12;
export const H_MARK: u32 = 16;
const H_BLOCK: u32 = 20;
/** Held bytes are stored in blocks of this size; memory is counted in whole blocks. */
export const FRAG_BLOCK: u32 = 256;

// Counters (u64 each), read by the host from regionFragCounters.
export const FC_FRAGMENTS: u32 = 0; // fragments seen
export const FC_DATAGRAMS: u32 = 1; // datagrams tracked
export const FC_COMPLETED: u32 = 2; // datagrams whose every byte was seen
export const FC_HELD: u32 = 3; // fragments held until their first
export const FC_RELEASED: u32 = 4; // held fragments sent on
export const FC_TIMEOUTS: u32 = 5; // datagrams that ran out of time incomplete
export const FC_HELD_DROPPED: u32 = 6; // held fragments discarded (timeout or datagram killed)
export const FC_OVERLAPS: u32 = 7; // datagrams killed by an overlap
export const FC_DUPLICATES: u32 = 8; // duplicate fragments dropped
export const FC_TOO_BIG: u32 = 9; // datagrams killed for exceeding 65,535 bytes
export const FC_INVALID: u32 = 10; // datagrams killed for a bad geometry
export const FC_NO_ROOM: u32 = 11; // fragments dropped: table or held memory full
export const FC_FAILED_DROPS: u32 = 12; // fragments dropped because their datagram was killed or dropped
export const FC_MEMORY: u32 = 13; // gauge: held bytes (whole blocks)
export const FC_ENTRIES: u32 = 14; // gauge: datagrams tracked now
export const FC_COUNT: u32 = 15;

export let fragCounters: usize = 0;
let entries: usize = 0;
let bitmaps: usize = 0;
let entryCapacity: u32 = 0;
let buckets: usize = 0;
let bucketMask: u32 = 0;
let freeEntry: u32 = FRAG_NO_ENTRY;
let oldest: u32 = FRAG_NO_ENTRY;
let newest: u32 = FRAG_NO_ENTRY;
let held: usize = 0;
let freeHeld: u32 = FRAG_NO_ENTRY;
let blocks: usize = 0;
let blockNext: usize = 0;
let blockCount: u32 = 0;
let freeBlock: u32 = FRAG_NO_ENTRY;
let blocksFree: u32 = 0;
let timeoutMs: u32 = 30000;
let seed: u32 = 0;
let releaseHead: u32 = FRAG_NO_ENTRY;
let releaseTail: u32 = FRAG_NO_ENTRY;
let entriesLive: u32 = 0;

/** The entry the last fragAccept found or made. */
export let fragEntry: u32 = FRAG_NO_ENTRY;

/** True when fragment tracking was set up (with at least one datagram). */
export function fragmentsOn(): bool {
  return entryCapacity != 0;
}

/**
 * Carves the tables: `datagrams` tracked at once, `memoryBytes` for held fragments (0: none
 * are held, a later fragment before its first is dropped), `time` ms per datagram.
 */
export function initFragments(datagrams: u32, memoryBytes: u32, time: u32, hashSeed: u32): bool {
  if (fragCounters != 0) return false;
  if (datagrams > 1 << 20 || time == 0) return false;
  fragCounters = heap.alloc(<usize>FC_COUNT * 8);
  memory.fill(fragCounters, 0, <usize>FC_COUNT * 8);
  timeoutMs = time;
  seed = hashSeed;
  if (datagrams == 0) return true;
  entryCapacity = datagrams;
  entries = heap.alloc(<usize>datagrams * E_SIZE);
  memory.fill(entries, 0, <usize>datagrams * E_SIZE);
  bitmaps = heap.alloc(<usize>datagrams * BITMAP_BYTES);
  memory.fill(bitmaps, 0, <usize>datagrams * BITMAP_BYTES);
  let n: u32 = 16;
  while (n < datagrams * 2) n <<= 1;
  bucketMask = n - 1;
  buckets = heap.alloc(<usize>n * 4);
  memory.fill(buckets, 0xff, <usize>n * 4);
  for (let i: u32 = 0; i < datagrams; i++) store<u32>(ent(i) + E_CHAIN, i + 1 < datagrams ? i + 1 : FRAG_NO_ENTRY);
  freeEntry = 0;
  blockCount = memoryBytes / FRAG_BLOCK;
  if (blockCount != 0) {
    blocks = heap.alloc(<usize>blockCount * FRAG_BLOCK);
    blockNext = heap.alloc(<usize>blockCount * 4);
    held = heap.alloc(<usize>blockCount * H_SIZE);
    for (let b: u32 = 0; b < blockCount; b++) {
      const next = b + 1 < blockCount ? b + 1 : FRAG_NO_ENTRY;
      store<u32>(blockNext + (<usize>b << 2), next);
      store<u32>(heldPtr(b) + H_NEXT, next);
    }
    freeBlock = 0;
    freeHeld = 0;
    blocksFree = blockCount;
  }
  return true;
}

@inline export function ent(e: u32): usize {
  return entries + <usize>e * E_SIZE;
}
@inline export function heldPtr(h: u32): usize {
  return held + <usize>h * H_SIZE;
}
@inline function bump(counter: u32, by: u64 = 1): void {
  const p = fragCounters + (<usize>counter << 3);
  store<u64>(p, load<u64>(p) + by);
}
@inline function gauge(counter: u32, v: u64): void {
  store<u64>(fragCounters + (<usize>counter << 3), v);
}

@inline function keyHash(family: u32, proto: u32, id: u32, src: usize, dst: usize): u32 {
  let h = murmurMix(seed, family | (proto << 8));
  h = murmurMix(h, id);
  h = murmurMix(h, load<u32>(src));
  h = murmurMix(h, load<u32>(dst));
  if (family == 6) {
    for (let k: usize = 4; k < 16; k += 4) {
      h = murmurMix(h, load<u32>(src + k));
      h = murmurMix(h, load<u32>(dst + k));
    }
  }
  return murmurFinal(h);
}

function findEntry(family: u32, proto: u32, id: u32, src: usize, dst: usize, bucket: u32): u32 {
  let e = load<u32>(buckets + (<usize>bucket << 2));
  while (e != FRAG_NO_ENTRY) {
    const p = ent(e);
    if (
      <u32>load<u8>(p + E_FAMILY) == family && <u32>load<u8>(p + E_PROTO) == proto &&
      load<u32>(p + E_ID) == id &&
      (family == 4
        ? load<u32>(p + E_SRC) == load<u32>(src) && load<u32>(p + E_DST) == load<u32>(dst)
        : eq16(p + E_SRC, src) && eq16(p + E_DST, dst))
    ) return e;
    e = load<u32>(p + E_CHAIN);
  }
  return FRAG_NO_ENTRY;
}

function newEntry(family: u32, proto: u32, id: u32, src: usize, dst: usize, bucket: u32, now: u32): u32 {
  const e = freeEntry;
  if (e == FRAG_NO_ENTRY) return e;
  const p = ent(e);
  freeEntry = load<u32>(p + E_CHAIN);
  memory.fill(p, 0, E_SIZE); // its bitmap was cleared when it was freed
  store<u8>(p + E_FAMILY, <u8>family);
  store<u8>(p + E_PROTO, <u8>proto);
  store<u8>(p + E_STATE, <u8>ST_OPEN);
  store<u32>(p + E_ID, id);
  if (family == 4) {
    store<u32>(p + E_SRC, load<u32>(src));
    store<u32>(p + E_DST, load<u32>(dst));
  } else {
    copy16(p + E_SRC, src);
    copy16(p + E_DST, dst);
  }
  store<u32>(p + E_EXPIRES, now + timeoutMs);
  store<u32>(p + E_HELD, FRAG_NO_ENTRY);
  store<u32>(p + E_DEST, FRAG_NO_ENTRY);
  store<u32>(p + E_SVC, FRAG_NO_ENTRY);
  store<u32>(p + E_BUCKET, bucket);
  const bp = buckets + (<usize>bucket << 2);
  store<u32>(p + E_CHAIN, load<u32>(bp));
  store<u32>(bp, e);
  // Append to the age list.
  store<u32>(p + E_NEWER, FRAG_NO_ENTRY);
  store<u32>(p + E_OLDER, newest);
  if (newest != FRAG_NO_ENTRY) store<u32>(ent(newest) + E_NEWER, e);
  else oldest = e;
  newest = e;
  bump(FC_DATAGRAMS);
  entriesLive++;
  gauge(FC_ENTRIES, entriesLive);
  return e;
}

function freeEntryAt(e: u32): void {
  const p = ent(e);
  // Every bit set lies below the highest end seen: clear only those words.
  const words = (((load<u32>(p + E_MAXEND) + 7) >> 3) + 31) >> 5;
  memory.fill(bitmaps + <usize>e * BITMAP_BYTES, 0, <usize>words << 2);
  dropHeldList(load<u32>(p + E_HELD));
  store<u32>(p + E_HELD, FRAG_NO_ENTRY);
  if (load<u32>(p + E_RELEASING) != 0) purgeReleases(e);
  // Out of its bucket.
  const bp = buckets + (<usize>load<u32>(p + E_BUCKET) << 2);
  let prev = FRAG_NO_ENTRY;
  let cur = load<u32>(bp);
  while (cur != FRAG_NO_ENTRY && cur != e) {
    prev = cur;
    cur = load<u32>(ent(cur) + E_CHAIN);
  }
  if (cur == e) {
    const next = load<u32>(p + E_CHAIN);
    if (prev == FRAG_NO_ENTRY) store<u32>(bp, next);
    else store<u32>(ent(prev) + E_CHAIN, next);
  }
  // Out of the age list.
  const newer = load<u32>(p + E_NEWER);
  const older = load<u32>(p + E_OLDER);
  if (older != FRAG_NO_ENTRY) store<u32>(ent(older) + E_NEWER, newer);
  else oldest = newer;
  if (newer != FRAG_NO_ENTRY) store<u32>(ent(newer) + E_OLDER, older);
  else newest = older;
  store<u8>(p + E_STATE, <u8>ST_FREE);
  store<u32>(p + E_CHAIN, freeEntry);
  freeEntry = e;
  entriesLive--;
  publishGauges();
}

/** Frees datagrams whose time has run out (oldest first: their times never move). */
export function fragExpire(now: u32): void {
  while (oldest != FRAG_NO_ENTRY) {
    const p = ent(oldest);
    if (<i32>(now - load<u32>(p + E_EXPIRES)) < 0) break;
    if (<u32>load<u8>(p + E_STATE) == ST_OPEN) bump(FC_TIMEOUTS);
    freeEntryAt(oldest);
  }
}

function publishGauges(): void {
  gauge(FC_MEMORY, <u64>(blockCount - blocksFree) * FRAG_BLOCK);
  gauge(FC_ENTRIES, entriesLive);
}

/** Kills datagram e: its held fragments go, its later fragments will drop with `reason`. */
function fail(e: u32, reason: u32, counter: u32): u32 {
  const p = ent(e);
  bump(counter);
  store<u8>(p + E_STATE, <u8>ST_FAILED);
  store<u32>(p + E_REASON, reason);
  dropHeldList(load<u32>(p + E_HELD));
  store<u32>(p + E_HELD, FRAG_NO_ENTRY);
  if (load<u32>(p + E_RELEASING) != 0) purgeReleases(e);
  publishGauges();
  return reason;
}

/**
 * Counts bits already set in 8-byte units [u0, u1) of bitmap b; sets them all when `set`.
 */
function unitBits(b: usize, u0: u32, u1: u32, set: bool): u32 {
  let seen: u32 = 0;
  let u = u0;
  while (u < u1) {
    const bit = u & 31;
    const n = u1 - u < 32 - bit ? u1 - u : 32 - bit;
    const mask: u32 = n == 32 ? 0xffffffff : ((<u32>1 << n) - 1) << bit;
    const w = b + (<usize>(u >> 5) << 2);
    const v = load<u32>(w);
    seen += popcnt<u32>(v & mask);
    if (set) store<u32>(w, v | mask);
    u += n;
  }
  return seen;
}

/**
 * Takes the parsed fragment at pkt into its datagram's account at time now: finds or makes
 * the entry (left in fragEntry) and checks the fragment's place in it. Returns REASON_NONE
 * when the fragment goes on (to be processed as a first, held, or following its first),
 * else the reason to drop it.
 */
export function fragAccept(pkt: usize, now: u32): u32 {
  fragEntry = FRAG_NO_ENTRY;
  bump(FC_FRAGMENTS);
  const family = pFamily;
  const ip = pkt + <usize>pL3;
  let proto: u32;
  let id: u32;
  let off: u32;
  let more: bool;
  let len: u32;
  let unfragmentable: u32; // payload bytes in front of the fragmentable part (IPv6)
  if (family == 4) {
    const ihl = (rd8(ip) & 0xf) << 2;
    const field = rd16(ip + 6);
    proto = pProto;
    id = rd16(ip + 4);
    off = (field & 0x1fff) << 3;
    more = (field & 0x2000) != 0;
    len = pIpLen - ihl;
    unfragmentable = ihl;
  } else {
    const fh = pkt + <usize>pFragHdr;
    const field = rd16(fh + 2);
    proto = rd8(fh);
    id = rd32(fh + 4);
    off = field & 0xfff8;
    more = (field & 1) != 0;
    const start = pFragHdr + 8;
    len = pL3 + pIpLen - start;
    unfragmentable = pFragHdr - pL3 - 40;
  }
  const src = pkt + <usize>pSrcAddr;
  const dst = pkt + <usize>pDstAddr;
  const bucket = keyHash(family, proto, id, src, dst) & bucketMask;
  let e = findEntry(family, proto, id, src, dst, bucket);
  if (e == FRAG_NO_ENTRY) {
    fragExpire(now); // the oldest may free a place
    e = newEntry(family, proto, id, src, dst, bucket, now);
    if (e == FRAG_NO_ENTRY) {
      bump(FC_NO_ROOM);
      return REASON_FRAGMENT_NO_ROOM;
    }
  } else if (<i32>(now - load<u32>(ent(e) + E_EXPIRES)) >= 0) {
    // Its time ran out before the sweep came by: a fragment of a new datagram.
    if (<u32>load<u8>(ent(e) + E_STATE) == ST_OPEN) bump(FC_TIMEOUTS);
    freeEntryAt(e);
    e = newEntry(family, proto, id, src, dst, bucket, now);
    if (e == FRAG_NO_ENTRY) {
      bump(FC_NO_ROOM);
      return REASON_FRAGMENT_NO_ROOM;
    }
  }
  fragEntry = e;
  const p = ent(e);
  const state = <u32>load<u8>(p + E_STATE);
  if (state == ST_FAILED) {
    bump(FC_FAILED_DROPS);
    return load<u32>(p + E_REASON);
  }
  const end = off + len;
  if (unfragmentable + end > 65535) return fail(e, REASON_FRAGMENT_TOO_BIG, FC_TOO_BIG);
  const lastIn = load<u32>(p + E_LAST_IN) != 0;
  const total = load<u32>(p + E_TOTAL);
  if (len == 0) return fail(e, REASON_FRAGMENT_INVALID, FC_INVALID);
  if (!more) {
    if (end < load<u32>(p + E_MAXEND) || (lastIn && end != total)) return fail(e, REASON_FRAGMENT_INVALID, FC_INVALID);
  } else {
    if ((len & 7) != 0 || (lastIn && end > total)) return fail(e, REASON_FRAGMENT_INVALID, FC_INVALID);
  }
  const u0 = off >> 3;
  const u1 = (end + 7) >> 3;
  const bitmap = bitmaps + <usize>e * BITMAP_BYTES;
  const seen = unitBits(bitmap, u0, u1, false);
  if (seen == u1 - u0) {
    bump(FC_DUPLICATES);
    return REASON_FRAGMENT_DUPLICATE;
  }
  if (seen != 0) return fail(e, REASON_FRAGMENT_OVERLAP, FC_OVERLAPS);
  unitBits(bitmap, u0, u1, true);
  if (!more) {
    store<u32>(p + E_LAST_IN, 1);
    store<u32>(p + E_TOTAL, end);
  }
  if (end > load<u32>(p + E_MAXEND)) store<u32>(p + E_MAXEND, end);
  const received = load<u32>(p + E_RECEIVED) + len;
  store<u32>(p + E_RECEIVED, received);
  if (load<u32>(p + E_LAST_IN) != 0 && received == load<u32>(p + E_TOTAL)) {
    store<u8>(p + E_STATE, <u8>ST_COMPLETE);
    bump(FC_COMPLETED);
  }
  return REASON_NONE;
}

/** The decision datagram e's later fragments follow (DEC_NONE until the first is decided). */
@inline export function fragDecision(e: u32): u32 {
  return <u32>load<u8>(ent(e) + E_DECISION);
}

/**
 * Copies the later fragment (frame at pkt, len bytes, link and mark as received) into the
 * held pool for datagram e. False when there is no room: the datagram is then killed.
 */
export function fragHold(e: u32, pkt: usize, len: u32, link: u32, mark: u32, maxLen: u32): bool {
  const need = (len + FRAG_BLOCK - 1) / FRAG_BLOCK;
  if (len > maxLen || need > blocksFree || freeHeld == FRAG_NO_ENTRY) {
    fail(e, REASON_FRAGMENT_NO_ROOM, FC_NO_ROOM);
    return false;
  }
  const h = freeHeld;
  const hp = heldPtr(h);
  freeHeld = load<u32>(hp + H_NEXT);
  // Chain `need` blocks, copying as we go.
  let first = FRAG_NO_ENTRY;
  let prev = FRAG_NO_ENTRY;
  let copied: u32 = 0;
  for (let k: u32 = 0; k < need; k++) {
    const b = freeBlock;
    freeBlock = load<u32>(blockNext + (<usize>b << 2));
    store<u32>(blockNext + (<usize>b << 2), FRAG_NO_ENTRY);
    if (prev == FRAG_NO_ENTRY) first = b;
    else store<u32>(blockNext + (<usize>prev << 2), b);
    prev = b;
    const n = len - copied < FRAG_BLOCK ? len - copied : FRAG_BLOCK;
    memory.copy(blocks + <usize>b * FRAG_BLOCK, pkt + copied, n);
    copied += n;
  }
  blocksFree -= need;
  store<u32>(hp + H_ENTRY, e);
  store<u32>(hp + H_LENGTH, len);
  store<u32>(hp + H_LINK, link);
  store<u32>(hp + H_MARK, mark);
  store<u32>(hp + H_BLOCK, first);
  const p = ent(e);
  store<u32>(hp + H_NEXT, load<u32>(p + E_HELD));
  store<u32>(p + E_HELD, h);
  bump(FC_HELD);
  gauge(FC_MEMORY, <u64>(blockCount - blocksFree) * FRAG_BLOCK);
  return true;
}

function freeHeldRecord(h: u32): void {
  const hp = heldPtr(h);
  let b = load<u32>(hp + H_BLOCK);
  while (b != FRAG_NO_ENTRY) {
    const next = load<u32>(blockNext + (<usize>b << 2));
    store<u32>(blockNext + (<usize>b << 2), freeBlock);
    freeBlock = b;
    blocksFree++;
    b = next;
  }
  store<u32>(hp + H_NEXT, freeHeld);
  freeHeld = h;
}

function dropHeldList(h: u32): void {
  while (h != FRAG_NO_ENTRY) {
    const next = load<u32>(heldPtr(h) + H_NEXT);
    freeHeldRecord(h);
    bump(FC_HELD_DROPPED);
    h = next;
  }
}

/** Removes datagram e's fragments from the release queue (it was killed or expired). */
function purgeReleases(e: u32): void {
  let prev = FRAG_NO_ENTRY;
  let h = releaseHead;
  while (h != FRAG_NO_ENTRY) {
    const next = load<u32>(heldPtr(h) + H_NEXT);
    if (load<u32>(heldPtr(h) + H_ENTRY) == e) {
      if (prev == FRAG_NO_ENTRY) releaseHead = next;
      else store<u32>(heldPtr(prev) + H_NEXT, next);
      if (releaseTail == h) releaseTail = prev;
      freeHeldRecord(h);
      bump(FC_HELD_DROPPED);
    } else {
      prev = h;
    }
    h = next;
  }
  store<u32>(ent(e) + E_RELEASING, 0);
}

/**
 * Records the decision taken on datagram e's first fragment and queues its held fragments
 * for release. `kind` DEC_*; dest, port, svc and vaddr (16 bytes, DEC_REPLY) as the path
 * that decided left them; reason for DEC_DROP.
 */
export function fragDecide(e: u32, kind: u32, dest: u32, port: u32, svc: u32, vaddr: usize, reason: u32): void {
  const p = ent(e);
  if (<u32>load<u8>(p + E_STATE) == ST_FAILED) return;
  store<u8>(p + E_DECISION, <u8>kind);
  store<u32>(p + E_DEST, dest);
  store<u32>(p + E_PORT, port);
  store<u32>(p + E_SVC, svc);
  store<u32>(p + E_REASON, reason);
  if (kind == DEC_REPLY) {
    if (<u32>load<u8>(p + E_FAMILY) == 4) store<u32>(p + E_VADDR, load<u32>(vaddr));
    else copy16(p + E_VADDR, vaddr);
  }
  let h = load<u32>(p + E_HELD);
  store<u32>(p + E_HELD, FRAG_NO_ENTRY);
  let n: u32 = 0;
  while (h != FRAG_NO_ENTRY) {
    const next = load<u32>(heldPtr(h) + H_NEXT);
    store<u32>(heldPtr(h) + H_NEXT, FRAG_NO_ENTRY);
    if (releaseTail == FRAG_NO_ENTRY) releaseHead = h;
    else store<u32>(heldPtr(releaseTail) + H_NEXT, h);
    releaseTail = h;
    n++;
    h = next;
  }
  store<u32>(p + E_RELEASING, load<u32>(p + E_RELEASING) + n);
}

/** Frees datagram e once every byte was seen, it was decided and nothing of it waits. */
export function fragSettle(e: u32): void {
  const p = ent(e);
  if (
    <u32>load<u8>(p + E_STATE) == ST_COMPLETE && <u32>load<u8>(p + E_DECISION) != DEC_NONE &&
    load<u32>(p + E_HELD) == FRAG_NO_ENTRY && load<u32>(p + E_RELEASING) == 0
  ) freeEntryAt(e);
}

/** True when held fragments wait to be released into slots. */
@inline export function fragReleasePending(): bool {
  return releaseHead != FRAG_NO_ENTRY;
}

/**
 * Copies the next released fragment to `dst` (at most maxLen bytes of room) and returns its
 * held record (its length, link and mark fields are valid until the next hold), or
 * FRAG_NO_ENTRY when none waits. The record is freed; fragEntry names its datagram.
 */
export function fragReleaseNext(dst: usize): u32 {
  const h = releaseHead;
  if (h == FRAG_NO_ENTRY) return h;
  const hp = heldPtr(h);
  releaseHead = load<u32>(hp + H_NEXT);
  if (releaseHead == FRAG_NO_ENTRY) releaseTail = FRAG_NO_ENTRY;
  const e = load<u32>(hp + H_ENTRY);
  fragEntry = e;
  const p = ent(e);
  store<u32>(p + E_RELEASING, load<u32>(p + E_RELEASING) - 1);
  const len = load<u32>(hp + H_LENGTH);
  let b = load<u32>(hp + H_BLOCK);
  let copied: u32 = 0;
  while (b != FRAG_NO_ENTRY && copied < len) {
    const n = len - copied < FRAG_BLOCK ? len - copied : FRAG_BLOCK;
    memory.copy(dst + copied, blocks + <usize>b * FRAG_BLOCK, n);
    copied += n;
    b = load<u32>(blockNext + (<usize>b << 2));
  }
  freeHeldRecord(h);
  bump(FC_RELEASED);
  gauge(FC_MEMORY, <u64>(blockCount - blocksFree) * FRAG_BLOCK);
  return h;
}

