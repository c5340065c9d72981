// ipvsadm's process_options(), re-stated: an argument vector becomes one typed LvsCommand,
// or a CommandError carrying the text and exit status ipvsadm gives for the same words.
// Checks run in ipvsadm's order, so the first complaint is the one ipvsadm would make.
import type { DestinationConfig, ForwardMethod, Protocol, ServiceConfig, ServiceKey, TunnelChecksum, TunnelType } from "../config/types.js";
import { PoptScanner } from "./argv.js";
import { CommandError, failure, kernelFailure, usageFailure } from "./errors.js";
import { formatIpv4, formatIpv6, inetAton, inetPton4, inetPton6, parseAddress } from "./inet.js";
import { COMMAND_OPTION_RULES, IPVSADM_OPTIONS, OPTION_NAMES, TUNNEL_OPTION_COLUMNS, TUNNEL_OPTION_RULES } from "./option-table.js";
import type { CommandName, OptionName, OptionTag } from "./option-table.js";
import { systemPortNamesDb } from "./services-db.js";
import type { PortNames } from "./services-db.js";

/** How -L prints: ipvsadm's FMT_ flags. */
export interface ListFormat {
  /** -n: numeric ports (addresses are always numeric in lvsadm). */
  readonly numeric: boolean;
  /** --exact: full numbers instead of K/M/G/T. */
  readonly exact: boolean;
  /** false with --nosort: the table's own order. */
  readonly sort: boolean;
  readonly stats: boolean;
  readonly rate: boolean;
  readonly thresholds: boolean;
  readonly persistentConn: boolean;
  readonly tunInfo: boolean;
}

export type ListSubject = "services" | "connections" | "timeouts" | "daemon";

import type { Timeouts } from "../balancer/snapshots.js";
export type { Timeouts };

export type SyncRole = "master" | "backup";

export interface SyncDaemonConfig {
  readonly role: SyncRole;
  /** --mcast-interface, default eth0 (ipvsadm's DEF_MCAST_IFN). */
  readonly mcastInterface: string;
  /** --syncid 0..255; 0 (the default ipvsadm sends) accepts every sync id. */
  readonly syncId: number;
  readonly syncMaxlen?: number;
  readonly mcastGroup?: string;
  readonly mcastPort?: number;
  readonly mcastTtl?: number;
}

/** A real server named within its service (what -d needs). */
export interface DestinationRef {
  readonly address: string;
  readonly port: number;
}

export type LvsCommand =
  /** -A: every field set; absent options take ipvsadm's defaults (scheduler wlc). */
  | { readonly kind: "add-service"; readonly service: ServiceConfig }
  /** -E: replaces the whole configuration, absent options back to defaults, as ipvsadm does. */
  | { readonly kind: "edit-service"; readonly service: ServiceConfig }
  | { readonly kind: "delete-service"; readonly service: ServiceKey }
  | { readonly kind: "clear" }
  /** -a: absent options take ipvsadm's defaults (-g, weight 1). */
  | { readonly kind: "add-dest"; readonly service: ServiceKey; readonly destination: DestinationConfig }
  /** -e: replaces weight, method, thresholds and tunnel options; absent ones back to defaults. */
  | { readonly kind: "edit-dest"; readonly service: ServiceKey; readonly destination: DestinationConfig }
  | { readonly kind: "delete-dest"; readonly service: ServiceKey; readonly destination: DestinationRef }
  | { readonly kind: "list"; readonly show: ListSubject; readonly service?: ServiceKey; readonly format: ListFormat }
  | { readonly kind: "zero"; readonly service?: ServiceKey }
  | { readonly kind: "set-timeouts"; readonly timeouts: Timeouts }
  | { readonly kind: "save"; readonly numeric: boolean }
  /** -R: the rules come from stdin (see parseRules). */
  | { readonly kind: "restore" }
  | { readonly kind: "start-daemon"; readonly daemon: SyncDaemonConfig }
  | { readonly kind: "stop-daemon"; readonly role: SyncRole; readonly syncId?: number }
  /** DPVS --add-laddr / --del-laddr: a full-NAT local address of a service. */
  | { readonly kind: "add-laddr" | "del-laddr"; readonly service: ServiceKey; readonly address: string }
  /** DPVS --get-laddr: one service's local addresses, or every service's. */
  | { readonly kind: "get-laddr"; readonly service?: ServiceKey; readonly numeric: boolean }
  | { readonly kind: "help" }
  | { readonly kind: "version" };

