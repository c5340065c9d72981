// IPv6 neighbour discovery (RFC 4861) for an AF_PACKET director, as arp-responder.ts does
// ARP for IPv4: answers neighbour solicitations for the configured virtual IPv6 addresses
// with a solicited neighbour advertisement (so clients and routers find the VIP without the
// kernel owning it), learns MACs from the link-layer address options of every valid
// solicitation and advertisement into the balancer's neighbour table, and sends a
// solicitation for next hops the datapath could not resolve.
//
// Use it as the pass hook after ARP (ND is ICMPv6, which the datapath passes to the host):
//   const nd = new NdResponder({ balancer, vips: ["fd00::100"], io: sock });
//   const arp = new ArpResponder({ balancer, vips, io: sock, next: nd.hook });
//
// Checks on input, as RFC 4861 7.1.1 / 7.1.2 ask: hop limit 255, ICMPv6 code 0, a valid
// checksum, a message at least 24 bytes long, options of non-zero length, a target that
// is not multicast, no source link-layer option when the source is unspecified, and an
// unspecified source only toward a solicited-node address. Anything else is dropped.

import type { Balancer } from "../balancer/balancer.js";
import { encodeAddress } from "../core/actions.js";
import { formatIpv6 } from "../admin/inet.js";
import type { PacketIO } from "../io/packet-io.js";
import type { NeighbourResolver, PassDecision, PassHook } from "./director.js";
import type { FrameSender } from "./arp-responder.js";
import { NeighbourLearning } from "./neighbour-learning.js";

export interface NdResponderOptions {
  readonly balancer: Balancer;
  /** Virtual IPv6 addresses to answer for. */
  readonly vips: readonly string[];
  /** The adapter answers and probes leave by (its MAC is ours). */
  readonly io: FrameSender;
  /**
   * Source address of probes; default :: (unspecified, like the ARP probe from 0.0.0.0):
   * the target then answers to all-nodes with its link-layer address, RFC 4861 7.2.4.
   */
  readonly probeSource?: string;
  /** At most one probe per address per interval. Default 1000 ms. */
  readonly probeIntervalMs?: number;
  /** Pass hook for frames that are not ND. Default: drop them. */
  readonly next?: PassHook;
}

const ETH_HLEN = 14;
const IP6_HLEN = 40;
const ICMP = ETH_HLEN + IP6_HLEN; // ICMPv6 header offset in an untagged frame
const NS = 135;
const NA = 136;
const OPT_SOURCE_LL = 1;
const OPT_TARGET_LL = 2;
const NA_SOLICITED = 0x40;
const NA_OVERRIDE = 0x20;

const ALL_NODES = ip6("ff02::1");

function ip6(text: string): Uint8Array {
  const { family, bytes } = encodeAddress(text, "IPv6 address");
  if (family !== 6) throw new RangeError(`"${text}" is not an IPv6 address`);
  return bytes;
}

/** The 16 bytes at `at` as RFC 5952 text (what the balancer's listings print). */
export function ip6Text(b: Uint8Array, at: number): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[at + i] << 8) | b[at + i + 1]);
  return formatIpv6(words);
}

