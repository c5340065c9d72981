// A direct-routing (LVS-DR, ipvsadm -g) director over AF_PACKET: frames for the VIPs are
// tapped on the client-facing interface, the datapath rewrites only the MACs (destination:
// the chosen real server's, from the neighbour table; source: ours on the server side) and
// the frames leave by the server-facing interface (the same one on a one-armed director).
// The real servers answer the clients directly: replies never reach the balancer.
//
// Keeping the director's own kernel out (docs/tun-mode.md, "DR director"): the AF_PACKET
// tap sees a frame before the tc ingress hook does, so a cls_bpf direct-action filter on
// the client-facing interface that drops IPv4 packets to the VIPs hides them from the
// kernel's stack (no RST from a kernel that owns the VIP, no second copy forwarded by a
// kernel that routes it) without hiding them from us.
//
// Neighbours: the server-facing socket receives ARP only (a socket filter), which the
// ArpResponder learns real servers' MACs from; unknown next hops are probed (and the
// kernel's neighbour table is read as well). On the client side the ArpResponder answers
// "who has VIP" when the kernel does not own the VIP.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Balancer, type BalancerOptions } from "../balancer/balancer.js";
import { AfPacketSocket } from "../io/af-packet.js";
import { ArpResponder } from "../io/arp-responder.js";
import { KernelNeighbours } from "../io/neighbours.js";
import { check, libc, AF_INET, SOCK_DGRAM, SOCK_CLOEXEC, ifreq } from "../io/libc.js";
import { withNetns } from "../io/netns.js";
import { parseCommand } from "../admin/command.js";
import { executeCommand, type CommandResult } from "../admin/execute.js";
import { Director, type PassHook } from "./director.js";
import { attachFilter, etherTypeOnly, tcBytecode, tcDropIpv4Destinations } from "./socket-filter.js";

const run = promisify(execFile);

export interface DrDirectorOptions {
  /** Open the sockets (and set up tc) inside this network namespace. */
  readonly netns?: string;
  /** The interface clients' frames for the VIPs arrive on. */
  readonly clientInterface: string;
  /** The interface the real servers are on. Default: clientInterface (one-armed). */
  readonly serverInterface?: string;
  /** The virtual IPv4 addresses: filtered from the kernel, answered in ARP on the client side. */
  readonly vips: readonly string[];
  /**
   * Install the tc ingress drop of VIP traffic on the client interface (default true). Turn
   * it off only when the kernel neither owns nor routes the VIPs by other means.
   */
  readonly isolate?: boolean;
  /** Answer ARP for the VIPs on the client side (default true; harmless when the kernel owns them too). */
  readonly answerArp?: boolean;
  /** Balancer options; `director.mac` is set to the server interface's MAC. */
  readonly balancer?: Omit<BalancerOptions, "director">;
  /** Director batch size. Default 64. */
  readonly batch?: number;
}

export interface DrDirector {
  readonly balancer: Balancer;
  readonly director: Director;
  readonly client: AfPacketSocket;
  readonly server: AfPacketSocket;
  readonly arp: ArpResponder;
  /** Runs one ipvsadm-syntax command ("-A -t 10.0.0.100:80 -s rr") against the balancer. */
  ipvsadm(line: string): CommandResult;
  /** Probes `addresses` by ARP on the server side until each is known (or throws after timeoutMs). */
  resolveNeighbours(addresses: readonly string[], timeoutMs?: number): Promise<void>;
  /** Stops the loop, removes the tc filter and closes the sockets. Idempotent. */
  stop(): Promise<void>;
}

/** Runs `ip netns exec NS cmd ...` (or cmd directly without a namespace). */
async function inNetns(netns: string | undefined, cmd: string, args: readonly string[]): Promise<string> {
  const [file, argv] = netns ? ["ip", ["netns", "exec", netns, cmd, ...args]] : [cmd, [...args]];
  const { stdout } = await run(file, argv, { timeout: 10_000 });
  return stdout;
}

/** Splits a command line on blanks (ipvsadm arguments never need quoting). */
function words(line: string): string[] {
  return line.trim().split(/\s+/).filter((w) => w.length > 0);
}

/** Runs one ipvsadm-syntax command line against a balancer, as lvsadm would. */
export function runIpvsadm(balancer: Balancer, line: string): CommandResult {
  const cmd = parseCommand(words(line), { program: "lvsadm" });
  return executeCommand({ balancer, now: () => Math.floor(performance.now()), program: "lvsadm" }, cmd);
}

/**
 * Installs (or replaces) a tc clsact ingress filter on `device` that drops IPv4 packets to
 * `vips` after the AF_PACKET taps have seen them. Returns the undo.
 */
