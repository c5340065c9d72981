// ICMP errors about a NAT flow (IPVS ip_vs_in_icmp / ip_vs_out_icmp + ip_vs_nat_icmp): the
// error quotes a packet of the flow, so the quoted header and the outer header are both
// NATed, and the ICMP checksum recomputed.
// - icmpNatIn: an error from the client side about a reply we sent. The quote is
//   VIP:vport -> CIP: its source becomes A_ADDR:A_PORT (RIP:rport) and the outer
//   destination (the VIP) becomes A_ADDR.
// - icmpNatOut: an error from the real-server side about a packet we forwarded. The quote
//   is CIP -> RIP:rport: its destination becomes A_ADDR:A_PORT (VIP:vport) and the outer
//   source (the RIP) becomes A_ADDR.
// Like the kernel we refuse an ICMP message whose checksum is already wrong (recomputing
// would launder it) and only rewrite ports of TCP and UDP quotes. Differences, on purpose:
// IPv4 parameter-problem (type 12) is handled as well as 3, 4 and 11; the quoted L4
// checksum is patched when the quote holds it (the kernel leaves it stale); an outer
// fragment is dropped (REASON_FRAGMENT), not reassembled. A quote of a later fragment
// gets its address rewritten only, as natDnat does with later fragments.
// The quoted IP header checksum is patched incrementally, not verified: a router quotes
// what it got, and a wrong one stays wrong rather than being made to look right.

import { outcome, A_FAMILY, A_PORT, A_ADDR } from "./action";
import { applyMacRewrite } from "./l2";
import { descGet, DESC_LINK } from "../layout";
import { rd8, rd16, wr16, copy16 } from "../net/bytes";
import { sumBytes, finish, pseudoSum6 } from "../net/checksum";
import {
  PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6, PROTO_HOPOPTS, PROTO_ROUTING,
  PROTO_FRAGMENT, PROTO_DSTOPTS, PROTO_AH, IPV4_HLEN, IPV6_HLEN, ICMP_HLEN,
  MAX_IPV6_EXT_HEADERS, ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED,
  ICMP_PARAMETER_PROBLEM, ICMPV6_DEST_UNREACH, ICMPV6_PARAM_PROBLEM,
} from "../net/constants";
import {
  pL3, pL4, pL4Len, pFamily, pProto, pFrag, pIcmpType, pSrcAddr, pDstAddr, FRAG_NONE,
  extHeaderLength,
} from "../net/parse";
import {
  csumDeltaBytes, csumDelta16, csumFieldApply, l4CsumApply, l4CsumHasPseudo,
} from "../net/l4-checksum";
import {
  VERDICT_FORWARD, VERDICT_DROP, REASON_NONE, REASON_UNSUPPORTED, REASON_FRAGMENT,
  REASON_TRUNCATED, REASON_BAD_VERSION, REASON_BAD_HEADER_LENGTH, REASON_BAD_TOTAL_LENGTH,
  REASON_BAD_L4_HEADER, REASON_EXT_HEADER_CHAIN,
} from "../verdict";

/** Bytes of the quoted L4 header we need: both ports (the kernel asks for 8 as well). */
const QUOTE_L4_MIN: u32 = 8;

// The quoted packet, as quoteParse found it (offsets relative to the quote's start).
let qL4: u32 = 0; // offset of the quoted L4 header
let qEnd: u32 = 0; // bytes of the quoted packet we hold and it claims: min(quote, its length)
let qProto: u32 = 0;
let qLater: bool = false; // quoted packet is a non-first fragment: no L4 header

@inline function isIcmpError(family: u32, type: u32): bool {
  if (family == 4) {
    return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
      type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETER_PROBLEM;
  }
  return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAM_PROBLEM;
}

/** Validates the quoted IPv4 header at q (qlen bytes). Returns REASON_NONE or why not. */
function quoteParse4(q: usize, qlen: u32): u32 {
  if (qlen < IPV4_HLEN) return REASON_TRUNCATED;
  const vihl = rd8(q);
  if (vihl >> 4 != 4) return REASON_BAD_VERSION;
  const ihl = (vihl & 0x0f) << 2;
  if (ihl < IPV4_HLEN) return REASON_BAD_HEADER_LENGTH;
  if (ihl > qlen) return REASON_TRUNCATED;
  const total = rd16(q + 2);
  if (total < ihl) return REASON_BAD_TOTAL_LENGTH;
  qL4 = ihl;
  qEnd = total < qlen ? total : qlen;
  qProto = rd8(q + 9);
  qLater = (rd16(q + 6) & 0x1fff) != 0;
  return REASON_NONE;
}