export interface ParseCommandOptions {
  /** argv[0] as ipvsadm prints it in "Try `PROGRAM -h' ..."; default "lvsadm". */
  readonly program?: string;
  /** Port names for "host:http"; default /etc/services of this machine. */
  readonly portNames?: PortNames;
}

/** Custom and built-in scheduler names the parser lets through (the Balancer checks registration). */
export const SCHEDULER_NAME = /^[a-z][a-z0-9_-]{0,14}$/;
const PERSISTENCE_ENGINE_NAME = /^[A-Za-z0-9_-]{1,16}$/;

const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 2147483647;
const DEFAULT_PERSISTENT_TIMEOUT = 300;
const DEFAULT_SCHEDULER = "wlc";
const DEFAULT_MCAST_INTERFACE = "eth0";
const SCHED_FLAG_BITS = { 1: 1, 2: 2, 3: 4 } as const;

const COMMAND_BY_TAG: Partial<Record<OptionTag, CommandName>> = {
  A: "add-service",
  E: "edit-service",
  D: "delete-service",
  a: "add-server",
  e: "edit-server",
  d: "delete-server",
  C: "flush",
  L: "list",
  l: "list",
  Z: "zero",
  set: "set",
  R: "restore",
  S: "save",
  P: "add-laddr",
  Q: "del-laddr",
  G: "get-laddr",
};

/** The mutable state ipvsadm's ipvs_command_entry holds while options are read. */
interface Entry {
  command: CommandName | undefined;
  options: Set<OptionName>;
  svc: {
    family: 0 | 4 | 6;
    protocol: Protocol | undefined;
    address: string;
    port: number;
    fwmark: number;
    scheduler: string;
    persistent: boolean;
    timeout: number;
    /** IPv4: the mask as a host-order u32; IPv6: the prefix length. */
    netmask: number;
    onePacket: boolean;
    persistenceEngine: string;
    proxyProtocol: boolean;
  };
  dest: {
    family: 0 | 4 | 6;
    address: string;
    port: number;
    method: ForwardMethod;
    weight: number;
    upperThreshold: number;
    lowerThreshold: number;
    tunnelType: TunnelType;
    tunnelPort: number;
    checksum: TunnelChecksum;
  };
  timeouts: Timeouts;
  daemon: {
    role: SyncRole;
    mcastInterface: string;
    syncId: number;
    syncMaxlen?: number;
    mcastGroup?: string;
    mcastPort?: number;
    mcastTtl?: number;
  };
  format: { -readonly [K in keyof ListFormat]: ListFormat[K] };
  schedFlags: string;
  /** -z: a local address (canonical text) and its family. */
  laddr: { family: 0 | 4 | 6; address: string };
}

