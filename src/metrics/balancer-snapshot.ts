// A MetricsSnapshot of a Balancer in this thread (the TypeScript API; lvsd's worker adds
// the director's and adapters' counters to the same shape).
import type { Balancer } from "../balancer/balancer.js";
import type { AdapterCounters, DatapathCounters, MetricsSnapshot } from "./snapshot.js";

export function balancerSnapshot(balancer: Balancer, extra: { datapath?: DatapathCounters; adapters?: readonly AdapterCounters[] } = {}): MetricsSnapshot {
  return {
    listing: balancer.listing(),
    totals: balancer.totals(),
    connections: balancer.connectionCount,
    capacity: balancer.connectionCapacity,
    ...extra,
  };
}
