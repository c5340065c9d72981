// fo (ip_vs_fo.c): weighted fail-over, the non-overloaded destination with the strictly
// highest weight (> 0); ties keep the first in list order.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded } from "./table";

function foSchedule(svc: u32, key: usize): i32 {
  const n = nDests(svc);
  let best: i32 = -1;
  let hw: i32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const d = destAt(svc, i);
    const w = weightOf(d);
    if (!overloaded(d) && w > hw) {
      best = <i32>d;
      hw = w;
    }
  }
  return best;
}

export const fo = new Scheduler("fo", "", foSchedule);
