// Which virtual service a packet is for: an index from <protocol, family, VIP, port> and
// from <fwmark, family> to the service id (the id the scheduler tables use), plus what
// the datapath needs to know of each service beyond scheduling: persistence and
// one-packet scheduling. Lookups are an open-addressed table (linear probing), at most half
// full. A removal shifts the entries after it back (no tombstones): a table that saw many
// services added and removed probes as few slots as a fresh one, so a packet for an address
// with no service stops at the first empty slot, however many services came and went.

import { eq16, copy16 } from "../net/bytes";

export const SVC_NONE: u32 = 0xffffffff;

// Per-service record (64 bytes).
const REC_SIZE: u32 = 64;
const R_IN_USE: u32 = 0; // u8
const R_FAMILY: u32 = 1; // u8
const R_PROTO: u32 = 2; // u8 (0 for fwmark services)
const R_FLAGS: u32 = 3; // u8 SVCF_*
const R_PORT: u32 = 4; // u16
const R_PREFIX: u32 = 6; // u8 persistence prefix length (IPv4 /0..32, IPv6 /0..128)
const R_FWMARK: u32 = 8; // u32
const R_PERSIST_MS: u32 = 12; // u32 persistence timeout
const R_ADDR: u32 = 16; // 16 bytes
const R_MASK: u32 = 32; // 16 bytes: the prefix as a mask

export const SVCF_PERSISTENT: u32 = 1;
export const SVCF_ONE_PACKET: u32 = 2;
/** Full-NAT TCP flows get the PROXY protocol v2 header (forward/proxy-protocol.ts). */
export const SVCF_PROXY_V2: u32 = 4;

let recs: usize = 0;
let capacity: u32 = 0;
// Index slots: u32 service id + 1 (0 empty).
let index: usize = 0;
let indexMask: u32 = 0;

export function initServiceIndex(maxServices: u32): bool {
  if (recs != 0 || maxServices == 0 || maxServices > 1 << 20) return false;
  capacity = maxServices;
  recs = heap.alloc(<usize>maxServices * REC_SIZE);
  memory.fill(recs, 0, <usize>maxServices * REC_SIZE);
  let slots: u32 = 16;
  while (slots < maxServices * 2) slots <<= 1;
  indexMask = slots - 1;
  index = heap.alloc(<usize>slots * 4);
  memory.fill(index, 0, <usize>slots * 4);
  return true;
}

@inline function rec(svc: u32): usize {
  return recs + <usize>svc * REC_SIZE;
}

@inline function keyHash(proto: u32, family: u32, addr: usize, port: u32, fwmark: u32): u32 {
  let h: u32 = (proto | (family << 8) | (port << 16)) * 0x9e3779b1;
  if (fwmark != 0) h ^= fwmark * 0x85ebca6b;
  else {
    h ^= load<u32>(addr) * 0xc2b2ae35;
    if (family == 6) {
      h ^= load<u32>(addr + 4) * 0x27d4eb2f;
      h ^= load<u32>(addr + 8) * 0x165667b1;
      h ^= load<u32>(addr + 12) * 0xd3a2646c;
    }
  }
  return h ^ (h >> 16);
}

@inline function matches(svc: u32, proto: u32, family: u32, addr: usize, port: u32, fwmark: u32): bool {
  const r = rec(svc);
  if (<u32>load<u8>(r + R_FAMILY) != family) return false;
  if (fwmark != 0) return load<u32>(r + R_FWMARK) == fwmark;
  if (load<u32>(r + R_FWMARK) != 0) return false;
  if (<u32>load<u8>(r + R_PROTO) != proto || <u32>load<u16>(r + R_PORT) != port) return false;
  return family == 4 ? load<u32>(r + R_ADDR) == load<u32>(addr) : eq16(r + R_ADDR, addr);
}

function findSlot(proto: u32, family: u32, addr: usize, port: u32, fwmark: u32): u32 {
  let i = keyHash(proto, family, addr, port, fwmark) & indexMask;
  for (let n: u32 = 0; n <= indexMask; n++) {
    const v = load<u32>(index + (<usize>i << 2));
    if (v == 0) return SVC_NONE;
    if (matches(v - 1, proto, family, addr, port, fwmark)) return i;
    i = (i + 1) & indexMask;
  }
  return SVC_NONE;
}

/** The service for <proto, family, addr:port> (fwmark 0) or for <fwmark, family>; SVC_NONE if none. */
export function findService(proto: u32, family: u32, addr: usize, port: u32, fwmark: u32): u32 {
  const slot = findSlot(proto, family, addr, port, fwmark);
  return slot == SVC_NONE ? SVC_NONE : load<u32>(index + (<usize>slot << 2)) - 1;
}

