// No byte string traps the data plane or makes it write outside the packet's slot.
//
// Every input (half purely random bytes, half valid frames mutated) goes through the batch
// path with every action kind, as a raw IP packet and as an Ethernet frame, and through
// parse. After each application the descriptor must hold a verdict in 1..4, a known reason
// and an offset/length inside the slot; after each input every byte of wasm memory outside
// the slot under test (its descriptor and the parse-info block excepted) must be as it
// was. Neighbouring slots are filled with sentinel bytes so that a stray write shows.
//
// LVS_FUZZ_RUNS sets the number of inputs (default 100000), LVS_FUZZ_SEED replays a run.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, DROP_REASON_NAMES, Desc, DESC_SIZE, HEADROOM, LinkType, PacketCore, Verdict, WasmAbortError, type ForwardAction } from "../src/index.js";
import { concat } from "./support/bytes.js";

const RUNS = Number(process.env.LVS_FUZZ_RUNS ?? 100_000);
const SEED = process.env.LVS_FUZZ_SEED === undefined ? undefined : Number(process.env.LVS_FUZZ_SEED);
const MAX_LEN = 2000;

// ---------------------------------------------------------------------------------------
// A small corpus of valid frames, built here with their checksums (a frame that does not
// parse cleanly is a bug in this builder or in the parser: the corpus test below says so).

