// Incremental checksums (RFC 1624) against full recomputation. The reference here is our
// own TypeScript packet builder, written from the RFCs, that computes every checksum from
// scratch: "what NAT should produce" is simply the packet built with the new address and
// port. The data plane must produce exactly those bytes.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PacketCore, LinkType, Verdict } from "../src/index.js";
import type { ForwardAction } from "../src/index.js";
import { concat } from "./support/bytes.js";

// ---------------------------------------------------------------- reference checksums

/** One's-complement sum of bytes as big-endian 16-bit words, folded to 16 bits. */
function onesSum(bytes: Uint8Array, sum = 0): number {
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length & 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}
const checksumOf = (bytes: Uint8Array, sum = 0): number => ~onesSum(bytes, sum) & 0xffff;

const be16 = (v: number) => Uint8Array.of(v >> 8, v & 0xff);
const be32 = (v: number) => Uint8Array.of(v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
const setBe16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
};

function pseudoSum(family: 4 | 6, src: Uint8Array, dst: Uint8Array, proto: number, len: number): number {
  const words = family === 4 ? concat(src, dst, Uint8Array.of(0, proto), be16(len)) : concat(src, dst, be32(len), Uint8Array.of(0, 0, 0, proto));
  return onesSum(words);
}

// ---------------------------------------------------------------- reference packets

type Proto = "tcp" | "udp" | "icmp";
const PROTO_NUM = { tcp: 6, udp: 17 } as const;

interface Flow {
  family: 4 | 6;
  proto: Proto;
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  /** ICMP echo: request or reply; the id is sport. */
  echoReply: boolean;
  payload: Uint8Array;
  /** IPv4: 4-byte words of options (NOPs ending in EOL). */
  v4OptionWords: number;
  /** IPv6: a hop-by-hop header in front of L4. */
  v6HopByHop: boolean;
  /** UDP over IPv4 sent without a checksum. */
  udpZero: boolean;
  /** TCP: 4-byte words of options. */
  tcpOptionWords: number;
  ttl: number;
  ipId: number;
  seq: number;
}

/** L4 header + payload with its checksum computed from scratch. */
function buildL4(f: Flow): Uint8Array {
  let l4: Uint8Array;
  let csumAt: number;
  if (f.proto === "tcp") {
    const hlen = 20 + 4 * f.tcpOptionWords;
    l4 = new Uint8Array(hlen + f.payload.length);
    setBe16(l4, 0, f.sport);
    setBe16(l4, 2, f.dport);
    l4.set(be32(f.seq), 4);
    l4.set(be32(f.seq ^ 0x5a5a5a5a), 8);
    l4[12] = (hlen / 4) << 4;
    l4[13] = 0x18;
    setBe16(l4, 14, 65535);
    l4.fill(1, 20, hlen);
    l4.set(f.payload, hlen);
    csumAt = 16;
  } else if (f.proto === "udp") {
    l4 = new Uint8Array(8 + f.payload.length);
    setBe16(l4, 0, f.sport);
    setBe16(l4, 2, f.dport);
    setBe16(l4, 4, l4.length);
    l4.set(f.payload, 8);
    csumAt = 6;
  } else {
    l4 = new Uint8Array(8 + f.payload.length);
    l4[0] = f.family === 4 ? (f.echoReply ? 0 : 8) : f.echoReply ? 129 : 128;
    setBe16(l4, 4, f.sport);
    setBe16(l4, 6, f.seq & 0xffff);
    l4.set(f.payload, 8);
    csumAt = 2;
  }
  const num = f.proto === "icmp" ? (f.family === 4 ? 1 : 58) : PROTO_NUM[f.proto];
  const pseudo = f.proto === "icmp" && f.family === 4 ? 0 : pseudoSum(f.family, f.src, f.dst, num, l4.length);
  let c = checksumOf(l4, pseudo);
  if (f.proto === "udp") c = f.udpZero && f.family === 4 ? 0 : c === 0 ? 0xffff : c;
  setBe16(l4, csumAt, c);
  return l4;
}

