// lblc and lblcr: locality caches keyed by the virtual address, their overload rule, set
// replication, and the periodic collector driven by host time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ServiceTable } from "../src/index.js";

const t = new ServiceTable({ maxServices: 4, maxDestinations: 16, cacheEntries: 64 });
const vip = (i: number) => ({ clientAddress: "192.0.2.1", virtualAddress: `203.0.113.${i}` });

test("lblc: a cached server keeps its address until lblc's overload rule, removal or quiescing moves it", () => {
  const s = t.createService({ scheduler: "lblc" });
  const [a, b] = [1, 2].map((i) => t.addDestination(s, { address: `10.11.0.${i}`, weight: 2 }));
  t.setLoad(a, { active: 1 });
  assert.equal(t.schedule(s, vip(1)), b); // wlc: b is idle
  t.setLoad(b, { active: 2 });
  assert.equal(t.schedule(s, vip(1)), b); // cached: wlc would now say a
  t.setLoad(b, { active: 3 }); // active > weight, but nobody has active*2 < weight
  t.setLoad(a, { active: 1 });
  assert.equal(t.schedule(s, vip(1)), b);
  t.setLoad(a, { active: 0 }); // now a is half idle: b counts as overloaded
  assert.equal(t.schedule(s, vip(1)), a);
  assert.equal(t.schedule(s, vip(1)), a);
  t.editDestination(a, { weight: 0 });
  assert.equal(t.schedule(s, vip(1)), b);
  t.editDestination(a, { weight: 2 });
  t.setLoad(b, {});
  t.removeDestination(b);
  assert.equal(t.schedule(s, vip(1)), a);
  assert.equal(t.cacheEntries(s), 1);
  t.setLoad(a, {});
  t.deleteService(s);
});

test("lblc: entries idle past the expiration are dropped by the full check every 30th tick", () => {
  const s = t.createService({ scheduler: "lblc" });
  t.addDestination(s, { address: "10.12.0.1" });
  t.setCacheExpiration(10 * 60 * 1000);
  t.setNow(0);
  for (let i = 1; i <= 5; i++) t.schedule(s, vip(i));
  assert.equal(t.cacheEntries(s), 5);
  let now = 0;
  for (let k = 1; k <= 29; k++) t.tick((now = k * 60_000)); // counter 1 -> 30, no full check yet
  assert.equal(t.cacheEntries(s), 5);
  t.tick((now += 60_000)); // 30th: full check, all idle 30 min > 10 min
  assert.equal(t.cacheEntries(s), 0);
  t.setCacheExpiration(24 * 3600 * 1000);
  t.deleteService(s);
});

test("lblcr: the set grows when its least-loaded member is lblc-overloaded and sheds its busiest after the expiration", () => {
  const s = t.createService({ scheduler: "lblcr" });
  // added b then a: the kernel's list is newest first, so a is at its head and wins ties
  const [b, a] = [2, 1].map((i) => t.addDestination(s, { address: `10.13.0.${i}`, weight: 4 }));
  t.setCacheExpiration(60_000);
  t.setNow(1000);
  assert.equal(t.schedule(s, vip(9)), a); // new set {a}
  t.setLoad(a, { active: 5 }); // > weight while b is idle: overloaded in lblc's sense
  assert.equal(t.schedule(s, vip(9)), b); // set {b, a}
  t.setLoad(b, { active: 1 });
  assert.equal(t.schedule(s, vip(9)), b); // least-loaded member
  t.setNow(70_000); // set unchanged for > 60 s: drop the most loaded (a)
  assert.equal(t.schedule(s, vip(9)), b);
  t.setLoad(a, { active: 0 }); // a is now the lighter, but it left the set: b (not overloaded) keeps serving
  assert.equal(t.schedule(s, vip(9)), b);
  t.setNow(100_000); // the set {b} has one member: nothing more to shed
  assert.equal(t.schedule(s, vip(9)), b);
  t.setLoad(b, { active: 6 });
  t.setLoad(a, { active: 0 });
  assert.equal(t.schedule(s, vip(9)), a); // b overloaded, a not in the set any more: wlc adds it back
  t.setLoad(a, {});
  t.setLoad(b, {});
  t.setCacheExpiration(24 * 3600 * 1000);
  t.deleteService(s);
});

test("a full cache pool still schedules (as the kernel does when its allocation fails)", () => {
  const s = t.createService({ scheduler: "lblc" });
  const d = t.addDestination(s, { address: "10.14.0.1" });
  for (let i = 0; i < 100; i++) assert.equal(t.schedule(s, { clientAddress: "1.1.1.1", virtualAddress: `198.51.100.${i}` }), d);
  assert.equal(t.cacheEntries(s), 64);
  t.deleteService(s);
});
