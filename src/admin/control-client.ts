// The client side of the director's control socket: one JSON request per connection
// ({ argv, stdin }), one JSON answer ({ stdout, stderr, exitCode }).

import { createConnection } from "node:net";
import type { CommandResult } from "./execute.js";

/** Where lvsd listens unless told otherwise (LVS_WASM_SOCKET overrides). */
export function defaultSocketPath(): string {
  return "/run/lvs-wasm/lvsd.sock";
}

export function sendCommand(socketPath: string, argv: readonly string[], stdin = "", timeoutMs = 10_000, json = false): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the director at ${socketPath} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.end(`${JSON.stringify({ argv, stdin, ...(json ? { json: true } : {}) })}\n`));
    sock.on("data", (chunk: string) => (data += chunk));
    sock.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === "ENOENT" || e.code === "ECONNREFUSED" ? `${e.code}: is lvsd running?` : e.message;
      reject(new Error(`cannot reach the lvs-wasm director at ${socketPath} (${why})`));
    });
    sock.on("end", () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(data) as CommandResult;
        resolve(r);
      } catch {
        reject(new Error(`the director at ${socketPath} sent an answer that is not JSON`));
      }
    });
  });
}
