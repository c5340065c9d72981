// A direct-routing (LVS-DR, ipvsadm -g) director over AF_PACKET, in-process: lvsd
// (lvsd.ts) without the control socket, configured by ipvsadm-syntax lines. Frames for the
// VIPs are tapped on the client-facing interface, the datapath rewrites only the MACs
// (destination: the chosen real server's; source: the outgoing interface's) and the frames
// leave by the server-facing interface (the same one on a one-armed director). The real
// servers answer the clients directly: replies never reach the balancer.
//
// The pieces (ARP-only server side, VIP isolation by tc, ARP for the VIPs, per-interface
// source MAC) are the building blocks in ethernet.ts, the same lvsd uses for
//   lvsd --af-packet eth0 --af-packet eth1 --server-side eth1 --isolate-vip VIP
// (docs/daemon.md, docs/tun-mode.md).

import type { Balancer, BalancerOptions } from "../balancer/balancer.js";
import { parseCommand } from "../admin/command.js";
import { executeCommand, type CommandResult } from "../admin/execute.js";
import type { Director } from "./director.js";
import type { AfPacketSocket } from "../io/af-packet.js";
import type { EthernetPort } from "./ethernet.js";
import { Lvsd } from "./lvsd.js";

export { disableTxChecksumOffload, isolateVips, isolateVipsCommands } from "./ethernet.js";

export interface DrDirectorOptions {
  /** Open the sockets (and set up tc) inside this network namespace. */
  readonly netns?: string;
  /** The interface clients' frames for the VIPs arrive on. */
  readonly clientInterface: string;
  /** The interface the real servers are on. Default: clientInterface (one-armed). */
  readonly serverInterface?: string;
  /** The virtual IPv4 addresses hidden from the kernel (tc ingress drop on the client side). */
  readonly vips: readonly string[];
  /**
   * Install the tc ingress drop of VIP traffic on the client interface (default true). Turn
   * it off only when the kernel neither owns nor routes the VIPs by other means.
   */
  readonly isolate?: boolean;
  /** Balancer options; `director.mac` is the server interface's MAC. */
  readonly balancer?: Omit<BalancerOptions, "director">;
  /** Director batch size. Default 64. */
  readonly batch?: number;
  /** lvsd's event lines. Default: none. */
  readonly log?: (line: string) => void;
}

export interface DrDirector {
  readonly balancer: Balancer;
  readonly director: Director;
  readonly daemon: Lvsd;
  readonly client: EthernetPort<AfPacketSocket>;
  readonly server: EthernetPort<AfPacketSocket>;
  /** Runs one ipvsadm-syntax command ("-A -t 10.0.0.100:80 -s rr") against the balancer. */
  ipvsadm(line: string): CommandResult;
  /** Probes `addresses` by ARP on the server side until each is known (or throws after timeoutMs). */
  resolveNeighbours(addresses: readonly string[], timeoutMs?: number): Promise<void>;
  /** Stops the loop, removes the tc filter and closes the sockets. Idempotent. */
  stop(): Promise<void>;
}

/** Splits a command line on blanks (ipvsadm arguments never need quoting). */
function words(line: string): string[] {
  return line
    .trim()
    .split(/\s+/)
    .filter((w) => w.length > 0);
}

/** Runs one ipvsadm-syntax command line against a balancer, as lvsadm would. */
export function runIpvsadm(balancer: Balancer, line: string): CommandResult {
  const cmd = parseCommand(words(line), { program: "lvsadm" });
  return executeCommand({ balancer, now: () => Math.floor(performance.now()), program: "lvsadm" }, cmd);
}

/** Waits until the daemon knows a MAC for each of `addresses` (probing meanwhile). */
export async function waitForNeighbours(daemon: Lvsd, addresses: readonly string[], timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const known = daemon.knownNeighbours();
    const missing = addresses.filter((a) => !known.has(a));
    if (missing.length === 0) return;
    if (performance.now() > deadline) throw new Error(`no ARP answer from ${missing.join(", ")} within ${timeoutMs} ms`);
    for (const a of missing) daemon.arp?.resolve(a, 4, daemon.arp.portFor(a) ?? daemon.ports[daemon.ports.length - 1]);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts lvsd's AF_PACKET director in this process, with no control socket. */
export async function startDrDirector(options: DrDirectorOptions): Promise<DrDirector> {
  const clientIf = options.clientInterface;
  const serverIf = options.serverInterface ?? clientIf;
  const oneArmed = serverIf === clientIf;
  const netns = options.netns;
  const daemon = await Lvsd.start({
    adapters: (oneArmed ? [clientIf] : [clientIf, serverIf]).map((i) => ({ kind: "af-packet" as const, interface: i, ...(netns ? { netns } : {}) })),
    ...(oneArmed ? {} : { serverSide: serverIf }),
    ...(options.isolate !== false && options.vips.length > 0 ? { isolateVips: options.vips } : {}),
    socketPath: false,
    batch: options.batch ?? 64,
    ...(options.balancer ? { balancer: options.balancer } : {}),
    log: options.log ?? (() => {}),
  });
  // Both were opened from af-packet specs above.
  const [client, server = client] = daemon.ports as ReadonlyArray<EthernetPort<AfPacketSocket>>;
  return {
    balancer: daemon.balancer,
    director: daemon.director,
    daemon,
    client,
    server,
    ipvsadm: (line) => {
      const r = runIpvsadm(daemon.balancer, line);
      daemon.probeNeighbours();
      return r;
    },
    resolveNeighbours: (addresses, timeoutMs) => waitForNeighbours(daemon, addresses, timeoutMs),
    stop: () => daemon.stop(),
  };
}
