// NAT (ipvsadm -m, masquerading): rewrite one address, and for TCP/UDP one port, in place.
// natDnat turns client -> VIP:vport into client -> RIP:rport; natSnat turns the real
// server's reply RIP:rport -> client into VIP:vport -> client. Checksums are patched
// incrementally (RFC 1624) with one delta per change, never recomputed over the payload.
//
// What is rewritten:
// - TCP, UDP: the address and, when A_PORT != 0, the port; the L4 checksum through its
//   pseudo-header (UDP over IPv4 with checksum 0 keeps "no checksum").
// - ICMP / ICMPv6 echo: the address only; the query id stays (the client matches replies
//   on it). ICMPv4 has no pseudo-header, so its checksum is untouched; ICMPv6's is patched.
// - First fragments carry the L4 header and are treated as whole packets: patching the
//   L4 checksum here keeps the reassembled datagram's checksum right.
// - Later fragments: the address only. They hold no L4 header and no checksum of their
//   own; the first fragment's L4 checksum already absorbed the pseudo-header change.
// - Partial checksums (the slot's offload record says NEEDS_CSUM, net/offload.ts): the
//   field holds the pseudo-header sum, folded, not complemented. An address change moves it
//   by the address delta with no final complement; a port change does not move it (the
//   sender of the packet sums over the port). GSO super-packets are rewritten once.
// TTL / hop limit are not touched: the datapath decides whether the director counts as a
// hop (IPVS NAT does, through the kernel's forwarding path), so it is not this file's job.

import { outcome, A_FAMILY, A_PORT, A_ADDR } from "./action";
import { applyMacRewrite } from "./l2";
import { descGet, DESC_LINK } from "../layout";
import { rd16, wr16, copy16 } from "../net/bytes";
import { fold } from "../net/checksum";
import {
  PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6, ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY,
} from "../net/constants";
import {
  pL3, pL4, pL4Len, pFamily, pProto, pFrag, pIcmpType, pSrcAddr, pDstAddr, FRAG_LATER,
} from "../net/parse";
import {
  csumDeltaBytes, csumDelta16, csumFieldApply, l4CsumApply, l4CsumHasPseudo,
} from "../net/l4-checksum";
import { offPartial } from "../net/offload";
import { VERDICT_FORWARD, VERDICT_DROP, REASON_NONE, REASON_UNSUPPORTED } from "../verdict";

@inline function isEcho(family: u32, type: u32): bool {
  return family == 4
    ? type == ICMP_ECHO_REQUEST || type == ICMP_ECHO_REPLY
    : type == ICMPV6_ECHO_REQUEST || type == ICMPV6_ECHO_REPLY;
}

/**
 * The L4 half of an IPv4 NAT rewrite, in native byte order: the new port (host order, 0
 * keeps it) at the destination (toDst) or source port, and the TCP / UDP checksum moved by
 * the address's delta plus the port's. UDP over IPv4: 0 means "no checksum" and stays 0; a
 * computed 0 is sent as 0xFFFF. Shared with the datapath's TTL + NAT fast path.
 */
@inline export function natPatchL4v4(l4: usize, toDst: bool, port: u32, proto: u32, addrDelta: u64): void {
  if (offPartial) {
    natPatchPartialV4(l4, toDst, port, proto, addrDelta);
    return;
  }
  let delta = addrDelta;
  if (port != 0) {
    const portAt = l4 + <usize>(toDst ? 2 : 0);
    const newP = <u32>bswap<u16>(<u16>port);
    delta += <u64>(~<u32>load<u16>(portAt) & 0xffff) + <u64>newP;
    store<u16>(portAt, <u16>newP);
  }
  if (proto == PROTO_TCP) {
    const c = <u32>load<u16>(l4, 16);
    store<u16>(l4, <u16>~fold(<u64>(~c & 0xffff) + delta), 16);
  } else {
    const c = <u32>load<u16>(l4, 6);
    if (c != 0) {
      const v = ~fold(<u64>(~c & 0xffff) + delta) & 0xffff;
      store<u16>(l4, <u16>(v == 0 ? 0xffff : v), 6);
    }
  }
}

/**
 * natPatchL4v4 for a partial checksum: the port is written, the field (the folded pseudo-
 * header sum) takes the address delta and is stored without a complement.
 */
function natPatchPartialV4(l4: usize, toDst: bool, port: u32, proto: u32, addrDelta: u64): void {
  if (port != 0) store<u16>(l4 + <usize>(toDst ? 2 : 0), bswap<u16>(<u16>port));
  const at = l4 + <usize>(proto == PROTO_TCP ? 16 : 6);
  store<u16>(at, <u16>fold(<u64>load<u16>(at) + addrDelta));
}

/**
 * The common case, IPv4 TCP or UDP and not a later fragment, in native (little-endian)
 * byte order throughout: one's-complement sums do not depend on byte order as long as
 * every word is read and written in the same one (RFC 1071 section 2(B)), so the address
 * delta is ~old + new over one u32 (2^16 = 1 mod 0xFFFF: a u32 sums as its two halves),
 * the port's delta is taken from the port as stored, and no checksum field is byte-swapped.
 * Only the record's port, kept in host order, is swapped once. parsePacket has checked that
 * the L4 header (and so its checksum field) lies inside the packet.
 */
