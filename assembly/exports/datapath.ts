// ABI of the datapath: start-up (after lvsInit, actionsInit, schedInit, connInit,
// statsInit), service keys, switches, neighbours, the batch call, expiry, events, and
// connection inspection for listings.

import { paramsBase } from "../layout";
import { maxServices, maxDests } from "../sched/table";
import { initServiceIndex, addServiceKey, removeServiceKey, setPersistence, findService } from "../datapath/services";
import { initNeighbours, setNeighbour, setOwnMac, setGatewayMac, neighbourCount } from "../datapath/neighbours";
import { initEvents, enableEvents, eventsRing, eventsCount, eventsDropped, eventsClear } from "../datapath/events";
import {
  initScratch, setSwitches, setSloppy, setScheduleIcmp, expireNodestConn, expireQuiescentTemplate, connReuseMode,
  sloppyTcp, sloppySctp, scheduleIcmp,
} from "../datapath/config";
import { setDefence, defenceTick, secureTcp, dropEntry, dropPacket, amemthresh, amDroprate } from "../datapath/defence";
import { processBatch, setFragmentReleaseEnd } from "../datapath/process";
import { initOwnerIndex, rebuildOwnerIndex, flowOwner, clientOwner } from "../datapath/owner";
import { expireSweep, dropDestConnections } from "../datapath/expire";
import { initFragments, fragmentsOn, fragExpire, fragCounters, FC_COUNT } from "../datapath/fragments";
import { connPtr, connCapacity, connInUse, connRemaining, C_FLAGS, F_IN_USE } from "../conn/conn-table";

export function datapathInit(neighbours: u32, events: u32): u32 {
  if (maxServices == 0) return 2; // schedInit first
  if (!initServiceIndex(maxServices)) return 1;
  if (!initNeighbours(neighbours)) return 1;
  if (!initEvents(events)) return 1;
  if (!initOwnerIndex(maxDests)) return 1;
  initScratch();
  return 0;
}

/** Registers service id svc under <proto, family, address at params+0, port> or <fwmark, family>. */
export function serviceKeyAdd(svc: u32, proto: u32, family: u32, port: u32, fwmark: u32): u32 {
  return addServiceKey(svc, proto, family, paramsBase, port, fwmark) ? 0 : 1;
}
export function serviceKeyRemove(svc: u32): void {
  removeServiceKey(svc);
}
/** Service id for a key (address at params+0), or 0xffffffff. */
export function serviceKeyFind(proto: u32, family: u32, port: u32, fwmark: u32): u32 {
  return findService(proto, family, paramsBase, port, fwmark);
}
export function servicePersistenceSet(svc: u32, timeoutMs: u32, onePacket: u32, prefix: u32): u32 {
  return setPersistence(svc, timeoutMs, onePacket, prefix) ? 0 : 1;
}
export function datapathSwitches(expireNodest: u32, expireQuiescent: u32, connReuse: u32): void {
  setSwitches(expireNodest, expireQuiescent, connReuse);
}

// The IPVS sysctls that change decisions, by number (src/balancer/sysctls.ts names them).
const SYS_EXPIRE_NODEST_CONN: u32 = 0;
const SYS_EXPIRE_QUIESCENT_TEMPLATE: u32 = 1;
const SYS_CONN_REUSE_MODE: u32 = 2;
const SYS_SLOPPY_TCP: u32 = 3;
const SYS_SLOPPY_SCTP: u32 = 4;
const SYS_SCHEDULE_ICMP: u32 = 5;
const SYS_SECURE_TCP: u32 = 6;
const SYS_DROP_ENTRY: u32 = 7;
const SYS_DROP_PACKET: u32 = 8;
const SYS_AMEMTHRESH: u32 = 9;
const SYS_AM_DROPRATE: u32 = 10;

/** Sets one sysctl; 0, or 1 for an unknown id or a value out of its range (nothing changed). */
export function sysctlSet(id: u32, value: u32): u32 {
  const flag = value <= 1;
  const mode = value <= 3;
  if (id == SYS_EXPIRE_NODEST_CONN && flag) setSwitches(value, expireQuiescentTemplate ? 1 : 0, connReuseMode);
  else if (id == SYS_EXPIRE_QUIESCENT_TEMPLATE && flag) setSwitches(expireNodestConn ? 1 : 0, value, connReuseMode);
  else if (id == SYS_CONN_REUSE_MODE && mode) setSwitches(expireNodestConn ? 1 : 0, expireQuiescentTemplate ? 1 : 0, value);
  else if (id == SYS_SLOPPY_TCP && flag) setSloppy(value != 0, sloppySctp);
  else if (id == SYS_SLOPPY_SCTP && flag) setSloppy(sloppyTcp, value != 0);
  else if (id == SYS_SCHEDULE_ICMP && flag) setScheduleIcmp(value != 0);
  else if (id == SYS_SECURE_TCP && mode) setDefence(value, dropEntry, dropPacket, amemthresh, amDroprate);
  else if (id == SYS_DROP_ENTRY && mode) setDefence(secureTcp, value, dropPacket, amemthresh, amDroprate);
  else if (id == SYS_DROP_PACKET && mode) setDefence(secureTcp, dropEntry, value, amemthresh, amDroprate);
  else if (id == SYS_AMEMTHRESH && value >= 1) setDefence(secureTcp, dropEntry, dropPacket, value, amDroprate);
  else if (id == SYS_AM_DROPRATE && value >= 1) setDefence(secureTcp, dropEntry, dropPacket, amemthresh, value);
  else return 1;
  return 0;
}