/** Validates the quoted IPv6 header and walks its extension headers within the quote. */
function quoteParse6(q: usize, qlen: u32): u32 {
  if (qlen < IPV6_HLEN) return REASON_TRUNCATED;
  if (rd8(q) >> 4 != 6) return REASON_BAD_VERSION;
  const claimed = IPV6_HLEN + rd16(q + 4);
  const end = claimed < qlen ? claimed : qlen;
  let next = rd8(q + 6);
  let off = IPV6_HLEN;
  let later = false;
  for (let n: u32 = 0; ; n++) {
    if (
      next != PROTO_HOPOPTS && next != PROTO_ROUTING && next != PROTO_FRAGMENT &&
      next != PROTO_DSTOPTS && next != PROTO_AH
    ) break;
    if (n >= MAX_IPV6_EXT_HEADERS) return REASON_EXT_HEADER_CHAIN;
    if (off + 8 > end) return REASON_TRUNCATED;
    const hlen = extHeaderLength(q + off, next);
    if (next == PROTO_FRAGMENT) later = (rd16(q + off + 2) & 0xfff8) != 0;
    if (off + hlen > end) return REASON_TRUNCATED;
    next = rd8(q + off);
    off += hlen;
    if (later) break;
  }
  qL4 = off;
  qEnd = end;
  qProto = next;
  qLater = later;
  return REASON_NONE;
}

/** Checksum of the whole ICMP message at icmp (len bytes), with ICMPv6's pseudo-header. */
function icmpMessageSum(pkt: usize, icmp: usize, len: u32, family: u32): u32 {
  let s = sumBytes(icmp, len, 0);
  if (family == 6) s += pseudoSum6(pkt + <usize>pSrcAddr, pkt + <usize>pDstAddr, PROTO_ICMPV6, len);
  return finish(s);
}

/** Shared body: inbound rewrites the quote's source and the outer destination. */
function icmpNat(slot: u32, pkt: usize, rec: usize, inbound: bool): u32 {
  const family = pFamily;
  if (family == 4 ? pProto != PROTO_ICMP : pProto != PROTO_ICMPV6) {
    return outcome(VERDICT_DROP, REASON_UNSUPPORTED);
  }
  // The checksum covers the whole message; a fragment of it cannot be fixed here.
  if (pFrag != FRAG_NONE) return outcome(VERDICT_DROP, REASON_FRAGMENT);
  if (!isIcmpError(family, pIcmpType)) return outcome(VERDICT_DROP, REASON_UNSUPPORTED);
  if (<u32>load<u8>(rec + A_FAMILY) != family) return outcome(VERDICT_DROP, REASON_UNSUPPORTED);

  const icmp = pkt + <usize>pL4;
  const icmpLen = pL4Len; // >= ICMP_HLEN: parseL4 checked
  if (icmpMessageSum(pkt, icmp, icmpLen, family) != 0) return outcome(VERDICT_DROP, REASON_BAD_L4_HEADER);

  const q = icmp + ICMP_HLEN;
  const qlen = icmpLen - ICMP_HLEN;
  const r = family == 4 ? quoteParse4(q, qlen) : quoteParse6(q, qlen);
  if (r != REASON_NONE) return outcome(VERDICT_DROP, r);
  if (!qLater && qL4 + QUOTE_L4_MIN > qEnd) return outcome(VERDICT_DROP, REASON_TRUNCATED);

  const alen: u32 = family == 4 ? 4 : 16;
  const srcOff: u32 = family == 4 ? 12 : 8;
  const dstOff: u32 = family == 4 ? 16 : 24;
  const newAddr = rec + A_ADDR;

  // Quoted packet: address (and port), its L4 checksum, its IPv4 header checksum.
  const qAddr = q + <usize>(inbound ? srcOff : dstOff);
  const qDelta = csumDeltaBytes(qAddr, newAddr, alen);
  if (!qLater) {
    const l4 = q + <usize>qL4;
    let delta: u64 = l4CsumHasPseudo(qProto, family) ? qDelta : 0;
    const port = <u32>load<u16>(rec + A_PORT);
    if (port != 0 && (qProto == PROTO_TCP || qProto == PROTO_UDP)) {
      const portAt = l4 + <usize>(inbound ? 0 : 2);
      delta += csumDelta16(rd16(portAt), port);
      wr16(portAt, port);
    }
    if (delta != 0) l4CsumApply(l4, qEnd - qL4, qProto, family, delta);
  }
  if (family == 4) {
    store<u32>(qAddr, load<u32>(newAddr));
    csumFieldApply(q + 10, qDelta);
  } else {
    copy16(qAddr, newAddr);
  }

  // Outer header: the other end of the flow, seen from this side.
  const oAddr = pkt + <usize>(inbound ? pDstAddr : pSrcAddr);
  if (family == 4) {
    const oDelta = csumDeltaBytes(oAddr, newAddr, 4);
    store<u32>(oAddr, load<u32>(newAddr));
    csumFieldApply(pkt + <usize>pL3 + 10, oDelta);
  } else {
    copy16(oAddr, newAddr);
  }

  // ICMP checksum over the rewritten message (and, for ICMPv6, the new outer addresses).
  wr16(icmp + 2, 0);
  wr16(icmp + 2, icmpMessageSum(pkt, icmp, icmpLen, family));

  applyMacRewrite(pkt, descGet(slot, DESC_LINK), rec, false);
  return outcome(VERDICT_FORWARD, REASON_NONE);
}

/** Error from the client side about a reply: quoted source and outer destination -> A_ADDR. */
export function icmpNatIn(slot: u32, pkt: usize, rec: usize): u32 {
  return icmpNat(slot, pkt, rec, true);
}

/** Error from the real-server side about a forwarded packet: quoted destination and outer source -> A_ADDR. */
export function icmpNatOut(slot: u32, pkt: usize, rec: usize): u32 {
  return icmpNat(slot, pkt, rec, false);
}
