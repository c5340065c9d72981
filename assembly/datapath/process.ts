// The batch datapath: for each slot, classify (a flow we know from the client side, a NAT
// reply, an ICMP error about a flow, a new flow for a virtual service, or not ours), look
// up or schedule, rewrite, count, and leave a verdict in the descriptor. This is IPVS's
// ip_vs_in / ip_vs_out / ip_vs_in_icmp / ip_vs_out_icmp on one path, with time passed in.
// Nothing here allocates.

import {
  slotCount, slotStride, slotCapacity, slotPtr, offloadPtr, descGet, descSet, DESC_OFFSET, DESC_LENGTH, DESC_LINK,
  DESC_MARK, DESC_VERDICT, DESC_REASON, DESC_ACTION, DESC_AUX, HEADROOM,
} from "../layout";
import { rd8, rd16, wr8, copy6, copy16 } from "../net/bytes";
import { offloadCheck, offloadClear, offloadNone } from "../net/offload";
import { csumReplace16 } from "../net/checksum";
import { rd16 as r16 } from "../net/bytes";
import {
  parsePacketInline, pL3, pL4, pL4Len, pFamily, pProto, pFrag, pSport, pDport, pTcpFlags,
  pSrcAddr, pDstAddr, pIpLen, pIcmpType, FRAG_LATER, FRAG_NONE,
} from "../net/parse";
import {
  LINK_ETHERNET, ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_ICMP, PROTO_ICMPV6,
  ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED, ICMP_PARAMETER_PROBLEM,
  ICMPV6_DEST_UNREACH, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, ICMPV6_PARAM_PROBLEM,
} from "../net/constants";
import {
  VERDICT_FORWARD, VERDICT_DROP, VERDICT_PASS, VERDICT_REPLY, REASON_NONE, REASON_NOT_IP,
  REASON_FRAGMENT, REASON_TRUNCATED, REASON_TTL_EXPIRED, REASON_NO_DESTINATION,
  REASON_NO_FLOW, REASON_TABLE_FULL, REASON_BAD_ACTION, REASON_UNSUPPORTED, REASON_FRAGMENT_HELD,
  REASON_FRAGMENT_NO_ROOM, REASON_LADDR_EXHAUSTED,
} from "../verdict";
import {
  actionPtr, actionCount, outcome, A_KIND, A_FAMILY, A_PORT, A_ADDR, A_SET_MAC, A_TUN_SRC, A_SRC_PORT,
  ACTION_NAT_DNAT, ACTION_NAT_SNAT, ACTION_ICMP_NAT_IN, ACTION_ICMP_NAT_OUT,
  ACTION_PORT_UNREACHABLE, ACTION_SIZE, ACTION_FNAT,
} from "../forward/action";
import { applyParsed } from "../forward/apply";
import { readQuotedPacket, qProto, qSrc, qDst, qSport, qDport } from "../net/icmp-quote";
import {
  insertConnHashed, flushDeferred, lookupIn, lookupOut, lookupInHashed, lookupOutHashed, tupleHash, touchIn, indexLine, connPtr, touchConn, connExpired, connUsed, connCapacity,
  connCold, NONE, C_DEST, C_SERVICE, C_STATE, C_FLAGS, CC_TEMPLATE, CC_NCONTROL, C_INPKTS,
  CC_FWMARK, C_METHOD, C_DPORT, C_VPORT, C_VADDR, CC_DADDR, F_INACTIVE, F_NOOUTPUT,
  C_CADDR, C_CPORT, C_FAMILY, CC_LOCAL, connInUse, bindFullNat, F_PROXY,
} from "../conn/conn-table";
import { proxyIsn1, setProxyIsn1 } from "../conn/proxy-state";
import { proxyClientSide, proxyServerSide } from "../forward/proxy-protocol";
import { laddrPtr } from "../conn/local-addresses";
import { fnatChoose, chosenLaddr, chosenPort } from "./fnat-ports";
import {
  tcpNextState, stateTimeout, S_NONE, S_UDP, S_TIME_WAIT, S_FIN_WAIT, DIR_INPUT, DIR_OUTPUT,
  DIR_INPUT_ONLY,
} from "../conn/tcp-states";
import {
  destPtr, setNow, D_PORT, D_ADDR, D_FAMILY, D_FLAGS, D_SERVICE, DF_AVAILABLE, FK_CADDR, FK_VADDR,
  FK_CPORT, FK_VPORT, FK_PROTO, FK_FAMILY,
} from "../sched/table";
import { scheduleFlow } from "../sched/service";
import { countConnection, countPacket, countBytes } from "../stats/counters";
import {
  findService, serviceFlags, servicePort, serviceFwmark, SVC_NONE, SVCF_PERSISTENT,
  SVCF_ONE_PACKET, SVCF_PROXY_V2,
} from "./services";
import { neighbourMac, ownMacPtr, ownMacSet } from "./neighbours";
import { persistSchedule, templateIndex, templateDest } from "./persist";
import { bindConn, applyStateChange, dropConn } from "./accounting";
import { emit, EV_FLOW_CREATED } from "./events";
import { natDnatTtl4 } from "./nat-fast";
import { flowKey, scratchAction, connReuseMode, expireNodestConn, sloppyTcp, sloppySctp, scheduleIcmp } from "./config";
import { toDrop } from "./defence";
import { syncMaster, syncConsider, syncForget } from "./sync";
import {
  fragmentsOn, fragAccept, fragEntry, fragDecision, fragHold, fragDecide, fragSettle, fragExpire,
  fragReleasePending, fragReleaseNext, ent, heldPtr, FRAG_NO_ENTRY, DEC_NONE, DEC_PASS, DEC_CLIENT,
  DEC_REPLY, DEC_DROP, E_DECISION, E_DEST, E_PORT, E_SVC, E_REASON, E_VADDR, E_CONN, H_LENGTH, H_LINK, H_MARK,
} from "./fragments";

