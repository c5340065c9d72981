// A tunnelling (LVS-TUN, ipvsadm -i) director over a TUN device, in-process: lvsd
// (lvsd.ts) without the control socket, configured by ipvsadm-syntax lines. The kernel
// routes packets for the VIPs into the device (the VIP is routed, not assigned: the kernel
// never answers them itself), the datapath puts an outer header in front (IP-in-IP, GUE or
// GRE) from the director's address on the real servers' segment to the chosen real server,
// and the packet written back into the device is routed by the kernel to that server. The
// real servers decapsulate (kernel tunl0 / fou, or src/runtime/rs-agent.ts) and answer the
// clients directly: replies never reach the balancer.
//
// The same as `lvsd --tun lvs0 --tunnel-source4 ADDR [--tunnel-mtu N]` plus the host
// set-up below (tunHostCommands), which an operator types for lvsd (docs/tun-mode.md).

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Balancer, BalancerOptions } from "../balancer/balancer.js";
import type { CommandResult } from "../admin/execute.js";
import type { TunDevice } from "../io/tun.js";
import { tunDeviceOf } from "../io/tun-uring.js";
import type { Director } from "./director.js";
import { runIpvsadm } from "./dr-director.js";
import { Lvsd } from "./lvsd.js";

const run = promisify(execFile);

export interface TunDirectorOptions {
  readonly netns?: string;
  /** TUN device name. Default "lvs0". */
  readonly device?: string;
  /** Virtual IPv4 addresses routed into the device. */
  readonly vips: readonly string[];
  /** Outer source address (the director's address on the real servers' segment). */
  readonly tunnelSource4: string;
  /** Egress MTU toward the real servers: DF packets that no longer fit get ICMP fragmentation-needed. Default 1500. */
  readonly tunnelMtu?: number;
  readonly balancer?: Omit<BalancerOptions, "director">;
  /** Director batch size. Default 64. */
  readonly batch?: number;
  /** lvsd's event lines. Default: none. */
  readonly log?: (line: string) => void;
  /** Move the device's packets through io_uring (lvsd --io-uring). Default false. */
  readonly ioUring?: boolean;
}

export interface TunDirector {
  readonly balancer: Balancer;
  readonly director: Director;
  readonly daemon: Lvsd;
  /** The TUN device (with ioUring, the one the io_uring adapter moves packets for). */
  readonly device: TunDevice;
  ipvsadm(line: string): CommandResult;
  stop(): Promise<void>;
}

/**
 * The host set-up of a TUN-mode director, as commands (`[program, ...args]`): forwarding
 * on, no reverse-path filter on the device, accept_local (the encapsulated packets enter
 * the kernel from the device with a source address the director owns), and a /32 route per
 * VIP into the device. Run after the device exists (lvsd creates it unless it is persistent).
 */
export function tunHostCommands(device: string, vips: readonly string[]): string[][] {
  return [
    ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
    ["sysctl", "-qw", `net.ipv4.conf.${device}.rp_filter=0`],
    ["sysctl", "-qw", "net.ipv4.conf.all.accept_local=1"],
    ...vips.map((vip) => ["ip", "route", "replace", `${vip}/32`, "dev", device]),
  ];
}

/** Runs tunHostCommands (inside `netns` when given). */
export async function prepareTunHost(netns: string | undefined, device: string, vips: readonly string[]): Promise<void> {
  for (const [cmd, ...args] of tunHostCommands(device, vips)) {
    const [file, argv] = netns ? ["ip", ["netns", "exec", netns, cmd, ...args]] : [cmd, args];
    await run(file, argv, { timeout: 10_000 });
  }
}

/** Starts lvsd's TUN-mode director in this process (no control socket) and prepares the host. */
export async function startTunDirector(options: TunDirectorOptions): Promise<TunDirector> {
  const netns = options.netns;
  const daemon = await Lvsd.start({
    adapters: [{ kind: "tun", name: options.device ?? "lvs0", ...(netns ? { netns } : {}), ...(options.ioUring ? { ioUring: true } : {}) }],
    socketPath: false,
    batch: options.batch ?? 64,
    balancer: { ...options.balancer, director: { tunnelSource4: options.tunnelSource4, tunnelMtu: options.tunnelMtu ?? 1500 } },
    log: options.log ?? (() => {}),
  });
  try {
    await prepareTunHost(netns, daemon.io[0].name, options.vips);
  } catch (e) {
    await daemon.stop();
    throw e;
  }
  return {
    balancer: daemon.balancer,
    director: daemon.director,
    daemon,
    device: tunDeviceOf(daemon.io[0])!,
    ipvsadm: (line) => runIpvsadm(daemon.balancer, line),
    stop: () => daemon.stop(), // the device and its routes go with the last fd
  };
}
