// Header parser: Ethernet (+ up to two 802.1Q/802.1ad tags), IPv4 with options and
// fragments, IPv6 with its extension-header chain, then TCP, UDP, ICMP, ICMPv6.
// Results land in module globals (no allocation); offsets are relative to the packet start.
// Every length is checked against the bytes we were given before it is used, so any byte
// string yields a status and nothing is read past the end.

import { rd8, rd16 } from "./bytes";
import { ipv4HeaderChecksumOk } from "./checksum";
import {
  ETH_HLEN, VLAN_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, ETHERTYPE_QINQ,
  MAX_VLAN_TAGS, IPV4_HLEN, IPV6_HLEN, MAX_IPV6_EXT_HEADERS, LINK_ETHERNET,
  PROTO_HOPOPTS, PROTO_ROUTING, PROTO_FRAGMENT, PROTO_DSTOPTS, PROTO_AH, PROTO_TCP,
  PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6, PROTO_GRE, PROTO_IPIP, PROTO_IPV6, TCP_HLEN,
  UDP_HLEN, ICMP_HLEN, ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY, ICMPV6_ECHO_REQUEST,
  ICMPV6_ECHO_REPLY,
} from "./constants";
import {
  REASON_NONE, REASON_TRUNCATED, REASON_BAD_VERSION, REASON_BAD_HEADER_LENGTH,
  REASON_BAD_TOTAL_LENGTH, REASON_BAD_IP_CHECKSUM, REASON_BAD_L4_HEADER,
  REASON_EXT_HEADER_CHAIN, REASON_NOT_IP,
} from "../verdict";

/** Fragment classes. */
export const FRAG_NONE: u32 = 0;
/** First fragment: carries the L4 header. */
export const FRAG_FIRST: u32 = 1;
/** Later fragment: no L4 header; ports unknown. */
export const FRAG_LATER: u32 = 2;

// ---- Parse results (valid after parsePacket returned REASON_NONE) ----
/** Offset of the EtherType field that announces IP (for re-typing on encapsulation). */
export let pEtherTypeOff: u32 = 0;
/** Offset of the IP header. */
export let pL3: u32 = 0;
/** 4 or 6. */
export let pFamily: u32 = 0;
/** Bytes of IP packet (header + payload) from pL3, per the IP length fields. */
export let pIpLen: u32 = 0;
/** Offset of the upper-layer header (after options / extension headers). */
export let pL4: u32 = 0;
/** Upper-layer protocol number. */
export let pProto: u32 = 0;
/** Bytes from pL4 to the end of the IP packet. */
export let pL4Len: u32 = 0;
/** FRAG_NONE, FRAG_FIRST or FRAG_LATER. */
export let pFrag: u32 = FRAG_NONE;
/** Offset of the IPv6 fragment header, 0 if none. */
export let pFragHdr: u32 = 0;
/** TCP/UDP ports; for ICMP echo both are the query id; else 0. */
export let pSport: u32 = 0;
export let pDport: u32 = 0;
/** ICMP / ICMPv6 type and code (0 when not ICMP). */
export let pIcmpType: u32 = 0;
export let pIcmpCode: u32 = 0;
/** TCP flags byte (0 when not TCP). */
export let pTcpFlags: u32 = 0;
/** Offsets of the source and destination addresses (4 or 16 bytes each). */
export let pSrcAddr: u32 = 0;
export let pDstAddr: u32 = 0;

@inline function isIcmpEcho(family: u32, type: u32): bool {
  return family == 4
    ? type == ICMP_ECHO_REQUEST || type == ICMP_ECHO_REPLY
    : type == ICMPV6_ECHO_REQUEST || type == ICMPV6_ECHO_REPLY;
}

/**
 * Parses the packet at p (len bytes, link type `link`). Returns REASON_NONE when an IP
 * packet was parsed, REASON_NOT_IP for non-IP frames (the host should see them), or a
 * drop reason.
 */
export function parsePacket(p: usize, len: u32, link: u32): u32 {
  return parsePacketInline(p, len, link);
}

