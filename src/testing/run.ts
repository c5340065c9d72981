// Runs any scheduler, built-in or custom, over N flows on a throw-away service and returns
// the distribution. One small ServiceTable is shared by every run (wasm instances are not
// free); each run gets a fresh service, so runs do not see each other.

import { ServiceTable } from "../sched/service-table.js";
import { registerScheduler, unregisterScheduler, type CustomSchedulerFn } from "../sched/registry.js";
import type { FlowKey } from "../sched/flow.js";
import type { DestinationSpec } from "./destinations.js";

export interface RunOptions {
  /** How many flows (default 10000), or the flows themselves. */
  readonly flows?: number | readonly FlowKey[];
  /** ipvsadm -b flags. */
  readonly flags?: readonly string[];
  /** mh: table size M (default 4093) and fill order. */
  readonly maglevSize?: number;
  readonly maglevOrder?: "sorted" | "list";
  /** Seed of the twos PRNG. Default 1. */
  readonly seed?: number;
  /** Host time in ms (lblc/lblcr). Default 0. */
  readonly now?: number;
  /**
   * Count every pick as a connection on its destination (as the connection table would),
   * so least-connection schedulers see their own picks. Default "none".
   */
  readonly bind?: "none" | "active" | "inactive";
  /**
   * "edit" (default): add the destinations first, then switch the service to the scheduler,
   * like ipvsadm -E, so it starts from a full list. "incremental": create the service with
   * the scheduler and add destinations one by one (wrr then starts with a pass at cw = 1).
   */
  readonly setup?: "edit" | "incremental";
}

export interface Distribution {
  readonly scheduler: string;
  /** The chosen destination's index in `destinations`, per flow; -1 = none. */
  readonly picks: Int32Array;
  /** Picks per destination index. */
  readonly counts: number[];
  /** Flows that got no destination. */
  readonly none: number;
  readonly total: number;
  readonly destinations: readonly DestinationSpec[];
}

let shared: ServiceTable | undefined;
let customSeq = 0;

/** The ServiceTable the kit runs on (created on first use). */
export function testingTable(maglevSize = 4093): ServiceTable {
  if (!shared || shared.maglevMaxSize < maglevSize) {
    shared = new ServiceTable({
      maxServices: 8,
      maxDestinations: 4096,
      destinationsPerService: 4096,
      maglevTables: 2,
      maglevMaxSize: Math.max(65537, maglevSize),
      cacheEntries: 20000,
      batchKeys: 4096,
    });
  }
  return shared;
}

/**
 * Deterministic, well-spread flows: client addresses and ports, a few virtual addresses.
 * Without a family, IPv4 and IPv6 alternate (even flows IPv4), and so do TCP and UDP.
 */
export function defaultFlows(n: number, family?: 4 | 6): FlowKey[] {
  const flows: FlowKey[] = new Array(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const y = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0;
    const f = family ?? (i % 2 === 0 ? 4 : 6);
    const c = f === 4 ? `10.${(y >>> 16) & 255}.${(y >>> 8) & 255}.${y & 255}` : `2001:db8::${(y >>> 16).toString(16)}:${(y & 0xffff).toString(16)}`;
    const v = f === 4 ? `192.0.2.${x >>> 24}` : `2001:db8:1::${(x >>> 24).toString(16)}`;
    flows[i] = {
      clientAddress: c,
      clientPort: 1024 + (x % 60000),
      virtualAddress: v,
      virtualPort: 80,
      protocol: family !== undefined || i % 4 < 2 ? "tcp" : "udp",
    };
  }
  return flows;
}

/** Sets up a service whose list (head first) is `destinations`, and calls `body` with it. */
export function withService<T>(
  scheduler: string,
  destinations: readonly DestinationSpec[],
  options: Pick<RunOptions, "flags" | "maglevSize" | "maglevOrder" | "setup" | "seed" | "now">,
  body: (table: ServiceTable, service: number, ids: number[]) => T,
): T {
  const table = testingTable(options.maglevSize);
  const mhOpts = scheduler === "mh" ? { maglevSize: options.maglevSize, maglevOrder: options.maglevOrder } : {};
  const incremental = options.setup === "incremental";
  const service = table.createService(incremental ? { scheduler, flags: options.flags, ...mhOpts } : { scheduler: "wlc" });
  const ids: number[] = new Array(destinations.length);
  try {
    // The kernel links each new destination at the head of the list, so adding them last
    // to first leaves the list in the order given.
    for (let i = destinations.length - 1; i >= 0; i--) {
      const d = destinations[i];
      ids[i] = table.addDestination(service, {
        address: d.address,
        port: d.port ?? 80,
        weight: d.weight ?? 1,
        upperThreshold: d.upperThreshold ?? 0,
        lowerThreshold: d.lowerThreshold ?? 0,
      });
    }
    destinations.forEach((d, i) =>
      table.setLoad(ids[i], {
        active: d.activeConnections ?? 0,
        inactive: d.inactiveConnections ?? 0,
        persistent: d.persistentConnections ?? 0,
        overloaded: d.overloaded ?? false,
      }),
    );
    if (!incremental) table.editService(service, { scheduler, flags: options.flags, ...mhOpts });
    table.seed(options.seed ?? 1);
    table.setNow(options.now ?? 0);
    return body(table, service, ids);
  } finally {
    // zero the counters first: a removed destination with connections would stay in the trash
    for (const id of ids) if (table.destination(id).position >= 0) table.setLoad(id, {});
    table.deleteService(service);
  }
}

/** Runs `scheduler` (a name, or a custom function) over the flows and counts the picks. */
export function runScheduler(scheduler: string | CustomSchedulerFn, destinations: readonly DestinationSpec[], options: RunOptions = {}): Distribution {
  const name = typeof scheduler === "string" ? scheduler : `kit-custom-${++customSeq}`;
  if (typeof scheduler === "function") registerScheduler(name, scheduler);
  try {
    const flows = typeof options.flows === "object" ? options.flows : defaultFlows(options.flows ?? 10000);
    return withService(name, destinations, options, (table, service, ids) => {
      const index = new Map(ids.map((id, i) => [id, i]));
      const picks = new Int32Array(flows.length);
      const bind = options.bind ?? "none";
      if (bind === "none") {
        const res = table.scheduleMany(service, flows);
        for (let i = 0; i < res.length; i++) picks[i] = res[i] < 0 ? -1 : index.get(res[i])!;
      } else {
        for (let i = 0; i < flows.length; i++) {
          const d = table.schedule(service, flows[i]);
          picks[i] = d === null ? -1 : index.get(d)!;
          if (d !== null) table.bindConnection(d, bind);
        }
      }
      const counts = new Array(destinations.length).fill(0);
      let none = 0;
      for (const p of picks)
        if (p < 0) none++;
        else counts[p]++;
      return { scheduler: name, picks, counts, none, total: flows.length, destinations };
    });
  } finally {
    if (typeof scheduler === "function") unregisterScheduler(name);
  }
}

/** The Maglev lookup table for `destinations`: per slot, an index into `destinations` (-1 empty). */
export function maglevTable(destinations: readonly DestinationSpec[], options: { size?: number; order?: "sorted" | "list" } = {}): Int32Array {
  const size = options.size ?? 4093;
  return withService("mh", destinations, { maglevSize: size, maglevOrder: options.order }, (table, service, ids) => {
    const index = new Map(ids.map((id, i) => [id, i]));
    return table.maglevTable(service).map((d) => (d < 0 ? -1 : index.get(d)!));
  });
}
