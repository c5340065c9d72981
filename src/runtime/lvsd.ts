// lvsd: the director daemon. One process owns one Balancer (every flow, both directions),
// runs the Director loop over its adapters (a TUN device, or AF_PACKET sockets), serves
// the lvsadm control socket, and applies a rules file (ipvsadm -S format) at start and on
// reload. A reload applies the difference between the running configuration and the file
// to the same Balancer (services and destinations added, removed, edited): it is never
// recreated, so connections stay. See docs/daemon.md.
//
// Every event is one line through `log` (lvsd-cli.ts writes them to stderr).

import { readFileSync } from "node:fs";
import { Balancer, type BalancerOptions } from "../balancer/balancer.js";
import { normaliseServiceKey, serviceKeyText } from "../balancer/validate.js";
import { ConfigError, type DestinationConfig, type RuleSet, type ServiceConfig, type ServiceWithDestinations } from "../config/types.js";
import { serveControl, type ControlServer } from "../admin/control-server.js";
import { defaultSocketPath } from "../admin/control-client.js";
import { formatSave } from "../admin/format.js";
import { parseRules } from "../admin/rules.js";
import { TunDevice } from "../io/tun.js";
import { AfPacketSocket } from "../io/af-packet.js";
import { ArpResponder } from "../io/arp-responder.js";
import { KernelNeighbours } from "../io/neighbours.js";
import type { PacketIO } from "../io/packet-io.js";
import { Director, type DirectorRoute, type NeighbourResolver, type PassHook } from "./director.js";

/** An adapter lvsd opens itself. */
export type AdapterSpec =
  | { readonly kind: "tun"; readonly name: string; readonly netns?: string; readonly mtu?: number }
  | { readonly kind: "af-packet"; readonly interface: string; readonly netns?: string };

export interface LvsdOptions {
  /** Rules file in ipvsadm -S format, applied at start and re-read by reload(). */
  readonly rulesFile?: string;
  /** Control socket path; default /run/lvs-wasm/lvsd.sock. `false`: no socket (embedding, tests). */
  readonly socketPath?: string | false;
  /** Adapters to open (TUN device or AF_PACKET sockets). */
  readonly adapters?: readonly AdapterSpec[];
  /** Adapters opened by the caller (closed by stop() all the same). */
  readonly io?: readonly PacketIO[];
  /** Forwarding routes by adapter name (AF_PACKET with two interfaces): longest prefix wins. */
  readonly routes?: ReadonlyArray<{ readonly prefix: string; readonly adapter: string }>;
  readonly balancer?: BalancerOptions;
  /** Director batch size and timer period. */
  readonly batch?: number;
  readonly tickMs?: number;
  /** One line per event. Default: stderr with an "lvsd: " prefix. */
  readonly log?: (line: string) => void;
  /** Milliseconds, monotonic (tests). Default performance.now(). */
  readonly clock?: () => number;
}

/** One configuration step of a reload, as the ipvsadm line that does it. */
export interface RuleChange {
  readonly op: "-A" | "-E" | "-D" | "-a" | "-e" | "-d";
  readonly line: string;
  readonly apply: (balancer: Balancer) => void;
}

export interface ReloadSummary {
  readonly servicesAdded: number;
  readonly servicesRemoved: number;
  readonly servicesEdited: number;
  readonly destinationsAdded: number;
  readonly destinationsRemoved: number;
  readonly destinationsEdited: number;
  /** Changes that failed while being applied (after validation passed: should stay 0). */
  readonly failed: number;
  readonly changes: readonly string[];
}

// ---------------------------------------------------------------------------- rule diff

const keyText = (s: ServiceConfig) => serviceKeyText(normaliseServiceKey(s.key));
const destId = (d: DestinationConfig) => `${d.address}|${d.port}`;

/** The ipvsadm save line of a service alone ("-A -t 10.0.0.1:80 -s rr"). */
function serviceLine(service: ServiceConfig): string {
  return formatSave([{ service, destinations: [] }], { numeric: true }).trimEnd();
}

/** The ipvsadm save line of one destination ("-a -t ... -r ... -m -w 1"). */
function destinationLine(service: ServiceConfig, dest: DestinationConfig): string {
  const text = formatSave([{ service, destinations: [dest] }], { numeric: true }).trimEnd().split("\n");
  return text[text.length - 1];
}

