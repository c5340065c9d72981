// What the ARP and ND responders share: a learnt neighbour goes into the balancer's
// neighbour table once (and again only when its MAC changes), and probes for an address
// are rate-limited, so an unresolved real server costs one request per interval.

import type { Balancer } from "../balancer/balancer.js";

export class NeighbourLearning {
  /** address -> MAC, as learnt. */
  readonly learned = new Map<string, string>();
  private readonly lastProbe = new Map<string, number>();

  constructor(
    private readonly balancer: Balancer,
    private readonly probeIntervalMs = 1000,
  ) {}

  /** Records address -> mac in the balancer; true when it was new or changed. */
  learn(address: string, mac: string): boolean {
    if (this.learned.get(address) === mac) return false;
    try {
      this.balancer.setNeighbour(address, mac);
    } catch {
      // neighbour table full: the gateway MAC (if any) keeps serving
      return false;
    }
    this.learned.set(address, mac);
    return true;
  }

  /** True when a probe for `address` may go now (and counts it as sent). */
  probeDue(address: string, now = performance.now()): boolean {
    const last = this.lastProbe.get(address);
    if (last !== undefined && now - last < this.probeIntervalMs) return false;
    this.lastProbe.set(address, now);
    return true;
  }
}