function sum16(b: Uint8Array, start = 0, end = b.length, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if ((end - start) & 1) s += b[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
const csum = (b: Uint8Array, start = 0, end = b.length, init = 0) => ~sum16(b, start, end, init) & 0xffff;
const put16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
};
const bytes = (...v: number[]) => Uint8Array.from(v);
const fill = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const v4 = (s: string) => Uint8Array.from(s.split(".").map(Number));
function v6(s: string): Uint8Array {
  const [h, t = ""] = s.split("::");
  const words = (x: string) => (x ? x.split(":").map((w) => parseInt(w, 16)) : []);
  const hw = words(h);
  const tw = words(t);
  const all = s.includes("::") ? [...hw, ...Array(8 - hw.length - tw.length).fill(0), ...tw] : hw;
  const out = new Uint8Array(16);
  all.forEach((w, i) => put16(out, i * 2, w));
  return out;
}

/** An L4 segment whose checksum field sits at `at` (or -1: none to fill). */
interface L4 {
  proto: number;
  seg: Uint8Array;
  at: number;
  pseudo: boolean;
}
const tcp = (sport: number, dport: number, payload: Uint8Array, flags = 0x18, options = new Uint8Array(0)): L4 => {
  const h = new Uint8Array(20 + options.length);
  put16(h, 0, sport);
  put16(h, 2, dport);
  h.set([0, 0, 0x10, 0x01, 0, 0, 0, 0], 4);
  h[12] = ((20 + options.length) / 4) << 4;
  h[13] = flags;
  put16(h, 14, 65535);
  h.set(options, 20);
  return { proto: 6, seg: concat(h, payload), at: 16, pseudo: true };
};
const udp = (sport: number, dport: number, payload: Uint8Array): L4 => {
  const h = new Uint8Array(8);
  put16(h, 0, sport);
  put16(h, 2, dport);
  put16(h, 4, 8 + payload.length);
  return { proto: 17, seg: concat(h, payload), at: 6, pseudo: true };
};
const icmp4 = (type: number, code: number, rest: Uint8Array): L4 => ({ proto: 1, seg: concat(bytes(type, code, 0, 0), rest), at: 2, pseudo: false });
const icmp6 = (type: number, code: number, rest: Uint8Array): L4 => ({ proto: 58, seg: concat(bytes(type, code, 0, 0), rest), at: 2, pseudo: true });
const opaque = (proto: number, seg: Uint8Array): L4 => ({ proto, seg, at: -1, pseudo: false });

interface Ip4Opts {
  ttl?: number;
  options?: Uint8Array;
  flags?: number; // the 16-bit flags + fragment offset field
}
function ipv4(src: string, dst: string, l4: L4, o: Ip4Opts = {}): Uint8Array {
  const opt = o.options ?? new Uint8Array(0);
  const ihl = 20 + opt.length;
  const p = new Uint8Array(ihl + l4.seg.length);
  p.set([0x40 | (ihl / 4), 0], 0);
  put16(p, 2, p.length);
  put16(p, 4, 0x1234);
  put16(p, 6, o.flags ?? 0x4000);
  p[8] = o.ttl ?? 64;
  p[9] = l4.proto;
  p.set(v4(src), 12);
  p.set(v4(dst), 16);
  p.set(opt, 20);
  p.set(l4.seg, ihl);
  const later = ((o.flags ?? 0) & 0x1fff) !== 0;
  if (l4.at >= 0 && !later) {
    const init = l4.pseudo ? sum16(p, 12, 20, l4.proto + l4.seg.length) : 0;
    let c = csum(p, ihl, p.length, init);
    if (c === 0 && l4.proto === 17) c = 0xffff;
    put16(p, ihl + l4.at, c);
  }
  put16(p, 10, csum(p, 0, ihl));
  return p;
}

/** IPv6 with extension headers given as [type, body-without-next-header-byte]. */
function ipv6(src: string, dst: string, l4: L4, exts: Array<[number, Uint8Array]> = [], hop = 64): Uint8Array {
  const chain: Uint8Array[] = [];
  for (let i = 0; i < exts.length; i++) {
    const next = i + 1 < exts.length ? exts[i + 1][0] : l4.proto;
    chain.push(concat(bytes(next), exts[i][1]));
  }
  const ext = concat(...chain);
  const p = new Uint8Array(40 + ext.length + l4.seg.length);
  p[0] = 0x60;
  put16(p, 4, ext.length + l4.seg.length);
  p[6] = exts.length ? exts[0][0] : l4.proto;
  p[7] = hop;
  p.set(v6(src), 8);
  p.set(v6(dst), 24);
  p.set(ext, 40);
  const l4off = 40 + ext.length;
  p.set(l4.seg, l4off);
  const later = exts.some(([t, b]) => t === 44 && ((b[1] << 8) | b[2]) & 0xfff8);
  if (l4.at >= 0 && !later) {
    const len = l4.seg.length;
    let c = csum(p, l4off, p.length, sum16(p, 8, 40, l4.proto + (len >>> 16) + (len & 0xffff)));
    if (c === 0 && l4.proto === 17) c = 0xffff;
    put16(p, l4off + l4.at, c);
  }
  return p;
}
const hbh = (n8: number) => concat(bytes(n8 - 1), bytes(1, n8 * 8 - 4), new Uint8Array(n8 * 8 - 4)); // PadN
const frag6 = (offset8: number, more: boolean, id = 0x51) =>
  concat(bytes(0), bytes(((offset8 << 3) >> 8) & 0xff, ((offset8 << 3) & 0xf8) | (more ? 1 : 0)), bytes(0, 0, 0, id));
const routing0 = () => concat(bytes(2, 0, 0), new Uint8Array(4), v6("2001:db8::99")); // type 0, segments left 0

interface Frame {
  name: string;
  bytes: Uint8Array;
  link: LinkType;
  /** Offsets of IPv4 headers (outer and inner) whose checksum a mutation may refresh. */
  ipv4At: number[];
  /** [offset, size] of length-like fields a mutation may tamper with. */
  lengthFields: Array<[number, 1 | 2]>;
}

interface L3 {
  name: string;
  pkt: Uint8Array;
  /** Offsets (within pkt) of IPv4 headers, and of extra length fields. */
  ipv4At: number[];
  lengths: Array<[number, 1 | 2]>;
}

function l3(name: string, pkt: Uint8Array, innerAt: number[] = [], extraLengths: Array<[number, 1 | 2]> = []): L3 {
  const ipv4At = (pkt[0] >> 4 === 4 ? [0] : []).concat(innerAt.filter((o) => pkt[o] >> 4 === 4));
  const lengths: Array<[number, 1 | 2]> = [...extraLengths];
  for (const at of [0, ...innerAt]) {
    if (pkt[at] >> 4 === 4) {
      lengths.push([at, 1], [at + 2, 2]); // IHL, total length
      const ihl = (pkt[at] & 15) * 4;
      if (pkt[at + 9] === 6) lengths.push([at + ihl + 12, 1]); // TCP data offset
      if (pkt[at + 9] === 17) lengths.push([at + ihl + 4, 2]); // UDP length
    } else {
      lengths.push([at + 4, 2], [at + 6, 1], [at + 40 + 1, 1]); // payload length, next header, 1st ext length
    }
  }
  return { name, pkt, ipv4At, lengths: lengths.filter(([o, s]) => o + s <= pkt.length) };
}

function buildCorpus(): Frame[] {
  const A = "10.1.0.1",
    V = "10.2.0.2",
    R = "10.3.0.3",
    D = "192.0.2.10";
  const A6 = "2001:db8:1::1",
    V6 = "2001:db8:2::2",
    R6 = "2001:db8:3::3",
    D6 = "2001:db8:ff::10";
  const mss = bytes(2, 4, 0x05, 0xb4);
  const rr = bytes(7, 11, 4, 1, 2, 3, 4, 0, 0, 0, 0, 1); // record route + NOP pad
  const http = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const rsReplyTcp = ipv4(R, A, tcp(80, 40000, fill(8)));
  const rsReplyUdp6 = ipv6(R6, A6, udp(53, 50000, fill(12)));
  const clientTcp = ipv4(A, V, tcp(40000, 80, fill(16)));
  const quote4 = (p: Uint8Array) => p.subarray(0, Math.min(p.length, (p[0] & 15) * 4 + 8));
  const list: L3[] = [
    l3("v4 tcp syn+mss", ipv4(A, V, tcp(40000, 80, new Uint8Array(0), 0x02, mss))),
    l3("v4 tcp http", ipv4(A, V, tcp(40001, 80, http))),
    l3("v4 udp", ipv4(A, V, udp(53000, 53, fill(29)), { flags: 0 })),
    l3(
      "v4 udp zero csum",
      (() => {
        const p = ipv4(A, V, udp(5, 6, fill(3)));
        p[26] = p[27] = 0;
        return p;
      })(),
    ),
    l3("v4 options tcp", ipv4(A, V, tcp(5, 80, fill(10)), { options: rr })),
    l3("v4 icmp echo", ipv4(A, V, icmp4(8, 0, concat(bytes(0x10, 0x92, 0, 1), fill(32))))),
    l3("v4 icmp frag-needed about rs reply", ipv4(D, R, icmp4(3, 4, concat(bytes(0, 0, 0x05, 0x78), quote4(rsReplyTcp))))),
    l3("v4 icmp port-unreach about client pkt", ipv4(R, A, icmp4(3, 3, concat(new Uint8Array(4), clientTcp)))),
    l3("v4 icmp time-exceeded quoting options", ipv4(D, V, icmp4(11, 0, concat(new Uint8Array(4), ipv4(V, A, tcp(80, 5, fill(8)), { options: rr }))))),
    l3("v4 tcp 1500 DF", ipv4(A, V, tcp(40002, 80, fill(1460)))),
    l3("v4 udp first fragment", ipv4(A, V, udp(7, 8, fill(64)), { flags: 0x2000 })),
    l3("v4 later fragment", ipv4(A, V, opaque(17, fill(48)), { flags: 0x0010 })),
    l3("v4 ttl 1", ipv4(A, V, tcp(9, 80, fill(4)), { ttl: 1 })),
    l3("v6 tcp", ipv6(A6, V6, tcp(40000, 443, fill(20)))),
    l3(
      "v6 udp ext chain",
      ipv6(A6, V6, udp(9, 10, fill(3)), [
        [0, hbh(1)],
        [60, hbh(2)],
        [43, routing0()],
      ]),
    ),
    l3("v6 icmp echo", ipv6(A6, V6, icmp6(128, 0, concat(bytes(3, 9, 0, 2), fill(16))))),
    l3("v6 packet-too-big about rs reply", ipv6(D6, R6, icmp6(2, 0, concat(bytes(0, 0, 5, 0), rsReplyUdp6)))),
    l3("v6 port-unreach", ipv6(R6, A6, icmp6(1, 4, concat(new Uint8Array(4), ipv6(A6, V6, tcp(4, 443, fill(4))))))),
    l3("v6 first fragment", ipv6(A6, V6, udp(9, 10, fill(40)), [[44, frag6(0, true)]])),
    l3("v6 later fragment", ipv6(A6, V6, opaque(17, fill(40)), [[44, frag6(100, false)]])),
    l3("v6 udp 1400", ipv6(A6, V6, udp(9999, 53, fill(1352)))),
    l3("v6 hop limit 1", ipv6(A6, V6, tcp(1, 2, fill(1)), [], 1)),
  ];
  // Encapsulated frames, as a real server behind a tunnel receives them.
  const inner4 = ipv4(A, V, tcp(40000, 80, fill(24)));
  const inner6 = ipv6(A6, V6, udp(5353, 53, fill(24)));
  const gre = (flags: number, proto: number, inner: Uint8Array) => {
    const h = new Uint8Array(flags & 0x8000 ? 8 : 4);
    put16(h, 0, flags);
    put16(h, 2, proto);
    const seg = concat(h, inner);
    if (flags & 0x8000) put16(seg, 4, csum(seg));
    return seg;
  };
  const gue = (proto: number, inner: Uint8Array, remcsum = false) => {
    const h = remcsum ? bytes(2, proto, 0x00, 0x01, 0x80, 0, 0, 0, 0, 2, 0, 6) : bytes(0, proto, 0, 0);
    return concat(h, inner);
  };
  list.push(
    l3("ipip", ipv4(D, R, opaque(4, inner4)), [20]),
    l3("ip6ip6", ipv6(D6, R6, opaque(41, inner6)), [40]),
    l3("6in4", ipv4(D, R, opaque(41, inner6)), [20]),
    l3("4in6", ipv6(D6, R6, opaque(4, inner4)), [40]),
    l3("gre csum v4/v4", ipv4(D, R, opaque(47, gre(0x8000, 0x0800, inner4))), [28]),
    l3("gre v4/v6", ipv4(D, R, opaque(47, gre(0, 0x86dd, inner6))), [24]),
    l3("gre v6/v4", ipv6(D6, R6, opaque(47, gre(0, 0x0800, inner4))), [44]),
    l3("gue v4/v4", ipv4(D, R, udp(40123, 6080, gue(4, inner4))), [32], [[20 + 8, 1]]),
    l3("gue remcsum v4/v4", ipv4(D, R, udp(40123, 6080, gue(4, inner4, true))), [40], [[20 + 8, 1]]),
    l3("gue v6/v6", ipv6(D6, R6, udp(40123, 6080, gue(41, inner6))), [52], [[48, 1]]),
    l3("gue variant 1 v4", ipv4(D, R, udp(40123, 6080, inner4)), [28]),
  );
  // Each packet raw, behind Ethernet, behind an 802.1Q tag, behind 802.1ad + 802.1Q.
  const frames: Frame[] = [];
  const mac = bytes(2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2);
  for (const { name, pkt, ipv4At, lengths } of list) {
    const et = pkt[0] >> 4 === 4 ? bytes(0x08, 0x00) : bytes(0x86, 0xdd);
    const heads: Array<[string, Uint8Array, LinkType]> = [
      ["raw", new Uint8Array(0), LinkType.RawIp],
      ["eth", concat(mac, et), LinkType.Ethernet],
      ["vlan", concat(mac, bytes(0x81, 0, 0, 7), et), LinkType.Ethernet],
      ["qinq", concat(mac, bytes(0x88, 0xa8, 0, 3, 0x81, 0, 0, 7), et), LinkType.Ethernet],
    ];
    for (const [hn, head, link] of heads) {
      const n = head.length;
      frames.push({
        name: `${hn} ${name}`,
        bytes: concat(head, pkt),
        link,
        ipv4At: ipv4At.map((o) => o + n),
        lengthFields: [...lengths.map(([o, s]): [number, 1 | 2] => [o + n, s]), ...(n ? [[n - 2, 2] as [number, 2]] : [])],
      });
    }
  }
  return frames;
}

// ---------------------------------------------------------------------------------------
// Inputs: purely random bytes, or a corpus frame with a few mutations.

type Mutation =
  | { t: "flip"; pos: number; bit: number }
  | { t: "set"; pos: number; val: number }
  | { t: "truncate"; keep: number }
  | { t: "extend"; tail: Uint8Array }
  | { t: "length"; field: number; rel: boolean; val: number };

/** Where the packet sits in its slot: behind the headroom (as hosts put it), at the slot's
 * very start or with little room in front (nothing may be prepended below the slot), or
 * flush with the slot's end (nothing may grow past it). */
type Placement = "headroom" | "start" | "tight" | "end";

type Input =
  | { kind: "random"; bytes: Uint8Array; placement: Placement }
  | { kind: "mutated"; base: number; mutations: Mutation[]; fixIpChecksum: boolean; placement: Placement };

/** Byte positions, biased toward the headers at the front. */
const positionArb = fc.oneof(fc.nat(96), fc.nat(MAX_LEN));

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ t: fc.constant("flip" as const), pos: positionArb, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ t: fc.constant("set" as const), pos: positionArb, val: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ t: fc.constant("truncate" as const), keep: fc.nat(MAX_LEN) }),
  fc.record({ t: fc.constant("extend" as const), tail: fc.uint8Array({ maxLength: 64, size: "max" }) }),
  fc.record({
    t: fc.constant("length" as const),
    field: fc.nat(15),
    rel: fc.boolean(),
    val: fc.oneof(fc.integer({ min: -64, max: 64 }), fc.constantFrom(0, 1, 4, 7, 8, 15, 19, 20, 39, 40, 60, 255, 0xffff), fc.nat(0xffff)),
  }),
);