@inline function natRewrite4(slot: u32, pkt: usize, rec: usize, toDst: bool, proto: u32): u32 {
  const ip = pkt + <usize>pL3;
  const l4 = pkt + <usize>pL4;
  const addr = ip + <usize>(toDst ? 16 : 12);
  const oldA = load<u32>(addr);
  const newA = load<u32>(rec + A_ADDR);
  const addrDelta: u64 = <u64>(~oldA) + <u64>newA;
  natPatchL4v4(l4, toDst, <u32>load<u16>(rec + A_PORT), proto, addrDelta);
  store<u32>(addr, newA);
  const h = <u32>load<u16>(ip, 10);
  store<u16>(ip, <u16>~fold(<u64>(~h & 0xffff) + addrDelta), 10);
  applyMacRewrite(pkt, descGet(slot, DESC_LINK), rec, false);
  return outcome(VERDICT_FORWARD, REASON_NONE);
}

/**
 * Rewrites the destination (toDst) or the source of the parsed packet to the record's.
 * Inlined into natDnat / natSnat and into applyParsed's dispatch (saving a call).
 */
@inline export function natRewrite(slot: u32, pkt: usize, rec: usize, toDst: bool): u32 {
  const family = pFamily;
  if (<u32>load<u8>(rec + A_FAMILY) != family) return outcome(VERDICT_DROP, REASON_UNSUPPORTED);
  const proto = pProto;
  if (family == 4 && (proto == PROTO_TCP || proto == PROTO_UDP) && pFrag != FRAG_LATER) {
    return natRewrite4(slot, pkt, rec, toDst, proto);
  }
  return natRewriteGeneric(slot, pkt, rec, toDst, family, proto);
}

/** Every other case: IPv6, ICMP echo, later fragments. */
function natRewriteGeneric(slot: u32, pkt: usize, rec: usize, toDst: bool, family: u32, proto: u32): u32 {
  const isIcmp = family == 4 ? proto == PROTO_ICMP : proto == PROTO_ICMPV6;
  if (proto != PROTO_TCP && proto != PROTO_UDP && !isIcmp) {
    return outcome(VERDICT_DROP, REASON_UNSUPPORTED);
  }
  const later = pFrag == FRAG_LATER;
  // ICMP errors about a flow go through icmp-nat.ts (they carry a quoted packet).
  if (isIcmp && !later && !isEcho(family, pIcmpType)) return outcome(VERDICT_DROP, REASON_UNSUPPORTED);

  const addr = pkt + <usize>(toDst ? pDstAddr : pSrcAddr);
  const alen: u32 = family == 4 ? 4 : 16;
  // The delta is read from the old address, so it is taken before anything is written.
  const addrDelta = csumDeltaBytes(addr, rec + A_ADDR, alen);

  if (!later && offPartial) {
    // TCP / UDP with a partial checksum (offload.ts checked the field's place).
    const l4 = pkt + <usize>pL4;
    const port = <u32>load<u16>(rec + A_PORT);
    if (port != 0) wr16(l4 + <usize>(toDst ? 2 : 0), port);
    const at = l4 + <usize>(proto == PROTO_TCP ? 16 : 6);
    wr16(at, fold(<u64>rd16(at) + addrDelta));
  } else if (!later) {
    const l4 = pkt + <usize>pL4;
    let delta: u64 = l4CsumHasPseudo(proto, family) ? addrDelta : 0;
    const port = <u32>load<u16>(rec + A_PORT);
    if (port != 0 && (proto == PROTO_TCP || proto == PROTO_UDP)) {
      const portAt = l4 + <usize>(toDst ? 2 : 0);
      delta += csumDelta16(rd16(portAt), port);
      wr16(portAt, port);
    }
    // ICMPv4 echo with no port change has a zero delta: its checksum stays as it was.
    if (delta != 0) l4CsumApply(l4, pL4Len, proto, family, delta);
  }

  if (family == 4) {
    store<u32>(addr, load<u32>(rec + A_ADDR));
    csumFieldApply(pkt + <usize>pL3 + 10, addrDelta);
  } else {
    copy16(addr, rec + A_ADDR);
  }
  applyMacRewrite(pkt, descGet(slot, DESC_LINK), rec, false);
  return outcome(VERDICT_FORWARD, REASON_NONE);
}

/** NAT inbound: destination address -> A_ADDR, destination port -> A_PORT (unless 0). */
export function natDnat(slot: u32, pkt: usize, rec: usize): u32 {
  return natRewrite(slot, pkt, rec, true);
}

/** NAT outbound (replies): source address -> A_ADDR, source port -> A_PORT (unless 0). */
export function natSnat(slot: u32, pkt: usize, rec: usize): u32 {
  return natRewrite(slot, pkt, rec, false);
}
