// Full NAT (lvsadm --fullnat, DPVS's FNAT) through the whole datapath: packets scapy built,
// rewritten both ways, judged by tshark with checksum validation, and the local address
// pool's rules: a port per flow that no live connection uses toward the same real server,
// the pool's addresses in turn, a named drop when it is exhausted, deleted addresses kept by
// their connections. ICMP errors about a flow, GSO super-packets with partial checksums.
// Sync of full-NAT connections: test/sync-fullnat.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, DropReason, LinkType, PcapLinkType, Verdict, type ServiceKey } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { assertFrameValid, tsharkDissect, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";
import { build, natModel, hopModel, toPartial, vnetHeader, deviceComplete, TCP_ACK, TCP_PSH } from "./support/gso-model.js";

const SKIP = { skip: skipUnless("scapy", "tshark") };
const SCAPY = { skip: skipUnless("scapy") };

const ADDR = {
  4: { cip: "198.51.100.7", vip: "203.0.113.10", rip: "10.20.0.5", lip: ["10.20.0.250", "10.20.0.251"] },
  6: { cip: "2001:db8:c::7", vip: "2001:db8:f::10", rip: "2001:db8:d::5", lip: ["2001:db8:d::fa", "2001:db8:d::fb"] },
} as const;
type Family = 4 | 6;
type Proto = "tcp" | "udp";
const CPORT = 40000;
const VPORT = 80;
const RPORT = 8080;

function keyOf(family: Family, proto: Proto = "tcp"): ServiceKey {
  return { kind: "address", protocol: proto, address: ADDR[family].vip, port: VPORT };
}

