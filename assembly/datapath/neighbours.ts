// Next-hop MACs for Ethernet output: a small open-addressed table IP -> MAC that the host
// fills (from ARP / ND, the kernel's neighbour table, or `lvsadm replay --neigh`), the
// director's own MAC, and a default gateway per family for destinations not on the link.

import { copy6, eq16 } from "../net/bytes";

const ENTRY_SIZE: u32 = 32; // [0] u8 family (0 = empty), [8..14) mac, [16..32) address
let base: usize = 0;
let mask: u32 = 0;
let used: u32 = 0;
/** Our own MAC (source of every frame we send), and whether it is set. */
export let ownMacPtr: usize = 0;
export let ownMacSet: bool = false;
let gateway4: usize = 0;
let gateway6: usize = 0;
let gateway4Set: bool = false;
let gateway6Set: bool = false;

export function initNeighbours(capacity: u32): bool {
  if (base != 0 || capacity == 0 || capacity > 1 << 20) return false;
  let slots: u32 = 16;
  while (slots < capacity * 2) slots <<= 1; // load factor <= 1/2 keeps probes short
  mask = slots - 1;
  base = heap.alloc(<usize>slots * ENTRY_SIZE);
  memory.fill(base, 0, <usize>slots * ENTRY_SIZE);
  ownMacPtr = heap.alloc(16);
  gateway4 = heap.alloc(16);
  gateway6 = heap.alloc(16);
  return true;
}

@inline function hashAddr(family: u32, a: usize): u32 {
  let h: u32 = load<u32>(a) * 0x9e3779b1;
  if (family == 6) {
    h ^= load<u32>(a + 4) * 0x85ebca6b;
    h ^= load<u32>(a + 8) * 0xc2b2ae35;
    h ^= load<u32>(a + 12) * 0x27d4eb2f;
  }
  return h ^ (h >> 15);
}

@inline function sameAddr(family: u32, e: usize, a: usize): bool {
  return family == 4 ? load<u32>(e + 16) == load<u32>(a) : eq16(e + 16, a);
}

/** The entry for (family, address) or, when `create`, a free one claimed for it; 0 if none. */
function find(family: u32, a: usize, create: bool): usize {
  let i = hashAddr(family, a) & mask;
  for (let probes: u32 = 0; probes <= mask; probes++) {
    const e = base + <usize>i * ENTRY_SIZE;
    const f = <u32>load<u8>(e);
    if (f == 0) {
      if (!create || used * 2 >= mask + 1) return 0;
      store<u8>(e, <u8>family);
      if (family == 4) store<u32>(e + 16, load<u32>(a));
      else memory.copy(e + 16, a, 16);
      used++;
      return e;
    }
    if (f == family && sameAddr(family, e, a)) return e;
    i = (i + 1) & mask;
  }
  return 0;
}

/** Sets (or replaces) the MAC of a neighbour; false when the table is full. */
export function setNeighbour(family: u32, addr: usize, mac: usize): bool {
  const e = find(family, addr, true);
  if (e == 0) return false;
  copy6(e + 8, mac);
  return true;
}

/** Pointer to the MAC for the next hop toward addr (neighbour, else gateway), or 0. */
export function neighbourMac(family: u32, addr: usize): usize {
  if (used != 0) {
    const e = find(family, addr, false);
    if (e != 0) return e + 8;
  }
  if (family == 4) return gateway4Set ? gateway4 : 0;
  return gateway6Set ? gateway6 : 0;
}

export function setOwnMac(mac: usize): void {
  copy6(ownMacPtr, mac);
  ownMacSet = true;
}

export function setGatewayMac(family: u32, mac: usize): void {
  if (family == 4) {
    copy6(gateway4, mac);
    gateway4Set = true;
  } else {
    copy6(gateway6, mac);
    gateway6Set = true;
  }
}

export function neighbourCount(): u32 {
  return used;
}
