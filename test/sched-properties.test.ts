// Property tests (fast-check) of the schedulers, through the lvs-wasm/testing kit.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fc from "fast-check";
import {
  destinationSetArb,
  activeDestinationSetArb,
  flowKeyArb,
  runScheduler,
  assertWrrCycles,
  referencePick,
  withService,
  defaultFlows,
  schedulerArb,
  type DestinationSpec,
  type StatelessScheduler,
} from "../src/testing/index.js";
import type { FlowKey } from "../src/index.js";
import { foldAddress, hash32 } from "./support/kernel-hash.js";

const RUNS = 150;

test("wrr: every window of sum(weight/gcd) picks gives each destination exactly weight/gcd picks", () => {
  fc.assert(
    fc.property(activeDestinationSetArb({ maxDestinations: 6, maxWeight: 12 }), fc.constantFrom("edit" as const, "incremental" as const), (dests, setup) => {
      const g = dests.reduce((a, d) => gcd(a, d.weight!), 0);
      const cycle = dests.reduce((a, d) => a + d.weight! / g, 0);
      const run = runScheduler("wrr", dests, { flows: cycle * 4, setup });
      assertWrrCycles(
        run.picks,
        dests.map((d) => d.weight!),
      );
    }),
    { numRuns: RUNS },
  );
});

test("rr and wrr never pick a quiesced (weight 0) or overloaded destination, and pick when one is available", () => {
  fc.assert(
    fc.property(destinationSetArb({ maxDestinations: 8, maxWeight: 5, overloaded: true }), fc.constantFrom("rr", "wrr"), (dests, name) => {
      const run = runScheduler(name, dests, { flows: 40 });
      const usable = dests.some((d) => d.weight! > 0 && !d.overloaded);
      for (const p of run.picks) {
        if (!usable) assert.equal(p, -1);
        else {
          assert.ok(p >= 0, `${name} found no destination among ${JSON.stringify(dests)}`);
          assert.ok(dests[p].weight! > 0 && !dests[p].overloaded, `${name} picked ${JSON.stringify(dests[p])}`);
        }
      }
    }),
    { numRuns: RUNS },
  );
});

test("rr visits every usable destination once per round", () => {
  fc.assert(
    fc.property(destinationSetArb({ maxDestinations: 8, maxWeight: 3, overloaded: true }), (dests) => {
      const usable = dests.flatMap((d, i) => (d.weight! > 0 && !d.overloaded ? [i] : []));
      fc.pre(usable.length > 0);
      const run = runScheduler("rr", dests, { flows: usable.length * 3 });
      assert.deepEqual(Array.from(run.picks), [...usable, ...usable, ...usable]);
    }),
    { numRuns: RUNS },
  );
});

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

// small ranges make ties (equal cost) common, large ones exercise the arithmetic
const loaded = fc.oneof(
  destinationSetArb({ maxDestinations: 10, maxWeight: 4, maxActive: 3, maxInactive: 3, overloaded: true }),
  destinationSetArb({ maxDestinations: 10, maxWeight: 65535, maxActive: 100000, maxInactive: 1000000, overloaded: true }),
);

for (const name of ["lc", "wlc", "sed", "nq", "fo", "ovf"] as StatelessScheduler[]) {
  test(`${name} picks the destination minimising its own formula (ties: first in list), as a reference model computes`, () => {
    fc.assert(
      fc.property(loaded, (dests) => {
        const run = runScheduler(name, dests, { flows: 1 });
        assert.equal(run.picks[0], referencePick(name, dests));
      }),
      { numRuns: RUNS * 2 },
    );
  });
}

test("wlc and lc spread new connections when each pick is counted as a connection", () => {
  fc.assert(
    fc.property(activeDestinationSetArb({ maxDestinations: 6, maxWeight: 8 }), (dests) => {
      const total = dests.reduce((a, d) => a + d.weight!, 0);
      const wlc = runScheduler("wlc", dests, { flows: total * 5, bind: "active" });
      // after total*5 picks, each destination holds exactly 5 * weight (overhead/weight stays equal)
      dests.forEach((d, i) => assert.equal(wlc.counts[i], 5 * d.weight!, "wlc"));
      // lc ignores the weights (but 0): the same number of picks spreads evenly
      const lc = runScheduler("lc", dests, { flows: total * 5, bind: "active" });
      const even = Math.floor((total * 5) / dests.length);
      dests.forEach((_, i) => assert.ok(lc.counts[i] === even || lc.counts[i] === even + 1, `lc gave ${lc.counts[i]}, not ${even} or ${even + 1}`));
    }),
    { numRuns: 60 },
  );
});