/** Parses the words after the program name, as `ipvsadm WORDS...` would. */
export function parseCommand(args: readonly string[], options: ParseCommandOptions = {}): LvsCommand {
  try {
    return parseOrThrow(args, options.program ?? "lvsadm", options.portNames ?? systemPortNamesDb());
  } catch (error) {
    if (error instanceof CommandError) throw error;
    // Never anything but CommandError: an internal slip still reads as a refusal.
    throw failure(`internal error while parsing: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parseOrThrow(args: readonly string[], program: string, portNames: PortNames): LvsCommand {
  const entry = newEntry();
  // ipvsadm with no argument at all lists the table.
  if (args.length === 0) return listCommand(entry);

  const scanner = new PoptScanner(args, IPVSADM_OPTIONS);
  const first = scanner.nextOption();
  if (first.type !== "option") throw usageFailure(program);
  if (first.tag === "h") return { kind: "help" };
  if (first.tag === "v") return { kind: "version" };
  if (first.tag === "start-daemon" || first.tag === "stop-daemon") {
    entry.command = first.tag;
    if (first.value === "master" || first.value === "backup") entry.daemon.role = first.value;
    else throw failure(first.tag === "start-daemon" ? "illegal start-daemon parameter specified" : "illegal start_daemon specified");
  } else {
    const command = COMMAND_BY_TAG[first.tag];
    if (!command) throw usageFailure(program);
    entry.command = command;
  }

  for (;;) {
    const event = scanner.nextOption();
    if (event.type === "end") break;
    if (event.type === "error") throw new CommandError("option", `${event.badOption}: ${event.error}\n`, 255);
    applyOption(entry, event.tag, event.value, portNames, scanner.lastWord());
  }

  if (entry.command === "set") {
    const tcp = scanner.nextLeftover();
    const tcpFin = tcp === undefined ? undefined : scanner.nextLeftover();
    const udp = tcpFin === undefined ? undefined : scanner.nextLeftover();
    if (tcp === undefined || tcpFin === undefined || udp === undefined) throw failure("--set option requires 3 timeout values");
    entry.timeouts = {
      tcp: parseTimeout(tcp, 0, MAX_TIMEOUT),
      tcpFin: parseTimeout(tcpFin, 0, MAX_TIMEOUT),
      udp: parseTimeout(udp, 0, MAX_TIMEOUT),
    };
  }
  const unexpected = scanner.nextLeftover();
  if (unexpected !== undefined) throw failure(`unexpected argument ${unexpected}`);

  let schedulerFlagBits = 0;
  if (entry.schedFlags.length > 0) schedulerFlagBits = parseSchedulerFlags(entry.svc.scheduler, entry.schedFlags);

  checkCommandOptions(entry.command, entry.options);
  return finish(entry, schedulerFlagBits);
}

function newEntry(): Entry {
  return {
    command: undefined,
    options: new Set(),
    svc: {
      family: 0,
      protocol: undefined,
      address: "0.0.0.0",
      port: 0,
      fwmark: 0,
      scheduler: "",
      persistent: false,
      timeout: 0,
      netmask: 0xffffffff,
      onePacket: false,
      persistenceEngine: "",
      proxyProtocol: false,
    },
    dest: {
      family: 0,
      address: "0.0.0.0",
      port: 0,
      method: "route",
      weight: 1,
      upperThreshold: 0,
      lowerThreshold: 0,
      tunnelType: "ipip",
      tunnelPort: 0,
      checksum: "nocsum",
    },
    timeouts: { tcp: 0, tcpFin: 0, udp: 0 },
    daemon: { role: "master", mcastInterface: "", syncId: 0 },
    format: {
      numeric: false,
      exact: false,
      sort: true,
      stats: false,
      rate: false,
      thresholds: false,
      persistentConn: false,
      tunInfo: false,
    },
    schedFlags: "",
    laddr: { family: 0, address: "" },
  };
}

/** set_option(): each option at most once. */
function setOption(entry: Entry, name: OptionName): void {
  if (entry.options.has(name)) throw failure(`multiple '${name}' options specified`);
  entry.options.add(name);
}

function applyOption(entry: Entry, tag: OptionTag, value: string | undefined, portNames: PortNames, word: string): void {
  const arg = value ?? "";
  const { svc, dest, format, daemon } = entry;
  switch (tag) {
    case "t":
    case "u":
    case "sctp-service": {
      setOption(entry, "service-address");
      svc.protocol = tag === "t" ? "tcp" : tag === "u" ? "udp" : "sctp";
      const parsed = parseHostPort(arg, svc.protocol, portNames);
      if (parsed.kind !== "address") throw addressFailure("illegal virtual server address[:port] specified", parsed);
      svc.family = parsed.family;
      svc.address = parsed.address;
      if (parsed.family === 6) svc.netmask = 128;
      if (parsed.port !== undefined) svc.port = parsed.port;
      return;
    }
    case "f":
      setOption(entry, "service-address");
      svc.family = 4;
      svc.protocol = "tcp"; // ipvsadm sets TCP for fwmark services (used for port names only)
      svc.fwmark = parseFwmark(arg);
      return;
    case "s":
      setOption(entry, "scheduler");
      svc.scheduler = arg.slice(0, 15); // IP_VS_SCHEDNAME_MAXLEN - 1
      return;
    case "p":
      setOption(entry, "persistent");
      svc.persistent = true;
      svc.timeout = value === undefined ? DEFAULT_PERSISTENT_TIMEOUT : parseTimeout(value, 1, MAX_TIMEOUT);
      return;
    case "M":
      setOption(entry, "netmask");
      if (svc.family !== 6) {
        const mask = inetAton(arg);
        if (mask === undefined) {
          throw addressFailure("illegal virtual server persistent mask specified", looksLikeHostName(arg) ? { kind: "name", name: arg } : { kind: "invalid" });
        }
        svc.netmask = mask;
      } else {
        svc.netmask = cAtoiAsUnsigned(arg);
        if (svc.netmask < 1 || svc.netmask > 128) throw failure("illegal ipv6 netmask specified");
      }
      return;
    case "r": {
      setOption(entry, "real-server");
      const parsed = parseHostPort(arg, svc.protocol, portNames);
      if (parsed.kind !== "address") {
        // ipvsadm copies the parsed parts before it checks them; a failure stops here anyway.
        throw addressFailure("illegal real server address[:port] specified", parsed);
      }
      dest.family = parsed.family;
      dest.address = parsed.address;
      // A missing port copies the virtual port known at this point.
      dest.port = parsed.port ?? svc.port;
      return;
    }
    case "i":
    case "g":
    case "m":
    case "fullnat":
      setOption(entry, "forwarding-method");
      dest.method = tag === "i" ? "tunnel" : tag === "g" ? "route" : tag === "m" ? "masq" : "fullnat";
      return;
    case "proxy-protocol":
      // DPVS's --proxy-protocol: v2 (the binary header; v1, the text one, is not built) or disable.
      setOption(entry, "proxy-protocol");
      if (arg !== "v2" && arg !== "disable") throw failure("illegal proxy-protocol specified (v2 or disable)");
      svc.proxyProtocol = arg === "v2";
      return;
    case "z": {
      setOption(entry, "laddr");
      // An address alone, no port (DPVS's -z); IPv6 bare or in brackets.
      const parsed = parseAddress(arg.startsWith("[") && arg.endsWith("]") ? arg.slice(1, -1) : arg);
      if (!parsed) throw failure("illegal local address specified");
      entry.laddr = { family: parsed.family, address: parsed.text };
      return;
    }
    case "w":
      setOption(entry, "weight");
      dest.weight = numberOrFail(arg, 0, 65535, "illegal weight specified");
      return;
    case "x":
      setOption(entry, "u-threshold");
      dest.upperThreshold = numberOrFail(arg, 0, INT_MAX, "illegal u_threshold specified");
      return;
    case "y":
      setOption(entry, "l-threshold");
      dest.lowerThreshold = numberOrFail(arg, 0, INT_MAX, "illegal l_threshold specified");
      return;
    case "c":
      setOption(entry, "connection");
      return;
    case "n":
      setOption(entry, "numeric");
      format.numeric = true;
      return;
    case "mcast-interface":
      setOption(entry, "mcast-interface");
      daemon.mcastInterface = arg.slice(0, 15); // IP_VS_IFNAME_MAXLEN - 1
      return;
    case "syncid":
      setOption(entry, "syncid");
      daemon.syncId = numberOrFail(arg, 0, 255, "illegal syncid specified");
      return;
    case "timeout":
      setOption(entry, "timeout");
      return;
    case "daemon":
      setOption(entry, "daemon");
      return;
    case "stats":
      setOption(entry, "stats");
      format.stats = true;
      return;
    case "rate":
      setOption(entry, "rate");
      format.rate = true;
      return;
    case "thresholds":
      setOption(entry, "thresholds");
      format.thresholds = true;
      return;
    case "persistent-conn":
      setOption(entry, "persistent-conn");
      format.persistentConn = true;
      return;
    case "nosort":
      setOption(entry, "nosort");
      format.sort = false;
      return;
    case "sort":
      return; // ipvsadm: a no-op kept for compatibility
    case "X":
      setOption(entry, "exact");
      format.exact = true;
      return;
    case "6":
      if (svc.fwmark === 0) throw new CommandError("invalid", "-6 used before -f\n\n", 2);
      svc.family = 6;
      svc.netmask = 128;
      return;
    case "o":
      setOption(entry, "ops");
      svc.onePacket = true;
      return;
    case "pe":
      setOption(entry, "pe");
      svc.persistenceEngine = arg.slice(0, 16); // IP_VS_PENAME_MAXLEN
      return;
    case "b":
      setOption(entry, "sched-flags");
      entry.schedFlags = arg.slice(0, 127); // ipvsadm copies into a 128-byte buffer
      return;
    case "mcast-group":
      setOption(entry, "mcast-group");
      daemon.mcastGroup = parseMulticastGroup(arg);
      return;
    case "mcast-port":
      setOption(entry, "mcast-port");
      daemon.mcastPort = numberOrFail(arg, 1, 65535, "illegal mcast-port specified");
      return;
    case "mcast-ttl":
      setOption(entry, "mcast-ttl");
      daemon.mcastTtl = numberOrFail(arg, 1, 255, "illegal mcast-ttl specified");
      return;
    case "sync-maxlen":
      setOption(entry, "sync-maxlen");
      daemon.syncMaxlen = numberOrFail(arg, 1, 65535 - 20 - 8, "illegal sync-maxlen specified");
      return;
    case "tun-info":
      setOption(entry, "tun-info");
      format.tunInfo = true;
      return;
    case "tun-type":
      setOption(entry, "tun-type");
      if (arg !== "ipip" && arg !== "gue" && arg !== "gre") throw failure("illegal tunnel type specified");
      dest.tunnelType = arg;
      return;
    case "tun-port":
      setOption(entry, "tun-port");
      dest.tunnelPort = numberOrFail(arg, 1, 65535, "illegal tunnel port specified");
      return;
    case "tun-nocsum":
      setOption(entry, "tun-nocsum");
      return;
    case "tun-csum":
      setOption(entry, "tun-csum");
      dest.checksum = "csum";
      return;
    case "tun-remcsum":
      setOption(entry, "tun-remcsum");
      dest.checksum = "remcsum";
      return;
    default:
      // A second command (or -h, -v): ipvsadm names the last word popt read.
      throw failure(`invalid option \`${word}'`);
  }
}

