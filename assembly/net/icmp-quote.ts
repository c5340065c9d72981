// The packet an ICMP error quotes (RFC 792 / 4443: the offending packet's IP header and at
// least its first 8 bytes follow the 8-byte ICMP header). One reader for the datapath
// (icmpError: which connection the error is about) and for the worker owner hash
// (assembly/datapath/owner.ts), so both agree on what a quote is.

import { rd8, rd16 } from "./bytes";
import { pL4, pL4Len } from "./parse";
import { PROTO_TCP, PROTO_UDP, PROTO_SCTP } from "./constants";

/** The quoted packet's protocol, source and destination addresses (pointers) and ports. */
export let qProto: u32 = 0;
export let qSrc: usize = 0;
export let qDst: usize = 0;
export let qSport: u32 = 0;
export let qDport: u32 = 0;

/**
 * Reads the quote of the ICMP error just parsed (parse.ts's pL4, pL4Len) into q*. False when
 * the quote is too short or not TCP, UDP or SCTP (nothing a connection could match).
 */
export function readQuotedPacket(pkt: usize, family: u32): bool {
  const e = pkt + pL4 + 8;
  const avail: i32 = <i32>pL4Len - 8;
  let ports: usize;
  if (family == 4) {
    if (avail < 20) return false;
    const ihl = (rd8(e) & 0xf) << 2;
    if (ihl < 20 || avail < <i32>(ihl + 4)) return false;
    qProto = rd8(e + 9);
    qSrc = e + 12;
    qDst = e + 16;
    ports = e + ihl;
  } else {
    if (avail < 44) return false;
    qProto = rd8(e + 6);
    qSrc = e + 8;
    qDst = e + 24;
    ports = e + 40;
  }
  if (qProto != PROTO_TCP && qProto != PROTO_UDP && qProto != PROTO_SCTP) return false;
  qSport = rd16(ports);
  qDport = rd16(ports + 2);
  return true;
}
