// twos (ip_vs_twos.c): power of two choices. Two weighted random draws in [0, total + 1)
// over the non-overloaded destinations with weight > 0; the second wins only when its
// overhead / weight is strictly lower. The kernel multiplies in 32-bit int; so do we.

import { Scheduler } from "./scheduler";
import { nDests, destAt, weightOf, overloaded, overhead } from "./table";
import { below } from "./prng";

function twosSchedule(svc: u32, key: usize): i32 {
  const n = nDests(svc);
  let total: i32 = 0;
  let any = false;
  for (let i: u32 = 0; i < n; i++) {
    const d = destAt(svc, i);
    if (overloaded(d)) continue;
    const w = weightOf(d);
    if (w > 0) {
      total += w;
      any = true;
    }
  }
  if (!any) return -1;
  total += 1;
  let r1 = <i32>below(<u32>total);
  let r2 = <i32>below(<u32>total);
  let c1: i32 = -1;
  let c2: i32 = -1;
  let w1: i32 = -1;
  let w2: i32 = -1;
  let oh1: i32 = 0;
  let oh2: i32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const d = destAt(svc, i);
    if (overloaded(d)) continue;
    const w = weightOf(d);
    if (w <= 0) continue;
    r1 -= w;
    r2 -= w;
    if (r1 <= 0 && w1 == -1) {
      c1 = <i32>d;
      w1 = w;
      oh1 = overhead(d);
    }
    if (r2 <= 0 && w2 == -1) {
      c2 = <i32>d;
      w2 = w;
      oh2 = overhead(d);
    }
    if (w1 != -1 && w2 != -1) break;
  }
  if (c2 >= 0 && w2 * oh1 > w1 * oh2) return c2;
  return c1;
}

export const twos = new Scheduler("twos", "", twosSchedule);
