// The typed face of the scheduler tables in wasm: services (ipvsadm -A/-E/-D), destinations
// (-a/-e/-d), connection counters with the kernel's overload rule, and schedule(). Input
// is validated whole before the data plane is touched, so a rejected call changes nothing.

import { instantiateWasm, wasmHostHooks, type LvsWasmExports } from "../core/wasm.js";
import { SchedulerConfigError, checkCode } from "./errors.js";
import { FLOW_KEY_BYTES, formatAddress, parseAddress, readFlowKey, writeFlowKey, type FlowKey } from "./flow.js";
import { customScheduler, customSchedulerByHandle, customSchedulerNames, type DestinationState, type ScheduleContext } from "./registry.js";

export interface ServiceTableOptions {
  /** Default 64, at most 1,048,576 (memory is the real limit). */
  readonly maxServices?: number;
  /** Destination records shared by all services (a removed one with live connections keeps its record). Default 4096, at most 1,048,575. */
  readonly maxDestinations?: number;
  /** Longest destination list of one service. Default 1024. */
  readonly destinationsPerService?: number;
  /** Services that may use mh at the same time. Default 4. */
  readonly maglevTables?: number;
  /** Largest Maglev table size M. Default 65537. */
  readonly maglevMaxSize?: number;
  /** lblc / lblcr cache entries shared by all services. Default 32768. */
  readonly cacheEntries?: number;
  /** Flow keys scheduleMany() passes per wasm call. Default 1024. */
  readonly batchKeys?: number;
  /** Seed of the twos PRNG (tests replay with the same seed). Default 1. */
  readonly seed?: number;
}

export interface ServiceOptions {
  /** A built-in (rr, wrr, lc, wlc, sed, nq, fo, ovf, twos, sh, dh, lblc, lblcr, mh) or registered name. Default "wlc". */
  readonly scheduler?: string;
  /** ipvsadm -b flags: flag-1..flag-3, sh-fallback/sh-port (sh), mh-fallback/mh-port (mh). */
  readonly flags?: readonly string[];
  /** mh only: table size M, a prime. Default 4093 (the kernel's). */
  readonly maglevSize?: number;
  /** mh only: fill in sorted (family, address, port) order (default, independent of the order destinations were added) or in list order as the kernel does. */
  readonly maglevOrder?: "sorted" | "list";
}

export interface DestinationOptions {
  readonly address: string;
  readonly port?: number;
  /** 0..65535, default 1; 0 = quiesced. */
  readonly weight?: number;
  /** -x: OVERLOAD when active + inactive >= this; 0 = none. */
  readonly upperThreshold?: number;
  /** -y: OVERLOAD cleared below this; 0 = below 3/4 of the upper threshold. */
  readonly lowerThreshold?: number;
}

export type DestinationEdit = Partial<Pick<DestinationOptions, "weight" | "upperThreshold" | "lowerThreshold">>;

export type ConnectionKind = "active" | "inactive" | "persistent";
const KIND: Record<ConnectionKind, number> = { active: 0, inactive: 1, persistent: 2 };

export interface SchedulerInfo {
  readonly name: string;
  readonly id: number;
  readonly flagNames: readonly string[];
  readonly custom: boolean;
}

type Fn = (...args: number[]) => number;

/** A service's scheduler arguments, checked: what createServiceWith() writes (serviceArguments()). */
export type ServiceArguments = readonly [scheduler: number, flags: number, maglevSize: number, handle: number];

/** A destination's fields, checked: what addDestinationWith() writes (destinationArguments()). */
export interface DestinationArguments {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly port: number;
  readonly weight: number;
  readonly upper: number;
  readonly lower: number;
}

const GENERIC_FLAGS = ["flag-1", "flag-2", "flag-3"];
/** Largest table sizes the data plane carves (assembly/sched/init.ts; one action per destination, 2^20 in all). */
export const MAX_SERVICES = 1 << 20;
export const MAX_DESTINATIONS = (1 << 20) - 1;
const MH_LIST_ORDER = 0x100;
export const KERNEL_MAGLEV_SIZE = 4093;

