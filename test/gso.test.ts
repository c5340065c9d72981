// Large frames kept whole: GSO super-packets and partial checksums (a virtio_net_hdr in
// the slot's offload record) through the datapath and the director. A super-packet goes
// in, a rewritten super-packet comes out with its header kept; its segments, cut by the
// data plane, are judged by tshark with checksum validation and compared byte for byte with
// a plain TypeScript model (test/support/gso-model.ts). Property tests of the same against
// the model are in gso.property.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, DropReason, LinkType, Offload, PcapLinkType, type ServiceKey, Verdict, VNET_HDR_SIZE } from "../src/index.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Director } from "../src/runtime/director.js";
import {
  build,
  deviceComplete,
  type Family,
  hopModel,
  natModel,
  type Proto,
  segmentModel,
  TCP_ACK,
  TCP_CWR,
  TCP_FIN,
  TCP_PSH,
  toPartial,
  vnetHeader,
} from "./support/gso-model.js";
import { assertFrameValid, tsharkDissect } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const TSHARK = { skip: skipUnless("tshark") };
const GSO_SIZE = 1448;

const ip4 = (s: string) => new Uint8Array(s.split(".").map(Number));
function ip6(s: string): Uint8Array {
  const [head, tail] = s.split("::");
  const words = (x: string | undefined) => (x ? x.split(":").map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const b = new Uint8Array(16);
  all.forEach((w, i) => {
    b[2 * i] = w >> 8;
    b[2 * i + 1] = w & 0xff;
  });
  return b;
}

const ADDR = {
  4: { client: "198.51.100.7", vip: "203.0.113.10", rs: "192.0.2.50", parse: ip4 },
  6: { client: "2001:db8:c::7", vip: "2001:db8:f::10", rs: "2001:db8:d::50", parse: ip6 },
} as const;

function payload(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  // Six bits a byte: no payload looks like RTP / RTCP (version 2) to tshark's heuristics.
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0x3f;
  return b;
}

function natBalancer(family: Family, proto: Proto, slots = 64): Balancer {
  const a = ADDR[family];
  const b = new Balancer({ connections: 256, slots });
  const key: ServiceKey = { kind: "address", protocol: proto, address: a.vip, port: 80 };
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(key, { address: a.rs, port: 8080, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  return b;
}

/** Client -> VIP:80 packet of a flow (complete checksums). */
function clientPacket(family: Family, proto: Proto, bytes: number, flags: number, seq = 1001): Uint8Array {
  const a = ADDR[family];
  return build({ family, proto, src: a.parse(a.client), dst: a.parse(a.vip), sport: 40000, dport: 80, seq, flags, payload: payload(bytes, bytes) });
}

/** Runs one packet (with an optional virtio_net_hdr) through balancer.process in slot 0. */
function processOne(b: Balancer, packet: Uint8Array, header?: Uint8Array): { verdict: number; reason: number; packet: Uint8Array; header: Uint8Array } {
  b.slots.write(0, packet, LinkType.RawIp);
  if (header) b.slots.offloadRecord(0).set(header);
  b.process(1, 1000);
  const r = b.slots.result(0);
  return { verdict: r.verdict, reason: r.reason, packet: r.packet, header: b.slots.offloadRecord(0).slice(0, VNET_HDR_SIZE) };
}

/** Cuts slot 0's super-packet into slots 1.. with the data plane's segmenter. */
function cutSlot0(b: Balancer): Uint8Array[] {
  const wasm = b.core.wasm;
  const total = wasm.gsoSegments(0);
  const out: Uint8Array[] = [];
  for (let done = 0; done < total; ) {
    const k = wasm.gsoSegmentInto(0, done, 1, b.slots.count - 1);
    assert.ok(k > 0, "the segmenter made progress");
    for (let i = 1; i <= k; i++) {
      out.push(b.slots.view(i).slice());
      assert.deepEqual([...b.slots.offloadRecord(i).subarray(0, VNET_HDR_SIZE)], new Array(VNET_HDR_SIZE).fill(0), "a segment's record says complete");
    }
    done += k;
  }
  return out;
}

for (const [family, proto] of [
  [4, "tcp"],
  [6, "tcp"],
  [4, "udp"],
  [6, "udp"],
] as const) {
  test(
    `NAT of a ${proto} over IPv${family} GSO super-packet: rewritten once with its vnet header kept, partial checksum right, segments judged by tshark`,
    TSHARK,
    () => {
      const b = natBalancer(family, proto);
      if (proto === "tcp") {
        const syn = processOne(b, clientPacket(family, proto, 0, 0x02, 1000));
        assert.equal(syn.verdict, Verdict.Forward, "the SYN opens the flow");
      }
      // 40,000 bytes of payload (28 segments, the last one short) with a partial checksum.
      const complete = clientPacket(family, proto, 40000, TCP_ACK | TCP_PSH | TCP_CWR);
      const partial = toPartial(complete);
      const header = vnetHeader(partial, GSO_SIZE);
      const out = processOne(b, partial, header);
      assert.equal(out.verdict, Verdict.Forward, `verdict (reason ${out.reason})`);
      assert.deepEqual([...out.header], [...header], "gso_type, hdr_len, gso_size, csum_start, csum_offset kept");
      // The model: TTL - 1, destination -> RS:8080, checksums summed from scratch, L4 field partial.
      const rs = ADDR[family].parse(ADDR[family].rs);
      const expected = natModel(hopModel(complete), "dst", rs, 8080, true);
      assert.deepEqual(out.packet, expected, "the super-packet as the model rewrites it (partial field = folded pseudo-header sum)");
      // What the device would send if it completed this one packet: the right full checksum.
      const csumStart = family === 4 ? 20 : 40;
      assert.deepEqual(deviceComplete(out.packet, csumStart, proto === "tcp" ? 16 : 6), natModel(hopModel(complete), "dst", rs, 8080, false));

      const segments = cutSlot0(b);
      const model = segmentModel(expected, GSO_SIZE);
      assert.equal(segments.length, Math.ceil(40000 / GSO_SIZE));
      assert.deepEqual(segments, model, "segments byte for byte as the model cuts them");

      const frames = tsharkDissect(PcapLinkType.Raw, segments);
      let nextSeq = -1;
      let bytes = 0;
      for (const [k, f] of frames.entries()) {
        assertFrameValid(f, `segment ${k}`);
        const get = (name: string) => f.fields.get(name)?.[0];
        const status = get(`${proto}.checksum.status`);
        assert.equal(status, "1", `segment ${k}: ${proto} checksum verified good`);
        if (family === 4) assert.equal(get("ip.checksum.status"), "1", `segment ${k}: IP header checksum good`);
        assert.equal(get(family === 4 ? "ip.dst" : "ipv6.dst"), ADDR[family].rs);
        assert.equal(get(`${proto}.dstport`), "8080");
        const len = Number(get(proto === "tcp" ? "tcp.len" : "udp.length")) - (proto === "udp" ? 8 : 0);
        assert.ok(len > 0 && len <= GSO_SIZE, `segment ${k}: ${len} payload bytes`);
        bytes += len;
        if (proto === "tcp") {
          const seq = Number(get("tcp.seq_raw"));
          if (nextSeq >= 0) assert.equal(seq, nextSeq, `segment ${k}: sequence follows on`);
          nextSeq = (seq + len) >>> 0;
          const flags = Number(get("tcp.flags"));
          assert.equal((flags & TCP_CWR) !== 0, k === 0, `segment ${k}: CWR on the first only`);
          assert.equal((flags & TCP_PSH) !== 0, k === frames.length - 1, `segment ${k}: PSH on the last only`);
        }
      }
      assert.equal(bytes, 40000, "every payload byte once");
    },
  );
}

test("a reply super-packet from the real server (SNAT, port change) keeps a right partial checksum; a FIN stays on the last segment", () => {
  const b = natBalancer(4, "tcp");
  processOne(b, clientPacket(4, "tcp", 0, 0x02, 1000));
  const a = ADDR[4];
  const complete = build({
    family: 4,
    proto: "tcp",
    src: ip4(a.rs),
    dst: ip4(a.client),
    sport: 8080,
    dport: 40000,
    seq: 0xfffff000, // wraps during the super-packet
    flags: TCP_ACK | TCP_FIN | TCP_PSH,
    payload: payload(9000, 3),
  });
  const out = processOne(b, toPartial(complete), vnetHeader(complete, 1000));
  assert.equal(out.verdict, Verdict.Forward, `verdict (reason ${out.reason})`);
  const expected = natModel(hopModel(complete), "src", ip4(a.vip), 80, true);
  assert.deepEqual(out.packet, expected);
  const segments = cutSlot0(b);
  assert.deepEqual(segments, segmentModel(expected, 1000));
  assert.equal(segments.length, 9);
  assert.equal(segments[8][33] & TCP_FIN, TCP_FIN, "FIN on the last segment");
  assert.equal(segments[7][33] & TCP_FIN, 0, "and on no other");
});

test("a partial checksum alone (no GSO) is kept partial through NAT, and completed in place on request", () => {
  const b = natBalancer(6, "udp");
  const complete = clientPacket(6, "udp", 300, 0);
  const out = processOne(b, toPartial(complete), vnetHeader(complete, 0));
  assert.equal(out.verdict, Verdict.Forward);
  const rs = ip6(ADDR[6].rs);
  assert.deepEqual(out.packet, natModel(hopModel(complete), "dst", rs, 8080, true));
  assert.equal(b.core.wasm.offloadCompleteSlot(0), 0);
  assert.deepEqual(b.slots.view(0).slice(), natModel(hopModel(complete), "dst", rs, 8080, false), "completed: the full checksum");
  assert.equal(b.slots.offloadRecord(0)[Offload.Flags] & 1, 0, "NEEDS_CSUM cleared");
});

test("offload records that do not match the packet are dropped as bad-offload, never trusted", () => {
  const b = natBalancer(4, "tcp");
  processOne(b, clientPacket(4, "tcp", 0, 0x02, 1000));
  const partial = toPartial(clientPacket(4, "tcp", 5000, TCP_ACK));
  const good = vnetHeader(partial, GSO_SIZE);
  const cases: Array<[string, (h: Uint8Array) => void]> = [
    ["csum_start off the TCP header", (h) => (h[6] = 24)],
    ["csum_offset at the UDP place", (h) => (h[8] = 6)],
    ["GSO without NEEDS_CSUM", (h) => (h[0] = 0)],
    ["TCPV6 on IPv4", (h) => (h[1] = 4)],
    ["UDP_L4 on TCP", (h) => (h[1] = 5)],
    ["UFO (never enabled)", (h) => (h[1] = 3)],
    ["gso_size 0", (h) => (h[4] = h[5] = 0)],
    ["ECN bit without GSO", (h) => (h[1] = 0x80)],
  ];
  for (const [label, spoil] of cases) {
    const h = good.slice();
    spoil(h);
    const r = processOne(b, partial, h);
    assert.deepEqual([r.verdict, r.reason], [Verdict.Drop, DropReason.BadOffload], label);
  }
  assert.equal(processOne(b, partial, good).verdict, Verdict.Forward, "the good header passes");
});

test(
  "director: a super-packet to a tunnel destination is cut and each segment encapsulated (tshark: ipip, checksums good, inner = model segments)",
  TSHARK,
  () => {
    const b = new Balancer({ connections: 256, slots: 80, director: { tunnelSource4: "192.0.2.1" } });
    const key: ServiceKey = { kind: "address", protocol: "tcp", address: ADDR[4].vip, port: 80 };
    b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
    b.addDestination(key, { address: ADDR[4].rs, port: 80, method: "tunnel", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    const io = new MemoryPacketIO("tun", LinkType.RawIp, { offload: true });
    // A batch of every slot asked for: the director still keeps 20 of the 80 free for segments.
    const director = new Director({ balancer: b, io: [io], batch: 80 });
    io.inject(clientPacket(4, "tcp", 0, 0x02, 1000));
    director.runOnce();
    assert.equal(io.sent.length, 1, "the SYN, encapsulated");
    const complete = clientPacket(4, "tcp", 60_000, TCP_ACK | TCP_PSH);
    const partial = toPartial(complete);
    io.injectWithHeader(partial, vnetHeader(partial, GSO_SIZE));
    // A packet of the same flow behind it must leave after every segment (order kept).
    const after = clientPacket(4, "tcp", 10, TCP_ACK, 1001 + 60_000);
    io.inject(after);
    director.runOnce();
    const segs = segmentModel(hopModel(complete), GSO_SIZE);
    assert.equal(director.stats.gsoCut, 1);
    assert.equal(director.stats.gsoSegments, segs.length);
    assert.deepEqual(director.stats.drops, {});
    assert.ok(segs.length > 20, "more segments than the 20 reserved slots (80 slots: batch 60): cut in rounds");
    const sent = io.sent.slice(1);
    assert.equal(sent.length, segs.length + 1);
    for (const [k, s] of segs.entries()) assert.deepEqual(sent[k].subarray(20), s, `inner of segment ${k}`);
    assert.deepEqual(sent.at(-1)!.subarray(20), hopModel(after), "the later packet last");
    for (const h of io.sentHeaders) assert.deepEqual([...h], new Array(VNET_HDR_SIZE).fill(0), "encapsulated segments leave with complete checksums");
    const frames = tsharkDissect(PcapLinkType.Raw, sent);
    for (const [k, f] of frames.entries()) {
      assertFrameValid(f, `tunnelled segment ${k}`);
      assert.ok(f.protocols.includes("ip:ip:tcp"), f.protocols);
      assert.deepEqual(f.fields.get("ip.checksum.status"), ["1", "1"], "outer and inner IP header checksums good");
      assert.equal(f.fields.get("tcp.checksum.status")?.[0], "1");
    }
  },
);

test("director: toward an egress without offloads a super-packet is cut and a partial checksum completed; toward one with offloads both leave whole", () => {
  const b = natBalancer(4, "tcp", 40);
  const inSide = new MemoryPacketIO("in", LinkType.RawIp, { offload: true });
  const plain = new MemoryPacketIO("plain");
  const director = new Director({ balancer: b, io: [inSide, plain], routes: [{ prefix: "192.0.2.0/24", io: plain }] });
  inSide.inject(clientPacket(4, "tcp", 0, 0x02, 1000));
  const complete = clientPacket(4, "tcp", 20000, TCP_ACK);
  inSide.injectWithHeader(toPartial(complete), vnetHeader(complete, GSO_SIZE));
  const small = clientPacket(4, "tcp", 100, TCP_ACK, 1001 + 20000);
  inSide.injectWithHeader(toPartial(small), vnetHeader(small, 0));
  director.runOnce();
  const rs = ip4(ADDR[4].rs);
  const expected = natModel(hopModel(complete), "dst", rs, 8080, false);
  const segs = segmentModel(expected, GSO_SIZE);
  assert.equal(plain.sent.length, 1 + segs.length + 1);
  assert.deepEqual(plain.sent.slice(1, 1 + segs.length), segs);
  assert.deepEqual(plain.sent.at(-1), natModel(hopModel(small), "dst", rs, 8080, false));
  assert.equal(director.stats.checksumsCompleted, 1);
  assert.equal(director.stats.gsoCut, 1);

  // The same through an egress that takes offloads: one packet out, header kept.
  const b2 = natBalancer(4, "tcp", 40);
  const io = new MemoryPacketIO("tun", LinkType.RawIp, { offload: true });
  const d2 = new Director({ balancer: b2, io: [io] });
  io.inject(clientPacket(4, "tcp", 0, 0x02, 1000));
  io.injectWithHeader(toPartial(complete), vnetHeader(complete, GSO_SIZE));
  d2.runOnce();
  assert.equal(io.sent.length, 2);
  assert.deepEqual(io.sent[1], natModel(hopModel(complete), "dst", rs, 8080, true));
  assert.deepEqual([...io.sentHeaders[1]], [...vnetHeader(complete, GSO_SIZE)]);
  assert.equal(d2.stats.gsoCut, 0);
});

test("director: a generated ICMP error about a super-packet leaves with a cleared header (frag-needed from a tunnel MTU)", () => {
  const b = new Balancer({ connections: 256, slots: 40, director: { tunnelSource4: "192.0.2.1", tunnelMtu: 1400 } });
  const key: ServiceKey = { kind: "address", protocol: "tcp", address: ADDR[4].vip, port: 80 };
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(key, { address: ADDR[4].rs, port: 80, method: "tunnel", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const io = new MemoryPacketIO("tun", LinkType.RawIp, { offload: true });
  const director = new Director({ balancer: b, io: [io] });
  io.inject(clientPacket(4, "tcp", 0, 0x02, 1000));
  const complete = clientPacket(4, "tcp", 20000, TCP_ACK);
  // Segments of 1448 + 40 + 20 outer bytes exceed the tunnel MTU of 1400: frag-needed, once.
  io.injectWithHeader(toPartial(complete), vnetHeader(complete, GSO_SIZE));
  director.runOnce();
  assert.equal(director.stats.replied, 1, "one ICMP error for the whole super-packet");
  const icmp = io.sent.at(-1)!;
  assert.equal(icmp[9], 1, "ICMP");
  assert.deepEqual([icmp[20], icmp[21]], [3, 4], "fragmentation needed");
  assert.equal((icmp[26] << 8) | icmp[27], 1400 - 20, "next-hop MTU: the tunnel MTU less the outer header");
  assert.deepEqual([...io.sentHeaders.at(-1)!], new Array(VNET_HDR_SIZE).fill(0));
  assert.equal(director.stats.gsoCut, 0);
});