const placementArb: fc.Arbitrary<Placement> = fc.oneof(
  { weight: 5, arbitrary: fc.constant("headroom" as const) },
  { weight: 1, arbitrary: fc.constantFrom("start" as const, "tight" as const, "end" as const) },
);

function inputArb(corpusSize: number): fc.Arbitrary<Input> {
  return fc.oneof(
    fc.record({
      kind: fc.constant("random" as const),
      bytes: fc.uint8Array({ minLength: 0, maxLength: MAX_LEN, size: "max" }),
      placement: placementArb,
    }),
    fc.record({
      kind: fc.constant("mutated" as const),
      base: fc.nat(corpusSize - 1),
      mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      fixIpChecksum: fc.boolean(),
      placement: placementArb,
    }),
  );
}

/** The packet's offset within its slot for a placement. */
function placeAt(placement: Placement, length: number, stride: number): number {
  if (placement === "start") return 0;
  if (placement === "tight") return 8;
  if (placement === "end") return stride - length;
  return HEADROOM;
}

function materialise(input: Input, corpus: readonly Frame[]): { bytes: Uint8Array; link: LinkType | undefined } {
  if (input.kind === "random") return { bytes: input.bytes, link: undefined };
  const frame = corpus[input.base];
  let b = frame.bytes.slice();
  for (const m of input.mutations) {
    switch (m.t) {
      case "flip":
        if (b.length) b[m.pos % b.length] ^= 1 << m.bit;
        break;
      case "set":
        if (b.length) b[m.pos % b.length] = m.val;
        break;
      case "truncate":
        b = b.slice(0, m.keep % (b.length + 1));
        break;
      case "extend":
        b = concat(b, m.tail);
        break;
      case "length": {
        const [at, size] = frame.lengthFields[m.field % frame.lengthFields.length];
        if (at + size > b.length) break;
        const v = m.rel ? b.length - at + m.val : m.val;
        if (size === 2) put16(b, at, v & 0xffff);
        else if (frame.ipv4At.includes(at) && b[at] >> 4 === 4)
          b[at] = 0x40 | (v & 15); // IHL nibble
        else b[at] = v & 0xff;
        break;
      }
    }
  }
  if (input.fixIpChecksum) {
    for (const at of frame.ipv4At) {
      if (at + 20 > b.length || b[at] >> 4 !== 4) continue;
      const ihl = (b[at] & 15) * 4;
      if (ihl < 20 || at + ihl > b.length) continue;
      b[at + 10] = b[at + 11] = 0;
      put16(b, at + 10, csum(b, at, at + ihl));
    }
  }
  return { bytes: b.length > MAX_LEN ? b.subarray(0, MAX_LEN) : b, link: frame.link };
}