/** A whole IP packet for the flow; `l4` overrides the upper layer (ICMP errors). */
function buildIp(f: Flow, l4 = buildL4(f), protoNum?: number): Uint8Array {
  const num = protoNum ?? (f.proto === "icmp" ? (f.family === 4 ? 1 : 58) : PROTO_NUM[f.proto]);
  if (f.family === 4) {
    const ihl = 20 + 4 * f.v4OptionWords;
    const h = new Uint8Array(ihl);
    h[0] = 0x40 | (ihl / 4);
    h[1] = 0x10;
    setBe16(h, 2, ihl + l4.length);
    setBe16(h, 4, f.ipId);
    h[6] = 0x40; // DF
    h[8] = f.ttl;
    h[9] = num;
    h.set(f.src, 12);
    h.set(f.dst, 16);
    h.fill(1, 20, ihl);
    if (ihl > 20) h[ihl - 1] = 0; // EOL
    setBe16(h, 10, checksumOf(h));
    return concat(h, l4);
  }
  const ext = f.v6HopByHop ? Uint8Array.of(num, 0, 1, 4, 0, 0, 0, 0) : new Uint8Array(0);
  const h = new Uint8Array(40);
  h[0] = 0x60;
  h[1] = 0x0a;
  h[3] = 0x77;
  setBe16(h, 4, ext.length + l4.length);
  h[6] = f.v6HopByHop ? 0 : num;
  h[7] = f.ttl;
  h.set(f.src, 8);
  h.set(f.dst, 24);
  return concat(h, ext, l4);
}

type Link = "raw" | "eth" | "vlan";
const OLD_MAC = Uint8Array.of(2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2);
const NEW_MAC = Uint8Array.of(2, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 2);
const MACS = { destinationMac: "02:aa:bb:cc:dd:01", sourceMac: "02:aa:bb:cc:dd:02" };

function frame(link: Link, family: 4 | 6, ip: Uint8Array, macs: Uint8Array): Uint8Array {
  if (link === "raw") return ip;
  const type = be16(family === 4 ? 0x0800 : 0x86dd);
  const tag = link === "vlan" ? Uint8Array.of(0x81, 0x00, 0x00, 0x07) : new Uint8Array(0);
  return concat(macs, tag, type, ip);
}

const addrText = (family: 4 | 6, b: Uint8Array): string =>
  family === 4 ? Array.from(b).join(".") : Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16)).join(":");

// ---------------------------------------------------------------- arbitraries

const flowArb = (family: 4 | 6) =>
  fc.record({
    family: fc.constant(family),
    proto: fc.constantFrom<Proto>("tcp", "udp", "icmp"),
    src: fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 }),
    dst: fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 }),
    sport: fc.integer({ min: 0, max: 65535 }),
    dport: fc.integer({ min: 0, max: 65535 }),
    echoReply: fc.boolean(),
    payload: fc.uint8Array({ maxLength: 300 }),
    v4OptionWords: fc.integer({ min: 0, max: 10 }),
    v6HopByHop: fc.boolean(),
    udpZero: fc.boolean(),
    tcpOptionWords: fc.integer({ min: 0, max: 10 }),
    ttl: fc.integer({ min: 1, max: 255 }),
    ipId: fc.integer({ min: 0, max: 65535 }),
    seq: fc.integer({ min: 0, max: 0xffffffff }),
  });
const anyFlow = fc.oneof(flowArb(4), flowArb(6));
const addrArb = (family: 4 | 6) => fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 });

// ---------------------------------------------------------------- properties

