// The Balancer: IPVS as a typed object. It owns one data-plane instance (packet slots,
// scheduler tables, connection table, counters) and keeps the configuration model beside it,
// so that every ipvsadm operation is validated whole against the model before the data
// plane changes, and a rejected call changes nothing.

import { Desc, type LinkType, type DropReason, type Verdict } from "../core/abi.js";
import { ACTION_SIZE, encodeAction, encodeAddress, encodeMac, type ForwardAction } from "../core/actions.js";
import { PacketCore } from "../core/packet-core.js";
import { instantiateWasm, type WasmMemory } from "../core/wasm.js";
import { ServiceTable } from "../sched/service-table.js";
import type { PreparedDestination, PreparedService } from "./prepared.js";
import { SchedulerConfigError } from "../sched/errors.js";
import { ConfigError, type DestinationConfig, type RuleSet, type ServiceConfig, type ServiceKey, type ServiceWithDestinations } from "../config/types.js";
import type { ConnectionSnapshot, DestinationSnapshot, ListingSnapshot, ServiceSnapshot, Timeouts } from "./snapshots.js";
import {
  canonicalAddress,
  canonicalText,
  familyOfKey,
  normaliseDestination,
  normaliseService,
  normaliseServiceKey,
  persistencePrefix,
  serviceKeyText,
  PROTOCOL_NUMBER,
} from "./validate.js";
import { readConnection, readStatsBlock, type ConnectionRecord } from "./memory-readers.js";
import { findSyncTarget, IMPORT_RESULTS, readSyncRecord, SYNC_FLAG, SYNC_RECORD_BYTES, type SyncImportResult, type SyncRecord } from "./sync-records.js";
import { IPVS_SYSCTLS, checkSysctl, type IpvsSysctlName, type IpvsSysctls } from "./sysctls.js";
import { normaliseFragmentOptions, readFragmentStats, type FragmentOptions, type FragmentStats } from "./fragments.js";
import { atRuleLine } from "../config/rule-lines.js";
import { RuleTransaction } from "./rule-transaction.js";
import type { Slicer } from "./slices.js";

/** The error with the rules line of `item` in front, when it has one. */
function atLine(item: object, e: unknown): unknown {
  if (e instanceof ConfigError) return new ConfigError(atRuleLine(item, e.message), e.code);
  return e;
}

export interface DirectorAddressing {
  /** Our MAC: the source of every Ethernet frame we send. */
  readonly mac?: string;
  /** Next-hop MAC for destinations with no neighbour entry, per family. */
  readonly gatewayMac4?: string;
  readonly gatewayMac6?: string;
  /** Outer source address of IPv4 / IPv6 tunnels (ipvsadm -i). */
  readonly tunnelSource4?: string;
  readonly tunnelSource6?: string;
  /** Egress MTU for tunnelled packets: larger DF packets get ICMP fragmentation-needed. Default: no check. */
  readonly tunnelMtu?: number;
  /**
   * Why direct routing (ipvsadm -g) cannot work here, e.g. "needs an Ethernet adapter ..."
   * for a director over a TUN device, which carries no MAC addresses: a -g destination is
   * then refused with this reason. Default: allowed.
   */
  readonly directRoutingUnavailable?: string;
}

export interface BalancerOptions {
  /** Connection table capacity (fixed at start). Default 65,536. */
  readonly connections?: number;
  readonly maxServices?: number;
  readonly maxDestinations?: number;
  readonly destinationsPerService?: number;
  /** Packet slots: the largest batch of one process() call. Default 256. */
  readonly slots?: number;
  /** Largest packet per slot. Default 65,600 (a GSO super-frame). */
  readonly slotCapacity?: number;
  readonly neighbours?: number;
  readonly maglevTables?: number;
  readonly maglevMaxSize?: number;
  readonly seed?: number;
  /** Drop connections of a removed destination on their next packet (sysctl expire_nodest_conn). Default false. */
  readonly expireNodestConn?: boolean;
  /** Persistence templates of a quiesced destination stop pinning (expire_quiescent_template). Default false. */
  readonly expireQuiescentTemplate?: boolean;
  /** A SYN on a TIME_WAIT connection is a new connection (conn_reuse_mode 1). Default true. */
  readonly connReuse?: boolean;
  /**
   * IPVS sysctls (net.ipv4.vs.*) that change decisions, applied after the three switches
   * above (see docs/balancer.md, "Sysctls"). Unset ones keep the kernel's defaults.
   */
  readonly sysctls?: Partial<IpvsSysctls>;
  readonly director?: DirectorAddressing;
  /** Full NAT's local addresses, all services together (lvsadm --add-laddr). Default 256, at most 65,535. */
  readonly localAddresses?: number;
  /**
   * Ports a local address hands out to full-NAT flows, [low, high] (the role of
   * net.ipv4.ip_local_port_range). Default [32768, 60999], the kernel's.
   */
  readonly localPortRange?: readonly [number, number];
  /** IP fragment tracking: datagrams, held memory, time (docs/fragments.md). Defaults 1024, 4 MiB, 30 s. */
  readonly fragments?: FragmentOptions;
  /**
   * Called once with the module's memory right after it is instantiated, before any slot
   * or table is carved: the place for operating-system advice such as huge pages
   * (`adviseHugePages` from the I/O adapters). The core itself does no I/O.
   */
  readonly prepareMemory?: (memory: WasmMemory) => void;
}

/** What happened to one packet. */
export interface PacketOutcome {
  readonly verdict: Verdict;
  readonly reason: DropReason;
  /** Destination id the packet was sent to or for, or null. */
  readonly destination: number | null;
  /** AUX_* bits (see assembly/datapath/process.ts). */
  readonly flags: number;
  /** The packet as it now stands. */
  readonly packet: Uint8Array;
}

export type BalancerEvent =
  | { readonly type: "flow-created"; readonly connection: number; readonly destination: number; readonly service: ServiceKey }
  | { readonly type: "flow-expired"; readonly connection: number; readonly destination: number; readonly service: ServiceKey | null }
  | { readonly type: "destination-overloaded"; readonly destination: number; readonly service: ServiceKey | null }
  | { readonly type: "destination-underloaded"; readonly destination: number; readonly service: ServiceKey | null };