// Destination record fields (assembly/sched/table.ts).
const D = {
  service: 0,
  weight: 4,
  lastWeight: 8,
  flags: 12,
  active: 16,
  inactive: 20,
  persist: 24,
  upper: 28,
  lower: 32,
  port: 36,
  family: 38,
  pos: 40,
  addr: 48,
};
const S = { inUse: 0, sched: 4, flags: 8, nDests: 12, param: 16, mhSize: 20 };

function int(v: number | undefined, dflt: number, field: string, lo: number, hi: number, hint = ""): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new SchedulerConfigError(`${field}: ${JSON.stringify(v)} is not an integer in ${lo}..${hi}${hint}`);
  }
  return v;
}

function isPrime(m: number): boolean {
  if (m < 2) return false;
  for (let f = 2; f * f <= m; f++) if (m % f === 0) return false;
  return true;
}

export class ServiceTable {
  readonly wasm: LvsWasmExports;
  readonly maxServices: number;
  readonly maxDestinations: number;
  readonly maglevMaxSize: number;
  readonly destinationsPerService: number;
  readonly batchKeys: number;
  /** Services that may use mh at the same time. */
  readonly maglevTables: number;
  private readonly builtins: SchedulerInfo[];
  private readonly hostId: number;
  private readonly f: Record<string, Fn>;
  private u8: Uint8Array;
  private nowMs = 0;

  /** Carves the scheduler tables in `wasm` (a fresh instance unless given, e.g. a PacketCore's). */
  constructor(options: ServiceTableOptions = {}, wasm: LvsWasmExports = instantiateWasm()) {
    const services = int(options.maxServices, 64, "maxServices", 1, MAX_SERVICES);
    const dests = int(options.maxDestinations, 4096, "maxDestinations", 1, MAX_DESTINATIONS);
    const perService = int(options.destinationsPerService, Math.min(1024, dests), "destinationsPerService", 1, dests, " (and at most maxDestinations)");
    const mhTables = int(options.maglevTables, 4, "maglevTables", 0, 1024);
    const mhMax = int(options.maglevMaxSize, 65537, "maglevMaxSize", 2, 1 << 24);
    const cache = int(options.cacheEntries, 32768, "cacheEntries", 0, 1 << 24);
    const keys = int(options.batchKeys, 1024, "batchKeys", 1, 1 << 20);
    const seed = int(options.seed, 1, "seed", 0, 2 ** 32 - 1);
    this.wasm = wasm;
    this.f = wasm as unknown as Record<string, Fn>;
    const rc = this.f.schedInit(services, dests, perService, mhTables, mhMax, cache, keys);
    if (rc !== 0) throw new SchedulerConfigError(rc === 1 ? "schedInit: this wasm instance already has scheduler tables" : `schedInit failed with code ${rc}`);
    this.maxServices = services;
    this.maxDestinations = dests;
    this.maglevMaxSize = mhMax;
    this.destinationsPerService = perService;
    this.batchKeys = keys;
    this.maglevTables = mhTables;
    this.u8 = new Uint8Array(wasm.memory.buffer);
    this.builtins = this.readNames();
    this.hostId = this.builtins.find((s) => s.name === "*host")?.id ?? -1;
    this.f.schedSeed(seed >>> 0, 0);
    wasmHostHooks(wasm).customSchedule = (svc, handle, keyPtr) => this.callCustom(svc, handle, keyPtr);
  }

  private mem(): Uint8Array {
    if (this.u8.buffer !== this.wasm.memory.buffer) this.u8 = new Uint8Array(this.wasm.memory.buffer);
    return this.u8;
  }
  private view(at: number, len: number): DataView {
    const m = this.mem();
    return new DataView(m.buffer, at, len);
  }

  private readNames(): SchedulerInfo[] {
    const n = this.f.schedNames();
    const text = Buffer.from(this.mem().subarray(this.f.schedNamesPtr(), this.f.schedNamesPtr() + n)).toString("latin1");
    return text
      .split("\n")
      .filter(Boolean)
      .map((line, id) => {
        const [name, flags] = line.split("\t");
        return { name, id, flagNames: flags ? flags.split(",") : [], custom: false };
      });
  }

