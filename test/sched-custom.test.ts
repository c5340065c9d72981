// Schedulers written in TypeScript: registered by name, resolved like a built-in, called
// only for new flows with the destinations, their weights, counts and flags, and the key.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ServiceTable, registerScheduler, unregisterScheduler, SchedulerConfigError, type ScheduleContext } from "../src/index.js";
import { runScheduler, assertProportional } from "../src/testing/index.js";

test("a registered scheduler is listed, resolved by name, and sees what the kernel's would", () => {
  const seen: ScheduleContext[] = [];
  registerScheduler(
    "last-idle",
    (ctx) => {
      seen.push(ctx);
      // the last destination with weight > 0 and no active connection
      for (let i = ctx.destinations.length - 1; i >= 0; i--) {
        const d = ctx.destinations[i];
        if (d.weight > 0 && !d.overloaded && d.activeConnections === 0) return i;
      }
      return -1;
    },
    { flagNames: ["prefer-v6"] },
  );
  try {
    const t = new ServiceTable({ maxServices: 2, maxDestinations: 8 });
    assert.ok(t.schedulers().some((s) => s.name === "last-idle" && s.custom));
    const s = t.createService({ scheduler: "last-idle", flags: ["prefer-v6", "flag-3"] });
    const ids = [3, 0, 2].map((w, i) => t.addDestination(s, { address: `10.8.0.${i + 1}`, port: 8080, weight: w }));
    // ctx.destinations is the kernel's list, newest first: 10.8.0.3, 10.8.0.2, 10.8.0.1
    t.setNow(12345);
    assert.equal(t.schedule(s, { clientAddress: "192.0.2.5", clientPort: 4000, virtualAddress: "192.0.2.80", virtualPort: 80, protocol: "udp" }), ids[0]);
    t.bindConnection(ids[0], "active");
    assert.equal(t.schedule(s, { clientAddress: "192.0.2.6" }), ids[2]);
    t.bindConnection(ids[2], "active");
    assert.equal(t.schedule(s, { clientAddress: "192.0.2.7" }), null);
    const ctx = seen[0];
    assert.equal(ctx.service, s);
    assert.deepEqual(ctx.flags, ["prefer-v6", "flag-3"]);
    assert.equal(ctx.now, 12345);
    assert.deepEqual(ctx.flow, { clientAddress: "192.0.2.5", clientPort: 4000, virtualAddress: "192.0.2.80", virtualPort: 80, protocol: "udp" });
    assert.deepEqual(
      ctx.destinations.map((d) => [d.id, d.position, d.address, d.port, d.weight]),
      ids.map((id, i) => [id, 2 - i, `10.8.0.${i + 1}`, 8080, [3, 0, 2][i]]).reverse(),
    );
    assert.equal(seen[1].destinations[2].activeConnections, 1);
    assert.equal(seen[1].destinations[2].id, ids[0]);
    assert.equal(t.schedulerOf(s), "last-idle");
    // unregistered: its services get no destination
    unregisterScheduler("last-idle");
    assert.equal(t.schedule(s, { clientAddress: "192.0.2.8" }), null);
    assert.throws(() => t.createService({ scheduler: "last-idle" }), /is not a scheduler/);
  } finally {
    unregisterScheduler("last-idle");
  }
});

test("registration errors are one line and name the problem", () => {
  assert.throws(
    () => registerScheduler("wrr", () => 0),
    (e: unknown) => e instanceof SchedulerConfigError && /built-in/.test(e.message),
  );
  assert.throws(() => registerScheduler("Bad Name", () => 0), /scheduler name: "Bad Name" must match/);
  registerScheduler("dup", () => 0);
  try {
    assert.throws(() => registerScheduler("dup", () => 0), /already registered/);
  } finally {
    unregisterScheduler("dup");
  }
  // Names: a lower-case letter, then up to 15 of [a-z0-9_-], like ipvsadm's.
  for (const bad of ["1abc", "a".repeat(17), "abc!", "x y", ""]) assert.throws(() => registerScheduler(bad, () => 0), /must match/, bad);
  assert.throws(() => registerScheduler(7 as unknown as string, () => 0), /scheduler name: 7 must match/);
  assert.throws(() => registerScheduler("no-fn", 0 as unknown as () => number), /scheduler "no-fn": schedule must be a function/);
  // -b flags: at most three lower-case names.
  assert.throws(
    () => registerScheduler("flags4", () => 0, { flagNames: ["a", "b", "c", "d"] }),
    /flagNames takes up to 3 lower-case names, got \["a","b","c","d"\]/,
  );
  for (const bad of ["Upper", "1st", "with space", "x!"]) {
    assert.throws(() => registerScheduler("flagbad", () => 0, { flagNames: [bad] }), /flagNames takes up to 3/, bad);
  }
  const longest = registerScheduler(`a${"b".repeat(15)}`, () => 0, { flagNames: ["one", "two-2", "three"] });
  const other = registerScheduler("a_1", () => 0);
  try {
    assert.deepEqual(longest.flagNames, ["one", "two-2", "three"]);
    assert.ok(longest.handle > 0 && other.handle > 0 && other.handle !== longest.handle, "each registration has its own positive handle");
  } finally {
    assert.equal(unregisterScheduler(longest.name), true, "unregistering a registered name says so");
    assert.equal(unregisterScheduler("a_1"), true);
  }
  assert.equal(unregisterScheduler("a_1"), false, "unregistering an unknown name says so");
});

test("a custom scheduler returning an out-of-range index is reported, not silently used", () => {
  registerScheduler("broken", () => 7);
  try {
    const t = new ServiceTable({ maxServices: 1, maxDestinations: 4 });
    const s = t.createService({ scheduler: "broken" });
    t.addDestination(s, { address: "10.9.0.1" });
    assert.throws(() => t.schedule(s, { clientAddress: "1.2.3.4" }), /scheduler "broken" returned 7: return an index into ctx.destinations \(0\.\.0\) or -1/);
  } finally {
    unregisterScheduler("broken");
  }
});

test("the testing kit runs a custom scheduler like a built-in: weighted random is proportional", () => {
  let x = 7;
  const weightedRandom = (ctx: ScheduleContext) => {
    const total = ctx.destinations.reduce((a, d) => a + (d.overloaded ? 0 : d.weight), 0);
    if (total === 0) return -1;
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    let r = x % total;
    return ctx.destinations.findIndex((d) => !d.overloaded && (r -= d.weight) < 0);
  };
  const dests = [1, 2, 5].map((weight, i) => ({ address: `10.10.0.${i + 1}`, weight }));
  assertProportional(runScheduler(weightedRandom, dests, { flows: 20000 }), { tolerance: 0.02 });
  assert.throws(() => assertProportional(runScheduler(() => 0, dests, { flows: 1000 })), /destination 0 \(weight 1\) got 100\.00%/);
});
