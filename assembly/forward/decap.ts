// Real-server side of TUN forwarding, for hosts without the ipip / fou / gre modules:
// strips an outer IPv4 / IPv6 header carrying ipip (4), IPv6 (41), GRE (47, RFC 2784/2890)
// or UDP to the record's GUE port (variant 0 with options, or variant 1 "direct IP").
// The inner packet stays where it is; the link header moves forward over the outer headers.
//
// Outcomes: FORWARD with the inner packet; PASS (REASON_NONE) when it is no tunnel packet
// we handle (the host's stack sees it unchanged); DROP for a tunnel packet that is broken.
// ECN is decapsulated per RFC 6040 (outer CE marks an ECN-capable inner packet CE; a
// not-ECT inner packet under an outer CE is dropped), as the kernel's tunnels do.

import { slotPtr, descGet, descSet, DESC_OFFSET, DESC_LENGTH, DESC_LINK } from "../layout";
import { rd8, rd16, rd32, wr8, wr16 } from "../net/bytes";
import { sumBytes, pseudoSum4, pseudoSum6, fold, finish, csumReplace16 } from "../net/checksum";
import {
  PROTO_IPIP, PROTO_IPV6, PROTO_UDP, PROTO_GRE, UDP_HLEN, GUE_HLEN, GRE_HLEN,
  ETHERTYPE_IPV4, ETHERTYPE_IPV6,
} from "../net/constants";
import {
  parsePacket, pL3, pL4, pL4Len, pFamily, pProto, pFrag, pDport, pIpLen, pEtherTypeOff,
  pSrcAddr, pDstAddr, FRAG_NONE, FRAG_LATER,
} from "../net/parse";
import {
  VERDICT_DROP, VERDICT_FORWARD, VERDICT_PASS, REASON_NONE, REASON_FRAGMENT,
  REASON_BAD_L4_HEADER, REASON_BAD_L4_CHECKSUM, REASON_BAD_VERSION, REASON_UNSUPPORTED,
} from "../verdict";
import { outcome, A_TUN_PORT } from "./action";
import { applyMacRewrite, setEtherTypeFor } from "./l2";

// GRE flag word (RFC 2784 / 2890): C, R, K, S, s, recursion, version.
const GRE_C: u32 = 0x8000;
const GRE_K: u32 = 0x2000;
const GRE_S: u32 = 0x1000;
/** Bits a receiver must find zero (RFC 2784 section 2.3: bits 1 and 4-5; version 0). */
const GRE_MUST_BE_ZERO: u32 = 0x4000 | 0x0800 | 0x0400 | 0x0007;

// GUE (draft-ietf-intarea-gue; Linux include/net/gue.h): flags and private flags we know.
const GUE_FLAG_PRIV: u32 = 0x0001;
const GUE_PFLAG_REMCSUM: u32 = 0x80000000;

// Where the inner packet is, found by the header walk (offsets from pkt).
let innerOff: u32 = 0;
let innerFamily: u32 = 0;
/** End of the bytes that carry the inner packet (UDP length for GUE, else the outer IP end). */
let innerEnd: u32 = 0;
// Remote checksum offload: start and checksum field, relative to the inner packet; 0xffffffff = none.
let remStart: u32 = 0;
let remField: u32 = 0xffffffff;

const NOT_OURS: u32 = 0xffffffff;

/** Inner family for an IP-in-IP protocol or GRE / GUE protocol number; 0 if not IP. */
@inline function familyOfProto(proto: u32): u32 {
  return proto == PROTO_IPIP ? 4 : proto == PROTO_IPV6 ? 6 : 0;
}

