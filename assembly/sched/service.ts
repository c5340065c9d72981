// Service and destination operations, as ip_vs_ctl.c performs them: validate, change the
// tables, then tell the service's scheduler (init / done / changed). Every rejected call
// changes nothing and returns a negative E_* code. A removed destination that still has
// connections stays in a "trash" state (not in any list, counters kept) until the last
// one is unbound, as in the kernel, so a connection never decrements someone else's record.

import {
  Scheduler, CHANGE_ADD, CHANGE_DEL, CHANGE_UPD, CHANGE_UPD_LAST_WEIGHT, E_NO_SERVICE_SLOT,
  E_UNKNOWN_SCHEDULER, E_MH_SIZE, E_NO_MH_TABLE, E_TOO_MANY_DESTS, E_NO_DEST_SLOT,
  E_BAD_FAMILY, E_BAD_WEIGHT, E_BAD_SERVICE, E_DUPLICATE_DEST, E_BAD_DEST, E_BAD_PORT,
} from "./scheduler";
import {
  maxServices, destsPerService, svcPtr, destPtr, orderPtr, nDests, destAt, destAlloc,
  destFree, validService, connUnbind, S_IN_USE, S_SCHED, S_FLAGS, S_NDESTS, S_PARAM, S_MH_SIZE,
  S_MH_SLOT, SF_MH_LIST_ORDER, D_SERVICE, D_WEIGHT, D_LAST_WEIGHT, D_FLAGS, D_ACTIVE, D_INACTIVE,
  D_PERSIST, D_UTHRESH, D_LTHRESH, D_PORT, D_FAMILY, D_POS, D_ADDR, DF_AVAILABLE, DF_OVERLOAD,
  SVC_SIZE, maxDests, NONE, setNow,
} from "./table";
import { SCHEDULERS } from "./registry";
import { mh } from "./mh";
import { isPrime, maxTableSize, freeTables } from "./maglev";

@inline function sched(svc: u32): Scheduler {
  return unchecked(SCHEDULERS[load<u32>(svcPtr(svc) + S_SCHED)]);
}

/** The scheduler's verdict for a new flow: a destination id, or -1. */
export function scheduleFlow(svc: u32, key: usize): i32 {
  if (svc >= maxServices || load<u32>(svcPtr(svc) + S_IN_USE) == 0) return -1;
  return sched(svc).schedule(svc, key);
}

/** Checks what mh's init would refuse, before the old scheduler is torn down. */
function mhCheck(svc: u32, id: u32, m: u32, n: u32, ownsTable: bool): i32 {
  if (unchecked(SCHEDULERS[id]) !== mh) return 0;
  if (!isPrime(m) || m > maxTableSize) return E_MH_SIZE;
  if (n > m || n > destsPerService) return E_TOO_MANY_DESTS;
  if (!ownsTable && freeTables() == 0) return E_NO_MH_TABLE;
  return 0;
}

// Every service record below this one is in use: a new service searches from here, so
// adding 50,000 services is linear (a search from 0 each time made it quadratic).
let firstMaybeFree: u32 = 0;

export function serviceCreate(id: u32, flags: u32, mhSize: u32, param: u32): i32 {
  if (id >= <u32>SCHEDULERS.length) return E_UNKNOWN_SCHEDULER;
  let svc: u32 = firstMaybeFree;
  while (svc < maxServices && load<u32>(svcPtr(svc) + S_IN_USE) != 0) svc++;
  firstMaybeFree = svc;
  if (svc >= maxServices) return E_NO_SERVICE_SLOT;
  const rc = mhCheck(svc, id, mhSize, 0, false);
  if (rc < 0) return rc;
  const sp = svcPtr(svc);
  memory.fill(sp, 0, SVC_SIZE);
  store<u32>(sp + S_IN_USE, 1);
  store<u32>(sp + S_SCHED, id);
  store<u32>(sp + S_FLAGS, flags);
  store<u32>(sp + S_MH_SIZE, mhSize);
  store<u32>(sp + S_PARAM, param);
  store<i32>(sp + S_MH_SLOT, -1);
  const r = unchecked(SCHEDULERS[id]).init(svc);
  if (r < 0) {
    store<u32>(sp + S_IN_USE, 0);
    return r;
  }
  return <i32>svc;
}

