// Packet builders for tests of balancers built on lvs-wasm: IPv4 / IPv6 packets with TCP or
// UDP and every checksum filled in, optionally behind an Ethernet header. For headers
// judged by an outside tool, build them with scapy instead; these are for volume.

import { encodeAddress } from "../core/actions.js";

export interface PacketSpec {
  readonly protocol: "tcp" | "udp";
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /** TCP flags by letter, as scapy writes them: "S", "SA", "A", "PA", "FA", "R". Default "A". */
  readonly flags?: string;
  readonly payload?: Uint8Array;
  readonly ttl?: number;
}

export interface EthernetSpec {
  readonly src: string;
  readonly dst: string;
}

const FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20, E: 0x40, C: 0x80 };

function sum(b: Uint8Array, start: number, end: number, init: number): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if ((end - start) & 1) s += b[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** A raw IPv4 or IPv6 packet (family from the addresses) with valid checksums. */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const src = encodeAddress(spec.src, "src");
  const dst = encodeAddress(spec.dst, "dst");
  if (src.family !== dst.family) throw new Error("buildPacket: src and dst must be of one family");
  const payload = spec.payload ?? new Uint8Array(0);
  const l4len = (spec.protocol === "tcp" ? 20 : 8) + payload.length;
  const l3len = src.family === 4 ? 20 : 40;
  const p = new Uint8Array(l3len + l4len);
  const proto = spec.protocol === "tcp" ? 6 : 17;
  const ttl = spec.ttl ?? 64;
  if (src.family === 4) {
    p.set([0x45, 0, 0, 0, 0, 1, 0x40, 0, ttl, proto]);
    put16(p, 2, p.length);
    p.set(src.bytes.subarray(0, 4), 12);
    p.set(dst.bytes.subarray(0, 4), 16);
    put16(p, 10, ~sum(p, 0, 20, 0) & 0xffff);
  } else {
    p[0] = 0x60;
    put16(p, 4, l4len);
    p[6] = proto;
    p[7] = ttl;
    p.set(src.bytes, 8);
    p.set(dst.bytes, 24);
  }
  const l4 = l3len;
  put16(p, l4, spec.sport);
  put16(p, l4 + 2, spec.dport);
  if (spec.protocol === "tcp") {
    p.set([0, 0, 0x10, 0, 0, 0, 0, 1, 0x50], l4 + 4);
    p[l4 + 13] = [...(spec.flags ?? "A")].reduce((f, c) => f | (FLAG_BITS[c] ?? 0), 0);
    put16(p, l4 + 14, 0xffff);
  } else {
    put16(p, l4 + 4, l4len);
  }
  p.set(payload, l4 + (spec.protocol === "tcp" ? 20 : 8));
  const pseudo = src.family === 4 ? sum(p, 12, 20, proto + l4len) : sum(p, 8, 40, proto + l4len);
  let c = ~sum(p, l4, p.length, pseudo) & 0xffff;
  if (c === 0 && spec.protocol === "udp") c = 0xffff;
  put16(p, l4 + (spec.protocol === "tcp" ? 16 : 6), c);
  return p;
}

/** The packet behind an Ethernet II header. */
export function withEthernet(packet: Uint8Array, eth: EthernetSpec): Uint8Array {
  const out = new Uint8Array(14 + packet.length);
  const mac = (s: string) => s.split(":").map((x) => parseInt(x, 16));
  out.set(mac(eth.dst), 0);
  out.set(mac(eth.src), 6);
  put16(out, 12, packet[0] >> 4 === 6 ? 0x86dd : 0x0800);
  out.set(packet, 14);
  return out;
}