/** Registers service id `svc` under its key. False if the id is taken or the key exists. */
export function addServiceKey(svc: u32, proto: u32, family: u32, addr: usize, port: u32, fwmark: u32): bool {
  if (svc >= capacity || load<u8>(rec(svc) + R_IN_USE) != 0) return false;
  if (findSlot(proto, family, addr, port, fwmark) != SVC_NONE) return false;
  const r = rec(svc);
  memory.fill(r, 0, REC_SIZE);
  store<u8>(r + R_IN_USE, 1);
  store<u8>(r + R_FAMILY, <u8>family);
  store<u8>(r + R_PROTO, <u8>(fwmark != 0 ? 0 : proto));
  store<u16>(r + R_PORT, <u16>(fwmark != 0 ? 0 : port));
  store<u32>(r + R_FWMARK, fwmark);
  if (fwmark == 0) {
    if (family == 4) store<u32>(r + R_ADDR, load<u32>(addr));
    else copy16(r + R_ADDR, addr);
  }
  setPersistence(svc, 0, 0, family == 4 ? 32 : 128);
  let i = keyHash(proto, family, addr, port, fwmark) & indexMask;
  while (true) {
    const v = load<u32>(index + (<usize>i << 2));
    if (v == 0) break;
    i = (i + 1) & indexMask;
  }
  store<u32>(index + (<usize>i << 2), svc + 1);
  return true;
}

/** Removes service `svc` from the index. */
export function removeServiceKey(svc: u32): void {
  if (svc >= capacity) return;
  const r = rec(svc);
  if (load<u8>(r + R_IN_USE) == 0) return;
  const slot = findSlot(
    <u32>load<u8>(r + R_PROTO), <u32>load<u8>(r + R_FAMILY), r + R_ADDR,
    <u32>load<u16>(r + R_PORT), load<u32>(r + R_FWMARK),
  );
  if (slot != SVC_NONE) removeSlot(slot);
  store<u8>(r + R_IN_USE, 0);
}

/** The slot a service's key hashes to. */
function homeSlot(svc: u32): u32 {
  const r = rec(svc);
  return keyHash(<u32>load<u8>(r + R_PROTO), <u32>load<u8>(r + R_FAMILY), r + R_ADDR, <u32>load<u16>(r + R_PORT), load<u32>(r + R_FWMARK)) & indexMask;
}

/** Empties `hole` and moves back every later entry of the run whose probe passed it. */
function removeSlot(hole: u32): void {
  let j = hole;
  while (true) {
    j = (j + 1) & indexMask;
    const v = load<u32>(index + (<usize>j << 2));
    if (v == 0) break;
    const home = homeSlot(v - 1);
    // The entry at j may fill the hole when its home is not in (hole, j] (cyclically).
    const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
    if (!stays) {
      store<u32>(index + (<usize>hole << 2), v);
      hole = j;
    }
  }
  store<u32>(index + (<usize>hole << 2), 0);
}

/** Persistence (ms, 0 = off), one-packet scheduling, and the client prefix length. */
export function setPersistence(svc: u32, timeoutMs: u32, onePacket: u32, prefix: u32): bool {
  if (svc >= capacity) return false;
  const r = rec(svc);
  const family = <u32>load<u8>(r + R_FAMILY);
  if (prefix > (family == 4 ? <u32>32 : <u32>128)) return false;
  store<u32>(r + R_PERSIST_MS, timeoutMs);
  const kept = <u32>load<u8>(r + R_FLAGS) & SVCF_PROXY_V2;
  store<u8>(r + R_FLAGS, <u8>(kept | (timeoutMs != 0 ? SVCF_PERSISTENT : 0) | (onePacket != 0 ? SVCF_ONE_PACKET : 0)));
  store<u8>(r + R_PREFIX, <u8>prefix);
  // Build the mask bytes once so masking a client address is four ANDs.
  for (let b: u32 = 0; b < 16; b++) {
    const bits = <i32>prefix - <i32>(b * 8);
    const v: u32 = bits >= 8 ? 0xff : bits <= 0 ? 0 : (0xff << (8 - <u32>bits)) & 0xff;
    store<u8>(r + R_MASK + b, <u8>v);
  }
  return true;
}

/** The PROXY protocol v2 header on (1) or off (0) for the service's full-NAT TCP flows. */
export function setProxyProtocol(svc: u32, on: u32): bool {
  if (svc >= capacity) return false;
  const r = rec(svc);
  const f = <u32>load<u8>(r + R_FLAGS);
  store<u8>(r + R_FLAGS, <u8>(on != 0 ? f | SVCF_PROXY_V2 : f & ~SVCF_PROXY_V2));
  return true;
}

@inline export function serviceFlags(svc: u32): u32 {
  return <u32>load<u8>(rec(svc) + R_FLAGS);
}
@inline export function servicePort(svc: u32): u32 {
  return <u32>load<u16>(rec(svc) + R_PORT);
}
@inline export function serviceFwmark(svc: u32): u32 {
  return load<u32>(rec(svc) + R_FWMARK);
}
@inline export function servicePersistMs(svc: u32): u32 {
  return load<u32>(rec(svc) + R_PERSIST_MS);
}
@inline export function serviceInUse(svc: u32): bool {
  return svc < capacity && load<u8>(rec(svc) + R_IN_USE) != 0;
}

/** Writes caddr masked by the service's persistence prefix to out (16 bytes). */
export function maskClient(svc: u32, family: u32, caddr: usize, out: usize): void {
  const m = rec(svc) + R_MASK;
  if (family == 4) {
    store<u32>(out, load<u32>(caddr) & load<u32>(m));
  } else {
    store<u64>(out, load<u64>(caddr) & load<u64>(m));
    store<u64>(out + 8, load<u64>(caddr + 8) & load<u64>(m + 8));
  }
}
