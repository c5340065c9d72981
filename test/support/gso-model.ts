// A plain TypeScript model of what a sender with offloads hands us and what a device does
// with it: TCP / UDP packets over IPv4 / IPv6 built with complete checksums, the partial
// checksum (CHECKSUM_PARTIAL: the folded pseudo-header sum, not complemented) a TSO sender
// leaves, the device's completion of it, NAT by rewriting and summing from scratch, and
// segmentation by the kernel's rules (tcp_gso_segment, __udp_gso_segment). Written for
// clarity, byte by byte, sharing nothing with assembly/: the tests compare the data plane
// against it.

export type Family = 4 | 6;
export type Proto = "tcp" | "udp";

export interface PacketSpec {
  readonly family: Family;
  readonly proto: Proto;
  /** 4 or 16 bytes. */
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly payload: Uint8Array;
  /** TCP only. */
  readonly seq?: number;
  readonly flags?: number;
  readonly id?: number;
  readonly ttl?: number;
}

export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

const PROTO_NUMBER: Record<Proto, number> = { tcp: 6, udp: 17 };

/** One's-complement sum of big-endian 16-bit words (odd tail padded), unfolded. */
export function sum16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let s = 0;
  for (let i = start; i < end; i += 2) s += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
  return s;
}

/** Folds a sum to 16 bits with end-around carries (no complement). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function pseudoSum(family: Family, src: Uint8Array, dst: Uint8Array, proto: number, l4Length: number): number {
  return sum16(src) + sum16(dst) + proto + (family === 4 ? l4Length : (l4Length >>> 16) + (l4Length & 0xffff));
}

function rd16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}
function wr16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function rd32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
function wr32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** Where things are in a packet built by `build` (no options, no extension headers). */
export function layout(p: Uint8Array): { family: Family; l4: number; proto: number; csumField: number; hdrEnd: number } {
  const family: Family = p[0] >> 4 === 4 ? 4 : 6;
  const l4 = family === 4 ? (p[0] & 0xf) * 4 : 40;
  const proto = family === 4 ? p[9] : p[6];
  const csumField = l4 + (proto === 6 ? 16 : 6);
  const hdrEnd = l4 + (proto === 6 ? (p[l4 + 12] >> 4) * 4 : 8);
  return { family, l4, proto, csumField, hdrEnd };
}

function addresses(p: Uint8Array): { src: Uint8Array; dst: Uint8Array } {
  return p[0] >> 4 === 4 ? { src: p.subarray(12, 16), dst: p.subarray(16, 20) } : { src: p.subarray(8, 24), dst: p.subarray(24, 40) };
}

/** Recomputes the IPv4 header checksum and the complete L4 checksum of p in place. */
export function completeChecksums(p: Uint8Array): Uint8Array {
  const { family, l4, proto, csumField } = layout(p);
  if (family === 4) {
    wr16(p, 10, 0);
    wr16(p, 10, ~fold(sum16(p, 0, 20)) & 0xffff);
  }
  const { src, dst } = addresses(p);
  wr16(p, csumField, 0);
  let c = ~fold(pseudoSum(family, src, dst, proto, p.length - l4) + sum16(p, l4)) & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  wr16(p, csumField, c);
  return p;
}

/** A TCP or UDP packet with complete checksums. */
export function build(spec: PacketSpec): Uint8Array {
  const ipLen = spec.family === 4 ? 20 : 40;
  const l4Len = (spec.proto === "tcp" ? 20 : 8) + spec.payload.length;
  const p = new Uint8Array(ipLen + l4Len);
  if (spec.family === 4) {
    p[0] = 0x45;
    wr16(p, 2, p.length);
    wr16(p, 4, spec.id ?? 0x1234);
    wr16(p, 6, 0x4000); // DF
    p[8] = spec.ttl ?? 64;
    p[9] = PROTO_NUMBER[spec.proto];
    p.set(spec.src, 12);
    p.set(spec.dst, 16);
  } else {
    p[0] = 0x60;
    wr16(p, 4, l4Len);
    p[6] = PROTO_NUMBER[spec.proto];
    p[7] = spec.ttl ?? 64;
    p.set(spec.src, 8);
    p.set(spec.dst, 24);
  }
  wr16(p, ipLen, spec.sport);
  wr16(p, ipLen + 2, spec.dport);
  if (spec.proto === "tcp") {
    wr32(p, ipLen + 4, spec.seq ?? 1000);
    wr32(p, ipLen + 8, 777);
    p[ipLen + 12] = 5 << 4;
    p[ipLen + 13] = spec.flags ?? TCP_ACK;
    wr16(p, ipLen + 14, 65535);
    p.set(spec.payload, ipLen + 20);
  } else {
    wr16(p, ipLen + 4, l4Len);
    p.set(spec.payload, ipLen + 8);
  }
  return completeChecksums(p);
}