/** parsePacket, for inlining into the batch loop (assembly/forward/apply.ts). */
@inline export function parsePacketInline(p: usize, len: u32, link: u32): u32 {
  pEtherTypeOff = 0;
  pFrag = FRAG_NONE;
  pFragHdr = 0;
  pSport = 0;
  pDport = 0;
  pIcmpType = 0;
  pIcmpCode = 0;
  pTcpFlags = 0;
  // Fast path: IPv4 without options (version/IHL byte 0x45), raw or in an untagged
  // Ethernet frame, with at least the 20-byte header present. Same checks, same results as
  // parseSlow (both inline parseIPv4From); knowing IHL = 5 here lets the compiler drop the
  // options branch of the header-checksum check.
  if (link == LINK_ETHERNET) {
    if (len >= ETH_HLEN + IPV4_HLEN && load<u16>(p, 12) == bswap<u16>(<u16>ETHERTYPE_IPV4) && load<u8>(p, ETH_HLEN) == 0x45) {
      pEtherTypeOff = 12;
      pL3 = ETH_HLEN;
      return parseIPv4From(p, len, ETH_HLEN, 0x45);
    }
  } else if (len >= IPV4_HLEN && load<u8>(p) == 0x45) {
    pL3 = 0;
    return parseIPv4From(p, len, 0, 0x45);
  }
  return parseSlow(p, len, link);
}

/**
 * IPv4 header at l3 (first byte vihl, version 4) and then its upper-layer header. The
 * results stay in locals for the L4 step (a global, once stored, is read back from memory).
 */
@inline function parseIPv4From(p: usize, len: u32, l3: u32, vihl: u32): u32 {
  if (l3 + IPV4_HLEN > len) return REASON_TRUNCATED;
  const q = p + l3;
  const ihl = (vihl & 0x0f) << 2;
  if (ihl < IPV4_HLEN) return REASON_BAD_HEADER_LENGTH;
  if (l3 + ihl > len) return REASON_TRUNCATED;
  const total = rd16(q + 2);
  if (total < ihl) return REASON_BAD_TOTAL_LENGTH;
  if (l3 + total > len) return REASON_TRUNCATED;
  if (!ipv4HeaderChecksumOk(q, ihl)) return REASON_BAD_IP_CHECKSUM;
  // Flags + fragment offset, tested as loaded (little-endian: byte 6 low, byte 7 high), no
  // swap: the 13-bit offset is byte 6's low 5 bits and byte 7 (mask 0xFF1F), MF is 0x20.
  const fragField = <u32>load<u16>(q, 6);
  const frag = (fragField & 0xff1f) != 0 ? FRAG_LATER : (fragField & 0x0020) != 0 ? FRAG_FIRST : FRAG_NONE;
  const proto = <u32>load<u8>(q, 9);
  const l4 = l3 + ihl;
  const l4Len = total - ihl;
  pFrag = frag;
  pFamily = 4;
  pIpLen = total;
  pProto = proto;
  pL4 = l4;
  pL4Len = l4Len;
  pSrcAddr = l3 + 12;
  pDstAddr = l3 + 16;
  if (frag == FRAG_LATER) return REASON_NONE;
  return parseL4(p + l4, l4Len, proto, 4, frag);
}

/** Everything that is not plain IPv4 without options (untagged on Ethernet): the full parser. */
function parseSlow(p: usize, len: u32, link: u32): u32 {
  let l3: u32 = 0;
  if (link == LINK_ETHERNET) {
    if (len < ETH_HLEN) return REASON_TRUNCATED;
    let typeOff: u32 = 12;
    let etherType = rd16(p + typeOff);
    let tags: u32 = 0;
    while (etherType == ETHERTYPE_VLAN || etherType == ETHERTYPE_QINQ) {
      if (++tags > MAX_VLAN_TAGS) return REASON_NOT_IP;
      typeOff += VLAN_HLEN;
      if (typeOff + 2 > len) return REASON_TRUNCATED;
      etherType = rd16(p + typeOff);
    }
    pEtherTypeOff = typeOff;
    l3 = typeOff + 2;
    if (etherType != ETHERTYPE_IPV4 && etherType != ETHERTYPE_IPV6) return REASON_NOT_IP;
    if (l3 >= len) return REASON_TRUNCATED;
    const version = rd8(p + l3) >> 4;
    if ((etherType == ETHERTYPE_IPV4 && version != 4) || (etherType == ETHERTYPE_IPV6 && version != 6)) {
      return REASON_BAD_VERSION;
    }
  } else {
    if (len < 1) return REASON_TRUNCATED;
  }
  pL3 = l3;
  const vihl = rd8(p + l3);
  const version = vihl >> 4;
  if (version == 4) return parseIPv4From(p, len, l3, vihl);
  if (version != 6) return REASON_BAD_VERSION;
  const r = parseIPv6(p, len, l3);
  if (r != REASON_NONE) return r;
  if (pFrag == FRAG_LATER) return REASON_NONE;
  return parseL4(p + pL4, pL4Len, pProto, 6, pFrag);
}

