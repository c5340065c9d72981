// lvsd: the director daemon. One process owns one Balancer (every flow, both directions),
// runs the Director loop over its adapters (a TUN device, or AF_PACKET sockets), serves
// the lvsadm control socket, and applies a rules file (ipvsadm -S format) at start and on
// reload. A reload applies the difference between the running configuration and the file
// to the same Balancer (services and destinations added, removed, edited): it is never
// recreated, so connections stay. See docs/daemon.md.
//
// Every event is one line through `log` (lvsd-cli.ts writes them to stderr).

import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { Balancer, type BalancerOptions } from "../balancer/balancer.js";
import { normaliseServiceKey, serviceKeyText } from "../balancer/validate.js";
import { ConfigError, type DestinationConfig, type RuleSet, type ServiceConfig, type ServiceWithDestinations } from "../config/types.js";
import { answer, serveControl, type ControlServer } from "../admin/control-server.js";
import type { CommandResult } from "../admin/execute.js";
import { defaultSocketPath } from "../admin/control-client.js";
import { formatSave } from "../admin/format.js";
import { parseRules } from "../admin/rules.js";
import { TunDevice } from "../io/tun.js";
import { KernelNeighbours } from "../io/neighbours.js";
import { adviseHugePages } from "../io/huge-pages.js";
import type { WasmMemory } from "../core/wasm.js";
import type { PacketIO } from "../io/packet-io.js";
import { Director, type DirectorRoute, type NeighbourResolver, type PassHook } from "./director.js";
import { EthernetPort, VipArp, isolateVips, openEthernetPort } from "./ethernet.js";

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
  /**
   * AF_PACKET: the interface the real servers are on (a DR director's server side). Its
   * socket reads ARP only (a socket filter), answers ARP for no VIP, and forwarded packets
   * leave by it unless a more specific route says otherwise (0.0.0.0/0 and ::/0 to it).
   */
  readonly serverSide?: string;
  /**
   * AF_PACKET: IPv4 addresses hidden from the director's own kernel by a tc ingress drop on
   * every interface but the server side, after the AF_PACKET tap (docs/tun-mode.md).
   * Removed at stop.
   */
  readonly isolateVips?: readonly string[];
  /** AF_PACKET: probe unresolved real servers by ARP every this many ms (default 1000). */
  readonly neighbourProbeMs?: number;
  readonly balancer?: BalancerOptions;
  /**
   * Advise transparent huge pages for the data plane's memory before the tables are
   * carved (fewer TLB misses at large tables; see docs/daemon.md). Default true; best
   * effort, logged either way.
   */
  readonly hugePages?: boolean;
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
  /** The AF_PACKET ports lvsd opened (empty with a TUN device). */
  readonly ports: readonly EthernetPort[];
  /** ARP on the AF_PACKET ports (null with a TUN device). */
  arp: VipArp | null = null;
  readonly socketPath: string | null;
  private control: ControlServer | null = null;
  private loop: Promise<void> | null = null;
  private neighbours: KernelNeighbours | null = null;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly announced = new Set<string>();
  private readonly undo: Array<() => Promise<void>> = [];
  private stopped = false;
  private readonly log: (line: string) => void;
  private readonly clock: () => number;

  private constructor(private readonly options: LvsdOptions, io: PacketIO[], balancer: Balancer, director: Director) {
    this.io = io;
    this.ports = io.filter((x): x is EthernetPort => x instanceof EthernetPort);
    this.balancer = balancer;
    this.director = director;
    this.log = options.log ?? stderrLog;
    this.clock = options.clock ?? (() => performance.now());
    this.socketPath = options.socketPath === false ? null : options.socketPath ?? defaultSocketPath();
  }

  /**
   * Opens the adapters, builds the Balancer, applies the rules file, installs the VIP
   * isolation, serves the control socket and starts the loop. Anything that fails undoes
   * what was done and throws.
   */
  static async start(options: LvsdOptions): Promise<Lvsd> {
    const log = options.log ?? stderrLog;
    const clock = options.clock ?? (() => performance.now());
    // Read and parse the rules before touching devices: a bad file fails fast.
    const initial = options.rulesFile ? readRules(options.rulesFile) : null;
    const specs = options.adapters ?? [];
    const afNames = specs.flatMap((a) => (a.kind === "af-packet" ? [a.interface] : []));
    if (options.serverSide !== undefined && !afNames.includes(options.serverSide)) {
      throw new ConfigError(`server side ${options.serverSide}: not one of the AF_PACKET interfaces (${afNames.join(", ") || "none"})`);
    }
    if (options.serverSide !== undefined && afNames.length < 2) {
      throw new ConfigError("a server side needs a second AF_PACKET interface for the clients (a one-armed director reads everything on one)");
    }
    if ((options.isolateVips ?? []).length > 0 && afNames.length === 0) {
      throw new ConfigError("VIP isolation applies to AF_PACKET interfaces (a TUN device's VIPs are routed, not owned)");
    }
    const opened: PacketIO[] = [];
    const undo: Array<() => Promise<void>> = [];
    try {
      for (const spec of specs) {
        const io = spec.kind === "tun"
          ? TunDevice.open({ name: spec.name, netns: spec.netns, mtu: spec.mtu })
          : openEthernetPort({ interface: spec.interface, netns: spec.netns, serverSide: spec.interface === options.serverSide });
        opened.push(io);
        log(`adapter ${describeAdapter(spec, io)}`);
      }
      const io = [...opened, ...(options.io ?? [])];
      for (const extra of options.io ?? []) log(`adapter ${extra.name} (given)`);
      if (io.length === 0) throw new ConfigError("lvsd needs an adapter: --tun NAME or --af-packet IF");
      const ports = io.filter((x): x is EthernetPort => x instanceof EthernetPort);
      const server = ports.find((p) => p.serverSide);
      const balancerOptions: BalancerOptions = {
        ...options.balancer,
        ...(ports.length > 0 ? { director: { mac: (server ?? ports[0]).mac, ...options.balancer?.director } } : {}),
      };
      let pages = "4 KiB pages (--no-huge-pages)";
      const prepareMemory = options.hugePages === false
        ? balancerOptions.prepareMemory
        : (memory: WasmMemory) => {
          balancerOptions.prepareMemory?.(memory);
          const advice = adviseHugePages(memory);
          pages = advice.applied ? "huge pages advised" : `4 KiB pages (${advice.reason})`;
        };
      const balancer = new Balancer({ ...balancerOptions, prepareMemory });
      log(`balancer: ${balancer.connectionCapacity} connections, ${balancer.slots.count} packet slots, ${pages}`);
      const tunnel = balancerOptions.director;
      if (tunnel?.tunnelSource4 || tunnel?.tunnelSource6) {
        log(`tunnels: outer source ${[tunnel.tunnelSource4, tunnel.tunnelSource6].filter(Boolean).join(", ")}` +
          (tunnel.tunnelMtu !== undefined ? `, tunnel MTU ${tunnel.tunnelMtu} (DF packets that no longer fit get ICMP fragmentation-needed)` : ""));
      }
      const routes: DirectorRoute[] = (options.routes ?? []).map((r) => {
        const target = io.find((x) => x.name === r.adapter);
        if (!target) throw new ConfigError(`route ${r.prefix}: no adapter named ${r.adapter} (adapters: ${io.map((x) => x.name).join(", ")})`);
        return { prefix: r.prefix, io: target };
      });
      if (server) {
        routes.push({ prefix: "0.0.0.0/0", io: server }, { prefix: "::/0", io: server });
        log(`server side ${server.name}: reads ARP only, answers ARP for no VIP; forwarded packets leave by it unless a --route says otherwise`);
      }
      let pass: PassHook | undefined;
      let resolver: NeighbourResolver | undefined;
      let neighbours: KernelNeighbours | null = null;
      let arp: VipArp | null = null;
      if (ports.length > 0) {
        // Ethernet: answer ARP for the IPv4 virtual addresses, learn neighbours, and copy
        // the kernel's neighbour table (real servers' MACs) into the balancer.
        arp = new VipArp(balancer, ports, routes.flatMap((r) => (r.io instanceof EthernetPort ? [{ prefix: r.prefix, port: r.io }] : [])));
        neighbours = new KernelNeighbours({ balancer, netns: specs.find((a) => a.kind === "af-packet")?.netns, prober: arp });
        pass = arp.hook;
        resolver = neighbours;
      }
      const director = new Director({
        balancer, io, routes, batch: options.batch === undefined ? undefined : Math.min(options.batch, balancer.slots.count),
        tickMs: options.tickMs, clock, ...(pass ? { pass } : {}),
        ...(resolver ? { neighbours: resolver } : {}),
      });
      const isolated = options.isolateVips ?? [];
      if (isolated.length > 0) {
        for (const spec of specs) {
          if (spec.kind !== "af-packet" || spec.interface === options.serverSide) continue;
          undo.push(await isolateVips(spec.netns, spec.interface, isolated));
          log(`isolate ${isolated.join(", ")} on ${spec.interface}: tc ingress drop after the AF_PACKET tap (the kernel never sees them)`);
        }
      }
      const daemon = new Lvsd(options, io, balancer, director);
      daemon.neighbours = neighbours;
      daemon.arp = arp;
      daemon.undo.push(...undo.splice(0));
      try {
        if (initial) {
          const s = daemon.applyRuleSet(initial);
          log(`rules ${options.rulesFile}: ${summaryText(s)}`);
        }
        if (neighbours) await neighbours.start();
        if (daemon.socketPath) {
          daemon.control = await serveControl(daemon.socketPath, daemon.context(), daemon.commandLog);
          log(`control socket ${daemon.socketPath} (mode 0600, directory 0700: root only)`);
        }
        if (arp) {
          daemon.probeNeighbours();
          daemon.probeTimer = setInterval(() => daemon.probeNeighbours(), options.neighbourProbeMs ?? 1000);
          daemon.probeTimer.unref();
        }
        daemon.loop = director.start();
        daemon.loop.catch((e: unknown) => {
          log(`director loop failed: ${e instanceof Error ? e.message : String(e)}`);
        });
      } catch (e) {
        clearInterval(daemon.probeTimer);
        neighbours?.stop();
        await daemon.control?.close();
        for (const fn of daemon.undo.splice(0).reverse()) await fn();
        throw e;
      }
      return daemon;
    } catch (e) {
      for (const fn of undo.reverse()) await fn().catch(() => {});
      for (const x of opened) x.close();
      throw e;
    }
  }

  /** What lvsadm commands run against. */
  private context() {
    return { balancer: this.balancer, now: () => Math.floor(this.clock()), program: "lvsadm" } as const;
  }

  /** Logs a configuration command's outcome; it may have added a real server: look for its MAC now. */
  private readonly commandLog = (line: string): void => {
    this.log(line);
    if (this.arp) this.probeNeighbours();
  };

  /**
   * Answers one control request ({ argv, stdin, json? }) as the control socket does (the
   * same `answer`): lvsd's worker thread runs the requests its main thread relays here.
   */
  command(request: unknown): CommandResult {
    return answer(this.context(), request, this.commandLog);
  }

  /** Resolves when the packet loop ends (stop(), or an adapter failure, which rejects). */
  get running(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  /** Every neighbour MAC the daemon knows: learnt by ARP or copied from the kernel's table. */
  knownNeighbours(): Map<string, string> {
    return new Map([...(this.neighbours?.known ?? []), ...(this.arp?.learned() ?? [])]);
  }

  /**
   * AF_PACKET: probes by ARP (on the port each routes to) the IPv4 real servers whose MAC
   * is not known yet, and logs each one the first time its MAC is known
   * ("neighbour 192.168.10.11 is at 02:..:11 (eth1)"), so that the first connection to a
   * new real server does not wait for a retransmission.
   */
  probeNeighbours(): void {
    const arp = this.arp;
    if (!arp || this.stopped) return;
    const known = this.knownNeighbours();
    const addresses = new Set(this.balancer.rules().services.flatMap((s) => s.destinations.map((d) => d.address)));
    for (const a of addresses) {
      if (a.includes(":")) continue;
      const mac = known.get(a);
      const port = arp.portFor(a) ?? this.ports[0];
      if (mac === undefined) {
        arp.resolve(a, 4, port);
      } else if (!this.announced.has(a)) {
        this.announced.add(a);
        this.log(`neighbour ${a} is at ${mac} (${port.name})`);
      }
    }
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

  /** Stops the loop, removes the VIP isolation, closes the control socket and the adapters. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.probeTimer);
    this.neighbours?.stop();
    await this.director.stop();
    await this.loop?.catch(() => {});
    await this.control?.close();
    for (const fn of this.undo.splice(0).reverse()) await fn().catch(() => {});
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
    ? `tun ${io.name}${where} (raw IP; route the VIPs into it, and for NAT the real servers' replies)`
    : `af-packet ${io.name}${where} (${(io as EthernetPort).mac}${(io as EthernetPort).serverSide ? "; server side, ARP only" : ""})`;
}

// ---------------------------------------------------------------------------- command line

export const LVSD_USAGE = `Usage: lvsd (--tun NAME [--mtu N]
             | --af-packet IF [--af-packet IF]... [--route PREFIX=IF]...
               [--server-side IF] [--isolate-vip ADDR]...)
            [--tunnel-source4 ADDR] [--tunnel-source6 ADDR] [--tunnel-mtu N]
            [--netns NAME] [--rules FILE] [--socket PATH] [--connections N]
            [--no-huge-pages]
The lvs-wasm director: runs the balancer over a TUN device or AF_PACKET sockets and takes
lvsadm commands on a root-only control socket. NAT (-m), DR (-g) and TUN (-i) real
servers; see docs/daemon.md for deploying each.

  --tun NAME            open (or create) TUN device NAME; route the VIPs (and, for NAT,
                        the real servers' replies) into it
  --mtu N               MTU for the TUN device (default: the kernel's)
  --af-packet IF        tap interface IF with an AF_PACKET socket (repeatable); frames
                        leaving IF carry IF's MAC
  --route PREFIX=IF     with several --af-packet: packets to PREFIX leave by IF
  --server-side IF      the real servers' interface (DR): its socket reads ARP only,
                        answers ARP for no VIP, and forwarded packets leave by it unless a
                        --route says otherwise
  --isolate-vip ADDR    hide IPv4 ADDR from this host's kernel with a tc ingress drop on
                        every --af-packet interface but the server side (repeatable;
                        removed at exit)
  --tunnel-source4 ADDR outer IPv4 source of tunnelled packets (-i real servers): this
                        host's address on the real servers' network
  --tunnel-source6 ADDR the same for IPv6 real servers
  --tunnel-mtu N        path MTU toward the real servers (default 1500): DF packets that
                        no longer fit once encapsulated get ICMP fragmentation-needed
  --netns NAME          open the adapters inside network namespace NAME
  --rules FILE          rules in ipvsadm -S format, applied at start; SIGHUP re-reads the
                        file and applies the difference (connections stay)
  --socket PATH         control socket (default /run/lvs-wasm/lvsd.sock; lvsadm reads
                        LVS_WASM_SOCKET)
  --connections N       connection table size (default 65536)
  --no-huge-pages       do not advise transparent huge pages for the tables (by default
                        lvsd does, where the kernel allows it)
  -h, --help            this text

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
  let hugePages = true;
  const interfaces: string[] = [];
  const routes: Array<{ prefix: string; adapter: string }> = [];
  let serverSide: string | undefined;
  const isolate: string[] = [];
  let tunnelSource4: string | undefined;
  let tunnelSource6: string | undefined;
  let tunnelMtu: number | undefined;
  const ipv4 = (text: string, name: string): string => {
    if (!isIPv4(text)) throw new ConfigError(`${name} ${text}: expected an IPv4 address`);
    return text;
  };
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
      case "--server-side":
        if (serverSide !== undefined) throw new ConfigError("--server-side is given once (the real servers' interface)");
        serverSide = value();
        break;
      case "--isolate-vip":
        isolate.push(ipv4(value(), name));
        break;
      case "--tunnel-source4":
        tunnelSource4 = ipv4(value(), name);
        break;
      case "--tunnel-source6": {
        const v = value();
        if (!isIPv6(v)) throw new ConfigError(`--tunnel-source6 ${v}: expected an IPv6 address`);
        tunnelSource6 = v;
        break;
      }
      case "--tunnel-mtu":
        tunnelMtu = integer(value(), 68, 65535);
        break;
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
      case "--no-huge-pages":
        hugePages = false;
        break;
      default:
        throw new ConfigError(`unknown option ${arg} (see lvsd --help)`);
    }
  }
  if (tun && interfaces.length > 0) throw new ConfigError("--tun and --af-packet exclude each other: one kind of adapter per director");
  if (!tun && interfaces.length === 0) throw new ConfigError("an adapter is needed: --tun NAME or --af-packet IF (see lvsd --help)");
  if (mtu !== undefined && !tun) throw new ConfigError("--mtu applies to --tun only");
  if (routes.length > 0 && interfaces.length === 0) throw new ConfigError("--route applies to --af-packet only (a TUN device hands packets to the kernel's routing)");
  if (serverSide !== undefined && !interfaces.includes(serverSide)) throw new ConfigError(`--server-side ${serverSide}: not one of the --af-packet interfaces`);
  if (serverSide !== undefined && interfaces.length < 2) throw new ConfigError("--server-side needs a second --af-packet interface for the clients");
  if (isolate.length > 0 && interfaces.length === 0) throw new ConfigError("--isolate-vip applies to --af-packet only (with a TUN device the VIPs are routed, not owned)");
  if (tunnelMtu !== undefined && !tunnelSource4 && !tunnelSource6) throw new ConfigError("--tunnel-mtu needs --tunnel-source4 or --tunnel-source6");
  const tunnel = {
    ...(tunnelSource4 ? { tunnelSource4 } : {}),
    ...(tunnelSource6 ? { tunnelSource6 } : {}),
    ...(tunnelMtu !== undefined ? { tunnelMtu } : {}),
  };
  const balancer = {
    ...(connections ? { connections } : {}),
    ...(Object.keys(tunnel).length > 0 ? { director: tunnel } : {}),
  };
  const adapters: AdapterSpec[] = tun
    ? [{ kind: "tun", name: tun, ...(netns ? { netns } : {}), ...(mtu !== undefined ? { mtu } : {}) }]
    : interfaces.map((i): AdapterSpec => ({ kind: "af-packet", interface: i, ...(netns ? { netns } : {}) }));
  return {
    help: false, adapters, routes,
    ...(rulesFile ? { rulesFile } : {}),
    ...(socketPath ? { socketPath } : {}),
    ...(serverSide !== undefined ? { serverSide } : {}),
    ...(isolate.length > 0 ? { isolateVips: isolate } : {}),
    ...(Object.keys(balancer).length > 0 ? { balancer } : {}),
    ...(hugePages ? {} : { hugePages: false }),
  };
}
