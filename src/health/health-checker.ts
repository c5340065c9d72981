// The HealthChecker: runs every real server's checks concurrently on timers (never on the
// data plane's thread: it only sends configuration commands), keeps keepalived's state
// (each checker up or down, a real server alive while all its checkers are up, MISC_CHECK
// dynamic weights, quorum with hysteresis and the sorry server), and keeps the balancer's
// table equal to what that state wants, through lvsadm commands (-A -E -D -a -e -d): the
// same path an operator's `lvsadm -e` takes. In lvsd the commands are relayed to the data
// plane's worker thread; from the TypeScript API `HealthChecker.forBalancer` runs them on a
// Balancer directly.
//
// Every transition is logged on one line: which server, which check, what failed, up or
// down, and what was done to the table.
import { spawn } from "node:child_process";
import type { Balancer } from "../balancer/balancer.js";
import { serviceKeyText } from "../balancer/validate.js";
import type { DestinationConfig, ServiceConfig } from "../config/types.js";
import { answer } from "../admin/control-server.js";
import type { CommandResult } from "../admin/execute.js";
import { CheckState } from "./check-state.js";
import { HttpCheckState } from "./http-check-state.js";
import { runProbe } from "./checks/index.js";
import { hostPort, type ProbeResult } from "./checks/probe.js";
import { emptyTable, tableCommands, tableLines, type TableEntry, type TableLines } from "./desired-table.js";
import type { CheckSpec, HealthConfig, RealServerSpec, VirtualServerSpec } from "./spec.js";

/** Runs one lvsadm command (an argument vector without "lvsadm"). */
export type HealthCommandTarget = (argv: readonly string[]) => CommandResult | Promise<CommandResult>;

export interface HealthCheckerOptions {
  /** Where table changes go. */
  readonly target: HealthCommandTarget;
  /** One line per event. Default: stderr with a "health: " prefix. */
  readonly log?: (line: string) => void;
  /** One attempt of a check (tests replace it). Default: the real checkers. */
  readonly probe?: (spec: CheckSpec) => Promise<ProbeResult>;
  /** 0 <= x < 1, for the warmup delay. Default Math.random. */
  readonly random?: () => number;
}

export type HealthEvent =
  | {
      readonly type: "check";
      readonly service: string;
      readonly destination: string;
      readonly check: CheckSpec["type"];
      readonly ok: boolean;
      readonly latencyMs: number;
    }
  | { readonly type: "transition"; readonly service: string; readonly destination: string; readonly up: boolean; readonly line: string }
  | { readonly type: "quorum"; readonly service: string; readonly up: boolean; readonly line: string }
  | { readonly type: "table"; readonly argv: readonly string[]; readonly ok: boolean };

export interface CheckStatus {
  readonly type: CheckSpec["type"];
  readonly target: string;
  readonly up: boolean;
  readonly runs: number;
  readonly failures: number;
  /** Duration of the last attempt, ms (NaN before the first). */
  readonly lastLatencyMs: number;
  readonly lastDetail: string;
}

export interface RealServerStatus {
  /** Service key texts ("TCP 10.0.0.100:80"), one per virtual service sharing the server. */
  readonly services: readonly string[];
  readonly address: string;
  readonly port: number;
  readonly alive: boolean;
  /** The weight the server should have while alive (configured, or as misc_dynamic set it). */
  readonly weight: number;
  /** Unix ms of the last up/down change (or of start). */
  readonly lastTransition: number;
  readonly checks: readonly CheckStatus[];
}

export interface VirtualServerStatus {
  readonly services: readonly string[];
  readonly quorumUp: boolean;
  readonly sorryServerActive: boolean;
  readonly realServers: readonly RealServerStatus[];
}

/** What a reconfigure did. */
export interface HealthReloadSummary {
  readonly kept: number;
  readonly added: number;
  readonly removed: number;
  readonly changed: number;
}

const stderrLog = (line: string) => process.stderr.write(`health: ${line}\n`);
const realWeight = (w: number) => Math.max(0, Math.min(65535, w));

