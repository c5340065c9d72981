// The early-demux trap (docs/daemon.md, "A VIP this host still has"). When a virtual
// address is, or was until lately, a local address of the director's kernel (HAProxy had
// it before lvsd, say), that kernel keeps TIME_WAIT sockets for it for up to 60 s. Early
// demux (net.ipv4.ip_early_demux, on by default) attaches an incoming packet to a matching
// socket before routing, and the forwarding path then drops every packet that carries a
// socket: new client connections that reuse those ports vanish before lvsd sees them. A
// VIP that is still local is worse: the kernel answers or drops its packets itself.
//
// lvsd checks each new service's address once, off the packet path (`ip` and `ss` in the
// adapters' namespace), and warns once per address and cause, on one line naming the fix.

import { execFile } from "node:child_process";
import type { ServiceKey } from "../config/types.js";

export interface VipTrapOptions {
  /** The namespace whose kernel sees the traffic (the adapters' --netns); default this one. */
  readonly netns?: string;
  /** Addresses hidden from the kernel by --isolate-vip: being local is intended there. */
  readonly isolated?: readonly string[];
  readonly log: (line: string) => void;
}

/** What the kernel of the namespace holds for an address and port. */
export interface VipFindings {
  readonly local: boolean;
  readonly timeWait: number;
  readonly listening: number;
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args as string[], { encoding: "utf8", timeout: 5000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => resolve(error ? "" : stdout));
  });
}

/** Strips ss's brackets and zone from an IPv6 address ("[fd00::1]" -> "fd00::1"). */
function bare(address: string): string {
  return address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
}

/** What the namespace's kernel holds: its local addresses, and TCP sockets by "address port" and state. */
export interface KernelView {
  readonly local: ReadonlySet<string>;
  readonly timeWait: ReadonlyMap<string, number>;
  readonly listening: ReadonlyMap<string, number>;
}

/** One `ip addr` and one `ss`, whatever the number of services to check. */
export async function inspectKernel(netns?: string): Promise<KernelView> {
  const [addrs, sockets] = await Promise.all([
    run("ip", [...(netns ? ["-n", netns] : []), "-j", "addr", "show"]),
    run("ss", [...(netns ? ["-N", netns] : []), "-Htan"]),
  ]);
  const local = new Set<string>();
  try {
    for (const i of JSON.parse(addrs || "[]") as Array<{ addr_info?: Array<{ local?: string }> }>) {
      for (const a of i.addr_info ?? []) if (a.local) local.add(a.local);
    }
  } catch {
    /* no view of the addresses: no warning about them */
  }
  const timeWait = new Map<string, number>();
  const listening = new Map<string, number>();
  for (const line of sockets.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const at = f[3].lastIndexOf(":");
    const id = `${bare(f[3].slice(0, at))} ${Number(f[3].slice(at + 1))}`;
    const into = f[0] === "TIME-WAIT" ? timeWait : f[0] === "LISTEN" ? listening : null;
    into?.set(id, (into.get(id) ?? 0) + 1);
  }
  return { local, timeWait, listening };
}

/** What the kernel view says about one service address and port. */
export function findingsFor(view: KernelView, address: string, port: number, protocol: string): VipFindings {
  const id = `${address} ${port}`;
  return {
    local: view.local.has(address),
    timeWait: protocol === "tcp" ? (view.timeWait.get(id) ?? 0) : 0,
    listening: protocol === "tcp" ? (view.listening.get(id) ?? 0) : 0,
  };
}

/** The warning line for what was found, or null when nothing stands in lvsd's way. */
export function vipTrapWarning(address: string, port: number, found: VipFindings, netns?: string): string | null {
  const where = netns ? ` (netns ${netns})` : "";
  const causes: string[] = [];
  if (found.local)
    causes.push(
      `${address} is a local address of this host${where}: the kernel takes its packets first; remove it (ip addr del ${address}/... dev IF) or hide it with --isolate-vip`,
    );
  if (found.timeWait > 0) {
    causes.push(
      `${found.timeWait} TIME_WAIT socket${found.timeWait === 1 ? "" : "s"} for ${address}:${port}${where}: early demux ties new connections from reused client ports to them and the forwarding path drops those packets; sysctl -w net.ipv4.ip_early_demux=0, or wait up to 60 s for them to expire`,
    );
  }
  if (found.listening > 0) causes.push(`a process listens on ${address}:${port}${where}: stop it (the kernel would answer in lvsd's place)`);
  return causes.length === 0 ? null : `warning: service ${address}:${port}: ${causes.join("; ")} (docs/daemon.md, "A VIP this host still has")`;
}

/** Checks every new service address once per cause and logs one line for each problem. */
export class VipTrapCheck {
  private readonly warned = new Set<string>();
  private readonly checked = new Set<string>();

  constructor(private readonly options: VipTrapOptions) {}

  /** Checks the services not seen before (fire and forget; the packet loop does not wait). */
  check(keys: readonly ServiceKey[]): Promise<void> {
    const fresh = keys.flatMap((k) => {
      if (k.kind !== "address") return [];
      const id = `${k.protocol} ${k.address} ${k.port}`;
      if (this.checked.has(id) || (this.options.isolated ?? []).includes(k.address)) return [];
      this.checked.add(id);
      return [k];
    });
    if (fresh.length === 0) return Promise.resolve();
    return inspectKernel(this.options.netns).then((view) => {
      for (const k of fresh) {
        const found = findingsFor(view, k.address, k.port, k.protocol);
        // Once per address for "local", once per address and port for sockets.
        const filtered: VipFindings = {
          local: found.local && this.first(`local ${k.address}`),
          timeWait: found.timeWait > 0 && this.first(`tw ${k.address}:${k.port}`) ? found.timeWait : 0,
          listening: found.listening > 0 && this.first(`listen ${k.address}:${k.port}`) ? found.listening : 0,
        };
        const line = vipTrapWarning(k.address, k.port, filtered, this.options.netns);
        if (line) this.options.log(line);
      }
    });
  }

  private first(id: string): boolean {
    if (this.warned.has(id)) return false;
    this.warned.add(id);
    return true;
  }
}
