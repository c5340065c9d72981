// Typed forwarding actions and their encoding into the wasm action table
// (layout: assembly/forward/action.ts).

import { isIP } from "node:net";

export const ACTION_SIZE = 96;
const A = {
  kind: 0,
  family: 1,
  tunType: 2,
  tunFlags: 3,
  port: 4,
  tunPort: 6,
  mtu: 8,
  setMac: 10,
  srcPort: 12,
  addr: 16,
  tunSrc: 32,
  dstMac: 48,
  srcMac: 54,
} as const;

export const ActionKind = {
  None: 0,
  NatDnat: 1,
  NatSnat: 2,
  DirectRouting: 3,
  Tunnel: 4,
  Decapsulate: 5,
  IcmpNatIn: 6,
  IcmpNatOut: 7,
  PortUnreachable: 8,
  FullNat: 9,
} as const;

/** Tunnel encapsulations, as ipvsadm's --tun-type names them. */
export type TunnelType = "ipip" | "gue" | "gre";
const TUN_TYPE: Record<TunnelType, number> = { ipip: 0, gue: 1, gre: 2 };

/** MAC addresses for Ethernet output, "aa:bb:cc:dd:ee:ff". */
export interface MacRewrite {
  readonly destinationMac: string;
  readonly sourceMac: string;
}

/** What to do to a packet. Addresses are IPv4 or IPv6 text. */
export type ForwardAction =
  | ({ readonly kind: "nat-dnat"; readonly address: string; readonly port?: number } & Partial<MacRewrite>)
  | ({ readonly kind: "nat-snat"; readonly address: string; readonly port?: number } & Partial<MacRewrite>)
  | ({ readonly kind: "dr" } & MacRewrite)
  | ({
      readonly kind: "tunnel";
      readonly type: TunnelType;
      /** Outer destination: the real server. */
      readonly remote: string;
      /** Outer source: the director. Same family as remote. */
      readonly local: string;
      /** GUE destination port (required for gue). */
      readonly port?: number;
      /** GUE / GRE checksum (ipvsadm --tun-csum). Default off (--tun-nocsum). */
      readonly checksum?: boolean;
      /** GUE remote checksum offload (--tun-remcsum). */
      readonly remoteChecksum?: boolean;
      /** Egress MTU: a DF packet that no longer fits gets ICMP fragmentation-needed back. */
      readonly mtu?: number;
    } & Partial<MacRewrite>)
  | ({
      readonly kind: "decap";
      /** UDP port whose datagrams are GUE to decapsulate; omit to leave UDP alone. */
      readonly port?: number;
    } & Partial<MacRewrite>)
  | ({ readonly kind: "icmp-nat-in"; readonly address: string; readonly port?: number } & Partial<MacRewrite>)
  | ({ readonly kind: "icmp-nat-out"; readonly address: string; readonly port?: number } & Partial<MacRewrite>)
  | ({ readonly kind: "port-unreachable" } & Partial<MacRewrite>)
  | ({
      readonly kind: "fullnat";
      /** New destination (the real server) and port (0 or omitted keeps it). */
      readonly address: string;
      readonly port?: number;
      /** New source (a local address of the director) and port (0 or omitted keeps it). Same family as address. */
      readonly sourceAddress: string;
      readonly sourcePort?: number;
    } & Partial<MacRewrite>);

export class ActionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ActionError";
  }
}

