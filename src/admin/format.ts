// ipvsadm's text output, byte for byte: -L/-Ln and its variants (--stats, --rate, --exact,
// --thresholds, --persistent-conn, --tun-info, --nosort), -Lc, --timeout, --daemon and -S.
// Addresses are always printed numerically (lvsadm resolves no names); without -n, ports are
// named from /etc/services as ipvsadm does.
import type { DestinationConfig, Protocol, ServiceConfig, ServiceKey, ServiceWithDestinations, TunnelChecksum } from "../config/types.js";
import type {
  ConnectionSnapshot,
  DestinationSnapshot,
  ListingSnapshot,
  ServiceSnapshot,
  Timeouts,
  TrafficCounters,
  TrafficRates,
} from "../balancer/snapshots.js";
import type { ListFormat, SyncDaemonConfig } from "./command.js";
import { schedulerFlagBits, schedulerFlagNames } from "./command.js";
import { formatIpv4, parseAddress } from "./inet.js";
import { systemPortNamesDb } from "./services-db.js";
import type { PortNames } from "./services-db.js";
import { compareDestinations, glibcSort, sortServicesInSteps } from "./sort.js";
import type { Slicer } from "../balancer/slices.js";

export type {
  ConnectionEndpoint,
  ConnectionSnapshot,
  DestinationSnapshot,
  ListingSnapshot,
  ServiceSnapshot,
  TrafficCounters,
  TrafficRates,
} from "../balancer/snapshots.js";

/** A running sync daemon, as --daemon lists it: its configuration. */
export type SyncDaemonSnapshot = SyncDaemonConfig;

export interface FormatOptions {
  /** Port names when not numeric; default /etc/services of this machine. */
  readonly portNames?: PortNames;
}

export const DEFAULT_LIST_FORMAT: ListFormat = {
  numeric: false,
  exact: false,
  sort: true,
  stats: false,
  rate: false,
  thresholds: false,
  persistentConn: false,
  tunInfo: false,
};

/** How print_service_entry() is asked to print: a listing format, or the -S rule format. */
interface Rendering {
  readonly format: ListFormat;
  readonly rule: boolean;
  readonly portNames: PortNames;
}

const ZERO_COUNTERS: TrafficCounters = { conns: 0n, inpkts: 0n, outpkts: 0n, inbytes: 0n, outbytes: 0n };
const ZERO_RATES: TrafficRates = { cps: 0n, inpps: 0n, outpps: 0n, inbps: 0n, outbps: 0n };

/** `ipvsadm -L` with its flags: version header, column titles, every service. */
export function formatListing(snapshot: ListingSnapshot, format: ListFormat = DEFAULT_LIST_FORMAT, options: FormatOptions = {}): string {
  return runSteps(listingSteps(snapshot, format, options));
}

/** formatListing in slices (../balancer/slices.ts): the same text, with pauses for the packet loop. */
export function formatListingInSlices(snapshot: ListingSnapshot, format: ListFormat, options: FormatOptions, slicer: Slicer): Promise<string> {
  return runStepsInSlices(listingSteps(snapshot, format, options), slicer);
}

function* listingSteps(snapshot: ListingSnapshot, format: ListFormat, options: FormatOptions): Generator<void, string> {
  const rendering: Rendering = { format, rule: false, portNames: options.portNames ?? systemPortNamesDb() };
  const services = format.sort ? yield* sortServicesInSteps(snapshot.services, (s) => s.config) : snapshot.services;
  const text = new FlatText(listingHead(snapshot, format));
  for (let i = 0; i < services.length; i++) {
    text.add(renderService(services[i]!, rendering));
    if ((i & 63) === 63) yield;
  }
  return text.join();
}

function listingHead(snapshot: Pick<ListingSnapshot, "version" | "tableSize">, format: ListFormat): string {
  const [major, minor, patch] = (snapshot.version ?? "1.2.1").split(".");
  return `IP Virtual Server version ${major ?? 0}.${minor ?? 0}.${patch ?? 0} (size=${snapshot.tableSize})\n${title(format)}`;
}

/**
 * One service of a whole-table listing or of -S, already printed, with its key (the order
 * ipvsadm sorts by): lvsd's data-plane worker prints each service, and its main thread
 * sorts and joins them (formatRenderedListingInSlices, formatRenderedSaveInSlices).
 */
