// Services and destinations: fixed-capacity records carved once by initSchedTables (the stub
// runtime only bump-allocates, so nothing here allocates after start-up).
//
// A destination has a stable id (its record index) that the connection table keeps; a
// service keeps its destinations' ids in the kernel's list order (newest first: the kernel
// links a new destination at the head) in an order array, and owns a fixed state block for its scheduler (buckets, cache heads, ...).

export const NONE: u32 = 0xffffffff;

// Destination record (64 bytes).
export const DEST_SIZE: u32 = 64;
export const D_SERVICE: u32 = 0; // u32 owning service, NONE when the record is free
export const D_WEIGHT: u32 = 4; // i32 0..65535, 0 = quiesced
export const D_LAST_WEIGHT: u32 = 8; // i32 last non-zero weight (mh builds from it)
export const D_FLAGS: u32 = 12; // u32 DF_*
export const D_ACTIVE: u32 = 16; // i32 activeconns
export const D_INACTIVE: u32 = 20; // i32 inactconns
export const D_PERSIST: u32 = 24; // i32 persistconns (templates)
export const D_UTHRESH: u32 = 28; // u32 upper connection threshold, 0 = none
export const D_LTHRESH: u32 = 32; // u32 lower connection threshold, 0 = 3/4 of upper
export const D_PORT: u32 = 36; // u16 host order
export const D_FAMILY: u32 = 38; // u8 4 | 6
export const D_POS: u32 = 40; // u32 position in the service's list
export const D_NEXT_FREE: u32 = 44; // u32 free-list link (id + 1, 0 = end)
export const D_ADDR: u32 = 48; // 16 bytes, network order, IPv4 in the first 4

export const DF_AVAILABLE: u32 = 1;
export const DF_OVERLOAD: u32 = 2;

// Service record (64 bytes).
export const SVC_SIZE: u32 = 64;
export const S_IN_USE: u32 = 0;
export const S_SCHED: u32 = 4; // scheduler id (registry index)
export const S_FLAGS: u32 = 8; // SF_* (ipvsadm -b)
export const S_NDESTS: u32 = 12;
export const S_PARAM: u32 = 16; // custom scheduler handle
export const S_MH_SIZE: u32 = 20; // Maglev table size M
export const S_MH_SLOT: u32 = 24; // i32 Maglev table slot, -1 none
export const S_A: u32 = 28; // scheduler scalars: rr last; wrr cl
export const S_B: u32 = 32; // wrr cw
export const S_C: u32 = 36; // wrr mw
export const S_D: u32 = 40; // wrr di
export const S_BUILDS: u32 = 44; // Maglev table builds (tests check rebuild rules)
export const S_CACHE_ENTRIES: u32 = 48; // lblc/lblcr entries
export const S_CACHE_ROVER: u32 = 52;
export const S_CACHE_COUNTER: u32 = 56;
export const S_CACHE_LASTCHECK: u32 = 60;

// ipvsadm -b: flag-1..3 (sh-fallback / mh-fallback = 1, sh-port / mh-port = 2).
export const SF_FLAG1: u32 = 1;
export const SF_FLAG2: u32 = 2;
export const SF_FLAG3: u32 = 4;
export const SF_MH_LIST_ORDER: u32 = 0x100; // mh: fill in list order (kernel) instead of sorted

/** Bytes of a service's scheduler state block: 1024 u32 cache heads, or 256 buckets. */
export const STATE_SIZE: u32 = 4096;

// Flow key record (48 bytes), written by the host or the datapath.
export const FK_SIZE: u32 = 48;
export const FK_CADDR: u32 = 0;
export const FK_VADDR: u32 = 16;
export const FK_CPORT: u32 = 32; // u32 host order
export const FK_VPORT: u32 = 36;
export const FK_PROTO: u32 = 40;
export const FK_FAMILY: u32 = 44;

export let maxServices: u32 = 0;
export let maxDests: u32 = 0;
export let destsPerService: u32 = 0;
export let servicesBase: usize = 0;
export let destsBase: usize = 0;
export let ordersBase: usize = 0;
export let statesBase: usize = 0;
let destFreeHead: u32 = 0;
export let destsUsed: u32 = 0;

/** Host time in milliseconds (wrap-safe u32), set before scheduling. */
export let now: u32 = 0;
export function setNow(t: u32): void {
  now = t;
}

export function initTables(services: u32, dests: u32, perService: u32): void {
  maxServices = services;
  maxDests = dests;
  destsPerService = perService;
  servicesBase = heap.alloc(<usize>services * SVC_SIZE);
  destsBase = heap.alloc(<usize>dests * DEST_SIZE);
  ordersBase = heap.alloc(<usize>services * perService * 4);
  statesBase = heap.alloc(<usize>services * STATE_SIZE);
  memory.fill(servicesBase, 0, <usize>services * SVC_SIZE);
  for (let i: u32 = 0; i < dests; i++) {
    const d = destPtr(i);
    memory.fill(d, 0, DEST_SIZE);
    store<u32>(d + D_SERVICE, NONE);
    store<u32>(d + D_NEXT_FREE, i + 2 <= dests ? i + 2 : 0);
  }
  destFreeHead = dests > 0 ? 1 : 0;
}

