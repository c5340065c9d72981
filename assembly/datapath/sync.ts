// Connection sync, master side: the kernel's ip_vs_sync_conn_needed (net/netfilter/ipvs/
// ip_vs_sync.c, Linux 6.x) run on every client-side packet, and a bounded ring of snapshots
// of the connections that qualify, which the host drains after each batch and encodes as
// IPVS sync messages (src/sync/). A snapshot, not an index: a record may be dropped and
// reused before the host reads the ring. Off until the host starts a master; then one
// branch per packet. The ring never grows: when full, snapshots are counted as dropped, as
// the kernel drops sync buffers past sync_qlen_max.
//
// The kernel keeps two fields per connection for this (old_state, sync_endtime); our
// records have no spare bytes, so they live in a side array of 12 bytes per record,
// carved at start-up: [u32 sync end time (ms, low 2 bits = retries)][u32 last queued]
// [u8 state last synced].

import { ACTION_FNAT } from "../forward/action";
import {
  connPtr, connCold, connCapacity, NONE, C_PROTO, C_FAMILY, C_STATE, C_METHOD, C_CPORT, C_VPORT,
  C_DPORT, C_FLAGS, C_TIMEOUT, C_CADDR, C_VADDR, C_DEST, C_SERVICE, C_INPKTS, CC_DADDR, CC_FWMARK,
  CC_TEMPLATE, CC_LOCAL, F_TEMPLATE, F_IN_USE, F_PROXY, C_EXPIRES,
} from "../conn/conn-table";
import { laddrPtr } from "../conn/local-addresses";
import { S_ESTABLISHED, S_FIN_WAIT, S_CLOSE, S_CLOSE_WAIT, S_TIME_WAIT } from "../conn/tcp-states";
import { PROTO_TCP } from "../net/constants";
import { actionPtr, actionCount, A_KIND } from "../forward/action";
import { serviceFlags, SVCF_PERSISTENT } from "./services";

/** Bytes of one snapshot in the ring (layout in docs/sync.md, "The sync ring"). */
export const SYNC_RECORD_SIZE: u32 = 100;
export const SR_PROTO: u32 = 0; // u8
export const SR_FAMILY: u32 = 1; // u8
export const SR_STATE: u32 = 2; // u8 (tcp-states.ts numbering)
export const SR_METHOD: u32 = 3; // u8 action kind of the destination
export const SR_CPORT: u32 = 4; // u16
export const SR_VPORT: u32 = 6; // u16
export const SR_DPORT: u32 = 8; // u16
export const SR_FLAGS: u32 = 10; // u16 F_* of conn-table.ts
export const SR_TIMEOUT: u32 = 12; // u32 ms
export const SR_FWMARK: u32 = 16; // u32
export const SR_CADDR: u32 = 20; // 16 bytes
export const SR_VADDR: u32 = 36; // 16 bytes
export const SR_DADDR: u32 = 52; // 16 bytes
export const SR_DEST: u32 = 68; // u32
export const SR_SERVICE: u32 = 72; // u32
export const SR_INDEX: u32 = 76; // u32 record index
export const SR_LADDR: u32 = 80; // 16 bytes: a full-NAT connection's local address (else zero)
export const SR_LPORT: u32 = 96; // u16: its local port (0: not full NAT)

const SIDE_SIZE: u32 = 12;
const SIDE_END: u32 = 0;
const SIDE_LAST: u32 = 4; // u32 ms: when the record was last queued (the table refresh's clock)
const SIDE_OLD_STATE: u32 = 8;

let ring: usize = 0;
let ringCapacity: u32 = 0;
let ringCount: u32 = 0;
let ringDropped: u32 = 0;
let side: usize = 0;

/** Whether this instance is a sync master (the host's --start-daemon master). */
export let syncMaster: bool = false;
// The sysctls, kernel defaults: sync_threshold 3 50, sync_refresh_period 0, sync_retries 0.
let threshold: u32 = 3;
let period: u32 = 50;
let refreshMs: u32 = 0;
let retries: u32 = 0;

/** Carves the ring and the side array; after connInit. Once. */
export function initSync(capacity: u32): bool {
  if (ring != 0 || capacity == 0 || capacity > 1 << 16 || connCapacity == 0) return false;
  ring = heap.alloc(<usize>capacity * SYNC_RECORD_SIZE);
  side = heap.alloc(<usize>connCapacity * SIDE_SIZE);
  memory.fill(side, 0, <usize>connCapacity * SIDE_SIZE);
  ringCapacity = capacity;
  return true;
}

export function setSyncMaster(on: bool): void {
  syncMaster = on && ring != 0;
}