/** ipvsadm -E: a new scheduler (or the same with new flags / table size / handle). */
export function serviceEdit(svc: u32, id: u32, flags: u32, mhSize: u32, param: u32): i32 {
  if (!validService(svc)) return E_BAD_SERVICE;
  if (id >= <u32>SCHEDULERS.length) return E_UNKNOWN_SCHEDULER;
  const sp = svcPtr(svc);
  const old = load<u32>(sp + S_SCHED);
  const oldFlags = load<u32>(sp + S_FLAGS);
  const same = old == id && load<u32>(sp + S_MH_SIZE) == mhSize && load<u32>(sp + S_PARAM) == param &&
    (oldFlags & SF_MH_LIST_ORDER) == (flags & SF_MH_LIST_ORDER);
  if (same) {
    store<u32>(sp + S_FLAGS, flags); // flags are read at schedule time only
    return 0;
  }
  const rc = mhCheck(svc, id, mhSize, nDests(svc), load<i32>(sp + S_MH_SLOT) >= 0);
  if (rc < 0) return rc;
  sched(svc).done(svc);
  store<u32>(sp + S_SCHED, id);
  store<u32>(sp + S_FLAGS, flags);
  store<u32>(sp + S_MH_SIZE, mhSize);
  store<u32>(sp + S_PARAM, param);
  return unchecked(SCHEDULERS[id]).init(svc);
}

export function serviceDelete(svc: u32): i32 {
  if (!validService(svc)) return E_BAD_SERVICE;
  sched(svc).done(svc);
  const n = nDests(svc);
  for (let i: u32 = 0; i < n; i++) retire(destAt(svc, i));
  store<u32>(svcPtr(svc) + S_NDESTS, 0);
  store<u32>(svcPtr(svc) + S_IN_USE, 0);
  if (svc < firstMaybeFree) firstMaybeFree = svc;
  return 0;
}

/** Frees a destination leaving its list, or keeps it in the trash while it has connections. */
function retire(d: u32): void {
  const p = destPtr(d);
  store<u32>(p + D_FLAGS, load<u32>(p + D_FLAGS) & ~DF_AVAILABLE);
  store<u32>(p + D_POS, NONE);
  if (load<i32>(p + D_ACTIVE) + load<i32>(p + D_INACTIVE) + load<i32>(p + D_PERSIST) <= 0) destFree(d);
}

function checkDestArgs(family: u32, port: u32, weight: i32): i32 {
  if (family != 4 && family != 6) return E_BAD_FAMILY;
  if (port > 65535) return E_BAD_PORT;
  if (weight < 0 || weight > 65535) return E_BAD_WEIGHT;
  return 0;
}

/** ipvsadm -a. The address (16 bytes, IPv4 in the first 4) is read at addr. */
export function destAdd(svc: u32, addr: usize, family: u32, port: u32, weight: i32, upper: u32, lower: u32): i32 {
  if (!validService(svc)) return E_BAD_SERVICE;
  const bad = checkDestArgs(family, port, weight);
  if (bad < 0) return bad;
  const sp = svcPtr(svc);
  const n = nDests(svc);
  if (n >= destsPerService) return E_TOO_MANY_DESTS;
  if (load<i32>(sp + S_MH_SLOT) >= 0 && n + 1 > load<u32>(sp + S_MH_SIZE)) return E_TOO_MANY_DESTS;
  const a0 = load<u64>(addr);
  const a1 = family == 6 ? load<u64>(addr + 8) : 0;
  const a0m = family == 6 ? a0 : a0 & 0xffffffff;
  for (let i: u32 = 0; i < n; i++) {
    const q = destPtr(destAt(svc, i));
    if (load<u8>(q + D_FAMILY) == <u8>family && load<u16>(q + D_PORT) == <u16>port &&
        load<u64>(q + D_ADDR) == a0m && load<u64>(q + D_ADDR + 8) == a1) return E_DUPLICATE_DEST;
  }
  const d = destAlloc();
  if (d == NONE) return E_NO_DEST_SLOT;
  const p = destPtr(d);
  store<u32>(p + D_SERVICE, svc);
  store<i32>(p + D_WEIGHT, weight);
  store<i32>(p + D_LAST_WEIGHT, weight);
  store<u32>(p + D_FLAGS, DF_AVAILABLE);
  store<u32>(p + D_UTHRESH, upper);
  store<u32>(p + D_LTHRESH, lower);
  store<u16>(p + D_PORT, <u16>port);
  store<u8>(p + D_FAMILY, <u8>family);
  store<u64>(p + D_ADDR, a0m);
  store<u64>(p + D_ADDR + 8, a1);
  // Newest first, as the kernel's __ip_vs_update_dest() links a new destination at the
  // head of svc->destinations (list_add_rcu): every list walk meets it first.
  const order = orderPtr(svc);
  for (let i = n; i > 0; i--) {
    const e = load<u32>(order + (<usize>(i - 1) << 2));
    store<u32>(order + (<usize>i << 2), e);
    store<u32>(destPtr(e) + D_POS, i);
  }
  store<u32>(p + D_POS, 0);
  store<u32>(order, d);
  store<u32>(sp + S_NDESTS, n + 1);
  sched(svc).changed(svc, CHANGE_ADD, 0, d);
  return <i32>d;
}

