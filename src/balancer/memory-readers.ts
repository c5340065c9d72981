// Reads the data plane's records for listings: 64-bit counters and rate estimates
// (assembly/stats/counters.ts) and connection records (assembly/conn/conn-table.ts).

import type { ConnectionSnapshot, TrafficCounters, TrafficRates } from "./snapshots.js";
import { formatAddress } from "../sched/flow.js";

/** Counters and displayed rates of one stats block (kernel display rounding). */
export function readStatsBlock(mem: Uint8Array, at: number): { stats: TrafficCounters; rates: TrafficRates } {
  if (wholeView?.buffer !== mem.buffer) wholeView = new DataView(mem.buffer);
  const v = wholeView;
  const base = mem.byteOffset + at;
  return {
    stats: { conns: u64(v, base), inpkts: u64(v, base + 8), outpkts: u64(v, base + 16), inbytes: u64(v, base + 24), outbytes: u64(v, base + 32) },
    rates: {
      cps: rate(v, base + 80),
      inpps: rate(v, base + 88),
      outpps: rate(v, base + 96),
      inbps: byteRate(v, base + 104),
      outbps: byteRate(v, base + 112),
    },
  };
}

// A listing reads 250,000 blocks: one view of the whole memory, no closures, and no BigInt
// made for the many counters that are zero.
let wholeView: DataView | undefined;
function u64(v: DataView, at: number): bigint {
  return v.getUint32(at, true) === 0 && v.getUint32(at + 4, true) === 0 ? 0n : v.getBigUint64(at, true);
}
/** The kernel's displayed rate of an estimator average (<= 0 shows 0). */
function rate(v: DataView, at: number): bigint {
  const a = v.getInt32(at + 4, true) < 0 || (v.getUint32(at, true) === 0 && v.getInt32(at + 4, true) === 0) ? 0n : v.getBigInt64(at, true);
  return a <= 0n ? 0n : (a + 0x1ffn) >> 10n;
}
function byteRate(v: DataView, at: number): bigint {
  const a = v.getInt32(at + 4, true) < 0 || (v.getUint32(at, true) === 0 && v.getInt32(at + 4, true) === 0) ? 0n : v.getBigInt64(at, true);
  return a <= 0n ? 0n : (a + 0xfn) >> 5n;
}

// Connection record fields (assembly/conn/conn-table.ts): a 64-byte hot part and a 32-byte
// cold part; records come in pairs of 192 bytes [hot 2k][hot 2k+1][cold 2k][cold 2k+1].
const C = {
  proto: 0,
  family: 1,
  state: 2,
  method: 3,
  cport: 4,
  vport: 6,
  caddr: 8,
  vaddr: 24,
  dport: 40,
  flags: 42,
  timeout: 48,
  dest: 52,
  service: 56,
  inpkts: 60,
} as const;
const CC = { daddr: 0, template: 16, ncontrol: 20, fwmark: 24 } as const;
export const CONN_RECORD_SIZE = 96;
const CONN_PAIR_SIZE = 192;
/** Where record `index`'s hot and cold parts start. */
function connRecordAt(base: number, index: number): { hot: number; cold: number } {
  const pair = base + Math.floor(index / 2) * CONN_PAIR_SIZE;
  return { hot: pair + (index & 1) * 64, cold: pair + 128 + (index & 1) * 32 };
}
const F_TEMPLATE = 2;
const F_INACTIVE = 4;

export const TCP_STATE_NAMES = [
  "NONE",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "SYNACK",
] as const;

const PROTOCOL_NAMES: Record<number, ConnectionSnapshot["protocol"]> = { 6: "tcp", 17: "udp", 132: "sctp", 0: "ip" };

/** What a connection record holds, for listings and tests. */
export interface ConnectionRecord {
  readonly index: number;
  readonly snapshot: ConnectionSnapshot;
  readonly template: boolean;
  readonly active: boolean;
  readonly destinationId: number;
  readonly serviceId: number;
  readonly templateIndex: number | null;
  readonly controlled: number;
  readonly inPackets: number;
  readonly fwmark: number;
  /** The state's number (kernel order), 11 for UDP-like protocols. */
  readonly stateNumber: number;
}

export function readConnection(mem: Uint8Array, base: number, index: number, expiresMs: number): ConnectionRecord {
  const { hot: at, cold } = connRecordAt(base, index);
  const v = new DataView(mem.buffer, at, 64);
  const k = new DataView(mem.buffer, cold, 32);
  const family = v.getUint8(C.family);
  const proto = v.getUint8(C.proto);
  const flags = v.getUint16(C.flags, true);
  const addr = (o: number) => formatAddress(mem.subarray(at + o, at + o + 16), family);
  const template = (flags & F_TEMPLATE) !== 0;
  const stateNumber = v.getUint8(C.state);
  const protocol = PROTOCOL_NAMES[proto] ?? "ip";
  const state = protocol === "tcp" ? (TCP_STATE_NAMES[stateNumber] ?? "NONE") : template ? "NONE" : protocol.toUpperCase();
  const t = k.getUint32(CC.template, true);
  return {
    index,
    template,
    active: !template && (flags & F_INACTIVE) === 0,
    destinationId: v.getUint32(C.dest, true),
    serviceId: v.getUint32(C.service, true),
    templateIndex: t === 0xffffffff ? null : t,
    controlled: k.getUint32(CC.ncontrol, true),
    inPackets: v.getUint32(C.inpkts, true),
    fwmark: k.getUint32(CC.fwmark, true),
    stateNumber,
    snapshot: {
      protocol,
      client: { address: addr(C.caddr), port: v.getUint16(C.cport, true) },
      virtual:
        template && proto === 0
          ? { address: String(new DataView(mem.buffer, at + C.vaddr, 4).getUint32(0, false)), port: v.getUint16(C.vport, true) }
          : { address: addr(C.vaddr), port: v.getUint16(C.vport, true) },
      destination: { address: formatAddress(mem.subarray(cold + CC.daddr, cold + CC.daddr + 16), family), port: v.getUint16(C.dport, true) },
      state,
      expires: Math.ceil(expiresMs / 1000),
    },
  };
}