/** sync_threshold, sync_period, sync_refresh_period (ms), sync_retries; false if out of range. */
export function setSyncParams(t: u32, p: u32, refresh: u32, r: u32): bool {
  if (p > 0 && t >= p) return false; // the kernel: threshold in [0, period)
  if (r > 3) return false;
  threshold = t;
  period = p;
  refreshMs = refresh;
  retries = r;
  return true;
}

export function syncThreshold(): u32 { return threshold; }
export function syncRing(): usize { return ring; }
export function syncCount(): u32 { return ringCount; }
export function syncDropped(): u32 { return ringDropped; }
export function syncClear(): void {
  ringCount = 0;
  ringDropped = 0;
}

@inline function sidePtr(i: u32): usize {
  return side + <usize>i * SIDE_SIZE;
}

/** A record was just created (or imported) in `state`: nothing synced for it yet. */
export function syncForget(i: u32, state: u32): void {
  if (side == 0) return;
  const s = sidePtr(i);
  store<u32>(s + SIDE_END, 0);
  store<u32>(s + SIDE_LAST, pushNow - 0x40000000); // long ago: the refresh may take it
  store<u8>(s + SIDE_OLD_STATE, <u8>state);
}

const TCP_SYNCED_STATES: u32 =
  (1 << S_ESTABLISHED) | (1 << S_FIN_WAIT) | (1 << S_CLOSE) | (1 << S_CLOSE_WAIT) | (1 << S_TIME_WAIT);

/** The kernel's ip_vs_sync_conn_needed for record i after its `pkts`-th client packet. */
function needed(i: u32, pkts: u32, now: u32): bool {
  const c = connPtr(i);
  const s = sidePtr(i);
  const orig = load<u32>(s + SIDE_END);
  const timeout = load<u32>(c + C_TIMEOUT);
  let n = (now + timeout) & ~3;
  const template = (<u32>load<u16>(c + C_FLAGS) & F_TEMPLATE) != 0;
  let force = false;
  if (!template && <u32>load<u8>(c + C_PROTO) == PROTO_TCP) {
    const state = <u32>load<u8>(c + C_STATE);
    if (((1 << state) & TCP_SYNCED_STATES) == 0) return false;
    force = state != <u32>load<u8>(s + SIDE_OLD_STATE);
    if (force && state != S_ESTABLISHED) {
      store<u8>(s + SIDE_OLD_STATE, <u8>state);
      store<u32>(s + SIDE_END, n);
      return true;
    }
  }
  if (refreshMs > 0) {
    const diff = <i32>(n - orig);
    const half = timeout >> 1;
    const minDiff = half > 10_000 ? half : 10_000;
    const limit = refreshMs < minDiff ? refreshMs : minDiff;
    if (<u32>(diff < 0 ? -diff : diff) < limit) {
      const tries = orig & 3;
      if (tries >= retries) return false;
      if (<i32>(now - (orig - timeout + (refreshMs >> 3))) < 0) return false;
      n |= tries + 1;
    }
  }
  if (period > 0) {
    if (!template && pkts % period != threshold) return false;
  } else if (refreshMs == 0 && pkts != threshold) {
    return false;
  }
  if (!template) store<u8>(s + SIDE_OLD_STATE, load<u8>(c + C_STATE));
  store<u32>(s + SIDE_END, n);
  return true;
}

/** Appends a snapshot of record i; counted as dropped when the ring is full. */
function push(i: u32): void {
  if (ringCount >= ringCapacity) {
    ringDropped++;
    return;
  }
  const r = ring + <usize>ringCount * SYNC_RECORD_SIZE;
  const c = connPtr(i);
  const k = connCold(i);
  store<u8>(r + SR_PROTO, load<u8>(c + C_PROTO));
  store<u8>(r + SR_FAMILY, load<u8>(c + C_FAMILY));
  store<u8>(r + SR_STATE, load<u8>(c + C_STATE));
  // Templates record no method of their own; the kernel's carry their destination's.
  const d = load<u32>(c + C_DEST);
  const template = (<u32>load<u16>(c + C_FLAGS) & F_TEMPLATE) != 0;
  store<u8>(r + SR_METHOD, template && d < actionCount ? load<u8>(actionPtr(d) + A_KIND) : load<u8>(c + C_METHOD));
  store<u16>(r + SR_CPORT, load<u16>(c + C_CPORT));
  store<u16>(r + SR_VPORT, load<u16>(c + C_VPORT));
  store<u16>(r + SR_DPORT, load<u16>(c + C_DPORT));
  store<u16>(r + SR_FLAGS, load<u16>(c + C_FLAGS));
  store<u32>(r + SR_TIMEOUT, load<u32>(c + C_TIMEOUT));
  store<u32>(r + SR_FWMARK, load<u32>(k + CC_FWMARK));
  memory.copy(r + SR_CADDR, c + C_CADDR, 16);
  memory.copy(r + SR_VADDR, c + C_VADDR, 16);
  memory.copy(r + SR_DADDR, k + CC_DADDR, 16);
  store<u32>(r + SR_DEST, load<u32>(c + C_DEST));
  store<u32>(r + SR_SERVICE, load<u32>(c + C_SERVICE));
  store<u32>(r + SR_INDEX, i);
  if (!template && <u32>load<u8>(c + C_METHOD) == ACTION_FNAT) {
    const local = load<u32>(k + CC_LOCAL);
    memory.copy(r + SR_LADDR, laddrPtr(local >>> 16), 16);
    store<u16>(r + SR_LPORT, <u16>(local & 0xffff));
  } else {
    memory.fill(r + SR_LADDR, 0, 18);
  }
  store<u32>(sidePtr(i) + SIDE_LAST, pushNow);
  ringCount++;
}

