// Connection sync, backup side: the kernel's ip_vs_proc_conn (net/netfilter/ipvs/
// ip_vs_sync.c, Linux 6.x) for one decoded sync connection. The host has already found the
// service and destination the message names (ip_vs_find_dest) and turned the wire's state,
// flags and timeout into ours; this creates the entry, or refreshes the one that exists, so
// that the flow is forwarded the moment packets arrive here.

import {
  lookupIn, lookupOut, insertConn, bindFullNat, connPtr, connCold, touchConn, connExpired, NONE,
  C_DEST, C_SERVICE, C_STATE, C_FLAGS, C_METHOD, C_DPORT, C_INPKTS, CC_DADDR, CC_FWMARK,
  CC_TEMPLATE, CC_LOCAL, F_TEMPLATE, F_INACTIVE, F_NOOUTPUT,
} from "../conn/conn-table";
import { laddrFind, laddrPtr, LADDR_NONE } from "../conn/local-addresses";
import { eq16 } from "../net/bytes";
import { stateTimeout, S_UDP } from "../conn/tcp-states";
import { PROTO_TCP } from "../net/constants";
import { actionPtr, actionCount, A_KIND, ACTION_NAT_DNAT, ACTION_FNAT } from "../forward/action";
import { connSetActive } from "../sched/table";
import { bindConn, dropConn } from "./accounting";
import { syncForget, syncThreshold } from "./sync";

export const IMPORT_CREATED: u32 = 0;
export const IMPORT_UPDATED: u32 = 1;
/** An expiration message for a connection already replaced: ignored, as the kernel does. */
export const IMPORT_STALE: u32 = 2;
export const IMPORT_NO_DESTINATION: u32 = 3;
export const IMPORT_TABLE_FULL: u32 = 4;
/** A full-NAT real server, and the message names no local address of the service's pool. */
export const IMPORT_NO_LOCAL_ADDRESS: u32 = 5;
/** A full-NAT connection whose local address and port another connection here uses toward that real server. */
export const IMPORT_LOCAL_PORT_IN_USE: u32 = 6;

/** Index of the entry the last import created or updated (NONE otherwise). */
export let importedIndex: u32 = NONE;

@inline function sameAddr(family: u32, a: usize, b: usize): bool {
  return family == 4 ? load<u32>(a) == load<u32>(b) : eq16(a, b);
}

/**
 * Imports one connection or template: <proto, caddr:cport -> vaddr:vport> (addresses of
 * `family` at caddr and vaddr) to daddr:dport on destination d of service svc, in `state`
 * with our F_INACTIVE / F_TEMPLATE in `flags`, for `timeoutMs` from `now`. For a full-NAT
 * real server, laddr:lport is the local address and port the master rewrote the flow with
 * (lport 0: the message named none).
 */
export function importConn(
  svc: u32, d: u32, proto: u32, family: u32, caddr: usize, cport: u32, vaddr: usize, vport: u32,
  daddr: usize, dport: u32, flags: u32, state: u32, timeoutMs: u32, fwmark: u32, now: u32,
  laddr: usize, lport: u32,
): u32 {
  importedIndex = NONE;
  if (d >= actionCount || load<u8>(actionPtr(d) + A_KIND) == 0) return IMPORT_NO_DESTINATION;
  const template = (flags & F_TEMPLATE) != 0;
  // A full-NAT connection is made only with the master's local address and port, and only
  // when that address is in this service's pool too (templates name a real server only).
  const fnat = !template && <u32>load<u8>(actionPtr(d) + A_KIND) == ACTION_FNAT;
  let li = LADDR_NONE;
  if (fnat) {
    if (lport == 0 || lport > 0xffff) return IMPORT_NO_LOCAL_ADDRESS;
    li = laddrFind(svc, family, laddr);
    if (li == LADDR_NONE) return IMPORT_NO_LOCAL_ADDRESS;
  }
  const local = (li << 16) | lport;
  const inactive = (flags & F_INACTIVE) != 0;
  let c = lookupIn(proto, family, caddr, cport, vaddr, vport, template);
  if (c != NONE && connExpired(c, now)) {
    dropConn(c);
    c = NONE;
  }
  if (c != NONE && !template) {
    const p = connPtr(c);
    const movedLocal = fnat && (<u32>load<u8>(p + C_METHOD) != ACTION_FNAT || load<u32>(connCold(c) + CC_LOCAL) != local);
    if (<u32>load<u16>(p + C_DPORT) != dport || !sameAddr(family, connCold(c) + CC_DADDR, daddr) || movedLocal) {
      // The client's port was reused for a flow to another real server (or local port).
      if (inactive) return IMPORT_STALE;
      dropConn(c);
      c = NONE;
    }
  }
  let result = IMPORT_UPDATED;
  if (c == NONE) {
    const kind = <u32>load<u8>(actionPtr(d) + A_KIND);
    const nat = kind == ACTION_NAT_DNAT;
    // The pair is the allocator's record of use: a flow here holding it keeps it.
    if (fnat && lookupOut(proto, family, daddr, dport, laddrPtr(li), lport) != NONE) return IMPORT_LOCAL_PORT_IN_USE;
    const base = template ? F_TEMPLATE : F_INACTIVE | (nat || fnat ? 0 : F_NOOUTPUT);
    c = insertConn(proto, family, caddr, cport, vaddr, vport, daddr, dport, base, nat && !template);
    if (c == NONE) return IMPORT_TABLE_FULL;
    // Entered on the reply side under RIP:rport -> LIP:lport, which also keeps the port
    // from new flows here (fnat-ports.ts) until the connection goes.
    if (fnat) bindFullNat(c, li, lport, false);
    const p = connPtr(c);
    store<u32>(p + C_DEST, d);
    store<u32>(p + C_SERVICE, svc);
    store<u8>(p + C_METHOD, <u8>kind);
    store<u32>(connCold(c) + CC_FWMARK, fwmark);
    store<u32>(connCold(c) + CC_TEMPLATE, NONE);
    bindConn(c, d, svc);
    result = IMPORT_CREATED;
  }
  const p = connPtr(c);
  if (!template) {
    // The kernel moves the destination's active / inactive counts with the flag it is sent.
    const had = <u32>load<u16>(p + C_FLAGS);
    if (((had & F_INACTIVE) != 0) != inactive) {
      store<u16>(p + C_FLAGS, <u16>(inactive ? had | F_INACTIVE : had & ~F_INACTIVE));
      connSetActive(load<u32>(p + C_DEST), !inactive);
    }
  }
  store<u8>(p + C_STATE, <u8>state);
  store<u32>(p + C_INPKTS, syncThreshold());
  // No timeout sent (v0 messages): the state's own, or 3 minutes for a template.
  touchConn(c, now, timeoutMs != 0 ? timeoutMs : template ? 180_000 : stateTimeout(proto == PROTO_TCP ? state : S_UDP));
  syncForget(c, state);
  importedIndex = c;
  return result;
}