/** generic_opt_check(): the first complaint in option-table order wins. */
function checkCommandOptions(command: CommandName, given: ReadonlySet<OptionName>): void {
  const rules = COMMAND_OPTION_RULES[command];
  let firstExclusive: OptionName | undefined;
  OPTION_NAMES.forEach((name, column) => {
    const rule = rules[column];
    if (!given.has(name)) {
      if (rule === "+") throw failure(`You need to supply the '${name}' option for the '${command}' command`);
      return;
    }
    if (rule === "x") throw failure(`Illegal '${name}' option with the '${command}' command`);
    if (rule === "1") {
      if (firstExclusive === undefined) firstExclusive = name;
      else throw failure(`The option '${name}' conflicts with the '${firstExclusive}' option in the '${command}' command`);
    }
  });
}

/** tunnel_opt_check() for the chosen tunnel type. */
function checkTunnelOptions(type: TunnelType, given: ReadonlySet<OptionName>): void {
  const rules = TUNNEL_OPTION_RULES[type];
  let firstExclusive: OptionName | undefined;
  TUNNEL_OPTION_COLUMNS.forEach((name, column) => {
    const rule = rules[column];
    if (!given.has(name)) {
      if (rule === "+") throw failure(`You need to supply the '${name}' option for the '${type}' tunnel type`);
      return;
    }
    if (rule === "x") throw failure(`Illegal '${name}' option with the '${type}' tunnel type`);
    if (rule === "1") {
      if (firstExclusive === undefined) firstExclusive = name;
      else throw failure(`The option '${name}' conflicts with the '${firstExclusive}' option in the '${type}' tunnel type`);
    }
  });
}

