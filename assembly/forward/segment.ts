// Software GSO: cutting a super-packet (offload record gso_type TCPV4 / TCPV6 / UDP_L4,
// net/offload.ts) into the packets a wire carries, each with complete checksums. Used
// where the packet cannot leave whole: an egress without offloads, and tunnels (no
// virtio_net_hdr describes TCP inside IP-in-IP), whose action is then applied to each
// segment. The rules are the kernel's (net/ipv4/tcp_offload.c tcp_gso_segment,
// net/ipv4/udp_offload.c __udp_gso_segment, net/ipv4/af_inet.c inet_gso_segment):
// - every segment repeats the headers up to the end of the TCP / UDP header, and carries
//   gso_size payload bytes (the last one the rest);
// - IPv4: total length and header checksum per segment, the ID incremented per segment;
//   IPv6: payload length per segment;
// - TCP: sequence number advanced by the payload before it; CWR only on the first
//   segment, FIN and PSH only on the last; UDP: each segment is a datagram with its own
//   length;
// - the L4 checksum is computed over each segment (pseudo-header included); UDP's 0 is
//   sent as 0xFFFF.
// Segments go to other slots (the host gives a range), behind the headroom, with the
// source's descriptor (link, mark, verdict, destination, aux) and a zero offload record.

import {
  slotPtr, descGet, descSet, offloadPtr, slotCount, slotStride, HEADROOM, DESC_OFFSET,
  DESC_LENGTH, DESC_LINK, DESC_MARK, DESC_VERDICT, DESC_REASON, DESC_ACTION, DESC_AUX,
} from "../layout";
import { rd8, rd16, rd32, wr8, wr16, wr32 } from "../net/bytes";
import { checksum, sumBytes, pseudoSum4, pseudoSum6, finish } from "../net/checksum";
import { PROTO_TCP } from "../net/constants";
import { parsePacket, pL3, pL4, pIpLen, pFamily, pProto, pSrcAddr, pDstAddr, pL4Len } from "../net/parse";
import {
  offloadCheck, offloadClear, offGso, GSO_NONE, OFF_GSO_SIZE,
} from "../net/offload";
import { REASON_NONE } from "../verdict";

const TH_FIN: u32 = 0x01;
const TH_PSH: u32 = 0x08;
const TH_CWR: u32 = 0x80;

/** Bytes of the L4 header of the parsed packet (TCP data offset, or UDP's 8); 0 if short. */
@inline function l4HeaderLen(pkt: usize): u32 {
  if (pProto != PROTO_TCP) return pL4Len >= 8 ? 8 : 0;
  if (pL4Len < 20) return 0;
  const n = (rd8(pkt + <usize>pL4 + 12) >> 4) << 2;
  return n >= 20 && n <= pL4Len ? n : 0;
}

/**
 * IP length of the largest segment of slot i's parsed GSO packet (what the wire carries):
 * headers from the IP header to the end of the L4 header plus gso_size, at most the
 * packet's own IP length.
 */
export function gsoSegmentIpLen(i: u32, pkt: usize): u32 {
  const seg = (pL4 - pL3) + l4HeaderLen(pkt) + <u32>load<u16>(offloadPtr(i) + OFF_GSO_SIZE);
  return seg < pIpLen ? seg : pIpLen;
}

let segHdr: u32 = 0; // link + IP + L4 header bytes
let segPayload: u32 = 0;
let segSize: u32 = 0;

/** Parses and checks slot src as a GSO packet; true when it can be cut (sets seg*). */
function prepare(src: u32): bool {
  if (src >= slotCount) return false;
  const off = descGet(src, DESC_OFFSET);
  const len = descGet(src, DESC_LENGTH);
  if (off > slotStride || len > slotStride - off) return false;
  const pkt = slotPtr(src) + off;
  if (parsePacket(pkt, len, descGet(src, DESC_LINK)) != REASON_NONE) return false;
  if (offloadCheck(src) != REASON_NONE || offGso == GSO_NONE) return false;
  const l4h = l4HeaderLen(pkt);
  if (l4h == 0) return false;
  segHdr = pL4 + l4h;
  const end = pL3 + pIpLen;
  if (end < segHdr) return false;
  segPayload = end - segHdr;
  segSize = <u32>load<u16>(offloadPtr(src) + OFF_GSO_SIZE);
  // A segment must fit a slot behind the headroom.
  if (segHdr + segSize + HEADROOM > slotStride) return false;
  return true;
}