/** The key part of a service line ("-t 10.0.0.1:80"). */
function keyWords(service: ServiceConfig): string {
  return serviceLine(service).split(" ").slice(1, 3).join(" ");
}

/** The "-r address:port" part of a destination line. */
function destWords(service: ServiceConfig, dest: DestinationConfig): string {
  const words = destinationLine(service, dest).split(" ");
  const at = words.indexOf("-r");
  return words.slice(at, at + 2).join(" ");
}

/**
 * The changes that turn `current` into `wanted`, in an order that never needs more room
 * than either: removals first, then edits, then additions. Services and destinations are
 * compared by their ipvsadm save lines, so "edited" means "saves differently".
 */
export function diffRules(current: RuleSet, wanted: RuleSet): RuleChange[] {
  const removals: RuleChange[] = [];
  const edits: RuleChange[] = [];
  const additions: RuleChange[] = [];
  const now = new Map(current.services.map((s) => [keyText(s.service), s] as const));
  const next = new Map(wanted.services.map((s) => [keyText(s.service), s] as const));
  for (const [k, s] of now) {
    if (next.has(k)) continue;
    const key = s.service.key;
    removals.push({ op: "-D", line: `-D ${keyWords(s.service)}`, apply: (b) => b.deleteService(key) });
  }
  for (const [k, w] of next) {
    const c = now.get(k);
    if (!c) {
      additions.push(...addWhole(w));
      continue;
    }
    const key = w.service.key;
    if (serviceLine(c.service) !== serviceLine(w.service)) {
      const line = serviceLine(w.service).replace(/^-A/, "-E");
      edits.push({ op: "-E", line, apply: (b) => b.editService(w.service) });
    }
    const have = new Map(c.destinations.map((d) => [destId(d), d] as const));
    const want = new Map(w.destinations.map((d) => [destId(d), d] as const));
    for (const [id, d] of have) {
      if (want.has(id)) continue;
      removals.push({ op: "-d", line: `-d ${keyWords(c.service)} ${destWords(c.service, d)}`, apply: (b) => b.deleteDestination(key, d) });
    }
    for (const [id, d] of want) {
      const old = have.get(id);
      if (!old) {
        additions.push({ op: "-a", line: destinationLine(w.service, d), apply: (b) => void b.addDestination(key, d) });
      } else if (destinationLine(w.service, old) !== destinationLine(w.service, d)) {
        edits.push({ op: "-e", line: destinationLine(w.service, d).replace(/^-a/, "-e"), apply: (b) => b.editDestination(key, d) });
      }
    }
  }
  return [...removals, ...edits, ...additions];
}

function addWhole(s: ServiceWithDestinations): RuleChange[] {
  const key = s.service.key;
  return [
    { op: "-A", line: serviceLine(s.service), apply: (b) => b.addService(s.service) },
    ...s.destinations.map((d): RuleChange => ({ op: "-a", line: destinationLine(s.service, d), apply: (b) => void b.addDestination(key, d) })),
  ];
}

// ---------------------------------------------------------------------------- the daemon

const stderrLog = (line: string) => process.stderr.write(`lvsd: ${line}\n`);

export class Lvsd {
  readonly balancer: Balancer;
  readonly director: Director;
  readonly io: readonly PacketIO[];
  readonly socketPath: string | null;
  private control: ControlServer | null = null;
  private loop: Promise<void> | null = null;
  private neighbours: KernelNeighbours | null = null;
  private stopped = false;
  private readonly log: (line: string) => void;
  private readonly clock: () => number;

  private constructor(private readonly options: LvsdOptions, io: PacketIO[], balancer: Balancer, director: Director) {
    this.io = io;
    this.balancer = balancer;
    this.director = director;
    this.log = options.log ?? stderrLog;
    this.clock = options.clock ?? (() => performance.now());
    this.socketPath = options.socketPath === false ? null : options.socketPath ?? defaultSocketPath();
  }