/** Descriptor aux bits set on the way out. */
export const AUX_NEEDS_NEIGHBOUR: u32 = 1; // Ethernet output but no MAC known for the next hop
export const AUX_TOWARD_CLIENT: u32 = 2; // a NAT reply or an error sent back to the client
export const AUX_NEW_FLOW: u32 = 4; // this packet created a connection

const TH_SYN: u32 = 0x02;
const TH_RST: u32 = 0x04;

let now: u32 = 0;
let slot: u32 = 0;
let link: u32 = 0;
let aux: u32 = 0;
let dest: u32 = NONE;
// What the path that handled a first fragment decided, for its later fragments to follow:
// DEC_CLIENT (destination, port), DEC_REPLY (destination, virtual address and port).
let decKind: u32 = DEC_NONE;
let decDest: u32 = NONE;
let decPort: u32 = 0;
let decSvc: u32 = NONE;
let decVaddr: usize = 0;
/** The full-NAT connection behind the decision (its local address and client), or NONE. */
let decConn: u32 = NONE;

/** Slots per prefetch chunk: enough misses in flight to fill the line-fill buffers. */
const CHUNK: u32 = 32;
/**
 * Per chunk slot, from the prefetch pass: [0] the tuple hash (0 = not hashed), and what it
 * was computed from: [4] the source and [8] the destination address's address, [12] the
 * ports (source << 16 | destination), [16] protocol | family << 8; [20..32) spare.
 */
const CHUNK_ENTRY_SHIFT: u32 = 5;
const chunkHashes: usize = memory.data(CHUNK << CHUNK_ENTRY_SHIFT, 16);
let chunkFirst: u32 = 0;
/** Sink for the prefetch loads, so that the optimiser keeps them. */
let touched: u32 = 0;

/** Processes slots [first, first + count) at time `nowMs`. Returns the number processed. */
export function processBatch(first: u32, count: u32, nowMs: u32): u32 {
  if (first >= slotCount) return 0;
  if (count > slotCount - first) count = slotCount - first;
  now = nowMs;
  setNow(nowMs);
  if (fragmentsOn()) fragExpire(nowMs);
  const end = first + count;
  for (let c0 = first; c0 < end; c0 += CHUNK) {
    const c1 = end - c0 > CHUNK ? c0 + CHUNK : end;
    chunkFirst = c0;
    touchChunk(c0, c1);
    for (let i = c0; i < c1; i++) {
      slot = i;
      aux = 0;
      dest = NONE;
      decConn = NONE;
      const result = processOne(i);
      // An ICMP error we built is a whole packet with complete checksums.
      if ((result & 0xff) == VERDICT_REPLY) offloadClear(i);
      descSet(i, DESC_VERDICT, result & 0xff);
      descSet(i, DESC_REASON, result >> 8);
      descSet(i, DESC_ACTION, dest);
      descSet(i, DESC_AUX, aux);
    }
    flushDeferred(); // this chunk's new NAT flows' reply-side entries, misses overlapped
  }
  if (fragReleasePending()) return count + releaseFragments(end);
  return count;
}

/** Released fragments go into slots before this one only (the host keeps the rest free). */
let releaseEnd: u32 = 0xffffffff;

/** Limits where held fragments are released: slots [batch end, end). */
export function setFragmentReleaseEnd(end: u32): void {
  releaseEnd = end;
}

/**
 * Held fragments whose first fragment has been decided go out in the free slots after the
 * batch, [from, slotCount), each following its datagram's decision. What does not fit waits
 * for the next call. Returns how many slots were filled.
 */
function releaseFragments(from: u32): u32 {
  let s = from;
  const limit = releaseEnd < slotCount ? releaseEnd : slotCount;
  while (s < limit && fragReleasePending()) {
    const pkt = slotPtr(s) + HEADROOM;
    const h = fragReleaseNext(pkt);
    const e = fragEntry;
    const hp = heldPtr(h);
    const len = load<u32>(hp + H_LENGTH);
    slot = s;
    aux = 0;
    dest = NONE;
    link = load<u32>(hp + H_LINK);
    descSet(s, DESC_OFFSET, HEADROOM);
    descSet(s, DESC_LENGTH, len);
    descSet(s, DESC_LINK, link);
    descSet(s, DESC_MARK, load<u32>(hp + H_MARK));
    // A fragment never carries an offload record; clear what an earlier batch left here.
    offloadClear(s);
    offloadNone();
    // The bytes parsed cleanly when they were held; parse again for this slot's offsets.
    const status = parsePacketInline(pkt, len, link);
    const result = status == REASON_NONE ? followDecision(pkt, e) : outcome(VERDICT_DROP, status);
    fragSettle(e);
    descSet(s, DESC_VERDICT, result & 0xff);
    descSet(s, DESC_REASON, result >> 8);
    descSet(s, DESC_ACTION, dest);
    descSet(s, DESC_AUX, aux);
    s++;
  }
  return s - from;
}

/**
 * A fragment, once parsed: into its datagram's account (assembly/datapath/fragments.ts).
 * Returns 0 for a first fragment, which the caller then processes as a whole packet, or
 * the outcome of a later one: held until its first, or following the first's decision.
 */
function fragmentIn(pkt: usize, len: u32): u32 {
  const r = fragAccept(pkt, now);
  if (r != REASON_NONE) return outcome(VERDICT_DROP, r);
  const e = fragEntry;
  if (pFrag != FRAG_LATER) return 0;
  if (fragDecision(e) == DEC_NONE) {
    const held = fragHold(e, pkt, len, link, descGet(slot, DESC_MARK), slotCapacity);
    return outcome(VERDICT_DROP, held ? REASON_FRAGMENT_HELD : REASON_FRAGMENT_NO_ROOM);
  }
  const result = followDecision(pkt, e);
  fragSettle(e);
  return result;
}

