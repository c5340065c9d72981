// A tunnelling (LVS-TUN, ipvsadm -i) director over a TUN device: the kernel routes packets
// for the VIPs into the device (the VIP is routed, not assigned: the kernel never answers
// them itself), the datapath puts an outer header in front (IP-in-IP, GUE or GRE) from the
// director's address on the real servers' segment to the chosen real server, and the
// packet written back into the device is routed by the kernel to that server. The real
// servers decapsulate (kernel tunl0 / fou, or src/runtime/rs-agent.ts) and answer the
// clients directly: replies never reach the balancer.
//
// Host needs (set up here): ip_forward=1, rp_filter 0 on the device, a /32 route per VIP
// into the device; accept_local=1 when tunnelSource4 is one of the director's own addresses
// (the encapsulated packets enter the kernel from the device with that source).

import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { Balancer, type BalancerOptions } from "../balancer/balancer.js";
import { TunDevice } from "../io/tun.js";
import { withNetns } from "../io/netns.js";
import type { CommandResult } from "../admin/execute.js";
import { Director } from "./director.js";
import { runIpvsadm } from "./dr-director.js";

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
}

export interface TunDirector {
  readonly balancer: Balancer;
  readonly director: Director;
  readonly device: TunDevice;
  ipvsadm(line: string): CommandResult;
  stop(): Promise<void>;
}

function sysctl(netns: string | undefined, key: string, value: string): void {
  withNetns(netns, () => writeFileSync(`/proc/sys/${key.replace(/\./g, "/")}`, value));
}

async function ip(netns: string | undefined, args: readonly string[]): Promise<void> {
  await run("ip", [...(netns ? ["-n", netns] : []), ...args], { timeout: 10_000 });
}

export async function startTunDirector(options: TunDirectorOptions): Promise<TunDirector> {
  const netns = options.netns;
  const device = TunDevice.open({ name: options.device ?? "lvs0", netns });
  try {
    sysctl(netns, "net.ipv4.ip_forward", "1");
    sysctl(netns, `net.ipv4.conf.${device.name}.rp_filter`, "0");
    sysctl(netns, "net.ipv4.conf.all.accept_local", "1");
    for (const vip of options.vips) await ip(netns, ["route", "replace", `${vip}/32`, "dev", device.name]);
    const balancer = new Balancer({
      ...options.balancer,
      director: { tunnelSource4: options.tunnelSource4, tunnelMtu: options.tunnelMtu ?? 1500 },
    });
    const director = new Director({ balancer, io: [device], batch: Math.min(options.batch ?? 64, balancer.slots.count) });
    const loop = director.start();
    let stopped = false;
    return {
      balancer, director, device,
      ipvsadm: (line) => runIpvsadm(balancer, line),
      async stop() {
        if (stopped) return;
        stopped = true;
        await director.stop();
        await loop;
        device.close(); // the device and its routes go with the last fd
      },
    };
  } catch (e) {
    device.close();
    throw e;
  }
}