/** What a TSO / checksum-offloading sender leaves: the L4 field = folded pseudo-header sum. */
export function toPartial(complete: Uint8Array): Uint8Array {
  const p = complete.slice();
  const { family, l4, proto, csumField } = layout(p);
  const { src, dst } = addresses(p);
  wr16(p, csumField, fold(pseudoSum(family, src, dst, proto, p.length - l4)));
  return p;
}

/** The device's part: sum from csumStart to the end, field included, store the complement. */
export function deviceComplete(partial: Uint8Array, csumStart: number, csumOffset: number): Uint8Array {
  const p = partial.slice();
  let c = ~fold(sum16(p, csumStart)) & 0xffff;
  if (c === 0 && csumOffset === 6) c = 0xffff;
  wr16(p, csumStart + csumOffset, c);
  return p;
}

/** NAT by rewriting and summing from scratch: destination (dnat) or source (snat). */
export function natModel(p: Uint8Array, side: "dst" | "src", address: Uint8Array, port: number, partial: boolean): Uint8Array {
  const q = p.slice();
  const { family, l4 } = layout(q);
  const at = family === 4 ? (side === "dst" ? 16 : 12) : side === "dst" ? 24 : 8;
  q.set(address, at);
  if (port !== 0) wr16(q, l4 + (side === "dst" ? 2 : 0), port);
  completeChecksums(q);
  return partial ? toPartial(q) : q;
}

/** The TTL / hop limit one lower, IPv4 header checksum recomputed. */
export function hopModel(p: Uint8Array): Uint8Array {
  const q = p.slice();
  if (q[0] >> 4 === 4) {
    q[8]--;
    wr16(q, 10, 0);
    wr16(q, 10, ~fold(sum16(q, 0, 20)) & 0xffff);
  } else {
    q[7]--;
  }
  return q;
}

/**
 * The kernel's segmentation of a super-packet (complete or partial checksum: each segment
 * is summed from scratch): headers repeated, gsoSize payload bytes each, IPv4 ID + k,
 * TCP sequence advanced, CWR on the first only, FIN / PSH on the last only; UDP length
 * per datagram.
 */
export function segmentModel(p: Uint8Array, gsoSize: number): Uint8Array[] {
  const { family, l4, proto, hdrEnd } = layout(p);
  const payload = p.subarray(hdrEnd);
  const count = Math.max(1, Math.ceil(payload.length / gsoSize));
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const chunk = payload.subarray(k * gsoSize, Math.min(payload.length, (k + 1) * gsoSize));
    const s = new Uint8Array(hdrEnd + chunk.length);
    s.set(p.subarray(0, hdrEnd));
    s.set(chunk, hdrEnd);
    if (family === 4) {
      wr16(s, 2, s.length);
      wr16(s, 4, (rd16(p, 4) + k) & 0xffff);
    } else {
      wr16(s, 4, s.length - 40);
    }
    if (proto === 6) {
      wr32(s, l4 + 4, (rd32(p, l4 + 4) + k * gsoSize) >>> 0);
      let flags = p[l4 + 13];
      if (k > 0) flags &= ~TCP_CWR;
      if (k < count - 1) flags &= ~(TCP_FIN | TCP_PSH);
      s[l4 + 13] = flags;
    } else {
      wr16(s, l4 + 4, s.length - l4);
    }
    out.push(completeChecksums(s));
  }
  return out;
}

export const GSO = { none: 0, tcpv4: 1, tcpv6: 4, udpL4: 5 } as const;

/** A virtio_net_hdr (10 bytes, little-endian) for a partial-checksum packet built by `build`. */
export function vnetHeader(p: Uint8Array, gsoSize: number): Uint8Array {
  const { family, l4, proto, hdrEnd } = layout(p);
  const h = new Uint8Array(10);
  const v = new DataView(h.buffer);
  h[0] = 1; // NEEDS_CSUM
  h[1] = gsoSize === 0 ? GSO.none : proto === 17 ? GSO.udpL4 : family === 4 ? GSO.tcpv4 : GSO.tcpv6;
  v.setUint16(2, hdrEnd, true);
  v.setUint16(4, gsoSize, true);
  v.setUint16(6, l4, true);
  v.setUint16(8, proto === 6 ? 16 : 6, true);
  return h;
}
