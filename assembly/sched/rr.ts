// rr (ip_vs_rr.c): the next destination after the last one chosen, circularly, that has
// weight > 0 and is not overloaded. State: the last position (-1 = the list head).

import { Scheduler, CHANGE_ADD, CHANGE_DEL, noDone } from "./scheduler";
import { svcPtr, nDests, destAt, weightOf, overloaded, S_A } from "./table";

function rrSchedule(svc: u32, key: usize): i32 {
  const sp = svcPtr(svc);
  const n = <i32>nDests(svc);
  const last = load<i32>(sp + S_A);
  // From the head: one pass over 0..n-1; else last+1..n-1 then 0..last.
  let p = last + 1;
  for (let k = 0; k < n; k++, p++) {
    if (p >= n) p -= n;
    const d = destAt(svc, <u32>p);
    if (!overloaded(d) && weightOf(d) > 0) {
      store<i32>(sp + S_A, p);
      return <i32>d;
    }
  }
  return -1;
}

function rrInit(svc: u32): i32 {
  store<i32>(svcPtr(svc) + S_A, -1);
  return 0;
}

// The kernel's pointer is a list node, so it stays on the same destination when the list
// changes around it. Here it is a position: an add at the head (pos 0) shifts it by one; a
// removal before it shifts it back, and removing the last pick moves it to its predecessor
// (ip_vs_rr_del_dest; the head if it was first).
function rrChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  const sp = svcPtr(svc);
  const last = load<i32>(sp + S_A);
  if (kind == CHANGE_ADD) {
    if (last >= <i32>pos) store<i32>(sp + S_A, last + 1);
  } else if (kind == CHANGE_DEL) {
    if (last >= <i32>pos) store<i32>(sp + S_A, last - 1);
  }
}

export const rr = new Scheduler("rr", "", rrSchedule, rrInit, noDone, rrChanged);
