// lc (ip_vs_lc.c): least overhead (activeconns << 8) + inactconns among destinations that
// are not overloaded and have weight != 0; otherwise weight is ignored. Ties: first in list.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded, overhead } from "./table";

function lcSchedule(svc: u32, key: usize): i32 {
  const n = nDests(svc);
  let least: i32 = -1;
  let loh: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const d = destAt(svc, i);
    if (overloaded(d) || weightOf(d) == 0) continue;
    const doh = <u32>overhead(d); // unsigned in the kernel
    if (least < 0 || doh < loh) {
      least = <i32>d;
      loh = doh;
    }
  }
  return least;
}

export const lc = new Scheduler("lc", "", lcSchedule);
