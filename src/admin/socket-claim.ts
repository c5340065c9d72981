// One director per control socket. Before lvsd listens on a path it checks what is there:
// nothing, a stale socket left by a dead lvsd (nobody accepts: replaced), or a live one
// (somebody accepts: refused, naming the process that holds it). Without this, a second
// lvsd removed the first one's socket file and took the path over; the first one kept
// forwarding but could no longer be reached.

import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { ConfigError } from "../config/types.js";

/** sun_path is 108 bytes on Linux, one of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Refuses a path that cannot be a Unix socket address, before anything is created. */
export function checkSocketPathLength(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ConfigError(
      `control socket ${path}: ${bytes} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} a Unix socket path may have (sun_path); choose a shorter --socket path`,
    );
  }
}

/**
 * Makes `path` free for a new listener: absent, or a stale socket (removed). Throws a
 * ConfigError naming the holder when a live process accepts connections on it.
 */
export async function claimSocketPath(path: string): Promise<void> {
  checkSocketPathLength(path);
  if (!existsSync(path)) return;
  if (await accepts(path)) {
    const pids = socketHolders(path);
    const who = pids.length > 0 ? `process ${pids.join(", ")}${pids.length > 1 ? " hold" : " holds"} it` : "a process in another namespace holds it";
    throw new ConfigError(`control socket ${path} is in use: ${who} (another lvsd?). Stop it first, or give this one another --socket PATH`);
  }
  rmSync(path, { force: true });
}

/** True when something accepts a connection on the Unix socket `path`. */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    const done = (answer: boolean) => {
      sock.destroy();
      resolve(answer);
    };
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
    sock.setTimeout(2000, () => done(true));
  });
}

/**
 * The pids of the processes holding a listening Unix socket bound to `path`: its inode from
 * /proc/net/unix, then every process's descriptors that point at that inode. Best effort
 * (empty when /proc does not tell).
 */
export function socketHolders(path: string): number[] {
  let table: string;
  try {
    table = readFileSync("/proc/net/unix", "utf8");
  } catch {
    return [];
  }
  const inodes = new Set<string>();
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = __SO_ACCEPTCON (listening).
    if (fields.length >= 8 && fields.slice(7).join(" ") === path && (Number.parseInt(fields[3], 16) & 0x10000) !== 0) inodes.add(fields[6]);
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1])) {
        pids.push(Number(entry));
        break;
      }
    }
  }
  return pids;
}
