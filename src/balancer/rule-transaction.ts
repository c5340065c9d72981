// A configuration change of any size applied whole or not at all, and, when asked, in
// slices that let the packet loop run between them (slices.ts).
//
//   1. prepare: every service and destination is checked (Balancer.prepareService and
//      prepareDestination: the checks addService and addDestination make) and the table
//      sizes are checked against the counts, before anything changes. An error names the
//      rules line (when the configuration came from parseRules) and changes nothing.
//   2. apply: the changes of one service (its -A and -a, or its -d, -E, -e, -a) are applied
//      together within one slice, so a packet sees each service either as it was or as it
//      becomes, never half edited. Services whose changes free room go first, so the
//      tables never need more room than the old or the new configuration.
//   3. roll back: should the tables still refuse a change (a destination record held by the
//      connections of a removed destination), the changes made so far are undone in reverse
//      order and the error is thrown: the configuration is the old one again (re-added
//      entries start with zero counters).

import { ConfigError, type DestinationConfig, type RuleSet, type ServiceConfig, type ServiceKey } from "../config/types.js";
import { atRuleLine } from "../config/rule-lines.js";
import type { PreparedDestination, PreparedService, RuleTarget as Balancer } from "./prepared.js";
import { NO_SLICES, type Slicer } from "./slices.js";

export type RuleOp = "-A" | "-E" | "-D" | "-a" | "-e" | "-d" | "-P" | "-Q";

/** One change, as data: what a rule diff or a restore asks for. */
export type RuleChangeSpec =
  | {
      readonly op: "-A";
      readonly service: ServiceConfig;
      readonly destinations: readonly DestinationConfig[];
      /** Full NAT's local addresses (lvsadm -P), added after the destinations. */
      readonly localAddresses?: readonly string[];
    }
  | { readonly op: "-E"; readonly service: ServiceConfig }
  | { readonly op: "-D"; readonly service: ServiceConfig }
  | { readonly op: "-a" | "-e" | "-d"; readonly service: ServiceConfig; readonly destination: DestinationConfig }
  /** Full NAT's local address pool: lvsadm -P / -Q -z ADDRESS. */
  | { readonly op: "-P" | "-Q"; readonly service: ServiceConfig; readonly address: string };

/** What a transaction did, by operation (an -A counts its service; its destinations count as -a). */
export type RuleCounts = Record<RuleOp, number>;

type Undo = () => void;
interface Step {
  readonly op: RuleOp;
  readonly apply: (b: Balancer) => Undo;
}
interface Group {
  readonly steps: Step[];
  /** Destination records it frees (negative) or takes. */
  net: number;
  /** Removes a whole service. */
  removesService: boolean;
}

/** The error with the rules line of `item` in front, when it came from a rules text. */
function atLine(item: object, e: unknown): unknown {
  return e instanceof ConfigError ? new ConfigError(atRuleLine(item, e.message), e.code) : e;
}

function keyTextOf(b: Balancer, service: ServiceConfig, line: object): string {
  try {
    return b.prepareKeyText(service.key);
  } catch (e) {
    throw atLine(line, e);
  }
}

export class RuleTransaction {
  private done = false;
  /** How many changes of each kind were applied (after apply()). */
  readonly counts: RuleCounts = { "-A": 0, "-E": 0, "-D": 0, "-a": 0, "-e": 0, "-d": 0, "-P": 0, "-Q": 0 };

  private constructor(
    private readonly balancer: Balancer,
    private readonly groups: readonly Group[],
  ) {}

  /** Changes in the order given, grouped by service; nothing is prepared yet. */
  get size(): number {
    return this.groups.reduce((n, g) => n + g.steps.length, 0);
  }

  /**
   * `ipvsadm -R`: every service of `ruleSet` added, with its destinations, on top of the
   * running configuration. Checks all of it first; throws ConfigError naming the line.
   */
  static restore(b: Balancer, ruleSet: RuleSet): RuleTransaction {
    return RuleTransaction.prepare(
      b,
      ruleSet.services.map((s) => ({ op: "-A", service: s.service, destinations: s.destinations, localAddresses: s.localAddresses })),
    );
  }

