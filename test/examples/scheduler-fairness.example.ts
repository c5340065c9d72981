// Copy this into your own tests: property-test a scheduler's fairness with lvs-wasm/testing.
import { test } from "node:test";
import * as fc from "fast-check";
import { registerScheduler, unregisterScheduler, type ScheduleContext } from "lvs-wasm";
import {
  activeDestinationSetArb, runScheduler, assertProportional, assertWrrCycles, maglevTable,
  assertMaglevBalance, assertMaglevDisruption,
} from "lvs-wasm/testing";

test("wrr gives every destination exactly weight/gcd picks per cycle", () => {
  fc.assert(
    fc.property(activeDestinationSetArb({ maxDestinations: 5, maxWeight: 10 }), (dests) => {
      const run = runScheduler("wrr", dests, { flows: 500 });
      assertWrrCycles(run.picks, dests.map((d) => d.weight ?? 1));
    }),
    { numRuns: 50 },
  );
});

test("my own scheduler is proportional to weight", () => {
  let seed = 1;
  const random = (ctx: ScheduleContext) => {
    const live = ctx.destinations.filter((d) => d.weight > 0 && !d.overloaded);
    let r = (seed = (Math.imul(seed, 48271) >>> 0) % 0x7fffffff) % live.reduce((a, d) => a + d.weight, 0);
    return live.find((d) => (r -= d.weight) < 0)!.position;
  };
  registerScheduler("my-random", random); // now also usable as: lvsadm -A -t VIP:80 -s my-random
  try {
    const dests = [{ address: "10.0.0.1", weight: 1 }, { address: "10.0.0.2", weight: 3 }];
    assertProportional(runScheduler("my-random", dests, { flows: 20000 }), { tolerance: 0.02 });
  } finally {
    unregisterScheduler("my-random");
  }
});

test("Maglev stays balanced and moves little when a backend leaves", () => {
  const dests = Array.from({ length: 10 }, (_, i) => ({ address: `10.0.1.${i + 1}` }));
  const before = maglevTable(dests, { size: 65537 });
  assertMaglevBalance(before, dests.length);
  const after = maglevTable(dests.filter((_, i) => i !== 3), { size: 65537 });
  assertMaglevDisruption(before, after, 3, { maxOtherFraction: 0.05 });
});
