// dh (ip_vs_dh.c): destination hashing over 256 buckets, one destination per bucket in
// rotation (weight ignored), refilled when a destination is added or removed (the kernel
// has no edit hook). Key: hash_32(ntohl(fold(daddr)), 8); the destination must have
// weight > 0 and not be overloaded.

import { Scheduler, noDone, CHANGE_ADD, CHANGE_DEL } from "./scheduler";
import { unavailable, statePtr, FK_VADDR, FK_FAMILY } from "./table";
import { hash32, foldAddr } from "./hash";
import { fillBuckets } from "./sh";

function dhSchedule(svc: u32, key: usize): i32 {
  const h = hash32(foldAddr(key + FK_VADDR, load<u32>(key + FK_FAMILY)), 8);
  const d = load<i32>(statePtr(svc) + (<usize>h << 2));
  if (d < 0 || unavailable(<u32>d)) return -1;
  return d;
}

function dhInit(svc: u32): i32 {
  fillBuckets(svc, false);
  return 0;
}
function dhChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  if (kind == CHANGE_ADD || kind == CHANGE_DEL) fillBuckets(svc, false);
}

export const dh = new Scheduler("dh", "", dhSchedule, dhInit, noDone, dhChanged);
