#!/usr/bin/env node
// lvsd: the lvs-wasm director daemon (see docs/daemon.md). Parses the command line, starts
// the data plane (src/runtime/lvsd.ts) on a worker thread (src/runtime/lvsd-worker.ts:
// this same module is the worker's entry), serves the control socket on the main thread,
// runs the keepalived.conf health checks and the metrics endpoint on the main thread
// (src/runtime/lvsd-control-plane.ts), and wires the signals: SIGHUP reloads the rules file
// (or keepalived.conf), SIGUSR1 logs the counters, SIGTERM
// / SIGINT stop cleanly with exit status 0. Every event is one line on stderr.

import { ConfigError } from "../config/types.js";
import { availableParallelism } from "node:os";
import { LVSD_MAX_WORKERS, LVSD_USAGE, parseLvsdArgs } from "./lvsd-options.js";
import { LvsdHost, isLvsdWorker, runLvsdWorker } from "./lvsd-worker.js";
import { ControlPlane, loadKeepalivedConf } from "./lvsd-control-plane.js";
import type { KeepalivedConf } from "../health/keepalived-conf/read.js";
import { exitWhenDrained, quietOnBrokenPipe, writeAll } from "../admin/stdio.js";

const log = (line: string) => process.stderr.write(`lvsd: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  let options: ReturnType<typeof parseLvsdArgs>;
  try {
    options = parseLvsdArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      log(e.message);
      return 2;
    }
    throw e;
  }
  if (options.help) {
    await writeAll(process.stdout, LVSD_USAGE);
    return 0;
  }
  log(`starting (pid ${process.pid})`);
  const { help: _help, keepalivedFile, metrics, ...given } = options;
  // One data-plane worker per core unless --workers says otherwise (docs/daemon.md, "Threads").
  const daemonOptions = { ...given, workers: given.workers ?? Math.min(availableParallelism(), LVSD_MAX_WORKERS) };
  // keepalived.conf is read before anything starts: a broken file applies nothing.
  let keepalived: KeepalivedConf | null = null;
  try {
    keepalived = keepalivedFile ? loadKeepalivedConf(keepalivedFile, log) : null;
  } catch (e) {
    log(`cannot start: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  let daemon: LvsdHost;
  let control: ControlPlane;
  try {
    daemon = await LvsdHost.start(new URL(import.meta.url), daemonOptions, log);
  } catch (e) {
    log(`cannot start: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  try {
    control = await ControlPlane.start(daemon, { keepalivedFile, metrics, log }, keepalived);
  } catch (e) {
    log(`cannot start: ${e instanceof Error ? e.message : String(e)}`);
    await daemon.stop();
    return 1;
  }
  let stopping: Promise<number> | null = null;
  const stop = (why: string, code: number): Promise<number> => {
    stopping ??= (async () => {
      log(`stopping (${why})`);
      await control.stop();
      await daemon.stop();
      log("stopped");
      return code;
    })();
    return stopping;
  };
  return new Promise<number>((resolve) => {
    process.on("SIGHUP", () => {
      log("SIGHUP: reloading");
      if (keepalivedFile) void control.reload();
      else void daemon.reload();
    });
    // Several workers: one line each.
    process.on("SIGUSR1", () => void daemon.statsLine().then((lines) => lines.split("\n").forEach((l) => log(l))));
    process.on("SIGTERM", () => void stop("SIGTERM", 0).then(resolve));
    process.on("SIGINT", () => void stop("SIGINT", 0).then(resolve));
    daemon.running.catch(() => void stop("the packet loop failed", 1).then(resolve));
    log("ready");
  });
}

if (isLvsdWorker()) {
  void runLvsdWorker();
} else {
  quietOnBrokenPipe({ exit: false });
  main(process.argv.slice(2)).then(
    (code) => exitWhenDrained(code),
    (e: unknown) => {
      log(`fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      void exitWhenDrained(1);
    },
  );
}
