// lblc (ip_vs_lblc.c): locality-based least-connection. A cache maps the packet's
// destination address (the virtual address) to a real server; a hit is kept unless its
// server was removed, has weight <= 0, or is "overloaded" in lblc's own sense (activeconns
// > weight while some server has activeconns * 2 < weight). Otherwise wlc picks, and the
// cache is updated.

import { Scheduler, CHANGE_DEL } from "./scheduler";
import { nDests, destAt, weightOf, activeOf, now, FK_VADDR, FK_FAMILY } from "./table";
import { wlcPick } from "./wlc";
import {
  cacheGet, cacheAdd, cacheDelete, cacheReset, cacheFlush, entryPtr, entryBucket, E_LASTUSE,
  E_DEST, lblcExpiration, cacheTick, cacheForEach,
} from "./lbcache";

/** lblc/lblcr's is_overloaded: busier than its weight while another server is half idle. */
export function lbOverloaded(svc: u32, d: u32): bool {
  if (activeOf(d) > weightOf(d)) {
    const n = nDests(svc);
    for (let i: u32 = 0; i < n; i++) {
      const m = destAt(svc, i);
      if (activeOf(m) * 2 < weightOf(m)) return true;
    }
  }
  return false;
}

function lblcSchedule(svc: u32, key: usize): i32 {
  const family = load<u32>(key + FK_FAMILY);
  const addr = key + FK_VADDR;
  const e = cacheGet(svc, addr, family);
  if (e != 0) {
    const p = entryPtr(e);
    store<u32>(p + E_LASTUSE, now);
    const d = load<i32>(p + E_DEST);
    if (d >= 0 && weightOf(<u32>d) > 0 && !lbOverloaded(svc, <u32>d)) return d;
  }
  const d = wlcPick(svc);
  if (d < 0) return -1;
  if (e != 0) {
    if (load<i32>(entryPtr(e) + E_DEST) == d) return d;
    cacheDelete(svc, entryBucket(e, family), e);
  }
  const n = cacheAdd(svc, addr, family, now);
  if (n != 0) store<i32>(entryPtr(n) + E_DEST, d);
  return d;
}

function lblcInit(svc: u32): i32 {
  cacheReset(svc);
  return 0;
}

// A removed server stays in the kernel's entries, unavailable, until they are replaced.
function lblcChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  if (kind == CHANGE_DEL) cacheForEach(svc, markUnavailable, dest);
}

function markUnavailable(entry: usize, dest: u32): void {
  if (load<i32>(entry + E_DEST) == <i32>dest) store<i32>(entry + E_DEST, -1);
}

function lblcTick(svc: u32, t: u32): void {
  cacheTick(svc, t, lblcExpiration);
}

export const lblc = new Scheduler("lblc", "", lblcSchedule, lblcInit, cacheFlush, lblcChanged, lblcTick);