/** Records what happened to datagram e's first fragment (outcome `result`) for the rest. */
function decideFirst(e: u32, result: u32): void {
  const verdict = result & 0xff;
  if (verdict == VERDICT_FORWARD && (decKind == DEC_CLIENT || decKind == DEC_REPLY)) {
    fragDecide(e, decKind, decDest, decPort, decSvc, decVaddr, REASON_NONE);
    store<u32>(ent(e) + E_CONN, decConn);
  } else if (verdict == VERDICT_PASS) {
    fragDecide(e, DEC_PASS, NONE, 0, NONE, 0, REASON_NONE);
  } else {
    // Dropped, or answered with an ICMP error: the rest of the datagram is dropped too.
    const reason = result >> 8;
    fragDecide(e, DEC_DROP, NONE, 0, NONE, 0, reason != REASON_NONE ? reason : REASON_FRAGMENT);
  }
  fragSettle(e);
}

/** A later fragment of datagram e, sent where its first fragment went. */
function followDecision(pkt: usize, e: u32): u32 {
  const p = ent(e);
  const kind = <u32>load<u8>(p + E_DECISION);
  if (kind == DEC_PASS) return outcome(VERDICT_PASS, REASON_NONE);
  if (kind != DEC_CLIENT && kind != DEC_REPLY) return outcome(VERDICT_DROP, load<u32>(p + E_REASON));
  const d = load<u32>(p + E_DEST);
  const svc = load<u32>(p + E_SVC);
  // A full-NAT decision needs its connection still there (local address, client).
  const fc = load<u32>(p + E_CONN);
  if (fc != NONE && (!connInUse(fc) || <u32>load<u8>(connPtr(fc) + C_METHOD) != ACTION_FNAT)) {
    return outcome(VERDICT_DROP, REASON_NO_FLOW);
  }
  // The kernel counts a reassembled datagram as one packet: later fragments add bytes only.
  if (kind == DEC_CLIENT) {
    if (svc != NONE) countBytes(svc, d, pIpLen, true);
    return transmit(pkt, d, load<u32>(p + E_PORT), fc != NONE ? load<u32>(connCold(fc) + CC_LOCAL) : NONE);
  }
  if (svc != NONE) countBytes(svc, d, pIpLen, false);
  if (!decrementTtl(pkt)) return outcome(VERDICT_DROP, REASON_TTL_EXPIRED);
  const rec = fc != NONE
    ? fnatReplyRecord(fc)
    : scratchFor(ACTION_NAT_SNAT, pFamily, p + E_VADDR, load<u32>(p + E_PORT));
  const result = applyParsed(slot, pkt, rec);
  dest = d;
  aux |= AUX_TOWARD_CLIENT;
  if ((result & 0xff) == VERDICT_FORWARD) setMacs(pFamily, pkt + pDstAddr, false);
  return result;
}

/**
 * Memory-level parallelism. A lookup at a million flows is two cache misses (the index
 * line, then the record's hot line), each a DRAM access and usually a TLB miss, and one
 * packet's misses depend on each other. Before processing a chunk, short loops load, for
 * every slot, its index line, then the hot line of the record its lookup will reach:
 * loads that do not depend on one another, which the CPU overlaps (wasm has no prefetch
 * instruction). This pass only warms the cache; the real lookups below decide everything,
 * so a packet the quick parse here misreads costs at most a useless load.
 */
function touchChunk(c0: u32, c1: u32): void {
  // Hashing apart from the loads: it is ~60 instructions per slot, and a miss overlaps only
  // with the misses issued within the reorder window; loops of a few instructions per slot
  // keep the whole chunk's loads in flight at once.
  for (let i = c0; i < c1; i++) quickHash(i, chunkHashes + (<usize>(i - c0) << CHUNK_ENTRY_SHIFT));
  const n = c1 - c0;
  let acc: u32 = 0;
  for (let j: u32 = 0; j < n; j++) {
    const h = load<u32>(chunkHashes + (<usize>j << CHUNK_ENTRY_SHIFT));
    if (h != 0) acc += load<u32>(indexLine(h));
  }
  for (let j: u32 = 0; j < n; j++) {
    const h = load<u32>(chunkHashes + (<usize>j << CHUNK_ENTRY_SHIFT));
    if (h != 0) acc += touchIn(h);
  }
  touched += acc;
}

/**
 * Writes to `out` the client-side tuple hash of slot i's packet, if it looks like plain
 * TCP / UDP / SCTP over IP, and what it was computed from; a hash of 0 otherwise.
 */
function quickHash(i: u32, out: usize): void {
  store<u32>(out, 0);
  const off = descGet(i, DESC_OFFSET);
  let len = descGet(i, DESC_LENGTH);
  if (off > slotStride || len > slotStride - off) return;
  let p = slotPtr(i) + off;
  if (descGet(i, DESC_LINK) == LINK_ETHERNET) {
    if (len < ETH_HLEN) return;
    const type = rd16(p + 12);
    if (type != ETHERTYPE_IPV4 && type != ETHERTYPE_IPV6) return;
    p += ETH_HLEN;
    len -= ETH_HLEN;
  }
  if (len < 24) return;
  const vihl = <u32>load<u8>(p);
  let proto: u32;
  if (vihl >> 4 == 4) {
    const ihl = (vihl & 0xf) << 2;
    proto = <u32>load<u8>(p + 9);
    if ((proto != PROTO_TCP && proto != PROTO_UDP && proto != PROTO_SCTP) || ihl < 20 || len < ihl + 4) return;
    const ports4 = bswap<u32>(load<u32>(p + ihl));
    const h4 = tupleHash(proto, 4, p + 12, ports4 >> 16, p + 16, ports4 & 0xffff, false);
    store<u32>(out, h4);
    store<u32>(out + 4, <u32>(p + 12));
    store<u32>(out + 8, <u32>(p + 16));
    store<u32>(out + 12, ports4);
    store<u32>(out + 16, proto | (4 << 8));
    return;
  }
  if (vihl >> 4 != 6 || len < 44) return;
  proto = <u32>load<u8>(p + 6);
  if (proto != PROTO_TCP && proto != PROTO_UDP && proto != PROTO_SCTP) return;
  const ports6 = bswap<u32>(load<u32>(p + 40));
  const h6 = tupleHash(proto, 6, p + 8, ports6 >> 16, p + 24, ports6 & 0xffff, false);
  store<u32>(out, h6);
  store<u32>(out + 4, <u32>(p + 8));
  store<u32>(out + 8, <u32>(p + 24));
  store<u32>(out + 12, ports6);
  store<u32>(out + 16, proto | (6 << 8));
}

