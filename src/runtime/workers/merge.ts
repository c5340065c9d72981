// Totals over lvsd's data-plane workers (lvsd --workers N): every worker holds the same
// services and destinations, each with its own counters, rate estimates and connections.
// lvsadm's listings and the metrics show the sums, so they read as one director's.

import type { DestinationSnapshot, ListingSnapshot, ServiceSnapshot, TrafficCounters, TrafficRates } from "../../balancer/snapshots.js";
import type { AdapterCounters, DatapathCounters, MetricsSnapshot } from "../../metrics/snapshot.js";

function addCounters(a: TrafficCounters | undefined, b: TrafficCounters | undefined): TrafficCounters | undefined {
  if (!a || !b) return a ?? b;
  return {
    conns: a.conns + b.conns,
    inpkts: a.inpkts + b.inpkts,
    outpkts: a.outpkts + b.outpkts,
    inbytes: a.inbytes + b.inbytes,
    outbytes: a.outbytes + b.outbytes,
  };
}

function addRates(a: TrafficRates | undefined, b: TrafficRates | undefined): TrafficRates | undefined {
  if (!a || !b) return a ?? b;
  return { cps: a.cps + b.cps, inpps: a.inpps + b.inpps, outpps: a.outpps + b.outpps, inbps: a.inbps + b.inbps, outbps: a.outbps + b.outbps };
}

const destKey = (d: DestinationSnapshot) => `${d.config.address}|${d.config.port}`;

function addDestination(a: DestinationSnapshot, b: DestinationSnapshot): DestinationSnapshot {
  return {
    ...a,
    activeConns: a.activeConns + b.activeConns,
    inactConns: a.inactConns + b.inactConns,
    persistConns: a.persistConns + b.persistConns,
    ...(a.stats || b.stats ? { stats: addCounters(a.stats, b.stats) } : {}),
    ...(a.rates || b.rates ? { rates: addRates(a.rates, b.rates) } : {}),
  };
}

/** One service over every worker (the first worker's configuration and order; counters summed). */
export function mergeServices(each: readonly ServiceSnapshot[]): ServiceSnapshot {
  const [first, ...rest] = each;
  const destinations = first.destinations.map((d) => {
    let sum = d;
    for (const s of rest) {
      const other = s.destinations.find((o) => destKey(o) === destKey(d));
      if (other) sum = addDestination(sum, other);
    }
    return sum;
  });
  let stats = first.stats;
  let rates = first.rates;
  for (const s of rest) {
    stats = addCounters(stats, s.stats);
    rates = addRates(rates, s.rates);
  }
  return { ...first, ...(stats ? { stats } : {}), ...(rates ? { rates } : {}), destinations };
}

const serviceKey = (s: ServiceSnapshot) => JSON.stringify(s.config.key);

/** `ipvsadm -L` over every worker: services matched by key, table sizes added. */
export function mergeListings(each: readonly ListingSnapshot[]): ListingSnapshot {
  const [first, ...rest] = each;
  return {
    ...first,
    tableSize: each.reduce((n, l) => n + l.tableSize, 0),
    services: (() => {
      // Indexed by key: a scan of every other listing per service is quadratic at 50,000 services.
      const others = rest.map((l) => new Map(l.services.map((o) => [serviceKey(o), o] as const)));
      return first.services.map((s) => {
        const key = serviceKey(s);
        return mergeServices([s, ...others.flatMap((m) => m.get(key) ?? [])]);
      });
    })(),
  };
}

function addDatapath(a: DatapathCounters, b: DatapathCounters): DatapathCounters {
  const sum: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === "number") sum[k] = ((sum[k] as number | undefined) ?? 0) + v;
  }
  const drops: Record<string, number> = { ...a.drops };
  for (const [reason, n] of Object.entries(b.drops)) drops[reason] = (drops[reason] ?? 0) + n;
  return { ...(sum as unknown as DatapathCounters), drops };
}

/** The metrics' snapshot over every worker: sums, adapters by name. */
export function mergeMetrics(each: readonly MetricsSnapshot[]): MetricsSnapshot {
  const [first, ...rest] = each;
  const adapters = new Map<string, AdapterCounters>();
  for (const snap of each) {
    for (const a of snap.adapters ?? []) {
      const had = adapters.get(a.name);
      adapters.set(
        a.name,
        had
          ? {
              name: a.name,
              received: had.received + a.received,
              sent: had.sent + a.sent,
              sendErrors: had.sendErrors + a.sendErrors,
              truncated: had.truncated + a.truncated,
            }
          : { ...a },
      );
    }
  }
  let datapath = first.datapath;
  let stats = first.totals.stats;
  let rates = first.totals.rates;
  for (const s of rest) {
    if (datapath && s.datapath) datapath = addDatapath(datapath, s.datapath);
    stats = addCounters(stats, s.totals.stats)!;
    rates = addRates(rates, s.totals.rates)!;
  }
  return {
    listing: mergeListings(each.map((s) => s.listing)),
    totals: { stats, rates },
    ...(datapath ? { datapath } : {}),
    ...(first.adapters ? { adapters: [...adapters.values()] } : {}),
    connections: each.reduce((n, s) => n + s.connections, 0),
    capacity: each.reduce((n, s) => n + s.capacity, 0),
    workers: each.map((s) => {
      const d = s.datapath as (DatapathCounters & { handedOff?: number; takenOver?: number }) | undefined;
      return { handedOff: d?.handedOff ?? 0, takenOver: d?.takenOver ?? 0 };
    }),
  };
}
