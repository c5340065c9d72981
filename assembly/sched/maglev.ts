// Maglev table population (NSDI'16 section 3.4, as ip_vs_mh.c does it): every destination
// walks its permutation (offset + j * skip) mod M; in each round it claims `turns` free
// slots, in order, until all M slots are taken. Tables come from a pool carved at start-up;
// the setup arrays and the taken map are shared scratch (builds are control-path only).

export let tableCount: u32 = 0;
export let maxTableSize: u32 = 0;
export let maxSetup: u32 = 0;
let tablesBase: usize = 0;
let slotUsed: usize = 0; // u8 per table
let takenMap: usize = 0; // u8 per slot: a byte map probes faster than a bitmap
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
  takenMap = heap.alloc(<usize>maxSize);
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
  memory.fill(takenMap, 0, <usize>m);
  let filled: u32 = 0;
  let claimed: i32 = 0; // slots the current destination claimed this round
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
      while (load<u8>(takenMap + <usize>c) != 0) {
        c += skip;
        if (c >= m) c -= m;
      }
      store<u32>(permAt, c);
      store<u8>(takenMap + <usize>c, 1);
      store<i32>(table + (<usize>c << 2), load<i32>(setupId + (<usize>k << 2)));
      if (++filled == m) return;
      if (++claimed >= turns) {
        claimed = 0;
        k++;
      }
    }
  }
}
