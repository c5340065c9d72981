// Fairness assertions. Each throws a FairnessError whose message says what was expected and
// what was seen, so they work under node:test, vitest, jest or plain scripts.

import type { Distribution } from "./run.js";
import { weightsOf } from "./destinations.js";

export class FairnessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FairnessError";
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Destinations that can take new flows: weight > 0 and not overloaded. */
function eligibleWeights(d: Distribution): number[] {
  return d.destinations.map((x) => ((x.weight ?? 1) > 0 && !x.overloaded ? (x.weight ?? 1) : 0));
}

/**
 * Every destination's share of the picks is its share of the weight, within `tolerance`
 * (absolute, as a fraction of all picks; default 0.02). Weight-0 and overloaded
 * destinations must get nothing.
 */
export function assertProportional(d: Distribution, options: { tolerance?: number; weights?: readonly number[] } = {}): void {
  const tolerance = options.tolerance ?? 0.02;
  const weights = options.weights ?? eligibleWeights(d);
  const sum = weights.reduce((a, b) => a + b, 0);
  const picked = d.total - d.none;
  if (sum === 0 || picked === 0) throw new FairnessError(`${d.scheduler}: no destination was picked (weights ${weights.join(", ")})`);
  weights.forEach((w, i) => {
    const expected = w / sum;
    const actual = d.counts[i] / picked;
    if (Math.abs(actual - expected) > tolerance) {
      throw new FairnessError(
        `${d.scheduler}: destination ${i} (weight ${w}) got ${(actual * 100).toFixed(2)}% of ${picked} picks, expected ${(expected * 100).toFixed(2)}% ± ${(tolerance * 100).toFixed(2)}%`,
      );
    }
  });
}

/**
 * Weighted round-robin cycles: every window of sum(weight / gcd) consecutive picks (from
 * `skip` on) gives each destination exactly weight / gcd picks. Needs a stable set (no
 * overload, no weight change while picking).
 */
export function assertWrrCycles(picks: ArrayLike<number>, weights: readonly number[], options: { skip?: number } = {}): void {
  const g = weights.reduce((a, w) => (w > 0 ? gcd(a, w) : a), 0);
  if (g === 0) throw new FairnessError("wrr cycles: no positive weight");
  const want = weights.map((w) => (w > 0 ? w / g : 0));
  const cycle = want.reduce((a, b) => a + b, 0);
  const skip = options.skip ?? 0;
  if (picks.length - skip < cycle) throw new FairnessError(`wrr cycles: need at least ${cycle} picks after skip, got ${picks.length - skip}`);
  const counts = new Array(weights.length).fill(0);
  const bump = (p: number, by: number, at: number) => {
    if (p < 0 || p >= weights.length) throw new FairnessError(`wrr cycles: pick ${at} is ${p}, not a destination index`);
    counts[p] += by;
  };
  for (let i = skip; i < skip + cycle; i++) bump(picks[i], 1, i);
  for (let start = skip; ; start++) {
    for (let k = 0; k < weights.length; k++) {
      if (counts[k] !== want[k]) {
        throw new FairnessError(
          `wrr cycles: picks ${start}..${start + cycle - 1} give destination ${k} (weight ${weights[k]}) ${counts[k]} picks, expected ${want[k]} (weight / gcd ${g})`,
        );
      }
    }
    if (start + cycle >= picks.length) break;
    bump(picks[start], -1, start);
    bump(picks[start + cycle], 1, start + cycle);
  }
}

/** Entries per backend index in a Maglev table. */
export function maglevCounts(table: ArrayLike<number>, backends: number): number[] {
  const counts = new Array(backends).fill(0);
  for (let i = 0; i < table.length; i++) if (table[i] >= 0) counts[table[i]]++;
  return counts;
}

/** Equal weights: every backend owns floor(M/N) or ceil(M/N) entries (Maglev paper, 3.4). */
export function assertMaglevBalance(table: ArrayLike<number>, backends: number): void {
  const m = table.length;
  const lo = Math.floor(m / backends);
  const hi = Math.ceil(m / backends);
  maglevCounts(table, backends).forEach((c, i) => {
    if (c < lo || c > hi) throw new FairnessError(`maglev balance: backend ${i} owns ${c} of ${m} entries, expected ${lo}..${hi} for ${backends} backends`);
  });
}

export interface MaglevDisruption {
  /** Entries that pointed at the removed backend (all must move). */
  readonly removedEntries: number;
  /** Entries of other backends that moved anyway. */
  readonly otherMoved: number;
  readonly size: number;
}

/**
 * Compares tables before and after backend `removed` (an index into the "before" list) left;
 * the "after" table indexes the list without it.
 */
export function maglevDisruption(before: ArrayLike<number>, after: ArrayLike<number>, removed: number): MaglevDisruption {
  if (before.length !== after.length) throw new FairnessError(`maglev disruption: tables differ in size (${before.length} vs ${after.length})`);
  let removedEntries = 0;
  let otherMoved = 0;
  for (let i = 0; i < before.length; i++) {
    const a = after[i] >= removed ? after[i] + 1 : after[i];
    if (before[i] === removed) {
      removedEntries++;
      if (a === removed) throw new FairnessError(`maglev disruption: entry ${i} still points at the removed backend`);
    } else if (a !== before[i]) otherMoved++;
  }
  return { removedEntries, otherMoved, size: before.length };
}

/**
 * Removing a backend moves all of its entries and few others: at most `maxOtherFraction`
 * (default 0.05) of the table's other entries.
 */
export function assertMaglevDisruption(
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  removed: number,
  options: { maxOtherFraction?: number } = {},
): MaglevDisruption {
  const r = maglevDisruption(before, after, removed);
  const bound = options.maxOtherFraction ?? 0.05;
  const others = r.size - r.removedEntries;
  if (r.otherMoved > bound * others) {
    throw new FairnessError(
      `maglev disruption: ${r.otherMoved} of ${others} entries of remaining backends moved (${((r.otherMoved / others) * 100).toFixed(2)}%), bound ${(bound * 100).toFixed(2)}%`,
    );
  }
  return r;
}

export { weightsOf };
