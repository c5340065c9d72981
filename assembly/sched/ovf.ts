// ovf (ip_vs_ovf.c): overflow. The highest-weight destination among those with weight != 0,
// not overloaded and activeconns <= weight; ties keep the first in list order.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded, activeOf } from "./table";

function ovfSchedule(svc: u32, key: usize): i32 {
  const n = nDests(svc);
  let best: i32 = -1;
  let hw: i32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const d = destAt(svc, i);
    const w = weightOf(d);
    if (overloaded(d) || activeOf(d) > w || w == 0) continue;
    if (best < 0 || w > hw) {
      best = <i32>d;
      hw = w;
    }
  }
  return best;
}

export const ovf = new Scheduler("ovf", "", ovfSchedule);
