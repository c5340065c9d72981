// Maglev (mh): the paper's Table 1, balance, disruption, insertion-order independence,
// table sizes, and when the table is rebuilt.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fc from "fast-check";
import { ServiceTable, SchedulerConfigError } from "../src/index.js";
import { maglevTable, assertMaglevBalance, assertMaglevDisruption, maglevCounts, activeDestinationSetArb, type DestinationSpec } from "../src/testing/index.js";
import { mhOffsetSkip } from "./support/kernel-hash.js";

/** First addresses 10.7.x.y whose kernel (offset, skip) at M = 7 are the wanted pairs. */
function addressesWith(pairs: [number, number][]): string[] {
  return pairs.map(([o, s]) => {
    for (let i = 1; i < 65536; i++) {
      const a = `10.7.${i >> 8}.${i & 255}`;
      const [off, skip] = mhOffsetSkip(a, 0, 7);
      if (off === o && skip === s) return a;
    }
    throw new Error(`no address with offset ${o} skip ${s}`);
  });
}

test("Maglev paper Table 1: M = 7, A(3,4) B(0,2) C(3,1) fill B A B A C C A; without B: A A A A C C C", () => {
  const [a, b, c] = addressesWith([
    [3, 4],
    [0, 2],
    [3, 1],
  ]);
  const dests: DestinationSpec[] = [a, b, c].map((address) => ({ address, port: 0 }));
  const before = maglevTable(dests, { size: 7, order: "list" });
  assert.deepEqual(
    Array.from(before)
      .map((i) => "ABC"[i])
      .join(""),
    "BABACCA",
  );
  const after = maglevTable([dests[0], dests[2]], { size: 7, order: "list" });
  assert.deepEqual(
    Array.from(after)
      .map((i) => "AC"[i])
      .join(""),
    "AAAACCC",
  );
  const r = assertMaglevDisruption(before, after, 1, { maxOtherFraction: 0.25 });
  assert.equal(r.removedEntries, 2);
  assert.equal(r.otherMoved, 1); // 3 of 7 entries change, as the paper says
});

test("equal weights: every backend owns floor(M/N) or ceil(M/N) entries", () => {
  fc.assert(
    fc.property(
      activeDestinationSetArb({ minDestinations: 1, maxDestinations: 60, minWeight: 1, maxWeight: 1, ports: true }),
      fc.constantFrom(251, 4093, 65537),
      (dests, size) => {
        const t = maglevTable(dests, { size });
        assert.ok(t.every((x) => x >= 0));
        assertMaglevBalance(t, dests.length);
      },
    ),
    { numRuns: 40 },
  );
});

test("weights: entries follow weight / gcd (within Maglev's rounding)", () => {
  const dests: DestinationSpec[] = [1, 2, 3, 4].map((w, i) => ({ address: `10.9.0.${i + 1}`, weight: w * 10 }));
  const counts = maglevCounts(maglevTable(dests, { size: 65537 }), 4);
  counts.forEach((c, i) => assert.ok(Math.abs(c / 65537 - (i + 1) / 10) < 0.002, `backend ${i}: ${c}`));
});

test("removing a backend reassigns all of its entries and few others", () => {
  fc.assert(
    fc.property(activeDestinationSetArb({ minDestinations: 3, maxDestinations: 40, minWeight: 1, maxWeight: 1 }), fc.nat(), (dests, k) => {
      const removed = k % dests.length;
      const before = maglevTable(dests, { size: 4093 });
      const after = maglevTable(
        dests.filter((_, i) => i !== removed),
        { size: 4093 },
      );
      // the paper's Figure 11 shows a few percent at most; allow one backend's share
      assertMaglevDisruption(before, after, removed, { maxOtherFraction: Math.max(0.02, 1 / dests.length) });
    }),
    { numRuns: 40 },
  );
});

test("the table does not depend on the order destinations were added", () => {
  fc.assert(
    fc.property(activeDestinationSetArb({ minDestinations: 1, maxDestinations: 30, maxWeight: 5 }), fc.func(fc.integer()), (dests, f) => {
      const shuffled = dests
        .map((_d, i) => [f(i), i] as const)
        .sort((x, y) => x[0] - y[0] || x[1] - y[1])
        .map(([, i]) => i);
      const a = maglevTable(dests, { size: 251 });
      const b = maglevTable(
        shuffled.map((i) => dests[i]),
        { size: 251 },
      );
      assert.deepEqual(
        Array.from(b).map((i) => shuffled[i]),
        Array.from(a),
      );
    }),
    { numRuns: 60 },
  );
});