/** A destination in some service's list (not free, not in the trash). */
export function listedDest(d: u32): bool {
  return d < maxDests && load<u32>(destPtr(d) + D_SERVICE) != NONE && load<u32>(destPtr(d) + D_POS) != NONE;
}

/** ipvsadm -e: weight and thresholds, with the kernel's rules for last_weight and OVERLOAD. */
export function destEdit(d: u32, weight: i32, upper: u32, lower: u32): i32 {
  if (!listedDest(d)) return E_BAD_DEST;
  if (weight < 0 || weight > 65535) return E_BAD_WEIGHT;
  const p = destPtr(d);
  const svc = load<u32>(p + D_SERVICE);
  store<i32>(p + D_WEIGHT, weight);
  let kind = CHANGE_UPD;
  if (weight != 0 && load<i32>(p + D_LAST_WEIGHT) != weight) {
    store<i32>(p + D_LAST_WEIGHT, weight);
    kind = CHANGE_UPD_LAST_WEIGHT;
  }
  if (upper == 0 || upper > load<u32>(p + D_UTHRESH)) store<u32>(p + D_FLAGS, load<u32>(p + D_FLAGS) & ~DF_OVERLOAD);
  store<u32>(p + D_UTHRESH, upper);
  store<u32>(p + D_LTHRESH, lower);
  sched(svc).changed(svc, kind, load<u32>(p + D_POS), d);
  return 0;
}

/** ipvsadm -d. */
export function destRemove(d: u32): i32 {
  if (!listedDest(d)) return E_BAD_DEST;
  const p = destPtr(d);
  const svc = load<u32>(p + D_SERVICE);
  const pos = load<u32>(p + D_POS);
  const n = nDests(svc);
  const order = orderPtr(svc);
  for (let i = pos + 1; i < n; i++) {
    const e = load<u32>(order + (<usize>i << 2));
    store<u32>(order + (<usize>(i - 1) << 2), e);
    store<u32>(destPtr(e) + D_POS, i - 1);
  }
  store<u32>(svcPtr(svc) + S_NDESTS, n - 1);
  retire(d);
  sched(svc).changed(svc, CHANGE_DEL, pos, d);
  return 0;
}

/** Unbinds a connection; a trashed destination is freed with its last connection. */
export function destUnbind(d: u32, kind: u32): void {
  if (d >= maxDests || load<u32>(destPtr(d) + D_SERVICE) == NONE) return;
  connUnbind(d, kind);
  const p = destPtr(d);
  if (load<u32>(p + D_POS) == NONE &&
      load<i32>(p + D_ACTIVE) + load<i32>(p + D_INACTIVE) + load<i32>(p + D_PERSIST) <= 0) destFree(d);
}

/** Runs every service's periodic work (lblc/lblcr collectors) due at time t. */
export function tickAll(t: u32): void {
  setNow(t);
  for (let s: u32 = 0; s < maxServices; s++) {
    if (load<u32>(svcPtr(s) + S_IN_USE) != 0) sched(s).tick(s, t);
  }
}

/** Writes "name\tflag,names\n" per scheduler id as ASCII at out; returns the byte count. */
export function writeNames(out: usize, cap: u32): u32 {
  let n: u32 = 0;
  for (let i = 0; i < SCHEDULERS.length; i++) {
    const s = unchecked(SCHEDULERS[i]);
    for (let k = 0; k < s.name.length && n < cap; k++) store<u8>(out + n++, <u8>s.name.charCodeAt(k));
    if (n < cap) store<u8>(out + n++, 9);
    for (let k = 0; k < s.flagNames.length && n < cap; k++) store<u8>(out + n++, <u8>s.flagNames.charCodeAt(k));
    if (n < cap) store<u8>(out + n++, 10);
  }
  return n;
}
