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
//   main thread                                worker thread
//   control socket ── { argv, stdin } ──────►  Lvsd.command() ── Balancer
//   SIGHUP / SIGUSR1 / SIGTERM ─ reload/stats/stop ─►  Lvsd
//   stderr  ◄──────────── log lines ─────────  Director loop over the adapters

import { statSync } from "node:fs";
import { dirname } from "node:path";
import { Worker, parentPort, workerData } from "node:worker_threads";
import type { CommandResult } from "../admin/execute.js";
import { defaultSocketPath } from "../admin/control-client.js";
import { serveControlWith, type ControlServer } from "../admin/control-server.js";
import type { MetricsSnapshot } from "../metrics/snapshot.js";
import { claimSocketPath } from "../admin/socket-claim.js";
import { Lvsd } from "./lvsd.js";
import type { LvsdOptions } from "./lvsd-options.js";

/** The options that cross to the worker (structured-clonable: no functions, no adapters). */
export type LvsdWorkerOptions = Omit<LvsdOptions, "io" | "log" | "clock" | "socketPath" | "keepalivedFile" | "metrics" | "control">;

type ToWorker =
  | { readonly id: number; readonly kind: "command"; readonly request: unknown }
  | { readonly id: number; readonly kind: "reload" | "stats" | "stop" | "metrics" };

type FromWorker =
  | { readonly kind: "log"; readonly line: string }
  | { readonly kind: "ready" }
  | { readonly kind: "start-failed"; readonly message: string }
  | { readonly kind: "loop-failed"; readonly message: string }
  | { readonly kind: "answer"; readonly id: number; readonly value: unknown };

interface WorkerData {
  readonly lvsdWorker: true;
  readonly options: LvsdWorkerOptions;
}

/** True in a thread started by LvsdHost (the entry module calls runLvsdWorker then). */
export function isLvsdWorker(): boolean {
  return parentPort !== null && (workerData as Partial<WorkerData> | null)?.lvsdWorker === true;
}

/** The worker side: starts the daemon and serves the main thread's requests. */
export async function runLvsdWorker(): Promise<void> {
  const port = parentPort!;
  const post = (m: FromWorker) => port.postMessage(m);
  const { options } = workerData as WorkerData;
  let daemon: Lvsd;
  try {
    daemon = await Lvsd.start({ ...options, socketPath: false, log: (line) => post({ kind: "log", line }) });
  } catch (e) {
    post({ kind: "start-failed", message: e instanceof Error ? e.message : String(e) });
    return;
  }
  daemon.running.catch((e: unknown) => post({ kind: "loop-failed", message: e instanceof Error ? e.message : String(e) }));
  port.on("message", (m: ToWorker) => {
    const reply = (value: unknown) => post({ kind: "answer", id: m.id, value });
    switch (m.kind) {
      case "command":
        void Promise.resolve(daemon.command(m.request)).then(reply);
        break;
      case "reload":
        daemon.reload();
        reply(null);
        break;
      case "stats":
        reply(daemon.statsLine());
        break;
      case "metrics":
        reply(daemon.metricsSnapshot());
        break;
      case "stop":
        void daemon.stop().then(() => {
          reply(null);
          port.close();
        });
        break;
    }
  });
  post({ kind: "ready" });
}

/**
 * The main side: the worker, the control socket relaying to it, and the requests the
 * signals make. Same socket protocol and permissions as src/admin/control-server.ts.
 */
export class LvsdHost {
  readonly socketPath: string | null;
  private server: ControlServer | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, (value: unknown) => void>();
  private stopping: Promise<void> | null = null;
  /** Resolves when the worker ends; rejects if its packet loop failed or it died. */
  readonly running: Promise<void>;
  private settle!: { resolve: () => void; reject: (e: Error) => void };

  private constructor(
    private readonly worker: Worker,
    socketPath: string | false | undefined,
  ) {
    this.socketPath = socketPath === false ? null : (socketPath ?? defaultSocketPath());
    this.running = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.running.catch(() => {});
  }

  /**
   * Starts the worker from `entry` (a module that calls runLvsdWorker() when
   * isLvsdWorker(): lvsd-cli.ts does), waits for it to be ready, then serves the socket.
   */
  static async start(entry: URL, options: LvsdWorkerOptions & Pick<LvsdOptions, "socketPath" | "control">, log: (line: string) => void): Promise<LvsdHost> {
    const { socketPath, control, ...rest } = options;
    // A path another lvsd answers on is refused before any adapter is opened.
    if (socketPath !== false) await claimSocketPath(socketPath ?? defaultSocketPath());
    const data = { lvsdWorker: true, options: rest } satisfies WorkerData;
    // Run from source (lvsd-cli.ts under tsx): a worker does not inherit tsx's module hooks
    // on Node 20, so it registers them itself before importing the entry.
    const worker = entry.pathname.endsWith(".ts")
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`,
          { eval: true, workerData: data },
        )
      : new Worker(entry, { workerData: data });
    const host = new LvsdHost(worker, socketPath);
    await new Promise<void>((resolve, reject) => {
      worker.on("message", (m: FromWorker) => {
        if (m.kind === "log") log(m.line);
        else if (m.kind === "ready") resolve();
        else if (m.kind === "start-failed") reject(new Error(m.message));
        else if (m.kind === "loop-failed") {
          log(`director loop failed: ${m.message}`);
          host.settle.reject(new Error(m.message));
        } else if (m.kind === "answer") {
          const done = host.pending.get(m.id);
          host.pending.delete(m.id);
          done?.(m.value);
        }
      });
      worker.on("error", (e) => {
        reject(e);
        host.settle.reject(e);
      });
      worker.on("exit", (code) => {
        reject(new Error(`the data-plane worker exited (${code}) before it was ready`));
        for (const done of host.pending.values()) done({ stdout: "", stderr: "lvsd: stopping\n", exitCode: 2 });
        host.pending.clear();
        if (code === 0 || host.stopping) host.settle.resolve();
        else host.settle.reject(new Error(`the data-plane worker exited with status ${code}`));
      });
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    log(`data plane on worker thread ${worker.threadId}; control on the main thread`);
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

  private request(m: { kind: "command"; request: unknown } | { kind: "reload" | "stats" | "stop" | "metrics" }): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ ...m, id } as ToWorker);
    });
  }

  /** Relays one control request to the worker and returns its answer. */
  async command(request: unknown): Promise<CommandResult> {
    return (await this.request({ kind: "command", request })) as CommandResult;
  }

  /** SIGHUP: the worker re-reads the rules file and logs what it did. */
  async reload(): Promise<void> {
    await this.request({ kind: "reload" });
  }

  /** SIGUSR1: the counters line. */
  async statsLine(): Promise<string> {
    return (await this.request({ kind: "stats" })) as string;
  }

  /** The data plane's counters, for the metrics (src/metrics). */
  async metricsSnapshot(): Promise<MetricsSnapshot> {
    return (await this.request({ kind: "metrics" })) as MetricsSnapshot;
  }

  /** Closes the socket, stops the worker's daemon (it logs the counters) and waits for its exit. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.server?.close();
      const timer = setTimeout(() => void this.worker.terminate(), 10_000);
      await Promise.race([this.request({ kind: "stop" }), this.running.catch(() => {})]);
      await this.running.catch(() => {});
      clearTimeout(timer);
    })();
    return this.stopping;
  }
}
