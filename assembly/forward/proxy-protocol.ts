// PROXY protocol v2 for full-NAT TCP services (haproxy's proxy-protocol.txt, section 2.2):
// the real server of a full-NAT flow sees the director's local address, so the director
// puts the client's address and port and the virtual service's at the start of the client's
// byte stream, as a v2 header, and keeps the two sequence spaces apart from then on:
//
// - client -> RS: the segment that starts at the client's first data byte (seq = ISN + 1)
//   gets the header inserted in front of its payload, every time it is sent (so a
//   retransmission carries it again); a segment after it has seq + L (L = header bytes).
// - RS -> client: ack - L (an ack inside the header maps to ISN + 1), and so every SACK
//   edge; the MSS of the SYN-ACK is lowered by L, so that the client's full segments plus
//   the header still fit the real server's.
//
// Called after the full-NAT rewrite of the packet (addresses and ports are final). Checksums:
// a sequence change is an incremental patch (none for a partial checksum: the sender sums the
// header); an insertion sums the segment again (or, for a partial checksum, the new
// pseudo-header). Stateless but for the client's ISN + 1, kept by the caller.

import { rd8, rd16, rd32, wr16, wr32, copy16 } from "../net/bytes";
import { sumBytes, fold, finish, pseudoSum4, pseudoSum6 } from "../net/checksum";
import { csumDelta16, csumDeltaBytes, csumFieldApply } from "../net/l4-checksum";
import { PROTO_TCP } from "../net/constants";
import { pL3, pL4, pL4Len, pFamily } from "../net/parse";
import { offPartial } from "../net/offload";
import { descGet, descSet, DESC_OFFSET, DESC_LENGTH, slotStride } from "../layout";
import { REASON_NONE, REASON_NO_HEADROOM } from "../verdict";

const TH_SYN: u32 = 0x02;
const TH_ACK: u32 = 0x10;
const TCPOPT_EOL: u32 = 0;
const TCPOPT_NOP: u32 = 1;
const TCPOPT_MSS: u32 = 2;
const TCPOPT_SACK: u32 = 5;

/** Bytes of the v2 header for a TCP flow of `family`: 16 + addresses and ports. */
@inline export function proxyHeaderLength(family: u32): u32 {
  return family == 4 ? 16 + 12 : 16 + 36;
}

/** Writes the v2 header at p: PROXY command, TCP over `family`, client then VIP. */
function writeHeader(p: usize, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32): void {
  // The signature: \r\n\r\n\0\r\nQUIT\n.
  store<u32>(p, 0x0a0d0a0d);
  store<u32>(p + 4, 0x510a0d00);
  store<u32>(p + 8, 0x0a544955);
  store<u8>(p + 12, 0x21); // version 2, PROXY
  store<u8>(p + 13, family == 4 ? 0x11 : 0x21); // AF_INET / AF_INET6, STREAM
  wr16(p + 14, family == 4 ? 12 : 36);
  if (family == 4) {
    store<u32>(p + 16, load<u32>(caddr));
    store<u32>(p + 20, load<u32>(vaddr));
    wr16(p + 24, cport);
    wr16(p + 26, vport);
  } else {
    copy16(p + 16, caddr);
    copy16(p + 32, vaddr);
    wr16(p + 48, cport);
    wr16(p + 50, vport);
  }
}

/** Scratch for the bytes a sequence field covered before it changed (an even-aligned window). */
const before: usize = memory.data(8, 8);

/**
 * Writes `next` into the 32-bit field at `at` (a sequence number, an ack, a SACK edge) and
 * patches the TCP checksum when it is complete. The delta is taken over the even-aligned
 * window round the field, so a SACK edge at an odd offset is summed as the receiver does.
 */
function moveSeq(l4: usize, at: usize, next: u32): void {
  const odd = ((at - l4) & 1) != 0;
  const from = odd ? at - 1 : at;
  const n: u32 = odd ? 6 : 4;
  memory.copy(before, from, n);
  wr32(at, next);
  if (offPartial) return; // inside the range the sender of the packet sums
  csumFieldApply(l4 + 16, csumDeltaBytes(before, from, n));
}