function finish(entry: Entry, schedulerFlagBits: number): LvsCommand {
  const command = entry.command!;
  const { svc, dest } = entry;

  if (command === "add-service" || command === "edit-service") {
    if (svc.fwmark === 0 && svc.port === 0 && !svc.persistent) throw failure("Zero port specified for non-persistent service");
    if (svc.onePacket && svc.fwmark === 0 && svc.protocol !== "udp") throw failure("One-Packet Scheduling is only for UDP virtual services");
    if (svc.scheduler.length === 0) svc.scheduler = DEFAULT_SCHEDULER;
  }

  if (command === "add-server" || command === "edit-server") {
    // Direct routing and tunnelling cannot change the port: the real server gets the virtual one.
    if (svc.fwmark === 0 && (dest.method === "tunnel" || dest.method === "route")) dest.port = svc.port;
    if (dest.family !== svc.family && dest.method !== "tunnel") throw failure("Different address family is allowed only for tunneling servers");
    if (dest.method === "fullnat" && svc.fwmark !== 0) throw failure("Full NAT (--fullnat) needs an address service (-t, -u or --sctp-service), not -f");
    const tunnelOptions: OptionName[] = ["tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"];
    if (tunnelOptions.some((name) => entry.options.has(name)) && dest.method !== "tunnel") {
      throw failure("Tunnel options conflict with forward method");
    }
    checkTunnelOptions(dest.tunnelType, entry.options);
  }

  switch (command) {
    case "list": {
      const given = entry.options;
      const listsOther = given.has("connection") || given.has("timeout") || given.has("daemon");
      const statsLike = given.has("stats") || given.has("rate") || given.has("thresholds");
      if ((listsOther && statsLike) || ((given.has("timeout") || given.has("daemon")) && given.has("persistent-conn"))) {
        throw failure("options conflicts in the list command");
      }
      return listCommand(entry);
    }
    case "restore":
      return { kind: "restore" };
    case "save":
      return { kind: "save", numeric: entry.format.numeric };
    case "flush":
      return { kind: "clear" };
    case "add-service":
    case "edit-service":
      return { kind: command, service: serviceConfig(entry, schedulerFlagBits) };
    case "delete-service":
      return { kind: "delete-service", service: serviceKey(entry) };
    case "zero":
      return entry.options.has("service-address") ? { kind: "zero", service: serviceKey(entry) } : { kind: "zero" };
    case "add-server":
      return { kind: "add-dest", service: serviceKey(entry), destination: destinationConfig(entry) };
    case "edit-server":
      return { kind: "edit-dest", service: serviceKey(entry), destination: destinationConfig(entry) };
    case "delete-server":
      return { kind: "delete-dest", service: serviceKey(entry), destination: { address: dest.address, port: dest.port } };
    case "set":
      return { kind: "set-timeouts", timeouts: entry.timeouts };
    case "start-daemon": {
      const d = entry.daemon;
      return {
        kind: "start-daemon",
        daemon: {
          role: d.role,
          mcastInterface: d.mcastInterface.length > 0 ? d.mcastInterface : DEFAULT_MCAST_INTERFACE,
          syncId: d.syncId,
          ...(d.syncMaxlen !== undefined ? { syncMaxlen: d.syncMaxlen } : {}),
          ...(d.mcastGroup !== undefined ? { mcastGroup: d.mcastGroup } : {}),
          ...(d.mcastPort !== undefined ? { mcastPort: d.mcastPort } : {}),
          ...(d.mcastTtl !== undefined ? { mcastTtl: d.mcastTtl } : {}),
        },
      };
    }
    case "add-laddr":
    case "del-laddr":
      if (svc.fwmark !== 0) throw failure("local addresses (-z) belong to address services (-t, -u or --sctp-service), not -f");
      if (entry.laddr.family !== svc.family) throw failure("Different address family is not allowed for a local address");
      return { kind: command, service: serviceKey(entry), address: entry.laddr.address };
    case "get-laddr":
      return entry.options.has("service-address")
        ? { kind: "get-laddr", service: serviceKey(entry), numeric: entry.format.numeric }
        : { kind: "get-laddr", numeric: entry.format.numeric };
    case "stop-daemon":
      return entry.options.has("syncid")
        ? { kind: "stop-daemon", role: entry.daemon.role, syncId: entry.daemon.syncId }
        : { kind: "stop-daemon", role: entry.daemon.role };
  }
}

