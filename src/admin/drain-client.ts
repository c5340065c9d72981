// The client side of `lvsadm drain` / `lvsadm undrain` (lvsd's verbs, not ipvsadm's): sends
// the verb over the control socket and, with --wait, polls `drain --status` until nothing
// has been forwarded for the idle window. lvsd answers; this file only asks and waits.

import { sendCommand } from "./control-client.js";

/** The fields of lvsd's drain status that the client reads (lvsd sends them with --json). */
interface DrainReply {
  readonly draining: boolean;
  readonly quietMs: number;
  readonly connections: number;
}

export interface DrainClientIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Milliseconds between status polls; default 200. */
  readonly pollMs?: number;
}

const USAGE = "usage: lvsadm drain [--status | --wait [--idle SECONDS] [--timeout SECONDS]] | lvsadm undrain\n";

/** Runs `lvsadm drain|undrain ARGS`; returns the exit status (0 ok / idle, 1 timed out, 2 error). */
export async function drainMain(socket: string, args: readonly string[], io: DrainClientIo): Promise<number> {
  const [verb, ...rest] = args;
  let wait = false;
  let idleS = 2;
  let timeoutS = 60;
  const passThrough: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const seconds = (name: string): number => {
      const v = Number(rest[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} needs a positive number of seconds`);
      return v;
    };
    if (verb === "drain" && a === "--wait") wait = true;
    else if (verb === "drain" && a === "--idle") idleS = seconds(a);
    else if (verb === "drain" && a === "--timeout") timeoutS = seconds(a);
    else if (verb === "drain" && a === "--status") passThrough.push(a);
    else {
      io.err(USAGE);
      return 2;
    }
  }
  if (passThrough.length > 0 && wait) {
    io.err(USAGE);
    return 2;
  }
  const first = await sendCommand(socket, [verb, ...passThrough]);
  io.out(first.stdout);
  io.err(first.stderr);
  if (first.exitCode !== 0 || !wait) return first.exitCode;

  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const reply = await sendCommand(socket, ["drain", "--status"], "", 10_000, true);
    if (reply.exitCode !== 0) {
      io.err(reply.stderr);
      return reply.exitCode;
    }
    const status = JSON.parse(reply.stdout) as DrainReply;
    if (status.quietMs >= idleS * 1000) {
      io.out(`idle: nothing forwarded for ${(status.quietMs / 1000).toFixed(1)} s; ${status.connections} connection entries left to expire\n`);
      return 0;
    }
    if (Date.now() >= deadline) {
      io.err(`lvsadm: drain: still forwarding after ${timeoutS} s (last packet ${(status.quietMs / 1000).toFixed(1)} s ago)\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, io.pollMs ?? 200));
  }
}
