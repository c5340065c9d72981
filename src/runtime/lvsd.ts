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
import { ConfigError, type RuleSet } from "../config/types.js";
import type { SyncRecord } from "../balancer/sync-records.js";
import { serveControlWith, type ControlServer } from "../admin/control-server.js";
import type { CommandResult } from "../admin/execute.js";
import type { SyncDaemonConfig, SyncRole } from "../admin/command.js";
import { defaultSocketPath } from "../admin/control-client.js";
import { checkSocketPathLength } from "../admin/socket-claim.js";
import { parseRules } from "../admin/rules.js";
import { TunDevice, type TunOptions } from "../io/tun.js";
import { tunDeviceOf, UringTunDevice } from "../io/tun-uring.js";
import { IoUring } from "../io/uring.js";
import { KernelNeighbours } from "./neighbours.js";
import { adviseHugePages } from "../io/huge-pages.js";
import type { WasmMemory } from "../core/wasm.js";
import { emptyIoStats, type PacketIO, type PacketIOStats } from "../io/packet-io.js";
import { LinkType } from "../core/abi.js";
import { balancerSnapshot } from "../metrics/balancer-snapshot.js";
import type { MetricsSnapshot } from "../metrics/snapshot.js";
import { ControlPlane, loadKeepalivedConf } from "./lvsd-control-plane.js";
import { Director, type DirectorRoute, type DirectorStats, type NeighbourResolver, type PassHook } from "./director.js";
import { EthernetPort, VipArp, interfaceAddresses, isolateVips, openEthernetPort, openXdpPort } from "./ethernet.js";
import { AfXdpSocket, xdpPoolSlotsFor } from "../io/af-xdp.js";
import { SyncDaemons, type RunningSyncDaemon } from "../sync/daemon.js";
import { RouteAnnouncer } from "./announcer.js";
import { isDrainRequest, runDrainRequest } from "./drain-command.js";
import { LVSD_DEFAULT_DESTINATIONS, LVSD_DEFAULT_SERVICES, LVSD_TUN_TXQUEUELEN, type AdapterSpec, type LvsdOptions } from "./lvsd-options.js";
import type { ReloadSummary } from "./rule-diff.js";
import { answerInSlices, ConfigLock, restoreRulesInSlices, type RestoreRules } from "../admin/sliced-answer.js";
import { changeLines, countChanges, diffRunning } from "../admin/rule-changes.js";
import { parseRulesInSlices } from "../admin/rules.js";
import { RuleTransaction } from "../balancer/rule-transaction.js";
import { Slicer } from "../balancer/slices.js";
import { VipTrapCheck } from "./vip-trap.js";
import { WorkerMesh } from "./workers/worker-mesh.js";

// ---------------------------------------------------------------------------- the daemon

const stderrLog = (line: string) => process.stderr.write(`lvsd: ${line}\n`);