/**
 * Client -> real server, after the full-NAT rewrite. `isn1` is the client's ISN + 1.
 * Returns REASON_NONE, or why the packet cannot be sent (no room to insert the header).
 */
export function proxyClientSide(slot: u32, pkt: usize, isn1: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32): u32 {
  const family = pFamily;
  const l4 = pkt + <usize>pL4;
  const L = proxyHeaderLength(family);
  const seq = rd32(l4 + 4);
  const d = seq - isn1;
  const doff = (rd8(l4 + 12) >> 4) << 2;
  const payload = pL4Len - doff;
  if (<i32>d > 0) {
    moveSeq(l4, l4 + 4, seq + L);
    return REASON_NONE;
  }
  if (d != 0 || payload == 0) return REASON_NONE; // before the stream (SYN), or no data yet
  // The first data segment (or its retransmission): the header goes in front of its payload.
  const off = descGet(slot, DESC_OFFSET);
  const len = descGet(slot, DESC_LENGTH);
  if (off + len + L > slotStride) return REASON_NO_HEADROOM;
  const start = l4 + <usize>doff;
  const end = pkt + <usize>len;
  memory.copy(start + <usize>L, start, end - start);
  writeHeader(start, family, caddr, cport, vaddr, vport);
  descSet(slot, DESC_LENGTH, len + L);
  const ip = pkt + <usize>pL3;
  const l4len = pL4Len + L;
  if (family == 4) {
    const total = rd16(ip + 2);
    wr16(ip + 2, total + L);
    csumFieldApply(ip + 10, csumDelta16(total, total + L));
  } else {
    wr16(ip + 4, rd16(ip + 4) + L);
  }
  const pseudo = family == 4 ? pseudoSum4(ip + 12, ip + 16, PROTO_TCP, l4len) : pseudoSum6(ip + 8, ip + 24, PROTO_TCP, l4len);
  if (offPartial) {
    wr16(l4 + 16, fold(pseudo));
  } else {
    wr16(l4 + 16, 0);
    wr16(l4 + 16, finish(sumBytes(l4, l4len, pseudo)));
  }
  return REASON_NONE;
}

/** An acknowledgement number of the real server's, in the client's sequence space. */
@inline function unshift(v: u32, isn1: u32, L: u32): u32 {
  const a = v - isn1;
  if (<i32>a <= 0) return v;
  return a >= L ? v - L : isn1;
}

/** Real server -> client, after the full-NAT rewrite: ack, SACK edges, the SYN-ACK's MSS. */
export function proxyServerSide(pkt: usize, isn1: u32): void {
  const l4 = pkt + <usize>pL4;
  const L = proxyHeaderLength(pFamily);
  const flags = rd8(l4 + 13);
  if ((flags & TH_ACK) != 0) {
    const ack = rd32(l4 + 8);
    const next = unshift(ack, isn1, L);
    if (next != ack) moveSeq(l4, l4 + 8, next);
  }
  const doff = (rd8(l4 + 12) >> 4) << 2;
  let o: u32 = 20;
  while (o < doff) {
    const kind = rd8(l4 + o);
    if (kind == TCPOPT_EOL) break;
    if (kind == TCPOPT_NOP) {
      o++;
      continue;
    }
    if (o + 2 > doff) break;
    const olen = rd8(l4 + o + 1);
    if (olen < 2 || o + olen > doff) break;
    if (kind == TCPOPT_SACK) {
      for (let e: u32 = o + 2; e + 4 <= o + olen; e += 4) {
        const v = rd32(l4 + e);
        const next = unshift(v, isn1, L);
        if (next != v) moveSeq(l4, l4 + e, next);
      }
    } else if (kind == TCPOPT_MSS && olen == 4 && (flags & TH_SYN) != 0) {
      const mss = rd16(l4 + o + 2);
      if (mss > L + 536) {
        wr16(l4 + o + 2, mss - L);
        if (!offPartial) csumFieldApply(l4 + 16, csumDelta16(mss, mss - L));
      }
    }
    o += olen;
  }
}