export interface RenderedService {
  readonly key: ServiceKey;
  readonly text: string;
}

/** Prints one service as formatListing prints it in `format`. */
export function listingRenderer(format: ListFormat, options: FormatOptions = {}): (service: ServiceSnapshot) => RenderedService {
  const rendering: Rendering = { format, rule: false, portNames: options.portNames ?? systemPortNamesDb() };
  return (service) => ({ key: service.config.key, text: renderService(service, rendering) });
}

/** Prints one service's rules as formatSave prints them. */
export function saveRenderer(options: SaveOptions = {}): (entry: ServiceWithDestinations) => RenderedService {
  const rendering = saveRendering(options);
  return (entry) => ({ key: entry.service.key, text: renderSaveEntry(entry, rendering) });
}

/** formatListing from services printed by listingRenderer (in the table's order): the same text. */
export function formatRenderedListingInSlices(
  head: Pick<ListingSnapshot, "version" | "tableSize">,
  rows: readonly RenderedService[],
  format: ListFormat,
  slicer: Slicer,
): Promise<string> {
  return runStepsInSlices(renderedSteps(listingHead(head, format), rows, format.sort), slicer);
}

/** formatSave from services printed by saveRenderer: the same text. */
export function formatRenderedSaveInSlices(rows: readonly RenderedService[], slicer: Slicer): Promise<string> {
  return runStepsInSlices(renderedSteps("", rows, true), slicer);
}

function* renderedSteps(head: string, rows: readonly RenderedService[], sort: boolean): Generator<void, string> {
  const sorted = sort ? yield* sortServicesInSteps(rows, (r) => r) : rows;
  const text = new FlatText(head);
  for (let i = 0; i < sorted.length; i++) {
    text.add(sorted[i]!.text);
    if ((i & 255) === 255) yield;
  }
  return text.join();
}

/**
 * A long text made of many short pieces, kept as flat strings of a few dozen pieces each:
 * a 15 MB listing built with += is a rope of millions of nodes that the garbage collector
 * copies again and again (it was most of a -Ln of 50,000 services).
 */
class FlatText {
  private readonly chunks: string[] = [];
  private pieces: string[] = [];

  constructor(first = "") {
    if (first) this.pieces.push(first);
  }

  add(piece: string): void {
    this.pieces.push(piece);
    if (this.pieces.length >= 64) {
      this.chunks.push(this.pieces.join(""));
      this.pieces = [];
    }
  }

  join(): string {
    if (this.pieces.length > 0) this.chunks.push(this.pieces.join(""));
    this.pieces = [];
    return this.chunks.join("");
  }
}

/** Runs a generator of steps to its end in one go. */
function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

async function runStepsInSlices<T>(steps: Generator<void, T>, slicer: Slicer): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (slicer.due()) await slicer.pauseNow();
  }
}

/** `ipvsadm -L -t|-u|-f SERVICE`: column titles and that one service, no version header. */
export function formatServiceListing(service: ServiceSnapshot, format: ListFormat = DEFAULT_LIST_FORMAT, options: FormatOptions = {}): string {
  const rendering: Rendering = { format, rule: false, portNames: options.portNames ?? systemPortNamesDb() };
  return title(format) + renderService(service, rendering);
}

export interface SaveOptions extends FormatOptions {
  /** -S -n: numeric ports. */
  readonly numeric?: boolean;
}

/** `ipvsadm -S [-n]`: the rules, sorted as ipvsadm sorts them. */
export function formatSave(services: readonly ServiceWithDestinations[], options: SaveOptions = {}): string {
  return runSteps(saveSteps(services, options));
}

/** formatSave in slices (../balancer/slices.ts): the same text, with pauses for the packet loop. */
export function formatSaveInSlices(services: readonly ServiceWithDestinations[], options: SaveOptions, slicer: Slicer): Promise<string> {
  return runStepsInSlices(saveSteps(services, options), slicer);
}

function saveRendering(options: SaveOptions): Rendering {
  return {
    format: { ...DEFAULT_LIST_FORMAT, numeric: options.numeric ?? false },
    rule: true,
    portNames: options.portNames ?? systemPortNamesDb(),
  };
}