// ---------------------------------------------------------------------------------------
// The harness: one small PacketCore, slot 1 under test between sentinel slots 0, 2 and 3.

const MAC = { destinationMac: "02:aa:00:00:00:01", sourceMac: "02:bb:00:00:00:02" };
const ACTIONS: ReadonlyArray<ForwardAction | null> = [
  { kind: "nat-dnat", address: "10.3.0.3", port: 8080, ...MAC },
  { kind: "nat-dnat", address: "2001:db8:3::3" },
  { kind: "nat-snat", address: "10.2.0.2", port: 80 },
  { kind: "nat-snat", address: "2001:db8:2::2", port: 443, ...MAC },
  { kind: "dr", ...MAC },
  { kind: "tunnel", type: "ipip", remote: "10.3.0.3", local: "192.0.2.10" },
  { kind: "tunnel", type: "ipip", remote: "2001:db8:3::3", local: "2001:db8:ff::10", mtu: 1280, ...MAC },
  { kind: "tunnel", type: "gue", remote: "10.3.0.3", local: "192.0.2.10", port: 6080, checksum: true, remoteChecksum: true, mtu: 576 },
  { kind: "tunnel", type: "gue", remote: "2001:db8:3::3", local: "2001:db8:ff::10", port: 6080 },
  { kind: "tunnel", type: "gre", remote: "10.3.0.3", local: "192.0.2.10", checksum: true },
  { kind: "tunnel", type: "gre", remote: "2001:db8:3::3", local: "2001:db8:ff::10", checksum: true, mtu: 1300 },
  { kind: "tunnel", type: "ipip", remote: "10.3.0.3", local: "192.0.2.10", mtu: 68 },
  { kind: "tunnel", type: "gue", remote: "10.3.0.3", local: "192.0.2.10", port: 6080, mtu: 1500, ...MAC },
  { kind: "tunnel", type: "gre", remote: "10.3.0.3", local: "192.0.2.10" },
  { kind: "decap" },
  { kind: "decap", ...MAC },
  { kind: "icmp-nat-in", address: "10.2.0.2", port: 80 },
  { kind: "icmp-nat-in", address: "2001:db8:2::2" },
  { kind: "icmp-nat-out", address: "10.3.0.3", port: 8080, ...MAC },
  { kind: "icmp-nat-out", address: "2001:db8:3::3", port: 0 },
  { kind: "port-unreachable" },
  { kind: "port-unreachable", ...MAC },
  null, // an all-zero record: kind none
];
const ACTION_COUNT = 32; // more than ACTIONS.length: index ACTION_COUNT itself is out of range
/** Action indexes applied to each input (the last one is past the table). */
const APPLY = [...ACTIONS.keys(), ACTION_COUNT];
const describe = (a: number) => (a < ACTIONS.length ? (JSON.stringify(ACTIONS[a]) ?? "zero record") : `index ${a} (past the table)`);
const LINKS = [LinkType.RawIp, LinkType.Ethernet] as const;
const T = 1; // the slot under test
const REASON_COUNT = DROP_REASON_NAMES.length;