function fnatBalancer(family: Family, proto: Proto = "tcp", options: ConstructorParameters<typeof Balancer>[0] = {}, laddrs = 1): Balancer {
  const b = new Balancer({ connections: 1024, ...options });
  const key = keyOf(family, proto);
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(key, { address: ADDR[family].rip, port: RPORT, method: "fullnat", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  for (const lip of ADDR[family].lip.slice(0, laddrs)) b.addLocalAddress(key, lip);
  return b;
}

function ipLayer(family: Family, src: string, dst: string): string {
  return family === 4 ? `IP(src='${src}',dst='${dst}',ttl=64)` : `IPv6(src='${src}',dst='${dst}',hlim=64)`;
}
function l4(proto: Proto, sport: number, dport: number, flags = "S"): string {
  return proto === "tcp"
    ? `TCP(sport=${sport},dport=${dport},flags='${flags}',seq=1000,ack=1)/b'full nat payload'`
    : `UDP(sport=${sport},dport=${dport})/b'datagram!'`;
}
const fromClient = (family: Family, proto: Proto, cport = CPORT, flags = "S", cip: string = ADDR[family].cip) =>
  `${ipLayer(family, cip, ADDR[family].vip)}/${l4(proto, cport, VPORT, flags)}`;
const fromServer = (family: Family, proto: Proto, lip: string, lport: number, flags = "SA") =>
  `${ipLayer(family, ADDR[family].rip, lip)}/${l4(proto, RPORT, lport, flags)}`;

const one = (f: DissectedFrame, key: string): string => {
  const v = f.fields.get(key);
  assert.ok(v && v.length > 0, `tshark shows no ${key} (${f.protocols})`);
  return v[0];
};

/** src, dst, sport, dport as tshark reads them, with every checksum verified good. */
function judge(packet: Uint8Array, family: Family, proto: Proto, label: string): { src: string; dst: string; sport: number; dport: number } {
  const [f] = tsharkDissect(PcapLinkType.Raw, [packet]);
  assertFrameValid(f, label);
  if (family === 4) assert.equal(one(f, "ip.checksum.status"), "1", `${label}: IP header checksum`);
  assert.equal(one(f, `${proto}.checksum.status`), "1", `${label}: ${proto} checksum`);
  const ip = family === 4 ? "ip" : "ipv6";
  return { src: one(f, `${ip}.src`), dst: one(f, `${ip}.dst`), sport: Number(one(f, `${proto}.srcport`)), dport: Number(one(f, `${proto}.dstport`)) };
}

for (const family of [4, 6] as const) {
  for (const proto of ["tcp", "udp"] as const) {
    test(
      `IPv${family} ${proto}: client -> VIP leaves as LIP:lport -> RIP:rport, the reply returns as VIP:vport -> client:cport; tshark verifies every checksum`,
      SKIP,
      () => {
        const a = ADDR[family];
        const b = fnatBalancer(family, proto);
        const [first] = scapyBuild([fromClient(family, proto)]);
        const out = b.processPacket(first, LinkType.RawIp, 1000);
        assert.deepEqual([out.verdict, out.reason], [Verdict.Forward, DropReason.None]);
        const fwd = judge(out.packet, family, proto, "client -> RS");
        assert.equal(fwd.src, a.lip[0], "source rewritten to the local address");
        assert.equal(fwd.dst, a.rip, "destination rewritten to the real server");
        assert.equal(fwd.dport, RPORT);
        assert.ok(fwd.sport >= 32768 && fwd.sport <= 60999, `local port ${fwd.sport} in ip_local_port_range`);
        assert.equal(out.packet[family === 4 ? 8 : 7], 63, "the director counts its hop");

        const [reply] = scapyBuild([fromServer(family, proto, a.lip[0], fwd.sport)]);
        const back = b.processPacket(reply, LinkType.RawIp, 1001);
        assert.deepEqual([back.verdict, back.reason], [Verdict.Forward, DropReason.None]);
        const rev = judge(back.packet, family, proto, "RS -> client");
        assert.deepEqual(rev, { src: a.vip, dst: a.cip, sport: VPORT, dport: CPORT });

        // A reply to a local port no flow holds is not ours: passed to the host, untouched.
        const [stray] = scapyBuild([fromServer(family, proto, a.lip[0], fwd.sport === 60999 ? 32768 : fwd.sport + 1)]);
        assert.equal(b.processPacket(stray, LinkType.RawIp, 1002).verdict, Verdict.Pass);
        // The next client packet of the flow takes the same local port.
        const [again] = scapyBuild([fromClient(family, proto, CPORT, "A")]);
        const out2 = b.processPacket(again, LinkType.RawIp, 1003);
        assert.equal(judge(out2.packet, family, proto, "second packet").sport, fwd.sport, "the flow keeps its local port");
      },
    );
  }
}

test(
  "two clients with the same source port get different local ports toward one real server; the listing counts each local address's connections",
  SCAPY,
  () => {
    const b = fnatBalancer(4);
    const pkts = scapyBuild([fromClient(4, "tcp", CPORT, "S", "198.51.100.7"), fromClient(4, "tcp", CPORT, "S", "198.51.100.8")]);
    const ports = pkts.map((p, i) => {
      const out = b.processPacket(p, LinkType.RawIp, 1000 + i);
      assert.equal(out.verdict, Verdict.Forward);
      return (out.packet[20] << 8) | out.packet[21];
    });
    assert.notEqual(ports[0], ports[1]);
    assert.deepEqual(b.localAddresses(keyOf(4)), [{ address: ADDR[4].lip[0], connections: 2, exhausted: 0 }]);
  },
);

test("the pool's local addresses take flows in turn, and a full address passes its flows to the next", SCAPY, () => {
  const b = fnatBalancer(4, "tcp", { localPortRange: [50000, 50001] }, 2);
  const syns = scapyBuild([1, 2, 3, 4, 5].map((i) => fromClient(4, "tcp", CPORT + i)));
  const outs = syns.map((p, i) => b.processPacket(p, LinkType.RawIp, 1000 + i));
  const sources = outs.slice(0, 4).map((o) => `${[...o.packet.subarray(12, 16)].join(".")}:${(o.packet[20] << 8) | o.packet[21]}`);
  assert.deepEqual(new Set(sources).size, 4, `four distinct (LIP, lport): ${sources}`);
  assert.deepEqual(
    sources.map((s) => s.split(":")[0]),
    [ADDR[4].lip[0], ADDR[4].lip[1], ADDR[4].lip[0], ADDR[4].lip[1]],
    "in turn",
  );
  // Two addresses x two ports toward one RIP:rport: the fifth flow finds none.
  assert.deepEqual([outs[4].verdict, outs[4].reason], [Verdict.Drop, DropReason.LaddrExhausted]);
  assert.equal(b.localAddressExhaustion, 1);
  assert.deepEqual(
    b.localAddresses(keyOf(4)).map((l) => [l.connections, l.exhausted]),
    [
      [2, 1],
      [2, 1],
    ],
  );
  assert.equal(b.connectionCount, 4, "the refused flow left no connection");
});

test("a port comes free when its connection expires; a deleted local address keeps its flows but takes no new one", SCAPY, () => {
  const b = fnatBalancer(4, "udp", { localPortRange: [50000, 50000] });
  const key = keyOf(4, "udp");
  const [d1, d2, reply] = scapyBuild([fromClient(4, "udp", 40001), fromClient(4, "udp", 40002), fromServer(4, "udp", ADDR[4].lip[0], 50000)]);
  assert.equal(b.processPacket(d1, LinkType.RawIp, 1000).verdict, Verdict.Forward);
  assert.equal(b.processPacket(d2, LinkType.RawIp, 1001).reason, DropReason.LaddrExhausted, "one port, taken");
  // UDP's 300 s timeout: after it the port is free again.
  b.expireAll(1000 + 301_000);
  assert.equal(b.connectionCount, 0);
  assert.deepEqual(b.localAddresses(key), [{ address: ADDR[4].lip[0], connections: 0, exhausted: 1 }], "the expired flow let its address go");
  assert.equal(b.processPacket(d2, LinkType.RawIp, 302_000).verdict, Verdict.Forward, "the expired flow's port is reused");

  b.deleteLocalAddress(key, ADDR[4].lip[0]);
  assert.deepEqual(b.localAddresses(key), []);
  const back = b.processPacket(reply, LinkType.RawIp, 302_001);
  assert.equal(back.verdict, Verdict.Forward, "the live flow still answers through its (deleted) local address");
  assert.equal([...back.packet.subarray(16, 20)].join("."), ADDR[4].cip);
  const [d3] = scapyBuild([fromClient(4, "udp", 40003)]);
  assert.equal(b.processPacket(d3, LinkType.RawIp, 302_002).reason, DropReason.LaddrExhausted, "no local address left: no new flow");
  // Re-adding the address while its old entry is still held makes a new entry.
  b.addLocalAddress(key, ADDR[4].lip[0]);
  b.expireAll(302_002 + 301_000);
  assert.equal(b.processPacket(d3, LinkType.RawIp, 700_000).verdict, Verdict.Forward);
  assert.deepEqual(b.localAddresses(key), [{ address: ADDR[4].lip[0], connections: 1, exhausted: 0 }]);
});

test("configuration: local addresses of the service's family, no duplicates, no method change to or from fullnat, nothing half applied", () => {
  const b = fnatBalancer(4);
  const key = keyOf(4);
  assert.throws(() => b.addLocalAddress(key, "2001:db8::1"), /IPv4 service needs IPv4 local addresses/);
  assert.throws(() => b.addLocalAddress(key, ADDR[4].lip[0]), /already exists/);
  assert.throws(() => b.addLocalAddress(key, "10.0.0.999"), /local address/);
  assert.throws(() => b.deleteLocalAddress(key, "10.9.9.9"), /No such local address/);
  const rs = { address: ADDR[4].rip, port: RPORT, weight: 1, upperThreshold: 0, lowerThreshold: 0 };
  assert.throws(() => b.editDestination(key, { ...rs, method: "masq" }), /cannot change to or from fullnat/);
  assert.equal(b.service(key).destinations[0].config.method, "fullnat");
  assert.throws(() => b.addDestination(key, { ...rs, address: "2001:db8::5", method: "fullnat" }), /needs the tunnel method/);
  const small = new Balancer({ localAddresses: 1 });
  small.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  small.addLocalAddress(key, "10.20.0.250");
  assert.throws(() => small.addLocalAddress(key, "10.20.0.251"), /table of 1 local addresses is full/);
  assert.throws(() => new Balancer({ localPortRange: [2000, 1000] }), /localPortRange/);
  // The rule set carries the pool, and a rebuild from it is the same.
  const rules = b.rules();
  assert.deepEqual(rules.services[0].localAddresses, [ADDR[4].lip[0]]);
  const copy = new Balancer();
  copy.applyRules(rules);
  assert.deepEqual(copy.rules(), rules);
});

for (const family of [4, 6] as const) {
  test(
    `IPv${family} ICMP errors about a full-NAT flow: from the server side back to the client, from the client side toward the real server, both layers rewritten; tshark verifies`,
    SKIP,
    () => {
      const a = ADDR[family];
      const b = fnatBalancer(family, "udp");
      const [d1] = scapyBuild([fromClient(family, "udp")]);
      const fwd = b.processPacket(d1, LinkType.RawIp, 1000);
      const lport = judge(fwd.packet, family, "udp", "first datagram").sport;
      const ip = family === 4 ? "ip" : "ipv6";
      const [fromRs, fromClientSide] = scapyBuild(
        family === 4
          ? [
              `IP(src='${a.rip}',dst='${a.lip[0]}')/ICMP(type=3,code=3)/IP(src='${a.lip[0]}',dst='${a.rip}',ttl=63)/UDP(sport=${lport},dport=${RPORT})/b'datagram!'`,
              `IP(src='${a.cip}',dst='${a.vip}')/ICMP(type=3,code=4)/IP(src='${a.vip}',dst='${a.cip}')/UDP(sport=${VPORT},dport=${CPORT})/b'answer'`,
            ]
          : [
              `IPv6(src='${a.rip}',dst='${a.lip[0]}')/ICMPv6DestUnreach(code=4)/IPv6(src='${a.lip[0]}',dst='${a.rip}',hlim=63)/UDP(sport=${lport},dport=${RPORT})/b'datagram!'`,
              `IPv6(src='${a.cip}',dst='${a.vip}')/ICMPv6PacketTooBig(mtu=1280)/IPv6(src='${a.vip}',dst='${a.cip}')/UDP(sport=${VPORT},dport=${CPORT})/b'answer'`,
            ],
      );
      const icmpStatus = family === 4 ? "icmp.checksum.status" : "icmpv6.checksum.status";
      // The real server says port unreachable about LIP:lport -> RIP:rport.
      const out = b.processPacket(fromRs, LinkType.RawIp, 1001);
      assert.deepEqual([out.verdict, out.reason], [Verdict.Forward, DropReason.None]);
      const [f] = tsharkDissect(PcapLinkType.Raw, [out.packet]);
      assertFrameValid(f, "error toward the client");
      assert.deepEqual(f.fields.get(`${ip}.src`), [a.vip, a.cip], "outer VIP -> client; quoted client -> VIP");
      assert.deepEqual(f.fields.get(`${ip}.dst`), [a.cip, a.vip]);
      assert.deepEqual(f.fields.get("udp.srcport"), [String(CPORT)]);
      assert.deepEqual(f.fields.get("udp.dstport"), [String(VPORT)]);
      assert.equal(one(f, icmpStatus), "1");
      // The client says so about VIP:vport -> client:cport.
      const inb = b.processPacket(fromClientSide, LinkType.RawIp, 1002);
      assert.deepEqual([inb.verdict, inb.reason], [Verdict.Forward, DropReason.None]);
      const [g] = tsharkDissect(PcapLinkType.Raw, [inb.packet]);
      assertFrameValid(g, "error toward the RS");
      assert.deepEqual(g.fields.get(`${ip}.src`), [a.lip[0], a.rip], "outer LIP -> RIP; quoted RIP -> LIP");
      assert.deepEqual(g.fields.get(`${ip}.dst`), [a.rip, a.lip[0]]);
      assert.deepEqual(g.fields.get("udp.srcport"), [String(RPORT)]);
      assert.deepEqual(g.fields.get("udp.dstport"), [String(lport)]);
      assert.equal(one(g, icmpStatus), "1");
    },
  );
}

const ip4 = (s: string) => new Uint8Array(s.split(".").map(Number));

test("a TCP GSO super-packet with a partial checksum: both halves rewritten once, the field kept partial, the device's completion right", () => {
  const a = ADDR[4];
  const b = fnatBalancer(4, "tcp", { slots: 4 });
  const spec = { family: 4 as const, proto: "tcp" as const, src: ip4(a.cip), dst: ip4(a.vip), sport: CPORT, dport: VPORT };
  b.slots.write(0, build({ ...spec, seq: 1000, flags: 0x02, payload: new Uint8Array(0) }), LinkType.RawIp);
  b.process(1, 1000);
  const lport = (b.slots.result(0).packet[20] << 8) | b.slots.result(0).packet[21];
  const payload = new Uint8Array(20000).map((_, i) => (i * 7) & 0x3f);
  const complete = build({ ...spec, seq: 1001, flags: TCP_ACK | TCP_PSH, payload });
  const partial = toPartial(complete);
  const header = vnetHeader(partial, 1448);
  b.slots.write(0, partial, LinkType.RawIp);
  b.slots.offloadRecord(0).set(header);
  b.process(1, 1001);
  const r = b.slots.result(0);
  assert.equal(r.verdict, Verdict.Forward, `reason ${r.reason}`);
  const expected = natModel(natModel(hopModel(complete), "dst", ip4(a.rip), RPORT, true), "src", ip4(a.lip[0]), lport, true);
  assert.deepEqual(r.packet, expected, "destination and source rewritten, L4 field = folded pseudo-header sum");
  assert.deepEqual(
    deviceComplete(r.packet, 20, 16),
    natModel(natModel(hopModel(complete), "dst", ip4(a.rip), RPORT, false), "src", ip4(a.lip[0]), lport, false),
  );
});

/** A TCP segment as scapy writes it, with options and payload. */
function seg(family: Family, src: string, dst: string, sport: number, dport: number, flags: string, seq: number, ack: number, options = "[]", payload = "") {
  return `${ipLayer(family, src, dst)}/TCP(sport=${sport},dport=${dport},flags='${flags}',seq=${seq},ack=${ack},options=${options})${payload ? `/b'${payload}'` : ""}`;
}
const u32 = (p: Uint8Array, at: number) => ((p[at] << 24) | (p[at + 1] << 16) | (p[at + 2] << 8) | p[at + 3]) >>> 0;

for (const family of [4, 6] as const) {
  test(
    `IPv${family} PROXY protocol v2: the header in front of the first data (again on a retransmission), seq / ack / SACK / MSS moved both ways; tshark reads the header and verifies every checksum`,
    SKIP,
    () => {
      const a = ADDR[family];
      const L = family === 4 ? 28 : 52;
      const l4 = family === 4 ? 20 : 40;
      const b = new Balancer({ connections: 64 });
      const key = keyOf(family);
      b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false, proxyProtocol: "v2" });
      b.addDestination(key, { address: a.rip, port: RPORT, method: "fullnat", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
      b.addLocalAddress(key, a.lip[0]);
      const ISN = 0xfffffff0; // the client's sequence numbers wrap inside the test
      const isn1 = (ISN + 1) >>> 0;
      const S = 5000;
      const [syn] = scapyBuild([seg(family, a.cip, a.vip, CPORT, VPORT, "S", ISN, 0, "[('MSS',1460)]")]);
      const outSyn = b.processPacket(syn, LinkType.RawIp, 1000);
      assert.equal(outSyn.verdict, Verdict.Forward);
      assert.equal(outSyn.packet.length, syn.length, "the SYN carries no header");
      const lport = judge(outSyn.packet, family, "tcp", "SYN").sport;
      const fromRs = (flags: string, seq: number, ack: number, options = "[]", payload = "") =>
        scapyBuild([seg(family, a.rip, a.lip[0], RPORT, lport, flags, seq, ack, options, payload)])[0];
      const fromClient = (flags: string, seq: number, ack: number, options = "[]", payload = "") =>
        scapyBuild([seg(family, a.cip, a.vip, CPORT, VPORT, flags, seq, ack, options, payload)])[0];

      // SYN-ACK: the real server's MSS lowered by the header's length.
      const synack = b.processPacket(fromRs("SA", S, isn1, "[('MSS',1460)]"), LinkType.RawIp, 1001);
      const [fsa] = tsharkDissect(PcapLinkType.Raw, [synack.packet]);
      assertFrameValid(fsa, "SYN-ACK");
      assert.equal(one(fsa, "tcp.checksum.status"), "1");
      assert.equal(Number(one(fsa, "tcp.options.mss_val")), 1460 - L);
      assert.equal(u32(synack.packet, l4 + 8), isn1, "the SYN-ACK's ack is the client's, unmoved");

      // The handshake's ACK passes as it is; the first data segment gets the header.
      const ack = b.processPacket(fromClient("A", isn1, S + 1), LinkType.RawIp, 1002);
      assert.equal(u32(ack.packet, l4 + 4), isn1);
      const data = fromClient("PA", isn1, S + 1, "[]", "GET / HTTP/1.0\\r\\n\\r\\n");
      const first = b.processPacket(data, LinkType.RawIp, 1003);
      assert.deepEqual([first.verdict, first.reason], [Verdict.Forward, DropReason.None]);
      assert.equal(first.packet.length, data.length + L, "the header went in");
      const [fd] = tsharkDissect(PcapLinkType.Raw, [first.packet], { preferences: ["tcp.try_heuristic_first:TRUE"] });
      assertFrameValid(fd, "first data segment");
      if (family === 4) assert.equal(one(fd, "ip.checksum.status"), "1");
      assert.equal(one(fd, "tcp.checksum.status"), "1");
      assert.equal(one(fd, "proxy.v2.version"), "2");
      assert.equal(one(fd, `proxy.src.ipv${family}`), a.cip);
      assert.equal(one(fd, `proxy.dst.ipv${family}`), a.vip);
      assert.equal(Number(one(fd, "proxy.srcport")), CPORT);
      assert.equal(Number(one(fd, "proxy.dstport")), VPORT);
      assert.equal(Buffer.from(first.packet.subarray(l4 + 20 + L)).toString(), "GET / HTTP/1.0\r\n\r\n", "the payload follows the header whole");
      // Retransmitted: the header again, the same bytes.
      const again = b.processPacket(data, LinkType.RawIp, 1004);
      assert.deepEqual(again.packet, first.packet, "a retransmission of the first segment carries the header again");

      // The real server acks header + 18 bytes and SACKs a later block: the client sees its own numbers.
      const rsAck = b.processPacket(
        fromRs("A", S + 1, (isn1 + L + 18) >>> 0, `[('NOP',None),('NOP',None),('SAck',(${(isn1 + L + 40) >>> 0},${(isn1 + L + 60) >>> 0}))]`),
        LinkType.RawIp,
        1005,
      );
      const [fa] = tsharkDissect(PcapLinkType.Raw, [rsAck.packet]);
      assertFrameValid(fa, "ack to the client");
      assert.equal(one(fa, "tcp.checksum.status"), "1");
      assert.equal(u32(rsAck.packet, l4 + 8), (isn1 + 18) >>> 0, "ack - L");
      assert.equal(u32(rsAck.packet, l4 + 20 + 4), (isn1 + 40) >>> 0, "SACK left edge - L");
      assert.equal(u32(rsAck.packet, l4 + 20 + 8), (isn1 + 60) >>> 0, "SACK right edge - L");
      // An ack inside the header maps to the client's first data byte.
      const partial = b.processPacket(fromRs("A", S + 1, (isn1 + 7) >>> 0), LinkType.RawIp, 1006);
      assert.equal(u32(partial.packet, l4 + 8), isn1);

      // The client's next segment: seq + L.
      const next = b.processPacket(fromClient("PA", (isn1 + 18) >>> 0, S + 1, "[]", "more"), LinkType.RawIp, 1007);
      const [fn] = tsharkDissect(PcapLinkType.Raw, [next.packet]);
      assertFrameValid(fn, "next segment");
      assert.equal(one(fn, "tcp.checksum.status"), "1");
      assert.equal(u32(next.packet, l4 + 4), (isn1 + 18 + L) >>> 0);
      assert.equal(next.packet.length, scapyBuild([seg(family, a.cip, a.vip, CPORT, VPORT, "PA", 1, 1, "[]", "more")])[0].length, "no header");
    },
  );
}

test("PROXY protocol: only for TCP address services; off by default; a flow picked up mid-stream (sloppy_tcp) gets no header", SCAPY, () => {
  const b = new Balancer({ connections: 64, sysctls: { sloppy_tcp: 1 } });
  assert.throws(() => b.addService({ key: keyOf(4, "udp"), scheduler: "rr", schedulerFlags: [], onePacket: false, proxyProtocol: "v2" }), /a -t service only/);
  assert.throws(
    () => b.addService({ key: keyOf(4), scheduler: "rr", schedulerFlags: [], onePacket: false, proxyProtocol: "v1" as "v2" }),
    /proxyProtocol: "v1" is not "v2"/,
  );
  const key = keyOf(4);
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false, proxyProtocol: "v2" });
  b.addDestination(key, { address: ADDR[4].rip, port: RPORT, method: "fullnat", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  b.addLocalAddress(key, ADDR[4].lip[0]);
  const [mid] = scapyBuild([seg(4, ADDR[4].cip, ADDR[4].vip, CPORT, VPORT, "PA", 1001, 1, "[]", "hello")]);
  const out = b.processPacket(mid, LinkType.RawIp, 1000);
  assert.equal(out.verdict, Verdict.Forward);
  assert.equal(out.packet.length, mid.length, "no ISN known: no header, no shift");
  // Turned off by -E: a new SYN's flow gets none.
  b.editService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  const [syn, data] = scapyBuild([
    seg(4, ADDR[4].cip, ADDR[4].vip, CPORT + 1, VPORT, "S", 100, 0),
    seg(4, ADDR[4].cip, ADDR[4].vip, CPORT + 1, VPORT, "PA", 101, 1, "[]", "hello"),
  ]);
  b.processPacket(syn, LinkType.RawIp, 1001);
  assert.equal(b.processPacket(data, LinkType.RawIp, 1002).packet.length, data.length);
});