  /**
   * Any list of changes (a rule diff). Each is checked against the running configuration
   * as changed by the ones before it; throws ConfigError naming the line, changing nothing.
   */
  static prepare(b: Balancer, specs: readonly RuleChangeSpec[]): RuleTransaction {
    const plan = RuleTransaction.plan(b, specs);
    for (;;) {
      const r = plan.next();
      if (r.done) return r.value;
    }
  }

  /** RuleTransaction.restore in slices: the same checks and errors, pausing between slices. */
  static async restoreInSlices(b: Balancer, ruleSet: RuleSet, slicer: Slicer): Promise<RuleTransaction> {
    // One -A at a time as the checks reach it: 50,000 made in one go were a slice of their own.
    function* adds(): Generator<RuleChangeSpec> {
      for (const s of ruleSet.services) yield { op: "-A", service: s.service, destinations: s.destinations, localAddresses: s.localAddresses };
    }
    const plan = RuleTransaction.plan(b, adds());
    for (;;) {
      const r = plan.next();
      if (r.done) return r.value;
      if (slicer.due()) await slicer.pauseNow();
    }
  }

  /** RuleTransaction.prepare in slices: the same checks and errors, pausing between slices. */
  static async prepareInSlices(b: Balancer, specs: readonly RuleChangeSpec[], slicer: Slicer): Promise<RuleTransaction> {
    const plan = RuleTransaction.plan(b, specs);
    for (;;) {
      const r = plan.next();
      if (r.done) return r.value;
      if (slicer.due()) await slicer.pauseNow();
    }
  }