function listCommand(entry: Entry): LvsCommand {
  const given = entry.options;
  const format = { ...entry.format };
  if (given.has("connection")) return { kind: "list", show: "connections", format };
  if (given.has("service-address")) return { kind: "list", show: "services", service: serviceKey(entry), format };
  if (given.has("timeout")) return { kind: "list", show: "timeouts", format };
  if (given.has("daemon")) return { kind: "list", show: "daemon", format };
  return { kind: "list", show: "services", format };
}

function serviceKey(entry: Entry): ServiceKey {
  const { svc } = entry;
  if (svc.fwmark !== 0) return { kind: "fwmark", fwmark: svc.fwmark, family: svc.family === 6 ? 6 : 4 };
  return { kind: "address", protocol: svc.protocol ?? "tcp", address: svc.address, port: svc.port };
}

function serviceConfig(entry: Entry, schedulerFlagBits: number): ServiceConfig {
  const { svc } = entry;
  if (!SCHEDULER_NAME.test(svc.scheduler)) throw kernelFailure("Scheduler or persistence engine not found");
  if (svc.persistenceEngine.length > 0 && !PERSISTENCE_ENGINE_NAME.test(svc.persistenceEngine)) {
    throw kernelFailure("Scheduler or persistence engine not found");
  }
  const key = serviceKey(entry);
  const ipv6 = svc.family === 6;
  return {
    key,
    scheduler: svc.scheduler,
    schedulerFlags: schedulerFlagNames(svc.scheduler, schedulerFlagBits),
    ...(svc.persistent ? { persistence: { timeout: svc.timeout, netmask: ipv6 ? svc.netmask : formatIpv4(svc.netmask) } } : {}),
    onePacket: svc.onePacket,
    ...(svc.persistenceEngine.length > 0 ? { persistenceEngine: svc.persistenceEngine } : {}),
    ...(svc.proxyProtocol ? { proxyProtocol: "v2" as const } : {}),
  };
}

