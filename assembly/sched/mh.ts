// mh (ip_vs_mh.c): Maglev hashing. Per destination, offset = h1(dest) % M and skip =
// h2(dest) % (M - 1) + 1, with h1/h2 the kernel's hsiphash of ntohs(port) + ntohl(fold(addr))
// under its two fixed keys. turns = (last_weight / gcd) >> rshift (at least 1 for a
// non-zero last weight), rshift = max(0, fls(max / gcd) - 6). The table is built from the
// last non-zero weight, so quiescing (weight 0) keeps it; a weight-0 or overloaded entry
// gives no destination unless mh-fallback. Lookup: h1(saddr [+ sport with mh-port]) % M.
// The kernel fills in list order; by default we fill in (family, address, port) order so the
// table does not depend on the order destinations were added (identical to the kernel's
// when the list is in that order). Flag SF_MH_LIST_ORDER selects the kernel's list order.

import {
  Scheduler, E_MH_SIZE, E_NO_MH_TABLE, E_TOO_MANY_DESTS, CHANGE_UPD,
} from "./scheduler";
import {
  svcPtr, svcGet, nDests, destAt, destPtr, unavailable, S_FLAGS, S_MH_SIZE, S_MH_SLOT, S_BUILDS,
  SF_FLAG1, SF_FLAG2, SF_MH_LIST_ORDER, D_ADDR, D_PORT, D_FAMILY, D_LAST_WEIGHT, FK_CADDR,
  FK_CPORT, FK_PROTO, FK_FAMILY,
} from "./table";
import { hsiphash4, foldAddr, MH_KEY1, MH_KEY2 } from "./hash";
import {
  populate, claimTable, releaseTable, tablePtr, isPrime, maxTableSize, maxSetup, setupOffset,
  setupSkip, setupTurns, setupId,
} from "./maglev";
import { l4Ported } from "./sh";

export const MH_FALLBACK: u32 = SF_FLAG1;
export const MH_PORT: u32 = SF_FLAG2;
const TAB_BITS: i32 = 6; // CONFIG_IP_VS_MH_TAB_INDEX 12 / 2

