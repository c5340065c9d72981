// Which data-plane worker owns a packet's flow, when lvsd runs several (lvsd --workers N):
// hash(client address, client port) mod N, or, for a persistent service, hash(client
// address & persistence mask) mod N, so that one client's templates live in one worker.
// NAT never rewrites the client endpoint: it is the source of a packet to a virtual service
// and the destination of a reply from a real server, so both directions of a flow find the
// same owner. The real servers are found by address and port in an index over the
// destination records, rebuilt by the host after each configuration change. See
// docs/io.md, "Workers and flow symmetry".

import { slotPtr, descGet, DESC_OFFSET, DESC_LENGTH, DESC_LINK, DESC_MARK, slotStride } from "../layout";
import { parsePacketInline, pFamily, pProto, pFrag, pFragHdr, pL3, pSport, pDport, pSrcAddr, pDstAddr, pIcmpType, FRAG_FIRST, FRAG_LATER } from "../net/parse";
import {
  PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_ICMP, PROTO_ICMPV6, ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED,
  ICMP_PARAMETER_PROBLEM, ICMPV6_DEST_UNREACH, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, ICMPV6_PARAM_PROBLEM,
} from "../net/constants";
import { REASON_NONE } from "../verdict";
import { readQuotedPacket, qProto, qSrc, qDst, qSport, qDport } from "../net/icmp-quote";
import { murmurMix, murmurFinal } from "../net/murmur";
import { eq16 } from "../net/bytes";
import { destPtr, maxDests, validDest, D_ADDR, D_PORT, D_FAMILY, D_SERVICE } from "../sched/table";
import { findService, serviceFlags, maskClient, SVC_NONE, SVCF_PERSISTENT } from "./services";

/** No worker in particular: not a flow of a service (the receiving worker handles it). */
export const OWNER_ANY: i32 = -1;

const NO_DEST: u32 = 0xffffffff;

// Open-addressed index of destination ids + 1 (0 empty) by <family, address, port>.
let index: usize = 0;
let indexMask: u32 = 0;
const masked: usize = memory.data(16, 16);

export function initOwnerIndex(dests: u32): bool {
  if (index != 0) return false;
  let slots: u32 = 16;
  while (slots < dests * 2) slots <<= 1;
  indexMask = slots - 1;
  index = heap.alloc(<usize>slots * 4);
  memory.fill(index, 0, <usize>slots * 4);
  return true;
}

function addrHash(family: u32, addr: usize, port: u32): u32 {
  let h = murmurMix(family, port);
  h = murmurMix(h, load<u32>(addr));
  if (family == 6) {
    h = murmurMix(h, load<u32>(addr + 4));
    h = murmurMix(h, load<u32>(addr + 8));
    h = murmurMix(h, load<u32>(addr + 12));
  }
  return murmurFinal(h);
}

/** Rebuilds the index from the destination records. Returns the destinations indexed. */
export function rebuildOwnerIndex(): u32 {
  if (index == 0) return 0;
  memory.fill(index, 0, (<usize>indexMask + 1) * 4);
  let n: u32 = 0;
  for (let d: u32 = 0; d < maxDests; d++) {
    if (!validDest(d)) continue;
    const p = destPtr(d);
    let i = addrHash(<u32>load<u8>(p + D_FAMILY), p + D_ADDR, <u32>load<u16>(p + D_PORT)) & indexMask;
    while (load<u32>(index + (<usize>i << 2)) != 0) i = (i + 1) & indexMask;
    store<u32>(index + (<usize>i << 2), d + 1);
    n++;
  }
  return n;
}

/** A destination at <family, addr, port>, or NO_DEST. */
function findDest(family: u32, addr: usize, port: u32): u32 {
  let i = addrHash(family, addr, port) & indexMask;
  for (let n: u32 = 0; n <= indexMask; n++) {
    const v = load<u32>(index + (<usize>i << 2));
    if (v == 0) return NO_DEST;
    const p = destPtr(v - 1);
    if (<u32>load<u8>(p + D_FAMILY) == family && <u32>load<u16>(p + D_PORT) == port) {
      if (family == 4 ? load<u32>(p + D_ADDR) == load<u32>(addr) : eq16(p + D_ADDR, addr)) return v - 1;
    }
    i = (i + 1) & indexMask;
  }
  return NO_DEST;
}

/** The service a packet to dst:dport is for (fwmark first, then the port, then port zero). */
function serviceOf(proto: u32, family: u32, dst: usize, dport: u32, mark: u32): u32 {
  let svc = SVC_NONE;
  if (mark != 0) svc = findService(0, family, dst, 0, mark);
  if (svc == SVC_NONE) svc = findService(proto, family, dst, dport, 0);
  if (svc == SVC_NONE) svc = findService(proto, family, dst, 0, 0);
  return svc;
}

// Later fragments carry no ports, so their owner is the one their first fragment had. The
// kernel steers every fragment of a datagram to one TUN queue (its flow hash of a fragment
// uses the addresses only), so the worker that handed the first fragment on sees the later
// ones too: it remembers <family, addresses, protocol, id> -> owner in a small direct-mapped
// table (a 32-bit check hash per entry; a collision only sends a fragment to a worker that
// drops it, as without the table). A later fragment that arrives before its first is not
// known here and stays with the worker that received it.
const FRAG_OWNERS: u32 = 1024;
const fragOwners: usize = memory.data(FRAG_OWNERS * 8, 16);