test("csumReplace16/32 equal a full recomputation after one word changes", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 256, actionCount: 1 });
  const w = core.wasm as unknown as Record<string, (...a: number[]) => number>;
  // 0x0000 and 0xFFFF are the same one's-complement number; a checksum may take either
  // spelling only when the data sums to zero (an all-zero buffer), so compare values.
  const same = (a: number, b: number) => (a === 0xffff ? 0 : a) === (b === 0xffff ? 0 : b);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 64 }), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (raw, pos, nv) => {
      const buf = raw.length & 1 ? raw.subarray(1) : raw;
      const before = checksumOf(buf);
      const at16 = (pos % (buf.length / 2)) * 2;
      const old16 = (buf[at16] << 8) | buf[at16 + 1];
      const b16 = buf.slice();
      setBe16(b16, at16, nv & 0xffff);
      assert.ok(same(w.testCsumReplace16(before, old16, nv & 0xffff), checksumOf(b16)), "csumReplace16");
      const at32 = (pos % Math.floor(buf.length / 4)) * 4;
      const old32 = ((buf[at32] << 24) | (buf[at32 + 1] << 16) | (buf[at32 + 2] << 8) | buf[at32 + 3]) >>> 0;
      const b32 = buf.slice();
      b32.set(be32(nv), at32);
      assert.ok(same(w.testCsumReplace32(before, old32, nv), checksumOf(b32)), "csumReplace32");
    }),
    { numRuns: 5000 },
  );
});

test("delta checksum update of a 4- or 16-byte field equals a full recomputation", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 256, actionCount: 1 });
  const w = core.wasm as unknown as Record<string, (...a: number[]) => number>;
  const params = w.regionParams();
  const same = (a: number, b: number) => (a === 0xffff ? 0 : a) === (b === 0xffff ? 0 : b);
  fc.assert(
    fc.property(
      fc.constantFrom(4, 16),
      fc.uint8Array({ minLength: 40, maxLength: 120 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.nat(),
      (n, raw, nv, pos) => {
        const buf = raw.length & 1 ? raw.subarray(1) : raw;
        const at = (pos % Math.floor((buf.length - n) / 2)) * 2;
        const before = checksumOf(buf);
        const mem = core.slots.bytes;
        mem.set(buf.subarray(at, at + n), params);
        mem.set(nv.subarray(0, n), params + 32);
        const after = buf.slice();
        after.set(nv.subarray(0, n), at);
        assert.ok(same(w.testCsumReplaceDelta(before, params, params + 32, n), checksumOf(after)));
      },
    ),
    { numRuns: 5000 },
  );
});

test("natDnat / natSnat produce exactly the packet rebuilt with full checksums", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 2048, actionCount: 1 });
  const arb = anyFlow.chain((flow) =>
    fc.record({
      flow: fc.constant(flow),
      dnat: fc.boolean(),
      addr: addrArb(flow.family),
      port: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
      link: fc.constantFrom<Link>("raw", "eth", "vlan"),
      macs: fc.boolean(),
    }),
  );
  fc.assert(
    fc.property(arb, ({ flow, dnat, addr, port, link, macs }) => {
      const input = frame(link, flow.family, buildIp(flow), OLD_MAC);
      const moved: Flow = { ...flow };
      const l4ports = flow.proto !== "icmp" && port !== 0;
      if (dnat) {
        moved.dst = addr;
        if (l4ports) moved.dport = port;
      } else {
        moved.src = addr;
        if (l4ports) moved.sport = port;
      }
      const expected = frame(link, flow.family, buildIp(moved), macs && link !== "raw" ? NEW_MAC : OLD_MAC);
      const action: ForwardAction = {
        kind: dnat ? "nat-dnat" : "nat-snat",
        address: addrText(flow.family, addr),
        port,
        ...(macs ? MACS : {}),
      };
      const r = core.rewrite(input, link === "raw" ? LinkType.RawIp : LinkType.Ethernet, action);
      assert.equal(r.verdict, Verdict.Forward, `reason ${r.reason}`);
      assert.deepEqual(Buffer.from(r.packet).toString("hex"), Buffer.from(expected).toString("hex"));
    }),
    { numRuns: 4000 },
  );
});

