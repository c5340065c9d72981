// The locality caches of lblc and lblcr (ip_vs_lblc.c / ip_vs_lblcr.c): per service, 1024
// hash buckets keyed by hash_32(ntohl(fold(daddr)), 10), new entries at the head of their
// chain, at most 16384 + 1 entries (the kernel refuses a new one when entries > max_size).
// Entries come from one pool carved at start-up; an empty pool behaves like the kernel's
// failed GFP_ATOMIC allocation: the chosen destination is used without caching.
// The periodic collector (every 60 s) is run by the host through schedTick(now).

import { statePtr, svcPtr, S_CACHE_ENTRIES, S_CACHE_ROVER, S_CACHE_COUNTER, S_CACHE_LASTCHECK, now } from "./table";
import { hash32, foldAddr } from "./hash";

export const ENTRY_SIZE: u32 = 96;
export const E_NEXT: u32 = 0; // u32 next in chain (index + 1, 0 = end); free-list link
export const E_LASTUSE: u32 = 4; // u32 ms
export const E_DEST: u32 = 8; // lblc: i32 dest id (-1 = its dest was removed)
export const E_LASTMOD: u32 = 8; // lblcr: u32 ms, last change of the set
export const E_SET_SIZE: u32 = 12; // lblcr: u32 members
export const E_ADDR: u32 = 16; // 16 bytes, zero-padded for IPv4
export const E_SET: u32 = 32; // lblcr: u32 dest ids, newest first (SET_CAPACITY of them)
export const SET_CAPACITY: u32 = 16;

export const TAB_BITS: u32 = 10;
export const TAB_SIZE: u32 = 1 << TAB_BITS;
export const MAX_SIZE: u32 = TAB_SIZE * 16;
export const CHECK_INTERVAL: u32 = 60 * 1000;
export const ENTRY_TIMEOUT: u32 = 6 * 60 * 1000;
export const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/** The lblc_expiration / lblcr_expiration sysctls (ms), 24 h by default. */
export let lblcExpiration: u32 = 24 * 60 * 60 * 1000;
export let lblcrExpiration: u32 = 24 * 60 * 60 * 1000;
export function setExpirations(lblcMs: u32, lblcrMs: u32): void {
  lblcExpiration = lblcMs;
  lblcrExpiration = lblcrMs;
}

export let poolBase: usize = 0;
export let poolCapacity: u32 = 0;
let freeHead: u32 = 0;
export let poolUsed: u32 = 0;

export function initCachePool(entries: u32): void {
  poolCapacity = entries;
  if (entries == 0) return;
  poolBase = heap.alloc(<usize>entries * ENTRY_SIZE);
  for (let i: u32 = 0; i < entries; i++) {
    store<u32>(entryPtr(i + 1) + E_NEXT, i + 2 <= entries ? i + 2 : 0);
  }
  freeHead = 1;
}

/** Entry by its index + 1 (0 = none). */
@inline export function entryPtr(e: u32): usize {
  return poolBase + <usize>(e - 1) * ENTRY_SIZE;
}

/** Wrap-safe a < b for u32 millisecond clocks (the kernel's time_before). */
@inline export function timeBefore(a: u32, b: u32): bool {
  return <i32>(a - b) < 0;
}

@inline export function bucketOf(addr: usize, family: u32): u32 {
  return hash32(foldAddr(addr, family), TAB_BITS);
}

function addrEqual(e: usize, addr: usize, family: u32): bool {
  if (family == 6) {
    return load<u64>(e + E_ADDR) == load<u64>(addr) && load<u64>(e + E_ADDR + 8) == load<u64>(addr + 8);
  }
  return load<u32>(e + E_ADDR) == load<u32>(addr);
}

/** The entry for addr (index + 1), or 0. */
export function cacheGet(svc: u32, addr: usize, family: u32): u32 {
  let e = load<u32>(statePtr(svc) + (<usize>bucketOf(addr, family) << 2));
  while (e != 0) {
    const p = entryPtr(e);
    if (addrEqual(p, addr, family)) return e;
    e = load<u32>(p + E_NEXT);
  }
  return 0;
}

/** A new entry for addr at the head of its chain (index + 1), or 0 if full / pool empty. */
export function cacheAdd(svc: u32, addr: usize, family: u32, now: u32): u32 {
  const sp = svcPtr(svc);
  if (load<u32>(sp + S_CACHE_ENTRIES) > MAX_SIZE || freeHead == 0) return 0;
  const e = freeHead;
  const p = entryPtr(e);
  freeHead = load<u32>(p + E_NEXT);
  poolUsed++;
  memory.fill(p, 0, ENTRY_SIZE);
  if (family == 6) {
    store<u64>(p + E_ADDR, load<u64>(addr));
    store<u64>(p + E_ADDR + 8, load<u64>(addr + 8));
  } else {
    store<u32>(p + E_ADDR, load<u32>(addr));
  }
  store<u32>(p + E_LASTUSE, now);
  const head = statePtr(svc) + (<usize>bucketOf(addr, family) << 2);
  store<u32>(p + E_NEXT, load<u32>(head));
  store<u32>(head, e);
  store<u32>(sp + S_CACHE_ENTRIES, load<u32>(sp + S_CACHE_ENTRIES) + 1);
  return e;
}