export async function isolateVips(netns: string | undefined, device: string, vips: readonly string[]): Promise<() => Promise<void>> {
  await inNetns(netns, "tc", ["qdisc", "replace", "dev", device, "clsact"]);
  await inNetns(netns, "tc", ["filter", "replace", "dev", device, "ingress", "pref", "49", "handle", "1", "protocol", "ip",
    "bpf", "bytecode", tcBytecode(tcDropIpv4Destinations(vips)), "direct-action"]);
  return async () => {
    await inNetns(netns, "tc", ["qdisc", "del", "dev", device, "clsact"]).catch(() => "");
  };
}

/**
 * Turns off transmit checksum offload (and with it TSO/GSO) on a veth, via the ethtool ioctl
 * (no ethtool binary needed). Lab clients need it when an AF_PACKET director relays their
 * frames unchanged: a local socket's frames cross a veth with a partial checksum that a real
 * NIC would have completed, and the real server would drop them.
 */
export function disableTxChecksumOffload(netns: string | undefined, device: string): void {
  const c = libc();
  withNetns(netns, () => {
    const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "opening a socket for SIOCETHTOOL");
    try {
      const value = Buffer.alloc(8);
      value.writeUInt32LE(0x17, 0); // ETHTOOL_STXCSUM
      value.writeUInt32LE(0, 4);
      const req = ifreq(device);
      req.writeBigUInt64LE(c.address(value), 16);
      check(c.ioctl(fd, 0x8946 /* SIOCETHTOOL */, c.address(req)), `turning off tx checksum offload on ${device}`);
    } finally {
      c.close(fd);
    }
  });
}

/** Opens the sockets, installs the isolation and starts the director loop. */
export async function startDrDirector(options: DrDirectorOptions): Promise<DrDirector> {
  const netns = options.netns;
  const clientIf = options.clientInterface;
  const serverIf = options.serverInterface ?? clientIf;
  const oneArmed = serverIf === clientIf;
  const undo: Array<() => Promise<void> | void> = [];
  try {
    const client = AfPacketSocket.open({ interface: clientIf, netns });
    undo.push(() => client.close());
    let server = client;
    if (!oneArmed) {
      server = AfPacketSocket.open({ interface: serverIf, netns, receiveBuffer: 1 << 20 });
      undo.push(() => server.close());
      // Real servers' replies cross this interface toward their gateway: not our business.
      attachFilter(server.fd, etherTypeOnly(0x0806), `AF_PACKET ${serverIf}`);
    }
    const balancer = new Balancer({ ...options.balancer, director: { mac: server.mac } });
    const serverArp = new ArpResponder({ balancer, vips: [], io: server });
    const clientArp = oneArmed ? serverArp : new ArpResponder({ balancer, vips: options.answerArp === false ? [] : options.vips, io: client });
    const arp = oneArmed ? new ArpResponder({ balancer, vips: options.answerArp === false ? [] : options.vips, io: server }) : serverArp;
    const kernel = new KernelNeighbours({ balancer, netns, device: serverIf, prober: arp });
    await kernel.start();
    undo.push(() => kernel.stop());
    const pass: PassHook = oneArmed ? arp.hook : (packet, from, slot) => (from === client ? clientArp.hook : serverArp.hook)(packet, from, slot);
    const director = new Director({
      balancer,
      io: oneArmed ? [client] : [client, server],
      // Every forwarded frame goes to a real server: out of the server-facing interface.
      routes: oneArmed ? [] : [{ prefix: "0.0.0.0/0", io: server }, { prefix: "::/0", io: server }],
      batch: Math.min(options.batch ?? 64, balancer.slots.count),
      pass,
      neighbours: kernel,
    });
    if (options.isolate !== false && options.vips.length > 0) undo.push(await isolateVips(netns, clientIf, options.vips));
    const loop = director.start();
    let stopped = false;
    return {
      balancer, director, client, server, arp,
      ipvsadm: (line) => runIpvsadm(balancer, line),
      async resolveNeighbours(addresses, timeoutMs = 5000) {
        const deadline = performance.now() + timeoutMs;
        for (;;) {
          const missing = addresses.filter((a) => !arp.learned.has(a) && !kernel.known.has(a));
          if (missing.length === 0) return;
          if (performance.now() > deadline) throw new Error(`no ARP answer from ${missing.join(", ")} on ${serverIf} within ${timeoutMs} ms`);
          for (const a of missing) arp.resolve(a, 4);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await director.stop();
        await loop;
        for (const fn of undo.splice(0).reverse()) await fn();
      },
    };
  } catch (e) {
    for (const fn of undo.reverse()) {
      try {
        await fn();
      } catch {
        /* keep undoing */
      }
    }
    throw e;
  }
}