@inline export function svcPtr(s: u32): usize {
  return servicesBase + <usize>s * SVC_SIZE;
}
@inline export function destPtr(d: u32): usize {
  return destsBase + <usize>d * DEST_SIZE;
}
@inline export function orderPtr(s: u32): usize {
  return ordersBase + <usize>s * destsPerService * 4;
}
@inline export function statePtr(s: u32): usize {
  return statesBase + <usize>s * STATE_SIZE;
}
@inline export function svcGet(s: u32, f: u32): u32 {
  return load<u32>(svcPtr(s) + f);
}
@inline export function svcSet(s: u32, f: u32, v: u32): void {
  store<u32>(svcPtr(s) + f, v);
}
@inline export function nDests(s: u32): u32 {
  return load<u32>(svcPtr(s) + S_NDESTS);
}
/** Dest id at list position i of service s. */
@inline export function destAt(s: u32, i: u32): u32 {
  return load<u32>(orderPtr(s) + (<usize>i << 2));
}
@inline export function weightOf(d: u32): i32 {
  return load<i32>(destPtr(d) + D_WEIGHT);
}
@inline export function activeOf(d: u32): i32 {
  return load<i32>(destPtr(d) + D_ACTIVE);
}
@inline export function overloaded(d: u32): bool {
  return (load<u32>(destPtr(d) + D_FLAGS) & DF_OVERLOAD) != 0;
}
/** The kernel's ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns. */
@inline export function overhead(d: u32): i32 {
  const p = destPtr(d);
  return (load<i32>(p + D_ACTIVE) << 8) + load<i32>(p + D_INACTIVE);
}
/** sh / mh: weight <= 0 or overloaded gives no destination. */
@inline export function unavailable(d: u32): bool {
  const p = destPtr(d);
  return load<i32>(p + D_WEIGHT) <= 0 || (load<u32>(p + D_FLAGS) & DF_OVERLOAD) != 0;
}

export function validService(s: u32): bool {
  return s < maxServices && load<u32>(svcPtr(s) + S_IN_USE) != 0;
}
export function validDest(d: u32): bool {
  return d < maxDests && load<u32>(destPtr(d) + D_SERVICE) != NONE;
}

/** Takes a free destination record, or NONE. */
export function destAlloc(): u32 {
  if (destFreeHead == 0) return NONE;
  const d = destFreeHead - 1;
  destFreeHead = load<u32>(destPtr(d) + D_NEXT_FREE);
  destsUsed++;
  return d;
}
export function destFree(d: u32): void {
  const p = destPtr(d);
  memory.fill(p, 0, DEST_SIZE);
  store<u32>(p + D_SERVICE, NONE);
  store<u32>(p + D_NEXT_FREE, destFreeHead);
  destFreeHead = d + 1;
  destsUsed--;
}

// Connection counters and the kernel's overload rule (ip_vs_bind_dest / ip_vs_unbind_dest).
export const CONN_ACTIVE: u32 = 0;
export const CONN_INACTIVE: u32 = 1;
export const CONN_PERSIST: u32 = 2;

@inline function totalConns(p: usize): i32 {
  return load<i32>(p + D_ACTIVE) + load<i32>(p + D_INACTIVE);
}

/** A connection (or template) bound to d: count it, then set OVERLOAD at the upper threshold. */
export function connBind(d: u32, kind: u32): void {
  const p = destPtr(d);
  const f = kind == CONN_ACTIVE ? D_ACTIVE : kind == CONN_INACTIVE ? D_INACTIVE : D_PERSIST;
  store<i32>(p + f, load<i32>(p + f) + 1);
  const u = load<u32>(p + D_UTHRESH);
  if (u != 0 && <u32>totalConns(p) >= u) store<u32>(p + D_FLAGS, load<u32>(p + D_FLAGS) | DF_OVERLOAD);
}

/** A connection unbound from d: uncount it, then clear OVERLOAD below the lower threshold. */
export function connUnbind(d: u32, kind: u32): void {
  const p = destPtr(d);
  const f = kind == CONN_ACTIVE ? D_ACTIVE : kind == CONN_INACTIVE ? D_INACTIVE : D_PERSIST;
  store<i32>(p + f, load<i32>(p + f) - 1);
  const l = load<u32>(p + D_LTHRESH);
  const u = load<u32>(p + D_UTHRESH);
  const total = <u64><u32>max<i32>(totalConns(p), 0);
  let clear = false;
  if (l != 0) clear = total < <u64>l;
  else if (u != 0) clear = total * 4 < <u64>u * 3;
  else clear = true;
  if (clear) store<u32>(p + D_FLAGS, load<u32>(p + D_FLAGS) & ~DF_OVERLOAD);
}

/** A connection of d changed between active and inactive (TCP state): the total is unchanged. */
export function connSetActive(d: u32, toActive: bool): void {
  const p = destPtr(d);
  const from = toActive ? D_INACTIVE : D_ACTIVE;
  const to = toActive ? D_ACTIVE : D_INACTIVE;
  store<i32>(p + from, load<i32>(p + from) - 1);
  store<i32>(p + to, load<i32>(p + to) + 1);
}