/** GRE at pL4: finds the inner packet. Returns NOT_OURS, a drop reason, or REASON_NONE. */
function walkGre(pkt: usize): u32 {
  if (pL4Len < GRE_HLEN) return REASON_BAD_L4_HEADER;
  const gre = pkt + pL4;
  const fl = rd16(gre);
  if ((fl & 7) != 0) return NOT_OURS; // version 1 is PPTP: the host's business
  if ((fl & GRE_MUST_BE_ZERO) != 0) return REASON_BAD_L4_HEADER;
  const ptype = rd16(gre + 2);
  if (ptype == ETHERTYPE_IPV4) innerFamily = 4;
  else if (ptype == ETHERTYPE_IPV6) innerFamily = 6;
  else return NOT_OURS; // e.g. transparent Ethernet bridging
  let hlen = GRE_HLEN;
  if ((fl & GRE_C) != 0) hlen += 4;
  if ((fl & GRE_K) != 0) hlen += 4;
  if ((fl & GRE_S) != 0) hlen += 4;
  if (hlen > pL4Len) return REASON_BAD_L4_HEADER;
  // The checksum covers the GRE header and its payload: a correct one sums to zero.
  if ((fl & GRE_C) != 0 && finish(sumBytes(gre, pL4Len, 0)) != 0) return REASON_BAD_L4_CHECKSUM;
  innerOff = pL4 + hlen;
  return REASON_NONE;
}

/** UDP at pL4 to the GUE port: verifies the UDP checksum, walks GUE. */
function walkGue(pkt: usize): u32 {
  const udp = pkt + pL4;
  const ulen = rd16(udp + 4);
  if (ulen < UDP_HLEN + 1 || ulen > pL4Len) return REASON_BAD_L4_HEADER;
  if (rd16(udp + 6) != 0) {
    const pseudo = pFamily == 4
      ? pseudoSum4(pkt + pSrcAddr, pkt + pDstAddr, PROTO_UDP, ulen)
      : pseudoSum6(pkt + pSrcAddr, pkt + pDstAddr, PROTO_UDP, ulen);
    if (finish(sumBytes(udp, ulen, pseudo)) != 0) return REASON_BAD_L4_CHECKSUM;
  }
  // A zero checksum is accepted over IPv6 too: RFC 6935 tunnels, as Linux fou sockets do.
  innerEnd = pL4 + ulen;
  const g = udp + UDP_HLEN;
  const glen = ulen - UDP_HLEN;
  const b0 = rd8(g);
  const variant = b0 >> 6;
  if (variant == 1) {
    // Variant 1: no GUE header, the IP header follows UDP directly.
    const v = b0 >> 4;
    if (v == 4) innerFamily = 4;
    else if (v == 6) innerFamily = 6;
    else return REASON_UNSUPPORTED;
    innerOff = pL4 + UDP_HLEN;
    return REASON_NONE;
  }
  if (variant != 0) return REASON_UNSUPPORTED;
  if (glen < GUE_HLEN) return REASON_BAD_L4_HEADER;
  if ((b0 & 0x20) != 0) return NOT_OURS; // control message: not data for us
  const optLen = (b0 & 0x1f) << 2;
  if (GUE_HLEN + optLen > glen) return REASON_BAD_L4_HEADER;
  innerFamily = familyOfProto(rd8(g + 1));
  if (innerFamily == 0) return REASON_UNSUPPORTED;
  const flags = rd16(g + 2);
  // Options are laid out in flag order; with flags we do not know we cannot find ours.
  if ((flags & ~GUE_FLAG_PRIV) != 0) return REASON_UNSUPPORTED;
  if ((flags & GUE_FLAG_PRIV) != 0) {
    if (optLen < 4) return REASON_BAD_L4_HEADER;
    const pflags = rd32(g + GUE_HLEN);
    if ((pflags & ~GUE_PFLAG_REMCSUM) != 0) return REASON_UNSUPPORTED;
    if ((pflags & GUE_PFLAG_REMCSUM) != 0) {
      if (optLen < 8) return REASON_BAD_L4_HEADER;
      remStart = rd16(g + GUE_HLEN + 4);
      remField = rd16(g + GUE_HLEN + 6);
    }
  }
  innerOff = pL4 + UDP_HLEN + GUE_HLEN + optLen;
  return REASON_NONE;
}

