// Connection sync at the Balancer's edge: the snapshots the data plane queues on a sync
// master (assembly/datapath/sync.ts), read into typed records, and the service and
// destination a received record belongs to (the kernel's ip_vs_find_dest), for the import.
// The wire format itself is src/sync/'s business; these records are in our own terms.

import type { DestinationConfig, ForwardMethod, ServiceConfig } from "../config/types.js";
import { formatAddress } from "../sched/flow.js";
import { canonicalAddress, canonicalText, PROTOCOL_NUMBER } from "./validate.js";

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
  /**
   * A full-NAT connection's local address and port (what the real server sees as the
   * client); absent for every other connection and for templates.
   */
  readonly local?: { readonly address: string; readonly port: number };
}

/** What importing one record did (the kernel's ip_vs_proc_conn outcomes). */
export type SyncImportResult = "created" | "updated" | "stale" | "no-destination" | "table-full" | "no-local-address" | "local-port-in-use";
export const IMPORT_RESULTS: readonly SyncImportResult[] = [
  "created",
  "updated",
  "stale",
  "no-destination",
  "table-full",
  // Full NAT: no local address in the record, or none of the service's pool here.
  "no-local-address",
  // Full NAT: a connection here already uses that local address and port toward the real server.
  "local-port-in-use",
];

// Snapshot layout (assembly/datapath/sync.ts, SR_*).
export const SYNC_RECORD_BYTES = 100;
const F_TEMPLATE = 2;
const F_INACTIVE = 4;
export const SYNC_FLAG = { template: F_TEMPLATE, inactive: F_INACTIVE } as const;
/** Action kinds (assembly/forward/action.ts) to forwarding methods. */
const METHOD_OF_KIND: Record<number, ForwardMethod> = { 1: "masq", 3: "route", 4: "tunnel", 9: "fullnat" };

/** Addresses as bytes (4 or 16), beside the text: what the wire encoder writes. */
export interface SyncRecordBytes {
  readonly client: Uint8Array;
  readonly virtual: Uint8Array;
  readonly destination: Uint8Array;
  /** A full-NAT connection's local address (4 or 16 bytes) and port. */
  readonly local?: { readonly address: Uint8Array; readonly port: number };
}

/**
 * A snapshot read from the ring: the 80 bytes are copied once; the address texts are made
 * only when asked for (a sync sender needs the bytes alone, and formatting three addresses
 * per connection would cost more than everything else it does).
 */
class RingRecord implements SyncRecord {
  readonly protocol: number;
  readonly family: 4 | 6;
  readonly state: number;
  readonly method: ForwardMethod;
  readonly template: boolean;
  readonly inactive: boolean;
  readonly fwmark: number;
  readonly timeoutMs: number;
  readonly bytes: SyncRecordBytes;
  private readonly ports: DataView;

  constructor(raw: Uint8Array) {
    const v = new DataView(raw.buffer, raw.byteOffset, SYNC_RECORD_BYTES);
    this.ports = v;
    this.protocol = v.getUint8(0);
    this.family = v.getUint8(1) === 6 ? 6 : 4;
    this.state = v.getUint8(2);
    this.method = METHOD_OF_KIND[v.getUint8(3)] ?? "masq";
    const flags = v.getUint16(10, true);
    this.template = (flags & F_TEMPLATE) !== 0;
    this.inactive = (flags & F_INACTIVE) !== 0;
    this.timeoutMs = v.getUint32(12, true);
    this.fwmark = v.getUint32(16, true);
    const len = this.family === 6 ? 16 : 4;
    const lport = v.getUint16(96, true);
    const local = this.method === "fullnat" && !this.template && lport !== 0 ? { address: raw.subarray(80, 80 + len), port: lport } : undefined;
    this.bytes = {
      client: raw.subarray(20, 20 + len),
      virtual: raw.subarray(36, 36 + len),
      destination: raw.subarray(52, 52 + len),
      ...(local ? { local } : {}),
    };
  }
  get local() {
    const l = this.bytes.local;
    return l ? { address: formatAddress(l.address, this.family), port: l.port } : undefined;
  }
  get client() {
    return { address: formatAddress(this.bytes.client, this.family), port: this.ports.getUint16(4, true) };
  }
  get virtual() {
    return { address: formatAddress(this.bytes.virtual, this.family), port: this.ports.getUint16(6, true) };
  }
  get destination() {
    return { address: formatAddress(this.bytes.destination, this.family), port: this.ports.getUint16(8, true) };
  }
  toJSON(): SyncRecord {
    const { protocol, family, client, virtual, destination, state, template, inactive, method, fwmark, timeoutMs, local } = this;
    return { protocol, family, client, virtual, destination, state, template, inactive, method, fwmark, timeoutMs, ...(local ? { local } : {}) };
  }
}

/** Reads the snapshot at byte offset `at` (a copy: the ring is reused). */
export function readSyncRecord(mem: Uint8Array, at: number): SyncRecord & { readonly bytes: SyncRecordBytes } {
  return new RingRecord(mem.slice(at, at + SYNC_RECORD_BYTES));
}

interface DestLike {
  readonly id: number;
  readonly config: DestinationConfig;
}

interface ServiceLike {
  readonly id: number;
  readonly config: ServiceConfig;
  /** The Balancer's Map values, or any list. */
  readonly dests: { values(): Iterable<DestLike> } | readonly DestLike[];
}

function find<T>(items: Iterable<T>, test: (item: T) => boolean): T | undefined {
  for (const item of items) if (test(item)) return item;
  return undefined;
}

/**
 * The service and destination a received record belongs to, or null: the service by
 * firewall mark, then by <protocol, VIP, port>, then the port-zero service; in it the real
 * server by address and port, then by address alone (fwmark and port-zero services, and
 * templates that carry no port).
 */
export function findSyncTarget<S extends ServiceLike>(services: Iterable<S>, r: SyncRecord): { service: S; destination: DestLike } | null {
  const vip = canonicalText(r.virtual.address, "virtual address").text;
  let mark = r.fwmark;
  if (r.template && r.protocol === 0) {
    // A fwmark service's template carries the mark in place of the VIP.
    const { bytes } = canonicalAddress(r.virtual.address, "virtual address");
    mark = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  }
  const byMark =
    mark !== 0 ? find(services, (s) => s.config.key.kind === "fwmark" && s.config.key.fwmark === mark && s.config.key.family === r.family) : undefined;
  const byAddress = (port: number) =>
    find(services, (s) => {
      const k = s.config.key;
      return k.kind === "address" && PROTOCOL_NUMBER[k.protocol] === r.protocol && k.port === port && canonicalText(k.address, "address").text === vip;
    });
  const service = byMark ?? byAddress(r.virtual.port) ?? byAddress(0);
  if (!service) return null;
  const daddr = canonicalText(r.destination.address, "destination address").text;
  const sameAddress = (d: { config: DestinationConfig }) => canonicalText(d.config.address, "address").text === daddr;
  const dests = [...service.dests.values()];
  const destination = dests.find((d) => sameAddress(d) && d.config.port === r.destination.port) ?? dests.find(sameAddress);
  return destination ? { service, destination } : null;
}
