// sed (ip_vs_sed.c): shortest expected delay, least (activeconns + 1) / weight; inactive
// connections ignored. Same comparison shape as wlc.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded, activeOf } from "./table";

function sedSchedule(svc: u32, key: usize): i32 {
  const n = nDests(svc);
  let i: u32 = 0;
  let least: u32 = 0;
  for (; i < n; i++) {
    least = destAt(svc, i);
    if (!overloaded(least) && weightOf(least) > 0) break;
  }
  if (i >= n) return -1;
  let loh = <i64>(activeOf(least) + 1);
  let lw = <i64>weightOf(least);
  for (i++; i < n; i++) {
    const d = destAt(svc, i);
    if (overloaded(d)) continue;
    const doh = <i64>(activeOf(d) + 1);
    if (loh * <i64>weightOf(d) > doh * lw) {
      least = d;
      loh = doh;
      lw = <i64>weightOf(d);
    }
  }
  return <i32>least;
}

export const sed = new Scheduler("sed", "", sedSchedule);
