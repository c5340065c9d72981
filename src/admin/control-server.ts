// The director's control socket: a Unix socket that only its owner (root, for lvsd) may
// use — its directory is 0700 and the socket 0600. Each connection carries one lvsadm
// command line and gets ipvsadm's answer back. A malformed request gets an error answer;
// the server never stops for one.

import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { createServer, type Server, type Socket } from "node:net";
import { parseCommand } from "./command.js";
import { CommandError } from "./errors.js";
import { executeCommand, type CommandResult, type ExecutionContext } from "./execute.js";
import { SYSCTL_SUBCOMMAND, runSysctlCommand } from "./sysctl-command.js";
import { checkSocketPathLength, claimSocketPath } from "./socket-claim.js";

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Largest request: a 50,000-service, 200,000-destination restore is about 12 MiB. */
const MAX_REQUEST = 64 * 1024 * 1024;

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

/** Limits of the control socket (lvsd sets them from its flags). */
export interface ControlServerOptions {
  /** Where refusals are logged (one line each, at most one a second per kind). */
  readonly log?: (line: string) => void;
  /** A connection that sends nothing for this long is closed. Default 10,000 ms. */
  readonly idleTimeoutMs?: number;
  /** Connections open at once; one more gets a one-line refusal. Default 64. */
  readonly maxConnections?: number;
}

export const DEFAULT_CONTROL_IDLE_MS = 10_000;
export const DEFAULT_CONTROL_CONNECTIONS = 64;

/** Listens on `path` (replacing a stale socket, refusing a live one) and answers every request with `ctx`. */
export function serveControl(path: string, ctx: ExecutionContext, log?: (line: string) => void, options: ControlServerOptions = {}): Promise<ControlServer> {
  return serveControlWith(path, (request) => answer(ctx, request, log), { log, ...options });
}

/** Logs a kind of refusal at most once a second, with the count of those not logged. */
function refusalLog(log: ((line: string) => void) | undefined): (kind: string, line: string) => void {
  const last = new Map<string, { at: number; quiet: number }>();
  return (kind, line) => {
    if (!log) return;
    const now = Date.now();
    const seen = last.get(kind);
    if (seen && now - seen.at < 1000) {
      seen.quiet++;
      return;
    }
    log(seen?.quiet ? `${line} (and ${seen.quiet} more since the last such line)` : line);
    last.set(kind, { at: now, quiet: 0 });
  };
}

/**
 * Listens on `path` with any handler. Root only: a directory we create is 0700 and the
 * socket 0600 (connecting needs write permission on it); an existing shared sticky
 * directory such as /tmp is left as it is. A path where another process answers is
 * refused, naming it (socket-claim.ts). Idle connections are closed and their number is
 * bounded, so a client that connects and sends nothing cannot use up lvsd's descriptors.
 */
export async function serveControlWith(path: string, handler: ControlHandler, options: ControlServerOptions = {}): Promise<ControlServer> {
  checkSocketPathLength(path);
  const idleMs = options.idleTimeoutMs ?? DEFAULT_CONTROL_IDLE_MS;
  const limit = options.maxConnections ?? DEFAULT_CONTROL_CONNECTIONS;
  const refuse = refusalLog(options.log);
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o1000) === 0) chmodSync(dir, 0o700);
  await claimSocketPath(path);
  const sockets = new Set<Socket>();
  // allowHalfOpen: the client half-closes after its request; the answer comes back later.
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    if (sockets.size > limit) {
      refuse("limit", `control: refused a connection: ${limit} already open (raise --control-connections, or find the client that holds them)`);
      sock.end(JSON.stringify({ stdout: "", stderr: `lvsd: busy: ${limit} control connections are open; try again\n`, exitCode: 2 }));
      return;
    }
    let data = "";
    let bytes = 0;
    sock.setEncoding("utf8");
    sock.setTimeout(idleMs, () => {
      refuse("idle", `control: closed a connection idle for ${idleMs} ms without a whole request (--control-idle-ms)`);
      sock.destroy();
    });
    sock.on("data", (chunk: string) => {
      data += chunk;
      bytes += chunk.length;
      if (bytes > MAX_REQUEST) {
        refuse("size", `control: refused a request larger than ${MAX_REQUEST} bytes`);
        sock.end(JSON.stringify({ stdout: "", stderr: `lvsd: request larger than ${MAX_REQUEST} bytes\n`, exitCode: 2 }));
        sock.removeAllListeners("data");
        sock.resume();
        data = "";
      }
    });
    sock.on("end", () => {
      // The request is whole: the time the command takes is not idleness.
      sock.setTimeout(0);
      if (bytes > MAX_REQUEST) return;
      let request: unknown;
      try {
        request = JSON.parse(data);
      } catch {
        request = undefined;
      }
      data = "";
      void Promise.resolve(handler(request)).then(
        (r) => sock.end(JSON.stringify(r)),
        (e: unknown) => sock.end(JSON.stringify({ stdout: "", stderr: `lvsd: ${e instanceof Error ? e.message : String(e)}\n`, exitCode: 2 })),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      resolve({
        path,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => {
              if (existsSync(path)) rmSync(path);
              done();
            });
            // Requests being answered finish; connections that never sent one go now.
            for (const sock of sockets) if (sock.readableEnded === false) sock.destroy();
          }),
      });
    });
  });
}