class Harness {
  readonly core = new PacketCore({ slotCount: 4, slotCapacity: 4096, actionCount: ACTION_COUNT });
  readonly mem: Buffer;
  readonly u32: Uint32Array;
  readonly snapshot: Buffer;
  /** [start, end) ranges of memory that must never change. */
  readonly guarded: Array<[number, number]>;
  readonly descWord: number;
  readonly stride: number;
  readonly slotBase: number;
  dirty = false;
  readonly verdicts = new Map<string, number>();
  /** Per action index: applications that came back forward or reply (the primitive did its work). */
  readonly delivered = new Array<number>(ACTION_COUNT + 1).fill(0);

  constructor() {
    const { core } = this;
    ACTIONS.forEach((a, i) => a && core.setAction(i, a));
    const buffer = core.wasm.memory.buffer;
    this.mem = Buffer.from(buffer);
    this.u32 = new Uint32Array(buffer);
    const s = core.slots;
    this.stride = s.stride;
    this.slotBase = s.slotAddress(T);
    // Sentinels in the other slots and their descriptors.
    for (const slot of [0, 2, 3]) {
      const at = s.slotAddress(slot);
      for (let i = 0; i < s.stride; i++) this.mem[at + i] = (0xa5 + i * 13 + slot) & 0xff;
      for (let i = 0; i < DESC_SIZE; i++) this.mem[s.descBase + slot * DESC_SIZE + i] = (0x5a + i * 7 + slot) & 0xff;
    }
    this.snapshot = Buffer.from(this.mem); // a copy
    const info = core.wasm.regionInfo();
    const excluded: Array<[number, number]> = [
      [info, info + 64],
      [s.descBase + T * DESC_SIZE, s.descBase + (T + 1) * DESC_SIZE],
      [s.slotAddress(T), s.slotAddress(T) + s.stride],
    ].sort((x, y) => x[0] - y[0]) as Array<[number, number]>;
    this.guarded = [];
    let from = 0;
    for (const [a, b] of excluded) {
      if (a > from) this.guarded.push([from, a]);
      from = Math.max(from, b);
    }
    this.guarded.push([from, this.mem.length]);
    this.descWord = (s.descBase + T * DESC_SIZE) >>> 2;
  }

  /** First guarded byte that differs from the snapshot, or -1. */
  firstChange(): number {
    if (this.core.wasm.memory.buffer.byteLength !== this.mem.length) return this.mem.length; // grew
    for (const [a, b] of this.guarded) {
      if (Buffer.compare(this.mem.subarray(a, b), this.snapshot.subarray(a, b)) !== 0) {
        for (let i = a; i < b; i++) if (this.mem[i] !== this.snapshot[i]) return i;
      }
    }
    return -1;
  }

  restore(): void {
    this.snapshot.copy(this.mem);
  }