function gcd(a: i32, b: i32): i32 {
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Orders destinations by family, address bytes, then port. */
function destLess(a: u32, b: u32): bool {
  const pa = destPtr(a);
  const pb = destPtr(b);
  const fa = load<u8>(pa + D_FAMILY);
  const fb = load<u8>(pb + D_FAMILY);
  if (fa != fb) return fa < fb;
  for (let i: usize = 0; i < 16; i += 4) {
    const x = bswap<u32>(load<u32>(pa + D_ADDR + i));
    const y = bswap<u32>(load<u32>(pb + D_ADDR + i));
    if (x != y) return x < y;
  }
  return load<u16>(pa + D_PORT) < load<u16>(pb + D_PORT);
}

@inline function idAt(i: u32): u32 {
  return load<u32>(setupId + (<usize>i << 2));
}
@inline function idSet(i: u32, d: u32): void {
  store<u32>(setupId + (<usize>i << 2), d);
}

/** Heapsort of setupId[0, n) by destLess: in place, O(n log n) for 1000s of destinations. */
function sortIds(n: u32): void {
  if (n < 2) return;
  for (let start = <i32>(n >> 1) - 1; start >= 0; start--) siftDown(<u32>start, n);
  for (let end = n - 1; end > 0; end--) {
    const t = idAt(0);
    idSet(0, idAt(end));
    idSet(end, t);
    siftDown(0, end);
  }
}
function siftDown(root: u32, n: u32): void {
  while (true) {
    let child = root * 2 + 1;
    if (child >= n) return;
    if (child + 1 < n && destLess(idAt(child), idAt(child + 1))) child++;
    if (!destLess(idAt(root), idAt(child))) return;
    const t = idAt(root);
    idSet(root, idAt(child));
    idSet(child, t);
    root = child;
  }
}

function destKey(d: u32): u32 {
  const p = destPtr(d);
  return <u32>load<u16>(p + D_PORT) + foldAddr(p + D_ADDR, <u32>load<u8>(p + D_FAMILY));
}

/** Rebuilds the service's lookup table from its destinations' last non-zero weights. */
export function mhBuild(svc: u32): void {
  const sp = svcPtr(svc);
  const m = load<u32>(sp + S_MH_SIZE);
  const table = tablePtr(load<i32>(sp + S_MH_SLOT));
  const n = nDests(svc);
  let g = 0;
  let mw = 0;
  for (let i: u32 = 0; i < n; i++) {
    const lw = load<i32>(destPtr(destAt(svc, i)) + D_LAST_WEIGHT);
    if (lw > 0) g = g > 0 ? gcd(lw, g) : lw;
    if (lw > mw) mw = lw;
  }
  let rshift = 0;
  if (g >= 1) rshift = max<i32>(0, (32 - <i32>clz<u32>(<u32>(mw / g))) - TAB_BITS);
  // The fill order: sorted ids (insertion-order independent) or the kernel's list order.
  for (let i: u32 = 0; i < n; i++) store<u32>(setupId + (<usize>i << 2), destAt(svc, i));
  if ((load<u32>(sp + S_FLAGS) & SF_MH_LIST_ORDER) == 0) sortIds(n);
  for (let k: u32 = 0; k < n; k++) {
    const d = load<u32>(setupId + (<usize>k << 2));
    const key = destKey(d);
    store<u32>(setupOffset + (<usize>k << 2), hsiphash4(key, MH_KEY1) % m);
    store<u32>(setupSkip + (<usize>k << 2), hsiphash4(key, MH_KEY2) % (m - 1) + 1);
    const lw = load<i32>(destPtr(d) + D_LAST_WEIGHT);
    let turns = g >= 1 ? (lw / g) >> rshift : 0;
    if (turns == 0 && lw != 0) turns = 1;
    store<i32>(setupTurns + (<usize>k << 2), turns);
  }
  populate(table, m, g >= 1 ? n : 0);
  store<u32>(sp + S_BUILDS, load<u32>(sp + S_BUILDS) + 1);
}

function mhSchedule(svc: u32, key: usize): i32 {
  const sp = svcPtr(svc);
  const flags = load<u32>(sp + S_FLAGS);
  const m = load<u32>(sp + S_MH_SIZE);
  const table = tablePtr(load<i32>(sp + S_MH_SLOT));
  const port = (flags & MH_PORT) != 0 && l4Ported(load<u32>(key + FK_PROTO)) ? load<u32>(key + FK_CPORT) & 0xffff : 0;
  const base = port + foldAddr(key + FK_CADDR, load<u32>(key + FK_FAMILY));
  const ihash = hsiphash4(base, MH_KEY1) % m;
  const d = load<i32>(table + (<usize>ihash << 2));
  if (d < 0) return -1;
  if (!unavailable(<u32>d)) return d;
  if ((flags & MH_FALLBACK) == 0) return -1;
  // Rotate the hashed value, as the kernel does, and look again.
  for (let off: u32 = 0; off < m; off++) {
    let roff = off + ihash;
    if (roff >= m) roff -= m;
    const e = load<i32>(table + (<usize>(hsiphash4(roff + base, MH_KEY1) % m) << 2));
    if (e < 0) break;
    if (!unavailable(<u32>e)) return e;
  }
  return -1;
}

function mhInit(svc: u32): i32 {
  const sp = svcPtr(svc);
  const m = load<u32>(sp + S_MH_SIZE);
  if (!isPrime(m) || m > maxTableSize) return E_MH_SIZE;
  if (nDests(svc) > m || nDests(svc) > maxSetup) return E_TOO_MANY_DESTS;
  const slot = claimTable();
  if (slot < 0) return E_NO_MH_TABLE;
  store<i32>(sp + S_MH_SLOT, slot);
  store<u32>(sp + S_BUILDS, 0);
  mhBuild(svc);
  return 0;
}

function mhDone(svc: u32): void {
  const sp = svcPtr(svc);
  releaseTable(load<i32>(sp + S_MH_SLOT));
  store<i32>(sp + S_MH_SLOT, -1);
}

// Rebuilt only when the set or a last non-zero weight changed: quiescing keeps the table.
function mhChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  if (kind != CHANGE_UPD) mhBuild(svc);
}

export const mh = new Scheduler("mh", "mh-fallback,mh-port", mhSchedule, mhInit, mhDone, mhChanged);