test("every scheduler picks only a usable destination (or none), for IPv4 and IPv6, TCP and UDP flows", () => {
  fc.assert(
    fc.property(
      schedulerArb(),
      destinationSetArb({ maxDestinations: 6, maxWeight: 5, maxActive: 4, overloaded: true }),
      fc.array(flowKeyArb(), { minLength: 1, maxLength: 40 }),
      (name, dests, flows) => {
        const run = runScheduler(name, dests, { flows, bind: "active" });
        assert.equal(run.picks.length, flows.length);
        for (const p of run.picks) assert.ok(p === -1 || (dests[p].weight! > 0 && !dests[p].overloaded), `${name} picked ${p}`);
      },
    ),
    { numRuns: RUNS },
  );
});

test("sh and dh pick the bucket of hash_32(fold(address)): IPv4 as is, IPv6 the XOR of its four words", () => {
  fc.assert(
    fc.property(fc.constantFrom("sh", "dh"), fc.integer({ min: 2, max: 6 }), fc.array(flowKeyArb(), { minLength: 1, maxLength: 60 }), (name, n, flows) => {
      const dests = Array.from({ length: n }, (_, i) => ({ address: `10.3.0.${i + 1}` }));
      const run = runScheduler(name, dests, { flows });
      // Weight 1 each: both fill the 256 buckets by cycling the list, so bucket b belongs to
      // the destination of residue b % n (whichever order the list is in): flows of one
      // residue share a destination, flows of different residues do not.
      const owner = new Map<number, number>();
      flows.forEach((f, i) => {
        const address = name === "sh" ? f.clientAddress : f.virtualAddress!;
        const residue = hash32(foldAddress(address), 8) % n;
        const seen = owner.get(residue) ?? run.picks[i];
        assert.equal(run.picks[i], seen, `${name} ${address}: bucket residue ${residue}`);
        owner.set(residue, seen);
      });
      assert.equal(new Set(owner.values()).size, owner.size, `${name}: one destination per residue`);
    }),
    { numRuns: RUNS },
  );
});

