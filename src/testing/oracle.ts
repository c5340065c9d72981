// A reference model of the stateless IPVS schedulers, written from the kernel's rules
// independently of the wasm ones, for property tests: what each would pick for a given
// destination list. Formulas compare by cross-multiplication, as the kernel does.

import type { DestinationSpec } from "./destinations.js";

export type StatelessScheduler = "lc" | "wlc" | "sed" | "nq" | "fo" | "ovf";

const w = (d: DestinationSpec) => d.weight ?? 1;
const act = (d: DestinationSpec) => d.activeConnections ?? 0;
const over = (d: DestinationSpec) => d.overloaded ?? false;
/** (activeconns << 8) + inactconns */
export const overhead = (d: DestinationSpec) => act(d) * 256 + (d.inactiveConnections ?? 0);

/** Candidates a scheduler may pick, and its cost as [numerator, denominator] (lower wins). */
export function schedulerCost(name: StatelessScheduler, d: DestinationSpec): [number, number] | null {
  if (over(d)) return null;
  switch (name) {
    case "lc":
      return w(d) === 0 ? null : [overhead(d), 1];
    case "wlc":
      return w(d) <= 0 ? null : [overhead(d), w(d)];
    case "sed":
      return w(d) <= 0 ? null : [act(d) + 1, w(d)];
    case "nq":
      return w(d) === 0 ? null : [act(d) === 0 ? 0 : act(d) + 1, w(d)];
    case "fo":
      return w(d) <= 0 ? null : [1, w(d)];
    case "ovf":
      return w(d) === 0 || act(d) > w(d) ? null : [1, w(d)];
  }
}

/** Index of the kernel's pick: least cost, ties to the first in list order; -1 for none. */
export function referencePick(name: StatelessScheduler, dests: readonly DestinationSpec[]): number {
  let best = -1;
  let bn = 0;
  let bd = 1;
  dests.forEach((d, i) => {
    const c = schedulerCost(name, d);
    if (!c) return;
    // c < best  <=>  c.n * bd < bn * c.d  (all denominators > 0)
    if (best < 0 || c[0] * bd < bn * c[1]) {
      best = i;
      [bn, bd] = c;
    }
  });
  return best;
}
