// A minimal namespace lab for the adapter tests: unique namespace names, veth pairs made
// inside the namespaces (so interface names never clash with the host's), commands run in
// a namespace, and a teardown that kills what was started and deletes every namespace,
// also when the test fails or the process exits early.

import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";

let counter = 0;
const liveLabs = new Set<IoLab>();
let exitHookInstalled = false;

export class IoLab {
  readonly id: string;
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];

  constructor() {
    this.id = `lvsio-${process.pid}-${counter++}`;
    liveLabs.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const lab of liveLabs) lab.destroy();
      });
    }
  }

  /** Creates namespace `<id>-<short>` with lo up; returns its name. */
  ns(short: string): string {
    const name = `${this.id}-${short}`;
    this.namespaces.push(name); // registered before it exists: teardown tolerates absence
    run("ip", ["netns", "add", name]);
    run("ip", ["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** `ip -n ns ...args` */
  ip(ns: string, ...args: string[]): string {
    return run("ip", ["-n", ns, ...args]);
  }

  /** Runs a command inside ns synchronously and returns its stdout. */
  sh(ns: string, file: string, ...args: string[]): string {
    return run("ip", ["netns", "exec", ns, file, ...args]);
  }

  /** sysctl -w inside ns. */
  sysctl(ns: string, ...settings: string[]): void {
    this.sh(ns, "sysctl", "-q", "-w", ...settings);
  }

  /** A veth pair: ifA (address addrA, e.g. "10.0.0.1/24") in nsA, ifB in nsB; both up. */
  veth(nsA: string, ifA: string, addrA: string | null, nsB: string, ifB: string, addrB: string | null): void {
    this.ip(nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB);
    if (addrA) this.ip(nsA, "addr", "add", addrA, "dev", ifA);
    if (addrB) this.ip(nsB, "addr", "add", addrB, "dev", ifB);
    this.ip(nsA, "link", "set", ifA, "up");
    this.ip(nsB, "link", "set", ifB, "up");
  }

  /** Runs a command inside ns; resolves with stdout (rejects on failure or timeout). */
  exec(ns: string, file: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile("ip", ["netns", "exec", ns, file, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(" ")} in ${ns} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /**
   * Starts a long-running command inside ns and resolves once it printed `readyLine` on
   * stdout; it is killed at teardown. Further stdout lines go to `lines`.
   */
  start(ns: string, file: string, args: string[], readyLine = "ready", timeoutMs = 10_000): Promise<{ child: ChildProcess; lines: string[] }> {
    const child = spawn("ip", ["netns", "exec", ns, file, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    const lines: string[] = [];
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file} in ${ns} not ready after ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      let buffered = "";
      let ready = false;
      child.stdout!.on("data", (d) => {
        buffered += d;
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!ready && line.trim() === readyLine) {
            ready = true;
            clearTimeout(timer);
            resolve({ child, lines });
          } else {
            lines.push(line);
          }
        }
      });
      child.on("exit", (code) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(`${file} in ${ns} exited (${code}) before ready: ${stderr}`));
        }
      });
    });
  }

  /** Kills children and deletes every namespace; safe to call twice. */
  destroy(): void {
    for (const c of this.children.splice(0)) {
      try {
        c.kill("SIGKILL");
      } catch {
        /* gone */
      }
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        /* never created, or already gone */
      }
    }
    liveLabs.delete(this);
  }
}

/** Runs fn with a fresh lab, destroyed in `finally`. */
export async function withLab<T>(fn: (lab: IoLab) => Promise<T>): Promise<T> {
  const lab = new IoLab();
  try {
    return await fn(lab);
  } finally {
    lab.destroy();
  }
}

function run(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(" ")} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/**
 * A veth pair for an adapter test: ns a is our side (a0, no address: its kernel stays out),
 * ns p the peer (p0, `peerAddress`, e.g. "10.220.0.2/24"), IPv6 off in both.
 */
export function vethPair(lab: IoLab, peerAddress: string): { a: string; p: string; peerMac: string } {
  const a = lab.ns("a");
  const p = lab.ns("p");
  for (const ns of [a, p]) lab.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
  lab.veth(a, "a0", null, p, "p0", peerAddress);
  const peerMac = lab.sh(p, "cat", "/sys/class/net/p0/address").trim();
  return { a, p, peerMac };
}

/** Sends the frames scapy builds from `expressions` (e.g. "Ether()/IP()/UDP()") out of `iface` in `ns`. */
export function scapySend(lab: IoLab, ns: string, iface: string, expressions: string[], timeoutMs = 30_000): Promise<string> {
  const program = [
    "import sys, json, logging",
    "logging.getLogger('scapy.runtime').setLevel(logging.ERROR)",
    "from scapy.all import *",
    "frames = [eval(e) for e in json.loads(sys.argv[1])]",
    `sendp(frames, iface='${iface}', verbose=0)`,
  ].join("\n");
  return lab.exec(ns, "/usr/bin/python3", ["-c", program, JSON.stringify(expressions)], timeoutMs);
}

/** Waits until cond() is true or timeoutMs passes (polling every few ms); returns cond(). */
export async function until(cond: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}

/** IPv4 header checksum of 20 bytes at `at`. */
export function ipv4Checksum(b: Uint8Array, at = 0, length = 20): number {
  let sum = 0;
  for (let i = 0; i < length; i += 2) sum += (b[at + i] << 8) | b[at + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4/UDP packet with a correct IP checksum and UDP checksum 0 (none). */
export function udp4(src: string, sport: number, dst: string, dport: number, payload: Uint8Array, ttl = 64): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = ttl;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  v.setUint16(10, ipv4Checksum(p));
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}
