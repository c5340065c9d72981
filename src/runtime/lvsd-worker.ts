// lvsd's data plane on a worker thread. The worker owns the Balancer and the Director loop
// (Lvsd.start with no control socket: it opens the adapters itself, in their namespace,
// compiles its own instance of the wasm module, installs the VIP isolation). The main
// thread keeps the control socket and the signals and relays every lvsadm request to the
// worker (postMessage with { argv, stdin, json }), which answers it with the same `answer`
// the in-thread socket uses and posts the result back. Accepting connections, reading and
// parsing requests and writing long listings happen on the main thread, beside the packets
// rather than between them; the command itself runs on the worker between two batches (the
// Balancer is not shared). See docs/daemon.md, "Threads".
//
// With several workers (lvsd --workers N) each has its own Balancer and its own queue of
// every adapter (src/runtime/workers). A configuration command is staged in every worker
// and committed by a shared epoch; listings and counters are gathered from every worker
// and shown as totals (src/runtime/workers/merge.ts).
//
//   main thread                                worker thread
//   control socket ── { argv, stdin } ──────►  Lvsd.command() ── Balancer
//   SIGHUP / SIGUSR1 / SIGTERM ─ reload/stats/stop ─►  Lvsd
//   stderr  ◄──────────── log lines ─────────  Director loop over the adapters

import { readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { Worker, parentPort, workerData } from "node:worker_threads";
import type { Balancer } from "../balancer/balancer.js";
import { ConfigError } from "../config/types.js";
import { parseCommand, type LvsCommand } from "../admin/command.js";
import { executeCommand, type CommandResult } from "../admin/execute.js";
import { defaultSocketPath } from "../admin/control-client.js";
import { serveControlWith, type ControlServer } from "../admin/control-server.js";
import { toJson } from "../admin/json-output.js";
import { SYSCTL_SUBCOMMAND } from "../admin/sysctl-command.js";
import type { ConnectionSnapshot, ListingSnapshot, ServiceSnapshot } from "../balancer/snapshots.js";
import type { MetricsSnapshot } from "../metrics/snapshot.js";
import { claimSocketPath } from "../admin/socket-claim.js";
import { Lvsd } from "./lvsd.js";
import type { LvsdOptions } from "./lvsd-options.js";
import type { ReloadSummary } from "./rule-diff.js";
import type { PacketIO } from "../io/packet-io.js";
import { isDrainRequest } from "./drain-command.js";
import { closeMesh, commitEpoch, meshData, type WorkerMeshData } from "./workers/worker-mesh.js";
import { mergeListings, mergeMetrics, mergeServices } from "./workers/merge.js";
import { printTable, sendTableRows, tableRead, type TableRead, type WorkerTable } from "./workers/table-rows.js";
import { ConfigLock, restoreLogLine, restoreRefused, tableQuery, type TableQuery } from "../admin/sliced-answer.js";
import { readRulesInSlices } from "../admin/rules.js";
import { packRulesInSlices, unpackRulesInSlices, type PackedRules } from "./workers/rules-transfer.js";
import type { RuleSet } from "../config/types.js";
import { Slicer } from "../balancer/slices.js";

/** The options that cross to the worker (structured-clonable: no functions, no adapters). */
export type LvsdWorkerOptions = Omit<LvsdOptions, "io" | "log" | "clock" | "socketPath" | "keepalivedFile" | "metrics" | "control">;

type Simple = "stats" | "stop" | "metrics" | "debug";

type ToWorker =
  | { readonly id: number; readonly kind: "command"; readonly request: unknown }
  | { readonly id: number; readonly kind: Simple }
  | { readonly id: number; readonly kind: "snapshot"; readonly argv: readonly string[] }
  | { readonly id: number; readonly kind: "table"; readonly request: TableRead }
  /** The rules parsed on the main thread (workers/rules-transfer.ts); none: the worker reads the file and says why it fails. */
  | { readonly id: number; readonly kind: "reload"; readonly rules?: PackedRules }
  | { readonly id: number; readonly kind: "restore"; readonly restore: ParsedRestore }
  | {
      readonly id: number;
      readonly kind: "stage";
      readonly epoch: number;
      readonly resultId: number;
      readonly change: Change;
    }
  | { readonly id: 0; readonly kind: "neighbours"; readonly entries: ReadonlyArray<readonly [string, string]> };

/** A -R whose text the main thread parsed: its argv for the log line, its rules, whether it clears (-C). */
interface ParsedRestore {
  readonly argv: readonly string[];
  readonly rules: PackedRules;
  readonly clears: boolean;
}

/** A configuration change staged in every worker: a request, or rules the main thread parsed. */
type Change = { readonly request: unknown } | { readonly reloadRules: PackedRules } | { readonly restore: ParsedRestore };

type FromWorker =
  | { readonly kind: "log"; readonly line: string }
  | { readonly kind: "ready"; readonly adapters: readonly string[] }
  | { readonly kind: "start-failed"; readonly message: string }
  | { readonly kind: "loop-failed"; readonly message: string }
  | { readonly kind: "answer"; readonly id: number; readonly value: unknown }
  | { readonly kind: "rows"; readonly id: number; readonly rows: readonly unknown[] }
  | { readonly kind: "neighbours"; readonly entries: ReadonlyArray<readonly [string, string]> };

/** What a worker answers to "snapshot": the data of one listing, or null when the command fails there. */
type ListingData = { readonly listing: ListingSnapshot } | { readonly service: ServiceSnapshot } | { readonly connections: ConnectionSnapshot[] } | null;

interface WorkerData {
  readonly lvsdWorker: true;
  readonly options: LvsdWorkerOptions;
}

/** How often a worker tells the others the neighbours it learnt (several workers, AF_PACKET). */
const NEIGHBOUR_RELAY_MS = 100;

/** True in a thread started by LvsdHost (the entry module calls runLvsdWorker then). */
export function isLvsdWorker(): boolean {
  return parentPort !== null && (workerData as Partial<WorkerData> | null)?.lvsdWorker === true;
}

/**
 * The worker side: starts the daemon and serves the main thread's requests. `io`: adapters
 * made in this thread besides the ones the options open (bench/ops/restore-stall.ts).
 */
export async function runLvsdWorker(extra: { readonly io?: readonly PacketIO[] } = {}): Promise<void> {
  const port = parentPort!;
  const post = (m: FromWorker) => port.postMessage(m);
  const { options } = workerData as WorkerData;
  let daemon: Lvsd;
  try {
    daemon = await Lvsd.start({ ...options, io: extra.io ? [...extra.io] : undefined, socketPath: false, log: (line) => post({ kind: "log", line }) });
  } catch (e) {
    post({ kind: "start-failed", message: e instanceof Error ? e.message : String(e) });
    return;
  }
  daemon.running.catch((e: unknown) => post({ kind: "loop-failed", message: e instanceof Error ? e.message : String(e) }));
  // Several workers: configuration changes staged here, applied when the epoch reaches theirs.
  const staged: Array<Extract<ToWorker, { kind: "stage" }>> = [];
  let relay: NodeJS.Timeout | undefined;
  const relayed = new Map<string, string>();
  if (daemon.mesh) {
    // A change may run in slices (a large restore or reload): the next staged one waits for it.
    let applying: Promise<void> = Promise.resolve();
    daemon.mesh.onCommit = (epoch) => {
      while (staged.length > 0 && staged[0].epoch <= epoch) {
        const { resultId, change } = staged.shift()!;
        applying = applying.then(async () => {
          const value = await applyChange(daemon, change);
          post({ kind: "answer", id: resultId, value });
        });
      }
    };
    if (daemon.arp) {
      relay = setInterval(() => {
        const fresh = [...daemon.knownNeighbours()].filter(([a, m]) => relayed.get(a) !== m);
        for (const [a, m] of fresh) relayed.set(a, m);
        if (fresh.length > 0) post({ kind: "neighbours", entries: fresh });
      }, NEIGHBOUR_RELAY_MS);
      relay.unref();
    }
  }
  port.on("message", (m: ToWorker) => {
    const reply = (value: unknown) => post({ kind: "answer", id: m.id, value });
    switch (m.kind) {
      case "command":
        void Promise.resolve(daemon.command(m.request)).then(reply);
        break;
      case "stage":
        staged.push(m);
        reply(null);
        break;
      case "snapshot":
        reply(listingData(daemon.balancer, m.argv, () => daemon.now()));
        break;
      case "neighbours":
        for (const [a, mac] of m.entries) {
          relayed.set(a, mac);
          daemon.learnRelayedNeighbour(a, mac);
        }
        break;
      case "table":
        // Read in slices; the main thread sorts and prints (workers/table-rows.ts).
        void sendTableRows(daemon.balancer, m.request, (rows) => post({ kind: "rows", id: m.id, rows }), new Slicer()).then(reply);
        break;
      case "reload":
        void daemon.reloadWith(m.rules && unpacked(m.rules)).then(reply);
        break;
      case "restore":
        void applyChange(daemon, { restore: m.restore }).then(reply);
        break;
      case "stats":
        reply(daemon.statsLine());
        break;
      case "metrics":
        reply(daemon.metricsSnapshot());
        break;
      case "debug":
        reply(workerReport(daemon));
        break;
      case "stop":
        clearInterval(relay);
        void daemon.stop().then(() => {
          reply(null);
          port.close();
        });
        break;
    }
  });
  post({ kind: "ready", adapters: daemon.io.map((x) => x.name) });
}

/** Reads rules the main thread parsed back, in slices (inside the daemon's configuration lock). */
function unpacked(rules: PackedRules): (slicer: Slicer) => Promise<RuleSet> {
  return async (slicer) => ({ services: await unpackRulesInSlices(rules, slicer) });
}

function applyChange(daemon: Lvsd, change: Change): Promise<unknown> {
  if ("reloadRules" in change) return daemon.reloadWith(unpacked(change.reloadRules));
  if ("restore" in change) {
    const { argv, rules, clears } = change.restore;
    return daemon.restoreWith(argv, async (slicer) => ({ ruleSet: await unpacked(rules)(slicer), clears }));
  }
  return Promise.resolve(daemon.command(change.request));
}

/** One worker's counters and connections, with the client packets each connection counted here (the `workers` request). */
export interface WorkerReport {
  readonly worker: number;
  readonly datapath: Lvsd["director"]["stats"];
  readonly connections: ReadonlyArray<ConnectionSnapshot & { readonly inPackets: number }>;
}

function workerReport(daemon: Lvsd): Omit<WorkerReport, "worker"> {
  const connections = daemon.balancer.connectionRecords(daemon.now()).map((r) => ({ ...r.snapshot, inPackets: r.inPackets }));
  return { datapath: daemon.director.stats, connections };
}

/** The control request that lists each worker's counters and connections (JSON; not an ipvsadm command). */
export const WORKERS_REQUEST = "workers";

/** The data of a services or connections listing in this worker, for the main thread to add up. */
function listingData(balancer: Balancer, argv: readonly string[], now: () => number): ListingData {
  try {
    const cmd = parseCommand(argv, { program: "lvsadm" });
    if (cmd.kind !== "list") return null;
    if (cmd.show === "connections") return { connections: balancer.connections(now()) };
    if (cmd.show !== "services") return null;
    return cmd.service ? { service: balancer.service(cmd.service) } : { listing: balancer.listing() };
  } catch {
    return null; // the command's own error: the main thread lets one worker answer it
  }
}

/** The argv of a -R request (parsed and refused or relayed by the main thread), else null. */
function restoreArgv(request: unknown): readonly string[] | null {
  const argv = (request as { argv?: unknown } | null)?.argv;
  if (!Array.isArray(argv) || argv.some((a) => typeof a !== "string")) return null;
  try {
    return parseCommand(argv as string[], { program: "lvsadm" }).kind === "restore" ? (argv as string[]) : null;
  } catch {
    return null;
  }
}

/** How the main thread answers a command when there are several workers. */
type Route = "one" | "all" | "merged";

/** Staged in every worker: the commands that change the configuration, the counters or the sync daemons. */
const CHANGES = new Set<LvsCommand["kind"]>([
  "add-service",
  "edit-service",
  "delete-service",
  "clear",
  "add-dest",
  "edit-dest",
  "delete-dest",
  "zero",
  "set-timeouts",
  "restore",
  "start-daemon",
  "stop-daemon",
]);

function routeOf(request: unknown): Route {
  const argv = (request as { argv?: unknown } | null)?.argv;
  if (!Array.isArray(argv) || argv.some((a) => typeof a !== "string")) return "one";
  if (isDrainRequest(argv)) return "one"; // the route announcer runs in worker 0
  if (argv[0] === SYSCTL_SUBCOMMAND) return argv.length > 1 ? "all" : "one";
  let cmd: LvsCommand;
  try {
    cmd = parseCommand(argv, { program: "lvsadm" });
  } catch {
    return "one"; // a usage error: one worker answers it, nothing changes
  }
  if (CHANGES.has(cmd.kind)) return "all";
  if (cmd.kind === "list" && (cmd.show === "services" || cmd.show === "connections")) return "merged";
  return "one";
}

/** A read-only stand-in for a Balancer whose listings are the workers' totals (for executeCommand). */
function mergedView(data: readonly NonNullable<ListingData>[]): Balancer {
  const view = {
    listing: () => mergeListings(data.map((d) => (d as { listing: ListingSnapshot }).listing)),
    service: () => mergeServices(data.map((d) => (d as { service: ServiceSnapshot }).service)),
    connections: () => data.flatMap((d) => (d as { connections: ConnectionSnapshot[] }).connections),
  };
  return view as unknown as Balancer;
}

/**
 * The main side: the workers, the control socket relaying to them, and the requests the
 * signals make. Same socket protocol and permissions as src/admin/control-server.ts.
 */
export class LvsdHost {
  readonly socketPath: string | null;
  private server: ControlServer | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, (value: unknown) => void>();
  private stopping: Promise<void> | null = null;
  /** Resolves when the workers end; rejects if a packet loop failed or a worker died. */
  readonly running: Promise<void>;
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  private readonly workers: Worker[] = [];
  private mesh: WorkerMeshData | null = null;
  /** Configuration changes, one at a time (several workers). */
  private changes: Promise<unknown> = Promise.resolve();
  private epoch = 0;
  private exited = 0;
  private rulesFile: string | undefined;
  private readonly ready = new Set<Worker>();
  /** Requests sent to the workers in the order they came, a restore being parsed here holding the rest. */
  private readonly sendLock = new ConfigLock();
  private log: (line: string) => void = () => {};
  /** The rows of the whole-table listings being read, by request id (workers/table-rows.ts). */
  private readonly tableRows = new Map<number, unknown[]>();

  private constructor(socketPath: string | false | undefined) {
    this.socketPath = socketPath === false ? null : (socketPath ?? defaultSocketPath());
    this.running = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.running.catch(() => {});
  }

  /** How many data-plane workers run. */
  get workerCount(): number {
    return this.workers.length;
  }

  /**
   * Starts the workers from `entry` (a module that calls runLvsdWorker() when
   * isLvsdWorker(): lvsd-cli.ts does), waits for them to be ready, then serves the socket.
   * Worker 0 starts first: it creates the devices, the others open more queues of them.
   */
  static async start(entry: URL, options: LvsdWorkerOptions & Pick<LvsdOptions, "socketPath" | "control">, log: (line: string) => void): Promise<LvsdHost> {
    const { socketPath, control, ...rest } = options;
    const count = options.workers ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 64) throw new ConfigError(`workers ${count}: not an integer in 1..64`);
    // A path another lvsd answers on is refused before any adapter is opened.
    if (socketPath !== false) await claimSocketPath(socketPath ?? defaultSocketPath());
    const host = new LvsdHost(socketPath);
    host.rulesFile = rest.rulesFile;
    host.log = log;
    try {
      if (count === 1) {
        await host.spawn(entry, rest, 0, log);
        log(`data plane on worker thread ${host.workers[0].threadId}; control on the main thread`);
      } else {
        host.mesh = meshData(count);
        const names = await host.spawn(entry, { ...rest, worker: { index: 0, mesh: host.mesh } }, 0, log);
        // The others open the devices worker 0 created ("lvs%d" resolved to its name).
        const adapters = rest.adapters?.map((a, i) => (a.kind === "tun" ? { ...a, name: names[i] ?? a.name } : a));
        await Promise.all(
          Array.from({ length: count - 1 }, (_, k) => host.spawn(entry, { ...rest, adapters, worker: { index: k + 1, mesh: host.mesh! } }, k + 1, log)),
        );
        log(`data plane on ${count} worker threads (${host.workers.map((w) => w.threadId).join(", ")}); control on the main thread`);
      }
    } catch (e) {
      await host.abort();
      throw e;
    }
    if (host.socketPath) {
      try {
        host.server = await serveControlWith(host.socketPath, (request) => host.command(request), { log, ...control });
      } catch (e) {
        await host.stop();
        throw e;
      }
      const shared = (statSync(dirname(host.socketPath)).mode & 0o1000) !== 0;
      log(`control socket ${host.socketPath} (mode 0600${shared ? "" : ", directory 0700"}: root only)`);
    }
    return host;
  }

  /** Starts worker `index` and waits until it is ready; resolves with its adapters' names. */
  private async spawn(entry: URL, options: LvsdWorkerOptions, index: number, log: (line: string) => void): Promise<readonly string[]> {
    const data = { lvsdWorker: true, options } satisfies WorkerData;
    // Run from source (lvsd-cli.ts under tsx): a worker does not inherit tsx's module hooks
    // on Node 20, so it registers them itself before importing the entry.
    const worker = entry.pathname.endsWith(".ts")
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`,
          { eval: true, workerData: data },
        )
      : new Worker(entry, { workerData: data });
    this.workers.push(worker);
    const several = options.worker !== undefined;
    const say = several ? (line: string) => log(`worker ${index}: ${line}`) : log;
    return new Promise<readonly string[]>((resolve, reject) => {
      worker.on("message", (m: FromWorker) => {
        if (m.kind === "log") say(m.line);
        else if (m.kind === "ready") {
          this.ready.add(worker);
          resolve(m.adapters);
        } else if (m.kind === "start-failed")
          reject(new Error(m.message)); // the same words as with one worker
        else if (m.kind === "loop-failed") {
          say(`director loop failed: ${m.message}`);
          this.settle.reject(new Error(m.message));
        } else if (m.kind === "neighbours") {
          for (const other of this.workers) if (other !== worker) other.postMessage({ id: 0, kind: "neighbours", entries: m.entries } satisfies ToWorker);
        } else if (m.kind === "rows") {
          const into = this.tableRows.get(m.id);
          if (into) for (const row of m.rows) into.push(row);
        } else if (m.kind === "answer") {
          const done = this.pending.get(m.id);
          this.pending.delete(m.id);
          done?.(m.value);
        }
      });
      worker.on("error", (e) => {
        reject(e);
        this.settle.reject(e);
      });
      worker.on("exit", (code) => {
        reject(new Error(`the data-plane worker exited (${code}) before it was ready`));
        this.exited++;
        if (this.exited === this.workers.length) {
          for (const done of this.pending.values()) done({ stdout: "", stderr: "lvsd: stopping\n", exitCode: 2 });
          this.pending.clear();
          if (this.mesh) closeMesh(this.mesh);
          this.mesh = null;
        }
        if (code !== 0 && !this.stopping) this.settle.reject(new Error(`the data-plane worker exited with status ${code}`));
        else if (this.exited === this.workers.length) this.settle.resolve();
      });
    });
  }

  private ask(
    worker: Worker,
    m:
      | Omit<Extract<ToWorker, { kind: "command" }>, "id">
      | { kind: Simple }
      | { kind: "snapshot"; argv: readonly string[] }
      | { kind: "reload"; rules?: PackedRules }
      | { kind: "restore"; restore: ParsedRestore },
  ): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ ...m, id } as ToWorker);
    });
  }

  /** Reads the whole table of one worker, as rows sent a slice at a time. */
  private async askTable(worker: Worker, request: TableRead): Promise<WorkerTable> {
    const id = this.nextId++;
    const rows: unknown[] = [];
    this.tableRows.set(id, rows);
    try {
      const tableSize = await new Promise<unknown>((resolve) => {
        this.pending.set(id, resolve);
        worker.postMessage({ id, kind: "table", request } satisfies ToWorker);
      });
      if (typeof tableSize !== "number") throw new Error("lvsd: stopping");
      return { tableSize, rows };
    } finally {
      this.tableRows.delete(id);
    }
  }

  /**
   * A whole-table listing or -S: the workers read, this thread sorts and prints, in slices
   * (signals and other requests go on between them). Null when `request` is not one.
   */
  private async answerTable(request: unknown): Promise<CommandResult | null> {
    const r = request as { argv?: unknown; json?: unknown } | null;
    if (!r || !Array.isArray(r.argv) || r.argv.some((a) => typeof a !== "string")) return null;
    let query: TableQuery | null;
    try {
      query = tableQuery(parseCommand(r.argv as string[], { program: "lvsadm" }), r.json === true);
    } catch {
      return null; // a usage error: a worker answers it in its words
    }
    if (!query) return null;
    const read = tableRead(query, this.workers.length);
    try {
      // Rules are the same in every worker: one reads them.
      const each = await Promise.all((read.read === "rules" ? this.workers.slice(0, 1) : this.workers).map((w) => this.askTable(w, read)));
      return { stdout: await printTable(query, read, each, new Slicer()), stderr: "", exitCode: 0 };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (message === "lvsd: stopping") return { stdout: "", stderr: "lvsd: stopping\n", exitCode: 2 };
      return { stdout: "", stderr: `lvsd: internal error: ${message}\n`, exitCode: 2 };
    }
  }

  private askAll(m: { kind: Simple } | { kind: "snapshot"; argv: readonly string[] }): Promise<unknown[]> {
    return Promise.all(this.workers.map((w) => this.ask(w, m)));
  }

  /**
   * A change for every worker, all or nothing: staged in each (every worker holds the same
   * configuration, so each decides alike), then committed by raising the shared epoch; each
   * worker applies it between two batches. Resolves with every worker's result.
   */
  private change(change: Change): Promise<unknown[]> {
    const run = async () => {
      const epoch = ++this.epoch;
      const results = this.workers.map(() => {
        const id = this.nextId++;
        return { id, value: new Promise<unknown>((resolve) => this.pending.set(id, resolve)) };
      });
      await Promise.all(
        this.workers.map((w, i) => {
          const id = this.nextId++;
          return new Promise<unknown>((resolve) => {
            this.pending.set(id, resolve);
            w.postMessage({ id, kind: "stage", epoch, resultId: results[i].id, change } satisfies ToWorker);
          });
        }),
      );
      if (this.mesh) commitEpoch(this.mesh, epoch);
      return Promise.all(results.map((r) => r.value));
    };
    const next = this.changes.then(run, run);
    this.changes = next.catch(() => {});
    return next;
  }

  /** Relays one control request to the workers and returns the answer (totals over all workers). */
  async command(request: unknown): Promise<CommandResult> {
    const argv = (request as { argv?: unknown } | null)?.argv;
    if (Array.isArray(argv) && argv[0] === WORKERS_REQUEST) {
      const each = (await this.askAll({ kind: "debug" })) as Array<Omit<WorkerReport, "worker">>;
      const workers: WorkerReport[] = each.map((r, worker) => ({ worker, ...r }));
      return { stdout: `${toJson({ workers })}\n`, stderr: "", exitCode: 0 };
    }
    const table = await this.answerTable(request);
    if (table) return table;
    const restore = restoreArgv(request);
    if (restore) {
      const stdin = (request as { stdin?: unknown }).stdin;
      try {
        const { answer } = await this.sendLock.run(() => this.restoreHere(restore, typeof stdin === "string" ? stdin : ""));
        return await answer;
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        this.log(`lvsadm ${restore.join(" ")}: internal error: ${message}`);
        return { stdout: "", stderr: `lvsd: internal error: ${message}\n`, exitCode: 2 };
      }
    }
    if (this.workers.length === 1) {
      // After any restore still being parsed here: changes reach the worker in the order they came.
      const { answer } = await this.sendLock.run(() => ({ answer: this.ask(this.workers[0], { kind: "command", request }) }));
      return (await answer) as CommandResult;
    }
    const route = routeOf(request);
    if (route === "all") {
      const { answer } = await this.sendLock.run(() => ({ answer: this.change({ request }) }));
      return ((await answer) as CommandResult[])[0];
    }
    if (route === "merged") {
      const r = request as { argv: string[]; json?: unknown };
      const data = (await this.askAll({ kind: "snapshot", argv: r.argv })) as ListingData[];
      if (data.every((d): d is NonNullable<ListingData> => d !== null)) {
        const cmd = parseCommand(r.argv, { program: "lvsadm" });
        return executeCommand({ balancer: mergedView(data), now: () => 0, program: "lvsadm" }, cmd, "", { json: r.json === true });
      }
    }
    return (await this.ask(this.workers[0], { kind: "command", request })) as CommandResult;
  }

  /**
   * SIGHUP: the workers re-read the rules file (several: the main thread reads it once for
   * all). Resolves when it is applied, with worker 0's summary, or null when refused.
   */
  async reload(): Promise<ReloadSummary | null> {
    const file = this.rulesFile;
    let rules: PackedRules;
    try {
      if (!file) throw new Error("no rules file");
      rules = await this.parseHere(readFileSync(file, "utf8"), async (text, slicer) => (await readRulesInSlices(text, slicer)).ruleSet);
    } catch (e) {
      if (e instanceof ConfigError && file) {
        this.log(`reload ${file} refused, configuration unchanged: ${e.message}`);
        return null;
      }
      // Worker 0 says why (no file, unreadable): the same words as lvsd in one thread.
      return (await this.ask(this.workers[0], { kind: "reload" })) as ReloadSummary | null;
    }
    if (this.workers.length === 1) return (await this.ask(this.workers[0], { kind: "reload", rules })) as ReloadSummary | null;
    return ((await this.change({ reloadRules: rules })) as Array<ReloadSummary | null>)[0];
  }

  /**
   * Parses a rules text on this thread in slices (signals and requests go on between them)
   * and writes the result for the workers (workers/rules-transfer.ts). Throws ConfigError
   * for a text that does not parse.
   */
  private async parseHere(text: string, parse: (text: string, slicer: Slicer) => Promise<RuleSet>): Promise<PackedRules> {
    const slicer = new Slicer();
    const ruleSet = await parse(text, slicer);
    return packRulesInSlices(ruleSet.services, slicer);
  }

  /**
   * -R: parsed here (a text that does not parse is refused here, as a worker would refuse
   * it), then checked and applied by the workers. Returns the answer to wait for; the
   * caller holds the send lock until then, so that changes reach the workers in order.
   */
  private async restoreHere(argv: readonly string[], stdin: string): Promise<{ answer: Promise<CommandResult> }> {
    let restore: ParsedRestore;
    try {
      let clears = false;
      const rules = await this.parseHere(stdin, async (text, slicer) => {
        const read = await readRulesInSlices(text, slicer);
        clears = read.clears;
        return read.ruleSet;
      });
      restore = { argv, rules, clears };
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const result = restoreRefused(e);
      this.log(restoreLogLine(argv, result));
      return { answer: Promise.resolve(result) };
    }
    if (this.workers.length === 1) return { answer: this.ask(this.workers[0], { kind: "restore", restore }) as Promise<CommandResult> };
    return { answer: this.change({ restore }).then((results) => results[0] as CommandResult) };
  }

  /** SIGUSR1: the counters line (several workers: one line each, "worker N: ..."). */
  async statsLine(): Promise<string> {
    const lines = (await this.askAll({ kind: "stats" })) as string[];
    return lines.length === 1 ? lines[0] : lines.map((l, i) => `worker ${i}: ${l}`).join("\n");
  }

  /** The data plane's counters, for the metrics (src/metrics): totals over the workers. */
  async metricsSnapshot(): Promise<MetricsSnapshot> {
    const each = (await this.askAll({ kind: "metrics" })) as MetricsSnapshot[];
    return each.length === 1 ? each[0] : mergeMetrics(each);
  }

  /** A start that failed: the workers that started stop cleanly (they undo what they set up), the rest end. */
  private async abort(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(
        this.workers.map((w) =>
          this.ready.has(w)
            ? Promise.race([this.ask(w, { kind: "stop" }), new Promise((r) => setTimeout(r, 10_000).unref())]).then(() => w.terminate())
            : w.terminate(),
        ),
      );
    })();
    await this.stopping;
  }

  /** Closes the socket, stops the workers' daemons (each logs its counters) and waits for their exit. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.server?.close();
      const timer = setTimeout(() => {
        for (const w of this.workers) void w.terminate();
      }, 10_000);
      // Worker 0 last: it removes the VIP isolation, and its queue takes the device with it.
      const [first, ...others] = this.workers;
      await Promise.all(others.map((w) => this.ask(w, { kind: "stop" })));
      if (first) await Promise.race([this.ask(first, { kind: "stop" }), this.running.catch(() => {})]);
      if (this.workers.length > 0) await this.running.catch(() => {});
      clearTimeout(timer);
    })();
    return this.stopping;
  }
}