  /**
   * Opens the adapters, builds the Balancer, applies the rules file, serves the control
   * socket and starts the loop. Anything that fails closes what was opened and throws.
   */
  static async start(options: LvsdOptions): Promise<Lvsd> {
    const log = options.log ?? stderrLog;
    const clock = options.clock ?? (() => performance.now());
    // Read and parse the rules before touching devices: a bad file fails fast.
    const initial = options.rulesFile ? readRules(options.rulesFile) : null;
    const opened: PacketIO[] = [];
    try {
      for (const spec of options.adapters ?? []) {
        const io = spec.kind === "tun"
          ? TunDevice.open({ name: spec.name, netns: spec.netns, mtu: spec.mtu })
          : AfPacketSocket.open({ interface: spec.interface, netns: spec.netns });
        opened.push(io);
        log(`adapter ${describeAdapter(spec, io)}`);
      }
      const io = [...opened, ...(options.io ?? [])];
      for (const extra of options.io ?? []) log(`adapter ${extra.name} (given)`);
      if (io.length === 0) throw new ConfigError("lvsd needs an adapter: --tun NAME or --af-packet IF");
      const sockets = io.filter((x): x is AfPacketSocket => x instanceof AfPacketSocket);
      const balancerOptions: BalancerOptions = {
        ...options.balancer,
        ...(sockets.length > 0 ? { director: { mac: sockets[0].mac, ...options.balancer?.director } } : {}),
      };
      const balancer = new Balancer(balancerOptions);
      log(`balancer: ${balancer.connectionCapacity} connections, ${balancer.slots.count} packet slots`);
      const routes: DirectorRoute[] = (options.routes ?? []).map((r) => {
        const target = io.find((x) => x.name === r.adapter);
        if (!target) throw new ConfigError(`route ${r.prefix}: no adapter named ${r.adapter} (adapters: ${io.map((x) => x.name).join(", ")})`);
        return { prefix: r.prefix, io: target };
      });
      let pass: PassHook | undefined;
      let resolver: NeighbourResolver | undefined;
      let neighbours: KernelNeighbours | null = null;
      if (sockets.length > 0) {
        // Ethernet: answer ARP for the IPv4 virtual addresses, learn neighbours, and copy
        // the kernel's neighbour table (real servers' MACs) into the balancer.
        const arp = new VipArp(balancer, sockets);
        neighbours = new KernelNeighbours({ balancer, netns: (options.adapters ?? []).find((a) => a.kind === "af-packet")?.netns, prober: arp });
        pass = arp.hook;
        resolver = neighbours;
      }
      const director = new Director({
        balancer, io, routes, batch: options.batch, tickMs: options.tickMs, clock, ...(pass ? { pass } : {}),
        ...(resolver ? { neighbours: resolver } : {}),
      });
      const daemon = new Lvsd(options, io, balancer, director);
      daemon.neighbours = neighbours;
      try {
        if (initial) {
          const s = daemon.applyRuleSet(initial);
          log(`rules ${options.rulesFile}: ${summaryText(s)}`);
        }
        if (neighbours) await neighbours.start();
        if (daemon.socketPath) {
          daemon.control = await serveControl(daemon.socketPath, {
            balancer, now: () => Math.floor(clock()), program: "lvsadm",
          }, (line) => log(line));
          log(`control socket ${daemon.socketPath} (mode 0600, directory 0700: root only)`);
        }
        daemon.loop = director.start();
        daemon.loop.catch((e: unknown) => {
          log(`director loop failed: ${e instanceof Error ? e.message : String(e)}`);
        });
      } catch (e) {
        neighbours?.stop();
        await daemon.control?.close();
        throw e;
      }
      return daemon;
    } catch (e) {
      for (const x of opened) x.close();
      throw e;
    }
  }

