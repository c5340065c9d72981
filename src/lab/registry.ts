// Teardown that cannot be forgotten. Every namespace a lab will create is registered here
// BEFORE it exists; the registry deletes what is left of every live lab when the process
// exits, on SIGINT / SIGTERM / SIGHUP, and on an uncaught exception or unhandled rejection.
// A run that died too hard for any of that (SIGKILL, OOM) leaves namespaces named
// `lvsw-<pid>-<n>-<host>` behind; `cleanupStaleLabs()` removes those whose pid is dead and
// every `createLab` calls it first.

import { inFlight, trySync } from "./shell.js";

/** Every lab namespace starts with this. */
export const LAB_PREFIX = "lvsw-";

/** What the registry needs from a lab to tear it down without awaiting anything. */
export interface Teardown {
  readonly id: string;
  destroySync(): void;
}

const live = new Set<Teardown>();
let counter = 0;
let installed = false;

/** A fresh lab id for this process: `lvsw-<pid>-<n>`. */
export function nextLabId(): string {
  return `${LAB_PREFIX}${process.pid}-${counter++}`;
}

export function registerLab(lab: Teardown): void {
  installHandlers();
  live.add(lab);
}

export function unregisterLab(lab: Teardown): void {
  live.delete(lab);
}

/** The labs of this process that are not destroyed yet. */
export function liveLabs(): readonly Teardown[] {
  return [...live];
}

/** Tears down every live lab of this process, synchronously. */
export function destroyAllLabsSync(): void {
  for (const child of inFlight) {
    try {
      child.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (const lab of [...live]) {
    try {
      lab.destroySync();
    } catch {
      /* keep going: the next lab still needs its teardown */
    }
    live.delete(lab);
  }
}

const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on("exit", destroyAllLabsSync);
  // The monitor runs before node's default crash, without changing that the process dies.
  process.on("uncaughtExceptionMonitor", destroyAllLabsSync);
  for (const signal of SIGNALS) {
    const handler = () => {
      destroyAllLabsSync();
      process.removeListener(signal, handler);
      // If nobody else listens, die of the signal as we would have without us.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

/** Lab namespaces present on the machine (`ip netns list`), by name. */
export function listLabNamespaces(): string[] {
  const out = trySync("ip", ["netns", "list"]) ?? "";
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name.startsWith(LAB_PREFIX));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid encoded in a lab namespace name, or null if the name is not a lab's. */
export function ownerPid(namespace: string): number | null {
  const m = /^lvsw-(\d+)-\d+-/.exec(namespace);
  return m ? Number(m[1]) : null;
}

/** Kills every process inside the namespaces, then deletes them (missing ones are fine). */
export function deleteNamespacesSync(namespaces: readonly string[]): void {
  if (namespaces.length === 0) return;
  for (const ns of namespaces) {
    const pids = trySync("ip", ["netns", "pids", ns]) ?? "";
    for (const p of pids.split(/\s+/).filter(Boolean).map(Number)) {
      if (p === process.pid) continue;
      try {
        process.kill(p, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  // One `ip` for all of them; -force keeps going past names that are already gone.
  trySync("ip", ["-force", "-batch", "-"], `${namespaces.map((ns) => `netns del ${ns}`).join("\n")}\n`);
}

export interface CleanupOptions {
  /** Also remove labs whose owner is alive (never this process's live labs). Default false. */
  all?: boolean;
}

/**
 * Removes lab namespaces left behind by runs that died: those whose owner pid is dead (or,
 * with `all`, every lab namespace not owned by a live lab of this process). Returns the
 * names removed.
 */
export function cleanupStaleLabs(options: CleanupOptions = {}): string[] {
  const mine = new Set([...live].map((l) => l.id));
  const stale = listLabNamespaces().filter((ns) => {
    const pid = ownerPid(ns);
    if (pid === null) return options.all === true;
    const id = ns.split("-").slice(0, 3).join("-");
    if (mine.has(id)) return false;
    if (options.all || pid === process.pid) return true; // ours but no live lab: a leftover
    return !pidAlive(pid);
  });
  deleteNamespacesSync(stale);
  return stale;
}