  /** Every scheduler name usable now: the data plane's, then the registered TypeScript ones. */
  schedulers(): SchedulerInfo[] {
    const out = this.builtins.filter((s) => !s.name.startsWith("*"));
    for (const name of customSchedulerNames()) {
      if (out.some((s) => s.name === name)) continue;
      const c = customScheduler(name)!;
      out.push({ name, id: this.hostId, flagNames: c.flagNames, custom: true });
    }
    return out;
  }

  /** True for the name of a scheduler of the data plane (rr, wlc, mh, ...). */
  isBuiltin(name: string): boolean {
    this.builtinNames ??= new Set(this.builtins.filter((s) => !s.name.startsWith("*")).map((s) => s.name));
    return this.builtinNames.has(name);
  }
  private builtinNames: Set<string> | undefined;

  /** Resolves a scheduler name as `-s NAME` does. */
  resolve(name: string): SchedulerInfo & { handle: number } {
    const b = this.builtins.find((s) => s.name === name && !s.name.startsWith("*"));
    if (b) return { ...b, handle: 0 };
    const c = customScheduler(name);
    if (c) return { name, id: this.hostId, flagNames: c.flagNames, custom: true, handle: c.handle };
    const names = this.schedulers()
      .map((s) => s.name)
      .join(", ");
    throw new SchedulerConfigError(`scheduler: ${JSON.stringify(name)} is not a scheduler: use one of ${names}, or registerScheduler() it`);
  }

  /**
   * Checks a service's scheduler options without touching the tables: a large restore
   * checks every service first, then writes them (createServiceWith).
   */
  serviceArguments(options: ServiceOptions): ServiceArguments {
    const sched = this.resolve(options.scheduler ?? "wlc");
    const allowed = [...sched.flagNames];
    let flags = 0;
    for (const flag of options.flags ?? []) {
      const named = allowed.indexOf(flag);
      const generic = GENERIC_FLAGS.indexOf(flag);
      if (named < 0 && generic < 0) {
        throw new SchedulerConfigError(`flags: "${flag}" is not a flag of scheduler ${sched.name}: use ${[...allowed, ...GENERIC_FLAGS].join(", ")}`);
      }
      flags |= 1 << (named >= 0 ? named : generic);
    }
    const isMh = sched.name === "mh";
    if (!isMh && (options.maglevSize !== undefined || options.maglevOrder !== undefined)) {
      throw new SchedulerConfigError(`maglevSize / maglevOrder: apply to scheduler mh only, not ${sched.name}`);
    }
    let m = 0;
    if (isMh) {
      m = options.maglevSize ?? KERNEL_MAGLEV_SIZE;
      if (!Number.isInteger(m) || !isPrime(m) || m > this.maglevMaxSize) {
        throw new SchedulerConfigError(
          `maglevSize: ${JSON.stringify(m)} is not a prime in 2..${this.maglevMaxSize} (kernel default 4093; 65537 and other primes allowed; raise maglevMaxSize for larger)`,
        );
      }
      const order = options.maglevOrder ?? "sorted";
      if (order !== "sorted" && order !== "list") throw new SchedulerConfigError(`maglevOrder: ${JSON.stringify(order)} is not "sorted" or "list"`);
      if (order === "list") flags |= MH_LIST_ORDER;
    }
    return [sched.id, flags, m, sched.handle];
  }

  /** ipvsadm -A. Returns the service id. */
  createService(options: ServiceOptions = {}): number {
    return this.createServiceWith(this.serviceArguments(options));
  }

  /** ipvsadm -A with arguments serviceArguments() checked. Returns the service id. */
  createServiceWith(args: ServiceArguments): number {
    const [id, flags, m, handle] = args;
    const svc = this.f.svcCreate(id, flags, m, handle);
    return svc >= 0 ? svc : checkCode(svc, `service (scheduler ${this.builtins[id]?.name ?? "custom"})`);
  }

  /** ipvsadm -E: changes the scheduler, flags or Maglev size (validated first). */
  editService(service: number, options: ServiceOptions): void {
    this.checkService(service);
    const [id, flags, m, handle] = this.serviceArguments(options);
    const n = this.serviceField(service, S.nDests);
    if (m > 0 && n > m) {
      throw new SchedulerConfigError(`maglevSize: ${m} is smaller than the service's ${n} destinations; a Maglev table needs M >= destinations`);
    }
    checkCode(this.f.svcEdit(service, id, flags, m, handle), `service ${service}`);
  }

