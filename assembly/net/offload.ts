// The offload record of a slot: the virtio_net_hdr a TUN device opened with IFF_VNET_HDR
// puts in front of each packet (include/uapi/linux/virtio_net.h, little-endian on the
// hosts we run on), kept in a region of its own (layout.ts, offloadPtr) so that the packet
// still starts behind the slot's headroom. All zero, what every adapter without offloads
// leaves, means a whole packet with complete checksums: the datapath's old case.
//
// Two things a record can say:
// - NEEDS_CSUM (a partial checksum, the kernel's CHECKSUM_PARTIAL): the L4 checksum field
//   holds the pseudo-header sum, folded and NOT complemented; whoever sends the packet
//   sums the bytes from csum_start to the end (field included) and stores the complement
//   at csum_start + csum_offset. A NAT rewrite therefore moves the field by the address
//   delta only (the pseudo-header), with no final complement, and a port change does not
//   move it at all: the port lies inside the summed range. (Linux: inet_proto_csum_replace4
//   / _replace2 for CHECKSUM_PARTIAL skbs.)
// - GSO (gso_type != NONE): a super-packet of up to 64 KB whose payload is cut into
//   gso_size pieces by whoever sends it on (the kernel, or segment.ts here). Headers are
//   rewritten once for the whole packet.

import { offloadPtr } from "../layout";
import { wr16 } from "./bytes";
import { sumBytes, finish } from "./checksum";
import { PROTO_TCP, PROTO_UDP } from "./constants";
import { pL3, pL4, pFamily, pProto, pFrag, pIpLen, FRAG_NONE } from "./parse";
import { REASON_NONE, REASON_BAD_OFFLOAD } from "../verdict";

// Record fields (offsets within a record).
export const OFF_FLAGS: u32 = 0; // u8
export const OFF_GSO_TYPE: u32 = 1; // u8
export const OFF_HDR_LEN: u32 = 2; // u16
export const OFF_GSO_SIZE: u32 = 4; // u16
export const OFF_CSUM_START: u32 = 6; // u16
export const OFF_CSUM_OFFSET: u32 = 8; // u16
/** Private: 1 when the datapath deferred the action to the segments (tunnels). */
export const OFF_DEFERRED: u32 = 10; // u8

export const VNET_F_NEEDS_CSUM: u32 = 1;
export const VNET_F_DATA_VALID: u32 = 2;
export const GSO_NONE: u32 = 0;
export const GSO_TCPV4: u32 = 1;
export const GSO_UDP: u32 = 3; // UFO: IP fragmentation of UDP; never enabled (no TUN_F_UFO)
export const GSO_TCPV6: u32 = 4;
export const GSO_UDP_L4: u32 = 5;
export const GSO_ECN: u32 = 0x80;

/** Set by offloadCheck for the packet being processed: its L4 checksum is partial. */
export let offPartial: bool = false;
/** Set by offloadCheck: the packet's GSO type (GSO_NONE for a single packet). */
export let offGso: u32 = GSO_NONE;

/** Clears the per-packet offload state (a packet whose record is all zero). */
@inline export function offloadNone(): void {
  offPartial = false;
  offGso = GSO_NONE;
}

/**
 * Reads slot i's record for the packet just parsed (parse globals) and checks that it
 * describes this packet: a partial checksum sits at the TCP / UDP checksum field of a
 * whole (unfragmented) packet, GSO comes with a partial checksum, a GSO type that matches
 * the family and protocol, and a segment size. Returns REASON_NONE or REASON_BAD_OFFLOAD.
 */
export function offloadCheck(i: u32): u32 {
  const r = offloadPtr(i);
  const flags = <u32>load<u8>(r + OFF_FLAGS);
  const gsoByte = <u32>load<u8>(r + OFF_GSO_TYPE);
  const gso = gsoByte & ~GSO_ECN;
  offPartial = false;
  offGso = GSO_NONE;
  if ((flags & VNET_F_NEEDS_CSUM) != 0) {
    const proto = pProto;
    const field: u32 = proto == PROTO_TCP ? 16 : proto == PROTO_UDP ? 6 : 0;
    if (field == 0 || pFrag != FRAG_NONE) return REASON_BAD_OFFLOAD;
    if (<u32>load<u16>(r + OFF_CSUM_START) != pL4 || <u32>load<u16>(r + OFF_CSUM_OFFSET) != field) return REASON_BAD_OFFLOAD;
    offPartial = true;
  }
  if (gso != GSO_NONE) {
    if (!offPartial || load<u16>(r + OFF_GSO_SIZE) == 0) return REASON_BAD_OFFLOAD;
    const tcp = pProto == PROTO_TCP;
    const ok = gso == GSO_TCPV4 ? tcp && pFamily == 4
      : gso == GSO_TCPV6 ? tcp && pFamily == 6
      : gso == GSO_UDP_L4 ? pProto == PROTO_UDP && (gsoByte & GSO_ECN) == 0
      : false;
    if (!ok) return REASON_BAD_OFFLOAD;
    offGso = gso;
  } else if ((gsoByte & GSO_ECN) != 0) {
    return REASON_BAD_OFFLOAD;
  }
  return REASON_NONE;
}

/** Zeroes slot i's record: a whole packet with complete checksums (an ICMP error we built). */
@inline export function offloadClear(i: u32): void {
  const r = offloadPtr(i);
  store<u64>(r, 0);
  store<u32>(r + 8, 0);
}

/**
 * Completes a partial checksum in place, as the device would: the one's-complement sum of
 * the bytes from csum_start to the end of the IP packet (the field, holding the
 * pseudo-header sum, included), complemented, stored at csum_start + csum_offset; UDP's 0
 * is sent as 0xFFFF. Then the record says "complete". pkt: the packet (parsed, checked).
 */
export function offloadComplete(i: u32, pkt: usize): void {
  const r = offloadPtr(i);
  if ((<u32>load<u8>(r + OFF_FLAGS) & VNET_F_NEEDS_CSUM) == 0) return;
  const start = <u32>load<u16>(r + OFF_CSUM_START);
  const at = pkt + <usize>start + <usize>load<u16>(r + OFF_CSUM_OFFSET);
  const end = pL3 + pIpLen;
  let c = finish(sumBytes(pkt + <usize>start, end - start, 0));
  if (c == 0 && pProto == PROTO_UDP) c = 0xffff;
  wr16(at, c);
  store<u8>(r + OFF_FLAGS, <u8>(load<u8>(r + OFF_FLAGS) & ~(<u8>VNET_F_NEEDS_CSUM)));
  offPartial = false;
}

/** Reads a record field of slot i (u16 fields). */
@inline export function offloadField16(i: u32, field: u32): u32 {
  return <u32>load<u16>(offloadPtr(i) + field);
}
