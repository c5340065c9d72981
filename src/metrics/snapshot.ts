// What the metrics read, gathered in one go per scrape: the balancer's listing with its
// counters and rate estimates, the director's packet counters, the adapters' counters and
// the connection table's fill. In lvsd the data plane's worker thread builds it (the
// counters live there) and posts it to the main thread, where the metrics are served; it
// is plain structured-clonable data (bigints included).
import type { ListingSnapshot, TrafficCounters, TrafficRates } from "../balancer/snapshots.js";

export interface AdapterCounters {
  readonly name: string;
  readonly received: number;
  readonly sent: number;
  readonly sendErrors: number;
  readonly truncated: number;
}

export interface DatapathCounters {
  readonly received: number;
  readonly forwarded: number;
  readonly replied: number;
  readonly passed: number;
  readonly dropped: number;
  readonly sendFailures: number;
  readonly neighbourMisses: number;
  /** Drops by reason name. */
  readonly drops: Readonly<Record<string, number>>;
}

export interface MetricsSnapshot {
  readonly listing: ListingSnapshot;
  /** The whole balancer's counters (what /proc/net/ip_vs_stats shows). */
  readonly totals: { readonly stats: TrafficCounters; readonly rates: TrafficRates };
  readonly datapath?: DatapathCounters;
  readonly adapters?: readonly AdapterCounters[];
  readonly connections: number;
  readonly capacity: number;
  /** lvsd --workers N (N > 1): per worker, the packets it handed to another worker's ring and took from the others. */
  readonly workers?: ReadonlyArray<{ readonly handedOff: number; readonly takenOver: number }>;
}

/** Health state as the metrics see it (the health checker's status(), structurally). */
export interface HealthSnapshot {
  readonly virtualServers: ReadonlyArray<{
    readonly services: readonly string[];
    readonly quorumUp: boolean;
    readonly sorryServerActive: boolean;
    readonly realServers: ReadonlyArray<{
      readonly address: string;
      readonly port: number;
      readonly alive: boolean;
      readonly weight: number;
      readonly lastTransition: number;
      readonly checks: ReadonlyArray<{ readonly type: string; readonly up: boolean; readonly runs: number; readonly failures: number }>;
    }>;
  }>;
}