@inline function isIcmpError(family: u32, type: u32): bool {
  return family == 4
    ? type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETER_PROBLEM
    : type == ICMPV6_DEST_UNREACH || type == ICMPV6_PACKET_TOO_BIG || type == ICMPV6_TIME_EXCEEDED || type == ICMPV6_PARAM_PROBLEM;
}

function processOne(i: u32): u32 {
  const off = descGet(i, DESC_OFFSET);
  const len = descGet(i, DESC_LENGTH);
  if (off > slotStride || len > slotStride - off) return outcome(VERDICT_DROP, REASON_TRUNCATED);
  const pkt = slotPtr(i) + off;
  link = descGet(i, DESC_LINK);
  const status = parsePacketInline(pkt, len, link);
  if (status == REASON_NOT_IP) return outcome(VERDICT_PASS, REASON_NOT_IP);
  if (status != REASON_NONE) return outcome(VERDICT_DROP, status);
  // The offload record (virtio_net_hdr): all zero unless the adapter reads vnet headers.
  if (load<u16>(offloadPtr(i)) == 0) offloadNone();
  else {
    const bad = offloadCheck(i);
    if (bad != REASON_NONE) return outcome(VERDICT_DROP, bad);
  }
  if (pFrag == FRAG_NONE) return processParsed(i, pkt);
  // Later fragments carry no ports: without the fragment table they cannot be placed.
  if (!fragmentsOn()) return pFrag == FRAG_LATER ? outcome(VERDICT_DROP, REASON_FRAGMENT) : processParsed(i, pkt);
  decKind = DEC_NONE;
  decSvc = NONE;
  decConn = NONE;
  const r = fragmentIn(pkt, len);
  if (r != 0) return r;
  const e = fragEntry;
  const result = processParsed(i, pkt);
  decideFirst(e, result);
  return result;
}

/** A parsed packet that is whole or a first fragment (it carries its L4 header). */
function processParsed(i: u32, pkt: usize): u32 {
  const proto = pProto;
  const family = pFamily;
  if ((proto == PROTO_ICMP && family == 4) || (proto == PROTO_ICMPV6 && family == 6)) {
    if (isIcmpError(family, pIcmpType)) return icmpError(pkt, family);
    return outcome(VERDICT_PASS, REASON_NONE); // echo and the rest: the host's business
  }
  const src = pkt + pSrcAddr;
  const dst = pkt + pDstAddr;
  const sport = pSport;
  const dport = pDport;

  // The client-side and reply-side lookups hash the same words: one hash, one index line.
  // The prefetch pass's hash is reused when it was computed from the same inputs: the same
  // protocol, family and ports, and addresses read from the same bytes (only this packet's
  // own processing writes them, and it has not started).
  const q = chunkHashes + (<usize>(i - chunkFirst) << CHUNK_ENTRY_SHIFT);
  const h = load<u32>(q) != 0 && load<u32>(q + 4) == <u32>src && load<u32>(q + 8) == <u32>dst &&
    load<u32>(q + 12) == ((sport << 16) | dport) && load<u32>(q + 16) == (proto | (family << 8))
    ? load<u32>(q)
    : tupleHash(proto, family, src, sport, dst, dport, false);
  let c = lookupInHashed(h, proto, family, src, sport, dst, dport, false);
  if (c != NONE) {
    if (connExpired(c, now)) {
      dropConn(c);
      c = NONE;
    } else if (proto == PROTO_TCP && connReuseMode != 0 && (pTcpFlags & TH_SYN) != 0 && newConnExpected(c)) {
      dropConn(c); // conn_reuse_mode: a new SYN on a finished connection is a new flow
      c = NONE;
    }
  }
  if (c != NONE) return clientPacket(pkt, c, proto);

  const r = lookupOutHashed(h, proto, family, src, sport, dst, dport);
  if (r != NONE) {
    if (!connExpired(r, now)) return replyPacket(pkt, r, proto);
    dropConn(r);
    return outcome(VERDICT_PASS, REASON_NO_FLOW);
  }
  return newFlow(pkt, proto, family, src, sport, dst, dport, h);
}

/** is_new_conn_expected: TIME_WAIT, or with conn_reuse_mode bit 1 a DR / TUN FIN_WAIT. */
@inline function newConnExpected(c: u32): bool {
  const cp = connPtr(c);
  const state = <u32>load<u8>(cp + C_STATE);
  if (state == S_TIME_WAIT) return true;
  return (connReuseMode & 2) != 0 && state == S_FIN_WAIT && (<u32>load<u16>(cp + C_FLAGS) & F_NOOUTPUT) != 0;
}

/** Moves a connection's TCP state on a packet of direction `dir` and restarts its timer. */
@inline function advance(c: u32, proto: u32, dir: u32): void {
  if (proto == PROTO_TCP) {
    const state = <u32>load<u8>(connPtr(c) + C_STATE);
    const next = tcpNextState(dir, pTcpFlags, state);
    if (next != state) applyStateChange(c, next);
    touchConn(c, now, stateTimeout(next));
  } else {
    touchConn(c, now, stateTimeout(S_UDP));
  }
}

