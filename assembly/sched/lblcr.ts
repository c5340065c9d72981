// lblcr (ip_vs_lblcr.c): locality-based least-connection with replication. The cache maps
// the destination address to a set of servers (newest first). The set's wlc-least member
// serves unless it is missing or lblc-overloaded; then wlc over all servers picks and joins
// the set. A set of more than one member unchanged for the expiration time (24 h) drops its
// most loaded member. Sets hold up to 16 members here; a 17th is not added, as when the
// kernel's allocation fails.

import { Scheduler, CHANGE_DEL } from "./scheduler";
import { weightOf, overloaded, overhead, now, FK_VADDR, FK_FAMILY } from "./table";
import { wlcPick } from "./wlc";
import { lbOverloaded } from "./lblc";
import {
  cacheGet, cacheAdd, cacheReset, cacheFlush, entryPtr, timeBefore, E_LASTUSE, E_LASTMOD,
  E_SET_SIZE, E_SET, SET_CAPACITY, lblcrExpiration, cacheTick, cacheForEach,
} from "./lbcache";

@inline function member(p: usize, i: u32): u32 {
  return load<u32>(p + E_SET + (<usize>i << 2));
}

/** ip_vs_dest_set_min: the weighted least-connection member, or -1. */
function setMin(p: usize): i32 {
  const size = load<u32>(p + E_SET_SIZE);
  let i: u32 = 0;
  let least: u32 = 0;
  for (; i < size; i++) {
    least = member(p, i);
    if (overloaded(least)) continue;
    if (weightOf(least) > 0) break;
  }
  if (i >= size) return -1;
  let loh = <i64>overhead(least);
  for (i++; i < size; i++) {
    const d = member(p, i);
    if (overloaded(d)) continue;
    const doh = <i64>overhead(d);
    if (loh * <i64>weightOf(d) > doh * <i64>weightOf(least)) {
      least = d;
      loh = doh;
    }
  }
  return <i32>least;
}

/** ip_vs_dest_set_max: the weighted most-connection member with weight > 0, or -1. */
function setMax(p: usize): i32 {
  const size = load<u32>(p + E_SET_SIZE);
  let i: u32 = 0;
  let most: u32 = 0;
  for (; i < size; i++) {
    most = member(p, i);
    if (weightOf(most) > 0) break;
  }
  if (i >= size) return -1;
  let moh = <i64>overhead(most);
  for (i++; i < size; i++) {
    const d = member(p, i);
    const doh = <i64>overhead(d);
    if (moh * <i64>weightOf(d) < doh * <i64>weightOf(most) && weightOf(d) > 0) {
      most = d;
      moh = doh;
    }
  }
  return <i32>most;
}

/** Removes d from the set; returns whether it was there. */
function setErase(p: usize, d: u32): bool {
  const size = load<u32>(p + E_SET_SIZE);
  for (let i: u32 = 0; i < size; i++) {
    if (member(p, i) != d) continue;
    for (let k = i + 1; k < size; k++) store<u32>(p + E_SET + (<usize>(k - 1) << 2), member(p, k));
    store<u32>(p + E_SET_SIZE, size - 1);
    return true;
  }
  return false;
}

/** Adds d at the front unless present (check) or the set is full. */
function setInsert(p: usize, d: u32, check: bool): void {
  const size = load<u32>(p + E_SET_SIZE);
  if (check) {
    for (let i: u32 = 0; i < size; i++) if (member(p, i) == d) return;
  }
  if (size >= SET_CAPACITY) return;
  for (let k = size; k > 0; k--) store<u32>(p + E_SET + (<usize>k << 2), member(p, k - 1));
  store<u32>(p + E_SET, d);
  store<u32>(p + E_SET_SIZE, size + 1);
  store<u32>(p + E_LASTMOD, now);
}

function lblcrSchedule(svc: u32, key: usize): i32 {
  const family = load<u32>(key + FK_FAMILY);
  const addr = key + FK_VADDR;
  const e = cacheGet(svc, addr, family);
  if (e != 0) {
    const p = entryPtr(e);
    store<u32>(p + E_LASTUSE, now);
    let d = setMin(p);
    if (load<u32>(p + E_SET_SIZE) > 1 && timeBefore(load<u32>(p + E_LASTMOD) + lblcrExpiration, now)) {
      const m = setMax(p);
      if (m >= 0 && setErase(p, <u32>m)) store<u32>(p + E_LASTMOD, now);
    }
    if (d >= 0 && !lbOverloaded(svc, <u32>d)) return d;
    d = wlcPick(svc);
    if (d < 0) return -1;
    setInsert(p, <u32>d, true);
    return d;
  }
  const d = wlcPick(svc);
  if (d < 0) return -1;
  const n = cacheAdd(svc, addr, family, now);
  if (n != 0) setInsert(entryPtr(n), <u32>d, false);
  return d;
}

function lblcrInit(svc: u32): i32 {
  cacheReset(svc);
  return 0;
}

// A removed server leaves every set at once (the kernel keeps it there, unavailable).
function lblcrChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  if (kind == CHANGE_DEL) cacheForEach(svc, eraseFromSet, dest);
}

function eraseFromSet(entry: usize, dest: u32): void {
  setErase(entry, dest);
}

function lblcrTick(svc: u32, t: u32): void {
  cacheTick(svc, t, lblcrExpiration);
}

export const lblcr = new Scheduler("lblcr", "", lblcrSchedule, lblcrInit, cacheFlush, lblcrChanged, lblcrTick);