const macBytes = (text: string): Uint8Array => Uint8Array.from(text.split(":").map((x) => parseInt(x, 16)));
const macText = (b: Uint8Array, at: number) => [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
const isZero = (b: Uint8Array, at: number, n: number) => b.subarray(at, at + n).every((x) => x === 0);

/** The solicited-node multicast address of `target` (ff02::1:ffXX:XXXX), RFC 4291 2.7.1. */
export function solicitedNode(target: Uint8Array): Uint8Array {
  const a = ip6("ff02::1:ff00:0");
  a.set(target.subarray(13, 16), 13);
  return a;
}

/** The ICMPv6 checksum of `length` bytes at `at` under the pseudo-header of `src` and `dst`. */
export function icmp6Checksum(src: Uint8Array, dst: Uint8Array, msg: Uint8Array, at: number, length: number): number {
  let sum = 0;
  const add = (b: Uint8Array, from: number, n: number) => {
    for (let i = 0; i < n; i += 2) sum += (b[from + i] << 8) | (i + 1 < n ? b[from + i + 1] : 0);
  };
  add(src, 0, 16);
  add(dst, 0, 16);
  sum += (length >>> 16) + (length & 0xffff) + 58;
  add(msg, at, length);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An Ethernet + IPv6 + ICMPv6 frame (hop limit 255), checksum filled in. */
function ndFrame(dstMac: Uint8Array, srcMac: Uint8Array, src: Uint8Array, dst: Uint8Array, icmp: Uint8Array): Uint8Array {
  const f = new Uint8Array(ICMP + icmp.length);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60;
  f[18] = icmp.length >> 8;
  f[19] = icmp.length & 0xff;
  f[20] = 58;
  f[21] = 255;
  f.set(src, 22);
  f.set(dst, 38);
  f.set(icmp, ICMP);
  const sum = icmp6Checksum(src, dst, f, ICMP, icmp.length);
  f[ICMP + 2] = sum >> 8;
  f[ICMP + 3] = sum & 0xff;
  return f;
}

/** The Ethernet multicast address of an IPv6 multicast address (33:33 + its last 4 bytes). */
function multicastMac(group: Uint8Array): Uint8Array {
  return Uint8Array.from([0x33, 0x33, group[12], group[13], group[14], group[15]]);
}

/** A unicast address worth a neighbour entry: not unspecified, multicast or link-local. */
function learnable(b: Uint8Array, at: number): boolean {
  return !isZero(b, at, 16) && b[at] !== 0xff && !(b[at] === 0xfe && (b[at + 1] & 0xc0) === 0x80);
}

export class NdResponder implements NeighbourResolver {
  /** Addresses learnt, with their MAC. */
  private readonly neighbours: NeighbourLearning;
  /** address -> MAC, as learnt. */
  get learned(): ReadonlyMap<string, string> {
    return this.neighbours.learned;
  }
  readonly stats = { solicitations: 0, advertisements: 0, answered: 0, learned: 0, probes: 0, invalid: 0 };
  private readonly vips: Set<string>;
  private readonly mac: Uint8Array;
  /** The director's pass hook. */
  readonly hook: PassHook;

  constructor(private readonly options: NdResponderOptions) {
    this.vips = new Set(options.vips.map((v) => ip6Text(ip6(v), 0)));
    this.mac = macBytes(options.io.mac);
    this.neighbours = new NeighbourLearning(options.balancer, options.probeIntervalMs);
    this.hook = (packet, from, slot) => this.handle(packet, from, slot);
  }

  private handle(f: Uint8Array, from: PacketIO, slot: number): PassDecision | void {
    const type = f.length >= ICMP + 24 && f[12] === 0x86 && f[13] === 0xdd && f[20] === 58 ? f[ICMP] : 0;
    if (type !== NS && type !== NA) return this.options.next ? this.options.next(f, from, slot) : "drop";
    const length = (f[18] << 8) | f[19];
    if (f[21] !== 255 || f[ICMP + 1] !== 0 || length < 24 || ICMP + length > f.length) return this.invalid();
    if (icmp6Checksum(f.subarray(22, 38), f.subarray(38, 54), f, ICMP, length) !== 0) return this.invalid();
    if (f[ICMP + 8] === 0xff) return this.invalid(); // a multicast target
    const options = this.linkLayerOptions(f, ICMP + 24, ICMP + length);
    if (options === null) return this.invalid();
    const unspecifiedSource = isZero(f, 22, 16);
    const target = ip6Text(f, ICMP + 8);
    if (type === NA) {
      this.stats.advertisements++;
      if (options.target >= 0) this.learn(f, ICMP + 8, options.target);
      return "consumed";
    }
    this.stats.solicitations++;
    // RFC 4861 7.1.1: an unspecified source (DAD) carries no source link-layer option and
    // is sent to a solicited-node address only.
    if (unspecifiedSource && (options.source >= 0 || f[38] !== 0xff || f[39] !== 0x02)) return this.invalid();
    if (options.source >= 0) this.learn(f, 22, options.source);
    if (!this.vips.has(target)) return "consumed";
    this.answer(f, options.source, unspecifiedSource);
    return "consumed";
  }

  private invalid(): PassDecision {
    this.stats.invalid++;
    return "drop";
  }

  /** Offsets of the source / target link-layer address bytes (-1: absent); null when an option is malformed. */
  private linkLayerOptions(f: Uint8Array, from: number, end: number): { source: number; target: number } | null {
    const found = { source: -1, target: -1 };
    for (let at = from; at < end; ) {
      if (at + 2 > end) return null;
      const len = f[at + 1] * 8;
      if (len === 0 || at + len > end) return null;
      if (len >= 8 && f[at] === OPT_SOURCE_LL) found.source = at + 2;
      if (len >= 8 && f[at] === OPT_TARGET_LL) found.target = at + 2;
      at += len;
    }
    return found;
  }

  /** A solicited advertisement back to the asker (to all-nodes for a DAD probe of a VIP). */
  private answer(ns: Uint8Array, sourceOption: number, dad: boolean): void {
    const target = ns.subarray(ICMP + 8, ICMP + 24);
    const icmp = new Uint8Array(32);
    icmp[0] = NA;
    icmp[4] = (dad ? 0 : NA_SOLICITED) | NA_OVERRIDE;
    icmp.set(target, 8);
    icmp[24] = OPT_TARGET_LL;
    icmp[25] = 1;
    icmp.set(this.mac, 26);
    const dst = dad ? ALL_NODES : ns.slice(22, 38);
    const dstMac = dad ? multicastMac(ALL_NODES) : sourceOption >= 0 ? ns.slice(sourceOption, sourceOption + 6) : ns.slice(6, 12);
    this.stats.answered++;
    this.options.io.sendFrame(ndFrame(dstMac, this.mac, target.slice(), dst, icmp));
  }

  private learn(f: Uint8Array, addressAt: number, macAt: number): void {
    if (!learnable(f, addressAt) || f[macAt] & 1) return;
    const address = ip6Text(f, addressAt);
    const mac = macText(f, macAt);
    if (this.neighbours.learn(address, mac)) this.stats.learned++;
  }

  /** Sends a neighbour solicitation for `address` (rate-limited); the advertisement is learnt when it arrives. */
  resolve(address: string, family: 4 | 6): void {
    if (family !== 6) return;
    if (!this.neighbours.probeDue(address)) return;
    const target = ip6(address);
    const source = this.options.probeSource === undefined ? new Uint8Array(16) : ip6(this.options.probeSource);
    const withOption = !isZero(source, 0, 16); // no source link-layer option from ::
    const icmp = new Uint8Array(withOption ? 32 : 24);
    icmp[0] = NS;
    icmp.set(target, 8);
    if (withOption) {
      icmp[24] = OPT_SOURCE_LL;
      icmp[25] = 1;
      icmp.set(this.mac, 26);
    }
    const group = solicitedNode(target);
    this.stats.probes++;
    this.options.io.sendFrame(ndFrame(multicastMac(group), this.mac, source, group, icmp));
  }
}