class CheckRun {
  readonly state: CheckState | HttpCheckState;
  timer: NodeJS.Timeout | undefined;
  runs = 0;
  failures = 0;
  lastLatencyMs = Number.NaN;
  lastDetail = "not run yet";
  /** MISC_CHECK misc_dynamic: weight added to the configured one (keepalived's cur_weight). */
  curWeight = 0;
  lastExitStatus = 0;
  stopped = false;

  constructor(readonly spec: CheckSpec) {
    this.state = spec.type === "HTTP_GET" || spec.type === "SSL_GET" ? new HttpCheckState(spec, spec.urls.length, spec.fastRecovery) : new CheckState(spec);
  }

  /** What one attempt asks: HTTP checks one url per attempt, in turn (keepalived's order). */
  attemptSpec(): CheckSpec {
    const { spec, state } = this;
    if ((spec.type === "HTTP_GET" || spec.type === "SSL_GET") && state instanceof HttpCheckState && spec.urls.length > 1) {
      return { ...spec, urls: [spec.urls[state.url]] };
    }
    return spec;
  }
}

class RealServerRun {
  lastTransition = Date.now();
  /** The virtual server it belongs to now (a reload that keeps the server gives it a new one). */
  owner!: VirtualServerRun;
  readonly checks: CheckRun[];
  alive: boolean;

  constructor(
    public spec: RealServerSpec,
    readonly identity: string,
  ) {
    this.checks = spec.checks.map((c) => new CheckRun(c));
    this.alive = this.checks.every((c) => c.state.up);
  }
  get weight(): number {
    return realWeight(this.spec.destination.weight + this.checks.reduce((n, c) => n + c.curWeight, 0));
  }
  get name(): string {
    return hostPort(this.spec.destination.address, this.spec.destination.port);
  }
}

class VirtualServerRun {
  quorumUp = true;
  readonly servers = new Map<string, RealServerRun>();
  constructor(public spec: VirtualServerSpec) {}
  get names(): string[] {
    return this.spec.services.map((s) => serviceKeyText(s.key));
  }
  get label(): string {
    return this.names.length === 1 ? this.names[0] : `group of ${this.names.join(", ")}`;
  }
  liveWeight(): number {
    let n = 0;
    for (const rs of this.servers.values()) if (rs.alive) n += rs.weight;
    return n;
  }
  sorryActive(): boolean {
    return this.spec.sorryServer !== undefined && !this.quorumUp;
  }
}

const destId = (d: Pick<DestinationConfig, "address" | "port">) => `${d.address}|${d.port}`;
/** What makes a real server "the same" across a reload: its checks and failure policy. */
const identityOf = (rs: RealServerSpec) => JSON.stringify([rs.checks, rs.inhibitOnFailure, rs.notifyUp, rs.notifyDown]);

export class HealthChecker {
  private readonly target: HealthCommandTarget;
  private readonly log: (line: string) => void;
  private readonly probe: (spec: CheckSpec) => Promise<ProbeResult>;
  private readonly random: () => number;
  private readonly listeners = new Set<(e: HealthEvent) => void>();
  private vss: VirtualServerRun[] = [];
  private applied: TableLines = emptyTable();
  private syncing: Promise<void> = Promise.resolve();
  private dirty = false;
  private started = false;
  private stopped = false;

  constructor(options: HealthCheckerOptions) {
    this.target = options.target;
    this.log = options.log ?? stderrLog;
    this.probe = options.probe ?? runProbe;
    this.random = options.random ?? Math.random;
  }

  /** A HealthChecker whose commands run on `balancer` in this thread (the TypeScript API). */
  static forBalancer(balancer: Balancer, options: Omit<HealthCheckerOptions, "target"> = {}): HealthChecker {
    const ctx = { balancer, now: () => Math.floor(performance.now()), program: "lvsadm" } as const;
    return new HealthChecker({ ...options, target: (argv) => answer(ctx, { argv: [...argv] }) });
  }