function* saveSteps(services: readonly ServiceWithDestinations[], options: SaveOptions): Generator<void, string> {
  const rendering = saveRendering(options);
  const sorted = yield* sortServicesInSteps(services, (s) => s.service);
  const text = new FlatText();
  for (let i = 0; i < sorted.length; i++) {
    if ((i & 63) === 63) yield;
    text.add(renderSaveEntry(sorted[i]!, rendering));
  }
  return text.join();
}

function renderSaveEntry(entry: ServiceWithDestinations, rendering: Rendering): string {
  const lines = renderService(
    {
      config: entry.service,
      destinations: entry.destinations.map((config) => ({ config, activeConns: 0, inactConns: 0, persistConns: 0 })),
    },
    rendering,
  );
  // Full NAT's local addresses, as DPVS's ipvsadm adds them (--add-laddr = -P, -z LIP).
  const pool = (entry.localAddresses ?? []).map((address) => `-P ${serviceName(entry.service.key, rendering)} -z ${laddrText(address)}\n`);
  return pool.length === 0 ? lines : lines + pool.join("");
}

/** A local address as -z takes it (bare, IPv6 included, as DPVS writes it). */
function laddrText(address: string): string {
  return parseAddress(address)?.text ?? address;
}

/** One service's local addresses with their use (`lvsadm -G`, modelled on DPVS's listing). */
export interface LocalAddressListing {
  readonly service: ServiceKey;
  readonly addresses: readonly { readonly address: string; readonly connections: number; readonly exhausted: number }[];
}

/** `lvsadm -G [-t|-u service]`: a header, then one line per local address of each service. */
export function formatLocalAddresses(listings: readonly LocalAddressListing[], numeric = true, options: FormatOptions = {}): string {
  const rendering: Rendering = { format: { ...DEFAULT_LIST_FORMAT, numeric }, rule: false, portNames: options.portNames ?? systemPortNamesDb() };
  let out = `${left("VIP:VPORT", 33)} ${left("LIP", 40)} ${right("CONNS", 8)} ${right("EXHAUSTED", 10)}\n`;
  for (const l of listings) {
    const name = serviceName(l.service, rendering);
    for (const a of l.addresses) out += `${left(name, 33)} ${left(a.address, 40)} ${right(String(a.connections), 8)} ${right(String(a.exhausted), 10)}\n`;
  }
  return out;
}

/** print_title(). */
function title(format: ListFormat): string {
  const remote = "  -> RemoteAddress:Port\n";
  const prot = "Prot LocalAddress:Port";
  if (format.stats)
    return `${left(prot, 33)} ${right("Conns", 8)} ${right("InPkts", 8)} ${right("OutPkts", 8)} ${right("InBytes", 8)} ${right("OutBytes", 8)}\n${remote}`;
  if (format.rate)
    return `${left(prot, 33)} ${right("CPS", 8)} ${right("InPPS", 8)} ${right("OutPPS", 8)} ${right("InBPS", 8)} ${right("OutBPS", 8)}\n${remote}`;
  if (format.thresholds)
    return `${left(prot, 33)} ${left("Uthreshold", 10)} ${left("Lthreshold", 10)} ${left("ActiveConn", 10)} ${left("InActConn", 10)}\n${remote}`;
  if (format.persistentConn)
    return `${left(prot, 33)} ${left("Weight", 9)} ${left("PersistConn", 11)} ${left("ActiveConn", 10)} ${left("InActConn", 10)}\n${remote}`;
  if (format.tunInfo) {
    return "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
  }
  return "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
}

