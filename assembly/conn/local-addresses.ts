// Full NAT's local addresses (DPVS: laddr): the director's own addresses a full-NAT flow
// is sourced from, a pool per service. A full-NAT connection names its local address by
// index (16 bits, kept with its port in the record's CC_NCONTROL word, which only templates
// use otherwise), so an entry is never reused while a connection still names it: a deleted
// address stops taking new flows at once and frees its slot when its last connection goes.
// Carved once at start-up; nothing here allocates afterwards.

/** Bytes per local address entry. */
const L_SIZE: u32 = 32;
export const L_ADDR: u32 = 0; // 16 bytes (IPv4 in the first 4)
const L_FAMILY: u32 = 16; // u8 4 | 6, 0 = free slot
const L_LIVE: u32 = 17; // u8 1 = takes new flows (0 once deleted, until its last connection goes)
const L_CURSOR: u32 = 18; // u16 next port to try
const L_SERVICE: u32 = 20; // u32 service index
const L_CONNS: u32 = 24; // u32 connections naming this entry
const L_EXHAUSTED: u32 = 28; // u32 new flows refused for want of a free port here

export const LADDR_NONE: u32 = 0xffffffff;

export let laddrBase: usize = 0;
export let laddrCapacity: u32 = 0;
/** ip_local_port_range's role: the ports a local address hands out, [portLow, portHigh]. */
export let portLow: u32 = 32768;
export let portHigh: u32 = 60999;

/** Carves `capacity` entries (at most 65,535: an index must fit 16 bits). Once. */
export function initLocalAddresses(capacity: u32): bool {
  if (laddrBase != 0 || capacity == 0 || capacity > 0xffff) return false;
  laddrCapacity = capacity;
  laddrBase = heap.alloc(<usize>capacity * L_SIZE);
  memory.fill(laddrBase, 0, <usize>capacity * L_SIZE);
  return true;
}

@inline export function laddrPtr(i: u32): usize {
  return laddrBase + <usize>i * L_SIZE;
}

@inline export function laddrFamily(i: u32): u32 {
  return <u32>load<u8>(laddrPtr(i) + L_FAMILY);
}

/** Whether entry i takes new flows of service svc in `family`. */
@inline export function laddrUsable(i: u32, svc: u32, family: u32): bool {
  const p = laddrPtr(i);
  return <u32>load<u8>(p + L_FAMILY) == family && load<u8>(p + L_LIVE) != 0 && load<u32>(p + L_SERVICE) == svc;
}

function sameAddress(p: usize, family: u32, addr: usize): bool {
  if (<u32>load<u8>(p + L_FAMILY) != family) return false;
  if (family == 4) return load<u32>(p) == load<u32>(addr);
  return load<u64>(p) == load<u64>(addr) && load<u64>(p + 8) == load<u64>(addr + 8);
}

/** The live entry of service svc with this address, or LADDR_NONE. */
export function laddrFind(svc: u32, family: u32, addr: usize): u32 {
  for (let i: u32 = 0; i < laddrCapacity; i++) {
    const p = laddrPtr(i);
    if (load<u8>(p + L_LIVE) != 0 && load<u32>(p + L_SERVICE) == svc && sameAddress(p, family, addr)) return i;
  }
  return LADDR_NONE;
}

/**
 * Adds addr to service svc's pool. Returns the entry, or LADDR_NONE when the table is full
 * or the address is already there (the host checks both first, for its error message).
 */
export function laddrAdd(svc: u32, family: u32, addr: usize): u32 {
  if (laddrFind(svc, family, addr) != LADDR_NONE) return LADDR_NONE;
  for (let i: u32 = 0; i < laddrCapacity; i++) {
    const p = laddrPtr(i);
    if (load<u8>(p + L_FAMILY) != 0) continue;
    memory.fill(p, 0, L_SIZE);
    if (family == 4) store<u32>(p, load<u32>(addr));
    else memory.copy(p, addr, 16);
    store<u8>(p + L_FAMILY, <u8>family);
    store<u8>(p + L_LIVE, 1);
    store<u16>(p + L_CURSOR, <u16>portLow);
    store<u32>(p + L_SERVICE, svc);
    return i;
  }
  return LADDR_NONE;
}

/** Takes entry i out of its pool: no new flows; the slot is freed with its last connection. */
export function laddrRetire(i: u32): void {
  if (i >= laddrCapacity) return;
  const p = laddrPtr(i);
  store<u8>(p + L_LIVE, 0);
  if (load<u32>(p + L_CONNS) == 0) store<u8>(p + L_FAMILY, 0);
}

/** A connection starts naming entry i. */
@inline export function laddrHold(i: u32): void {
  const p = laddrPtr(i);
  store<u32>(p + L_CONNS, load<u32>(p + L_CONNS) + 1);
}

/** A connection naming entry i is gone; a retired entry is freed with its last one. */
export function laddrRelease(i: u32): void {
  if (i >= laddrCapacity) return;
  const p = laddrPtr(i);
  const n = load<u32>(p + L_CONNS);
  if (n > 0) store<u32>(p + L_CONNS, n - 1);
  if (n <= 1 && load<u8>(p + L_LIVE) == 0) store<u8>(p + L_FAMILY, 0);
}

@inline export function laddrConns(i: u32): u32 {
  return i < laddrCapacity ? load<u32>(laddrPtr(i) + L_CONNS) : 0;
}

@inline export function laddrExhausted(i: u32): u32 {
  return i < laddrCapacity ? load<u32>(laddrPtr(i) + L_EXHAUSTED) : 0;
}

@inline export function laddrCountExhausted(i: u32): void {
  const p = laddrPtr(i);
  store<u32>(p + L_EXHAUSTED, load<u32>(p + L_EXHAUSTED) + 1);
}

/** The next port entry i offers, advancing its cursor round the range. */
@inline export function laddrNextPort(i: u32): u32 {
  const p = laddrPtr(i);
  let port = <u32>load<u16>(p + L_CURSOR);
  if (port < portLow || port > portHigh) port = portLow;
  store<u16>(p + L_CURSOR, <u16>(port >= portHigh ? portLow : port + 1));
  return port;
}

/** Sets the local port range (ip_local_port_range); false for an empty or zero-based range. */
export function setPortRange(low: u32, high: u32): bool {
  if (low == 0 || low > high || high > 65535) return false;
  portLow = low;
  portHigh = high;
  return true;
}