function fragmentKey(pkt: usize, family: u32, proto: u32): u32 {
  const id = family == 4 ? <u32>load<u16>(pkt + pL3 + 4) : load<u32>(pkt + pFragHdr + 4);
  let h = murmurMix(family | (proto << 8), id);
  h = murmurMix(h, load<u32>(pkt + pSrcAddr));
  h = murmurMix(h, load<u32>(pkt + pDstAddr));
  if (family == 6) {
    for (let i: usize = 4; i < 16; i += 4) h = murmurMix(murmurMix(h, load<u32>(pkt + pSrcAddr + i)), load<u32>(pkt + pDstAddr + i));
  }
  const k = murmurFinal(h);
  return k == 0 ? 1 : k;
}

function rememberFragmentOwner(key: u32, owner: i32): void {
  const e = fragOwners + <usize>(key & (FRAG_OWNERS - 1)) * 8;
  store<u32>(e, key);
  store<i32>(e, owner, 4);
}

function fragmentOwner(key: u32): i32 {
  const e = fragOwners + <usize>(key & (FRAG_OWNERS - 1)) * 8;
  return load<u32>(e) == key ? load<i32>(e, 4) : OWNER_ANY;
}

/**
 * The worker (0..workers-1) that owns the flow of the packet in `slot`, or OWNER_ANY for a
 * packet of no service's flow: not IP, ICMP, a later fragment whose first this worker has not
 * seen, or neither to a virtual service nor from a real server.
 */
export function flowOwner(slot: u32, workers: u32): i32 {
  if (workers <= 1 || index == 0) return 0;
  const off = descGet(slot, DESC_OFFSET);
  const len = descGet(slot, DESC_LENGTH);
  if (off > slotStride || len > slotStride - off) return OWNER_ANY;
  const pkt = slotPtr(slot) + off;
  if (parsePacketInline(pkt, len, descGet(slot, DESC_LINK)) != REASON_NONE) return OWNER_ANY;
  if (pFrag == FRAG_LATER) return fragmentOwner(fragmentKey(pkt, pFamily, pProto));
  const owner = unfragmentedOwner(pkt, slot, workers);
  if (pFrag == FRAG_FIRST && owner != OWNER_ANY) rememberFragmentOwner(fragmentKey(pkt, pFamily, pProto), owner);
  return owner;
}

/** flowOwner for a packet parsed whole or a first fragment (ports present). */
function unfragmentedOwner(pkt: usize, slot: u32, workers: u32): i32 {
  const proto = pProto;
  const family = pFamily;
  if ((proto == PROTO_ICMP && family == 4) || (proto == PROTO_ICMPV6 && family == 6)) return icmpErrorOwner(pkt, family, descGet(slot, DESC_MARK), workers);
  if (proto != PROTO_TCP && proto != PROTO_UDP && proto != PROTO_SCTP) return OWNER_ANY;
  let svc = serviceOf(proto, family, pkt + pDstAddr, pDport, descGet(slot, DESC_MARK));
  let client = pkt + pSrcAddr;
  let cport = pSport;
  if (svc == SVC_NONE) {
    // A reply from a real server (its port, or a port-zero destination) to the client.
    let d = findDest(family, pkt + pSrcAddr, pSport);
    if (d == NO_DEST) d = findDest(family, pkt + pSrcAddr, 0);
    if (d == NO_DEST) return OWNER_ANY;
    svc = load<u32>(destPtr(d) + D_SERVICE);
    client = pkt + pDstAddr;
    cport = pDport;
  }
  return clientOwner(svc, family, client, cport, workers);
}

/**
 * An ICMP error belongs to the flow of the packet it quotes, which is one the director
 * sent: VIP -> client (a NAT reply: the client is its destination), client -> VIP (a DR or
 * tunnel forward) or client -> real server (a NAT forward): the client is its source.
 */
function icmpErrorOwner(pkt: usize, family: u32, mark: u32, workers: u32): i32 {
  const type = pIcmpType;
  const error = family == 4
    ? type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETER_PROBLEM
    : type == ICMPV6_DEST_UNREACH || type == ICMPV6_PACKET_TOO_BIG || type == ICMPV6_TIME_EXCEEDED || type == ICMPV6_PARAM_PROBLEM;
  if (!error) return OWNER_ANY;
  if (!readQuotedPacket(pkt, family)) return OWNER_ANY;
  const eproto = qProto;
  const esrc = qSrc;
  const edst = qDst;
  const esport = qSport;
  const edport = qDport;
  let svc = serviceOf(eproto, family, esrc, esport, mark);
  if (svc != SVC_NONE) return clientOwner(svc, family, edst, edport, workers);
  svc = serviceOf(eproto, family, edst, edport, mark);
  if (svc == SVC_NONE) {
    let d = findDest(family, edst, edport);
    if (d == NO_DEST) d = findDest(family, edst, 0);
    if (d == NO_DEST) return OWNER_ANY;
    svc = load<u32>(destPtr(d) + D_SERVICE);
  }
  return clientOwner(svc, family, esrc, esport, workers);
}

/**
 * The worker owning the flows of client caddr:cport of service svc: hash(client address,
 * client port), or hash(client address & persistence mask) for a persistent service.
 */
export function clientOwner(svc: u32, family: u32, caddr: usize, cport: u32, workers: u32): i32 {
  if (workers <= 1) return 0;
  let client = caddr;
  if (svc != SVC_NONE && (serviceFlags(svc) & SVCF_PERSISTENT) != 0) {
    store<u64>(masked, 0);
    store<u64>(masked + 8, 0);
    maskClient(svc, family, caddr, masked);
    client = masked;
    cport = 0;
  }
  const h = addrHash(family, client, cport);
  return <i32>((<u64>h * <u64>workers) >> 32);
}
