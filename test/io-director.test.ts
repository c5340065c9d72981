// The director loop without devices or privileges, over in-memory adapters: verdicts to
// adapters (routes, replies where they came from), drops by reason, the pass hook, the
// NeedsNeighbour path, ticks, and the async loop's start / stop.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, Verdict, type ServiceKey } from "../src/index.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Director } from "../src/runtime/director.js";
import { udp4, until } from "./support/io-lab.js";

test("director without devices: an in-memory adapter, replies where they came from, drops by reason, passes to the hook", () => {
  const b = new Balancer({ connections: 64, slots: 8 });
  const KEY: ServiceKey = { kind: "address", protocol: "udp", address: "10.9.0.1", port: 53 };
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: "10.8.0.2", port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  b.addService({ key: { ...KEY, address: "10.9.0.2" }, scheduler: "rr", schedulerFlags: [], onePacket: false });
  const a = new MemoryPacketIO("a");
  const servers = new MemoryPacketIO("servers");
  const passed: number[] = [];
  const director = new Director({
    balancer: b,
    io: [a, servers],
    routes: [{ prefix: "10.8.0.0/16", io: servers }],
    pass: (p) => {
      passed.push(p[9]);
      return "consumed";
    },
  });
  const q = udp4("10.7.0.1", 4000, "10.9.0.1", 53, new Uint8Array(4));
  const ttl1 = udp4("10.7.0.1", 4001, "10.9.0.1", 53, new Uint8Array(4), 1);
  const other = udp4("10.7.0.1", 4002, "10.9.9.9", 99, new Uint8Array(4));
  const bad = q.slice(0, 10);
  const noServer = udp4("10.7.0.1", 4003, "10.9.0.2", 53, new Uint8Array(4));
  a.inject(q, ttl1, other, bad, noServer);
  assert.equal(director.runOnce(), 5);
  assert.equal(servers.sent.length, 1, "the NAT forward left by the route to 10.8.0.0/16");
  assert.equal([...servers.sent[0].subarray(16, 20)].join("."), "10.8.0.2");
  assert.deepEqual(passed, [17], "the packet to no service went to the hook");
  assert.equal(director.stats.drops.truncated, 1);
  assert.equal(director.stats.drops["ttl-expired"], 1);
  const replies = a.sent;
  assert.equal(replies.length, 1, "a service without destinations: ICMP port unreachable back by the receiving adapter");
  assert.equal(replies[0][9], 1);
  assert.equal([...replies[0].subarray(16, 20)].join("."), "10.7.0.1");
  assert.equal(director.stats.replied, 1);
  assert.equal(director.stats.forwarded, 1);
  // The server's answer comes in by `servers`; no route matches the client, so it leaves by
  // the adapter it came in on.
  servers.inject(udp4("10.8.0.2", 53, "10.7.0.1", 4000, new Uint8Array(4)));
  director.runOnce();
  assert.equal(servers.sent.length, 2, "no route to 10.7/16: it leaves by the adapter it came in on");
  assert.equal([...servers.sent[1].subarray(12, 16)].join("."), "10.9.0.1", "source rewritten to the VIP");
  assert.equal(b.processPacket(q, LinkType.RawIp, 0).verdict, Verdict.Forward);
});

test("director: a forward with no MAC for the next hop is dropped as needs-neighbour and resolution is asked for the real server", () => {
  const b = new Balancer({ connections: 64, slots: 8, director: { mac: "02:00:00:00:00:fe" } });
  const KEY: ServiceKey = { kind: "address", protocol: "udp", address: "10.9.0.1", port: 53 };
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: "10.8.0.2", port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const eth = new MemoryPacketIO("eth0", LinkType.Ethernet);
  const asked: string[] = [];
  const director = new Director({ balancer: b, io: [eth], neighbours: { resolve: (a, family) => asked.push(`${a}/${family}`) } });
  const ip = udp4("10.7.0.1", 4000, "10.9.0.1", 53, new Uint8Array(4));
  const frame = new Uint8Array(14 + ip.length);
  frame.set([2, 0, 0, 0, 0, 0xfe], 0);
  frame[12] = 0x08;
  frame.set(ip, 14);
  eth.inject(frame);
  director.runOnce();
  assert.deepEqual(asked, ["10.8.0.2/4"]);
  assert.equal(director.stats.drops["needs-neighbour"], 1);
  assert.equal(eth.sent.length, 0);
  b.setNeighbour("10.8.0.2", "02:00:00:00:00:02");
  eth.inject(frame);
  director.runOnce();
  assert.equal(eth.sent.length, 1, "once the MAC is known the same flow goes out");
  assert.deepEqual([...eth.sent[0].subarray(0, 6)], [2, 0, 0, 0, 0, 2]);
});

test("director: start() runs the loop beside the event loop and ticks the balancer; stop() ends it", async () => {
  const b = new Balancer({ connections: 64, slots: 8 });
  const KEY: ServiceKey = { kind: "address", protocol: "udp", address: "10.9.0.1", port: 53 };
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: "10.8.0.2", port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  b.setTimeouts({ tcp: 0, tcpFin: 0, udp: 1 });
  let now = 0;
  const io = new MemoryPacketIO("mem");
  const director = new Director({ balancer: b, io: [io], clock: () => now, tickMs: 200 });
  const loop = director.start();
  io.inject(udp4("10.7.0.1", 4000, "10.9.0.1", 53, new Uint8Array(4)));
  assert.ok(await until(() => io.sent.length === 1, 2000), "the loop forwarded the packet");
  assert.equal(b.connectionCount, 1);
  now = 1500; // past the 1 s UDP timeout: the next tick expires the flow
  assert.ok(await until(() => b.connectionCount === 0, 2000), "a tick expired the connection");
  await director.stop();
  await loop;
  assert.equal(director.isRunning, false);
  assert.equal(b.processPacket(udp4("10.7.0.1", 4001, "10.9.0.1", 53, new Uint8Array(4)), LinkType.RawIp, 2000).verdict, Verdict.Forward);
});
