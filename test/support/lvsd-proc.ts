// Real lvsd processes for the operations tests: each in the root namespace with its TUN
// device in a network namespace of its own (`lvsw-<pid>-<n>-ops`, torn down with every
// process started here even when the test runner dies), and the real lvsadm CLI run
// through a shell, so that pipes, broken pipes and exit statuses are the shell's.

import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nextLabId, registerLab, deleteNamespacesSync } from "../../src/lab/registry.js";
import { spawnTracked, type LabProcess } from "../../src/lab/shell.js";
import { LVSADM_CLI, LVSD_CLI, TSX_LOADER } from "../../src/demo/support.js";

export interface LvsdProcess {
  readonly process: LabProcess;
  readonly socket: string;
  /** Everything it logged so far. */
  log(): string;
  /** SIGTERM, then waits; the exit status. */
  stop(): Promise<number | null>;
}

export interface OpsHost {
  /** A scratch directory (removed at teardown). */
  readonly dir: string;
  /** The network namespace lvsd's TUN devices go in (made by the first startLvsd). */
  readonly netns: string;
  /** A shell script that runs the real lvsadm: use it as a command in shell lines. */
  readonly lvsadm: string;
  /** Starts lvsd (TUN device `tunName` in this host's namespace) and waits for "ready". */
  startLvsd(args?: readonly string[], options?: { socket?: string; tunName?: string; expectReady?: boolean }): Promise<LvsdProcess>;
  /** Spawns lvsd without waiting (for refusals). */
  spawnLvsd(args: readonly string[]): LabProcess;
  /** Runs `bash -c line` with LVS_WASM_SOCKET=socket. */
  sh(line: string, socket?: string, timeoutMs?: number): Promise<{ stdout: string; stderr: string; code: number }>;
  destroy(): Promise<void>;
}

let tunCounter = 0;

/** A namespace for lvsd's TUN devices plus a scratch directory; everything goes at destroy(). */
export function createOpsHost(): OpsHost {
  const id = nextLabId();
  const ns = `${id}-ops`;
  const dir = mkdtempSync(join(tmpdir(), "lvs-ops-"));
  const procs: LabProcess[] = [];
  const teardown = {
    id,
    destroySync() {
      for (const p of procs) p.killSync();
      deleteNamespacesSync([ns]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  registerLab(teardown);
  let made: Promise<void> | null = null;
  const namespace = () => (made ??= new Promise<void>((resolve, reject) => execFile("ip", ["netns", "add", ns], (e) => (e ? reject(e) : resolve()))));
  const lvsadm = join(dir, "lvsadm");
  writeFileSync(lvsadm, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(TSX_LOADER)} ${JSON.stringify(LVSADM_CLI)} "$@"\n`);
  chmodSync(lvsadm, 0o755);
  const spawnLvsd = (args: readonly string[]) => {
    // One data-plane worker (lvsd's default is one per core): these tests are about one director.
    const p = spawnTracked(process.execPath, ["--import", TSX_LOADER, LVSD_CLI, ...args, ...(args.includes("--workers") ? [] : ["--workers", "1"])]);
    procs.push(p);
    return p;
  };
  return {
    dir,
    netns: ns,
    lvsadm,
    spawnLvsd,
    async startLvsd(args = [], options = {}) {
      await namespace();
      const socket = options.socket ?? join(mkdtempSync(join(dir, "run-")), "lvsd.sock");
      const tun = options.tunName ?? `lvsops${tunCounter++}`;
      const proc = spawnLvsd(["--tun", tun, "--netns", ns, "--socket", socket, "--no-huge-pages", ...args]);
      if (options.expectReady !== false) {
        try {
          await proc.waitForOutput(/^lvsd: ready$/m, 120_000);
        } catch (e) {
          await proc.stop("SIGKILL");
          throw e;
        }
      }
      return {
        process: proc,
        socket,
        log: () => proc.output(),
        async stop() {
          if (!proc.hasExited) process.kill(proc.pid, "SIGTERM");
          const timer = setTimeout(() => proc.killSync(), 20_000);
          const { code } = await proc.exited;
          clearTimeout(timer);
          return code;
        },
      };
    },
    sh(line, socket, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        execFile(
          "bash",
          ["-c", line],
          { env: { ...process.env, LVS_WASM_SOCKET: socket ?? "", LVSADM: lvsadm }, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
            if (code === null) reject(new Error(`bash -c ${line}: ${error?.message ?? "killed"}\n${stderr}`));
            else resolve({ stdout, stderr, code });
          },
        );
      });
    },
    async destroy() {
      await Promise.all(procs.map((p) => (p.hasExited ? Promise.resolve() : p.stop("SIGKILL"))));
      teardown.destroySync();
    },
  };
}

/** A rules text of `services` TCP services with `perService` NAT destinations each. */
export function bigRules(services: number, perService: number): string {
  const lines: string[] = [];
  for (let i = 0; i < services; i++) {
    const vip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    lines.push(`-A -t ${vip}:80 -s wlc`);
    for (let j = 1; j <= perService; j++) lines.push(`-a -t ${vip}:80 -r 192.168.${j >> 8}.${j & 255}:8080 -m -w 1`);
  }
  return `${lines.join("\n")}\n`;
}
