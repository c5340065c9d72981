// Connection sync at the Balancer's edge: the snapshots the data plane queues on a sync
// master (assembly/datapath/sync.ts), read into typed records, and the service and
// destination a received record belongs to (the kernel's ip_vs_find_dest), for the import.
// The wire format itself is src/sync/'s business; these records are in our own terms.

import type { DestinationConfig, ForwardMethod, ServiceConfig } from "../config/types.js";
import { formatAddress } from "../sched/flow.js";
import { canonicalAddress, PROTOCOL_NUMBER } from "./validate.js";

/** One connection or persistence template, as a sync master sends it and a backup imports it. */
export interface SyncRecord {
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP); 0 for the templates of fwmark services. */
  readonly protocol: number;
  readonly family: 4 | 6;
  readonly client: { readonly address: string; readonly port: number };
  /** For fwmark templates the address holds the mark, big-endian, as the kernel keys it. */
  readonly virtual: { readonly address: string; readonly port: number };
  readonly destination: { readonly address: string; readonly port: number };
  /** TCP: the kernel's state numbers (1 ESTABLISHED ... 10 SYNACK); 0 for templates, UDP and the rest. */
  readonly state: number;
  readonly template: boolean;
  /** Counted in InActConn (not ESTABLISHED). */
  readonly inactive: boolean;
  readonly method: ForwardMethod;
  readonly fwmark: number;
  /** The connection's current timeout (its state's, or the template's persistence). */
  readonly timeoutMs: number;
}

/** What importing one record did (the kernel's ip_vs_proc_conn outcomes). */
export type SyncImportResult = "created" | "updated" | "stale" | "no-destination" | "table-full";
export const IMPORT_RESULTS: readonly SyncImportResult[] = ["created", "updated", "stale", "no-destination", "table-full"];

// Snapshot layout (assembly/datapath/sync.ts, SR_*).
export const SYNC_RECORD_BYTES = 80;
const F_TEMPLATE = 2;
const F_INACTIVE = 4;
export const SYNC_FLAG = { template: F_TEMPLATE, inactive: F_INACTIVE } as const;
/** Action kinds (assembly/forward/action.ts) to forwarding methods. */
const METHOD_OF_KIND: Record<number, ForwardMethod> = { 1: "masq", 3: "route", 4: "tunnel" };

/** Reads the snapshot at byte offset `at`. */
export function readSyncRecord(mem: Uint8Array, at: number): SyncRecord {
  const v = new DataView(mem.buffer, mem.byteOffset + at, SYNC_RECORD_BYTES);
  const family = v.getUint8(1) === 6 ? 6 : 4;
  const flags = v.getUint16(10, true);
  const addr = (o: number) => formatAddress(mem.subarray(at + o, at + o + 16), family);
  return {
    protocol: v.getUint8(0),
    family,
    state: v.getUint8(2),
    method: METHOD_OF_KIND[v.getUint8(3)] ?? "masq",
    client: { address: addr(20), port: v.getUint16(4, true) },
    virtual: { address: addr(36), port: v.getUint16(6, true) },
    destination: { address: addr(52), port: v.getUint16(8, true) },
    template: (flags & F_TEMPLATE) !== 0,
    inactive: (flags & F_INACTIVE) !== 0,
    fwmark: v.getUint32(16, true),
    timeoutMs: v.getUint32(12, true),
  };
}

interface ServiceLike {
  readonly id: number;
  readonly config: ServiceConfig;
  readonly dests: readonly { readonly id: number; readonly config: DestinationConfig }[];
}

/**
 * The service and destination a received record belongs to, or null: the service by
 * firewall mark, then by <protocol, VIP, port>, then the port-zero service; in it the real
 * server by address and port, then by address alone (fwmark and port-zero services, and
 * templates that carry no port).
 */
export function findSyncTarget<S extends ServiceLike>(services: readonly S[], r: SyncRecord): { service: S; destination: S["dests"][number] } | null {
  const vip = canonicalAddress(r.virtual.address, "virtual address").text;
  let mark = r.fwmark;
  if (r.template && r.protocol === 0) {
    // A fwmark service's template carries the mark in place of the VIP.
    const { bytes } = canonicalAddress(r.virtual.address, "virtual address");
    mark = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  }
  const byMark =
    mark !== 0 ? services.find((s) => s.config.key.kind === "fwmark" && s.config.key.fwmark === mark && s.config.key.family === r.family) : undefined;
  const byAddress = (port: number) =>
    services.find((s) => {
      const k = s.config.key;
      return k.kind === "address" && PROTOCOL_NUMBER[k.protocol] === r.protocol && k.port === port && canonicalAddress(k.address, "address").text === vip;
    });
  const service = byMark ?? byAddress(r.virtual.port) ?? byAddress(0);
  if (!service) return null;
  const daddr = canonicalAddress(r.destination.address, "destination address").text;
  const sameAddress = (d: { config: DestinationConfig }) => canonicalAddress(d.config.address, "address").text === daddr;
  const destination = service.dests.find((d) => sameAddress(d) && d.config.port === r.destination.port) ?? service.dests.find(sameAddress);
  return destination ? { service, destination } : null;
}
