// The parser's fast path (IPv4 with IHL 5, raw or in an untagged Ethernet frame: inline
// header-checksum check in native byte order) against its full path (the same packet behind
// an 802.1Q tag), and the checksum verdict against an independent RFC 1071 sum in JS.
// Packets are mostly well formed so that every check is reached: random header fields,
// checksum right or wrong, random total length, protocol, fragment field and truncation.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PacketCore, LinkType, DropReason, type ParsedPacket } from "../src/index.js";

const core = new PacketCore({ slotCount: 1, slotCapacity: 2048, actionCount: 1 });

function sum16(b: Uint8Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i += 2) s += (b[i] << 8) | b[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const packetArb = fc.record({
  header: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  l4: fc.uint8Array({ minLength: 0, maxLength: 80 }),
  proto: fc.constantFrom(6, 17, 1, 47, 58, 132),
  frag: fc.oneof(fc.constantFrom(0x0000, 0x4000, 0x2000, 0x0001, 0x0100, 0x1000, 0x2100, 0x6000, 0x1fff), fc.integer({ min: 0, max: 0xffff })),
  lengthMode: fc.constantFrom("exact", "exact", "random"),
  csumMode: fc.constantFrom("right", "right", "right", "wrong", "random"),
  trim: fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 30 })),
  flip: fc.option(fc.nat({ max: 19 }), { nil: undefined }),
});

interface Gen {
  header: Uint8Array;
  l4: Uint8Array;
  proto: number;
  frag: number;
  lengthMode: string;
  csumMode: string;
  trim: number;
  flip?: number;
}

function build(g: Gen): Uint8Array {
  const p = new Uint8Array(20 + g.l4.length);
  p.set(g.header, 0);
  p.set(g.l4, 20);
  p[0] = 0x45;
  p[6] = g.frag >> 8;
  p[7] = g.frag & 0xff;
  p[9] = g.proto;
  const total = g.lengthMode === "exact" ? p.length : (g.header[2] << 8) | g.header[3];
  p[2] = total >> 8;
  p[3] = total & 0xff;
  if (g.l4.length >= 13 && g.proto === 6) p[20 + 12] = (5 + (g.l4[12] & 3)) << 4; // plausible TCP data offset
  if (g.l4.length >= 6 && g.proto === 17) {
    p[24] = 0;
    p[25] = Math.min(g.l4.length, 8 + (g.l4[5] & 7));
  }
  if (g.csumMode !== "random") {
    p[10] = 0;
    p[11] = 0;
    const c = ~sum16(p, 0, 20) & 0xffff;
    p[10] = c >> 8;
    p[11] = c & 0xff;
    if (g.csumMode === "wrong") {
      const k = g.header[11] & 15; // one bit of the checksum field
      p[10 + (k >> 3)] ^= 1 << (k & 7);
    }
  }
  if (g.flip !== undefined) p[g.flip === 0 ? 1 : g.flip] ^= 0x10; // keep byte 0 = 0x45
  return p.subarray(0, Math.max(0, p.length - g.trim));
}

const ETH = Uint8Array.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
const ETH_VLAN = Uint8Array.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00]);

function frame(head: Uint8Array, ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(head.length + ip.length);
  f.set(head, 0);
  f.set(ip, head.length);
  return f;
}

/** Parse fields with offsets made relative to the IP header. */
function relative(r: ParsedPacket): Record<string, number> {
  if (r.status !== DropReason.None) return { status: r.status };
  const l3 = r.l3Offset;
  return {
    status: r.status,
    family: r.family,
    ipLength: r.ipLength,
    l4Offset: r.l4Offset - l3,
    protocol: r.protocol,
    l4Length: r.l4Length,
    fragment: r.fragment,
    sourcePort: r.sourcePort,
    destinationPort: r.destinationPort,
    icmpType: r.icmpType,
    icmpCode: r.icmpCode,
    tcpFlags: r.tcpFlags,
    src: r.sourceAddressOffset - l3,
    dst: r.destinationAddressOffset - l3,
  };
}

test("IPv4 fast path (raw, untagged Ethernet) parses exactly as the full path (VLAN-tagged)", () => {
  fc.assert(
    fc.property(packetArb, (g) => {
      const ip = build(g);
      const raw = relative(core.parseBytes(ip, LinkType.RawIp));
      const eth = relative(core.parseBytes(frame(ETH, ip), LinkType.Ethernet));
      const vlan = relative(core.parseBytes(frame(ETH_VLAN, ip), LinkType.Ethernet));
      assert.deepEqual(raw, vlan);
      assert.deepEqual(eth, vlan);
    }),
    { numRuns: 20000 },
  );
});

test("IPv4 header checksum verdict and fragment class match an independent reading", () => {
  fc.assert(
    fc.property(packetArb, (g) => {
      const ip = build(g);
      const total = ip.length >= 4 ? (ip[2] << 8) | ip[3] : 0;
      if (ip.length < 20 || total < 20 || total > ip.length) return; // stopped before the checksum
      const ok = sum16(ip, 0, 20) === 0xffff;
      const r = core.parseBytes(ip, LinkType.RawIp);
      assert.equal(r.status === DropReason.BadIpChecksum, !ok, `status ${r.status}, checksum ${ok ? "valid" : "invalid"}`);
      if (ok) {
        const field = (ip[6] << 8) | ip[7];
        const later = (field & 0x1fff) !== 0;
        // A later fragment stops before the L4 checks, so its verdict is always None.
        if (later) assert.equal(r.status, DropReason.None);
        if (r.status === DropReason.None) assert.equal(r.fragment, later ? 2 : field & 0x2000 ? 1 : 0);
      }
    }),
    { numRuns: 20000 },
  );
});