@inline function destAvailable(d: u32): bool {
  const p = destPtr(d);
  return load<u32>(p + D_SERVICE) != NONE && (load<u32>(p + D_FLAGS) & DF_AVAILABLE) != 0;
}

/** A packet of a known connection from the client side. */
function clientPacket(pkt: usize, c: u32, proto: u32): u32 {
  const cp = connPtr(c);
  const d = load<u32>(cp + C_DEST);
  if (expireNodestConn && !destAvailable(d)) {
    dropConn(c);
    return outcome(VERDICT_DROP, REASON_NO_DESTINATION);
  }
  const flags = <u32>load<u16>(cp + C_FLAGS);
  decSvc = load<u32>(cp + C_SERVICE);
  advance(c, proto, (flags & F_NOOUTPUT) != 0 ? DIR_INPUT_ONLY : DIR_INPUT);
  const pkts = load<u32>(cp + C_INPKTS) + 1;
  store<u32>(cp + C_INPKTS, pkts);
  if (syncMaster) syncConsider(c, pkts, now);
  countPacket(load<u32>(cp + C_SERVICE), d, pIpLen, true);
  return transmit(pkt, d, <u32>load<u16>(cp + C_DPORT), localOf(c));
}

/**
 * The PROXY protocol's client side for full-NAT connection c, if it carries it: header in
 * the first data segment, sequence numbers moved after it. A fragment cannot take the
 * header (its later fragments' offsets would not move): a first fragment is refused.
 */
function proxyClient(pkt: usize, c: u32): u32 {
  const cp = connPtr(c);
  if ((<u32>load<u16>(cp + C_FLAGS) & F_PROXY) == 0 || pProto != PROTO_TCP) return REASON_NONE;
  if (pFrag == FRAG_LATER) return REASON_NONE;
  if (pFrag != FRAG_NONE) return REASON_UNSUPPORTED;
  return proxyClientSide(slot, pkt, proxyIsn1(c), cp + C_CADDR, <u32>load<u16>(cp + C_CPORT), cp + C_VADDR, <u32>load<u16>(cp + C_VPORT));
}

/** A full-NAT connection's local address and port (index << 16 | port), else NONE; sets decConn. */
@inline function localOf(c: u32): u32 {
  if (<u32>load<u8>(connPtr(c) + C_METHOD) != ACTION_FNAT) {
    decConn = NONE;
    return NONE;
  }
  decConn = c;
  return load<u32>(connCold(c) + CC_LOCAL);
}

/** The scratch record that turns a full-NAT reply RIP:rport -> LIP:lport into VIP:vport -> client:cport. */
function fnatReplyRecord(c: u32): usize {
  const cp = connPtr(c);
  const family = <u32>load<u8>(cp + C_FAMILY);
  const rec = scratchFor(ACTION_FNAT, family, cp + C_CADDR, <u32>load<u16>(cp + C_CPORT));
  if (family == 4) store<u32>(rec + A_TUN_SRC, load<u32>(cp + C_VADDR));
  else copy16(rec + A_TUN_SRC, cp + C_VADDR);
  store<u16>(rec + A_SRC_PORT, load<u16>(cp + C_VPORT));
  return rec;
}

/** A reply from a real server of a NAT connection: source back to the virtual service. */
function replyPacket(pkt: usize, c: u32, proto: u32): u32 {
  const cp = connPtr(c);
  const d = load<u32>(cp + C_DEST);
  decKind = DEC_REPLY;
  decDest = d;
  decPort = <u32>load<u16>(cp + C_VPORT);
  decSvc = load<u32>(cp + C_SERVICE);
  decVaddr = cp + C_VADDR;
  const fnat = <u32>load<u8>(cp + C_METHOD) == ACTION_FNAT;
  decConn = fnat ? c : NONE;
  advance(c, proto, DIR_OUTPUT);
  countPacket(load<u32>(cp + C_SERVICE), d, pIpLen, false);
  if (!decrementTtl(pkt)) return outcome(VERDICT_DROP, REASON_TTL_EXPIRED);
  const rec = fnat
    ? fnatReplyRecord(c)
    : scratchFor(ACTION_NAT_SNAT, pFamily, cp + C_VADDR, <u32>load<u16>(cp + C_VPORT));
  const result = applyParsed(slot, pkt, rec);
  // PROXY protocol: the real server's acks and SACKs back into the client's sequence space.
  if (fnat && (result & 0xff) == VERDICT_FORWARD && (<u32>load<u16>(cp + C_FLAGS) & F_PROXY) != 0 && proto == PROTO_TCP && pFrag != FRAG_LATER) {
    proxyServerSide(pkt, proxyIsn1(c));
  }
  dest = d;
  aux |= AUX_TOWARD_CLIENT;
  if ((result & 0xff) == VERDICT_FORWARD) setMacs(pFamily, pkt + pDstAddr, false);
  return result;
}

/** The virtual service a packet to dst:dport belongs to (fwmark first), or SVC_NONE. */
function serviceFor(proto: u32, family: u32, dst: usize, dport: u32, mark: u32): u32 {
  let svc = SVC_NONE;
  if (mark != 0) svc = findService(0, family, dst, 0, mark);
  if (svc == SVC_NONE) svc = findService(proto, family, dst, dport, 0);
  if (svc == SVC_NONE) svc = findService(proto, family, dst, 0, 0); // port-zero service
  return svc;
}

const SCTP_CID_INIT: u32 = 1;
const SCTP_CID_ABORT: u32 = 6;