  /** ipvsadm -D. */
  deleteService(service: number): void {
    this.checkService(service);
    checkCode(this.f.svcDelete(service), `service ${service}`);
  }

  private serviceField(service: number, field: number): number {
    return this.words().getUint32(this.f.schedServicesPtr() + service * this.f.schedServiceBytes() + field, true);
  }

  /** The whole memory as a DataView, made again only when the memory grew. */
  private words(): DataView {
    const m = this.mem();
    if (this.whole?.buffer !== m.buffer) this.whole = new DataView(m.buffer);
    return this.whole;
  }

  private checkService(service: number): void {
    if (!Number.isInteger(service) || service < 0 || service >= this.maxServices || this.serviceField(service, S.inUse) === 0) {
      throw new SchedulerConfigError(`service: ${JSON.stringify(service)} is not an existing service id`);
    }
  }

  /** The scheduler name of a service. */
  schedulerOf(service: number): string {
    this.checkService(service);
    const id = this.serviceField(service, S.sched);
    if (id === this.hostId) return customSchedulerByHandle(this.serviceField(service, S.param))?.name ?? "(unregistered)";
    return this.builtins[id].name;
  }

  /** ipvsadm -a. Returns the destination id. */
  addDestination(service: number, options: DestinationOptions): number {
    this.checkService(service);
    return this.addDestinationWith(service, this.destinationArguments(options));
  }

  /** Checks a destination's fields as addDestination does, without touching the tables. */
  destinationArguments(options: DestinationOptions): DestinationArguments {
    const addr = parseAddress(options.address, "address");
    return {
      family: addr.family,
      bytes: addr.bytes,
      port: int(options.port, 0, "port", 0, 65535),
      weight: int(options.weight, 1, "weight", 0, 65535, " (0 = quiesced)"),
      upper: int(options.upperThreshold, 0, "upperThreshold", 0, 2 ** 31 - 1),
      lower: int(options.lowerThreshold, 0, "lowerThreshold", 0, 2 ** 31 - 1),
    };
  }

  /** ipvsadm -a with fields destinationArguments() checked, to an existing service. Returns the destination id. */
  addDestinationWith(service: number, a: DestinationArguments): number {
    const n = this.serviceField(service, S.nDests);
    const m = this.serviceField(service, S.mhSize);
    if (m > 0 && n + 1 > m && this.builtins[this.serviceField(service, S.sched)]?.name === "mh") {
      throw new SchedulerConfigError(`destination: service ${service} has a Maglev table of M = ${m}; it cannot hold more than ${m} destinations`);
    }
    this.mem().set(a.bytes, this.f.schedAddrPtr());
    const id = this.f.destAdd(service, a.family, a.port, a.weight, a.upper, a.lower);
    // The message is made only for a refusal: 200,000 additions format no address.
    return id >= 0 ? id : checkCode(id, `destination ${formatAddress(a.bytes, a.family)}:${a.port}`);
  }

  /** Destination records in use, those of removed destinations still held by connections included. */
  get destinationRecordsUsed(): number {
    return this.f.schedDestsUsed() >>> 0;
  }

  /** ipvsadm -e: fields not given keep their value. */
  editDestination(dest: number, edit: DestinationEdit): void {
    const cur = this.destination(dest);
    if (cur.position < 0) throw new SchedulerConfigError(`destination: ${dest} was removed`);
    const weight = int(edit.weight, cur.weight, "weight", 0, 65535, " (0 = quiesced)");
    const upper = int(edit.upperThreshold, cur.upperThreshold, "upperThreshold", 0, 2 ** 31 - 1);
    const lower = int(edit.lowerThreshold, cur.lowerThreshold, "lowerThreshold", 0, 2 ** 31 - 1);
    checkCode(this.f.destEdit(dest, weight, upper, lower), `destination ${dest}`);
  }

  /** ipvsadm -d. A destination with live connections keeps its record (and counters) until they end. */
  removeDestination(dest: number): void {
    this.destination(dest);
    checkCode(this.f.destRemove(dest), `destination ${dest}`);
  }