/** The time of the call that is pushing (for SIDE_LAST). */
let pushNow: u32 = 0;
let sweepCursor: u32 = 0;

/**
 * The table refresh (not in the kernel, which syncs a connection only when its packets
 * say so): queues, from a cursor that wraps, the live entries a sync would carry (TCP in a
 * synced state, the other protocols, templates) not queued for `ageMs`, looking at most at
 * `budget` records and filling at most half the ring. A backup that starts late, or comes
 * back, so learns the idle connections too. Returns the number queued.
 */
export function syncSweep(now: u32, ageMs: u32, budget: u32): u32 {
  if (!syncMaster || connCapacity == 0) return 0;
  pushNow = now;
  let queued: u32 = 0;
  const room = ringCapacity >> 1;
  for (let n: u32 = 0; n < budget && n < connCapacity && ringCount < room; n++) {
    const i = sweepCursor;
    sweepCursor = sweepCursor + 1 >= connCapacity ? 0 : sweepCursor + 1;
    const c = connPtr(i);
    const flags = <u32>load<u16>(c + C_FLAGS);
    if ((flags & F_IN_USE) == 0 || (flags & F_PROXY) != 0) continue;
    if ((flags & F_TEMPLATE) == 0 && <u32>load<u8>(c + C_PROTO) == PROTO_TCP && ((1 << <u32>load<u8>(c + C_STATE)) & TCP_SYNCED_STATES) == 0) continue;
    if (<i32>(load<u32>(c + C_EXPIRES) - now) <= 0) continue;
    if (<i32>(now - load<u32>(sidePtr(i) + SIDE_LAST)) < <i32>ageMs) continue;
    push(i);
    queued++;
  }
  return queued;
}

/**
 * After the `pkts`-th client packet of connection i (the kernel's ip_vs_in calls
 * ip_vs_sync_conn there): queues i if it qualifies, then its persistence template, whose
 * own packet count goes up by one each time (the kernel's in_pkts of a template).
 */
export function syncConsider(i: u32, pkts: u32, now: u32): void {
  pushNow = now;
  const c = connPtr(i);
  // A full-NAT connection with the PROXY protocol header is not synced: the sequence
  // offset the header adds is not in the message, so a backup could not carry the flow.
  if ((<u32>load<u16>(c + C_FLAGS) & F_PROXY) != 0) return;
  // The common packet decides on the hot line alone: the kernel's rules can only say yes
  // here for a TCP state other than ESTABLISHED (a forced sync), on the period's packet, or
  // with a refresh period; only then are the side array and the cold line read.
  const tcp = <u32>load<u8>(c + C_PROTO) == PROTO_TCP && (<u32>load<u16>(c + C_FLAGS) & F_TEMPLATE) == 0;
  const state = <u32>load<u8>(c + C_STATE);
  if (tcp && ((1 << state) & TCP_SYNCED_STATES) == 0) {
    // not a state the kernel sends
  } else if ((tcp && state != S_ESTABLISHED) || refreshMs > 0 || (period > 0 ? pkts % period == threshold : pkts == threshold)) {
    if (needed(i, pkts, now)) push(i);
  }
  if ((serviceFlags(load<u32>(c + C_SERVICE)) & SVCF_PERSISTENT) == 0) return;
  const t = load<u32>(connCold(i) + CC_TEMPLATE);
  if (t == NONE) return;
  const tp = connPtr(t);
  const tpkts = load<u32>(tp + C_INPKTS) + 1;
  store<u32>(tp + C_INPKTS, tpkts);
  if (tpkts == 1) syncForget(t, 0); // a template's first controlled packet: a fresh record
  if (needed(t, tpkts, now)) push(t);
}
