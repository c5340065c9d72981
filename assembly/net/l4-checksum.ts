// Incremental checksum updates shared by every rewrite (NAT, ICMP-error NAT, tunnels).
// A rewrite is first turned into a "delta": the one's-complement sum of ~old + new over the
// changed 16-bit words (RFC 1624, eqn. 3). The same delta then fixes every checksum that
// covers those words: the IPv4 header checksum and the L4 checksum through its
// pseudo-header for an address, the L4 checksum alone for a port. Computing it once and
// applying it twice keeps an IPv6 address change to one pass over 16 bytes.

import { rd16, wr16 } from "./bytes";
import { fold } from "./checksum";
import { PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6 } from "./constants";

/** Delta for the n bytes at oldp (n even) becoming the n bytes at newp. Read before writing. */
export function csumDeltaBytes(oldp: usize, newp: usize, n: u32): u64 {
  let s: u64 = 0;
  for (let i: u32 = 0; i < n; i += 2) {
    s += <u64>(~rd16(oldp + i) & 0xffff) + <u64>rd16(newp + i);
  }
  return s;
}

/** Delta for one 16-bit word changing from oldw to neww. */
@inline export function csumDelta16(oldw: u32, neww: u32): u64 {
  return <u64>(~oldw & 0xffff) + <u64>(neww & 0xffff);
}

/** A checksum field value after applying delta (RFC 1624 eqn. 3: ~(~HC + delta)). */
@inline export function csumApplyDelta(csum: u32, delta: u64): u32 {
  return ~fold(<u64>(~csum & 0xffff) + delta) & 0xffff;
}

/** Applies delta to the checksum field stored (big-endian) at p. */
@inline export function csumFieldApply(p: usize, delta: u64): void {
  wr16(p, csumApplyDelta(rd16(p), delta));
}

/**
 * Applies delta to a UDP checksum field at p: 0 means "no checksum" (IPv4, RFC 768) and
 * stays 0; a result of 0 is sent as 0xFFFF, its other one's-complement spelling.
 * IPv6 forbids 0 (RFC 8200 8.1) but tunnels may carry it (RFC 6935); it is left as found.
 */
@inline export function udpCsumFieldApply(p: usize, delta: u64): void {
  const old = rd16(p);
  if (old == 0) return;
  const v = csumApplyDelta(old, delta);
  wr16(p, v == 0 ? 0xffff : v);
}

/** Offset of the checksum field within the L4 header, or -1 when it has none we maintain. */
export function l4CsumOffset(proto: u32, family: u32): i32 {
  if (proto == PROTO_TCP) return 16;
  if (proto == PROTO_UDP) return 6;
  if (proto == PROTO_ICMP && family == 4) return 2;
  if (proto == PROTO_ICMPV6 && family == 6) return 2;
  return -1;
}

/** True when the protocol's checksum covers the IP addresses (a pseudo-header). ICMPv4's does not. */
export function l4CsumHasPseudo(proto: u32, family: u32): bool {
  return proto == PROTO_TCP || proto == PROTO_UDP || (proto == PROTO_ICMPV6 && family == 6);
}

/**
 * Applies delta to the L4 checksum of protocol proto whose header starts at l4 and has
 * `avail` bytes; nothing when the protocol has no checksum field or it lies beyond avail
 * (a truncated quote inside an ICMP error).
 */
export function l4CsumApply(l4: usize, avail: u32, proto: u32, family: u32, delta: u64): void {
  const off = l4CsumOffset(proto, family);
  if (off < 0 || <u32>off + 2 > avail) return;
  if (proto == PROTO_UDP) udpCsumFieldApply(l4 + <usize>off, delta);
  else csumFieldApply(l4 + <usize>off, delta);
}
