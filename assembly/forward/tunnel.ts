// TUN forwarding (ipvsadm -i): an outer IPv4 / IPv6 header (+ UDP/GUE or GRE) is written
// in place into the headroom in front of the packet; the inner IP packet never moves.
// Inner and outer family are independent (ipip, ip6ip6, 4in6, 6in4). A DF packet that no
// longer fits A_MTU after encapsulation is answered with frag-needed / packet-too-big.
//
// Choices, as ip_vs_xmit.c makes them unless said otherwise (docs/design.md, "Tunnels"):
// - outer TTL / hop limit = inner; DSCP copied; ECN per RFC 6040 normal mode (CE -> ECT(0));
// - outer IPv4 DF = inner DF; inner IPv6 sets DF (the kernel leaves it clear for 6in4: we
//   keep the no-fragmentation-in-transit promise IPv6 made to its sender);
// - outer IPv6 flow label = inner flow hash (the kernel sends 0 here);
// - GUE UDP source port = flow hash in 49152..65535 (the kernel maps into the local port range);
// - GUE UDP checksum: full when csum or remcsum is set, else 0, over IPv6 too (RFC 6935
//   zero-checksum tunnels, as udp6_set_csum(nocheck) does in the kernel);
// - GUE remcsum: the kernel adds the remote-checksum option only for CHECKSUM_PARTIAL skbs
//   (locally generated, inner checksum not yet computed). Packets in our slots came off a
//   wire with their inner checksum complete, so, like the kernel for such packets, we add
//   no option and compute the outer UDP checksum;
// - DF clear and too big: IPVS would fragment the outer packet; we drop REASON_TOO_BIG.
// - GSO super-packets (offload record, net/offload.ts) are not encapsulated here: marked
//   deferred, cut by the host into segments, and each segment comes back through here.

import { offPartial, offGso, offloadComplete, GSO_NONE, OFF_DEFERRED } from "../net/offload";
import { gsoSegmentIpLen } from "./segment";
import { offloadPtr, slotPtr, descGet, descSet, DESC_OFFSET, DESC_LENGTH, DESC_LINK } from "../layout";
import { rd8, rd16, wr8, wr16, wr32, copy16 } from "../net/bytes";
import { checksum, sumBytes, pseudoSum4, pseudoSum6, finish, fold } from "../net/checksum";
import {
  IPV4_HLEN, IPV6_HLEN, UDP_HLEN, GUE_HLEN, GRE_HLEN, PROTO_IPIP, PROTO_IPV6, PROTO_UDP,
  PROTO_GRE, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ICMP_DEST_UNREACH, ICMP_CODE_FRAG_NEEDED,
  ICMPV6_PACKET_TOO_BIG,
} from "../net/constants";
import { pL3, pFamily, pIpLen, pEtherTypeOff } from "../net/parse";
import {
  VERDICT_DROP, VERDICT_FORWARD, REASON_NONE, REASON_NO_HEADROOM, REASON_TOO_BIG,
  REASON_BAD_ACTION,
} from "../verdict";
import {
  outcome, A_ADDR, A_TUN_SRC, A_FAMILY, A_TUN_TYPE, A_TUN_FLAGS, A_TUN_PORT, A_MTU,
  TUN_IPIP, TUN_GUE, TUN_GRE, TUNF_CSUM, TUNF_REMCSUM,
} from "./action";
import { applyMacRewrite, setEtherTypeFor } from "./l2";
import { innerFlowHash, flowSourcePort, flowLabel } from "./tunnel-hash";
import { icmpErrorReply } from "./icmp-generate";

/** RFC 791: every IPv4 link carries 68 bytes; below that the kernel refuses to tunnel. */
const MIN_MTU4: u32 = 68;
/** RFC 8200 minimum link MTU; an ICMPv6 packet-too-big never reports less (RFC 8201). */
const MIN_MTU6: u32 = 1280;
/** GRE flag: checksum present (RFC 2784). */
const GRE_FLAG_CSUM: u32 = 0x8000;

let outerIpId: u32 = 0;