/** The first packet of a flow: find its service, schedule, create the connection. */
function newFlow(pkt: usize, proto: u32, family: u32, src: usize, sport: u32, dst: usize, dport: u32, h: u32): u32 {
  const svc = serviceFor(proto, family, dst, dport, descGet(slot, DESC_MARK));
  if (svc == SVC_NONE) return outcome(VERDICT_PASS, REASON_NONE);
  // tcp_conn_schedule: never on a RST; on a SYN, or on anything else with sloppy_tcp (a
  // director that takes over a flow mid-stream). The rest is the host's.
  if (proto == PROTO_TCP && ((pTcpFlags & TH_RST) != 0 || (!sloppyTcp && (pTcpFlags & TH_SYN) == 0))) {
    return outcome(VERDICT_PASS, REASON_NO_FLOW);
  }
  // sctp_conn_schedule: the first chunk must be INIT, or anything but ABORT with sloppy_sctp.
  if (proto == PROTO_SCTP && pL4Len >= 16) {
    const chunk = <u32>rd8(pkt + pL4 + 12);
    if (chunk == SCTP_CID_ABORT || (!sloppySctp && chunk != SCTP_CID_INIT)) return outcome(VERDICT_PASS, REASON_NO_FLOW);
  }
  if (proto != PROTO_TCP && proto != PROTO_UDP && proto != PROTO_SCTP && serviceFwmark(svc) == 0) {
    return outcome(VERDICT_PASS, REASON_NONE);
  }
  const c = createFlow(pkt, svc, proto, family, src, sport, dst, dport, h, false);
  if (c == NONE) return createFailure;
  if (c == ONE_PACKET) return createFailure;
  const cp = connPtr(c);
  const destId = load<u32>(cp + C_DEST);
  advance(c, proto, (<u32>load<u16>(cp + C_FLAGS) & F_NOOUTPUT) != 0 ? DIR_INPUT_ONLY : DIR_INPUT);
  store<u32>(cp + C_INPKTS, 1);
  if (syncMaster) {
    // Only a master reads the per-record sync state: nothing to touch otherwise.
    syncForget(c, S_NONE);
    syncConsider(c, 1, now);
  }
  countPacket(svc, destId, pIpLen, true);
  aux |= AUX_NEW_FLOW;
  return transmit(pkt, destId, <u32>load<u16>(cp + C_DPORT), localOf(c));
}

/** createFlow's outcome when it made no connection (NONE), or after a one-packet send. */
let createFailure: u32 = 0;
const ONE_PACKET: u32 = 0xfffffffe;

/**
 * Schedules a new flow of service svc (client src:sport, virtual dst:dport) and creates its
 * connection (ip_vs_schedule). `icmp`: scheduled for an ICMP error (schedule_icmp), so no
 * port-unreachable answer and no one-packet send. Returns the connection, or NONE /
 * ONE_PACKET with createFailure set.
 */
function createFlow(pkt: usize, svc: u32, proto: u32, family: u32, src: usize, sport: u32, dst: usize, dport: u32, h: u32, icmp: bool): u32 {
  const mark = descGet(slot, DESC_MARK);
  // ip_vs_todrop (drop_packet): one new connection in every drop_rate is refused.
  if (toDrop()) {
    createFailure = outcome(VERDICT_DROP, REASON_TABLE_FULL);
    return NONE;
  }
  // A full table refuses before the scheduler moves: established flows keep their room.
  if (connUsed >= connCapacity) {
    createFailure = outcome(VERDICT_DROP, REASON_TABLE_FULL);
    return NONE;
  }

  fillFlowKey(proto, family, src, sport, dst, dport);
  const flags = serviceFlags(svc);
  const svcPort = servicePort(svc);
  const fwmark = serviceFwmark(svc);
  let d: i32;
  let connDport: u32;
  let template = NONE;
  if (flags & SVCF_PERSISTENT) {
    if (!persistSchedule(svc, proto, family, src, dst, dport, now)) {
      createFailure = templateDest == -2 ? outcome(VERDICT_DROP, REASON_TABLE_FULL) : noDestination(pkt, icmp);
      return NONE;
    }
    d = templateDest;
    template = templateIndex;
    const destPort = <u32>load<u16>(destPtr(<u32>d) + D_PORT);
    connDport = dport == svcPort && destPort != 0 ? destPort : dport;
  } else {
    // Port-zero services need persistence (the kernel drops and says so).
    if (fwmark == 0 && dport != svcPort) {
      createFailure = outcome(VERDICT_DROP, REASON_UNSUPPORTED);
      return NONE;
    }
    d = scheduleFlow(svc, flowKey);
    if (d < 0) {
      createFailure = noDestination(pkt, icmp);
      return NONE;
    }
    const destPort = <u32>load<u16>(destPtr(<u32>d) + D_PORT);
    connDport = destPort != 0 ? destPort : dport;
  }
  const destId = <u32>d;
  if (destId >= actionCount || load<u8>(actionPtr(destId) + A_KIND) == 0) {
    createFailure = outcome(VERDICT_DROP, REASON_BAD_ACTION);
    return NONE;
  }
  const kind = <u32>load<u8>(actionPtr(destId) + A_KIND);
  const nat = kind == ACTION_NAT_DNAT;
  const fnat = kind == ACTION_FNAT;
  decSvc = svc;
  // Full NAT: a local address and port free toward the real server, or the flow is refused.
  if (fnat && !fnatChoose(svc, proto, family, destPtr(destId) + D_ADDR, connDport)) {
    createFailure = outcome(VERDICT_DROP, REASON_LADDR_EXHAUSTED);
    return NONE;
  }

  if ((flags & SVCF_ONE_PACKET) != 0 && proto == PROTO_UDP && !icmp) {
    countConnection(svc, destId);
    countPacket(svc, destId, pIpLen, true);
    aux |= AUX_NEW_FLOW;
    createFailure = transmit(pkt, destId, connDport, fnat ? (chosenLaddr << 16) | chosenPort : NONE);
    return ONE_PACKET;
  }
  const c = insertConnHashed(
    h, proto, family, src, sport, dst, dport, destPtr(destId) + D_ADDR, connDport,
    F_INACTIVE | (nat || fnat ? 0 : F_NOOUTPUT), nat, true,
  );
  if (c == NONE) {
    createFailure = outcome(VERDICT_DROP, REASON_TABLE_FULL);
    return NONE;
  }
  if (fnat) {
    bindFullNat(c, chosenLaddr, chosenPort, true);
    // PROXY protocol v2: known from the SYN only (a flow picked up mid-stream has no ISN).
    if ((flags & SVCF_PROXY_V2) != 0 && proto == PROTO_TCP && (pTcpFlags & TH_SYN) != 0 && !icmp) {
      const cp0 = connPtr(c);
      store<u16>(cp0 + C_FLAGS, <u16>(<u32>load<u16>(cp0 + C_FLAGS) | F_PROXY));
      setProxyIsn1(c, bswap<u32>(load<u32>(pkt + <usize>pL4 + 4)) + 1);
    }
  }
  const cp = connPtr(c);
  store<u32>(cp + C_DEST, destId);
  store<u32>(cp + C_SERVICE, svc);
  store<u32>(connCold(c) + CC_FWMARK, mark);
  store<u8>(cp + C_METHOD, load<u8>(actionPtr(destId) + A_KIND));
  store<u8>(cp + C_STATE, <u8>S_NONE);
  store<u32>(connCold(c) + CC_TEMPLATE, template);
  if (template != NONE) {
    const tp = connCold(template);
    store<u32>(tp + CC_NCONTROL, load<u32>(tp + CC_NCONTROL) + 1);
  }
  bindConn(c, destId, svc);
  countConnection(svc, destId);
  emit(EV_FLOW_CREATED, c, destId, svc);
  touchConn(c, now, stateTimeout(proto == PROTO_TCP ? S_NONE : S_UDP));
  return c;
}

