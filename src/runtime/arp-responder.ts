// ARP for an AF_PACKET director: answers "who has VIP?" for the configured virtual IPv4
// addresses (so clients and routers find the VIP without the kernel owning it), learns the
// MAC of every ARP sender into the balancer's neighbour table, and sends probes for next
// hops the datapath could not resolve. IPv4 only; IPv6 neighbour discovery is its sibling
// nd-responder.ts, chained as `next`.
//
// Use it as the director's pass hook (ARP is not IP, so the datapath passes it to the host):
//   const arp = new ArpResponder({ balancer, vips: ["10.0.0.100"], io: sock });
//   new Director({ balancer, io: [sock], pass: arp.hook, neighbours: arp });

import type { Balancer } from "../balancer/balancer.js";
import type { NeighbourResolver, PassDecision, PassHook } from "./director.js";
import type { PacketIO } from "../io/packet-io.js";
import { NeighbourLearning } from "./neighbour-learning.js";

/** What the responder sends its probes with: an AfPacketSocket fits. */
export interface FrameSender {
  readonly mac: string;
  sendFrame(frame: Uint8Array): boolean;
}

export interface ArpResponderOptions {
  readonly balancer: Balancer;
  /** Virtual IPv4 addresses to answer for. */
  readonly vips: readonly string[];
  /** The adapter probes leave by (its MAC is ours). */
  readonly io: FrameSender;
  /** Source address of probes; default 0.0.0.0 (an ARP probe, RFC 5227: answered all the same). */
  readonly probeSource?: string;
  /** At most one probe per address per interval. Default 1000 ms. */
  readonly probeIntervalMs?: number;
  /** Pass hook for frames that are not ARP. Default: drop them. */
  readonly next?: PassHook;
}

const ip4 = (text: string): Uint8Array => {
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new RangeError(`"${text}" is not an IPv4 address`);
  return Uint8Array.from(parts);
};
const macBytes = (text: string): Uint8Array => Uint8Array.from(text.split(":").map((x) => parseInt(x, 16)));
const macText = (b: Uint8Array, at: number) => [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
const ipText = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

export class ArpResponder implements NeighbourResolver {
  /** Addresses learnt, with their MAC. */
  private readonly neighbours: NeighbourLearning;
  /** address -> MAC, as learnt. */
  get learned(): ReadonlyMap<string, string> {
    return this.neighbours.learned;
  }
  readonly stats = { requests: 0, answered: 0, learned: 0, probes: 0 };
  private readonly vips: Set<string>;
  private readonly mac: Uint8Array;
  /** The director's pass hook. */
  readonly hook: PassHook;

  constructor(private readonly options: ArpResponderOptions) {
    this.vips = new Set(options.vips.map((v) => ipText(ip4(v), 0)));
    this.mac = macBytes(options.io.mac);
    this.neighbours = new NeighbourLearning(options.balancer, options.probeIntervalMs);
    this.hook = (packet, from, slot) => this.handle(packet, from, slot);
  }

  private handle(f: Uint8Array, from: PacketIO, slot: number): PassDecision | void {
    // Ethernet / ARP for IPv4 over Ethernet: htype 1, ptype 0x0800, hlen 6, plen 4.
    if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x06 || f[14] !== 0 || f[15] !== 1 || f[16] !== 0x08 || f[17] !== 0 || f[18] !== 6 || f[19] !== 4) {
      return this.options.next ? this.options.next(f, from, slot) : "drop";
    }
    const op = (f[20] << 8) | f[21];
    const senderIp = ipText(f, 28);
    if (senderIp !== "0.0.0.0" && !(f[22] & 1)) this.learn(senderIp, macText(f, 22));
    if (op !== 1) return "consumed";
    this.stats.requests++;
    const target = ipText(f, 38);
    if (!this.vips.has(target)) return "consumed";
    // Turn the request into the reply in place; the director sends it back out.
    f.copyWithin(32, 22, 32); // target hw + ip = the asker's
    f.set(f.subarray(32, 38), 0); // Ethernet destination = the asker
    f.set(this.mac, 6);
    f[21] = 2;
    f.set(this.mac, 22);
    f.set(ip4(target), 28);
    this.stats.answered++;
    return "forward";
  }

  private learn(address: string, mac: string): void {
    if (this.neighbours.learn(address, mac)) this.stats.learned++;
  }

  /** Sends an ARP request for `address` (rate-limited); the answer is learnt when it arrives. */
  resolve(address: string, family: 4 | 6): void {
    if (family !== 4) return;
    if (!this.neighbours.probeDue(address)) return;
    const f = new Uint8Array(42);
    f.fill(0xff, 0, 6);
    f.set(this.mac, 6);
    f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
    f.set(this.mac, 22);
    f.set(ip4(this.options.probeSource ?? "0.0.0.0"), 28);
    f.set(ip4(address), 38);
    this.stats.probes++;
    this.options.io.sendFrame(f);
  }
}