  /** One packet through one action; returns a complaint or null. Traps propagate. */
  /** Copies a packet to `offset` in the slot under test and fills in its descriptor. */
  place(packet: Uint8Array, link: LinkType, offset: number, action: number): void {
    const { u32 } = this;
    this.mem.set(packet, this.slotBase + offset);
    const d = this.descWord;
    u32[d + Desc.Offset / 4] = offset;
    u32[d + Desc.Length / 4] = packet.length;
    u32[d + Desc.Link / 4] = link;
    u32[d + Desc.Mark / 4] = 0;
    u32[d + Desc.Verdict / 4] = 0;
    u32[d + Desc.Reason / 4] = 0;
    u32[d + Desc.Action / 4] = action;
    u32[d + Desc.Aux / 4] = 0;
  }

  /** One packet through one action; returns a complaint or null. */
  apply(packet: Uint8Array, link: LinkType, action: number, placed = HEADROOM): string | null {
    const { core, u32 } = this;
    this.place(packet, link, placed, action);
    const d = this.descWord;
    let n: number;
    try {
      n = core.applyBatch(T, 1);
    } catch (e) {
      const kind = e instanceof WasmAbortError ? "abort" : ((e as Error)?.constructor?.name ?? "exception");
      return `${kind} (${(e as Error).message})`;
    }
    if (n !== 1) return `applyBatch returned ${n}, not 1`;
    const verdict = u32[d + Desc.Verdict / 4];
    const reason = u32[d + Desc.Reason / 4];
    const off = u32[d + Desc.Offset / 4];
    const len = u32[d + Desc.Length / 4];
    const key = `${verdict}/${reason}`;
    this.verdicts.set(key, (this.verdicts.get(key) ?? 0) + 1);
    if (verdict === Verdict.Forward || verdict === Verdict.Reply) this.delivered[action]++;
    if (verdict < Verdict.Forward || verdict > Verdict.Pass) return `verdict ${verdict} not in 1..4`;
    if (reason >= REASON_COUNT) return `reason ${reason} is not a known reason code`;
    if (off > this.stride || len > this.stride - off) return `descriptor offset ${off} length ${len} leaves the ${this.stride}-byte slot`;
    if (verdict === Verdict.Pass) {
      const now = this.mem.subarray(this.slotBase + off, this.slotBase + off + len);
      if (off !== placed || Buffer.compare(now, packet) !== 0) return "verdict pass but the packet changed";
    }
    return null;
  }

  lastParseStatus = -1;

  parse(packet: Uint8Array, link: LinkType, placed = HEADROOM): string | null {
    this.place(packet, link, placed, 0);
    let p: ReturnType<typeof this.core.parse>;
    try {
      p = this.core.parse(T);
    } catch (e) {
      return `parse threw ${(e as Error).message}`;
    }
    this.lastParseStatus = p.status;
    if (p.status >= REASON_COUNT) return `parse status ${p.status} is not a reason code`;
    if (p.status === 0) {
      const alen = p.family === 4 ? 4 : 16;
      const end = p.l3Offset + p.ipLength;
      if (p.family !== 4 && p.family !== 6) return `parse family ${p.family}`;
      if (end > packet.length) return `parse: IP packet ends at ${end}, past the ${packet.length} bytes`;
      if (p.l4Offset < p.l3Offset + (p.family === 4 ? 20 : 40) || p.l4Offset + p.l4Length !== end) {
        return `parse: l4 ${p.l4Offset}+${p.l4Length} does not end the IP packet at ${end}`;
      }
      if (p.sourceAddressOffset + alen > packet.length || p.destinationAddressOffset + alen > packet.length) {
        return "parse: address offsets past the packet";
      }
    }
    return null;
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("the corpus frames are valid packets", () => {
  const corpus = buildCorpus();
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096, actionCount: 1 });
  for (const f of corpus) {
    const p = core.parseBytes(f.bytes, f.link);
    assert.equal(DROP_REASON_NAMES[p.status], "none", `${f.name}: ${hex(f.bytes)}`);
  }
  assert.ok(corpus.length >= 100);
});

