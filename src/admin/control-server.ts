// The director's control socket: a Unix socket that only its owner (root, for lvsd) may
// use — its directory is 0700 and the socket 0600. Each connection carries one lvsadm
// command line and gets ipvsadm's answer back. A malformed request gets an error answer;
// the server never stops for one.

import { chmodSync, mkdirSync, rmSync, existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { createServer, type Server } from "node:net";
import { parseCommand } from "./command.js";
import { CommandError } from "./errors.js";
import { executeCommand, type CommandResult, type ExecutionContext } from "./execute.js";
import { SYSCTL_SUBCOMMAND, runSysctlCommand } from "./sysctl-command.js";

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

const MAX_REQUEST = 16 * 1024 * 1024;

/** Answers one request ({ argv, stdin, json? }) as ipvsadm would; never throws. */
export function answer(ctx: ExecutionContext, request: unknown, log?: (line: string) => void): CommandResult {
  const r = request as { argv?: unknown; stdin?: unknown; json?: unknown };
  if (!r || !Array.isArray(r.argv) || r.argv.some((a) => typeof a !== "string")) {
    return { stdout: "", stderr: 'lvsd: bad request: expected {"argv": [strings], "stdin": string}\n', exitCode: 2 };
  }
  const argv = r.argv as string[];
  if (argv[0] === SYSCTL_SUBCOMMAND) {
    const result = runSysctlCommand(ctx.balancer, argv.slice(1));
    if (log && argv.length > 1) log(`lvsadm ${argv.join(" ")}: ${result.exitCode === 0 ? "ok" : result.stderr.trim()}`);
    return result;
  }
  try {
    const cmd = parseCommand(argv, { program: ctx.program ?? "lvsadm" });
    const result = executeCommand(ctx, cmd, typeof r.stdin === "string" ? r.stdin : "", { json: r.json === true });
    if (log && cmd.kind !== "list" && cmd.kind !== "save") {
      log(`lvsadm ${argv.join(" ")}: ${result.exitCode === 0 ? "ok" : result.stderr.trim()}`);
    }
    return result;
  } catch (e) {
    if (e instanceof CommandError) return { stdout: "", stderr: e.stderr, exitCode: e.exitCode };
    const message = e instanceof Error ? e.message : String(e);
    log?.(`lvsadm ${argv.join(" ")}: internal error: ${message}`);
    return { stdout: "", stderr: `lvsd: internal error: ${message}\n`, exitCode: 2 };
  }
}

/** What answers a control request: the executor in-process, or a relay to a worker. */
export type ControlHandler = (request: unknown) => CommandResult | Promise<CommandResult>;

/** Listens on `path` (replacing a stale socket) and answers every request with `ctx`. */
export function serveControl(path: string, ctx: ExecutionContext, log?: (line: string) => void): Promise<ControlServer> {
  return serveControlWith(path, (request) => answer(ctx, request, log));
}

/**
 * Listens on `path` with any handler. Root only: a directory we create is 0700 and the
 * socket 0600 (connecting needs write permission on it); an existing shared sticky
 * directory such as /tmp is left as it is.
 */
export function serveControlWith(path: string, handler: ControlHandler): Promise<ControlServer> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o1000) === 0) chmodSync(dir, 0o700);
  if (existsSync(path)) rmSync(path);
  // allowHalfOpen: the client half-closes after its request; the answer comes back later.
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    let data = "";
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      data += chunk;
      if (data.length > MAX_REQUEST) {
        sock.end(JSON.stringify({ stdout: "", stderr: "lvsd: request too large\n", exitCode: 2 }));
        sock.destroy();
      }
    });
    sock.on("end", () => {
      let request: unknown;
      try {
        request = JSON.parse(data);
      } catch {
        request = undefined;
      }
      void Promise.resolve(handler(request)).then(
        (r) => sock.end(JSON.stringify(r)),
        (e: unknown) => sock.end(JSON.stringify({ stdout: "", stderr: `lvsd: ${e instanceof Error ? e.message : String(e)}\n`, exitCode: 2 })),
      );
    });
    sock.on("error", () => sock.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      resolve({
        path,
        close: () =>
          new Promise<void>((done) =>
            server.close(() => {
              if (existsSync(path)) rmSync(path);
              done();
            }),
          ),
      });
    });
  });
}
