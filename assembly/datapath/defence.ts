// IPVS's defence strategies (ip_vs_ctl.c update_defense_level, ip_vs_todrop, and
// ip_vs_conn.c ip_vs_random_dropentry), with "available memory" read as free entries of
// the connection table: the table is this director's memory for connections, fixed at
// start, so amemthresh counts entries (kernel: pages of free memory; default 1024 either
// way). Modes 0 (off), 1 (on when short of room, and the mode becomes 2), 2 (on while
// short, back to 1 when not), 3 (always on), for drop_entry, drop_packet and secure_tcp.

import { ACTION_FNAT } from "../forward/action";
import {
  connCapacity, connUsed, connPtr, connCold, connExpired, C_FLAGS, C_PROTO, C_STATE, C_EXPIRES, C_TIMEOUT, C_INPKTS,
  CC_NCONTROL, F_IN_USE, F_TEMPLATE, C_METHOD,
} from "../conn/conn-table";
import { useSecureTcpTable, S_SYN_RECV, S_SYNACK, S_ESTABLISHED } from "../conn/tcp-states";
import { PROTO_TCP } from "../net/constants";
import { dropConn } from "./accounting";

export let secureTcp: u32 = 0;
export let dropEntry: u32 = 0;
export let dropPacket: u32 = 0;
export let amemthresh: u32 = 1024;
export let amDroprate: u32 = 10;

let dropRate: u32 = 0;
let dropCounter: u32 = 0;
let dropEntryOn: bool = false;
let oldSecureTcp: u32 = 0;
let lastUpdate: u32 = 0;
let updatedOnce: bool = false;
let rng: u32 = 0x2545f491;

export function setDefence(secure: u32, entry: u32, packet: u32, thresh: u32, droprate: u32): void {
  secureTcp = secure;
  dropEntry = entry;
  dropPacket = packet;
  amemthresh = thresh;
  amDroprate = droprate;
  updateDefenceLevel(); // the kernel re-evaluates on every write of these sysctls
}

/** update_defense_level: short of room when fewer free entries than amemthresh. */
export function updateDefenceLevel(): void {
  const avail: u32 = connCapacity > connUsed ? connCapacity - connUsed : 0;
  const nomem = avail < amemthresh;
  // drop_entry
  if (dropEntry == 0) dropEntryOn = false;
  else if (dropEntry == 1) {
    dropEntryOn = nomem;
    if (nomem) dropEntry = 2;
  } else if (dropEntry == 2) {
    dropEntryOn = nomem;
    if (!nomem) dropEntry = 1;
  } else dropEntryOn = true;
  // drop_packet: drop one new connection in every drop_rate
  if (dropPacket == 0) dropRate = 0;
  else if (dropPacket == 1 || dropPacket == 2) {
    if (nomem) {
      dropRate = dropCounter = amemthresh / (amemthresh - avail);
      if (dropPacket == 1) dropPacket = 2;
    } else {
      dropRate = 0;
      if (dropPacket == 2) dropPacket = 1;
    }
  } else dropRate = amDroprate;
  // secure_tcp: the tcp_states_dos table while in force (mode >= 2)
  let change: i32 = -1;
  if (secureTcp == 0) {
    if (oldSecureTcp >= 2) change = 0;
  } else if (secureTcp == 1) {
    if (nomem) {
      if (oldSecureTcp < 2) change = 1;
      secureTcp = 2;
    } else if (oldSecureTcp >= 2) change = 0;
  } else if (secureTcp == 2) {
    if (nomem) {
      if (oldSecureTcp < 2) change = 1;
    } else {
      if (oldSecureTcp >= 2) change = 0;
      secureTcp = 1;
    }
  } else if (oldSecureTcp < 2) change = 1;
  oldSecureTcp = secureTcp;
  if (change >= 0) useSecureTcpTable(secureTcp > 1);
}

/** ip_vs_todrop: whether to drop this new connection (drop_packet in force). */
export function toDrop(): bool {
  if (dropRate == 0) return false;
  if (dropCounter > 1) {
    dropCounter--;
    return false;
  }
  dropCounter = dropRate;
  return true;
}

// todrop_entry's per-packet-count rates and counters: an entry that has seen i (0..8)
// packets from the client is dropped every i-th time it is picked (never with 0).
const todropCounter = new StaticArray<i32>(9);

/** todrop_entry: idle at least 60 s, and at most 8 packets from the client, at its rate. */
function toDropEntry(i: u32, now: u32): bool {
  const c = connPtr(i);
  const lastTouched = load<u32>(c + C_EXPIRES) - load<u32>(c + C_TIMEOUT);
  if (<i32>(now - lastTouched) < 60_000) return false;
  const n = load<u32>(c + C_INPKTS);
  if (n > 8 || n == 0) return false;
  const k = <i32>n;
  const left = unchecked(todropCounter[k]) - 1;
  unchecked((todropCounter[k] = left));
  if (left > 0) return false;
  unchecked((todropCounter[k] = k));
  return true;
}

/**
 * The kernel's defence timer, once a second: re-evaluate the level, and with drop_entry in
 * force look at a random 1/32 of the table (ip_vs_random_dropentry; the kernel picks hash
 * buckets, we pick records): TCP entries half open (SYN_RECV, SYNACK) are dropped, and
 * ESTABLISHED ones and those of other protocols by todrop_entry. Returns the entries dropped.
 */
export function defenceTick(now: u32): u32 {
  if (updatedOnce && now - lastUpdate < 1000) return 0;
  updatedOnce = true;
  lastUpdate = now;
  updateDefenceLevel();
  if (!dropEntryOn || connCapacity == 0) return 0;
  let dropped: u32 = 0;
  const probes = max<u32>(connCapacity >> 5, 1);
  for (let k: u32 = 0; k < probes; k++) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    const i = rng % connCapacity;
    const c = connPtr(i);
    const flags = <u32>load<u16>(c + C_FLAGS);
    if ((flags & F_IN_USE) == 0 || (flags & F_TEMPLATE) != 0) continue;
    // Connections that control others are spared (in IPVS only templates do; the word
    // means a local address in a full-NAT connection, which is fair game).
    if (<u32>load<u8>(c + C_METHOD) != ACTION_FNAT && load<u32>(connCold(i) + CC_NCONTROL) != 0) continue;
    if (connExpired(i, now)) continue; // the sweep's business
    if (<u32>load<u8>(c + C_PROTO) == PROTO_TCP) {
      const st = <u32>load<u8>(c + C_STATE);
      if (st == S_ESTABLISHED) {
        if (!toDropEntry(i, now)) continue;
      } else if (st != S_SYN_RECV && st != S_SYNACK) continue;
    } else if (!toDropEntry(i, now)) continue;
    dropConn(i);
    dropped++;
  }
  return dropped;
}