/** Number of segments slot src's GSO packet is cut into; 0 when it is not a valid GSO packet. */
export function gsoSegmentCount(src: u32): u32 {
  if (!prepare(src)) return 0;
  if (segPayload == 0) return 1;
  return (segPayload + segSize - 1) / segSize;
}

/**
 * Writes segments [first, first + max) of slot src's GSO packet into slots out, out + 1 ...
 * and returns how many it wrote (0 when src is not a valid GSO packet, or the range is
 * empty). The source slot is left as it was; the output slots must not include it.
 */
export function gsoSegment(src: u32, first: u32, out: u32, max: u32): u32 {
  if (!prepare(src)) return 0;
  const total: u32 = segPayload == 0 ? 1 : (segPayload + segSize - 1) / segSize;
  if (first >= total || out >= slotCount) return 0;
  let n = total - first;
  if (n > max) n = max;
  if (n > slotCount - out) n = slotCount - out;
  if (src >= out && src < out + n) return 0;
  const pkt = slotPtr(src) + descGet(src, DESC_OFFSET);
  const hdr = segHdr;
  const l3 = pL3;
  const l4 = pL4;
  const family = pFamily;
  const proto = pProto;
  const tcp = proto == PROTO_TCP;
  const id0 = family == 4 ? rd16(pkt + <usize>l3 + 4) : 0;
  const seq0 = tcp ? rd32(pkt + <usize>l4 + 4) : 0;
  const flags0 = tcp ? rd8(pkt + <usize>l4 + 13) : 0;
  const csumField: u32 = tcp ? 16 : 6;
  const srcAddr = pSrcAddr;
  const dstAddr = pDstAddr;
  for (let j: u32 = 0; j < n; j++) {
    const k = first + j;
    const o = out + j;
    const at = k * segSize;
    const plen = segPayload - at < segSize ? segPayload - at : segSize;
    const seg = slotPtr(o) + HEADROOM;
    memory.copy(seg, pkt, hdr);
    memory.copy(seg + <usize>hdr, pkt + <usize>hdr + <usize>at, plen);
    const ip = seg + <usize>l3;
    const ipLen = hdr - l3 + plen;
    if (family == 4) {
      wr16(ip + 2, ipLen);
      wr16(ip + 4, (id0 + k) & 0xffff);
      wr16(ip + 10, 0);
      wr16(ip + 10, checksum(ip, (rd8(ip) & 0xf) << 2));
    } else {
      wr16(ip + 4, ipLen - 40);
    }
    const th = seg + <usize>l4;
    const l4Len = hdr - l4 + plen;
    if (tcp) {
      wr32(th + 4, seq0 + at);
      let f = flags0;
      if (k != 0) f &= ~TH_CWR;
      if (k != total - 1) f &= ~(TH_FIN | TH_PSH);
      wr8(th + 13, f);
    } else {
      wr16(th + 4, l4Len);
    }
    wr16(th + <usize>csumField, 0);
    const pseudo = family == 4
      ? pseudoSum4(seg + <usize>srcAddr, seg + <usize>dstAddr, proto, l4Len)
      : pseudoSum6(seg + <usize>srcAddr, seg + <usize>dstAddr, proto, l4Len);
    let c = finish(sumBytes(th, l4Len, pseudo));
    if (c == 0 && !tcp) c = 0xffff;
    wr16(th + <usize>csumField, c);
    descSet(o, DESC_OFFSET, HEADROOM);
    descSet(o, DESC_LENGTH, hdr + plen);
    descSet(o, DESC_LINK, descGet(src, DESC_LINK));
    descSet(o, DESC_MARK, descGet(src, DESC_MARK));
    descSet(o, DESC_VERDICT, descGet(src, DESC_VERDICT));
    descSet(o, DESC_REASON, descGet(src, DESC_REASON));
    descSet(o, DESC_ACTION, descGet(src, DESC_ACTION));
    descSet(o, DESC_AUX, descGet(src, DESC_AUX));
    offloadClear(o);
  }
  return n;
}