export type BalancerEventListener = (event: BalancerEvent) => void;

/** Bits of PacketOutcome.flags. */
export const PacketFlags = { NeedsNeighbour: 1, TowardClient: 2, NewFlow: 4 } as const;

interface DestEntry {
  id: number;
  config: DestinationConfig;
}
interface ServiceEntry {
  id: number;
  config: ServiceConfig;
  /** By "address|port", in the order they were added (a Map keeps it): one lookup each, whatever the count. */
  dests: Map<string, DestEntry>;
  /** Full NAT's local addresses (canonical text -> data-plane entry), in the order added. */
  laddrs: Map<string, number>;
}

/** One local address of a full-NAT service, as `lvsadm --get-laddr` shows it. */
export interface LocalAddressSnapshot {
  readonly address: string;
  /** Connections sourced from it now. */
  readonly connections: number;
  /** New flows it could not take for want of a free port (since it was added). */
  readonly exhausted: number;
}

// join() makes one flat string (a template makes a tree of three, kept as a key for every destination).
const destKey = (address: string, port: number) => [address, port].join("|");

/** The local addresses of a service that has none (most): shared, never written (an empty Map each was 10 MB at 50,000 services). */
const NO_LOCAL_ADDRESSES: Map<string, number> = new Map();

type Fn = (...args: number[]) => number;
const STATE = { established: 1, finWait: 4, udp: 11 } as const;
/** Snapshots the sync ring holds between two drains (a batch queues at most two per packet). */
const SYNC_RING_CAPACITY = 1024;
const EVENT_TYPES = ["", "flow-created", "flow-expired", "destination-overloaded", "destination-underloaded"] as const;

export type { PreparedDestination, PreparedService } from "./prepared.js";

export class Balancer {
  readonly core: PacketCore;
  readonly scheduler: ServiceTable;
  readonly connectionCapacity: number;
  private readonly f: Record<string, Fn>;
  /** By service key text, in the order they were added: lookups stay flat at 50,000 services. */
  private readonly services = new Map<string, ServiceEntry>();
  private readonly director: DirectorAddressing;
  private readonly listeners = new Set<BalancerEventListener>();
  private readonly serviceById = new Map<number, ServiceEntry>();
  private sweepCursorBudget: number;
  private readonly syncListeners = new Set<(records: readonly SyncRecord[], lost: number) => void>();
  private configurationVersion = 0;
  private readonly localAddressCapacity: number;

