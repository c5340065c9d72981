// Maglev table population (NSDI'16 section 3.4, as ip_vs_mh.c does it): every destination
// walks its permutation (offset + j * skip) mod M; in each round it claims `turns` free
// slots, in order, until all M slots are taken. Tables come from a pool carved at start-up;
// the setup arrays and the taken-bitmap are shared scratch (builds are control-path only).

export let tableCount: u32 = 0;
export let maxTableSize: u32 = 0;
export let maxSetup: u32 = 0;
let tablesBase: usize = 0;
let slotUsed: usize = 0; // u8 per table
let bitmap: usize = 0;
export let setupOffset: usize = 0; // u32 per destination
export let setupSkip: usize = 0;
export let setupTurns: usize = 0;
export let setupId: usize = 0; // what the slot receives
let setupPerm: usize = 0;

export function initMaglev(tables: u32, maxSize: u32, setupCapacity: u32): void {
  tableCount = tables;
  maxTableSize = maxSize;
  maxSetup = setupCapacity;
  if (tables > 0) tablesBase = heap.alloc(<usize>tables * maxSize * 4);
  slotUsed = heap.alloc(<usize>max<u32>(tables, 1));
  memory.fill(slotUsed, 0, <usize>max<u32>(tables, 1));
  bitmap = heap.alloc(((<usize>maxSize + 63) >> 6) << 3);
  setupOffset = heap.alloc(<usize>setupCapacity * 4);
  setupSkip = heap.alloc(<usize>setupCapacity * 4);
  setupTurns = heap.alloc(<usize>setupCapacity * 4);
  setupId = heap.alloc(<usize>setupCapacity * 4);
  setupPerm = heap.alloc(<usize>setupCapacity * 4);
}

export function claimTable(): i32 {
  for (let i: u32 = 0; i < tableCount; i++) {
    if (load<u8>(slotUsed + i) == 0) {
      store<u8>(slotUsed + i, 1);
      return <i32>i;
    }
  }
  return -1;
}
export function releaseTable(slot: i32): void {
  if (slot >= 0) store<u8>(slotUsed + <usize>slot, 0);
}
export function freeTables(): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < tableCount; i++) if (load<u8>(slotUsed + i) == 0) n++;
  return n;
}
@inline export function tablePtr(slot: i32): usize {
  return tablesBase + <usize>slot * maxTableSize * 4;
}

export function isPrime(m: u32): bool {
  if (m < 2) return false;
  if (m < 4) return true;
  if ((m & 1) == 0) return false;
  for (let f: u32 = 3; f * f <= m; f += 2) if (m % f == 0) return false;
  return true;
}

/**
 * Fills the M entries at `table` (i32 each) from setup arrays [0, n): offset, skip, turns
 * (0 = takes no slot) and id. Every slot is claimed when some destination has turns >= 1;
 * otherwise the table is emptied (-1).
 */
export function populate(table: usize, m: u32, n: u32): void {
  let anyTurns = false;
  for (let k: u32 = 0; k < n; k++) {
    store<u32>(setupPerm + (<usize>k << 2), load<u32>(setupOffset + (<usize>k << 2)));
    if (load<i32>(setupTurns + (<usize>k << 2)) > 0) anyTurns = true;
  }
  if (!anyTurns) {
    for (let i: u32 = 0; i < m; i++) store<i32>(table + (<usize>i << 2), -1);
    return;
  }
  const words = (<usize>m + 63) >> 6;
  memory.fill(bitmap, 0, words << 3);
  let filled: u32 = 0;
  let taken: i32 = 0; // slots the current destination claimed this round
  while (true) {
    for (let k: u32 = 0; k < n; ) {
      const turns = load<i32>(setupTurns + (<usize>k << 2));
      if (turns < 1) {
        k++;
        continue;
      }
      const permAt = setupPerm + (<usize>k << 2);
      const skip = load<u32>(setupSkip + (<usize>k << 2));
      let c = load<u32>(permAt);
      while ((load<u64>(bitmap + ((<usize>c >> 6) << 3)) & (<u64>1 << (<u64>c & 63))) != 0) {
        c += skip;
        if (c >= m) c -= m;
      }
      store<u32>(permAt, c);
      const w = bitmap + ((<usize>c >> 6) << 3);
      store<u64>(w, load<u64>(w) | (<u64>1 << (<u64>c & 63)));
      store<i32>(table + (<usize>c << 2), load<i32>(setupId + (<usize>k << 2)));
      if (++filled == m) return;
      if (++taken >= turns) {
        taken = 0;
        k++;
      }
    }
  }
}