  /** Resolves when the packet loop ends (stop(), or an adapter failure, which rejects). */
  get running(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  /** Validates `wanted` whole, then applies its difference from the running configuration. */
  applyRuleSet(wanted: RuleSet): ReloadSummary {
    validateOn(this.balancer, wanted, this.options.balancer);
    const changes = diffRules(this.balancer.rules(), wanted);
    const counts = { "-A": 0, "-E": 0, "-D": 0, "-a": 0, "-e": 0, "-d": 0 } as Record<RuleChange["op"], number>;
    let failed = 0;
    for (const c of changes) {
      try {
        c.apply(this.balancer);
        counts[c.op]++;
        this.log(`apply ${c.line}`);
      } catch (e) {
        failed++;
        this.log(`apply ${c.line}: failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return {
      servicesAdded: counts["-A"], servicesRemoved: counts["-D"], servicesEdited: counts["-E"],
      destinationsAdded: counts["-a"], destinationsRemoved: counts["-d"], destinationsEdited: counts["-e"],
      failed, changes: changes.map((c) => c.line),
    };
  }

  /**
   * Re-reads the rules file and applies the difference (SIGHUP). A file that does not parse
   * or validate changes nothing; the error is logged and returned as null.
   */
  reload(): ReloadSummary | null {
    const file = this.options.rulesFile;
    if (!file) {
      this.log("reload: no rules file (start with --rules FILE); nothing to do");
      return null;
    }
    try {
      const summary = this.applyRuleSet(readRules(file));
      this.log(`reload ${file}: ${summaryText(summary)}; ${this.balancer.connectionCount} connection entries kept`);
      return summary;
    } catch (e) {
      this.log(`reload ${file} refused, configuration unchanged: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  }

  /** One line of counters: packets, drops by reason, adapter errors. */
  statsLine(): string {
    const s = this.director.stats;
    const drops = Object.entries(s.drops).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r}=${n}`).join(" ");
    return `packets received ${s.received}, forwarded ${s.forwarded}, replied ${s.replied}, passed ${s.passed}, ` +
      `dropped ${s.dropped}${drops ? ` (${drops})` : ""}, send failures ${s.sendFailures}; ` +
      `connections ${this.balancer.connectionCount}`;
  }

  /** Stops the loop, closes the control socket and the adapters. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.neighbours?.stop();
    await this.director.stop();
    await this.loop?.catch(() => {});
    await this.control?.close();
    for (const x of this.io) {
      try {
        x.close();
      } catch {
        /* closing the rest matters more */
      }
    }
    this.log(this.statsLine());
  }
}

function readRules(file: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read rules file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseRules(text);
}

/** Checks a rule set against a scratch balancer of the same shape: a refusal changes nothing. */
function validateOn(balancer: Balancer, wanted: RuleSet, options: BalancerOptions | undefined): void {
  const scratch = new Balancer({
    connections: 1, slots: 1, slotCapacity: 128,
    maxServices: balancer.scheduler.maxServices, maxDestinations: balancer.scheduler.maxDestinations,
    destinationsPerService: balancer.scheduler.destinationsPerService, maglevMaxSize: balancer.scheduler.maglevMaxSize,
    director: options?.director,
  });
  for (const s of wanted.services) {
    scratch.addService(s.service);
    for (const d of s.destinations) scratch.addDestination(s.service.key, d);
  }
}

function summaryText(s: ReloadSummary): string {
  const parts = [
    `services +${s.servicesAdded} -${s.servicesRemoved} ~${s.servicesEdited}`,
    `destinations +${s.destinationsAdded} -${s.destinationsRemoved} ~${s.destinationsEdited}`,
  ];
  if (s.failed) parts.push(`${s.failed} failed`);
  return parts.join(", ");
}

function describeAdapter(spec: AdapterSpec, io: PacketIO): string {
  const where = spec.netns ? ` in netns ${spec.netns}` : "";
  return spec.kind === "tun"
    ? `tun ${io.name}${where} (raw IP; route the VIPs and the real servers' replies into it)`
    : `af-packet ${io.name}${where} (${(io as AfPacketSocket).mac})`;
}

/** ARP for the IPv4 virtual addresses of the running configuration, on each socket. */
class VipArp implements NeighbourResolver {
  private responders = new Map<PacketIO, ArpResponder>();
  private vipsKey = "";
  readonly hook: PassHook;

  constructor(private readonly balancer: Balancer, private readonly sockets: readonly AfPacketSocket[]) {
    this.hook = (packet, from, slot) => this.responder(from)?.hook(packet, from, slot) ?? "drop";
  }

  private responder(from: PacketIO): ArpResponder | undefined {
    const vips = [...new Set(this.balancer.rules().services.flatMap((s) =>
      s.service.key.kind === "address" && !s.service.key.address.includes(":") ? [s.service.key.address] : []))].sort();
    const key = vips.join(",");
    if (key !== this.vipsKey) {
      this.vipsKey = key;
      this.responders = new Map(this.sockets.map((s) => [s, new ArpResponder({ balancer: this.balancer, vips, io: s })] as const));
    }
    return this.responders.get(from);
  }

  resolve(address: string, family: 4 | 6, from: PacketIO): void {
    this.responder(from)?.resolve(address, family);
  }
}

// ---------------------------------------------------------------------------- command line

export const LVSD_USAGE = `Usage: lvsd (--tun NAME [--mtu N] | --af-packet IF [--af-packet IF]... [--route PREFIX=IF]...)
            [--netns NAME] [--rules FILE] [--socket PATH] [--connections N]
The lvs-wasm director: runs the balancer over a TUN device or AF_PACKET sockets and takes
lvsadm commands on a root-only control socket.

  --tun NAME          open (or create) TUN device NAME; route the VIPs and the real
                      servers' replies into it (see docs/daemon.md)
  --mtu N             MTU for the TUN device (default: the kernel's)
  --af-packet IF      tap interface IF with an AF_PACKET socket (repeatable)
  --route PREFIX=IF   with several --af-packet: packets to PREFIX leave by IF
  --netns NAME        open the adapters inside network namespace NAME
  --rules FILE        rules in ipvsadm -S format, applied at start; SIGHUP re-reads the file
                      and applies the difference (connections stay)
  --socket PATH       control socket (default /run/lvs-wasm/lvsd.sock; lvsadm reads
                      LVS_WASM_SOCKET)
  --connections N     connection table size (default 65536)
  -h, --help          this text

Signals: SIGHUP reloads the rules file, SIGUSR1 logs the packet counters, SIGTERM and
SIGINT stop cleanly (exit 0). Events are logged to stderr, one line each.
`;

/** What the command line asked for; `help` when -h was given. */
export type LvsdCommandLine = { readonly help: true } | ({ readonly help: false } & LvsdOptions);

/** Parses lvsd's arguments; throws ConfigError with one line naming the problem. */
export function parseLvsdArgs(argv: readonly string[]): LvsdCommandLine {
  let tun: string | undefined;
  let mtu: number | undefined;
  let netns: string | undefined;
  let rulesFile: string | undefined;
  let socketPath: string | undefined;
  let connections: number | undefined;
  const interfaces: string[] = [];
  const routes: Array<{ prefix: string; adapter: string }> = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined || v === "") throw new ConfigError(`${name} needs a value (see lvsd --help)`);
      return v;
    };
    const integer = (text: string, min: number, max: number): number => {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n < min || n > max) throw new ConfigError(`${name} ${text}: expected an integer in ${min}..${max}`);
      return n;
    };
    switch (name) {
      case "-h":
      case "--help":
        return { help: true };
      case "--tun":
        tun = value();
        break;
      case "--mtu":
        mtu = integer(value(), 68, 65535);
        break;
      case "--af-packet":
        interfaces.push(value());
        break;
      case "--route": {
        const v = value();
        const at = v.lastIndexOf("=");
        if (at <= 0 || at === v.length - 1) throw new ConfigError(`--route ${v}: expected PREFIX=IF, e.g. 192.168.10.0/24=eth1`);
        routes.push({ prefix: v.slice(0, at), adapter: v.slice(at + 1) });
        break;
      }
      case "--netns":
        netns = value();
        break;
      case "--rules":
        rulesFile = value();
        break;
      case "--socket":
        socketPath = value();
        break;
      case "--connections":
        connections = integer(value(), 1, 1 << 24);
        break;
      default:
        throw new ConfigError(`unknown option ${arg} (see lvsd --help)`);
    }
  }
  if (tun && interfaces.length > 0) throw new ConfigError("--tun and --af-packet exclude each other: one kind of adapter per director");
  if (!tun && interfaces.length === 0) throw new ConfigError("an adapter is needed: --tun NAME or --af-packet IF (see lvsd --help)");
  if (mtu !== undefined && !tun) throw new ConfigError("--mtu applies to --tun only");
  if (routes.length > 0 && interfaces.length === 0) throw new ConfigError("--route applies to --af-packet only (a TUN device hands packets to the kernel's routing)");
  const adapters: AdapterSpec[] = tun
    ? [{ kind: "tun", name: tun, ...(netns ? { netns } : {}), ...(mtu !== undefined ? { mtu } : {}) }]
    : interfaces.map((i): AdapterSpec => ({ kind: "af-packet", interface: i, ...(netns ? { netns } : {}) }));
  return {
    help: false, adapters, routes,
    ...(rulesFile ? { rulesFile } : {}),
    ...(socketPath ? { socketPath } : {}),
    ...(connections ? { balancer: { connections } } : {}),
  };
}
