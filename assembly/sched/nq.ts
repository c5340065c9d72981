// nq (ip_vs_nq.c): never queue. The first destination (weight != 0, not overloaded) with no
// active connection wins at once; otherwise the sed rule.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded, activeOf } from "./table";

function nqSchedule(svc: u32, key: usize): i32 {
  const n = nDests(svc);
  let least: i32 = -1;
  let loh: i64 = 0;
  let lw: i64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const d = destAt(svc, i);
    const w = weightOf(d);
    if (overloaded(d) || w == 0) continue;
    const a = activeOf(d);
    if (a == 0) return <i32>d;
    const doh = <i64>(a + 1);
    if (least < 0 || loh * <i64>w > doh * lw) {
      least = <i32>d;
      loh = doh;
      lw = <i64>w;
    }
  }
  return least;
}

export const nq = new Scheduler("nq", "", nqSchedule);