  private destView(dest: number): DataView {
    return this.view(this.f.schedDestsPtr() + dest * this.f.schedDestBytes(), 64);
  }

  /** A destination's current state (position -1 once removed). */
  destination(dest: number): DestinationState & { service: number } {
    if (!Number.isInteger(dest) || dest < 0 || dest >= this.maxDestinations)
      throw new SchedulerConfigError(`destination: ${JSON.stringify(dest)} is not a destination id`);
    const v = this.destView(dest);
    const service = v.getUint32(D.service, true);
    if (service === 0xffffffff) throw new SchedulerConfigError(`destination: ${dest} is not an existing destination id`);
    const family = v.getUint8(D.family) as 4 | 6;
    const pos = v.getUint32(D.pos, true);
    const at = this.f.schedDestsPtr() + dest * this.f.schedDestBytes() + D.addr;
    return {
      id: dest,
      service,
      position: pos === 0xffffffff ? -1 : pos,
      address: formatAddress(this.mem().subarray(at, at + 16), family),
      family,
      port: v.getUint16(D.port, true),
      weight: v.getInt32(D.weight, true),
      lastWeight: v.getInt32(D.lastWeight, true),
      activeConnections: v.getInt32(D.active, true),
      inactiveConnections: v.getInt32(D.inactive, true),
      persistentConnections: v.getInt32(D.persist, true),
      upperThreshold: v.getUint32(D.upper, true),
      lowerThreshold: v.getUint32(D.lower, true),
      overloaded: (v.getUint32(D.flags, true) & 2) !== 0,
    };
  }

  /**
   * A destination's weight and connection counters only: what a listing needs for each of
   * 200,000 destinations, without building the address text `destination()` builds.
   */
  load(dest: number): { weight: number; active: number; inactive: number; persistent: number } {
    if (!Number.isInteger(dest) || dest < 0 || dest >= this.maxDestinations)
      throw new SchedulerConfigError(`destination: ${JSON.stringify(dest)} is not a destination id`);
    const w = this.words();
    const at = this.f.schedDestsPtr() + dest * this.f.schedDestBytes();
    return {
      weight: w.getInt32(at + D.weight, true),
      active: w.getInt32(at + D.active, true),
      inactive: w.getInt32(at + D.inactive, true),
      persistent: w.getInt32(at + D.persist, true),
    };
  }
  private whole: DataView | undefined;

  /** Destination ids of a service in list order. */
  destinationIds(service: number): number[] {
    this.checkService(service);
    const n = this.serviceField(service, S.nDests);
    const v = this.view(this.f.schedOrderPtr(service), Math.max(4, n * 4));
    return Array.from({ length: n }, (_, i) => v.getUint32(i * 4, true));
  }

  /** The service's destinations in list order. */
  destinations(service: number): DestinationState[] {
    return this.destinationIds(service).map((d) => this.destination(d));
  }

  /** Schedules one new flow: the destination id, or null when none is available. */
  schedule(service: number, flow: FlowKey): number | null {
    const at = this.f.schedKeysPtr();
    writeFlowKey(this.mem(), at, flow);
    const d = this.f.schedule(service, at);
    return d < 0 ? null : d;
  }

  /** Schedules many flows (batched through wasm); -1 where none was available. */
  scheduleMany(service: number, flows: readonly FlowKey[]): Int32Array {
    this.checkService(service);
    const out = new Int32Array(flows.length);
    const keys = this.f.schedKeysPtr();
    for (let start = 0; start < flows.length; start += this.batchKeys) {
      const count = Math.min(this.batchKeys, flows.length - start);
      const mem = this.mem();
      for (let i = 0; i < count; i++) writeFlowKey(mem, keys + i * FLOW_KEY_BYTES, flows[start + i]);
      this.f.scheduleBatch(service, count);
      const res = this.f.schedResultsPtr();
      out.set(new Int32Array(this.mem().buffer, res, count), start);
    }
    return out;
  }