test("ICMP-error NAT produces exactly the error rebuilt around the rewritten quote", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 2048, actionCount: 1 });
  const arb = anyFlow
    .filter((f) => f.proto !== "icmp")
    .chain((inner) =>
      fc.record({
        inner: fc.constant(inner),
        inbound: fc.boolean(),
        addr: addrArb(inner.family),
        port: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
        peer: addrArb(inner.family),
        type: inner.family === 4 ? fc.constantFrom(3, 4, 11, 12) : fc.constantFrom(1, 2, 3, 4),
        code: fc.integer({ min: 0, max: 15 }),
        info: fc.integer({ min: 0, max: 0xffffffff }),
        cut: fc.nat(),
        full: fc.boolean(),
        outerOptions: fc.integer({ min: 0, max: 3 }),
      }),
    );
  fc.assert(
    fc.property(arb, ({ inner, inbound, addr, port, peer, type, code, info, cut, full, outerOptions }) => {
      const quoted = buildIp(inner);
      const l4At = quoted.length - buildL4(inner).length;
      // Quote length: the whole datagram, or anything from IP header + 8 bytes of L4 up,
      // never splitting the TCP checksum field (a half field cannot be patched).
      let qlen = full ? quoted.length : l4At + 8 + (cut % (quoted.length - l4At - 7));
      if (inner.proto === "tcp" && qlen === l4At + 17) qlen++;
      const moved: Flow = { ...inner };
      if (inbound) {
        moved.src = addr;
        if (port) moved.sport = port;
      } else {
        moved.dst = addr;
        if (port) moved.dport = port;
      }
      const errorOf = (q: Uint8Array, outerSrc: Uint8Array, outerDst: Uint8Array): Uint8Array => {
        const icmp = concat(Uint8Array.of(type, code, 0, 0), be32(info), q.subarray(0, qlen));
        const outer: Flow = { ...inner, src: outerSrc, dst: outerDst, v4OptionWords: outerOptions, v6HopByHop: false };
        const num = inner.family === 4 ? 1 : 58;
        const pseudo = inner.family === 4 ? 0 : pseudoSum(6, outerSrc, outerDst, 58, icmp.length);
        setBe16(icmp, 2, checksumOf(icmp, pseudo));
        return buildIp(outer, icmp, num);
      };
      // in: peer -> VIP about VIP -> client; out: RS side -> client about client -> RIP.
      const input = inbound ? errorOf(quoted, peer, inner.src) : errorOf(quoted, inner.dst, peer);
      const expected = inbound ? errorOf(buildIp(moved), peer, addr) : errorOf(buildIp(moved), addr, peer);
      const action: ForwardAction = { kind: inbound ? "icmp-nat-in" : "icmp-nat-out", address: addrText(inner.family, addr), port };
      const r = core.rewrite(input, LinkType.RawIp, action);
      assert.equal(r.verdict, Verdict.Forward, `reason ${r.reason}`);
      assert.deepEqual(Buffer.from(r.packet).toString("hex"), Buffer.from(expected).toString("hex"));
    }),
    { numRuns: 3000 },
  );
});

