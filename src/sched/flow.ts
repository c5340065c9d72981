// Flow keys: what a scheduler sees of a new connection, written into wasm memory in the
// 48-byte layout of assembly/sched/table.ts (FK_*), and read back for custom schedulers.

import { isIP } from "node:net";
import { encodeAddress } from "../core/actions.js";
import { SchedulerConfigError } from "./errors.js";

export type Protocol = "tcp" | "udp" | "sctp";

export interface FlowKey {
  /** Client address (IPv4 or IPv6 text). */
  readonly clientAddress: string;
  readonly clientPort?: number;
  /** Virtual (service) address: what dh, lblc and lblcr hash. Default: 0.0.0.0 or ::. */
  readonly virtualAddress?: string;
  readonly virtualPort?: number;
  /** Default "tcp". sh-port and mh-port use the port for tcp, udp and sctp only. */
  readonly protocol?: Protocol | number;
}

export const FLOW_KEY_BYTES = 48;
const PROTOCOLS: Record<Protocol, number> = { tcp: 6, udp: 17, sctp: 132 };

export function protocolNumber(p: Protocol | number | undefined): number {
  if (p === undefined) return 6;
  if (typeof p === "number") {
    if (!Number.isInteger(p) || p < 0 || p > 255) throw new SchedulerConfigError(`protocol: ${p} is not 0..255`);
    return p;
  }
  const n = PROTOCOLS[p];
  if (n === undefined) throw new SchedulerConfigError(`protocol: "${p}" is not one of tcp, udp, sctp or a number`);
  return n;
}

/** Parses an address for the scheduler tables (16 bytes, IPv4 in the first 4). */
export function parseAddress(text: string, field: string): { family: 4 | 6; bytes: Uint8Array } {
  if (typeof text !== "string" || isIP(text) === 0) {
    throw new SchedulerConfigError(`${field}: ${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  }
  return encodeAddress(text, field);
}

function port(p: number | undefined, field: string): number {
  if (p === undefined) return 0;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new SchedulerConfigError(`${field}: ${p} is not an integer in 0..65535`);
  return p;
}

/** Writes a flow key at byte offset `at` of `mem`. */
export function writeFlowKey(mem: Uint8Array, at: number, flow: FlowKey): void {
  const c = parseAddress(flow.clientAddress, "clientAddress");
  const v = flow.virtualAddress === undefined ? { family: c.family, bytes: new Uint8Array(16) } : parseAddress(flow.virtualAddress, "virtualAddress");
  if (v.family !== c.family) throw new SchedulerConfigError("virtualAddress: must be the same family as clientAddress");
  mem.set(c.bytes, at);
  mem.set(v.bytes, at + 16);
  const dv = new DataView(mem.buffer, mem.byteOffset + at, FLOW_KEY_BYTES);
  dv.setUint32(32, port(flow.clientPort, "clientPort"), true);
  dv.setUint32(36, port(flow.virtualPort, "virtualPort"), true);
  dv.setUint32(40, protocolNumber(flow.protocol), true);
  dv.setUint32(44, c.family, true);
}

export function formatAddress(bytes: Uint8Array, family: number): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // compress the longest run of zero words (RFC 5952)
  let best = -1,
    bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(":");
  return `${words.slice(0, best).join(":")}::${words.slice(best + bestLen).join(":")}`;
}

const NAMES: Record<number, Protocol> = { 6: "tcp", 17: "udp", 132: "sctp" };

/** Reads the flow key at byte offset `at`. */
export function readFlowKey(mem: Uint8Array, at: number): Required<FlowKey> {
  const dv = new DataView(mem.buffer, mem.byteOffset + at, FLOW_KEY_BYTES);
  const family = dv.getUint32(44, true);
  const proto = dv.getUint32(40, true);
  return {
    clientAddress: formatAddress(mem.subarray(at, at + 16), family),
    virtualAddress: formatAddress(mem.subarray(at + 16, at + 32), family),
    clientPort: dv.getUint32(32, true),
    virtualPort: dv.getUint32(36, true),
    protocol: NAMES[proto] ?? proto,
  };
}