/** Parses IPv4 / IPv6 text into 16 bytes (IPv4 in the first 4) and its family. */
export function encodeAddress(text: string, field: string): { family: 4 | 6; bytes: Uint8Array } {
  const version = isIP(text);
  const bytes = new Uint8Array(16);
  if (version === 4) {
    // isIP accepted it: four decimal parts of at most three digits.
    let part = 0;
    let value = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 46) {
        bytes[part++] = value;
        value = 0;
      } else value = value * 10 + (c - 48);
    }
    bytes[part] = value;
    return { family: 4, bytes };
  }
  if (version === 6) {
    const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
    const parse = (s: string | undefined): number[] => {
      if (!s) return [];
      const out: number[] = [];
      for (const part of s.split(":")) {
        if (part.includes(".")) {
          const v4 = part.split(".").map(Number);
          out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        } else out.push(parseInt(part, 16));
      }
      return out;
    };
    const h = parse(head);
    const t = parse(tail);
    const words = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
    words.forEach((w, i) => {
      bytes[i * 2] = w >> 8;
      bytes[i * 2 + 1] = w & 0xff;
    });
    return { family: 6, bytes };
  }
  throw new ActionError(`${field}: "${text}" is not an IPv4 or IPv6 address`);
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with dashes) into 6 bytes. */
export function encodeMac(text: string, field: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new ActionError(`${field}: "${text}" is not a MAC address like 02:00:00:00:00:01`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

function checkPort(port: number | undefined, field: string, required = false): number {
  if (port === undefined) {
    if (required) throw new ActionError(`${field} is required`);
    return 0;
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ActionError(`${field} must be an integer in 0..65535, got ${port}`);
  }
  return port;
}

/** Encodes an action into a 96-byte record (validated whole: throws ActionError). */
// Module-level helpers, not closures: a 200,000-destination restore encodes 200,000 records.
function writeMacs(rec: Uint8Array, m: Partial<MacRewrite>, required: boolean): void {
  if (m.destinationMac === undefined && m.sourceMac === undefined && !required) return;
  if (m.destinationMac === undefined || m.sourceMac === undefined) {
    throw new ActionError("destinationMac and sourceMac go together");
  }
  rec.set(encodeMac(m.destinationMac, "destinationMac"), A.dstMac);
  rec.set(encodeMac(m.sourceMac, "sourceMac"), A.srcMac);
  rec[A.setMac] = 1;
}
function writeAddress(rec: Uint8Array, text: string, at: number, field: string): 4 | 6 {
  const { family, bytes } = encodeAddress(text, field);
  rec.set(bytes, at);
  return family;
}
const NAT_KINDS = {
  "nat-dnat": ActionKind.NatDnat,
  "nat-snat": ActionKind.NatSnat,
  "icmp-nat-in": ActionKind.IcmpNatIn,
  "icmp-nat-out": ActionKind.IcmpNatOut,
} as const;

export function encodeAction(action: ForwardAction): Uint8Array {
  const rec = new Uint8Array(ACTION_SIZE);
  const view = new DataView(rec.buffer);
  switch (action.kind) {
    case "nat-dnat":
    case "nat-snat":
    case "icmp-nat-in":
    case "icmp-nat-out": {
      rec[A.kind] = NAT_KINDS[action.kind];
      rec[A.family] = writeAddress(rec, action.address, A.addr, "address");
      view.setUint16(A.port, checkPort(action.port, "port"), true);
      writeMacs(rec, action, false);
      break;
    }
    case "dr":
      rec[A.kind] = ActionKind.DirectRouting;
      writeMacs(rec, action, true);
      break;
    case "tunnel": {
      if (!(action.type in TUN_TYPE)) throw new ActionError(`type must be one of ipip, gue, gre; got ${String(action.type)}`);
      rec[A.kind] = ActionKind.Tunnel;
      const fr = writeAddress(rec, action.remote, A.addr, "remote");
      const fl = writeAddress(rec, action.local, A.tunSrc, "local");
      if (fr !== fl) throw new ActionError("remote and local must be of the same address family");
      rec[A.family] = fr;
      rec[A.tunType] = TUN_TYPE[action.type];
      if (action.type === "ipip" && (action.checksum || action.remoteChecksum)) {
        throw new ActionError("checksum options apply to gue and gre only");
      }
      if (action.type === "gre" && action.remoteChecksum) throw new ActionError("remoteChecksum applies to gue only");
      rec[A.tunFlags] = (action.checksum ? 1 : 0) | (action.remoteChecksum ? 2 : 0);
      view.setUint16(A.tunPort, checkPort(action.port, "port", action.type === "gue"), true);
      if (action.type === "gue" && action.port === 0) throw new ActionError("port must be 1..65535 for gue");
      if (action.mtu !== undefined && (!Number.isInteger(action.mtu) || action.mtu < 68 || action.mtu > 65535)) {
        throw new ActionError(`mtu must be an integer in 68..65535, got ${action.mtu}`);
      }
      view.setUint16(A.mtu, action.mtu ?? 0, true);
      writeMacs(rec, action, false);
      break;
    }
    case "decap":
      rec[A.kind] = ActionKind.Decapsulate;
      view.setUint16(A.tunPort, checkPort(action.port, "port"), true);
      writeMacs(rec, action, false);
      break;
    case "port-unreachable":
      rec[A.kind] = ActionKind.PortUnreachable;
      writeMacs(rec, action, false);
      break;
    case "fullnat": {
      rec[A.kind] = ActionKind.FullNat;
      const fd = writeAddress(rec, action.address, A.addr, "address");
      const fs = writeAddress(rec, action.sourceAddress, A.tunSrc, "sourceAddress");
      if (fd !== fs) throw new ActionError("address and sourceAddress must be of the same address family");
      rec[A.family] = fd;
      view.setUint16(A.port, checkPort(action.port, "port"), true);
      view.setUint16(A.srcPort, checkPort(action.sourcePort, "sourcePort"), true);
      writeMacs(rec, action, false);
      break;
    }
    default:
      throw new ActionError(`unknown action kind ${(action as { kind: unknown }).kind}`);
  }
  return rec;
}
