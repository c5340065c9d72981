// Running commands on the machine and inside a namespace: synchronous for the build and the
// teardown (a signal handler then always finds the lab between two whole steps), promise
// based for everything a test does inside a lab.

import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";

/** What a finished command left behind. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when the command was killed (then `signal` says by what). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ExecOptions {
  /** Kill the command after this long (default 15 s); the promise then rejects. */
  timeoutMs?: number;
  /** Resolve even when the command exits non-zero (default: reject with its stderr). */
  allowFailure?: boolean;
  /** Written to the command's standard input. */
  input?: string;
}

/** A command failed; the message names it, its status and the end of its stderr. */
export class LabCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
    why: string,
  ) {
    super(`${why}: ${argv.join(" ")}\n${(result.stderr || result.stdout).trim().slice(-2000)}`);
    this.name = "LabCommandError";
  }
}

/** Runs `file args` synchronously; throws LabCommandError on failure. */
export function runSync(file: string, args: readonly string[], input?: string, timeoutMs = 15_000): string {
  try {
    return execFileSync(file, args as string[], {
      input,
      encoding: "utf8",
      timeout: timeoutMs,
      stdio: ["pipe", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number | null; signal?: NodeJS.Signals | null; message: string };
    throw new LabCommandError(
      [file, ...args],
      {
        stdout: err.stdout ?? "",
        stderr: err.stderr ?? err.message,
        code: err.status ?? null,
        signal: err.signal ?? null,
      },
      "command failed",
    );
  }
}

/** Like runSync but never throws: returns null on failure. */
export function trySync(file: string, args: readonly string[], input?: string, timeoutMs = 15_000): string | null {
  try {
    return runSync(file, args, input, timeoutMs);
  } catch {
    return null;
  }
}

/** Children started by `run`, so that a teardown can kill the ones still running. */
export const inFlight = new Set<ChildProcess>();

/** Runs `file args` and resolves with its output. */
export function run(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const argv = [file, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args as string[],
      {
        encoding: "utf8",
        timeout: options.timeoutMs ?? 15_000,
        killSignal: "SIGKILL",
        maxBuffer: 256 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        inFlight.delete(child);
        const e = error as (Error & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals | null }) | null;
        const result: ExecResult = {
          stdout,
          stderr,
          code: e ? (typeof e.code === "number" ? e.code : null) : 0,
          signal: e?.signal ?? null,
        };
        if (e && (e.killed || result.signal !== null) && !options.allowFailure) {
          reject(new LabCommandError(argv, result, `timed out after ${options.timeoutMs ?? 15_000} ms or killed`));
        } else if (e && typeof e.code === "string") {
          reject(new LabCommandError(argv, result, `could not start (${e.code})`));
        } else if (e && !options.allowFailure) {
          reject(new LabCommandError(argv, result, `exit status ${String(result.code)}`));
        } else {
          resolve(result);
        }
      },
    );
    inFlight.add(child);
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** A long-running process started in a namespace. */
export interface LabProcess {
  readonly pid: number;
  readonly argv: readonly string[];
  /** Everything it wrote so far (stdout and stderr interleaved, last 64 KiB). */
  output(): string;
  /** Resolves when it has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once it has exited. */
  readonly hasExited: boolean;
  /** Resolves when its output matches `pattern` (rejects on exit or timeout). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Signals its whole process group (default SIGTERM), then waits up to 2 s, then SIGKILL. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** SIGKILL to its process group, synchronously (used by teardown). */
  killSync(): void;
}

const OUTPUT_LIMIT = 64 * 1024;

/** Spawns `file args` in its own process group and keeps its output. */
export function spawnTracked(file: string, args: readonly string[]): LabProcess {
  const child = spawn(file, args as string[], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const argv = [file, ...args];
  let buffer = "";
  let exitedFlag = false;
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    if (buffer.length > OUTPUT_LIMIT) buffer = buffer.slice(-OUTPUT_LIMIT);
    for (const l of listeners) l();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("error", (err) => {
      buffer += `\n[spawn error] ${err.message}\n`;
      exitedFlag = true;
      for (const l of listeners) l();
      resolve({ code: null, signal: null });
    });
    child.on("exit", (code, signal) => {
      exitedFlag = true;
      for (const l of listeners) l();
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) {
    // spawn failed synchronously enough that there is no pid; the error event follows.
  }
  const pid = child.pid ?? -1;
  const killGroup = (signal: NodeJS.Signals) => {
    if (pid <= 0) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  };
  return {
    pid,
    argv,
    output: () => buffer,
    exited,
    get hasExited() {
      return exitedFlag;
    },
    waitForOutput(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = buffer.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (exitedFlag) {
            done();
            reject(new Error(`${argv.join(" ")} exited before printing ${pattern}:\n${buffer.slice(-2000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${argv.join(" ")} did not print ${pattern} within ${timeoutMs} ms:\n${buffer.slice(-2000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM") {
      if (exitedFlag) return;
      killGroup(signal);
      const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 2000).unref());
      if ((await Promise.race([exited, timer])) === "timeout") {
        killGroup("SIGKILL");
        await exited;
      }
    },
    killSync() {
      if (!exitedFlag) killGroup("SIGKILL");
    },
  };
}