/** Bytes the tunnel header stack (outer IP and what follows it) takes for this record. */
@inline function encapSize(family: u32, type: u32, flags: u32): u32 {
  let n: u32 = family == 4 ? IPV4_HLEN : IPV6_HLEN;
  if (type == TUN_GUE) n += UDP_HLEN + GUE_HLEN;
  else if (type == TUN_GRE) n += GRE_HLEN + ((flags & TUNF_CSUM) != 0 ? 4 : 0);
  return n;
}

/** Inner DS field (DSCP + ECN): IPv4 TOS or IPv6 traffic class. */
@inline function innerDsField(ip: usize, family: u32): u32 {
  return family == 4 ? rd8(ip + 1) : (rd16(ip) >> 4) & 0xff;
}

/** RFC 6040 normal-mode encapsulation: outer ECN = inner, except CE becomes ECT(0). */
@inline function encapDsField(ds: u32): u32 {
  return (ds & 3) == 3 ? (ds & 0xfc) | 2 : ds;
}

export function tunnelEncap(slot: u32, pkt: usize, rec: usize): u32 {
  const family = <u32>load<u8>(rec + A_FAMILY);
  const type = <u32>load<u8>(rec + A_TUN_TYPE);
  const flags = <u32>load<u8>(rec + A_TUN_FLAGS);
  if ((family != 4 && family != 6) || type > TUN_GRE) return outcome(VERDICT_DROP, REASON_BAD_ACTION);
  const guePort = <u32>load<u16>(rec + A_TUN_PORT);
  if (type == TUN_GUE && guePort == 0) return outcome(VERDICT_DROP, REASON_BAD_ACTION);

  const encap = encapSize(family, type, flags);
  const inner = pkt + pL3;
  const innerV4 = pFamily == 4;

  // Path MTU: decided before anything is written, so an ICMP error quotes the original.
  // A GSO super-packet is judged by its segments' size: they are what goes on the wire.
  const mtu = <u32>load<u16>(rec + A_MTU);
  const wireLen = offGso != GSO_NONE ? gsoSegmentIpLen(slot, pkt) : pIpLen;
  if (mtu != 0 && wireLen + encap > mtu) {
    const dontFragment = !innerV4 || (rd16(inner + 6) & 0x4000) != 0;
    if (!dontFragment) return outcome(VERDICT_DROP, REASON_TOO_BIG);
    const room: i32 = <i32>mtu - <i32>encap;
    if (innerV4) {
      if (room < <i32>MIN_MTU4) return outcome(VERDICT_DROP, REASON_TOO_BIG);
      return icmpErrorReply(slot, pkt, ICMP_DEST_UNREACH, ICMP_CODE_FRAG_NEEDED, <u32>room);
    }
    const report: u32 = room < <i32>MIN_MTU6 ? MIN_MTU6 : <u32>room;
    return icmpErrorReply(slot, pkt, ICMPV6_PACKET_TOO_BIG, 0, report);
  }
  // No virtio_net_hdr describes a TCP / UDP super-packet inside IP-in-IP, GUE or GRE: the
  // packet is left as it is, marked; the host cuts it into segments (segment.ts) and
  // applies this action to each (docs/io.md, "Where a super-packet is cut").
  if (offGso != GSO_NONE) {
    store<u8>(offloadPtr(slot) + OFF_DEFERRED, 1);
    return outcome(VERDICT_FORWARD, REASON_NONE);
  }
  // A partial checksum inside a tunnel would be completed by nobody: complete it now.
  if (offPartial) offloadComplete(slot, pkt);
  // Length fields: IPv4 total length and IPv6 payload length are 16 bits.
  if (pIpLen + encap - (family == 6 ? IPV6_HLEN : 0) > 0xffff) return outcome(VERDICT_DROP, REASON_TOO_BIG);

  const headroom = <u32>(pkt - slotPtr(slot));
  if (headroom < encap) return outcome(VERDICT_DROP, REASON_NO_HEADROOM);

  // Everything read from the inner header before the link header moves.
  const ds = encapDsField(innerDsField(inner, pFamily));
  const ttl = innerV4 ? rd8(inner + 8) : rd8(inner + 7);
  const df = innerV4 ? (rd16(inner + 6) & 0x4000) : 0x4000;
  // The flow hash feeds only the GUE source port and the outer IPv6 flow label.
  const hash = type == TUN_GUE || family == 6 ? innerFlowHash(pkt) : 0;
  const innerProto = innerV4 ? PROTO_IPIP : PROTO_IPV6;

  // Link header (Ethernet + VLAN tags) moves back by the encapsulation size.
  const linkLen = pL3;
  const start = pkt - encap;
  if (linkLen != 0) {
    memory.copy(start, pkt, linkLen);
    setEtherTypeFor(start, pEtherTypeOff, family);
  }
  const outer = start + linkLen;
  const ipHdr: u32 = family == 4 ? IPV4_HLEN : IPV6_HLEN;
  const l4 = outer + ipHdr;
  const l4Len = encap - ipHdr + pIpLen; // bytes after the outer IP header
  let outerProto = innerProto;

  if (type == TUN_GUE) {
    outerProto = PROTO_UDP;
    wr16(l4, flowSourcePort(hash));
    wr16(l4 + 2, guePort);
    wr16(l4 + 4, l4Len);
    wr16(l4 + 6, 0);
    // GUE variant 0: version 0, C = 0, hlen 0, proto = inner IP, flags 0.
    wr32(l4 + UDP_HLEN, innerProto << 16);
  } else if (type == TUN_GRE) {
    outerProto = PROTO_GRE;
    const csum = (flags & TUNF_CSUM) != 0;
    wr16(l4, csum ? GRE_FLAG_CSUM : 0);
    wr16(l4 + 2, innerV4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
    if (csum) {
      wr32(l4 + 4, 0); // checksum + reserved1, zero while summing
      wr16(l4 + 4, checksum(l4, l4Len));
    }
  }

  if (family == 4) {
    // The header as five native-order (little-endian) u32 words, stored whole; their sum
    // gives the header checksum without reading the header back or swapping a byte
    // (RFC 1071 section 2(B)). Checksum field (bytes 10..11, high half of w2) zero in the sum.
    outerIpId = (outerIpId + 1) & 0xffff;
    // w0 typed u32: AssemblyScript types `0x45 | ...` by its left operand (i32), and a
    // signed w0 (a total length whose low byte is >= 0x80 lands in bit 31) sign-extended
    // into the u64 sum below, leaving the header checksum one short.
    const w0: u32 = 0x45 | (ds << 8) | (<u32>bswap<u16>(<u16>(IPV4_HLEN + l4Len)) << 16);
    const w1 = <u32>bswap<u16>(<u16>outerIpId) | (<u32>bswap<u16>(<u16>df) << 16);
    const w2 = ttl | (outerProto << 8);
    const w3 = load<u32>(rec + A_TUN_SRC);
    const w4 = load<u32>(rec + A_ADDR);
    const sum = <u64>w0 + <u64>w1 + <u64>w2 + <u64>w3 + <u64>w4;
    store<u32>(outer, w0);
    store<u32>(outer, w1, 4);
    store<u32>(outer, w2 | ((~fold(sum) & 0xffff) << 16), 8);
    store<u32>(outer, w3, 12);
    store<u32>(outer, w4, 16);
  } else {
    wr32(outer, 0x60000000 | (ds << 20) | flowLabel(hash));
    wr16(outer + 4, l4Len);
    wr8(outer + 6, outerProto);
    wr8(outer + 7, ttl);
    copy16(outer + 8, rec + A_TUN_SRC);
    copy16(outer + 24, rec + A_ADDR);
  }

  if (type == TUN_GUE && (flags & (TUNF_CSUM | TUNF_REMCSUM)) != 0) {
    const pseudo = family == 4
      ? pseudoSum4(outer + 12, outer + 16, PROTO_UDP, l4Len)
      : pseudoSum6(outer + 8, outer + 24, PROTO_UDP, l4Len);
    const c = finish(sumBytes(l4, l4Len, pseudo));
    wr16(l4 + 6, c == 0 ? 0xffff : c); // 0 means "no checksum" in UDP
  }

  applyMacRewrite(start, descGet(slot, DESC_LINK), rec, false);
  descSet(slot, DESC_OFFSET, headroom - encap);
  descSet(slot, DESC_LENGTH, linkLen + encap + pIpLen); // Ethernet padding dropped
  return outcome(VERDICT_FORWARD, REASON_NONE);
}
