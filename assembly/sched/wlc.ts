// wlc (ip_vs_wlc.c), the default scheduler: least overhead / weight, compared without
// division as loh * w(d) > doh * w(least) in 64 bits. The first candidate must have
// weight > 0; later weight-0 destinations can never win the comparison. lblc and lblcr
// fall back to exactly this rule, so it is exported.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded, overhead } from "./table";

export function wlcPick(svc: u32): i32 {
  const n = nDests(svc);
  let i: u32 = 0;
  let least: u32 = 0;
  for (; i < n; i++) {
    least = destAt(svc, i);
    if (!overloaded(least) && weightOf(least) > 0) break;
  }
  if (i >= n) return -1;
  let loh = <i64>overhead(least);
  let lw = <i64>weightOf(least);
  for (i++; i < n; i++) {
    const d = destAt(svc, i);
    if (overloaded(d)) continue;
    const doh = <i64>overhead(d);
    if (loh * <i64>weightOf(d) > doh * lw) {
      least = d;
      loh = doh;
      lw = <i64>weightOf(d);
    }
  }
  return <i32>least;
}

function wlcSchedule(svc: u32, key: usize): i32 {
  return wlcPick(svc);
}

export const wlc = new Scheduler("wlc", "", wlcSchedule);
