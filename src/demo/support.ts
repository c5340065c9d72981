// Shared pieces of the walkthroughs (`npm run demo [-- nat|dr|tun|ecmp]`): start the real lvsd
// daemon in a lab host, run the real lvsadm CLI against it, and print every command the
// way a tutorial shows it ("[director]# lvsadm -Ln") followed by its output.
//
// A mode module (src/demo/<mode>.ts) exports `run(log)`; walkthrough.ts dispatches to it.
// This file's exports are a stable interface for those modules.

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { curl, httpUrl, type HostName, type Lab, type LabProcess } from "../lab/index.js";

/** What every mode module exports. */
export type DemoLog = (line: string) => void;
export type DemoRun = (log: DemoLog) => Promise<void>;

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
/** The daemon and the CLI, run from source under tsx (the demo runs from a checkout). */
export const LVSD_CLI = here("../runtime/lvsd-cli.ts");
export const LVSADM_CLI = here("../admin/lvsadm-cli.ts");
/** tsx's loader by absolute URL, so children find it whatever their working directory. */
export const TSX_LOADER = import.meta.resolve("tsx");

/** Prints a section title. */
export function section(log: DemoLog, title: string): void {
  log("");
  log(`== ${title}`);
}

/** Prints the lines of a command's output, indented. */
export function printOutput(log: DemoLog, text: string, indent = "   "): void {
  for (const line of text.replace(/\n$/, "").split("\n")) log(`${indent}${line}`);
}

/** Runs a command in a lab host and prints it first as `[host]# cmd args`, then its output. */
export async function shell(lab: Lab, host: HostName, log: DemoLog, cmd: string, args: readonly string[]): Promise<string> {
  log(`[${host}]# ${[cmd, ...args].join(" ")}`);
  const r = await lab.exec(host, cmd, args);
  if (r.stdout.trim()) printOutput(log, r.stdout);
  return r.stdout;
}

export interface RunningLvsd {
  readonly process: LabProcess;
  /** The control socket; lvsadm finds it through LVS_WASM_SOCKET. */
  readonly socket: string;
  /** Everything lvsd logged so far. */
  log(): string;
  /** SIGTERM, then waits; resolves with the exit status. */
  stop(): Promise<number | null>;
}

/**
 * Starts `lvsd ARGS --socket <temporary path>` inside `host` (a lab process: killed at
 * teardown at the latest) and waits for its "ready" line. The socket's directory is removed
 * at teardown.
 */
export async function startLvsd(lab: Lab, args: readonly string[], options: { host?: HostName; log?: DemoLog; timeoutMs?: number } = {}): Promise<RunningLvsd> {
  const host = options.host ?? "director";
  const dir = mkdtempSync(join(tmpdir(), "lvsd-"));
  lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, "lvsd.sock");
  options.log?.(`[${host}]# lvsd ${args.join(" ")} --socket ${socket} &`);
  // One data-plane worker unless the caller asks for more: the walkthroughs' exact round-robin orders are one director's.
  const workers = args.includes("--workers") ? [] : ["--workers", "1"];
  const proc = lab.spawn(host, process.execPath, ["--import", TSX_LOADER, LVSD_CLI, ...args, ...workers, "--socket", socket]);
  try {
    await proc.waitForOutput(/^lvsd: ready$/m, options.timeoutMs ?? 30_000);
  } catch (e) {
    await proc.stop("SIGKILL");
    throw e;
  }
  return {
    process: proc,
    socket,
    log: () => proc.output(),
    async stop() {
      if (!proc.hasExited) process.kill(proc.pid, "SIGTERM");
      const timer = setTimeout(() => proc.killSync(), 10_000);
      const { code } = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface LvsadmResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Runs the real lvsadm CLI against `socket` (no printing). */
export function lvsadmRaw(socket: string, args: readonly string[], input = ""): Promise<LvsadmResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["--import", TSX_LOADER, LVSADM_CLI, ...args],
      {
        env: { ...process.env, LVS_WASM_SOCKET: socket },
        timeout: 30_000,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        if (code === null) reject(new Error(`lvsadm ${args.join(" ")}: ${error?.message ?? "killed"}`));
        else resolve({ stdout, stderr, code });
      },
    );
    child.stdin?.end(input);
  });
}