function destinationConfig(entry: Entry): DestinationConfig {
  const { dest } = entry;
  return {
    address: dest.address,
    port: dest.port,
    method: dest.method,
    weight: dest.weight,
    upperThreshold: dest.upperThreshold,
    lowerThreshold: dest.lowerThreshold,
    ...(dest.method === "tunnel"
      ? {
          tunnel: {
            type: dest.tunnelType,
            ...(dest.tunnelType === "gue" ? { port: dest.tunnelPort } : {}),
            checksum: dest.checksum,
          },
        }
      : {}),
  };
}

/** parse_sched_flags(): a comma list; sh-* only with sh, mh-* only with mh. Returns SCHED1..3 bits. */
function parseSchedulerFlags(schedulerName: string, list: string): number {
  const scheduler = schedulerName.length > 0 ? schedulerName : DEFAULT_SCHEDULER;
  const flags = list.split(",").filter((flag) => flag.length > 0);
  // ipvsadm crashes on a list of commas only; lvsadm refuses it.
  if (flags.length === 0) throw failure(`invalid scheduler flag \`${list}'`);
  let bits = 0;
  for (const flag of flags) {
    const generic = /^flag-([123])$/.exec(flag);
    if (generic) {
      bits |= SCHED_FLAG_BITS[Number(generic[1]) as 1 | 2 | 3];
      continue;
    }
    const specific = /^(sh|mh)-(fallback|port)$/.exec(flag);
    if (!specific) throw failure(`invalid scheduler flag \`${flag}'`);
    bits |= specific[2] === "fallback" ? 1 : 2;
    if (scheduler !== specific[1]) throw failure(`incompatible scheduler flag \`${flag}'`);
  }
  return bits;
}

/**
 * The flags as ipvsadm prints them back: by scheduler (sh-*, mh-* or flag-N), in bit order.
 * A bit the scheduler has no name for keeps its flag-N name so that nothing is lost.
 */
export function schedulerFlagNames(scheduler: string, bits: number): string[] {
  const names: string[] = [];
  for (const [bit, n] of [
    [1, 1],
    [2, 2],
    [4, 3],
  ] as const) {
    if ((bits & bit) === 0) continue;
    if ((scheduler === "sh" || scheduler === "mh") && bit !== 4) names.push(`${scheduler}-${bit === 1 ? "fallback" : "port"}`);
    else names.push(`flag-${n}`);
  }
  return names;
}

/** The SCHED1..3 bits a flag list stands for (any spelling ipvsadm accepts). */
export function schedulerFlagBits(flags: readonly string[]): number {
  let bits = 0;
  for (const flag of flags) {
    if (flag === "flag-1" || flag.endsWith("-fallback")) bits |= 1;
    else if (flag === "flag-2" || flag.endsWith("-port")) bits |= 2;
    else if (flag === "flag-3") bits |= 4;
  }
  return bits;
}

type HostPort =
  | { readonly kind: "address"; readonly family: 4 | 6; readonly address: string; readonly port: number | undefined }
  | { readonly kind: "invalid" }
  | { readonly kind: "name"; readonly name: string };