test("twos never picks weight 0 or an overloaded destination", () => {
  fc.assert(
    fc.property(
      destinationSetArb({ maxDestinations: 8, maxWeight: 6, maxActive: 20, overloaded: true }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (dests, seed) => {
        const run = runScheduler("twos", dests, { flows: 200, seed });
        const usable = dests.some((d) => d.weight! > 0 && !d.overloaded);
        for (const p of run.picks) {
          if (!usable) assert.equal(p, -1);
          else assert.ok(p >= 0 && dests[p].weight! > 0 && !dests[p].overloaded);
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test("twos replays with the same seed", () => {
  const dests: DestinationSpec[] = [1, 2, 3, 4].map((w, i) => ({ address: `10.1.0.${i + 1}`, weight: w }));
  const a = runScheduler("twos", dests, { flows: 500, seed: 42, bind: "active" });
  const b = runScheduler("twos", dests, { flows: 500, seed: 42, bind: "active" });
  const c = runScheduler("twos", dests, { flows: 500, seed: 43, bind: "active" });
  assert.deepEqual(a.picks, b.picks);
  assert.notDeepEqual(a.picks, c.picks);
});

for (const name of ["sh", "dh", "mh"]) {
  test(`${name} maps the same key to the same destination, whatever was scheduled in between`, () => {
    // A few keys (at most 3) over many flows (at least 6) with fresh ports: most flows share
    // their key with an earlier one, so the comparison below is between different flows.
    const keyed = fc
      .tuple(
        fc.array(flowKeyArb(), { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 65535 })), { minLength: 6, maxLength: 30 }),
      )
      .map(([keys, picks]) => picks.map(([k, port]): FlowKey => ({ ...keys[k % keys.length], clientPort: port })));
    fc.assert(
      fc.property(activeDestinationSetArb({ maxDestinations: 8, maxWeight: 4 }), keyed, (dests, flows) => {
        const once = runScheduler(name, dests, { flows });
        const reversed = runScheduler(name, dests, { flows: [...flows].reverse() });
        assert.deepEqual(Array.from(reversed.picks).reverse(), Array.from(once.picks));
        let compared = 0;
        flows.forEach((f, i) => {
          const j = flows.findIndex((g) => sameKey(name, f, g));
          if (j === i) return;
          compared++;
          assert.equal(once.picks[i], once.picks[j], `flow ${i} and flow ${j} share a key`);
        });
        assert.ok(compared >= flows.length - 3, `${compared} of ${flows.length} flows compared with an earlier one`);
      }),
      { numRuns: RUNS },
    );
  });

  test(`${name}: making one destination unavailable moves only the flows it had`, () => {
    fc.assert(
      fc.property(activeDestinationSetArb({ minDestinations: 2, maxDestinations: 8, maxWeight: 4 }), fc.nat(), fc.boolean(), (dests, k, fallback) => {
        const victim = k % dests.length;
        const flows = defaultFlows(300);
        const flags = fallback && name !== "dh" ? [`${name}-fallback`] : [];
        const before = runScheduler(name, dests, { flows, flags });
        // dh has no edit hook, so quiescing keeps its buckets; sh/mh: overload keeps them
        const changed = dests.map((d, i) => (i !== victim ? d : name === "dh" ? { ...d, weight: 0 } : { ...d, overloaded: true }));
        const after = runScheduler(name, changed, { flows, flags });
        for (let i = 0; i < flows.length; i++) {
          if (before.picks[i] !== victim) assert.equal(after.picks[i], before.picks[i], `flow ${i} moved off a healthy destination`);
          else if (flags.length) assert.ok(after.picks[i] >= 0 && after.picks[i] !== victim);
          else assert.equal(after.picks[i], -1);
        }
      }),
      { numRuns: 80 },
    );
  });
}

function sameKey(name: string, a: { clientAddress: string; virtualAddress?: string }, b: { clientAddress: string; virtualAddress?: string }): boolean {
  return name === "dh" ? a.virtualAddress === b.virtualAddress : a.clientAddress === b.clientAddress;
}

test("sh with sh-port hashes the source port too, so one client spreads over destinations", () => {
  const dests: DestinationSpec[] = [1, 1, 1, 1].map((w, i) => ({ address: `10.2.0.${i + 1}`, weight: w }));
  const flows = Array.from({ length: 400 }, (_, i) => ({ clientAddress: "198.18.0.1", clientPort: 1024 + i }));
  const plain = runScheduler("sh", dests, { flows });
  const ported = runScheduler("sh", dests, { flows, flags: ["sh-port"] });
  assert.equal(new Set(plain.picks).size, 1);
  assert.equal(new Set(ported.picks).size, 4);
});

test("overload thresholds follow the kernel: set at active+inactive >= upper, cleared below lower (or 3/4 of upper)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 0, max: 12 }),
      fc.array(fc.tuple(fc.boolean(), fc.constantFrom("active" as const, "inactive" as const, "persistent" as const)), { maxLength: 60 }),
      (upper, lower, ops) => {
        withService("rr", [{ address: "10.3.0.1", upperThreshold: upper, lowerThreshold: lower }], {}, (table, _s, [d]) => {
          const n = { active: 0, inactive: 0, persistent: 0 };
          let over = false;
          for (const [bind, kind] of ops) {
            if (!bind && n[kind] === 0) continue;
            n[kind] += bind ? 1 : -1;
            const total = n.active + n.inactive;
            if (bind) {
              if (upper !== 0 && total >= upper) over = true;
            } else if (lower !== 0) {
              if (total < lower) over = false;
            } else if (upper !== 0) {
              if (total * 4 < upper * 3) over = false;
            } else over = false;
            if (bind) table.bindConnection(d, kind);
            else table.unbindConnection(d, kind);
            const st = table.destination(d);
            assert.equal(st.overloaded, over);
            assert.equal(st.activeConnections, n.active);
            assert.equal(st.inactiveConnections, n.inactive);
            assert.equal(st.persistentConnections, n.persistent);
          }
        });
      },
    ),
    { numRuns: RUNS },
  );
});