/**
 * Runs lvsadm, printing `[director]# lvsadm ARGS` and its output; throws when it fails
 * (unless `allowFailure`).
 */
export async function lvsadm(
  socket: string,
  log: DemoLog,
  args: readonly string[],
  options: { allowFailure?: boolean; host?: string } = {},
): Promise<LvsadmResult> {
  log(`[${options.host ?? "director"}]# lvsadm ${args.join(" ")}`);
  const r = await lvsadmRaw(socket, args);
  if (r.stdout) printOutput(log, r.stdout);
  if (r.stderr) printOutput(log, r.stderr);
  if (r.code !== 0 && !options.allowFailure) throw new Error(`lvsadm ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r;
}

/** Polls `check` every 20 ms until it returns true; throws `what` after timeoutMs. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Section 5 of every walkthrough: four `curl http://VIP/` from the client, printed, and the
 * round-robin order RS2, RS1, RS2, RS1 required, as a real director answers: RS2 was added
 * last, and the kernel puts a new destination at the head of its list (the demo fails
 * loudly otherwise).
 */
export async function fourRequests(lab: Lab, vip: string, log: DemoLog): Promise<void> {
  section(log, "5. Four requests from the client");
  const answers: string[] = [];
  for (let i = 0; i < 4; i++) {
    log(`[client]# curl http://${vip}/`);
    const r = await curl(lab, "client", httpUrl(vip), { timeoutMs: 5000 });
    const body = r.body.trim();
    answers.push(body);
    log(`   ${body}    (HTTP ${r.status} from ${r.remote})`);
  }
  const expected = ["RS2", "RS1", "RS2", "RS1"];
  if (answers.join(",") !== expected.join(",")) {
    throw new Error(`expected the answers ${expected.join(", ")} (round robin), got ${answers.join(", ")}`);
  }
  log("Round robin: RS2, RS1, RS2, RS1 (the newest destination is at the head of the list, as in the kernel).");
}

/**
 * Waits until lvsd's log, from character `from` on, matches `pattern`; returns the match.
 * Fails early (with the log) if lvsd exits.
 */
export async function waitForLvsdLog(daemon: RunningLvsd, pattern: RegExp, from = 0, timeoutMs = 5000): Promise<RegExpMatchArray> {
  let match: RegExpMatchArray | null = null;
  await waitFor(
    `lvsd to log ${String(pattern)}`,
    () => {
      if (daemon.process.hasExited) throw new Error(`lvsd exited:\n${daemon.log()}`);
      match = daemon.log().slice(from).match(pattern);
      return match !== null;
    },
    timeoutMs,
  );
  return match!;
}

/** Sends lvsd SIGUSR1 and returns the counters line it logs ("packets received ..."). */
export async function lvsdCounters(daemon: RunningLvsd, timeoutMs = 5000): Promise<string> {
  const from = daemon.log().length;
  process.kill(daemon.process.pid, "SIGUSR1");
  const m = await waitForLvsdLog(daemon, /^lvsd: (packets received .*)$/m, from, timeoutMs);
  return m[1];
}

/** A service's counters from `lvsadm -Ln --stats --exact` output: the first service line. */
export function serviceStats(listing: string): { conns: number; inpkts: number; outpkts: number; inbytes: number; outbytes: number } {
  const line = listing.split("\n").find((l) => /^(TCP|UDP|SCTP|FWM)\s/.test(l));
  if (!line) throw new Error(`no service line in:\n${listing}`);
  const [conns, inpkts, outpkts, inbytes, outbytes] = line.trim().split(/\s+/).slice(2).map(Number);
  return { conns, inpkts, outpkts, inbytes, outbytes };
}