/** No destination: the client hears port unreachable, except about its own ICMP error. */
function noDestination(pkt: usize, icmp: bool): u32 {
  return icmp ? outcome(VERDICT_PASS, REASON_NONE) : portUnreachable(pkt);
}

function fillFlowKey(proto: u32, family: u32, src: usize, sport: u32, dst: usize, dport: u32): void {
  memory.fill(flowKey + FK_CADDR, 0, 32);
  if (family == 4) {
    store<u32>(flowKey + FK_CADDR, load<u32>(src));
    store<u32>(flowKey + FK_VADDR, load<u32>(dst));
  } else {
    copy16(flowKey + FK_CADDR, src);
    copy16(flowKey + FK_VADDR, dst);
  }
  store<u32>(flowKey + FK_CPORT, sport);
  store<u32>(flowKey + FK_VPORT, dport);
  store<u32>(flowKey + FK_PROTO, proto);
  store<u32>(flowKey + FK_FAMILY, family);
}

/**
 * Sends the packet to destination d by its forwarding method (its action record). `local`:
 * a full-NAT connection's local address and port (index << 16 | port), NONE otherwise.
 */
function transmit(pkt: usize, d: u32, dport: u32, local: u32): u32 {
  const rec = actionPtr(d);
  const kind = <u32>load<u8>(rec + A_KIND);
  if (kind == 0) return outcome(VERDICT_DROP, REASON_BAD_ACTION);
  decKind = DEC_CLIENT;
  decDest = d;
  decPort = dport;
  let result: u32;
  const proto = pProto;
  if (
    kind == ACTION_NAT_DNAT && pFamily == 4 && (proto == PROTO_TCP || proto == PROTO_UDP) &&
    pFrag != FRAG_LATER && <u32>load<u8>(rec + A_FAMILY) == 4
  ) {
    // The common NAT case: TTL and rewrite in one step, one header-checksum update.
    store<u16>(rec + A_PORT, <u16>dport);
    result = natDnatTtl4(pkt, pkt + <usize>pL3, pkt + <usize>pL4, rec, dport, proto, link);
    if ((result & 0xff) != VERDICT_FORWARD) return result;
  } else {
    if (!decrementTtl(pkt)) return outcome(VERDICT_DROP, REASON_TTL_EXPIRED);
    if (kind == ACTION_NAT_DNAT) store<u16>(rec + A_PORT, <u16>dport);
    else if (kind == ACTION_FNAT) {
      // A connection made by another method cannot become full NAT: it has no local address.
      if (local == NONE) return outcome(VERDICT_DROP, REASON_BAD_ACTION);
      store<u16>(rec + A_PORT, <u16>dport);
      store<u16>(rec + A_SRC_PORT, <u16>(local & 0xffff));
      copy16(rec + A_TUN_SRC, laddrPtr(local >>> 16));
    }
    result = applyParsed(slot, pkt, rec);
    if (kind == ACTION_FNAT && decConn != NONE && (result & 0xff) == VERDICT_FORWARD) {
      const r = proxyClient(pkt, decConn);
      if (r != REASON_NONE) return outcome(VERDICT_DROP, r);
    }
  }
  dest = d;
  if ((result & 0xff) == VERDICT_FORWARD) {
    // The next hop is the real server itself (NAT, DR, and the outer destination of TUN).
    const dp = destPtr(d);
    setMacs(<u32>load<u8>(dp + D_FAMILY), dp + D_ADDR, load<u8>(rec + A_SET_MAC) != 0);
  }
  return result;
}

/** A scratch action record of `kind` with address and port (for replies and ICMP). */
function scratchFor(kind: u32, family: u32, addr: usize, port: u32): usize {
  const rec = scratchAction;
  memory.fill(rec, 0, ACTION_SIZE);
  store<u8>(rec + A_KIND, <u8>kind);
  store<u8>(rec + A_FAMILY, <u8>family);
  store<u16>(rec + A_PORT, <u16>port);
  if (family == 4) store<u32>(rec + A_ADDR, load<u32>(addr));
  else copy16(rec + A_ADDR, addr);
  return rec;
}