/** Unlinks entry e from bucket b and returns it to the pool. */
export function cacheDelete(svc: u32, b: u32, e: u32): void {
  let link = statePtr(svc) + (<usize>b << 2);
  let cur = load<u32>(link);
  while (cur != 0 && cur != e) {
    link = entryPtr(cur) + E_NEXT;
    cur = load<u32>(link);
  }
  if (cur == 0) return;
  const p = entryPtr(e);
  store<u32>(link, load<u32>(p + E_NEXT));
  store<u32>(p + E_NEXT, freeHead);
  freeHead = e;
  poolUsed--;
  const sp = svcPtr(svc);
  store<u32>(sp + S_CACHE_ENTRIES, load<u32>(sp + S_CACHE_ENTRIES) - 1);
}

/** Bucket of an existing entry (its stored address hashes there). */
export function entryBucket(e: u32, family: u32): u32 {
  return bucketOf(entryPtr(e) + E_ADDR, family);
}

export function cacheReset(svc: u32): void {
  memory.fill(statePtr(svc), 0, TAB_SIZE * 4);
  const sp = svcPtr(svc);
  store<u32>(sp + S_CACHE_ENTRIES, 0);
  store<u32>(sp + S_CACHE_ROVER, 0);
  store<u32>(sp + S_CACHE_COUNTER, 1);
  store<u32>(sp + S_CACHE_LASTCHECK, now); // the timer starts with the cache
}

/** The kernel's timer fires every 60 s; the host's tick runs it when it is due. */
export function cacheTick(svc: u32, t: u32, expiration: u32): void {
  const sp = svcPtr(svc);
  if (timeBefore(t, load<u32>(sp + S_CACHE_LASTCHECK) + CHECK_INTERVAL)) return;
  store<u32>(sp + S_CACHE_LASTCHECK, t);
  cacheCheckExpire(svc, t, expiration);
}

/** Calls visit(entry pointer, arg) for every cache entry of the service. */
export function cacheForEach(svc: u32, visit: (entry: usize, arg: u32) => void, arg: u32): void {
  const heads = statePtr(svc);
  for (let b: u32 = 0; b < TAB_SIZE; b++) {
    let e = load<u32>(heads + (<usize>b << 2));
    while (e != 0) {
      const p = entryPtr(e);
      e = load<u32>(p + E_NEXT);
      visit(p, arg);
    }
  }
}

/** Returns every entry of the service to the pool. */
export function cacheFlush(svc: u32): void {
  const heads = statePtr(svc);
  for (let b: u32 = 0; b < TAB_SIZE; b++) {
    let e = load<u32>(heads + (<usize>b << 2));
    while (e != 0) {
      const p = entryPtr(e);
      const next = load<u32>(p + E_NEXT);
      store<u32>(p + E_NEXT, freeHead);
      freeHead = e;
      poolUsed--;
      e = next;
    }
  }
  cacheReset(svc);
}

/** Deletes entries of bucket b not used since `timeout` ms before now; returns how many. */
function expireBucket(svc: u32, b: u32, now: u32, timeout: u32): i32 {
  let removed = 0;
  let link = statePtr(svc) + (<usize>b << 2);
  let e = load<u32>(link);
  while (e != 0) {
    const p = entryPtr(e);
    const next = load<u32>(p + E_NEXT);
    if (timeBefore(now, load<u32>(p + E_LASTUSE) + timeout)) {
      link = p + E_NEXT;
    } else {
      store<u32>(link, next);
      store<u32>(p + E_NEXT, freeHead);
      freeHead = e;
      poolUsed--;
      removed++;
    }
    e = next;
  }
  const sp = svcPtr(svc);
  store<u32>(sp + S_CACHE_ENTRIES, load<u32>(sp + S_CACHE_ENTRIES) - removed);
  return removed;
}

/** One run of the kernel's periodic check_expire timer for this service's cache. */
export function cacheCheckExpire(svc: u32, now: u32, expiration: u32): void {
  const sp = svcPtr(svc);
  const counter = load<u32>(sp + S_CACHE_COUNTER);
  let j = load<u32>(sp + S_CACHE_ROVER);
  if (counter % COUNT_FOR_FULL_EXPIRATION == 0) {
    // full check: drop entries idle for the whole expiration (24 h by default)
    for (let i: u32 = 0; i < TAB_SIZE; i++) {
      j = (j + 1) & (TAB_SIZE - 1);
      expireBucket(svc, j, now, expiration);
    }
    store<u32>(sp + S_CACHE_ROVER, j);
    store<u32>(sp + S_CACHE_COUNTER, 1);
    return;
  }
  const entries = load<u32>(sp + S_CACHE_ENTRIES);
  if (entries <= MAX_SIZE) {
    store<u32>(sp + S_CACHE_COUNTER, counter + 1);
    return;
  }
  let goal = <i32>((entries - MAX_SIZE) * 4 / 3);
  if (goal > <i32>(MAX_SIZE / 2)) goal = <i32>(MAX_SIZE / 2);
  for (let i: u32 = 0; i < TAB_SIZE; i++) {
    j = (j + 1) & (TAB_SIZE - 1);
    goal -= expireBucket(svc, j, now, ENTRY_TIMEOUT);
    if (goal <= 0) break;
  }
  store<u32>(sp + S_CACHE_ROVER, j);
}
