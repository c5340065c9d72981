// ABI of the schedulers: start-up, services and destinations (ipvsadm -A/-E/-D, -a/-e/-d),
// connection counters with the overload rule, scheduling (one flow or a batch), time, the
// twos PRNG seed, and inspection for the host (records, Maglev tables, names).

import {
  initSched, keysBase, resultsBase, batchKeys, namesBase, addrBase, NAMES_SIZE,
} from "../sched/init";
import {
  servicesBase, destsBase, destsUsed, orderPtr, svcPtr, destPtr, connBind, connSetActive,
  setNow, DEST_SIZE, SVC_SIZE, FK_SIZE, S_MH_SLOT, S_BUILDS, S_CACHE_ENTRIES, D_SERVICE,
  maxDests, NONE, D_ACTIVE, D_INACTIVE, D_PERSIST, D_FLAGS, DF_OVERLOAD,
} from "../sched/table";
import {
  scheduleFlow, serviceCreate, serviceEdit, serviceDelete, destAdd as addDest, destEdit as editDest,
  destRemove as removeDest, destUnbind, tickAll, writeNames,
} from "../sched/service";
import { seed } from "../sched/prng";
import { tablePtr } from "../sched/maglev";
import { setExpirations, poolUsed } from "../sched/lbcache";

export function schedInit(
  maxServices: u32, maxDests: u32, destsPerService: u32, mhTables: u32, mhMaxSize: u32,
  cacheEntries: u32, batchKeys: u32,
): u32 {
  return initSched(maxServices, maxDests, destsPerService, mhTables, mhMaxSize, cacheEntries, batchKeys);
}

export function svcCreate(sched: u32, flags: u32, mhSize: u32, param: u32): i32 {
  return serviceCreate(sched, flags, mhSize, param);
}
export function svcEdit(svc: u32, sched: u32, flags: u32, mhSize: u32, param: u32): i32 {
  return serviceEdit(svc, sched, flags, mhSize, param);
}
export function svcDelete(svc: u32): i32 {
  return serviceDelete(svc);
}
/** The address is read from schedAddrPtr() (16 bytes, IPv4 in the first 4). */
export function destAdd(svc: u32, family: u32, port: u32, weight: i32, upper: u32, lower: u32): i32 {
  return addDest(svc, addrBase, family, port, weight, upper, lower);
}
export function destEdit(dest: u32, weight: i32, upper: u32, lower: u32): i32 {
  return editDest(dest, weight, upper, lower);
}
export function destRemove(dest: u32): i32 {
  return removeDest(dest);
}

// Connection counters: kind 0 active, 1 inactive, 2 persistence template.
export function destConnBind(dest: u32, kind: u32): void {
  if (dest < maxDests && load<u32>(destPtr(dest) + D_SERVICE) != NONE) connBind(dest, kind);
}
export function destConnUnbind(dest: u32, kind: u32): void {
  destUnbind(dest, kind);
}
/** A connection moved between inactive and active (TCP state change). */
export function destConnSetActive(dest: u32, active: u32): void {
  if (dest < maxDests && load<u32>(destPtr(dest) + D_SERVICE) != NONE) connSetActive(dest, active != 0);
}
/** Simulation and test hook: sets the counters and the OVERLOAD flag directly. */
export function destSetLoad(dest: u32, active: i32, inactive: i32, persist: i32, overload: u32): void {
  if (dest >= maxDests || load<u32>(destPtr(dest) + D_SERVICE) == NONE) return;
  const p = destPtr(dest);
  store<i32>(p + D_ACTIVE, active);
  store<i32>(p + D_INACTIVE, inactive);
  store<i32>(p + D_PERSIST, persist);
  const f = load<u32>(p + D_FLAGS);
  store<u32>(p + D_FLAGS, overload != 0 ? f | DF_OVERLOAD : f & ~DF_OVERLOAD);
}

/** Destination id for the flow key at keyPtr, or -1. */
export function schedule(svc: u32, keyPtr: usize): i32 {
  return scheduleFlow(svc, keyPtr);
}
/** Schedules count flow keys from schedKeysPtr() into schedResultsPtr(); returns hits. */
export function scheduleBatch(svc: u32, count: u32): u32 {
  if (count > batchKeys) count = batchKeys;
  let hits: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = scheduleFlow(svc, keysBase + <usize>i * FK_SIZE);
    store<i32>(resultsBase + (<usize>i << 2), d);
    if (d >= 0) hits++;
  }
  return hits;
}
/** Schedules the same batch `rounds` times (benchmarks: no host call per pick). */
export function scheduleRounds(svc: u32, count: u32, rounds: u32): u32 {
  let hits: u32 = 0;
  for (let r: u32 = 0; r < rounds; r++) hits += scheduleBatch(svc, count);
  return hits;
}

export function schedSetNow(nowMs: u32): void {
  setNow(nowMs);
}
/** Runs periodic scheduler work due at nowMs (lblc/lblcr collectors every 60 s). */
export function schedTick(nowMs: u32): void {
  tickAll(nowMs);
}
export function schedSeed(lo: u32, hi: u32): void {
  seed(lo, hi);
}
export function schedSetExpiration(lblcMs: u32, lblcrMs: u32): void {
  setExpirations(lblcMs, lblcrMs);
}

export function schedKeysPtr(): usize { return keysBase; }
export function schedResultsPtr(): usize { return resultsBase; }
export function schedBatchKeys(): u32 { return batchKeys; }
export function schedAddrPtr(): usize { return addrBase; }
export function schedKeyBytes(): u32 { return FK_SIZE; }
export function schedServicesPtr(): usize { return servicesBase; }
export function schedServiceBytes(): u32 { return SVC_SIZE; }
export function schedDestsPtr(): usize { return destsBase; }
export function schedDestBytes(): u32 { return DEST_SIZE; }
export function schedDestsUsed(): u32 { return destsUsed; }
export function schedOrderPtr(svc: u32): usize { return orderPtr(svc); }
export function schedCacheEntries(svc: u32): u32 { return load<u32>(svcPtr(svc) + S_CACHE_ENTRIES); }
export function schedCachePoolUsed(): u32 { return poolUsed; }
/** Pointer to the service's Maglev lookup table (i32 destination ids), or 0. */
export function mhTablePtr(svc: u32): usize {
  const slot = load<i32>(svcPtr(svc) + S_MH_SLOT);
  return slot < 0 ? 0 : tablePtr(slot);
}
export function mhBuildCount(svc: u32): u32 { return load<u32>(svcPtr(svc) + S_BUILDS); }
/** Writes the scheduler names to schedNamesPtr(); returns the byte count. */
export function schedNames(): u32 { return writeNames(namesBase, NAMES_SIZE); }
export function schedNamesPtr(): usize { return namesBase; }