  /** Listens to checks, transitions, quorum changes and table commands; returns an unsubscribe function. */
  on(listener: (e: HealthEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Puts the services into the table (servers alive unless alpha) and starts every check. */
  async start(config: HealthConfig): Promise<void> {
    if (this.started) throw new Error("HealthChecker.start: already started (use reconfigure)");
    this.started = true;
    this.vss = config.virtualServers.map((spec) => this.buildVs(spec, new Map()));
    for (const vs of this.vss) this.updateQuorum(vs, true);
    await this.sync();
    for (const vs of this.vss) for (const rs of vs.servers.values()) this.startChecks(rs);
  }

  /**
   * Takes a new configuration (SIGHUP): real servers whose checks did not change keep their
   * state and timers; changed, added and removed ones are handled as keepalived's reload
   * does; the table changes only where the result differs, so connections stay.
   */
  async reconfigure(config: HealthConfig): Promise<HealthReloadSummary> {
    const old = new Map<string, RealServerRun>();
    for (const vs of this.vss) for (const rs of vs.servers.values()) old.set(`${vs.names.join(",")}|${destId(rs.spec.destination)}`, rs);
    const summary = { kept: 0, added: 0, removed: 0, changed: 0 };
    const next = config.virtualServers.map((spec) => {
      const names = spec.services.map((s) => serviceKeyText(s.key)).join(",");
      const reuse = new Map<string, RealServerRun>();
      for (const rs of spec.realServers) {
        const key = `${names}|${destId(rs.destination)}`;
        const prev = old.get(key);
        if (prev && prev.identity === identityOf(rs)) {
          prev.spec = rs;
          reuse.set(destId(rs.destination), prev);
          old.delete(key);
          summary.kept++;
        } else if (prev) {
          summary.changed++;
        } else summary.added++;
      }
      return this.buildVs(spec, reuse);
    });
    for (const [key, rs] of old) {
      const still = config.virtualServers.some((v) =>
        v.realServers.some((r) => `${v.services.map((s) => serviceKeyText(s.key)).join(",")}|${destId(r.destination)}` === key),
      );
      if (!still) summary.removed++;
      this.stopChecks(rs);
    }
    const previous = new Set(this.vss.flatMap((v) => [...v.servers.values()]));
    const quorumBefore = new Map(this.vss.map((v) => [v.names.join(","), v.quorumUp] as const));
    this.vss = next;
    for (const vs of this.vss) {
      // A virtual server that stays keeps its quorum state (and so its sorry server).
      vs.quorumUp = quorumBefore.get(vs.names.join(",")) ?? true;
      this.updateQuorum(vs, !quorumBefore.has(vs.names.join(",")));
    }
    await this.sync();
    for (const vs of this.vss) for (const rs of vs.servers.values()) if (!previous.has(rs)) this.startChecks(rs);
    this.log(`reconfigured: real servers kept ${summary.kept}, added ${summary.added}, changed ${summary.changed}, removed ${summary.removed}`);
    return summary;
  }

  /** Stops every check (the table is left as it is). */
  stop(): void {
    this.stopped = true;
    for (const vs of this.vss) for (const rs of vs.servers.values()) this.stopChecks(rs);
  }

  /** Waits until the table commands issued so far have been applied. */
  async settled(): Promise<void> {
    while (true) {
      const current = this.syncing;
      await current;
      if (current === this.syncing && !this.dirty) return;
    }
  }

  /** Every virtual server, real server and check, as they stand. */
  status(): VirtualServerStatus[] {
    return this.vss.map((vs) => ({
      services: vs.names,
      quorumUp: vs.quorumUp,
      sorryServerActive: vs.sorryActive(),
      realServers: [...vs.servers.values()].map((rs) => ({
        services: vs.names,
        address: rs.spec.destination.address,
        port: rs.spec.destination.port,
        alive: rs.alive,
        weight: rs.weight,
        lastTransition: rs.lastTransition,
        checks: rs.checks.map((c) => ({
          type: c.spec.type,
          target: "address" in c.spec ? hostPort(c.spec.address, c.spec.port) : c.spec.command.join(" "),
          up: c.state.up,
          runs: c.runs,
          failures: c.failures,
          lastLatencyMs: c.lastLatencyMs,
          lastDetail: c.lastDetail,
        })),
      })),
    }));
  }

  // ------------------------------------------------------------------ state

  private buildVs(spec: VirtualServerSpec, reuse: Map<string, RealServerRun>): VirtualServerRun {
    const vs = new VirtualServerRun(spec);
    for (const rs of spec.realServers) {
      const id = destId(rs.destination);
      const run = reuse.get(id) ?? new RealServerRun(rs, identityOf(rs));
      run.owner = vs;
      vs.servers.set(id, run);
    }
    return vs;
  }

  private emit(e: HealthEvent): void {
    for (const l of this.listeners) l(e);
  }

  private startChecks(rs: RealServerRun): void {
    for (const c of rs.checks) {
      const first = c.spec.warmup > 0 ? Math.floor(this.random() * c.spec.warmup) : 0;
      this.schedule(rs, c, first);
    }
  }

  private stopChecks(rs: RealServerRun): void {
    for (const c of rs.checks) {
      c.stopped = true;
      clearTimeout(c.timer);
    }
  }

  private schedule(rs: RealServerRun, c: CheckRun, delay: number): void {
    if (c.stopped || this.stopped) return;
    c.timer = setTimeout(() => void this.attempt(rs, c), delay);
    c.timer.unref();
  }

  private async attempt(rs: RealServerRun, c: CheckRun): Promise<void> {
    const began = performance.now();
    let result: ProbeResult;
    try {
      result = await this.probe(c.attemptSpec());
    } catch (e) {
      result = { ok: false, detail: e instanceof Error ? e.message : String(e) };
    }
    if (c.stopped || this.stopped) return;
    const vs = rs.owner;
    c.lastLatencyMs = performance.now() - began;
    c.runs++;
    if (!result.ok) c.failures++;
    c.lastDetail = result.detail;
    this.emit({ type: "check", service: vs.label, destination: rs.name, check: c.spec.type, ok: result.ok, latencyMs: c.lastLatencyMs });
    const outcome = c.state.record(result.ok);
    const decidedFailure = !result.ok && outcome.retrying === 0;
    let weightChanged = false;
    if (c.spec.type === "MISC_CHECK" && c.spec.dynamic) {
      const before = rs.weight;
      if (result.ok && result.exitStatus !== undefined && result.exitStatus !== c.lastExitStatus) {
        c.curWeight = result.exitStatus ? result.exitStatus - 2 - rs.spec.destination.weight : 0;
        c.lastExitStatus = result.exitStatus;
      } else if (decidedFailure) {
        c.curWeight = 0;
        c.lastExitStatus = result.exitStatus ?? c.lastExitStatus;
      }
      if (rs.weight !== before) {
        weightChanged = true;
        this.log(`${c.spec.type} of real server ${rs.name} (${vs.label}): ${result.detail}: weight ${before} -> ${rs.weight}`);
      }
    }
    if (outcome.transition) this.transition(vs, rs, c, outcome.transition, result, outcome.failuresInRow);
    if (outcome.transition || weightChanged) {
      this.updateQuorum(vs, false);
      this.requestSync();
    }
    this.schedule(rs, c, outcome.delay);
  }

  private transition(vs: VirtualServerRun, rs: RealServerRun, c: CheckRun, to: "up" | "down", result: ProbeResult, failuresInRow: number): void {
    const wasAlive = rs.alive;
    rs.alive = rs.checks.every((x) => x.state.up);
    const retried = failuresInRow - 1;
    const retries = to === "down" && retried > 0 ? ` after ${retried} ${retried === 1 ? "retry" : "retries"}` : "";
    let effect = "";
    if (wasAlive !== rs.alive) {
      rs.lastTransition = Date.now();
      const inhibit = rs.spec.inhibitOnFailure;
      effect = rs.alive ? (inhibit ? `; enabled (weight ${rs.weight})` : "; added") : inhibit ? "; weight 0 (inhibit_on_failure)" : "; removed";
      if (vs.sorryActive()) effect += " (sorry server in use: applied when quorum returns)";
      const notify = rs.alive ? rs.spec.notifyUp : rs.spec.notifyDown;
      if (notify) this.notify(notify);
    } else if (!rs.alive) {
      effect = "; other checks still failing";
    }
    const line = `${c.spec.type} ${"address" in c.spec ? hostPort(c.spec.address, c.spec.port) : `[${c.spec.command.join(" ")}]`} of real server ${rs.name} (${vs.label}): ${to}: ${result.detail}${retries}${effect}`;
    this.log(line);
    this.emit({ type: "transition", service: vs.label, destination: rs.name, up: to === "up", line });
  }

  /** keepalived's update_quorum_state: threshold quorum -/+ hysteresis, sorry server in or out. */
  private updateQuorum(vs: VirtualServerRun, init: boolean): void {
    const sum = vs.liveWeight();
    const { quorum, hysteresis } = vs.spec;
    const threshold = quorum + (vs.quorumUp ? -1 : 1) * hysteresis;
    let line: string | null = null;
    if (!vs.quorumUp && sum >= threshold) {
      vs.quorumUp = true;
      line = `${vs.label}: gained quorum (live weight ${sum} >= ${quorum}+${hysteresis})${vs.spec.sorryServer ? `; sorry server ${hostPort(vs.spec.sorryServer.destination.address, vs.spec.sorryServer.destination.port)} out, live real servers back` : ""}`;
      if (vs.spec.quorumUp) this.notify(vs.spec.quorumUp);
    } else if (vs.quorumUp && (sum === 0 || sum < threshold)) {
      vs.quorumUp = false;
      line = `${vs.label}: ${init ? "starting with quorum down" : "lost quorum"} (live weight ${sum} < ${quorum}-${hysteresis})${vs.spec.sorryServer ? `; sorry server ${hostPort(vs.spec.sorryServer.destination.address, vs.spec.sorryServer.destination.port)} in, real servers out` : ""}`;
      if (vs.spec.quorumDown) this.notify(vs.spec.quorumDown);
    }
    if (line) {
      this.log(line);
      this.emit({ type: "quorum", service: vs.label, up: vs.quorumUp, line });
    }
  }

  private notify(command: readonly string[]): void {
    try {
      const child = spawn(command[0], command.slice(1), { stdio: "ignore", detached: true });
      child.on("error", (e) => this.log(`notify ${command.join(" ")}: ${e.message}`));
      child.unref();
    } catch (e) {
      this.log(`notify ${command.join(" ")}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // ------------------------------------------------------------------ the table

  /** What the table should hold now. */
  private wanted(): TableEntry[] {
    const entries: TableEntry[] = [];
    for (const vs of this.vss) {
      const dests: DestinationConfig[] = [];
      const sorry = vs.spec.sorryServer;
      const sorryActive = vs.sorryActive();
      for (const rs of vs.servers.values()) {
        const inPool = rs.alive && !sorryActive;
        if (inPool) dests.push({ ...rs.spec.destination, weight: rs.weight });
        else if (rs.spec.inhibitOnFailure) dests.push({ ...rs.spec.destination, weight: 0 });
      }
      if (sorry && !dests.some((d) => destId(d) === destId(sorry.destination))) {
        if (sorryActive) dests.push(sorry.destination);
        else if (sorry.inhibit) dests.push({ ...sorry.destination, weight: 0 });
      }
      for (const service of vs.spec.services) entries.push({ service: service as ServiceConfig, destinations: dests });
    }
    return entries;
  }

  private requestSync(): void {
    void this.sync();
  }

  /** Applies the difference between the applied table and the wanted one, one command at a time. */
  private sync(): Promise<void> {
    this.dirty = true;
    this.syncing = this.syncing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const commands = tableCommands(this.applied, tableLines(this.wanted()));
      for (const cmd of commands) {
        let r: CommandResult;
        try {
          r = await this.target(cmd.argv);
        } catch (e) {
          r = { stdout: "", stderr: e instanceof Error ? e.message : String(e), exitCode: 255 };
        }
        const ok = r.exitCode === 0;
        if (ok) cmd.commit(this.applied);
        else this.log(`lvsadm ${cmd.argv.join(" ")}: failed: ${r.stderr.trim()}`);
        this.emit({ type: "table", argv: cmd.argv, ok });
      }
    });
    return this.syncing;
  }
}