/** print_service_entry(): the service line, then its destinations. */
function renderService(service: ServiceSnapshot, rendering: Rendering): string {
  const { format, rule } = rendering;
  const config = service.config;
  const protocol: Protocol = config.key.kind === "address" ? config.key.protocol : "tcp";
  const svcName = serviceName(config.key, rendering);
  let out: string;

  if (rule) {
    out = `-A ${svcName} -s ${config.scheduler}`;
    if (config.persistence) out += ` -p ${config.persistence.timeout}${maskText(config, " -M ")}`;
    if (config.persistenceEngine) out += ` --pe ${config.persistenceEngine}`;
    if (config.onePacket) out += " -o";
    if (schedulerFlagBits(config.schedulerFlags) !== 0) out += ` -b ${schedFlagsText(config)}`;
    if (config.proxyProtocol) out += ` --proxy-protocol ${config.proxyProtocol}`;
  } else if (format.stats) {
    const s = service.stats ?? ZERO_COUNTERS;
    out = left(svcName, 33) + [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((n) => largeNumber(n, format)).join("");
  } else if (format.rate) {
    const r = service.rates ?? ZERO_RATES;
    out = left(svcName, 33) + [r.cps, r.inpps, r.outpps, r.inbps, r.outbps].map((n) => largeNumber(n, format)).join("");
  } else {
    out = `${svcName} ${config.scheduler}`;
    if (schedulerFlagBits(config.schedulerFlags) !== 0) out += ` (${schedFlagsText(config)})`;
    if (config.persistence) {
      out += ` persistent ${config.persistence.timeout}${maskText(config, " mask ")}`;
      if (config.persistenceEngine) out += ` pe ${config.persistenceEngine}`;
    }
    if (config.onePacket) out += " ops";
    if (config.proxyProtocol) out += ` proxy-protocol ${config.proxyProtocol}`;
  }
  out += "\n";

  const destinations = format.sort ? glibcSort(service.destinations, (a, b) => compareDestinations(a.config, b.config)) : service.destinations;
  for (const dest of destinations) {
    const d = dest.config;
    let dname = addressPort(d.address, d.port, protocol, rendering);
    if (!rule && !isIpv6(d.address)) dname = dname.slice(0, 28);
    if (rule) {
      out += ruleLine(svcName, dname, dest);
    } else if (format.stats) {
      const s = dest.stats ?? ZERO_COUNTERS;
      out += `  -> ${left(dname, 28)}${[s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((n) => largeNumber(n, format)).join("")}\n`;
    } else if (format.rate) {
      const r = dest.rates ?? ZERO_RATES;
      out += `  -> ${left(dname, 28)} ${right(String(r.cps), 8)} ${right(String(r.inpps), 8)} ${right(String(r.outpps), 8)}`;
      out += `${largeNumber(r.inbps, format)}${largeNumber(r.outbps, format)}\n`;
    } else if (format.thresholds) {
      out += `  -> ${left(dname, 28)} ${left(String(d.upperThreshold), 10)} ${left(String(d.lowerThreshold), 10)} ${left(String(dest.activeConns), 10)} ${left(String(dest.inactConns), 10)}\n`;
    } else if (format.persistentConn) {
      out += `  -> ${left(dname, 28)} ${left(String(d.weight), 9)} ${left(String(dest.persistConns), 11)} ${left(String(dest.activeConns), 10)} ${left(String(dest.inactConns), 10)}\n`;
    } else if (format.tunInfo) {
      out += `  -> ${left(dname, 28)} ${left(forwardName(dest), 7)} ${left((dest.local ? undefined : tunnelInfo(d)) ?? "n/a", 13)} ${left(String(d.weight), 6)} ${left(String(dest.activeConns), 10)} ${left(String(dest.inactConns), 10)}\n`;
    } else {
      out += `  -> ${left(dname, 28)} ${left(forwardName(dest), 7)} ${left(String(d.weight), 6)} ${left(String(dest.activeConns), 10)} ${left(String(dest.inactConns), 10)}\n`;
    }
  }
  return out;
}

/** "-t 10.0.0.1:80" / "-f 5 -6" in rules; "TCP  10.0.0.1:80" / "FWM  5 IPv6" in listings. */
function serviceName(key: ServiceKey, rendering: Rendering): string {
  if (key.kind === "fwmark") {
    if (rendering.rule) return key.family === 6 ? `-f ${key.fwmark} -6` : `-f ${key.fwmark}`;
    return key.family === 6 ? `FWM  ${key.fwmark} IPv6` : `FWM  ${key.fwmark}`;
  }
  const vname = addressPort(key.address, key.port, key.protocol, rendering);
  if (rendering.rule) return `${RULE_SWITCH[key.protocol]} ${vname}`;
  const name = `${left(key.protocol.toUpperCase(), 4)} ${vname}`;
  return isIpv6(key.address) ? name : name.slice(0, 33);
}

const RULE_SWITCH: Readonly<Record<Protocol, string>> = { tcp: "-t", udp: "-u", sctp: "--sctp-service" };

/** addrport_to_anyname(): "a.b.c.d:port" or "[v6]:port", in a 60-byte buffer. */
function addressPort(address: string, port: number, protocol: Protocol | undefined, rendering: Rendering): string {
  const parsed = parseAddress(address);
  const text = parsed?.text ?? address;
  const portText = rendering.format.numeric || !protocol ? String(port) : (rendering.portNames.nameOf(port, protocol) ?? String(port));
  const joined = parsed?.family === 6 ? `[${text}]:${portText}` : `${text}:${portText}`;
  return joined.slice(0, 59);
}

function isIpv6(address: string): boolean {
  return parseAddress(address)?.family === 6;
}

function serviceIsIpv6(key: ServiceKey): boolean {
  return key.kind === "fwmark" ? key.family === 6 : isIpv6(key.address);
}

/** The persistence mask when it is not the default /32 or /128, with its prefix (" -M " or " mask "). */
function maskText(config: ServiceConfig, prefix: string): string {
  const netmask = config.persistence?.netmask;
  if (netmask === undefined) return "";
  if (serviceIsIpv6(config.key)) {
    const length = typeof netmask === "number" ? netmask : Number.parseInt(netmask, 10);
    return length !== 128 ? `${prefix}${length}` : "";
  }
  const dotted = typeof netmask === "number" ? formatIpv4(prefixToMask(netmask)) : (parseAddress(netmask)?.text ?? netmask);
  return dotted !== "255.255.255.255" ? `${prefix}${dotted}` : "";
}

function prefixToMask(length: number): number {
  if (length <= 0) return 0;
  if (length >= 32) return 0xffffffff;
  return (0xffffffff << (32 - length)) >>> 0;
}

/** print_sched_flags(): named for sh and mh, flag-N otherwise; unnamed bits print nothing. */
function schedFlagsText(config: ServiceConfig): string {
  const bits = schedulerFlagBits(config.schedulerFlags);
  const named = config.scheduler === "sh" || config.scheduler === "mh";
  const names = schedulerFlagNames(config.scheduler, named ? bits & 3 : bits);
  return names.join(",");
}

function forwardName(dest: DestinationSnapshot): string {
  if (dest.local) return "Local";
  // FullNat: DPVS's ipvsadm name for the method.
  return { masq: "Masq", route: "Route", tunnel: "Tunnel", fullnat: "FullNat" }[dest.config.method];
}

function forwardSwitch(dest: DestinationSnapshot): string {
  if (dest.local) return "-g";
  return { masq: "-m", route: "-g", tunnel: "-i", fullnat: "--fullnat" }[dest.config.method];
}

const CHECKSUM_SHORT: Readonly<Record<TunnelChecksum, string>> = { nocsum: "-c", csum: "+c", remcsum: "r+c" };

/** fwd_tun_info(): "ipip", "gue:6080:-c", "gre:+c"; nothing for other methods. */
function tunnelInfo(dest: DestinationConfig): string | undefined {
  if (dest.method !== "tunnel") return undefined;
  const tunnel = dest.tunnel ?? { type: "ipip", checksum: "nocsum" };
  if (tunnel.type === "ipip") return "ipip";
  if (tunnel.type === "gue") return `gue:${tunnel.port ?? 0}:${CHECKSUM_SHORT[tunnel.checksum]}`;
  return `gre:${CHECKSUM_SHORT[tunnel.checksum]}`;
}

/**
 * One -a line. lvsadm's one addition: " -x U -y L" after " -w W" when a threshold is set
 * (ipvsadm's -S drops thresholds; with both zero the line is ipvsadm's, byte for byte).
 */
function ruleLine(svcName: string, dname: string, dest: DestinationSnapshot): string {
  const d = dest.config;
  let line = `-a ${svcName} -r ${dname} ${forwardSwitch(dest)} -w ${d.weight}`;
  if (d.upperThreshold !== 0 || d.lowerThreshold !== 0) line += ` -x ${d.upperThreshold} -y ${d.lowerThreshold}`;
  if (d.method === "tunnel" && !dest.local) {
    const tunnel = d.tunnel ?? { type: "ipip", checksum: "nocsum" };
    line += ` --tun-type ${tunnel.type}`;
    if (tunnel.type === "gue") line += ` --tun-port ${tunnel.port ?? 0} --tun-${tunnel.checksum}`;
    if (tunnel.type === "gre") line += ` --tun-${tunnel.checksum}`;
  }
  return `${line}\n`;
}

/** print_largenum(): "%9llu" below 10^8, then K, M, G, T; --exact widens instead. */
export function largeNumber(value: bigint, format: Pick<ListFormat, "exact">): string {
  const digits = value.toString();
  if (format.exact) return right(digits, digits.length <= 8 ? 9 : digits.length + 1);
  if (value < 100000000n) return right(digits, 9);
  if (value < 1000000000n) return `${right((value / 1000n).toString(), 8)}K`;
  if (value < 100000000000n) return `${right((value / 1000000n).toString(), 8)}M`;
  if (value < 100000000000000n) return `${right((value / 1000000000n).toString(), 8)}G`;
  return `${right((value / 1000000000000n).toString(), 8)}T`;
}

/** `ipvsadm -Lc` / `-Lnc` (list_conn and print_conn). */
export function formatConnections(
  connections: readonly ConnectionSnapshot[],
  format: Pick<ListFormat, "numeric" | "persistentConn"> = DEFAULT_LIST_FORMAT,
  options: FormatOptions = {},
): string {
  const rendering: Rendering = {
    format: { ...DEFAULT_LIST_FORMAT, numeric: format.numeric },
    rule: false,
    portNames: options.portNames ?? systemPortNamesDb(),
  };
  let out = "IPVS connection entries\n";
  out += format.persistentConn
    ? `pro expire ${left("state", 11)} ${left("source", 18)} ${left("virtual", 18)} ${left("destination", 18)} ${left("pe name", 16)} pe_data\n`
    : `pro expire ${left("state", 11)} ${left("source", 18)} ${left("virtual", 18)} destination\n`;
  for (const conn of connections) {
    const protocol = conn.protocol === "ip" ? undefined : conn.protocol;
    const cname = addressPort(conn.client.address, conn.client.port, protocol, rendering);
    const vname = addressPort(conn.virtual.address, conn.virtual.port, protocol, rendering);
    const dname = addressPort(conn.destination.address, conn.destination.port, protocol, rendering);
    const expires = Math.max(0, Math.trunc(conn.expires));
    const expire = `${String(Math.trunc(expires / 60)).padStart(2, "0")}:${String(expires % 60).padStart(2, "0")}`;
    const head = `${left(conn.protocol.toUpperCase(), 3)} ${left(expire, 6)} ${left(conn.state, 11)} ${left(cname, 18)} ${left(vname, 18)}`;
    if (format.persistentConn && conn.persistenceEngine) {
      out += `${head} ${left(dname, 16)} ${left(conn.persistenceEngine.name, 18)} ${conn.persistenceEngine.data}\n`;
    } else {
      out += `${head} ${dname}\n`;
    }
  }
  return out;
}

/** `ipvsadm -L --timeout`. */
export function formatTimeouts(timeouts: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${timeouts.tcp} ${timeouts.tcpFin} ${timeouts.udp}\n`;
}

/** `ipvsadm -L --daemon`: the master's line, then the backup's; nothing when none runs. */
export function formatDaemons(daemons: readonly SyncDaemonSnapshot[]): string {
  let out = "";
  for (const role of ["master", "backup"] as const) {
    const daemon = daemons.find((d) => d.role === role);
    if (!daemon) continue;
    out += `${role} sync daemon (mcast=${daemon.mcastInterface}, syncid=${daemon.syncId}`;
    if (daemon.syncMaxlen) out += `, maxlen=${daemon.syncMaxlen}`;
    if (daemon.mcastGroup !== undefined) out += `, group=${parseAddress(daemon.mcastGroup)?.text ?? daemon.mcastGroup}`;
    if (daemon.mcastPort) out += `, port=${daemon.mcastPort}`;
    if (daemon.mcastTtl) out += `, ttl=${daemon.mcastTtl}`;
    out += ")\n";
  }
  return out;
}

/** printf("%-Ns"). */
function left(text: string, width: number): string {
  return text.padEnd(width, " ");
}

/** printf("%Ns"). */
function right(text: string, width: number): string {
  return text.padStart(width, " ");
}