  /** A connection was bound to dest (kernel ip_vs_bind_dest): counts it, applies the upper threshold. */
  bindConnection(dest: number, kind: ConnectionKind = "active"): void {
    this.destination(dest);
    this.f.destConnBind(dest, this.kind(kind));
  }
  /** A connection left dest (ip_vs_unbind_dest): uncounts it, applies the lower threshold. */
  unbindConnection(dest: number, kind: ConnectionKind = "active"): void {
    this.destination(dest);
    this.f.destConnUnbind(dest, this.kind(kind));
  }
  /** A connection of dest moved between inactive and active (TCP state change). */
  setConnectionActive(dest: number, active: boolean): void {
    this.destination(dest);
    this.f.destConnSetActive(dest, active ? 1 : 0);
  }
  private kind(kind: ConnectionKind): number {
    const k = KIND[kind];
    if (k === undefined) throw new SchedulerConfigError(`kind: ${JSON.stringify(kind)} is not active, inactive or persistent`);
    return k;
  }

  /** Simulation hook: sets counters and the OVERLOAD flag directly (no threshold rule). */
  setLoad(dest: number, load: { active?: number; inactive?: number; persistent?: number; overloaded?: boolean }): void {
    this.destination(dest);
    const a = int(load.active, 0, "active", 0, 2 ** 23);
    const i = int(load.inactive, 0, "inactive", 0, 2 ** 31 - 1);
    const p = int(load.persistent, 0, "persistent", 0, 2 ** 31 - 1);
    this.f.destSetLoad(dest, a, i, p, load.overloaded ? 1 : 0);
  }

  /** Host time (ms, wrap-safe u32) for lblc/lblcr. */
  setNow(ms: number): void {
    this.nowMs = ms >>> 0;
    this.f.schedSetNow(this.nowMs);
  }
  /** Sets the time and runs periodic work due (lblc/lblcr collectors, every 60 s). */
  tick(ms: number): void {
    this.nowMs = ms >>> 0;
    this.f.schedTick(this.nowMs);
  }
  /** Reseeds the twos PRNG. */
  seed(lo: number, hi = 0): void {
    this.f.schedSeed(lo >>> 0, hi >>> 0);
  }
  /** The lblc_expiration / lblcr_expiration sysctls, in ms (default 24 h). */
  setCacheExpiration(lblcMs: number, lblcrMs = lblcMs): void {
    this.f.schedSetExpiration(int(lblcMs, 0, "lblcMs", 1, 2 ** 31 - 1), int(lblcrMs, 0, "lblcrMs", 1, 2 ** 31 - 1));
  }
  cacheEntries(service: number): number {
    this.checkService(service);
    return this.f.schedCacheEntries(service);
  }

  /** A copy of the service's Maglev lookup table: destination id per slot, -1 = empty. */
  maglevTable(service: number): Int32Array {
    this.checkService(service);
    const ptr = this.f.mhTablePtr(service);
    if (ptr === 0) throw new SchedulerConfigError(`service ${service} does not use scheduler mh`);
    const m = this.serviceField(service, S.mhSize);
    return new Int32Array(this.mem().buffer, ptr, m).slice();
  }
  /** How many times the service's Maglev table was built. */
  maglevBuilds(service: number): number {
    this.checkService(service);
    return this.f.mhBuildCount(service);
  }

  private callCustom(service: number, handle: number, keyPtr: number): number {
    const custom = customSchedulerByHandle(handle);
    if (!custom) return -1;
    const destinations = this.destinations(service);
    const flagBits = this.serviceField(service, S.flags);
    const flags: string[] = [];
    for (let b = 0; b < 3; b++) if (flagBits & (1 << b)) flags.push(custom.flagNames[b] ?? GENERIC_FLAGS[b]);
    const ctx: ScheduleContext = { service, flags, destinations, flow: readFlowKey(this.mem(), keyPtr), now: this.nowMs };
    const pick = custom.schedule(ctx);
    if (pick === -1 || pick === null || pick === undefined) return -1;
    if (!Number.isInteger(pick) || pick < -1 || pick >= destinations.length) {
      throw new SchedulerConfigError(
        `scheduler "${custom.name}" returned ${JSON.stringify(pick)}: return an index into ctx.destinations (0..${destinations.length - 1}) or -1`,
      );
    }
    return pick;
  }
}
