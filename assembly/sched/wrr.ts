// wrr (ip_vs_wrr.c): passes over the list with a falling current weight cw; a destination
// is picked when its weight >= cw. State {cl, cw, mw, di}: di = gcd of the positive weights
// (1 if none), mw = max weight - (di - 1). The walk, its stop rules and the reset on every
// destination change follow the kernel step by step.

import { Scheduler, noDone } from "./scheduler";
import { svcPtr, nDests, destAt, weightOf, overloaded, S_A, S_B, S_C, S_D } from "./table";

function gcd(a: i32, b: i32): i32 {
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

function gcdWeight(svc: u32): i32 {
  let g = 0;
  const n = nDests(svc);
  for (let i: u32 = 0; i < n; i++) {
    const w = weightOf(destAt(svc, i));
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
  }
  return g != 0 ? g : 1;
}

function maxWeight(svc: u32): i32 {
  let m = 0;
  const n = nDests(svc);
  for (let i: u32 = 0; i < n; i++) m = max(m, weightOf(destAt(svc, i)));
  return m;
}

function wrrInit(svc: u32): i32 {
  const sp = svcPtr(svc);
  const di = gcdWeight(svc);
  const mw = maxWeight(svc) - (di - 1);
  store<i32>(sp + S_A, -1);
  store<i32>(sp + S_B, mw);
  store<i32>(sp + S_C, mw);
  store<i32>(sp + S_D, di);
  return 0;
}

function wrrChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  const sp = svcPtr(svc);
  const di = gcdWeight(svc);
  const mw = maxWeight(svc) - (di - 1);
  let cw = load<i32>(sp + S_B);
  if (cw > mw || cw == 0) cw = mw;
  else if (di > 1) cw = (cw / di) * di + 1;
  store<i32>(sp + S_A, -1);
  store<i32>(sp + S_B, cw);
  store<i32>(sp + S_C, mw);
  store<i32>(sp + S_D, di);
}

function wrrSchedule(svc: u32, key: usize): i32 {
  const sp = svcPtr(svc);
  const n = <i32>nDests(svc);
  const mw = load<i32>(sp + S_C);
  const di = load<i32>(sp + S_D);
  let cw = load<i32>(sp + S_B);
  let pos = load<i32>(sp + S_A); // -1 = head
  if (mw == 0) return -1;
  const last = pos;
  let stop = -2; // none
  let lastPass = false;
  let restarted = false;
  while (true) {
    for (let i = pos + 1; i < n; i++) {
      const d = destAt(svc, <u32>i);
      if (!overloaded(d) && weightOf(d) >= cw) {
        store<i32>(sp + S_A, i);
        store<i32>(sp + S_B, cw);
        return <i32>d;
      }
      if (i == stop) {
        store<i32>(sp + S_A, i);
        store<i32>(sp + S_B, cw);
        return -1;
      }
    }
    pos = -1;
    cw -= di;
    if (cw <= 0) {
      cw = mw;
      // Stop after a full pass at weight >= 1 (or when the first pass began at the head).
      if (lastPass || last == -1) {
        store<i32>(sp + S_A, -1);
        store<i32>(sp + S_B, cw);
        return -1;
      }
      restarted = true;
    }
    lastPass = cw <= di;
    if (lastPass && restarted && last != -1) stop = last;
  }
  return -1;
}

export const wrr = new Scheduler("wrr", "", wrrSchedule, wrrInit, noDone, wrrChanged);
