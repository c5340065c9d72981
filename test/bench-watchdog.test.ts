// bench:system's stall watchdog (bench/system/watchdog.ts): fed progress series, no timing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { StallDetector, StallWatchdog, findStalls } from "../bench/system/watchdog.js";

/** Samples every `step` ms from t0: the counter grows by `rate` per sample, or stays. */
function series(t0: number, step: number, values: number[]): Array<[number, number]> {
  return values.map((v, i) => [t0 + i * step, v]);
}

test("a counter that keeps growing never stalls", () => {
  const xs = series(
    0,
    250,
    Array.from({ length: 40 }, (_, i) => i * 100),
  );
  assert.deepEqual(findStalls(xs, 2000), []);
});

test("a counter flat for 2 s is one stall, detected at the first sample 2 s after its last growth", () => {
  // grows to 700 at t=1750, then flat until t=5000, then grows again
  const values = [0, 100, 200, 300, 400, 500, 600, 700, ...Array(13).fill(700), 800, 900];
  const stalls = findStalls(series(0, 250, values), 2000);
  assert.deepEqual(stalls, [{ since: 1750, detectedAt: 3750, value: 700 }]);
});

test("a pause shorter than the window is not a stall", () => {
  // flat from t=500 to t=2250: 1.75 s
  const values = [0, 10, 20, ...Array(7).fill(20), 30, 40];
  assert.deepEqual(findStalls(series(0, 250, values), 2000), []);
});

test("each stretch is reported once, and a second stretch after progress again", () => {
  const values = [5, ...Array(12).fill(5), 6, ...Array(12).fill(6)];
  const stalls = findStalls(series(1000, 250, values), 2000);
  assert.equal(stalls.length, 2);
  assert.deepEqual(
    stalls.map((s) => [s.since, s.value]),
    [
      [1000, 5],
      [4250, 6],
    ],
  );
});

test("a counter that goes down (a reset) counts as a change", () => {
  const values = [50, 50, 50, 50, 50, 50, 50, 10, 10, 10, 10, 10, 10, 10];
  // 50 flat for 1.5 s, then 10 flat for 1.5 s: neither stretch reaches 2 s
  assert.deepEqual(findStalls(series(0, 250, values), 2000), []);
});

test("the detector takes the window it is given and refuses a non-positive one", () => {
  const d = new StallDetector(500);
  assert.equal(d.push(0, 1), null);
  assert.equal(d.push(400, 1), null);
  assert.deepEqual(d.push(500, 1), { since: 0, detectedAt: 500, value: 1 });
  assert.throws(() => new StallDetector(0), /must be positive/);
});

test("the watchdog samples progress, calls onStall with the stall, and returns the stalls on stop", async () => {
  // A fake clock that advances 300 ms per sample; the progress counter stops at the 4th read.
  let now = 0;
  let reads = 0;
  const progress = async () => {
    reads++;
    now += 300;
    return Math.min(reads, 4);
  };
  const seen: number[] = [];
  const dog = new StallWatchdog(
    progress,
    async (s) => {
      seen.push(s.detectedAt - s.since);
    },
    { intervalMs: 1, windowMs: 2000, clock: () => now },
  ).start();
  // Bounded: 40 samples (12 s of the fake clock) are far more than a 2 s stall needs.
  while (seen.length === 0 && reads < 40) await new Promise((r) => setTimeout(r, 1));
  const stalls = await dog.stop();
  assert.equal(stalls.length, 1);
  assert.equal(stalls[0]!.value, 4);
  assert.equal(stalls[0]!.since, 1200);
  assert.ok(seen[0]! >= 2000 && seen[0]! < 2300, `detected ${seen[0]} ms after the last growth`);
});
