// Counters and IPVS's rate estimator against a plain TypeScript model of ip_vs_est.c.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PacketCore } from "../src/index.js";

type Fn = (...args: number[]) => number;

function setup() {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 256, actionCount: 1 });
  const w = core.wasm as unknown as Record<string, Fn>;
  assert.equal(w.statsInit(4, 8), 0);
  const base = w.regionStats() >>> 0;
  const size = w.statsBlockBytes();
  const block = (i: number) => new BigInt64Array(core.slots.bytes.buffer, base + i * size, size / 8);
  return { w, block };
}

/** The kernel's estimator for one counter: avg += ((delta << shift) - avg) >> 2. */
class ModelEstimator {
  avg = 0n;
  last = 0n;
  step(counter: bigint, shift: bigint) {
    const rate = (counter - this.last) << shift;
    this.last = counter;
    this.avg += (rate - this.avg) >> 2n;
  }
}

test("counters add up per total, service and destination; estimator matches the kernel's arithmetic", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 20, max: 65535 }), fc.boolean()), { maxLength: 40 }), {
        minLength: 1,
        maxLength: 12,
      }),
      (intervals) => {
        const { w, block } = setup();
        const model = { conns: 0n, inpkts: 0n, inbytes: 0n };
        const est = { cps: new ModelEstimator(), inpps: new ModelEstimator(), inbps: new ModelEstimator() };
        for (const packets of intervals) {
          for (const [svc, bytes, isNew] of packets) {
            if (isNew) w.statsTestConnection(svc, svc + 1);
            w.statsTestPacket(svc, svc + 1, bytes, 1);
            if (isNew) model.conns++;
            model.inpkts++;
            model.inbytes += BigInt(bytes);
          }
          w.statsEstimateOnce();
          est.cps.step(model.conns, 9n);
          est.inpps.step(model.inpkts, 9n);
          est.inbps.step(model.inbytes, 4n);
        }
        const total = block(0);
        assert.equal(total[0], model.conns);
        assert.equal(total[1], model.inpkts);
        assert.equal(total[3], model.inbytes);
        assert.equal(total[10], est.cps.avg, "cps average");
        assert.equal(total[11], est.inpps.avg, "inpps average");
        assert.equal(total[13], est.inbps.avg, "inbps average");
        // service blocks (1..4) and dest blocks (5..12) sum to the total
        let svcPkts = 0n,
          destPkts = 0n;
        for (let s = 1; s <= 4; s++) svcPkts += block(s)[1];
        for (let d = 5; d <= 12; d++) destPkts += block(d)[1];
        assert.equal(svcPkts, model.inpkts);
        assert.equal(destPkts, model.inpkts);
      },
    ),
    { numRuns: 60 },
  );
});

test("the estimator runs once per whole 2 s interval, wrap-safe, and zeroing clears a block", () => {
  const { w, block } = setup();
  const start = 0xfffff000;
  assert.equal(w.statsEstimate(start), 0, "the first call only starts the clock");
  assert.equal(w.statsEstimate((start + 1999) >>> 0), 0);
  assert.equal(w.statsEstimate((start + 2000) >>> 0), 1);
  assert.equal(w.statsEstimate((start + 8100) >>> 0), 3, "three more whole intervals, across the wrap");
  w.statsTestPacket(0, 0, 100, 1);
  assert.equal(block(1)[1], 1n);
  w.statsZeroService(0);
  assert.equal(block(1)[1], 0n);
  assert.equal(block(0)[1], 1n, "zeroing a service leaves the total");
});