/** Why lvsd over TUN devices only refuses -g destinations (docs/daemon.md, "What works over which adapter"). */
export const NO_DR_OVER_RAW_IP =
  "needs an Ethernet adapter (lvsd --af-packet): a TUN device carries no MAC addresses, and a DR packet, still addressed to the VIP, would be routed back into the device";

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
  private publishTimer: NodeJS.Timeout | undefined;
  /** The VIP routes for a routing daemon (--announce), or null. */
  announcer: RouteAnnouncer | null = null;
  private readonly announced = new Set<string>();
  private readonly undo: Array<() => Promise<void>> = [];
  private stopped = false;
  /** Health checks (keepalivedFile) and the metrics endpoint, when asked for. */
  controlPlane: ControlPlane | null = null;
  private readonly log: (line: string) => void;
  private readonly clock: () => number;
  /** Connection sync daemons (lvsadm --start-daemon); they also set the standby state. */
  readonly sync: SyncDaemons;
  /** Warns about VIPs the kernel still has (docs/daemon.md, "A VIP this host still has"). */
  private readonly vipTrap: VipTrapCheck | null;
  /** One of several workers (lvsd --workers N): the rings and the configuration epoch, else null. */
  mesh: WorkerMesh | null = null;
  private indexedVersion = -1;
  /** Configuration changes one at a time: a restore or reload holds it across its slices. */
  private readonly configLock = new ConfigLock();

  private constructor(
    private readonly options: LvsdOptions,
    io: PacketIO[],
    balancer: Balancer,
    director: Director,
  ) {
    this.io = io;
    this.ports = io.filter((x): x is EthernetPort => x instanceof EthernetPort);
    this.balancer = balancer;
    this.director = director;
    this.log = options.log ?? stderrLog;
    this.clock = options.clock ?? (() => performance.now());
    this.socketPath = options.socketPath === false ? null : (options.socketPath ?? defaultSocketPath());
    this.sync = new SyncDaemons({
      balancer,
      clock: () => Math.floor(this.clock()),
      log: this.log,
      refreshMs: options.syncRefreshMs,
      onChange: (running) => this.setStandby(running),
      // Several workers: every worker's backup hears every message and keeps the connections it owns.
      ...(options.worker && options.worker.mesh.workers > 1
        ? { accept: (r: SyncRecord) => balancer.syncOwner(r, options.worker!.mesh.workers) === options.worker!.index }
        : {}),
    });
    this.setStandby([]);
    this.vipTrap =
      options.vipCheck === false || (options.worker?.index ?? 0) > 0
        ? null
        : new VipTrapCheck({ netns: options.adapters?.find((a) => a.netns)?.netns, isolated: options.isolateVips, log: this.log });
  }

  /**
   * A keepalived pair: standby (forward nothing, answer no ARP for the VIPs) while a backup
   * sync daemon runs and no master does, or, started with --standby, until a master does.
   * keepalived's notify scripts switch the role with lvsadm (docs/sync.md).
   */
  private setStandby(running: readonly RunningSyncDaemon[]): void {
    const master = running.some((d) => d.role === "master");
    const backup = running.some((d) => d.role === "backup");
    const standby = !master && (backup || this.options.standby === true);
    if (standby === this.director.standby) return;
    this.director.standby = standby;
    if (this.arp) this.arp.answering = !standby;
    this.log(standby ? "standby: forwarding nothing, answering no ARP for the VIPs" : "active: forwarding for the VIPs");
  }

  /** Checks the addresses of services not checked yet, off the packet path. */
  private checkVips(): void {
    void this.vipTrap?.check(this.balancer.serviceKeys());
  }

  /**
   * Opens the adapters, builds the Balancer, applies the rules file, installs the VIP
   * isolation, serves the control socket and starts the loop. Anything that fails undoes
   * what was done and throws.
   */
  static async start(options: LvsdOptions): Promise<Lvsd> {
    const log = options.log ?? stderrLog;
    const clock = options.clock ?? (() => performance.now());
    if (options.socketPath) checkSocketPathLength(options.socketPath);
    // Read and parse the rules before touching devices: a bad file fails fast.
    const initial = options.rulesFile ? readRules(options.rulesFile) : null;
    if (options.keepalivedFile && options.rulesFile)
      throw new ConfigError("a keepalived.conf and a rules file exclude each other: one file owns the virtual services");
    const keepalived = options.keepalivedFile ? loadKeepalivedConf(options.keepalivedFile, log) : null;
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
    // One of several workers (lvsd --workers N): its own queue of every adapter, and only
    // worker 0 does what must happen once per host (VIP isolation, route announcements).
    const mesh = options.worker && options.worker.mesh.workers > 1 ? new WorkerMesh(options.worker.mesh, options.worker.index) : null;
    const first = !mesh || mesh.self === 0;
    try {
      // --io-uring: a kernel that forbids io_uring (sysctl, seccomp) is refused before any device opens.
      if (specs.some((s) => s.kind === "tun" && s.ioUring)) new IoUring(1).close();
      if (mesh && specs.some((s) => s.kind === "af-xdp")) throw new ConfigError("--af-xdp runs one worker (one socket on queue 0): use --workers 1");
      for (const [i, spec] of specs.entries()) {
        const io =
          spec.kind === "tun"
            ? openTun(spec, {
                name: spec.name,
                netns: spec.netns,
                mtu: spec.mtu,
                offload: spec.offload !== false,
                txQueueLength: spec.txQueueLength ?? LVSD_TUN_TXQUEUELEN,
                ...(mesh ? { multiQueue: true } : {}),
              })
            : spec.kind === "af-xdp"
              ? openXdpPort({ interface: spec.interface, netns: spec.netns })
              : openEthernetPort({
                  interface: spec.interface,
                  netns: spec.netns,
                  serverSide: spec.interface === options.serverSide,
                  offload: spec.offload !== false,
                  // The server side reads ARP and ND only: every worker takes a copy of each.
                  ...(mesh && spec.interface !== options.serverSide ? { fanoutGroup: fanoutGroup(i) } : {}),
                });
        opened.push(io);
        log(`adapter ${describeAdapter(spec, io)}`);
      }
      const io = [...opened, ...(options.io ?? [])];
      for (const extra of options.io ?? []) log(`adapter ${extra.name} (given)`);
      if (io.length === 0) throw new ConfigError("lvsd needs an adapter: --tun NAME or --af-packet IF");
      const ports = io.filter((x): x is EthernetPort => x instanceof EthernetPort);
      const server = ports.find((p) => p.serverSide);
      const balancerOptions: BalancerOptions = {
        // lvsd's table sizes (a kube-proxy-sized cluster) unless the flags say otherwise.
        maxServices: LVSD_DEFAULT_SERVICES,
        maxDestinations: LVSD_DEFAULT_DESTINATIONS,
        destinationsPerService: Math.min(1024, options.balancer?.maxDestinations ?? LVSD_DEFAULT_DESTINATIONS),
        ...options.balancer,
        ...(ports.length > 0 ? { director: { mac: (server ?? ports[0]).mac, ...options.balancer?.director } } : {}),
        ...(io.every((x) => x.linkType === LinkType.RawIp) ? { director: { ...options.balancer?.director, directRoutingUnavailable: NO_DR_OVER_RAW_IP } } : {}),
      };
      let pages = "4 KiB pages (--no-huge-pages)";
      const prepareMemory =
        options.hugePages === false
          ? balancerOptions.prepareMemory
          : (memory: WasmMemory) => {
              balancerOptions.prepareMemory?.(memory);
              const advice = adviseHugePages(memory);
              pages = advice.applied ? "huge pages advised" : `4 KiB pages (${advice.reason})`;
            };
      // AF_XDP: each socket's receive pool takes slots above the director's (docs/io.md, "AF_XDP").
      const xdpPorts = ports.filter((p): p is EthernetPort<AfXdpSocket> => p.socket instanceof AfXdpSocket);
      const directorSlots = balancerOptions.slots ?? 256; // the Balancer's default
      const poolSlots = xdpPoolSlotsFor(balancerOptions.slotCapacity);
      const balancer = new Balancer({
        ...balancerOptions,
        ...(xdpPorts.length > 0 ? { slots: directorSlots + xdpPorts.length * poolSlots } : {}),
        prepareMemory,
      });
      for (const [k, port] of xdpPorts.entries()) {
        port.socket.attach(balancer.slots, directorSlots + k * poolSlots);
        log(`af-xdp ${port.name}: XDP program attached; ${describeUmem(port.socket)}`);
      }
      log(
        `balancer: ${balancer.connectionCapacity} connections, ${balancer.scheduler.maxServices} services, ` +
          `${balancer.scheduler.maxDestinations} destinations (${balancer.scheduler.destinationsPerService} per service), ${balancer.slots.count} packet slots, ${pages}`,
      );
      const tunnel = balancerOptions.director;
      if (tunnel?.tunnelSource4 || tunnel?.tunnelSource6) {
        log(
          `tunnels: outer source ${[tunnel.tunnelSource4, tunnel.tunnelSource6].filter(Boolean).join(", ")}` +
            (tunnel.tunnelMtu !== undefined ? `, tunnel MTU ${tunnel.tunnelMtu} (DF packets that no longer fit get ICMP fragmentation-needed)` : ""),
        );
      }
      const routes: DirectorRoute[] = (options.routes ?? []).map((r) => {
        const target = io.find((x) => x.name === r.adapter);
        if (!target) throw new ConfigError(`route ${r.prefix}: no adapter named ${r.adapter} (adapters: ${io.map((x) => x.name).join(", ")})`);
        return { prefix: r.prefix, io: target };
      });
      if (server) {
        routes.push({ prefix: "0.0.0.0/0", io: server }, { prefix: "::/0", io: server });
        log(
          `server side ${server.name}: reads ARP and neighbour discovery only, answers for no VIP; forwarded packets leave by it unless a --route says otherwise`,
        );
      }
      let pass: PassHook | undefined;
      let resolver: NeighbourResolver | undefined;
      let neighbours: KernelNeighbours | null = null;
      let arp: VipArp | null = null;
      if (ports.length > 0) {
        // Ethernet: answer ARP and neighbour solicitations for the virtual addresses, learn neighbours, and copy
        // the kernel's neighbour table (real servers' MACs) into the balancer.
        // An AF_XDP interface's frames never reach this host's kernel: lvsd answers ARP / ND for its own addresses.
        const own = new Map<PacketIO, string[]>();
        for (const port of xdpPorts) {
          const spec = specs.find((a) => a.kind === "af-xdp" && a.interface === port.name);
          own.set(port, await interfaceAddresses(spec?.netns, port.name));
          if (own.get(port)!.length > 0) log(`af-xdp ${port.name}: answering ARP / ND for its own addresses ${own.get(port)!.join(", ")}`);
        }
        arp = new VipArp(
          balancer,
          ports,
          routes.flatMap((r) => (r.io instanceof EthernetPort ? [{ prefix: r.prefix, port: r.io }] : [])),
          own,
        );
        neighbours = new KernelNeighbours({ balancer, netns: specs.find((a) => a.kind !== "tun")?.netns, prober: arp });
        pass = arp.hook;
        resolver = neighbours;
      }
      const director = new Director({
        balancer,
        io,
        routes,
        batch: options.batch === undefined ? undefined : Math.min(options.batch, balancer.slots.count),
        tickMs: options.tickMs,
        clock,
        ...(pass ? { pass } : {}),
        ...(resolver ? { neighbours: resolver } : {}),
        ...(mesh ? { handOff: mesh } : {}),
      });
      const isolated = options.isolateVips ?? [];
      if (isolated.length > 0 && first) {
        for (const spec of specs) {
          if (spec.kind !== "af-packet" || spec.interface === options.serverSide) continue;
          undo.push(await isolateVips(spec.netns, spec.interface, isolated));
          log(`isolate ${isolated.join(", ")} on ${spec.interface}: tc ingress drop after the AF_PACKET tap (the kernel never sees them)`);
        }
      }
      // The daemon validates rule sets against the director addressing it runs with.
      const daemon = new Lvsd({ ...options, balancer: { ...options.balancer, director: balancerOptions.director } }, io, balancer, director);
      daemon.neighbours = neighbours;
      daemon.arp = arp;
      daemon.mesh = mesh;
      daemon.undo.push(...undo.splice(0));
      try {
        if (initial) {
          const s = await daemon.applyRuleSet(initial);
          log(`rules ${options.rulesFile}: ${summaryText(s)}`);
          daemon.checkVips();
        }
        daemon.reindexOwners();
        if (neighbours) await neighbours.start();
        if (daemon.socketPath) {
          daemon.control = await serveControlWith(daemon.socketPath, (request) => daemon.command(request), { log, ...options.control });
          log(`control socket ${daemon.socketPath} (mode 0600, directory 0700: root only)`);
        }
        if (arp) {
          daemon.probeNeighbours();
          daemon.probeTimer = setInterval(() => daemon.probeNeighbours(), options.neighbourProbeMs ?? 1000);
          daemon.probeTimer.unref();
        }
        daemon.loop = director.start();
        if (mesh) {
          // Every worker's counters where worker 0's announcer sums them (drain idleness).
          const publish = () => mesh.publish(director.stats.forwarded, balancer.connectionCount);
          publish();
          daemon.publishTimer = setInterval(publish, 100);
          daemon.publishTimer.unref();
        }
        if (options.announce && first) {
          // Last: announce only once the director forwards.
          daemon.announcer = await RouteAnnouncer.start({
            ...options.announce,
            balancer,
            netns: specs[0]?.netns,
            log,
            clock,
            ...(mesh ? { forwarded: () => mesh.forwardedTotal(), connections: () => mesh.connectionsTotal() } : { forwarded: () => director.stats.forwarded }),
          });
        }
        daemon.loop.catch((e: unknown) => {
          log(`director loop failed: ${e instanceof Error ? e.message : String(e)}`);
        });
        if (keepalived || options.metrics) {
          // Health checks and metrics in this thread (lvsd's CLI runs them on its main thread instead).
          const plane = { command: async (r: { argv: readonly string[] }) => daemon.command(r), metricsSnapshot: async () => daemon.metricsSnapshot() };
          daemon.controlPlane = await ControlPlane.start(plane, { keepalivedFile: options.keepalivedFile, metrics: options.metrics, log }, keepalived);
        }
      } catch (e) {
        daemon.announcer?.close();
        await daemon.controlPlane?.stop();
        await director.stop();
        clearInterval(daemon.probeTimer);
        clearInterval(daemon.publishTimer);
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
    return {
      balancer: this.balancer,
      now: () => Math.floor(this.clock()),
      program: "lvsadm",
      daemons: () => this.sync.list(),
      syncControl: { start: (c: SyncDaemonConfig) => void this.sync.start(c), stop: (r: SyncRole) => this.sync.stop(r) },
    } as const;
  }

  /** Logs a configuration command's outcome; it may have added a real server: look for its MAC now. */
  private readonly commandLog = (line: string): void => {
    this.log(line);
    this.checkVips();
    if (this.arp) this.probeNeighbours();
  };

  /**
   * Answers one control request ({ argv, stdin, json? }) as the control socket does (the
   * same `answer`): lvsd's worker thread runs the requests its main thread relays here.
   */
  command(request: unknown): CommandResult | Promise<CommandResult> {
    const r = request as { argv?: unknown; json?: unknown } | null;
    if (r && Array.isArray(r.argv) && r.argv.every((a) => typeof a === "string") && isDrainRequest(r.argv)) {
      return runDrainRequest(this.announcer, r.argv as string[], r.json === true);
    }
    // Restores and whole-table listings in slices, beside the packet loop (docs/daemon.md, "Large changes in slices").
    const result = answerInSlices(this.context(), request, { slicer: () => new Slicer(), lock: this.configLock, log: this.commandLog });
    if (!(result instanceof Promise)) {
      this.reindexOwners();
      return result;
    }
    return result.then((r) => {
      this.reindexOwners();
      return r;
    });
  }

  /**
   * -R of rules that `read` gives (lvsd's main thread parses the text, its worker reads the
   * result back inside the configuration lock): as command() answers -R.
   */
  async restoreWith(argv: readonly string[], read: (slicer: Slicer) => Promise<RestoreRules>): Promise<CommandResult> {
    const result = await this.configLock.run(() => restoreRulesInSlices(this.context(), argv, read, { slicer: () => new Slicer(), log: this.commandLog }));
    this.reindexOwners();
    return result;
  }

  /**
   * Several workers: after a configuration change, re-indexes the real servers by address
   * and port, which the flow-owner hash of their replies needs (assembly/datapath/owner.ts).
   */
  reindexOwners(): void {
    if (!this.mesh || this.balancer.configVersion === this.indexedVersion) return;
    this.indexedVersion = this.balancer.configVersion;
    (this.balancer.core.wasm as unknown as { ownerIndexRebuild(): number }).ownerIndexRebuild();
  }

  /** Resolves when the packet loop ends (stop(), or an adapter failure, which rejects). */
  get running(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  /** The daemon's clock, in whole milliseconds (connection expiry in listings). */
  now(): number {
    return Math.floor(this.clock());
  }

  /** Every neighbour MAC the daemon knows: learnt by ARP, copied from the kernel's table, or from another worker. */
  knownNeighbours(): Map<string, string> {
    return new Map([...this.relayedNeighbours, ...(this.neighbours?.known ?? []), ...(this.arp?.learned() ?? [])]);
  }

  /**
   * Several workers: a neighbour another worker learnt (the fanout group hands each ARP
   * reply to one socket only), copied into this worker's table.
   */
  learnRelayedNeighbour(address: string, mac: string): void {
    if (this.relayedNeighbours.get(address) === mac) return;
    try {
      this.balancer.setNeighbour(address, mac);
      this.relayedNeighbours.set(address, mac);
    } catch {
      // neighbour table full: as for a neighbour learnt here
    }
  }
  private readonly relayedNeighbours = new Map<string, string>();

  /**
   * AF_PACKET: probes by ARP or neighbour solicitation (on the port each routes to) the real
   * servers whose MAC is not known yet, and logs each one the first time its MAC is known
   * ("neighbour 192.168.10.11 is at 02:..:11 (eth1)"), so that the first connection to a
   * new real server does not wait for a retransmission.
   */
  probeNeighbours(): void {
    const arp = this.arp;
    if (!arp || this.stopped) return;
    const known = this.knownNeighbours();
    const addresses = new Set(this.balancer.rules().services.flatMap((s) => s.destinations.map((d) => d.address)));
    for (const a of addresses) {
      const mac = known.get(a);
      const port = arp.portFor(a) ?? this.ports[0];
      if (mac === undefined) {
        arp.resolve(a, a.includes(":") ? 6 : 4, port);
      } else if (!this.announced.has(a)) {
        this.announced.add(a);
        this.log(`neighbour ${a} is at ${mac} (${port.name})`);
      }
    }
  }

  /**
   * Applies the difference between the running configuration and `wanted`: checked whole
   * first, then applied in slices between the packet loop's batches, all or nothing (a
   * refusal throws ConfigError and changes nothing). Only what differs is touched.
   */
  async applyRuleSet(wanted: RuleSet): Promise<ReloadSummary> {
    const slicer = new Slicer();
    const specs = await diffRunning(this.balancer, wanted, slicer);
    const tx = await RuleTransaction.prepareInSlices(this.balancer, specs, slicer);
    await tx.applyInSlices(slicer);
    const lines: string[] = [];
    for (const spec of specs) {
      if (lines.length >= LOGGED_CHANGES) break;
      lines.push(...changeLines(spec));
    }
    for (const line of lines.slice(0, LOGGED_CHANGES)) this.log(`apply ${line}`);
    const counts = countChanges(specs);
    const total = specs.reduce((n, s) => n + (s.op === "-A" ? 1 + s.destinations.length : 1), 0);
    if (total > LOGGED_CHANGES) this.log(`apply: ${total - LOGGED_CHANGES} more changes not logged one by one`);
    return { ...counts, failed: 0, changes: lines };
  }

  /**
   * Re-reads the rules file and applies the difference (SIGHUP), in slices, after any
   * change already running. A file that does not parse or validate changes nothing; the
   * error is logged and the promise resolves to null.
   */
  reload(rulesText?: string): Promise<ReloadSummary | null> {
    return this.reloadWith(rulesText === undefined ? undefined : (slicer) => parseRulesInSlices(rulesText, slicer));
  }

  /**
   * reload() of the rules that `read` gives, in slices (lvsd's main thread parses the file
   * and its worker reads the result back): read inside the configuration lock, so that
   * changes apply in the order they arrived. Without `read`, the rules file is read here.
   */
  reloadWith(read?: (slicer: Slicer) => Promise<RuleSet>): Promise<ReloadSummary | null> {
    if (this.options.keepalivedFile) {
      void this.controlPlane?.reload();
      return Promise.resolve(null);
    }
    const file = this.options.rulesFile;
    if (!file) {
      this.log("reload: no rules file (start with --rules FILE); nothing to do");
      return Promise.resolve(null);
    }
    return this.configLock.run(async () => {
      try {
        // Workers get the rules the main thread read and parsed, so that they all apply the same file.
        const slicer = new Slicer();
        const rules = read ? await read(slicer) : await parseRulesInSlices(readRulesText(file), slicer);
        const summary = await this.applyRuleSet(rules);
        this.reindexOwners();
        this.log(`reload ${file}: ${summaryText(summary)}; ${this.balancer.connectionCount} connection entries kept`);
        this.checkVips();
        return summary;
      } catch (e) {
        this.log(`reload ${file} refused, configuration unchanged: ${e instanceof Error ? e.message : String(e)}`);
        return null;
      }
    });
  }

  /** One line of counters: packets, drops by reason, adapter errors. */
  statsLine(): string {
    const s = this.director.stats;
    const drops = Object.entries(s.drops)
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => `${r}=${n}`)
      .join(" ");
    return (
      `packets received ${s.received}, forwarded ${s.forwarded}, replied ${s.replied}, passed ${s.passed}, ` +
      `dropped ${s.dropped}${drops ? ` (${drops})` : ""}, send failures ${s.sendFailures}; ` +
      superPackets(this.io, s) +
      ringCounters(this.io) +
      xdpCounters(this.io) +
      (this.mesh ? `hand-offs out ${s.handedOff}, in ${s.takenOver}; ` : "") +
      `connections ${this.balancer.connectionCount}${this.syncStatsText()}`
    );
  }

  /** The counters the metrics read: listing, totals, datapath, adapters, table fill. */
  metricsSnapshot(): MetricsSnapshot {
    const d = this.director.stats;
    return balancerSnapshot(this.balancer, {
      datapath: { ...d, drops: { ...d.drops } },
      adapters: this.io.map((x) => ({ name: x.name, ...((x as { stats?: PacketIOStats }).stats ?? emptyIoStats()) })),
    });
  }

  /** "; sync master: ..., backup: ..." for the running sync daemons. */
  private syncStatsText(): string {
    const { master, backup } = this.sync.stats();
    const parts: string[] = [];
    if (master)
      parts.push(`sync master: ${master.connections} connections in ${master.messages} messages, lost ${master.lostInRing + master.droppedQueueFull}`);
    if (backup) {
      const refused = Object.values(backup.rejected).reduce((a, n) => a + n, 0) + backup.foreign;
      const imported = Object.entries(backup.imported)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      parts.push(`sync backup: ${backup.messages} messages (${refused} refused, ${backup.truncated} cut short), ${imported}`);
    }
    return parts.length > 0 ? `; ${parts.join("; ")}` : "";
  }

  /** Stops the loop, removes the VIP isolation, closes the control socket and the adapters. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Withdraw first: the routers stop sending here while the loop still forwards.
    this.announcer?.close();
    await this.controlPlane?.stop();
    clearInterval(this.probeTimer);
    clearInterval(this.publishTimer);
    this.neighbours?.stop();
    this.sync.close();
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

/**
 * The PACKET_FANOUT group of the sockets of adapter `i` (lvsd --workers N): one group per
 * interface (the kernel refuses a group spanning two), distinct per lvsd process.
 */
function fanoutGroup(i: number): number {
  return (process.pid * 8 + i) & 0xffff;
}

/** Changes of a reload logged one by one ("apply -a ..."); the rest are counted. */
const LOGGED_CHANGES = 1000;

function readRulesText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read rules file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function readRules(file: string): RuleSet {
  return parseRules(readRulesText(file));
}

function summaryText(s: ReloadSummary): string {
  const parts = [
    `services +${s.servicesAdded} -${s.servicesRemoved} ~${s.servicesEdited}`,
    `destinations +${s.destinationsAdded} -${s.destinationsRemoved} ~${s.destinationsEdited}`,
  ];
  if (s.failed) parts.push(`${s.failed} failed`);
  return parts.join(", ");
}

/** "super-packets in N, out M, cut C; " for TUN devices with offloads, else nothing. */
function superPackets(io: readonly PacketIO[], s: DirectorStats): string {
  const tuns = io.flatMap((x) => tunDeviceOf(x) ?? []).filter((t) => t.offload);
  if (tuns.length === 0) return "";
  const sum = (f: (t: TunDevice) => number) => tuns.reduce((n, t) => n + f(t), 0);
  return `super-packets in ${sum((t) => t.gso.received)}, out ${sum((t) => t.gso.sent)}, cut ${s.gsoCut}; `;
}

/** "io_uring enters N, plain batches M; " for TUN devices moved by io_uring (lvsd --io-uring), else nothing. */
function ringCounters(io: readonly PacketIO[]): string {
  const rings = io.filter((x): x is UringTunDevice => x instanceof UringTunDevice);
  if (rings.length === 0) return "";
  const enters = rings.reduce((n, r) => n + r.ring.enters, 0);
  const plain = rings.reduce((n, r) => n + r.plainReceives + r.plainSends, 0);
  return `io_uring enters ${enters}, plain batches ${plain}; `;
}

/**
 * "af-xdp drops N (pool empty M), tx kicks K; " for AF_XDP ports, else nothing: the frames
 * the kernel dropped at the socket (XDP_STATISTICS), most of them because the receive pool
 * was empty while lvsd fell behind.
 */
function xdpCounters(io: readonly PacketIO[]): string {
  let drops = 0;
  let empty = 0;
  let kicks = 0;
  let any = false;
  for (const x of io) {
    if (!(x instanceof EthernetPort) || !(x.socket instanceof AfXdpSocket)) continue;
    try {
      const k = x.socket.kernelStats();
      drops += k.rxDropped;
      empty += k.rxFillRingEmpty;
      kicks += x.socket.kicks.tx;
      any = true;
    } catch {
      // closed already (the last line at stop): nothing to read
    }
  }
  return any ? `af-xdp drops ${drops} (pool empty ${empty}), tx kicks ${kicks}; ` : "";
}

/** Opens a TUN device (queue) for lvsd, moved by io_uring when the spec asks (--io-uring). */
function openTun(spec: AdapterSpec & { kind: "tun" }, options: TunOptions): PacketIO {
  const tun = TunDevice.open(options);
  if (!spec.ioUring) return tun;
  try {
    return new UringTunDevice(tun);
  } catch (e) {
    tun.close();
    throw e;
  }
}

function tunOffloads(x: PacketIO): string {
  const io = tunDeviceOf(x);
  if (!io) return "";
  if (!io.offload) return "; no offloads";
  const granted = Object.entries(io.offloads)
    .filter(([, on]) => on)
    .map(([name]) => name);
  return `; offloads: virtio-net header, ${granted.join(" ")}`;
}

function tunPath(io: PacketIO): string {
  return io instanceof UringTunDevice ? "; io_uring" : "";
}

/** Where an AF_XDP socket's frames live, for the start-up log. */
function describeUmem(socket: AfXdpSocket): string {
  return socket.umemPlacement === "wasm"
    ? `UMEM in the wasm memory (receive pool in slots ${socket.slotLimit}.., frames sent from the slots)`
    : `separate UMEM, frames copied (the wasm memory was refused: ${socket.fallbackReason ?? "forced"})`;
}

function describeAdapter(spec: AdapterSpec, io: PacketIO): string {
  const where = spec.netns ? ` in netns ${spec.netns}` : "";
  if (spec.kind === "af-xdp") return `af-xdp ${io.name}${where} (${(io as EthernetPort).mac}; queue 0; every frame arriving on it is lvsd's)`;
  return spec.kind === "tun"
    ? `tun ${io.name}${where} (raw IP; route the VIPs into it, and for NAT the real servers' replies)${tunOffloads(io)}${tunPath(io)}`
    : `af-packet ${io.name}${where} (${(io as EthernetPort).mac}${(io as EthernetPort).serverSide ? "; server side, ARP and ND only" : ""}${(io as EthernetPort).offload ? "; virtio-net header" : ""})`;
}