  constructor(options: BalancerOptions = {}) {
    const maxDests = options.maxDestinations ?? 4096;
    const wasm = instantiateWasm();
    options.prepareMemory?.(wasm.memory);
    this.core = new PacketCore(
      {
        slotCount: options.slots ?? 256,
        slotCapacity: options.slotCapacity ?? 65600,
        actionCount: maxDests + 1,
      },
      wasm,
    );
    this.f = this.core.wasm as unknown as Record<string, Fn>;
    this.scheduler = new ServiceTable(
      {
        maxServices: options.maxServices ?? 64,
        maxDestinations: maxDests,
        destinationsPerService: options.destinationsPerService,
        maglevTables: options.maglevTables,
        maglevMaxSize: options.maglevMaxSize,
        seed: options.seed,
      },
      this.core.wasm,
    );
    const capacity = options.connections ?? 65536;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 24) {
      throw new ConfigError(`connections: ${capacity} is not an integer in 1..16777216`);
    }
    this.connectionCapacity = capacity;
    const seed = (options.seed ?? 0x5eed) >>> 0;
    if (this.f.connInit(capacity, seed ^ 0x9e3779b9) !== 0) throw new Error("connInit failed");
    if (this.f.statsInit(this.scheduler.maxServices, maxDests) !== 0) throw new Error("statsInit failed");
    const rc = this.f.datapathInit(options.neighbours ?? 1024, 4096);
    if (rc !== 0) throw new Error(`datapathInit failed with code ${rc}`);
    const frag = normaliseFragmentOptions(options.fragments);
    if (this.f.fragmentsInit(frag.datagrams, frag.memory, frag.timeoutMs, seed ^ 0x7f4a7c15) !== 0) throw new Error("fragmentsInit failed");
    this.f.datapathSwitches(options.expireNodestConn ? 1 : 0, options.expireQuiescentTemplate ? 1 : 0, options.connReuse === false ? 0 : 1);
    if (this.f.syncInit(SYNC_RING_CAPACITY) !== 0) throw new Error("syncInit failed");
    const laddrs = options.localAddresses ?? 256;
    if (!Number.isInteger(laddrs) || laddrs < 1 || laddrs > 65535) throw new ConfigError(`localAddresses: ${laddrs} is not an integer in 1..65535`);
    if (this.f.fnatInit(laddrs) !== 0) throw new Error("fnatInit failed");
    this.localAddressCapacity = laddrs;
    if (options.localPortRange) {
      const [low, high] = options.localPortRange;
      if (!Number.isInteger(low) || !Number.isInteger(high) || low < 1 || low > high || high > 65535 || this.f.fnatPortRange(low, high) !== 0) {
        throw new ConfigError(`localPortRange: [${low}, ${high}] is not a range of ports within 1..65535, low <= high`);
      }
    }
    for (const [name, value] of Object.entries(options.sysctls ?? {})) this.setSysctl(name as IpvsSysctlName, value);
    this.sweepCursorBudget = Math.max(1024, Math.ceil(capacity / 8));
    this.director = options.director ?? {};
    this.applyDirector(this.director);
  }

  private mem(): Uint8Array {
    return this.core.slots.bytes;
  }
  private params(): number {
    return this.core.wasm.regionParams() >>> 0;
  }

  private applyDirector(d: DirectorAddressing): void {
    const p = this.params();
    if (d.mac) {
      this.mem().set(encodeMac(d.mac, "director.mac"), p);
      this.f.ownMacSet();
    }
    for (const [family, mac] of [
      [4, d.gatewayMac4],
      [6, d.gatewayMac6],
    ] as const) {
      if (!mac) continue;
      this.mem().set(encodeMac(mac, `director.gatewayMac${family}`), p);
      this.f.gatewayMacSet(family);
    }
    if (d.tunnelMtu !== undefined && (!Number.isInteger(d.tunnelMtu) || d.tunnelMtu < 68 || d.tunnelMtu > 65535)) {
      throw new ConfigError(`director.tunnelMtu: ${d.tunnelMtu} is not an integer in 68..65535`);
    }
  }

  // ---------------------------------------------------------------- services

  private find(key: ServiceKey): ServiceEntry | undefined {
    return this.services.get(serviceKeyText(key));
  }

  private mustFind(key: ServiceKey): ServiceEntry {
    const k = normaliseServiceKey(key);
    const entry = this.find(k);
    if (!entry) throw new ConfigError(`No such service: ${serviceKeyText(k)}`, "ESRCH");
    return entry;
  }

  /** The scheduler options ServiceTable understands, from a service configuration. */
  private schedulerOptions(config: ServiceConfig) {
    return { scheduler: config.scheduler, flags: config.schedulerFlags };
  }

  /** The kernel's "Scheduler or persistence engine not found" for an unknown name. */
  private checkScheduler(name: string): void {
    if (this.scheduler.isBuiltin(name)) return;
    if (!this.scheduler.schedulers().some((s) => s.name === name)) {
      const known = this.scheduler
        .schedulers()
        .map((s) => s.name)
        .join(", ");
      throw new ConfigError(`scheduler: "${name}" is not a built-in or registered scheduler (${known})`, "ENOENT");
    }
  }

  private wrap<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof SchedulerConfigError) throw new ConfigError(e.message);
      throw e;
    }
  }

  /** ipvsadm -A. */
  addService(config: ServiceConfig): void {
    const prepared = this.prepareService(config);
    if (this.services.has(prepared.keyText)) throw new ConfigError(`Service already exists: ${prepared.keyText}`, "EEXIST");
    this.addPreparedService(prepared);
  }

  /**
   * Checks a service as addService does (configuration, scheduler, flags, persistence)
   * without touching the tables or asking whether it exists: a restore checks a whole
   * rule set this way first, then writes it (addPreparedService).
   */
  prepareService(config: ServiceConfig): PreparedService {
    const c = normaliseService(config);
    this.checkScheduler(c.scheduler);
    const family = familyOfKey(c.key);
    const prefix = c.persistence ? persistencePrefix(c.persistence, family) : family === 4 ? 32 : 128;
    const scheduler = this.wrap(() => this.scheduler.serviceArguments(this.schedulerOptions(c)));
    return { config: c, keyText: serviceKeyText(c.key), prefix, scheduler };
  }

  /** Writes a service prepareService() checked; throws only when the tables refuse it (full, taken). */
  addPreparedService(p: PreparedService): void {
    const c = p.config;
    const id = this.wrap(() => this.scheduler.createServiceWith(p.scheduler));
    if (!this.registerKey(id, c.key)) {
      this.scheduler.deleteService(id);
      throw new ConfigError(`Service already exists: ${p.keyText}`, "EEXIST");
    }
    this.f.servicePersistenceSet(id, (c.persistence?.timeout ?? 0) * 1000, c.onePacket ? 1 : 0, p.prefix);
    this.f.serviceProxyProtocolSet(id, c.proxyProtocol === "v2" ? 1 : 0);
    // A new service starts from zero counters, as the kernel's (kzalloc) does, even when
    // it reuses the slot of one deleted before.
    this.f.statsZeroService(id);
    const entry: ServiceEntry = { id, config: c, dests: new Map(), laddrs: NO_LOCAL_ADDRESSES };
    this.services.set(p.keyText, entry);
    this.serviceById.set(id, entry);
    this.configurationVersion++;
  }

  /** True when a service with this key is configured. */
  hasService(key: ServiceKey): boolean {
    return this.services.has(this.prepareKeyText(key));
  }

  /** The serviceKeyText of a key, checked and made canonical (throws ConfigError). */
  prepareKeyText(key: ServiceKey): string {
    return serviceKeyText(normaliseServiceKey(key));
  }

  /** True when a service of this serviceKeyText is configured. */
  hasServiceText(keyText: string): boolean {
    return this.services.has(keyText);
  }

  /** Services configured. */
  get serviceCount(): number {
    return this.services.size;
  }

  /** Services configured with scheduler mh (each holds one of the Maglev tables). */
  get maglevServiceCount(): number {
    let n = 0;
    for (const s of this.services.values()) if (s.config.scheduler === "mh") n++;
    return n;
  }

  /** The configuration of a service (as normalised when it was added or edited). */
  serviceConfig(key: ServiceKey): ServiceConfig {
    return this.mustFind(key).config;
  }

  /** How many destinations the service of this serviceKeyText has (0 if none such). */
  destinationCount(keyText: string): number {
    return this.services.get(keyText)?.dests.size ?? 0;
  }

  /** One destination's configuration, its weight as the tables hold it. */
  destinationConfig(key: ServiceKey, ref: { address: string; port: number }): DestinationConfig {
    const d = this.findDest(this.mustFind(key), ref.address, ref.port);
    return { ...d.config, weight: this.scheduler.load(d.id).weight };
  }

  private registerKey(id: number, key: ServiceKey): boolean {
    const p = this.params();
    if (key.kind === "fwmark") {
      this.mem().fill(0, p, p + 16);
      return this.f.serviceKeyAdd(id, 0, key.family, 0, key.fwmark) === 0;
    }
    this.mem().set(encodeAddress(key.address, "key.address").bytes, p);
    return this.f.serviceKeyAdd(id, PROTOCOL_NUMBER[key.protocol], familyOfKey(key), key.port, 0) === 0;
  }

  /** ipvsadm -E: scheduler, flags, persistence and one-packet mode of an existing service. */
  editService(config: ServiceConfig): void {
    const c = normaliseService(config);
    const entry = this.mustFind(c.key);
    this.checkScheduler(c.scheduler);
    const family = familyOfKey(c.key);
    const prefix = c.persistence ? persistencePrefix(c.persistence, family) : family === 4 ? 32 : 128;
    this.wrap(() => this.scheduler.editService(entry.id, this.schedulerOptions(c)));
    this.f.servicePersistenceSet(entry.id, (c.persistence?.timeout ?? 0) * 1000, c.onePacket ? 1 : 0, prefix);
    this.f.serviceProxyProtocolSet(entry.id, c.proxyProtocol === "v2" ? 1 : 0);
    entry.config = c;
    this.configurationVersion++;
  }

  /** ipvsadm -D. Connections of its destinations live on until they expire (as in the kernel). */
  deleteService(key: ServiceKey): void {
    const entry = this.mustFind(key);
    // Its local addresses take no new flow; each is freed with its last connection.
    for (const index of entry.laddrs.values()) this.f.laddrDelete(index);
    this.scheduler.deleteService(entry.id);
    this.f.serviceKeyRemove(entry.id);
    this.services.delete(serviceKeyText(entry.config.key));
    this.serviceById.delete(entry.id);
    this.configurationVersion++;
  }

  /** ipvsadm -C. */
  clear(): void {
    for (const s of [...this.services.values()]) this.deleteService(s.config.key);
  }

  // ------------------------------------------------------------ destinations

  private actionFor(config: DestinationConfig, serviceFamily: 4 | 6): ForwardAction {
    if (config.method === "masq") return { kind: "nat-dnat", address: config.address, port: config.port };
    // The source (local address and port) is the connection's, written per packet.
    if (config.method === "fullnat") {
      return { kind: "fullnat", address: config.address, port: config.port, sourceAddress: serviceFamily === 4 ? "0.0.0.0" : "::" };
    }
    if (config.method === "route") {
      const why = this.director.directRoutingUnavailable;
      if (why) throw new ConfigError(`destination ${config.address}: direct routing (-g) ${why}`);
      // MACs come from the neighbour table at forwarding time.
      return { kind: "dr", destinationMac: "00:00:00:00:00:00", sourceMac: "00:00:00:00:00:00" };
    }
    const family = config.address.includes(":") ? 6 : 4;
    const local = family === 4 ? this.director.tunnelSource4 : this.director.tunnelSource6;
    if (!local) {
      throw new ConfigError(
        `destination ${config.address}: tunnelling (-i) needs the outer source address: start lvsd with --tunnel-source${family} ADDR (director.tunnelSource${family} in the library)`,
      );
    }
    void serviceFamily;
    const t = config.tunnel!;
    return {
      kind: "tunnel",
      type: t.type,
      remote: config.address,
      local,
      port: t.port,
      checksum: t.checksum !== "nocsum",
      remoteChecksum: t.checksum === "remcsum",
      mtu: this.director.tunnelMtu,
    };
  }

  private writeAction(dest: number, record: Uint8Array): void {
    const base = (this.f.regionActions() >>> 0) + dest * ACTION_SIZE;
    this.mem().set(record, base);
  }

  /** ipvsadm -a. Returns the destination id. */
  addDestination(key: ServiceKey, config: DestinationConfig): number {
    const entry = this.mustFind(key);
    return this.commitDestination(entry, this.prepareDestination(entry.config, config));
  }

  /**
   * Checks a destination as addDestination does (configuration, forwarding method, the
   * director's addressing) for a service of this configuration, without touching the
   * tables: what a restore checks first and writes later (addPreparedDestination).
   */
  prepareDestination(service: ServiceConfig, config: DestinationConfig): PreparedDestination {
    const family = familyOfKey(service.key);
    const c = normaliseDestination(config, family);
    const record = this.wrap(() => encodeAction(this.actionFor(c, family)));
    const scheduler = this.wrap(() =>
      this.scheduler.destinationArguments({
        address: c.address,
        port: c.port,
        weight: c.weight,
        upperThreshold: c.upperThreshold,
        lowerThreshold: c.lowerThreshold,
      }),
    );
    return { config: c, id: destKey(c.address, c.port), record, scheduler };
  }

  /** Writes a destination prepareDestination() checked into its service (by key, or as prepared). */
  addPreparedDestination(service: ServiceKey | PreparedService, p: PreparedDestination): number {
    const entry = "keyText" in service ? this.services.get(service.keyText) : this.mustFind(service);
    if (!entry) throw new ConfigError(`No such service: ${(service as PreparedService).keyText}`, "ESRCH");
    return this.commitDestination(entry, p);
  }

  private commitDestination(entry: ServiceEntry, p: PreparedDestination): number {
    const c = p.config;
    if (entry.dests.has(p.id)) {
      throw new ConfigError(`Destination already exists: ${c.address}:${c.port} in ${serviceKeyText(entry.config.key)}`, "EEXIST");
    }
    const id = this.wrap(() => this.scheduler.addDestinationWith(entry.id, p.scheduler));
    this.writeAction(id, p.record);
    // Kept in the order added; listings walk it backwards: newest first, as the kernel's list.
    entry.dests.set(p.id, { id, config: c });
    this.configurationVersion++;
    return id;
  }

  /** The destinations of a configured service, in the order they were added (no counters read). */
  destinationConfigs(key: ServiceKey): DestinationConfig[] {
    const entry = this.mustFind(key);
    return [...entry.dests.values()].map((d) => ({ ...d.config, weight: this.scheduler.load(d.id).weight }));
  }

  private findDest(entry: ServiceEntry, address: string, port: number): DestEntry {
    const a = canonicalText(address, "destination.address").text;
    const d = entry.dests.get(destKey(a, port));
    if (!d) throw new ConfigError(`No such destination: ${a}:${port} in ${serviceKeyText(entry.config.key)}`, "ENOENT");
    return d;
  }

  /**
   * ipvsadm -e: weight, thresholds, method and tunnel options. Weight 0 quiesces: no new
   * connections, existing ones continue. A changed method applies to existing connections
   * too (the kernel keeps their old one).
   */
  editDestination(key: ServiceKey, config: DestinationConfig): void {
    const entry = this.mustFind(key);
    const c = normaliseDestination(config, familyOfKey(entry.config.key));
    const d = this.findDest(entry, c.address, c.port);
    if ((c.method === "fullnat") !== (d.config.method === "fullnat")) {
      // A full-NAT connection owns a local address and port, the others none: neither can become the other.
      throw new ConfigError(
        `destination ${c.address}:${c.port}: the method cannot change to or from fullnat (${d.config.method} -> ${c.method}); delete the destination and add it again`,
      );
    }
    const record = this.wrap(() => encodeAction(this.actionFor(c, familyOfKey(entry.config.key))));
    this.wrap(() => this.scheduler.editDestination(d.id, { weight: c.weight, upperThreshold: c.upperThreshold, lowerThreshold: c.lowerThreshold }));
    this.writeAction(d.id, record);
    d.config = c;
    this.configurationVersion++;
  }

  /**
   * ipvsadm -d. The destination takes no new connections; its existing ones continue
   * until they expire, or are dropped on their next packet with expireNodestConn.
   */
  deleteDestination(key: ServiceKey, ref: { address: string; port: number }): void {
    const entry = this.mustFind(key);
    const d = this.findDest(entry, ref.address, ref.port);
    this.scheduler.removeDestination(d.id);
    entry.dests.delete(destKey(d.config.address, d.config.port));
    this.configurationVersion++;
  }

  // ------------------------------------------------------ full NAT's local addresses

  /**
   * lvsadm --add-laddr (DPVS): adds a local address to a service's pool; full-NAT flows of
   * the service are sourced from its addresses, in turn. Same family as the service.
   */
  /** The checks of addLocalAddress that need no table (syntax, family); the canonical text. */
  prepareLocalAddress(service: ServiceConfig, address: string): string {
    const { text, family } = canonicalAddress(address, "local address");
    const want = familyOfKey(service.key);
    if (family !== want) throw new ConfigError(`local address ${text}: an IPv${want} service needs IPv${want} local addresses`);
    return text;
  }

  addLocalAddress(key: ServiceKey, address: string): void {
    const entry = this.mustFind(key);
    this.prepareLocalAddress(entry.config, address);
    const { text, family, bytes } = canonicalAddress(address, "local address");
    if (entry.laddrs.has(text)) throw new ConfigError(`Local address already exists: ${text} in ${serviceKeyText(entry.config.key)}`, "EEXIST");
    this.mem().set(bytes, this.params());
    const index = this.f.laddrAdd(entry.id, family) >>> 0;
    if (index === 0xffffffff) {
      throw new ConfigError(
        `local address ${text}: the table of ${this.localAddressCapacity} local addresses is full (lvsd --local-addresses N, BalancerOptions.localAddresses)`,
      );
    }
    if (entry.laddrs === NO_LOCAL_ADDRESSES) entry.laddrs = new Map();
    entry.laddrs.set(text, index);
    this.configurationVersion++;
  }

  /** lvsadm --del-laddr: new flows stop using it; its connections keep it until they end. */
  deleteLocalAddress(key: ServiceKey, address: string): void {
    const entry = this.mustFind(key);
    const { text } = canonicalAddress(address, "local address");
    const index = entry.laddrs.get(text);
    if (index === undefined) throw new ConfigError(`No such local address: ${text} in ${serviceKeyText(entry.config.key)}`, "ENOENT");
    this.f.laddrDelete(index);
    entry.laddrs.delete(text);
    this.configurationVersion++;
  }

  /** lvsadm --get-laddr: a service's local addresses, in the order added, with their use. */
  localAddresses(key: ServiceKey): LocalAddressSnapshot[] {
    const entry = this.mustFind(key);
    return [...entry.laddrs].map(([address, index]) => ({
      address,
      connections: this.f.laddrConnections(index) >>> 0,
      exhausted: this.f.laddrExhaustedCount(index) >>> 0,
    }));
  }

  /** Full-NAT flows refused since start-up for want of a local address and port (drop reason laddr-exhausted). */
  get localAddressExhaustion(): number {
    return this.f.fnatExhaustedCount() >>> 0;
  }

  // ---------------------------------------------------------------- timeouts

  /** ipvsadm --set tcp tcpfin udp (seconds; 0 leaves a value unchanged). */
  setTimeouts(t: Timeouts): void {
    const check = (v: number, field: string) => {
      if (!Number.isInteger(v) || v < 0 || v > 86400 * 31) throw new ConfigError(`${field}: ${v} is not an integer number of seconds in 0..2678400`);
    };
    check(t.tcp, "tcp");
    check(t.tcpFin, "tcpFin");
    check(t.udp, "udp");
    if (t.tcp) this.f.timeoutSet(STATE.established, t.tcp * 1000);
    if (t.tcpFin) this.f.timeoutSet(STATE.finWait, t.tcpFin * 1000);
    if (t.udp) this.f.timeoutSet(STATE.udp, t.udp * 1000);
  }

  timeouts(): Timeouts {
    return {
      tcp: this.f.timeoutGet(STATE.established) / 1000,
      tcpFin: this.f.timeoutGet(STATE.finWait) / 1000,
      udp: this.f.timeoutGet(STATE.udp) / 1000,
    };
  }

  // -------------------------------------------------------------- neighbours

  /** Next-hop MAC of an address on the link (ARP / ND result, or --neigh IP=MAC). */
  setNeighbour(address: string, mac: string): void {
    const { family, bytes } = canonicalAddress(address, "neighbour address");
    const macBytes = encodeMac(mac, "neighbour mac");
    const p = this.params();
    this.mem().set(macBytes, p);
    this.mem().set(bytes, p + 16);
    if (this.f.neighbourSet(family) !== 0) throw new ConfigError("neighbour table is full");
  }

  // ----------------------------------------------------------------- traffic

  /** The packet slots: fill slots [0, n), then call process(n, now). */
  get slots() {
    return this.core.slots;
  }

  /**
   * Held IP fragments released after a batch go into slots before `end` only, so a host can
   * keep the slots from `end` on for its own use (the Director cuts super-packets there).
   */
  limitFragmentRelease(end: number): void {
    if (!Number.isInteger(end) || end < 0) throw new RangeError(`limitFragmentRelease: ${end} is not a slot index`);
    this.f.fragmentReleaseEnd(end >>> 0);
  }

  /**
   * Runs slots [0, count) through the datapath at time `nowMs` (any millisecond clock; it
   * may wrap at 2^32). Verdicts and destinations land in the descriptors. Returns how many
   * slots hold a verdict: `count`, plus held IP fragments released into the free slots
   * after them once their first fragment was decided (docs/fragments.md). process(0, now)
   * releases what a full batch had no room for.
   */
  process(count: number, nowMs: number): number {
    const n = this.f.process(0, count, nowMs >>> 0);
    this.drainEvents();
    if (this.syncListeners.size > 0) this.drainSync();
    return n;
  }

  /**
   * lvsd --workers: which of `workers` data-plane workers owns a synced connection (the
   * hash of its client endpoint, as the datapath's packetOwner), or 0 with no service for it.
   */
  syncOwner(r: SyncRecord, workers: number): number {
    const target = findSyncTarget({ [Symbol.iterator]: () => this.services.values() }, r);
    if (!target || workers <= 1) return 0;
    const p = this.params();
    const mem = this.mem();
    mem.fill(0, p, p + 16);
    mem.set(encodeAddress(r.client.address, "client address").bytes, p);
    return this.f.connectionOwner(target.service.id, r.family, r.template ? 0 : r.client.port, workers);
  }

  /** IP fragment counters (docs/fragments.md). */
  fragmentStats(): FragmentStats {
    return readFragmentStats(this.mem(), this.f.regionFragCounters() >>> 0, this.f.fragCounterCount());
  }

  /**
   * One packet through the datapath (via slot 0), for tools and tests. IP fragments it
   * releases land in slots 1 and up, unreported here: use process() to send those.
   */
  processPacket(packet: Uint8Array, link: LinkType, nowMs: number, mark = 0): PacketOutcome {
    this.core.slots.write(0, packet, link, mark);
    this.process(1, nowMs);
    const s = this.core.slots;
    const dest = s.field(0, Desc.Action);
    return {
      verdict: s.field(0, Desc.Verdict) as Verdict,
      reason: s.field(0, Desc.Reason) as DropReason,
      destination: dest === 0xffffffff ? null : dest,
      flags: s.field(0, Desc.Aux),
      packet: s.view(0).slice(),
    };
  }

  /**
   * Periodic work at `nowMs`: expires idle connections (a bounded sweep), runs the defence
   * strategies (once a second), the 2 s rate estimator and the schedulers' collectors. Call
   * it every few hundred milliseconds. Returns how many connections expired or were dropped.
   */
  tick(nowMs: number): number {
    const now = nowMs >>> 0;
    const expired = this.f.expire(now, this.sweepCursorBudget) + (this.f.defenceRun(now) >>> 0);
    this.f.statsEstimate(now);
    this.scheduler.tick(now);
    this.drainEvents();
    return expired;
  }

  /** Sets one IPVS sysctl (net.ipv4.vs.NAME), checked whole: a bad name or value changes nothing. */
  setSysctl(name: IpvsSysctlName, value: number): void {
    const c = checkSysctl(name, value);
    if (this.f.sysctlSet(c.id, c.value >>> 0) !== 0) throw new ConfigError(`sysctl ${name}: ${value} refused by the core`);
  }

  /** Every sysctl's current value (drop_entry, drop_packet, secure_tcp move between 1 and 2 by themselves). */
  sysctls(): IpvsSysctls {
    return Object.fromEntries(Object.entries(IPVS_SYSCTLS).map(([name, s]) => [name, this.f.sysctlGet(s.id) >>> 0])) as unknown as IpvsSysctls;
  }

  /** Expires everything due at `nowMs` (a full sweep). */
  expireAll(nowMs: number): number {
    const n = this.f.expire(nowMs >>> 0, this.connectionCapacity);
    this.drainEvents();
    return n;
  }

  // ------------------------------------------------------------------ events

  /** Listens to flow and destination events; returns a function that stops listening. */
  on(listener: BalancerEventListener): () => void {
    this.listeners.add(listener);
    this.f.eventsEnable(1);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.f.eventsEnable(0);
    };
  }

  private drainEvents(): void {
    const n = this.f.eventsPending();
    if (n === 0) return;
    const base = this.f.regionEvents() >>> 0;
    const v = new DataView(this.mem().buffer, base, n * 16);
    const events: BalancerEvent[] = [];
    for (let i = 0; i < n; i++) {
      const type = EVENT_TYPES[v.getUint32(i * 16, true)];
      const connection = v.getUint32(i * 16 + 4, true);
      const destination = v.getUint32(i * 16 + 8, true);
      const service = this.serviceById.get(v.getUint32(i * 16 + 12, true))?.config.key ?? null;
      if (type === "flow-created" && service) events.push({ type, connection, destination, service });
      else if (type === "flow-expired") events.push({ type, connection, destination, service });
      else if (type === "destination-overloaded" || type === "destination-underloaded") events.push({ type, destination, service });
    }
    this.f.eventsReset();
    for (const e of events) for (const l of this.listeners) l(e);
  }

  // -------------------------------------------------------- connection sync

  /**
   * Listens to the connections a sync master sends: after each process() call, the
   * connections and templates that qualified under the kernel's rules (sync_threshold,
   * sync_period, state changes; see setSyncParameters), and how many were lost because the
   * ring was full. The data plane queues them only while someone listens. Returns a
   * function that stops listening.
   */
  onSync(listener: (records: readonly SyncRecord[], lost: number) => void): () => void {
    this.syncListeners.add(listener);
    this.f.syncMasterSet(1);
    return () => {
      this.syncListeners.delete(listener);
      if (this.syncListeners.size === 0) this.f.syncMasterSet(0);
    };
  }

  /**
   * The kernel's sync sysctls: sync_threshold and sync_period (default 3 50),
   * sync_refresh_period (default 0; given here in ms) and sync_retries (0..3, default 0).
   */
  setSyncParameters(p: { threshold: number; period: number; refreshPeriodMs?: number; retries?: number }): void {
    const int = (v: number, hi: number) => Number.isInteger(v) && v >= 0 && v <= hi;
    const refresh = p.refreshPeriodMs ?? 0;
    const retries = p.retries ?? 0;
    if (!int(p.threshold, 0xffffffff) || !int(p.period, 0xffffffff) || !int(refresh, 0xffffffff) || !int(retries, 3)) {
      throw new ConfigError("sync parameters: threshold, period and refresh period are non-negative integers, retries 0..3");
    }
    if (p.period > 0 && p.threshold >= p.period) throw new ConfigError(`sync_threshold ${p.threshold} must be below sync_period ${p.period}`);
    this.f.syncParamsSet(p.threshold, p.period, refresh, retries);
  }

  /**
   * The table refresh (beyond the kernel): queues for the sync listeners the live entries a
   * sync carries that were not queued for `ageMs`, looking at up to `budget` records from a
   * cursor that wraps. Idle connections so reach a backup that started late or came back.
   * Returns how many were queued.
   */
  refreshSync(nowMs: number, ageMs: number, budget: number): number {
    if (this.syncListeners.size === 0) return 0;
    const n = this.f.syncRefresh(nowMs >>> 0, ageMs >>> 0, budget >>> 0) >>> 0;
    this.drainSync();
    return n;
  }

  private drainSync(): void {
    const n = this.f.syncPending() >>> 0;
    const lost = this.f.syncLost() >>> 0;
    if (n === 0 && lost === 0) return;
    const base = this.f.regionSync() >>> 0;
    const records: SyncRecord[] = [];
    for (let i = 0; i < n; i++) records.push(readSyncRecord(this.mem(), base + i * SYNC_RECORD_BYTES));
    this.f.syncReset();
    for (const l of this.syncListeners) l(records, lost);
  }

  /**
   * A backup's import of one synced connection or template (the kernel's ip_vs_proc_conn):
   * creates it on the real server the record names, or refreshes its state, flags and
   * timer. The service and real server must be configured here as on the master
   * ("no-destination" otherwise); for a full-NAT real server, the record's local address
   * must be in the service's pool here ("no-local-address" otherwise). Never throws for a
   * record that names nothing known.
   */
  importConnection(r: SyncRecord, nowMs: number): SyncImportResult {
    // Re-iterable: the search walks the services up to three times (mark, port, port 0).
    const target = findSyncTarget({ [Symbol.iterator]: () => this.services.values() }, r);
    if (!target) return "no-destination";
    const p = this.params();
    const mem = this.mem();
    mem.fill(0, p, p + 64);
    mem.set(encodeAddress(r.client.address, "client address").bytes, p);
    mem.set(encodeAddress(r.virtual.address, "virtual address").bytes, p + 16);
    mem.set(encodeAddress(r.destination.address, "destination address").bytes, p + 32);
    // A full-NAT connection's local address: the core takes it only if this service's pool has it.
    if (r.local) mem.set(encodeAddress(r.local.address, "local address").bytes, p + 48);
    const flags = (r.template ? SYNC_FLAG.template : 0) | (r.inactive ? SYNC_FLAG.inactive : 0);
    const code = this.f.syncImport(
      target.service.id,
      target.destination.id,
      r.protocol,
      r.family,
      r.client.port,
      r.virtual.port,
      r.destination.port,
      flags,
      r.state,
      Math.min(r.timeoutMs, 0x7fffffff) >>> 0,
      r.fwmark >>> 0,
      nowMs >>> 0,
      r.local ? r.local.port & 0xffff : 0,
    );
    this.drainEvents();
    return IMPORT_RESULTS[code] ?? "no-destination";
  }

  // ---------------------------------------------------------------- listings

  /** Everything `ipvsadm -L` shows, services in the order they were added. */
  listing(): ListingSnapshot {
    return { tableSize: this.connectionCapacity, services: [...this.services.values()].map((s) => this.serviceSnapshot(s)) };
  }

  /**
   * listing() in slices: services read a slice at a time, the packet loop running between.
   * With `counters` false the traffic counters and rates are left out (what -Ln prints
   * without --stats or --rate), which halves the work.
   */
  async listingInSlices(slicer: Slicer, counters = true): Promise<ListingSnapshot> {
    const services: ServiceSnapshot[] = [];
    for (const s of this.services.values()) {
      services.push(this.serviceSnapshot(s, counters));
      if ((services.length & 63) === 0 && slicer.due()) await slicer.pauseNow();
    }
    return { tableSize: this.connectionCapacity, services };
  }

  /** rules() in slices: services read a slice at a time, the packet loop running between. */
  async rulesInSlices(slicer: Slicer): Promise<RuleSet> {
    const services: ServiceWithDestinations[] = [];
    for (const s of this.services.values()) {
      services.push(this.serviceRules(s));
      if ((services.length & 63) === 0 && slicer.due()) await slicer.pauseNow();
    }
    return { services };
  }

  /**
   * Every service's listing entry, one at a time, in the order they were added: a reader
   * that pauses between them (lvsd's worker sending a listing in slices) sees each service
   * whole, and the changes made meanwhile as listingInSlices does.
   */
  *eachServiceSnapshot(counters = true): Generator<ServiceSnapshot> {
    for (const s of this.services.values()) yield this.serviceSnapshot(s, counters);
  }

  /** Every service's rules (as rules() gives them), one at a time, as eachServiceSnapshot. */
  *eachServiceRules(): Generator<ServiceWithDestinations> {
    for (const s of this.services.values()) yield this.serviceRules(s);
  }

  /** The serviceKeyText of every service, in the order they were added. */
  serviceKeyTexts(): string[] {
    return [...this.services.keys()];
  }

  /** One service's rules (configuration and destinations, as rules() gives them), by serviceKeyText. */
  serviceRulesByText(keyText: string): ServiceWithDestinations | undefined {
    const s = this.services.get(keyText);
    return s ? this.serviceRules(s) : undefined;
  }

  /** The keys of every service, in the order they were added (cheap: no counters read). */
  serviceKeys(): ServiceKey[] {
    return [...this.services.values()].map((s) => s.config.key);
  }

  /** One service as `ipvsadm -L -t ...` shows it. */
  service(key: ServiceKey): ServiceSnapshot {
    return this.serviceSnapshot(this.mustFind(key));
  }

  private statsBlock(index: number) {
    const base = (this.f.regionStats() >>> 0) + index * 128;
    return readStatsBlock(this.mem(), base);
  }

  private serviceSnapshot(s: ServiceEntry, counters = true): ServiceSnapshot {
    // Newest first, as the kernel's list (what --nosort prints): the map keeps the order added.
    const entries = [...s.dests.values()];
    const destinations: DestinationSnapshot[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const d = entries[i]!;
      const state = this.scheduler.load(d.id);
      const snapshot = { config: { ...d.config, weight: state.weight }, activeConns: state.active, inactConns: state.inactive, persistConns: state.persistent };
      if (!counters) destinations.push(snapshot);
      else {
        const ds = this.statsBlock(1 + this.scheduler.maxServices + d.id);
        destinations.push({ ...snapshot, stats: ds.stats, rates: ds.rates });
      }
    }
    if (!counters) return { config: s.config, destinations };
    const svcStats = this.statsBlock(1 + s.id);
    return { config: s.config, stats: svcStats.stats, rates: svcStats.rates, destinations };
  }

  /** Counters of the whole balancer. */
  totals() {
    return this.statsBlock(0);
  }

  /** Every live connection and template record at `nowMs` (`ipvsadm -Lc`). */
  connectionRecords(nowMs: number): ConnectionRecord[] {
    const out: ConnectionRecord[] = [];
    const base = this.f.regionConns() >>> 0;
    const now = nowMs >>> 0;
    for (let i = this.f.connNextLive(0) >>> 0; i !== 0xffffffff; i = this.f.connNextLive(i + 1) >>> 0) {
      out.push(readConnection(this.mem(), base, i, this.f.connExpiresIn(i, now) >>> 0));
    }
    return out;
  }

  connections(nowMs: number): ConnectionSnapshot[] {
    return this.connectionRecords(nowMs).map((r) => r.snapshot);
  }

  /** Live connection records (templates included). */
  get connectionCount(): number {
    return this.f.connTableUsed() >>> 0;
  }

  /** ipvsadm -Z: zero the counters of one service (and its destinations) or of everything. */
  zero(key?: ServiceKey): void {
    const services = key ? [this.mustFind(key)] : [...this.services.values()];
    if (!key) this.f.statsZeroTotal();
    for (const s of services) {
      this.f.statsZeroService(s.id);
      for (const d of s.dests.values()) this.f.statsZeroDest(d.id);
    }
  }

  // ------------------------------------------------------------------- rules

  /**
   * Grows by one with every change to services or destinations (add, edit, delete, in any
   * way: lvsadm, a reload, a health checker). Watchers compare it instead of diffing rules.
   */
  get configVersion(): number {
    return this.configurationVersion;
  }

  /** The configuration as a rule set (what `ipvsadm -S` saves); destinations in the order they were added. */
  rules(): RuleSet {
    return { services: [...this.services.values()].map((s) => this.serviceRules(s)) };
  }

  private serviceRules(s: ServiceEntry): ServiceWithDestinations {
    return {
      service: s.config,
      // In the order they were added (oldest first), so applying the rules rebuilds the same list.
      destinations: [...s.dests.values()].map((d) => ({ ...d.config, weight: this.scheduler.load(d.id).weight })),
      ...(s.laddrs.size > 0 ? { localAddresses: [...s.laddrs.keys()] } : {}),
    };
  }

  /**
   * Applies a rule set (ipvsadm -R) whole or not at all: every service and destination is
   * checked, and the counts against the table sizes, before anything changes; should the
   * tables still refuse one (a destination record held by connections of a removed
   * destination), what was added is removed again. Errors name the rules line when the
   * rule set came from parseRules. Linear in the size of the rule set. For a large rule set
   * on a thread that also forwards, RuleTransaction.restore(...).applyInSlices() does the
   * same in slices.
   */
  applyRules(ruleSet: RuleSet): void {
    RuleTransaction.restore(this, ruleSet).applyNow();
  }

  /**
   * Refuses a configuration larger than the tables, naming the limit to raise (lvsd's flags
   * set them: --max-services, --max-destinations, --destinations-per-service).
   */
  checkRoom(services: number, destinations: number, perService = 0): void {
    if (services > this.scheduler.maxServices) {
      throw new ConfigError(
        `${services} services do not fit: the table holds ${this.scheduler.maxServices} (lvsd --max-services N, BalancerOptions.maxServices)`,
      );
    }
    if (destinations > this.scheduler.maxDestinations) {
      throw new ConfigError(
        `${destinations} destinations do not fit: the table holds ${this.scheduler.maxDestinations} (lvsd --max-destinations N, BalancerOptions.maxDestinations)`,
      );
    }
    if (perService > this.scheduler.destinationsPerService) {
      throw new ConfigError(
        `a service with ${perService} destinations does not fit: a service holds ${this.scheduler.destinationsPerService} (lvsd --destinations-per-service N)`,
      );
    }
  }

  /**
   * A balancer with this one's rules of validation (limits per service, Maglev sizes,
   * director addressing) and tables just large enough for `services` and `destinations`:
   * a check of a large configuration does not carve a second set of full-size tables.
   */
  scratch(services: number, destinations: number): Balancer {
    const maxDestinations = Math.max(1, Math.min(destinations, this.scheduler.maxDestinations));
    return new Balancer({
      connections: 1,
      slots: 1,
      slotCapacity: 128,
      maxServices: Math.max(1, Math.min(services, this.scheduler.maxServices)),
      maxDestinations,
      destinationsPerService: Math.min(this.scheduler.destinationsPerService, maxDestinations),
      maglevMaxSize: this.scheduler.maglevMaxSize,
      localAddresses: this.localAddressCapacity,
      director: this.director,
    });
  }

  /** Adds a service and its destinations; an error names the rules line it came from. */
  addWhole(s: ServiceWithDestinations): void {
    try {
      this.addService(s.service);
    } catch (e) {
      throw atLine(s.service, e);
    }
    for (const d of s.destinations) {
      try {
        this.addDestination(s.service.key, d);
      } catch (e) {
        throw atLine(d, e);
      }
    }
    for (const a of s.localAddresses ?? []) {
      try {
        this.addLocalAddress(s.service.key, a);
      } catch (e) {
        throw atLine(s.service, e);
      }
    }
  }
}