/** A sysctl's current value (the defence modes move between 1 and 2 by themselves), or 0xffffffff. */
export function sysctlGet(id: u32): u32 {
  if (id == SYS_EXPIRE_NODEST_CONN) return expireNodestConn ? 1 : 0;
  if (id == SYS_EXPIRE_QUIESCENT_TEMPLATE) return expireQuiescentTemplate ? 1 : 0;
  if (id == SYS_CONN_REUSE_MODE) return connReuseMode;
  if (id == SYS_SLOPPY_TCP) return sloppyTcp ? 1 : 0;
  if (id == SYS_SLOPPY_SCTP) return sloppySctp ? 1 : 0;
  if (id == SYS_SCHEDULE_ICMP) return scheduleIcmp ? 1 : 0;
  if (id == SYS_SECURE_TCP) return secureTcp;
  if (id == SYS_DROP_ENTRY) return dropEntry;
  if (id == SYS_DROP_PACKET) return dropPacket;
  if (id == SYS_AMEMTHRESH) return amemthresh;
  if (id == SYS_AM_DROPRATE) return amDroprate;
  return 0xffffffff;
}

/** The defence timer (run from the host's tick; acts at most once a second): entries dropped. */
export function defenceRun(now: u32): u32 {
  return defenceTick(now);
}

/** MAC at params+0, address at params+16. */
export function neighbourSet(family: u32): u32 {
  return setNeighbour(family, paramsBase + 16, paramsBase) ? 0 : 1;
}
export function neighbourTotal(): u32 { return neighbourCount(); }
/** Our own MAC at params+0. */
export function ownMacSet(): void { setOwnMac(paramsBase); }
/** Gateway MAC for a family at params+0. */
export function gatewayMacSet(family: u32): void { setGatewayMac(family, paramsBase); }

export function process(first: u32, count: u32, now: u32): u32 {
  return processBatch(first, count, now);
}

/** Held IP fragments are released into slots before `end` only (a host's reserved slots stay free). */
export function fragmentReleaseEnd(end: u32): void {
  setFragmentReleaseEnd(end);
}
export function expire(now: u32, budget: u32): u32 {
  if (fragmentsOn()) fragExpire(now);
  return expireSweep(now, budget);
}

/**
 * IP fragment tracking (after datapathInit): `datagrams` tracked at once (0: later
 * fragments are dropped, as before), `memory` bytes for fragments held until their first,
 * `timeMs` per datagram (ipfrag_time). Returns 0, or 1 on bad arguments or a second call.
 */
export function fragmentsInit(datagrams: u32, memory: u32, timeMs: u32, seed: u32): u32 {
  return initFragments(datagrams, memory, timeMs, seed) ? 0 : 1;
}
/** The fragment counters: FC_COUNT u64 values (assembly/datapath/fragments.ts FC_*). */
export function regionFragCounters(): usize { return fragCounters; }
export function fragCounterCount(): u32 { return FC_COUNT; }
export function destDropConnections(dest: u32): u32 {
  return dropDestConnections(dest);
}

export function eventsEnable(on: u32): void { enableEvents(on != 0); }
export function regionEvents(): usize { return eventsRing(); }
export function eventsPending(): u32 { return eventsCount(); }
export function eventsLost(): u32 { return eventsDropped(); }
export function eventsReset(): void { eventsClear(); }

/** Whether connection record i is live (for listings: the host reads the record itself). */
export function connLive(i: u32): u32 {
  return i < connCapacity && connInUse(i) ? 1 : 0;
}
export function connExpiresIn(i: u32, now: u32): u32 {
  return connRemaining(i, now);
}
/** Next live record at or after i, or 0xffffffff: lets the host walk the table in chunks. */
export function connNextLive(i: u32): u32 {
  for (let k = i; k < connCapacity; k++) {
    if ((<u32>load<u16>(connPtr(k) + C_FLAGS) & F_IN_USE) != 0) return k;
  }
  return 0xffffffff;
}

/** lvsd --workers: re-indexes the real servers by address and port (after a configuration change). */
export function ownerIndexRebuild(): u32 {
  return rebuildOwnerIndex();
}
/** lvsd --workers: the worker (0..workers-1) owning the flow of the packet in slot, or -1 for any. */
export function packetOwner(slot: u32, workers: u32): i32 {
  return flowOwner(slot, workers);
}
/** lvsd --workers: the worker owning client (address at params+0):cport of service svc (a synced connection's owner). */
export function connectionOwner(svc: u32, family: u32, cport: u32, workers: u32): i32 {
  return clientOwner(svc, family, paramsBase, cport, workers);
}
