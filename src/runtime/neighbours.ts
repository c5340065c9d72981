// Next-hop MACs for an Ethernet director from the kernel's neighbour table (`ip -j neigh`,
// IPv4 and IPv6), copied into the balancer (setNeighbour) at start and every refreshMs.
//
// When the datapath reports NeedsNeighbour, the director drops the packet (the sender's
// retransmission finds the MAC; queueing would hold slots the next batch needs) and calls
// resolve(): a refresh of the kernel table soon after, and, when a prober is given (an
// ArpResponder), one ARP request of our own. Chain both with `neighbours: kernel` and
// `prober: arp`.

import { execFile } from "node:child_process";
import type { Balancer } from "../balancer/balancer.js";
import type { NeighbourResolver } from "./director.js";
import type { PacketIO } from "../io/packet-io.js";

export interface KernelNeighboursOptions {
  readonly balancer: Balancer;
  /** Read the table of this network namespace (`ip -n NAME`). */
  readonly netns?: string;
  /** Only entries on this device. */
  readonly device?: string;
  /** Refresh period. Default 5000 ms. */
  readonly refreshMs?: number;
  /** Also ask this resolver (an ArpResponder sends ARP requests itself). */
  readonly prober?: NeighbourResolver;
}

interface NeighEntry {
  dst?: string;
  lladdr?: string;
  state?: string[];
}

/** Parses `ip -j neigh` output into [address, mac] pairs worth using. */
export function parseNeighbours(json: string): [string, string][] {
  const entries = JSON.parse(json || "[]") as NeighEntry[];
  const out: [string, string][] = [];
  for (const e of entries) {
    if (!e.dst || !e.lladdr || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(e.lladdr)) continue;
    const state = e.state ?? [];
    if (state.includes("FAILED") || state.includes("INCOMPLETE") || state.includes("NOARP")) continue;
    out.push([e.dst, e.lladdr.toLowerCase()]);
  }
  return out;
}

export class KernelNeighbours implements NeighbourResolver {
  readonly known = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private inFlight: Promise<number> | undefined;

  constructor(private readonly options: KernelNeighboursOptions) {}

  /** Reads the kernel table once and copies new or changed entries; returns how many changed. */
  refresh(): Promise<number> {
    if (this.inFlight) return this.inFlight;
    const args = [
      ...(this.options.netns ? ["-n", this.options.netns] : []),
      "-j",
      "neigh",
      "show",
      ...(this.options.device ? ["dev", this.options.device] : []),
    ];
    this.inFlight = new Promise<number>((resolve, reject) => {
      execFile("ip", args, { timeout: 5000 }, (err, stdout) => {
        if (err) return reject(new Error(`reading the neighbour table (ip ${args.join(" ")}): ${err.message}`));
        let changed = 0;
        for (const [address, mac] of parseNeighbours(stdout)) {
          if (this.known.get(address) === mac) continue;
          try {
            this.options.balancer.setNeighbour(address, mac);
            this.known.set(address, mac);
            changed++;
          } catch {
            // table full or an address the balancer refuses: skip it
          }
        }
        resolve(changed);
      });
    }).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Refreshes now and every refreshMs until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), this.options.refreshMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.soon);
  }

  resolve(address: string, family: 4 | 6, from: PacketIO): void {
    this.options.prober?.resolve(address, family, from);
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.refresh().catch(() => {});
    }, 100);
    this.soon.unref();
  }
}
