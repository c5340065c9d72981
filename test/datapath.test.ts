// The whole datapath through the Balancer, with packets scapy built: scheduling, NAT both
// ways, DR, the TCP state walk with the kernel's timeouts, persistence, quiescing, ICMP
// errors, and a SYN flood against a full table.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, Verdict, DropReason, Desc, type ServiceKey } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { skipUnless } from "./support/tools.js";

const VIP = "192.168.227.128";
const RS1 = "192.168.253.143";
const RS2 = "192.168.253.144";
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 80 };
const skip = skipUnless("scapy");

function natBalancer(scheduler = "rr", options: ConstructorParameters<typeof Balancer>[0] = {}) {
  const b = new Balancer({ connections: 1024, ...options });
  b.addService({ key: KEY, scheduler, schedulerFlags: [], onePacket: false });
  for (const rs of [RS1, RS2]) {
    b.addDestination(KEY, { address: rs, port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  }
  return b;
}

/** IPv4 destination address of a raw IP packet. */
const dst4 = (p: Uint8Array) => [...p.subarray(16, 20)].join(".");
const src4 = (p: Uint8Array) => [...p.subarray(12, 16)].join(".");
const sport = (p: Uint8Array) => (p[20] << 8) | p[21];

const tcp = (src: string, sp: number, dst: string, dp: number, flags: string) =>
  `IP(src='${src}',dst='${dst}',ttl=64)/TCP(sport=${sp},dport=${dp},flags='${flags}',seq=1000,ack=1)`;

test("rr over RS1 then RS2 added (NAT): SYNs go RS2, RS1, RS2, RS1, the kernel's newest-first list; the rewrite goes to RIP:80", { skip }, () => {
  const b = natBalancer();
  const syns = scapyBuild([1, 2, 3, 4].map((i) => tcp("10.0.0.1", 40000 + i, VIP, 80, "S")));
  const seen = syns.map((p, i) => {
    const out = b.processPacket(p, LinkType.RawIp, 1000 + i);
    assert.equal(out.verdict, Verdict.Forward);
    assert.equal(out.packet[8], 63, "the director counts its hop");
    return dst4(out.packet);
  });
  assert.deepEqual(seen, [RS2, RS1, RS2, RS1]);
  const listing = b.listing();
  // Linux 6.x ip_vs_proto_tcp.c, tcp_state_active_table: SYN_RECV counts as active
  assert.deepEqual(
    listing.services[0].destinations.map((d) => [d.config.address, d.activeConns, d.inactConns]),
    [
      [RS2, 2, 0],
      [RS1, 2, 0],
    ],
    "SYN_RECV connections are active, and the listing is newest first (--nosort)",
  );
  assert.equal(listing.services[0].stats!.conns, 4n);
});

test("NAT: the full TCP walk, replies rewritten back to the VIP, states and timeouts as the kernel's", { skip }, () => {
  const b = natBalancer();
  const [syn, synack, ack, finFromServer, finack, lastAck] = scapyBuild([
    tcp("10.0.0.1", 40001, VIP, 80, "S"),
    tcp(RS2, 80, "10.0.0.1", 40001, "SA"),
    tcp("10.0.0.1", 40001, VIP, 80, "A"),
    tcp(RS2, 80, "10.0.0.1", 40001, "FA"),
    tcp("10.0.0.1", 40001, VIP, 80, "FA"),
    tcp(RS2, 80, "10.0.0.1", 40001, "A"),
  ]);
  const state = (now: number) => {
    const [c] = b.connections(now);
    return [c.state, c.expires];
  };
  assert.equal(dst4(b.processPacket(syn, LinkType.RawIp, 0).packet), RS2, "RS2 was added last: the head of the list");
  assert.deepEqual(state(0), ["SYN_RECV", 60]);
  assert.equal(b.listing().services[0].destinations[0].activeConns, 1, "SYN_RECV counts as active (tcp_state_active_table)");
  const reply = b.processPacket(synack, LinkType.RawIp, 10);
  assert.equal(reply.verdict, Verdict.Forward);
  assert.equal(src4(reply.packet), VIP, "the reply leaves from the VIP");
  assert.equal(sport(reply.packet), 80);
  assert.ok(reply.flags & 2, "marked toward the client");
  assert.deepEqual(state(10), ["SYN_RECV", 60]);
  b.processPacket(ack, LinkType.RawIp, 20);
  assert.deepEqual(state(20), ["ESTABLISHED", 900]);
  assert.equal(b.listing().services[0].destinations[0].activeConns, 1, "ESTABLISHED counts as active");
  b.processPacket(finFromServer, LinkType.RawIp, 30);
  assert.deepEqual(state(30), ["FIN_WAIT", 120]);
  assert.equal(b.listing().services[0].destinations[0].activeConns, 0);
  assert.equal(b.listing().services[0].destinations[0].inactConns, 1);
  b.processPacket(finack, LinkType.RawIp, 40);
  assert.deepEqual(state(40), ["TIME_WAIT", 120]);
  b.processPacket(lastAck, LinkType.RawIp, 50);
  assert.deepEqual(state(50), ["TIME_WAIT", 120]);
  // Expiry: 120 s after the last packet the connection is gone and the counters are back to 0.
  assert.equal(b.expireAll(50 + 119_999), 0);
  assert.equal(b.expireAll(50 + 120_000), 1);
  assert.equal(b.connectionCount, 0);
  assert.equal(b.listing().services[0].destinations[0].inactConns, 0);
  const s = b.listing().services[0].stats!;
  assert.equal(s.inpkts, 3n);
  assert.equal(s.outpkts, 3n);
});

test("DR: INPUT-ONLY states (client FIN from ESTABLISHED is FIN_WAIT), the IP header untouched, MACs from the neighbour table", { skip }, () => {
  const b = new Balancer({ connections: 64, director: { mac: "02:00:00:00:00:fe" } });
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: RS1, port: 80, method: "route", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  b.setNeighbour(RS1, "02:00:00:00:01:43");
  const [syn, ack, fin] = scapyBuild([
    `Ether(src='02:00:00:00:00:01',dst='02:00:00:00:00:fe')/${tcp("10.0.0.1", 5000, VIP, 80, "S")}`,
    `Ether(src='02:00:00:00:00:01',dst='02:00:00:00:00:fe')/${tcp("10.0.0.1", 5000, VIP, 80, "A")}`,
    `Ether(src='02:00:00:00:00:01',dst='02:00:00:00:00:fe')/${tcp("10.0.0.1", 5000, VIP, 80, "FA")}`,
  ]);
  const out = b.processPacket(syn, LinkType.Ethernet, 0);
  assert.equal(out.verdict, Verdict.Forward);
  assert.equal([...out.packet.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":"), "02:00:00:00:01:43");
  assert.equal([...out.packet.subarray(6, 12)].map((x) => x.toString(16).padStart(2, "0")).join(":"), "02:00:00:00:00:fe");
  assert.equal(dst4(out.packet.subarray(14)), VIP, "DR keeps the VIP as destination");
  b.processPacket(ack, LinkType.Ethernet, 1);
  assert.equal(b.connections(1)[0].state, "ESTABLISHED");
  b.processPacket(fin, LinkType.Ethernet, 2);
  assert.deepEqual([b.connections(2)[0].state, b.connections(2)[0].expires], ["FIN_WAIT", 120]);
});

test("persistence pins a client network to one destination until the template expires", { skip }, () => {
  const b = new Balancer({ connections: 256 });
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false, persistence: { timeout: 300, netmask: "255.255.255.0" } });
  // Three real servers, so that the last SYN tells apart "template still there" (the second
  // network's RS), "rr restarted" (the first RS) and "rr went on" (the third).
  const RS3 = "192.168.253.145";
  for (const rs of [RS1, RS2, RS3]) b.addDestination(KEY, { address: rs, port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const pkts = scapyBuild([
    tcp("10.1.1.1", 1001, VIP, 80, "S"),
    tcp("10.1.1.2", 1002, VIP, 80, "S"), // same /24: same RS
    tcp("10.1.1.3", 1003, VIP, 80, "S"),
    tcp("10.1.2.1", 1004, VIP, 80, "S"), // another network: rr moves on
    tcp("10.1.2.9", 1005, VIP, 80, "S"), // after expiry, from the second network
  ]);
  const first = dst4(b.processPacket(pkts[0], LinkType.RawIp, 0).packet);
  assert.equal(dst4(b.processPacket(pkts[1], LinkType.RawIp, 1000).packet), first);
  assert.equal(dst4(b.processPacket(pkts[2], LinkType.RawIp, 2000).packet), first);
  const other = dst4(b.processPacket(pkts[3], LinkType.RawIp, 3000).packet);
  assert.notEqual(other, first);
  const templates = b.connectionRecords(3000).filter((r) => r.template);
  assert.equal(templates.length, 2);
  assert.equal(templates.find((t) => t.snapshot.client.address === "10.1.1.0")!.controlled, 3);
  assert.equal(b.listing().services[0].destinations.find((d) => d.config.address === first)!.persistConns, 1);
  // The connections (SYN_RECV, 60 s) expire; then the template, 300 s after its last use.
  b.expireAll(3000 + 60_000);
  assert.equal(b.connectionRecords(63_000).filter((r) => !r.template).length, 0);
  assert.equal(b.connectionRecords(63_000).filter((r) => r.template).length, 2, "templates outlive their connections");
  b.expireAll(2000 + 299_999);
  assert.equal(b.connectionRecords(301_999).filter((r) => r.template).length, 2);
  b.expireAll(3000 + 300_000);
  assert.equal(b.connectionRecords(303_000).filter((r) => r.template).length, 0);
  // With every template gone, the second network is scheduled afresh, and rr continues from
  // where it was: the one RS neither network had.
  const after = dst4(b.processPacket(pkts[4], LinkType.RawIp, 303_001).packet);
  const third = [RS1, RS2, RS3].find((rs) => rs !== first && rs !== other);
  assert.equal(after, third, `rr after ${first}, ${other}`);
});

test("a quiesced destination finishes its connections but takes no new ones; removal with expireNodestConn drops them", { skip }, () => {
  const b = natBalancer("wlc", { expireNodestConn: true });
  const [syn1, ack1, syn2, syn3, data1] = scapyBuild([
    tcp("10.0.0.1", 1111, VIP, 80, "S"),
    tcp("10.0.0.1", 1111, VIP, 80, "A"),
    tcp("10.0.0.2", 2222, VIP, 80, "S"),
    tcp("10.0.0.3", 3333, VIP, 80, "S"),
    tcp("10.0.0.1", 1111, VIP, 80, "PA"),
  ]);
  const rsOf1 = dst4(b.processPacket(syn1, LinkType.RawIp, 0).packet);
  b.processPacket(ack1, LinkType.RawIp, 1);
  b.editDestination(KEY, { address: rsOf1, port: 80, method: "masq", weight: 0, upperThreshold: 0, lowerThreshold: 0 });
  const other = rsOf1 === RS1 ? RS2 : RS1;
  assert.equal(dst4(b.processPacket(syn2, LinkType.RawIp, 2).packet), other);
  assert.equal(dst4(b.processPacket(syn3, LinkType.RawIp, 3).packet), other);
  assert.equal(dst4(b.processPacket(data1, LinkType.RawIp, 4).packet), rsOf1, "the old flow continues on the quiesced server");
  b.deleteDestination(KEY, { address: rsOf1, port: 80 });
  const dropped = b.processPacket(data1, LinkType.RawIp, 5);
  assert.equal(dropped.verdict, Verdict.Drop);
  assert.equal(dropped.reason, DropReason.NoDestination);
});

test("no destination available: ICMP port unreachable back to the client", { skip }, () => {
  const b = new Balancer({ connections: 16 });
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  const [syn] = scapyBuild([tcp("10.0.0.9", 999, VIP, 80, "S")]);
  const out = b.processPacket(syn, LinkType.RawIp, 0);
  assert.equal(out.verdict, Verdict.Reply);
  assert.equal(out.reason, DropReason.NoDestination);
  assert.equal(out.packet[9], 1, "ICMP");
  assert.equal(out.packet[20], 3);
  assert.equal(out.packet[21], 3, "port unreachable");
  assert.equal(src4(out.packet), VIP);
  assert.equal(dst4(out.packet), "10.0.0.9");
});

test("an ICMP error from the real server about a NAT flow goes back to the client from the VIP", { skip }, () => {
  const b = natBalancer();
  const [syn, icmp] = scapyBuild([
    tcp("10.0.0.1", 40001, VIP, 80, "S"),
    `IP(src='${RS2}',dst='10.0.0.1')/ICMP(type=3,code=4,nexthopmtu=1400)/IP(src='10.0.0.1',dst='${RS2}',ttl=63)/TCP(sport=40001,dport=80,flags='S')`,
  ]);
  b.processPacket(syn, LinkType.RawIp, 0);
  const out = b.processPacket(icmp, LinkType.RawIp, 1);
  assert.equal(out.verdict, Verdict.Forward);
  assert.equal(src4(out.packet), VIP);
  assert.equal(dst4(out.packet.subarray(28)), VIP, "the quoted packet's destination is the VIP again");
});

// A new NAT flow's reply-side entry is queued and entered after each chunk of the batch
// (its index line is a cache miss nothing could touch earlier). A real server's answer in
// the same batch as the SYN, in the same chunk or a later one, must still find the flow.
test("NAT replies in the same batch as their SYNs, same chunk or later, are rewritten back to the VIP", { skip }, () => {
  const b = natBalancer("rr", { slots: 128 });
  const clients = Array.from({ length: 40 }, (_, i) => 41000 + i);
  const rsOf = (i: number) => (i % 2 === 0 ? RS2 : RS1); // rr from the head: RS2 was added last
  const syns = scapyBuild(clients.map((p) => tcp("10.9.0.1", p, VIP, 80, "S")));
  const replies = scapyBuild(clients.map((p, i) => tcp(rsOf(i), 80, "10.9.0.1", p, "SA")));
  const runBatch = (packets: Uint8Array[], now: number) => {
    packets.forEach((p, i) => b.core.slots.write(i, p, LinkType.RawIp, 0));
    b.process(packets.length, now);
    return packets.map((_, i) => ({
      verdict: b.core.slots.field(i, Desc.Verdict),
      packet: b.core.slots.view(i).slice(),
    }));
  };
  // Interleaved: each reply right after its SYN, mostly in the same chunk.
  const first = runBatch(
    clients.slice(0, 20).flatMap((_, i) => [syns[i], replies[i]]),
    0,
  );
  // All SYNs, then all replies: the replies land in later chunks.
  const second = runBatch([...syns.slice(20), ...replies.slice(20)], 10);
  const outcomes = [
    ...clients.slice(0, 20).map((_, i) => [first[2 * i], first[2 * i + 1], i] as const),
    ...clients.slice(20).map((_, k) => [second[k], second[20 + k], 20 + k] as const),
  ];
  for (const [syn, reply, i] of outcomes) {
    assert.equal(syn.verdict, Verdict.Forward, `SYN ${i}`);
    assert.equal(dst4(syn.packet), rsOf(i), `SYN ${i} goes to its real server`);
    assert.equal(reply.verdict, Verdict.Forward, `reply ${i}`);
    assert.equal(src4(reply.packet), VIP, `reply ${i} leaves from the VIP`);
    assert.equal(sport(reply.packet), 80);
  }
  assert.equal(b.connections(10).length, 40);
});

test("a SYN flood against a full table drops new flows and leaves every established flow working", { skip }, () => {
  const small = new Balancer({ connections: 32 });
  small.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  for (const rs of [RS1, RS2]) small.addDestination(KEY, { address: rs, port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const established = Array.from({ length: 16 }, (_, i) => i);
  const handshake = scapyBuild(established.flatMap((i) => [tcp("10.5.0.1", 2000 + i, VIP, 80, "S"), tcp("10.5.0.1", 2000 + i, VIP, 80, "A")]));
  for (const p of handshake) assert.equal(small.processPacket(p, LinkType.RawIp, 0).verdict, Verdict.Forward);
  const flood = scapyBuild(Array.from({ length: 200 }, (_, i) => tcp(`10.66.${i >> 8}.${i & 255}`, 1024 + i, VIP, 80, "S")));
  let dropped = 0;
  for (const p of flood) {
    const out = small.processPacket(p, LinkType.RawIp, 10);
    if (out.verdict === Verdict.Drop) {
      assert.equal(out.reason, DropReason.TableFull);
      dropped++;
    }
  }
  assert.equal(dropped, 200 - 16, "16 free entries, then every new SYN is refused");
  const data = scapyBuild(established.map((i) => tcp("10.5.0.1", 2000 + i, VIP, 80, "PA")));
  for (const p of data) {
    const out = small.processPacket(p, LinkType.RawIp, 20);
    assert.equal(out.verdict, Verdict.Forward, "established flows keep working");
  }
  assert.equal(small.connections(20).filter((c) => c.state === "ESTABLISHED").length, 16);
});