test(`no byte string traps or writes outside its slot (${RUNS} inputs x ${APPLY.length} actions x 2 links + parse)`, () => {
  const corpus = buildCorpus();
  const h = new Harness();
  const started = performance.now();
  let runs = 0;
  let reachedPrimitive = 0;
  fc.assert(
    fc.property(inputArb(corpus.length), (input) => {
      runs++;
      if (h.dirty) h.restore();
      h.dirty = true;
      const { bytes: packet, link: home } = materialise(input, corpus);
      const at = placeAt(input.placement, packet.length, h.stride);
      const label = () =>
        `${input.kind === "mutated" ? `mutated "${corpus[input.base].name}"` : "random"} ${packet.length} bytes at slot offset ${at}: ${hex(packet)}`;
      for (const link of LINKS) {
        const pe = h.parse(packet, link, at);
        if (pe) throw new Error(`${pe}\n  link ${link}, ${label()}`);
        if (link === home && h.lastParseStatus === 0) reachedPrimitive++;
        for (const a of APPLY) {
          const e = h.apply(packet, link, a, at);
          if (e) throw new Error(`${e}\n  action ${describe(a)}, link ${link}, ${label()}`);
        }
      }
      const changed = h.firstChange();
      if (changed >= 0) {
        // Find the application that wrote it.
        for (const link of LINKS) {
          for (const a of APPLY) {
            h.restore();
            h.apply(packet, link, a, at);
            const where = h.firstChange();
            if (where >= 0) {
              throw new Error(
                `out-of-slot write at memory byte ${where} (slot under test spans ${h.slotBase}..${h.slotBase + h.stride}): ` +
                  `was ${h.snapshot[where]}, now ${h.mem[where]}\n  action ${describe(a)}, link ${link}, ${label()}`,
              );
            }
          }
        }
        throw new Error(`memory byte ${changed} outside the slot changed (not reproducible one application at a time)\n  ${label()}`);
      }
      h.dirty = false;
    }),
    { numRuns: RUNS, seed: SEED },
  );
  const seconds = (performance.now() - started) / 1000;
  const top = [...h.verdicts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, n]) => {
      const [v, r] = k.split("/").map(Number);
      return `${["", "forward", "reply", "drop", "pass"][v]}/${DROP_REASON_NAMES[r]}:${n}`;
    });
  console.log(
    `fuzz: ${runs} inputs, ${runs * APPLY.length * LINKS.length} applications, ${runs * LINKS.length} parses in ${seconds.toFixed(1)} s; ` +
      `${reachedPrimitive} inputs parsed clean on their own link\n  outcomes: ${top.join(" ")}` +
      `\n  forwarded or replied, by action index: ${APPLY.map((a) => `${a}:${h.delivered[a]}`).join(" ")}`,
  );
  assert.equal(runs, RUNS);
  // The inputs must reach the rewrite, not just the parser's first checks: a generator (or a
  // parser) gone wrong would leave the rewrite untested while no trap is found. About 20% of
  // inputs parse clean (run of 100 000); each action that can forward must have forwarded.
  assert.ok(reachedPrimitive >= RUNS / 20, `only ${reachedPrimitive} of ${RUNS} inputs parsed clean on their own link`);
  const mustDeliver = APPLY.filter((a) => a < ACTIONS.length && ACTIONS[a] !== null);
  const never = mustDeliver.filter((a) => h.delivered[a] === 0).map(describe);
  assert.deepEqual(never, [], "actions that never forwarded or replied");
  assert.equal(h.delivered[ACTIONS.length - 1] + h.delivered[ACTION_COUNT], 0, "a zero record or an index past the table never forwards");
});

test("the harness sees a stray write anywhere outside the slot under test", () => {
  const h = new Harness();
  const s = h.core.slots;
  const info = h.core.wasm.regionInfo();
  // The guarded ranges cover all of memory but the slot, its descriptor and the info block.
  const guardedBytes = h.guarded.reduce((n, [a, b]) => n + (b - a), 0);
  assert.equal(guardedBytes, h.mem.length - h.stride - DESC_SIZE - 64);
  assert.equal(h.apply(Uint8Array.of(0x45), LinkType.RawIp, 0), null);
  assert.equal(h.firstChange(), -1, "a clean application changes nothing guarded");
  const probes = [
    h.slotBase - 1,
    h.slotBase + h.stride,
    s.slotAddress(0),
    s.slotAddress(3) + h.stride - 1,
    s.descBase + T * DESC_SIZE - 1,
    s.descBase + (T + 1) * DESC_SIZE,
    info - 1,
    info + 64,
    (h.core.wasm.regionActions as () => number)() + 3,
    0,
    h.mem.length - 1,
  ];
  for (const at of probes) {
    h.mem[at] ^= 0x01;
    assert.equal(h.firstChange(), at, `a write at ${at} is seen`);
    h.restore();
  }
  for (const at of [h.slotBase, h.slotBase + h.stride - 1, s.descBase + T * DESC_SIZE, info]) {
    h.mem[at] ^= 0x01;
    assert.equal(h.firstChange(), -1, `${at} is inside an excluded region`);
    h.restore();
  }
  // A descriptor pointing outside the slot is reported, as is a verdict out of range.
  assert.match(h.apply(new Uint8Array(0), LinkType.RawIp, 0, h.stride + 1) ?? "", /verdict|leaves/);
});

// ---------------------------------------------------------------------------------------
// IP fragments through the whole datapath (assembly/datapath/fragments.ts): random and
// mutated fragment streams, in random batches and at random times, never trap, never
// leave a slot without a verdict, never exceed the table or held-memory bounds, and every
// held fragment is accounted for (released or dropped) once the time has run out.

const FRAG_BATCHES = Math.max(200, Math.floor(RUNS / 50));