  /** Checks the changes; yields now and then, where a slice may end. */
  private static *plan(b: Balancer, specs: Iterable<RuleChangeSpec>): Generator<void, RuleTransaction> {
    let n = 0;
    const groups = new Map<string, Group>();
    const removedServices = new Set<string>();
    const addedServices = new Set<string>();
    let destinationDelta = 0;
    let mhDelta = 0;
    const finalCount = new Map<string, { count: number; service: ServiceConfig; maglevSize: number }>();
    const groupOf = (k: string): Group => {
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { steps: [], net: 0, removesService: false }));
      return g;
    };
    const exists = (k: string) => (b.hasServiceText(k) && !removedServices.has(k)) || addedServices.has(k);
    // The service configuration the destinations of a group are checked against: the one
    // this transaction gives it (an -A or -E), else the running one.
    const serviceOf = new Map<string, PreparedService>();
    const running = (k: string, key: ServiceKey) => {
      let p = serviceOf.get(k);
      if (!p) serviceOf.set(k, (p = b.prepareService(b.serviceConfig(key))));
      return p;
    };
    const countOf = (k: string, p: PreparedService) => {
      let c = finalCount.get(k);
      if (!c) finalCount.set(k, (c = { count: b.hasServiceText(k) && !removedServices.has(k) ? b.destinationCount(k) : 0, service: p.config, maglevSize: 0 }));
      c.service = p.config;
      c.maglevSize = p.config.scheduler === "mh" ? p.scheduler[2] : 0;
      return c;
    };
    for (const spec of specs) {
      if ((++n & 15) === 0) yield;
      const k = keyTextOf(b, spec.service, spec.service);
      const g = groupOf(k);
      switch (spec.op) {
        case "-A": {
          if (exists(k)) throw new ConfigError(atRuleLine(spec.service, `Service already exists: ${k}`), "EEXIST");
          let p: PreparedService;
          try {
            p = b.prepareService(spec.service);
          } catch (e) {
            throw atLine(spec.service, e);
          }
          // Checked now, prepared again when written: keeping 200,000 prepared records
          // alive between the two made the garbage collector copy them, which cost more.
          const ids = new Set<string>();
          for (const d of spec.destinations) {
            let pd: PreparedDestination;
            try {
              pd = b.prepareDestination(p.config, d);
            } catch (e) {
              throw atLine(d, e);
            }
            if (ids.has(pd.id)) throw new ConfigError(atRuleLine(d, `Destination already exists: ${d.address}:${d.port} in ${k}`), "EEXIST");
            ids.add(pd.id);
          }
          const laddrs = spec.localAddresses ?? [];
          const seen = new Set<string>();
          for (const a of laddrs) {
            let text: string;
            try {
              text = b.prepareLocalAddress(p.config, a);
            } catch (e) {
              throw atLine(spec.service, e);
            }
            if (seen.has(text)) throw new ConfigError(atRuleLine(spec.service, `Local address already exists: ${text} in ${k}`), "EEXIST");
            seen.add(text);
          }
          const dests = spec.destinations;
          addedServices.add(k);
          serviceOf.set(k, p);
          const c = countOf(k, p);
          c.count = dests.length;
          if (p.config.scheduler === "mh") mhDelta++;
          destinationDelta += dests.length;
          g.net += dests.length;
          g.steps.push({ op: "-A", apply: (bb) => addWhole(bb, p, dests, laddrs) });
          break;
        }
        case "-D": {
          if (!exists(k)) throw new ConfigError(atRuleLine(spec.service, `No such service: ${k}`), "ESRCH");
          const key = spec.service.key;
          const n = b.destinationCount(k);
          if (b.serviceConfig(key).scheduler === "mh") mhDelta--;
          removedServices.add(k);
          serviceOf.delete(k);
          finalCount.delete(k);
          destinationDelta -= n;
          g.net -= n;
          g.removesService = true;
          g.steps.push({ op: "-D", apply: (bb) => deleteWhole(bb, key) });
          break;
        }
        case "-E": {
          if (!exists(k)) throw new ConfigError(atRuleLine(spec.service, `No such service: ${k}`), "ESRCH");
          let p: PreparedService;
          try {
            p = b.prepareService(spec.service);
          } catch (e) {
            throw atLine(spec.service, e);
          }
          const before = b.serviceConfig(spec.service.key);
          if ((before.scheduler === "mh") !== (p.config.scheduler === "mh")) mhDelta += p.config.scheduler === "mh" ? 1 : -1;
          serviceOf.set(k, p);
          countOf(k, p);
          const config = p.config;
          g.steps.push({
            op: "-E",
            apply: (bb) => {
              const old = bb.serviceConfig(config.key);
              bb.editService(config);
              return () => bb.editService(old);
            },
          });
          break;
        }
        case "-P":
        case "-Q": {
          if (!exists(k)) throw new ConfigError(atRuleLine(spec.service, `Service not defined: ${k}`), "ESRCH");
          const key = spec.service.key;
          let address: string;
          try {
            address = b.prepareLocalAddress(running(k, key).config, spec.address);
          } catch (e) {
            throw atLine(spec.service, e);
          }
          g.steps.push(
            spec.op === "-P"
              ? {
                  op: "-P",
                  apply: (bb) => {
                    bb.addLocalAddress(key, address);
                    return () => bb.deleteLocalAddress(key, address);
                  },
                }
              : {
                  op: "-Q",
                  apply: (bb) => {
                    bb.deleteLocalAddress(key, address);
                    return () => bb.addLocalAddress(key, address);
                  },
                },
          );
          break;
        }
        case "-a":
        case "-e":
        case "-d": {
          if (!exists(k)) throw new ConfigError(atRuleLine(spec.destination, `Service not defined: ${k}`), "ESRCH");
          const key = spec.service.key;
          const p = running(k, key);
          let pd: PreparedDestination;
          try {
            pd = b.prepareDestination(p.config, spec.destination);
          } catch (e) {
            throw atLine(spec.destination, e);
          }
          const c = countOf(k, p);
          if (spec.op === "-a") {
            c.count++;
            destinationDelta++;
            g.net++;
            g.steps.push({
              op: "-a",
              apply: (bb) => {
                bb.addPreparedDestination(key, pd);
                return () => bb.deleteDestination(key, pd.config);
              },
            });
          } else if (spec.op === "-e") {
            g.steps.push({
              op: "-e",
              apply: (bb) => {
                const old = bb.destinationConfig(key, pd.config);
                bb.editDestination(key, pd.config);
                return () => bb.editDestination(key, old);
              },
            });
          } else {
            c.count--;
            destinationDelta--;
            g.net--;
            g.steps.push({
              op: "-d",
              apply: (bb) => {
                const old = bb.destinationConfig(key, pd.config);
                bb.deleteDestination(key, pd.config);
                return () => void bb.addDestination(key, old);
              },
            });
          }
          break;
        }
      }
    }
    // The sizes, before anything changes (lvsd's flags name the limits).
    b.checkRoom(b.serviceCount - removedServices.size + addedServices.size, b.scheduler.destinationRecordsUsed + destinationDelta);
    for (const c of finalCount.values()) {
      if ((++n & 255) === 0) yield;
      try {
        b.checkRoom(0, 0, c.count);
        if (c.maglevSize > 0 && c.count > c.maglevSize) {
          throw new ConfigError(`a service with ${c.count} destinations does not fit its Maglev table of M = ${c.maglevSize} (-s mh)`);
        }
      } catch (e) {
        throw atLine(c.service, e);
      }
    }
    if (mhDelta > 0 && b.maglevServiceCount + mhDelta > b.scheduler.maglevTables) {
      throw new ConfigError(`${b.maglevServiceCount + mhDelta} services with scheduler mh do not fit: the tables hold ${b.scheduler.maglevTables}`);
    }
    // Room first: services removed whole, then services that free records, then the rest
    // (each in the order given, so a restore adds in file order; buckets, not a sort).
    const removed: Group[] = [];
    const freeing: Group[] = [];
    const rest: Group[] = [];
    for (const g of groups.values()) {
      (g.removesService ? removed : g.net < 0 ? freeing : rest).push(g);
      if ((++n & 1023) === 0) yield;
    }
    return new RuleTransaction(b, removed.length + freeing.length === 0 ? rest : [...removed, ...freeing, ...rest]);
  }

  /** Applies everything now, in one go (library calls); rolls back and throws on a refusal. */
  applyNow(): void {
    void this.run(NO_SLICES(), false);
  }

  /**
   * Applies in slices of `slicer`, pausing between them (whole services per slice). Rolls
   * back (in slices too) and rejects on a refusal.
   */
  applyInSlices(slicer: Slicer): Promise<void> {
    return this.run(slicer, true) as Promise<void>;
  }

  // Written once for both: with `sliced` false no await happens and the promise is settled
  // before run() returns (errors are thrown synchronously).
  private run(slicer: Slicer, sliced: boolean): Promise<void> | void {
    if (this.done) throw new Error("a RuleTransaction applies once");
    this.done = true;
    const b = this.balancer;
    const undo: Undo[] = [];
    let g = 0;
    const step = (): void => {
      for (; g < this.groups.length; ) {
        for (const s of this.groups[g].steps) {
          undo.push(s.apply(b));
          this.counts[s.op]++;
        }
        g++;
        if (sliced && slicer.due()) return;
      }
    };
    const rollback = (): void => {
      while (undo.length > 0) {
        try {
          undo.pop()!();
        } catch {
          // An undo the tables refuse leaves that one entry out; the rest still go back.
        }
        if (sliced && slicer.due()) return;
      }
    };
    const fail = (e: unknown): never => {
      for (const k of Object.keys(this.counts) as RuleOp[]) this.counts[k] = 0;
      throw e;
    };
    if (!sliced) {
      try {
        step();
      } catch (e) {
        rollback();
        fail(e);
      }
      return;
    }
    return (async () => {
      try {
        while (g < this.groups.length) {
          step();
          if (g < this.groups.length) await slicer.pauseNow();
        }
      } catch (e) {
        while (undo.length > 0) {
          rollback();
          if (undo.length > 0) await slicer.pauseNow();
        }
        fail(e);
      } finally {
        slicer.finish();
      }
    })();
  }
}

function addWhole(b: Balancer, p: PreparedService, dests: readonly DestinationConfig[], laddrs: readonly string[]): Undo {
  b.addPreparedService(p);
  try {
    for (const d of dests) b.addPreparedDestination(p, b.prepareDestination(p.config, d));
    for (const a of laddrs) b.addLocalAddress(p.config.key, a);
  } catch (e) {
    b.deleteService(p.config.key);
    throw e;
  }
  return () => b.deleteService(p.config.key);
}

function deleteWhole(b: Balancer, key: ServiceKey): Undo {
  const service = b.serviceConfig(key);
  const dests = b.destinationConfigs(key);
  const laddrs = b.localAddresses(key).map((a) => a.address);
  b.deleteService(key);
  return () => {
    b.addService(service);
    for (const d of dests) b.addDestination(key, d);
    for (const a of laddrs) b.addLocalAddress(key, a);
  };
}