/** parse_service(): host[:port], [ipv6]:port, or a bare IPv6 address; ports by number or name. */
export function parseHostPort(text: string, protocol: Protocol | undefined, portNames: PortNames): HostPort {
  const invalid = { kind: "invalid" } as const;
  if (/^[0-9]*$/.test(text)) return invalid;
  let host = text;
  let portText: string | undefined;
  if (host[0] === "[") {
    const close = host.indexOf("]", 1);
    if (close === -1 || host[close + 1] !== ":") return invalid;
    portText = host.slice(close + 2);
    host = host.slice(1, close);
  }
  let family: 4 | 6;
  let address: string;
  const v6 = inetPton6(host);
  if (v6) {
    family = 6;
    address = formatIpv6(v6);
  } else {
    // ipvsadm looks for the port again inside the host part, so "[1.2.3.4]:80" loses its port.
    const colon = host.lastIndexOf(":");
    portText = colon === -1 ? undefined : host.slice(colon + 1);
    if (colon !== -1) host = host.slice(0, colon);
    const v4 = inetAton(host);
    if (v4 === undefined) return looksLikeHostName(host) ? { kind: "name", name: host } : invalid;
    family = 4;
    address = formatIpv4(v4);
  }
  if (portText === undefined) return { kind: "address", family, address, port: undefined };
  const numeric = stringToNumber(portText, 0, 65535);
  const port = numeric ?? (protocol ? portNames.portOf(portText, protocol) : undefined);
  if (port === undefined) return invalid;
  return { kind: "address", family, address, port };
}

/** A word gethostbyname() could resolve: lvsadm does not resolve names, and says so. */
function looksLikeHostName(text: string): boolean {
  return /[A-Za-z]/.test(text) && /^[A-Za-z0-9_]([A-Za-z0-9_-]*)(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*\.?$/.test(text);
}

function addressFailure(message: string, parsed: Exclude<HostPort, { kind: "address" }>): CommandError {
  if (parsed.kind === "name") {
    return failure(`${message} (host name \`${parsed.name}' not resolved: lvsadm takes IPv4 and IPv6 addresses only)`);
  }
  return failure(message);
}

/** string_to_number(): strtol base 10 over the whole word, then a range check. */
export function stringToNumber(text: string, min: number, max: number): number | undefined {
  if (!/^[ \t\n\v\f\r]*[+-]?[0-9]+$/.test(text)) return undefined;
  const value = Number(text.trim());
  if (!Number.isFinite(value) || value < min || value > max) return undefined;
  return value === 0 ? 0 : value; // no -0
}

function numberOrFail(text: string, min: number, max: number, message: string): number {
  const value = stringToNumber(text, min, max);
  if (value === undefined) throw failure(message);
  return value;
}

/** parse_timeout(): a number in range, or "invalid timeout value `X' specified". */
function parseTimeout(text: string, min: number, max: number): number {
  const value = stringToNumber(text, min, max);
  if (value === undefined) throw failure(`invalid timeout value \`${text}' specified`);
  return value;
}

/** parse_fwmark(): strtol into an unsigned long, 1..UINT_MAX. */
function parseFwmark(text: string): number {
  const value = /^[ \t\n\v\f\r]*\+?[0-9]+$/.test(text) ? Number(text.trim()) : NaN;
  if (!(value >= 1 && value <= 0xffffffff)) throw failure(`invalid fwmark value \`${text}' specified`);
  return value;
}

/** atoi() stored into a u_int32_t: strtol (clamped to long), truncated to int, then unsigned. */
function cAtoiAsUnsigned(text: string): number {
  const match = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(text);
  if (!match) return 0;
  let value = BigInt(match[1]!);
  const longMax = (1n << 63n) - 1n;
  if (value > longMax) value = longMax;
  if (value < -longMax - 1n) value = -longMax - 1n;
  return Number(BigInt.asUintN(32, value));
}

function parseMulticastGroup(text: string): string {
  if (text.includes(":")) {
    const words = inetPton6(text);
    if (!words || words[0]! >> 8 !== 0xff) throw failure(`invalid IPv6 mcast-group \`${text}'`);
    return formatIpv6(words);
  }
  const v4 = inetPton4(text);
  if (v4 === undefined || v4 >>> 28 !== 0xe) throw failure(`invalid IPv4 mcast-group \`${text}'`);
  return formatIpv4(v4);
}