/** No destination: ICMP port unreachable back to the client (ip_vs_leave). */
function portUnreachable(pkt: usize): u32 {
  const rec = scratchFor(ACTION_PORT_UNREACHABLE, pFamily, pkt + pDstAddr, 0);
  aux |= AUX_TOWARD_CLIENT;
  const result = applyParsed(slot, pkt, rec);
  if ((result & 0xff) == VERDICT_REPLY) return result | (REASON_NO_DESTINATION << 8);
  return result;
}

/**
 * Ethernet output: destination MAC of the next hop (neighbour table, else gateway), source
 * our own MAC. When no MAC is known the host is told (AUX_NEEDS_NEIGHBOUR), unless the
 * action record carried MACs of its own.
 */
function setMacs(family: u32, nextHop: usize, recordHasMacs: bool): void {
  if (link != LINK_ETHERNET) return;
  const frame = slotPtr(slot) + descGet(slot, DESC_OFFSET);
  const mac = neighbourMac(family, nextHop);
  if (mac != 0) copy6(frame, mac);
  else if (!recordHasMacs) aux |= AUX_NEEDS_NEIGHBOUR;
  if (ownMacSet) copy6(frame + 6, ownMacPtr);
}

/** Counts our hop: IPv4 TTL / IPv6 hop limit minus one; false when it would reach zero. */
function decrementTtl(pkt: usize): bool {
  const ip = pkt + pL3;
  if (pFamily == 4) {
    const ttl = rd8(ip + 8);
    if (ttl <= 1) return false;
    const proto = rd8(ip + 9);
    wr8(ip + 8, ttl - 1);
    const sum = csumReplace16(r16(ip + 10), (ttl << 8) | proto, ((ttl - 1) << 8) | proto);
    store<u16>(ip + 10, bswap<u16>(<u16>sum));
    return true;
  }
  const hops = rd8(ip + 7);
  if (hops <= 1) return false;
  wr8(ip + 7, hops - 1);
  return true;
}

/**
 * An ICMP error quoting a packet of one of our flows. From the client side it quotes a
 * reply we sent (VIP -> client); from a real server it quotes a packet we forwarded to it.
 */
function icmpError(pkt: usize, family: u32): u32 {
  if (!readQuotedPacket(pkt, family)) return outcome(VERDICT_PASS, REASON_NONE);
  const eproto = qProto;
  const esrc = qSrc;
  const edst = qDst;
  const esport = qSport;
  const edport = qDport;
  let c = lookupIn(eproto, family, edst, edport, esrc, esport, false);
  if (c != NONE && connExpired(c, now)) c = NONE;
  if (c == NONE && scheduleIcmp && lookupOut(eproto, family, edst, edport, esrc, esport) == NONE) {
    // schedule_icmp (ip_vs_in_icmp): the quoted packet is one we never saw, VIP -> client
    // (a reply a real server sent directly, or one of another director behind ECMP). Schedule
    // it as the client's flow to the VIP, and the error follows that connection.
    const svc = serviceFor(eproto, family, esrc, esport, descGet(slot, DESC_MARK));
    if (svc == SVC_NONE) return outcome(VERDICT_PASS, REASON_NONE);
    const h = tupleHash(eproto, family, edst, edport, esrc, esport, false);
    c = createFlow(pkt, svc, eproto, family, edst, edport, esrc, esport, h, true);
    if (c == NONE) return createFailure;
    aux |= AUX_NEW_FLOW;
  }
  if (c != NONE) {
    const cp = connPtr(c);
    const d = load<u32>(cp + C_DEST);
    countPacket(load<u32>(cp + C_SERVICE), d, pIpLen, true);
    const method = <u32>load<u8>(cp + C_METHOD);
    if (method != ACTION_NAT_DNAT && method != ACTION_FNAT) return transmit(pkt, d, 0, NONE);
    if (!decrementTtl(pkt)) return outcome(VERDICT_DROP, REASON_TTL_EXPIRED);
    const rec = scratchFor(ACTION_ICMP_NAT_IN, family, connCold(c) + CC_DADDR, <u32>load<u16>(cp + C_DPORT));
    let result = applyParsed(slot, pkt, rec);
    if (method == ACTION_FNAT && (result & 0xff) == VERDICT_FORWARD) {
      // Full NAT: the quote's client end and the outer source become the local address.
      const local = load<u32>(connCold(c) + CC_LOCAL);
      result = applyParsed(slot, pkt, scratchFor(ACTION_ICMP_NAT_OUT, family, laddrPtr(local >>> 16), local & 0xffff));
    }
    dest = d;
    if ((result & 0xff) == VERDICT_FORWARD) setMacs(family, connCold(c) + CC_DADDR, false);
    return result;
  }
  const r = lookupOut(eproto, family, edst, edport, esrc, esport);
  if (r != NONE && !connExpired(r, now)) {
    const cp = connPtr(r);
    const d = load<u32>(cp + C_DEST);
    countPacket(load<u32>(cp + C_SERVICE), d, pIpLen, false);
    if (!decrementTtl(pkt)) return outcome(VERDICT_DROP, REASON_TTL_EXPIRED);
    const rec = scratchFor(ACTION_ICMP_NAT_OUT, family, cp + C_VADDR, <u32>load<u16>(cp + C_VPORT));
    let result = applyParsed(slot, pkt, rec);
    if (<u32>load<u8>(cp + C_METHOD) == ACTION_FNAT && (result & 0xff) == VERDICT_FORWARD) {
      // Full NAT: the quote's local end and the outer destination become the client.
      result = applyParsed(slot, pkt, scratchFor(ACTION_ICMP_NAT_IN, family, cp + C_CADDR, <u32>load<u16>(cp + C_CPORT)));
    }
    dest = d;
    aux |= AUX_TOWARD_CLIENT;
    if ((result & 0xff) == VERDICT_FORWARD) setMacs(family, pkt + pDstAddr, false);
    return result;
  }
  return outcome(VERDICT_PASS, REASON_NONE);
}