test("a UDP checksum that computes to 0 is written 0xFFFF, and a stored 0xFFFF updates correctly", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 2048, actionCount: 1 });
  for (const family of [4, 6] as const) {
    const n = family === 4 ? 4 : 16;
    const flow: Flow = {
      family,
      proto: "udp",
      src: new Uint8Array(n).fill(10),
      dst: new Uint8Array(n).fill(20),
      sport: 1234,
      dport: 53,
      echoReply: false,
      payload: new Uint8Array(10).fill(7),
      v4OptionWords: 0,
      v6HopByHop: false,
      udpZero: false,
      tcpOptionWords: 0,
      ttl: 64,
      ipId: 1,
      seq: 0,
    };
    const rip = new Uint8Array(n).fill(30);
    const moved: Flow = { ...flow, dst: rip, dport: 8053 };
    // Choose the last payload word so the rewritten datagram sums to 0xFFFF: checksum 0.
    const payload = flow.payload.slice();
    payload[8] = 0;
    payload[9] = 0;
    const l4 = buildL4({ ...moved, payload, udpZero: false });
    setBe16(l4, 6, 0);
    const sum = onesSum(l4, pseudoSum(family, moved.src, moved.dst, 17, l4.length));
    setBe16(payload, 8, 0xffff - sum);
    const after = buildL4({ ...moved, payload });
    assert.equal((after[6] << 8) | after[7], 0xffff, "the reference itself hit the 0 -> 0xFFFF case");
    const input = buildIp({ ...flow, payload });
    const r = core.rewrite(input, LinkType.RawIp, { kind: "nat-dnat", address: addrText(family, rip), port: 8053 });
    assert.deepEqual(Buffer.from(r.packet).toString("hex"), Buffer.from(buildIp({ ...moved, payload })).toString("hex"), `IPv${family}: 0 -> 0xFFFF`);
    // And back: the packet now stores 0xFFFF; NAT it back to the original address and port.
    const back = core.rewrite(r.packet, LinkType.RawIp, { kind: "nat-dnat", address: addrText(family, flow.dst), port: 53 });
    assert.deepEqual(Buffer.from(back.packet).toString("hex"), Buffer.from(input).toString("hex"), `IPv${family}: from a stored 0xFFFF`);
  }
});

test("mangled quotes and packets never trap and never touch bytes outside the packet", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 2048, actionCount: 1 });
  const kinds = ["nat-dnat", "nat-snat", "dr", "icmp-nat-in", "icmp-nat-out"] as const;
  const arb = anyFlow.chain((inner) =>
    fc.record({
      inner: fc.constant(inner),
      kind: fc.constantFrom(...kinds),
      type: inner.family === 4 ? fc.constantFrom(3, 4, 11, 12) : fc.constantFrom(1, 2, 3, 4),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      keep: fc.nat(),
      asError: fc.boolean(),
    }),
  );
  fc.assert(
    fc.property(arb, ({ inner, kind, type, flips, keep, asError }) => {
      let body = buildIp(inner);
      if (asError) {
        // A quote with random bytes changed and cut anywhere, inside an error whose own
        // checksums are right, so the quote parser is what has to cope.
        const q = body.slice(0, keep % (body.length + 1));
        for (const [at, v] of flips) if (q.length) q[at % q.length] = v;
        const icmp = concat(Uint8Array.of(type, 0, 0, 0), be32(0), q);
        const pseudo = inner.family === 4 ? 0 : pseudoSum(6, inner.dst, inner.src, 58, icmp.length);
        setBe16(icmp, 2, checksumOf(icmp, pseudo));
        body = buildIp({ ...inner, src: inner.dst, dst: inner.src, v4OptionWords: 0, v6HopByHop: false }, icmp, inner.family === 4 ? 1 : 58);
      } else {
        body = body.slice();
        // Leave the IPv4 header alone (the parser drops a bad header checksum first).
        const from = inner.family === 4 ? 20 + 4 * inner.v4OptionWords : 0;
        for (const [at, v] of flips) if (body.length > from) body[from + (at % (body.length - from))] = v;
      }
      const action: ForwardAction = kind === "dr" ? { kind, ...MACS } : { kind, address: addrText(inner.family, inner.dst), port: 99 };
      const mem = core.slots.bytes;
      const base = core.slots.slotAddress(0);
      mem.fill(0xa5, base, base + core.slots.stride);
      core.setAction(0, action);
      core.slots.write(0, body, LinkType.RawIp);
      core.applyBatch(0, 1);
      const { verdict } = core.slots.result(0);
      assert.ok(verdict === Verdict.Forward || verdict === Verdict.Drop || verdict === Verdict.Pass, `verdict ${verdict}`);
      const headroom = 128;
      const before = mem.subarray(base, base + headroom);
      const after = mem.subarray(base + headroom + body.length, base + core.slots.stride);
      assert.ok(
        before.every((b) => b === 0xa5),
        "headroom untouched",
      );
      assert.ok(
        after.every((b) => b === 0xa5),
        "bytes past the packet untouched",
      );
    }),
    { numRuns: 4000 },
  );
});
