// Carves every scheduler region once, after lvsInit: services, destinations, their order
// arrays and state blocks, the Maglev table pool, the lblc/lblcr entry pool, and scratch
// for flow keys, batch results and the scheduler names.

import { initTables, servicesBase, FK_SIZE } from "./table";
import { initMaglev } from "./maglev";
import { initCachePool } from "./lbcache";

export const SCHED_INIT_OK: u32 = 0;
export const SCHED_INIT_ALREADY: u32 = 1;
export const SCHED_INIT_BAD_ARGS: u32 = 2;

export const NAMES_SIZE: u32 = 2048;
export let keysBase: usize = 0; // batchKeys flow keys
export let resultsBase: usize = 0; // batchKeys i32 results
export let batchKeys: u32 = 0;
export let namesBase: usize = 0;
export let addrBase: usize = 0; // 16 bytes: a destination address being added

export function initSched(
  services: u32, dests: u32, perService: u32, mhTables: u32, mhMaxSize: u32, cacheEntries: u32, keys: u32,
): u32 {
  if (servicesBase != 0) return SCHED_INIT_ALREADY;
  // Limited by memory only; these bounds keep every size below in 32 bits.
  if (services < 1 || services > 1 << 20) return SCHED_INIT_BAD_ARGS;
  if (dests < 1 || dests > 1 << 20 || perService < 1 || perService > dests) return SCHED_INIT_BAD_ARGS;
  if (mhTables > 1024 || mhMaxSize < 2 || mhMaxSize > 1 << 24) return SCHED_INIT_BAD_ARGS;
  if (cacheEntries > 1 << 24 || keys < 1 || keys > 1 << 20) return SCHED_INIT_BAD_ARGS;
  initTables(services, dests, perService);
  initMaglev(mhTables, mhMaxSize, perService);
  initCachePool(cacheEntries);
  batchKeys = keys;
  keysBase = heap.alloc(<usize>keys * FK_SIZE);
  memory.fill(keysBase, 0, <usize>keys * FK_SIZE);
  resultsBase = heap.alloc(<usize>keys * 4);
  namesBase = heap.alloc(NAMES_SIZE);
  addrBase = heap.alloc(16);
  return SCHED_INIT_OK;
}