export function tunnelDecap(slot: u32, pkt: usize, rec: usize): u32 {
  const link = descGet(slot, DESC_LINK);
  const guePort = <u32>load<u16>(rec + A_TUN_PORT);
  const end = pL3 + pIpLen; // outer IP end; Ethernet padding after it is not ours
  remField = 0xffffffff;
  innerEnd = end;

  let r: u32;
  const ipProtoFamily = familyOfProto(pProto);
  if (ipProtoFamily != 0) {
    if (pFrag != FRAG_NONE) return outcome(VERDICT_DROP, REASON_FRAGMENT);
    innerFamily = ipProtoFamily;
    innerOff = pL4;
    r = REASON_NONE;
  } else if (pProto == PROTO_GRE) {
    if (pFrag != FRAG_NONE) return outcome(VERDICT_DROP, REASON_FRAGMENT);
    r = walkGre(pkt);
  } else if (pProto == PROTO_UDP && guePort != 0 && pFrag != FRAG_LATER && pDport == guePort) {
    if (pFrag != FRAG_NONE) return outcome(VERDICT_DROP, REASON_FRAGMENT);
    r = walkGue(pkt);
  } else {
    return outcome(VERDICT_PASS, REASON_NONE);
  }
  if (r == NOT_OURS) return outcome(VERDICT_PASS, REASON_NONE);
  if (r != REASON_NONE) return outcome(VERDICT_DROP, r);
  if (innerOff >= innerEnd) return outcome(VERDICT_DROP, REASON_BAD_L4_HEADER);
  const inner = pkt + innerOff;
  if (rd8(inner) >> 4 != innerFamily) return outcome(VERDICT_DROP, REASON_BAD_VERSION);

  // Read what we need from the outer header before the link header is moved over it.
  const outerCE = (pFamily == 4 ? rd8(pkt + pL3 + 1) & 3 : (rd16(pkt + pL3) >> 4) & 3) == 3;
  const linkLen = pL3;
  const etherTypeOff = pEtherTypeOff;
  const start = pkt + innerOff - linkLen;
  const innerAvail = innerEnd - innerOff;

  // Remote checksum offload: the inner checksum field holds the pseudo-header sum; the
  // real checksum is the complement of the sum from `start` to the end of the payload.
  if (remField != 0xffffffff) {
    if (remStart >= innerAvail || remField + 2 > innerAvail) return outcome(VERDICT_DROP, REASON_BAD_L4_HEADER);
    wr16(inner + remField, finish(sumBytes(inner + remStart, innerAvail - remStart, 0)));
  }

  if (linkLen != 0) {
    memory.copy(start, pkt, linkLen);
    setEtherTypeFor(start, etherTypeOff, innerFamily);
  }
  const status = parsePacket(start, linkLen + innerAvail, link);
  if (status != REASON_NONE) return outcome(VERDICT_DROP, status);

  if (outerCE) {
    const ip = start + pL3;
    const ds = pFamily == 4 ? rd8(ip + 1) : (rd16(ip) >> 4) & 0xff;
    if ((ds & 3) == 0) return outcome(VERDICT_DROP, REASON_UNSUPPORTED); // RFC 6040 4.2: not-ECT under CE
    if ((ds & 3) != 3) {
      if (pFamily == 4) {
        const old = rd16(ip);
        wr8(ip + 1, ds | 3);
        wr16(ip + 10, csumReplace16(rd16(ip + 10), old, rd16(ip)));
      } else {
        wr16(ip, rd16(ip) | 0x0030);
      }
    }
  }

  applyMacRewrite(start, link, rec, false);
  descSet(slot, DESC_OFFSET, <u32>(start - slotPtr(slot)));
  descSet(slot, DESC_LENGTH, pL3 + pIpLen);
  return outcome(VERDICT_FORWARD, REASON_NONE);
}