function parseIPv6(p: usize, len: u32, l3: u32): u32 {
  if (l3 + IPV6_HLEN > len) return REASON_TRUNCATED;
  const payload = rd16(p + l3 + 4);
  // A zero payload length means a jumbogram (RFC 2675), which we do not carry.
  if (payload == 0 && rd8(p + l3 + 6) != 59) return REASON_BAD_TOTAL_LENGTH;
  const end = l3 + IPV6_HLEN + payload;
  if (end > len) return REASON_TRUNCATED;
  pFamily = 6;
  pIpLen = IPV6_HLEN + payload;
  pSrcAddr = l3 + 8;
  pDstAddr = l3 + 24;
  let next = rd8(p + l3 + 6);
  let off = l3 + IPV6_HLEN;
  for (let n: u32 = 0; ; n++) {
    if (
      next != PROTO_HOPOPTS && next != PROTO_ROUTING && next != PROTO_FRAGMENT &&
      next != PROTO_DSTOPTS && next != PROTO_AH
    ) break;
    if (n >= MAX_IPV6_EXT_HEADERS) return REASON_EXT_HEADER_CHAIN;
    // Hop-by-hop must come first (RFC 8200 section 4.1).
    if (next == PROTO_HOPOPTS && n != 0) return REASON_EXT_HEADER_CHAIN;
    if (off + 8 > end) return REASON_TRUNCATED;
    const hlen = extHeaderLength(p + off, next);
    if (next == PROTO_FRAGMENT) {
      const fragField = rd16(p + off + 2);
      pFragHdr = off;
      if ((fragField & 0xfff8) != 0) pFrag = FRAG_LATER;
      else if ((fragField & 1) != 0) pFrag = FRAG_FIRST;
      // An atomic fragment (offset 0, M = 0) is a whole packet (RFC 6946).
    }
    if (off + hlen > end) return REASON_TRUNCATED;
    next = rd8(p + off);
    off += hlen;
    if (pFrag == FRAG_LATER) break;
  }
  pProto = next;
  pL4 = off;
  pL4Len = end - off;
  return REASON_NONE;
}

/** The upper-layer header at l4 with `avail` bytes to the end of the IP packet. */
@inline function parseL4(l4: usize, avail: u32, proto: u32, family: u32, frag: u32): u32 {
  if (proto == PROTO_TCP) {
    if (avail < TCP_HLEN) return REASON_BAD_L4_HEADER;
    const doff = (rd8(l4 + 12) >> 4) << 2;
    if (doff < TCP_HLEN || doff > avail) return REASON_BAD_L4_HEADER;
    // Both ports from one load and one 32-bit swap.
    const ports = bswap<u32>(load<u32>(l4));
    pSport = ports >> 16;
    pDport = ports & 0xffff;
    pTcpFlags = rd8(l4 + 13);
  } else if (proto == PROTO_UDP) {
    if (avail < UDP_HLEN) return REASON_BAD_L4_HEADER;
    const ulen = rd16(l4 + 4);
    // A first fragment carries only part of the datagram the UDP length describes.
    if (frag == FRAG_NONE && (ulen < UDP_HLEN || ulen > avail)) return REASON_BAD_L4_HEADER;
    const ports = bswap<u32>(load<u32>(l4));
    pSport = ports >> 16;
    pDport = ports & 0xffff;
  } else if ((proto == PROTO_ICMP && family == 4) || (proto == PROTO_ICMPV6 && family == 6)) {
    if (avail < ICMP_HLEN) return REASON_BAD_L4_HEADER;
    const type = rd8(l4);
    pIcmpType = type;
    pIcmpCode = rd8(l4 + 1);
    if (isIcmpEcho(family, type)) {
      const id = rd16(l4 + 4);
      pSport = id;
      pDport = id;
    }
  }
  // Other protocols (GRE, IPIP, ESP, SCTP, ...) parse to the L4 offset only.
  return REASON_NONE;
}

/**
 * Length of the IPv6 extension header of type `next` at h (RFC 8200: fragment 8 bytes, AH
 * in 4-byte units + 2, the others in 8-byte units + 1). The caller checks it fits.
 */
@inline export function extHeaderLength(h: usize, next: u32): u32 {
  if (next == PROTO_FRAGMENT) return 8;
  if (next == PROTO_AH) return (rd8(h + 1) + 2) << 2;
  return (rd8(h + 1) + 1) << 3;
}

/** True when protocol `proto` is an IP-in-IP payload of the given inner family. */
export function isTunnelProto(proto: u32): bool {
  return proto == PROTO_IPIP || proto == PROTO_IPV6 || proto == PROTO_GRE;
}