test(`fragment streams through the datapath: no trap, bounds kept, every held fragment accounted for (${FRAG_BATCHES} batches)`, () => {
  const SLOTS = 16;
  const MEMORY = 16 * 1024;
  const DATAGRAMS = 16;
  const b = new Balancer({
    connections: 256,
    slots: SLOTS,
    slotCapacity: 4096,
    fragments: { datagrams: DATAGRAMS, memory: MEMORY, timeoutMs: 50 },
    director: { tunnelSource4: "192.168.10.1", tunnelSource6: "fd00:10::fe" },
  });
  const methods = ["masq", "route", "tunnel"] as const;
  for (const [family, vip, rips] of [
    [4, "192.168.227.128", ["192.168.253.143", "192.168.253.144", "192.168.253.145"]],
    [6, "fd00:227::128", ["fd00:253::143", "fd00:253::144", "fd00:253::145"]],
  ] as const) {
    const key = { kind: "address", protocol: "udp", address: vip, port: 53 } as const;
    b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
    rips.forEach((address, i) =>
      b.addDestination(key, {
        address,
        port: methods[i] === "masq" ? 5353 : 53,
        method: methods[i],
        weight: 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        ...(methods[i] === "tunnel" ? { tunnel: { type: "ipip", checksum: "nocsum" } as const } : {}),
      }),
    );
    assert.ok(family === 4 || family === 6);
  }
  const fragmentArb = fc.record({
    v6: fc.boolean(),
    client: fc.integer({ min: 1, max: 6 }),
    reply: fc.boolean(),
    off8: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 400 }), fc.integer({ min: 8000, max: 8191 })),
    more: fc.boolean(),
    len: fc.oneof(
      fc.integer({ min: 0, max: 64 }).map((n) => n * 8),
      fc.integer({ min: 0, max: 1400 }),
    ),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
  });
  const build = (f: { v6: boolean; client: number; reply: boolean; off8: number; more: boolean; len: number; flips: [number, number][] }) => {
    const data = fill(f.len, f.client);
    const flags = (f.more ? 0x2000 : 0) | f.off8;
    let p: Uint8Array;
    if (!f.v6) {
      const [src, dst] = f.reply ? ["192.168.253.143", `10.0.0.${f.client}`] : [`10.0.0.${f.client}`, "192.168.227.128"];
      p = ipv4(src, dst, f.off8 === 0 ? udp(f.reply ? 5353 : 40000 + f.client, f.reply ? 40000 + f.client : 53, data) : opaque(17, data), { flags });
    } else {
      const [src, dst] = f.reply ? ["fd00:253::143", `fd00:10::${f.client}`] : [`fd00:10::${f.client}`, "fd00:227::128"];
      p = ipv6(src, dst, f.off8 === 0 ? udp(f.reply ? 5353 : 40000 + f.client, f.reply ? 40000 + f.client : 53, data) : opaque(17, data), [
        [44, frag6(f.off8, f.more, f.client)],
      ]);
    }
    for (const [at, v] of f.flips) if (p.length > 0) p[at % p.length] = v;
    return p;
  };
  // Whole datagrams too, cut into fragments and shuffled, so that datagrams complete, held
  // fragments are released (into free slots, or at the next call when a batch is full).
  const datagramArb = fc.record({
    v6: fc.boolean(),
    client: fc.integer({ min: 1, max: 6 }),
    size: fc.integer({ min: 9, max: 3000 }),
    piece8: fc.integer({ min: 2, max: 128 }),
    keys: fc.array(fc.nat(), { minLength: 48, maxLength: 48 }),
  });
  const cut = (d: { v6: boolean; client: number; size: number; piece8: number; keys: number[] }) => {
    const u = concat(udp(40000 + d.client, 53, fill(d.size, d.client)).seg);
    const out: Uint8Array[] = [];
    for (let off = 0; off < u.length; off += d.piece8 * 8) {
      const part = u.subarray(off, off + d.piece8 * 8);
      const more = off + part.length < u.length;
      out.push(
        d.v6
          ? ipv6(`fd00:10::${d.client}`, "fd00:227::128", opaque(17, part), [[44, frag6(off / 8, more, d.client)]])
          : ipv4(`10.0.0.${d.client}`, "192.168.227.128", opaque(17, part), { flags: (more ? 0x2000 : 0) | (off / 8) }),
      );
    }
    return out
      .map((f, i) => [d.keys[i % d.keys.length] * 64 + i, f] as const)
      .sort((x, y) => x[0] - y[0])
      .map(([, f]) => f);
  };
  const batchArb = fc.oneof(
    fc.array(fragmentArb, { minLength: 1, maxLength: SLOTS }).map((fs) => fs.map(build)),
    fc.array(datagramArb, { minLength: 1, maxLength: 3 }).map((ds) => ds.flatMap(cut).slice(0, SLOTS)),
  );
  let now = 1000;
  fc.assert(
    fc.property(batchArb, fc.integer({ min: 0, max: 40 }), (frames, step) => {
      now += step;
      frames.forEach((f, i) => b.slots.write(i, f, LinkType.RawIp, 0));
      let filled: number;
      try {
        filled = b.process(frames.length, now);
      } catch (e) {
        if (e instanceof WasmAbortError) throw new Error(`trap: ${e.message}`);
        throw e;
      }
      assert.ok(filled >= frames.length && filled <= SLOTS, `filled ${filled} for ${frames.length}`);
      for (let i = 0; i < filled; i++) {
        const verdict = b.slots.field(i, Desc.Verdict);
        assert.ok(verdict >= Verdict.Forward && verdict <= Verdict.Pass, `slot ${i}: verdict ${verdict}`);
        assert.ok(b.slots.field(i, Desc.Reason) < REASON_COUNT, `slot ${i}: reason`);
      }
      const st = b.fragmentStats();
      assert.ok(st.memoryInUse <= MEMORY, `held memory ${st.memoryInUse}`);
      assert.ok(st.datagramsInUse <= DATAGRAMS, `datagrams ${st.datagramsInUse}`);
    }),
    { numRuns: FRAG_BATCHES, seed: SEED },
  );
  // Once every datagram's time is over and the last releases are out, nothing is held.
  while (b.process(0, now + 1000) > 0);
  b.tick(now + 1000);
  const st = b.fragmentStats();
  assert.equal(st.memoryInUse, 0);
  assert.equal(st.datagramsInUse, 0);
  assert.equal(st.held, st.released + st.heldDropped, "every held fragment was released or dropped");
  assert.ok(st.held > 0 && st.released > 0 && st.completed > 0, "the stream exercised the table and the pool");
  console.log(`fragment fuzz: ${JSON.stringify(st)}`);
});
