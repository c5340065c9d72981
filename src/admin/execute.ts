// Carries out an lvsadm command against a Balancer and answers as ipvsadm would: the same
// text on stdout, the same words on stderr, the same exit status. The daemon runs this for
// each command it receives; tests run it directly.

import type { Balancer } from "../balancer/balancer.js";
import { ConfigError, type ConfigErrorCode, type ServiceKey } from "../config/types.js";
import type { LvsCommand, SyncDaemonConfig, SyncRole } from "./command.js";
import {
  formatConnections,
  formatDaemons,
  formatLocalAddresses,
  type LocalAddressListing,
  formatListing,
  formatSave,
  formatServiceListing,
  formatTimeouts,
  type SyncDaemonSnapshot,
  type FormatOptions,
} from "./format.js";
import { parseRules } from "./rules.js";
import { toJson } from "./json-output.js";
import { formatUsage, formatVersion } from "./usage.js";

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface ExecutionContext {
  readonly balancer: Balancer;
  /** The balancer's clock in milliseconds (for connection expiry in -Lc). */
  readonly now: () => number;
  /** Running sync daemons, for --daemon. */
  readonly daemons?: () => readonly SyncDaemonSnapshot[];
  /** Starts and stops sync daemons (--start-daemon, --stop-daemon); absent: not available. */
  readonly syncControl?: {
    start(config: SyncDaemonConfig): void;
    stop(role: SyncRole): void;
  };
  readonly program?: string;
  readonly format?: FormatOptions;
}

/** libipvs's ipvs_strerror table: the words depend on the operation. */
const KERNEL_WORDS: Partial<Record<LvsCommand["kind"], Partial<Record<ConfigErrorCode, string>>>> = {
  "add-service": { EEXIST: "Service already exists", ENOENT: "Scheduler or persistence engine not found" },
  "edit-service": { ESRCH: "No such service", ENOENT: "Scheduler or persistence engine not found" },
  "delete-service": { ESRCH: "No such service" },
  zero: { ESRCH: "No such service" },
  "add-dest": { ESRCH: "Service not defined", EEXIST: "Destination already exists" },
  "edit-dest": { ESRCH: "Service not defined", ENOENT: "No such destination" },
  "delete-dest": { ESRCH: "Service not defined", ENOENT: "No such destination" },
  list: { ESRCH: "No such service" },
  restore: {},
  "start-daemon": { EEXIST: "Daemon has already run", ENODEV: "No such device" },
  "stop-daemon": { ESRCH: "No daemon is running" },
  "add-laddr": { ESRCH: "No such service", EEXIST: "Local address already exists" },
  "del-laddr": { ESRCH: "No such service", ENOENT: "No such local address" },
  "get-laddr": { ESRCH: "No such service" },
};

const ok = (stdout = ""): CommandResult => ({ stdout, stderr: "", exitCode: 0 });
const refused = (text: string): CommandResult => ({ stdout: "", stderr: `${text}\n`, exitCode: 255 });

export interface ExecuteOptions {
  /** lvsadm --json: listings and saves as JSON data instead of ipvsadm's text. */
  readonly json?: boolean;
}

/** Runs one command. Never throws for a configuration problem: it answers with stderr. */
export function executeCommand(ctx: ExecutionContext, cmd: LvsCommand, stdin = "", options: ExecuteOptions = {}): CommandResult {
  try {
    if (options.json) {
      const data = jsonData(ctx, cmd);
      if (data !== undefined) return ok(`${toJson(data)}\n`);
    }
    return run(ctx, cmd, stdin);
  } catch (e) {
    if (e instanceof ConfigError) {
      const words = e.code ? KERNEL_WORDS[cmd.kind]?.[e.code] : undefined;
      return refused(words ?? e.message);
    }
    throw e;
  }
}

function run(ctx: ExecutionContext, cmd: LvsCommand, stdin: string): CommandResult {
  const b = ctx.balancer;
  const fmt = ctx.format ?? {};
  switch (cmd.kind) {
    case "add-service":
      b.addService(cmd.service);
      return ok();
    case "edit-service":
      b.editService(cmd.service);
      return ok();
    case "delete-service":
      b.deleteService(cmd.service);
      return ok();
    case "clear":
      b.clear();
      return ok();
    case "add-dest":
      b.addDestination(cmd.service, cmd.destination);
      return ok();
    case "edit-dest":
      b.editDestination(cmd.service, cmd.destination);
      return ok();
    case "delete-dest":
      b.deleteDestination(cmd.service, cmd.destination);
      return ok();
    case "zero":
      b.zero(cmd.service);
      return ok();
    case "set-timeouts":
      b.setTimeouts(cmd.timeouts);
      return ok();
    case "list":
      switch (cmd.show) {
        case "connections":
          return ok(formatConnections(b.connections(ctx.now()), cmd.format, fmt));
        case "timeouts":
          return ok(formatTimeouts(b.timeouts()));
        case "daemon":
          return ok(formatDaemons(ctx.daemons?.() ?? []));
        case "services":
          return ok(cmd.service ? formatServiceListing(b.service(cmd.service), cmd.format, fmt) : formatListing(b.listing(), cmd.format, fmt));
      }
      return ok();
    case "save":
      return ok(formatSave(b.rules().services, { ...fmt, numeric: cmd.numeric }));
    case "restore":
      b.applyRules(parseRules(stdin));
      return ok();
    case "start-daemon":
      if (!ctx.syncControl) return refused("Connection synchronisation daemons are not available here (lvsd runs them)");
      ctx.syncControl.start(cmd.daemon);
      return ok();
    case "stop-daemon":
      if (!ctx.syncControl) return refused("Connection synchronisation daemons are not available here (lvsd runs them)");
      ctx.syncControl.stop(cmd.role);
      return ok();
    case "add-laddr":
      b.addLocalAddress(cmd.service, cmd.address);
      return ok();
    case "del-laddr":
      b.deleteLocalAddress(cmd.service, cmd.address);
      return ok();
    case "get-laddr":
      return ok(formatLocalAddresses(localAddressListings(b, cmd.service), cmd.numeric, fmt));
    case "help":
      return ok(formatUsage(ctx.program ?? "lvsadm"));
    case "version":
      return ok(formatVersion());
  }
}

/** One service's local addresses, or every service's that has any (in the order added). */
function localAddressListings(b: Balancer, service: ServiceKey | undefined): LocalAddressListing[] {
  if (service) return [{ service, addresses: b.localAddresses(service) }];
  return b
    .serviceKeys()
    .map((key) => ({ service: key, addresses: b.localAddresses(key) }))
    .filter((l) => l.addresses.length > 0);
}

/** The data of a listing or save for --json; undefined for commands that print nothing. */
function jsonData(ctx: ExecutionContext, cmd: LvsCommand): unknown {
  const b = ctx.balancer;
  if (cmd.kind === "save") return b.rules();
  if (cmd.kind === "get-laddr") return { localAddresses: localAddressListings(b, cmd.service) };
  if (cmd.kind !== "list") return undefined;
  switch (cmd.show) {
    case "connections":
      return { connections: b.connections(ctx.now()) };
    case "timeouts":
      return { timeouts: b.timeouts() };
    case "daemon":
      return { daemons: ctx.daemons?.() ?? [] };
    case "services":
      return cmd.service ? { services: [b.service(cmd.service)] } : b.listing();
  }
  return undefined;
}