test("sorted order equals the kernel's list order when destinations were added sorted", () => {
  const dests: DestinationSpec[] = ["10.0.0.1", "10.0.0.2", "10.0.0.10", "10.0.1.0"].map((address, i) => ({ address, weight: i + 1 }));
  assert.deepEqual(maglevTable(dests, { size: 251, order: "sorted" }), maglevTable(dests, { size: 251, order: "list" }));
});

test("rebuilt only when the set or a non-zero weight changes; quiescing keeps the table", () => {
  const t = new ServiceTable({ maxServices: 2, maxDestinations: 16 });
  const s = t.createService({ scheduler: "mh", maglevSize: 251 });
  const ids = [1, 2, 3].map((i) => t.addDestination(s, { address: `10.4.0.${i}`, weight: 2 }));
  const builds = t.maglevBuilds(s);
  const table = t.maglevTable(s);
  t.editDestination(ids[1], { weight: 0 }); // quiesce
  t.editDestination(ids[1], { upperThreshold: 50 });
  assert.equal(t.maglevBuilds(s), builds);
  assert.deepEqual(t.maglevTable(s), table);
  // flows of the quiesced backend get no destination; others keep theirs
  for (let i = 0; i < 200; i++) {
    const flow = { clientAddress: `100.${i}.0.1` };
    const slotDest = table[mhOffsetSkip(flow.clientAddress, 0, 251)[0]];
    assert.equal(t.schedule(s, flow), slotDest === ids[1] ? null : slotDest);
  }
  t.editDestination(ids[1], { weight: 2 }); // back to the same last weight: still no rebuild
  assert.equal(t.maglevBuilds(s), builds);
  t.editDestination(ids[1], { weight: 4 });
  assert.equal(t.maglevBuilds(s), builds + 1);
  t.addDestination(s, { address: "10.4.0.9" });
  assert.equal(t.maglevBuilds(s), builds + 2);
});

test("mh-fallback finds an available backend for flows of an overloaded one; mh-port spreads one client", () => {
  const t = new ServiceTable({ maxServices: 2, maxDestinations: 16 });
  const s = t.createService({ scheduler: "mh", flags: ["mh-fallback", "mh-port"] });
  const ids = [1, 2, 3, 4].map((i) => t.addDestination(s, { address: `10.5.0.${i}` }));
  t.setLoad(ids[0], { overloaded: true });
  const seen = new Set<number>();
  for (let p = 1; p <= 300; p++) {
    const d = t.schedule(s, { clientAddress: "198.18.0.7", clientPort: p, protocol: "udp" });
    assert.ok(d !== null && d !== ids[0]);
    seen.add(d);
  }
  assert.equal(seen.size, 3);
});

test("table sizes: 65537 and other primes; non-primes, too large, and more destinations than M are refused", () => {
  const t = new ServiceTable({ maxServices: 4, maxDestinations: 64, maglevTables: 2, maglevMaxSize: 65537 });
  const big = t.createService({ scheduler: "mh", maglevSize: 65537 });
  t.addDestination(big, { address: "10.6.0.1" });
  assert.equal(t.maglevTable(big).length, 65537);
  assert.throws(() => t.createService({ scheduler: "mh", maglevSize: 4096 }), /maglevSize: 4096 is not a prime in 2\.\.65537/);
  assert.throws(() => t.createService({ scheduler: "mh", maglevSize: 131071 }), /maglevSize: 131071 is not a prime in 2\.\.65537/);
  assert.throws(() => t.createService({ scheduler: "rr", maglevSize: 7 }), /maglevSize \/ maglevOrder: apply to scheduler mh only/);
  const small = t.createService({ scheduler: "mh", maglevSize: 3 });
  for (let i = 1; i <= 3; i++) t.addDestination(small, { address: `10.6.1.${i}` });
  assert.throws(
    () => t.addDestination(small, { address: "10.6.1.4" }),
    (e: unknown) => e instanceof SchedulerConfigError && /M = 3/.test(String(e)),
  );
  assert.equal(t.destinations(small).length, 3);
  // no third table: the pool holds 2
  assert.throws(() => t.createService({ scheduler: "mh" }), /no free Maglev table/);
  // shrinking M below the destination count is refused and changes nothing
  const before = t.maglevTable(small);
  assert.throws(() => t.editService(small, { scheduler: "mh", maglevSize: 2 }), /maglevSize: 2 is smaller than the service's 3 destinations/);
  assert.deepEqual(t.maglevTable(small), before);
});
