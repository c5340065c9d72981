// Two directors sharing a worker mesh (what lvsd --workers 2 runs, without devices or
// privileges): each has its own Balancer and in-memory adapters; packets of flows the
// other owns go through the hand-off rings. Every flow is forwarded once, by its owner,
// and its replies too, whichever worker received them. test/workers.test.ts does the same
// end to end over a TUN device and AF_PACKET.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, type ServiceKey } from "../src/index.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Director } from "../src/runtime/director.js";
import { WorkerMesh, closeMesh, meshData } from "../src/runtime/workers/worker-mesh.js";
import { HandoffRing } from "../src/runtime/workers/handoff-ring.js";
import { ipv4Checksum, udp4 } from "./support/io-lab.js";
import { buildPacket } from "../src/testing/packets.js";

const KEY: ServiceKey = { kind: "address", protocol: "udp", address: "10.9.0.1", port: 53 };
const FLOWS = 40;

function worker(mesh: ReturnType<typeof meshData>, index: number) {
  const balancer = new Balancer({ connections: 256, slots: 64 });
  balancer.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  balancer.addDestination(KEY, { address: "10.8.0.2", port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  // lvsd re-indexes the real servers after every configuration change (Lvsd.reindexOwners).
  (balancer.core.wasm as unknown as { ownerIndexRebuild(): number }).ownerIndexRebuild();
  const clients = new MemoryPacketIO(`clients${index}`);
  const servers = new MemoryPacketIO(`servers${index}`);
  const director = new Director({
    balancer,
    io: [clients, servers],
    routes: [{ prefix: "10.8.0.0/16", io: servers }],
    handOff: new WorkerMesh(mesh, index),
  });
  const holds = (port: number) => balancer.connections(0).some((c) => c.client.port === port);
  return { balancer, clients, servers, director, holds };
}

const request = (port: number) => udp4("10.7.0.1", port, "10.9.0.1", 53, new Uint8Array(4));
const reply = (port: number) => udp4("10.8.0.2", 53, "10.7.0.1", port, new Uint8Array(4));
const ports = Array.from({ length: FLOWS }, (_, i) => 20000 + i);

test("two workers: every flow is forwarded once by its owner, and so are its replies, whichever worker received them", () => {
  const mesh = meshData(2, 1 << 16);
  try {
    const w = [worker(mesh, 0), worker(mesh, 1)];
    // Every request reaches worker 0 (the kernel's hash put them all on its queue).
    w[0].clients.inject(...ports.map(request));
    w[0].director.runOnce();
    w[1].director.runOnce();
    const owners = ports.map((p) => w.findIndex((x) => x.holds(p)));
    for (const p of ports) assert.equal(w.filter((x) => x.holds(p)).length, 1, `flow ${p}: in one worker's table`);
    const ofOne = owners.filter((o) => o === 1).length;
    assert.ok(ofOne > 0 && ofOne < FLOWS, `the hash spreads the flows: ${ofOne} of ${FLOWS} owned by worker 1`);
    assert.equal(w[0].director.stats.handedOff, ofOne, "worker 0 handed over exactly the flows worker 1 owns");
    assert.equal(w[1].director.stats.takenOver, ofOne);
    assert.equal(w[0].servers.sent.length + w[1].servers.sent.length, FLOWS, "each request forwarded once");
    assert.equal(w[1].servers.sent.length, ofOne, "by its owner");
    // Every reply reaches worker 1 (the other queue): worker 0's flows go back through the ring.
    w[1].servers.inject(...ports.map(reply));
    w[1].director.runOnce();
    w[0].director.runOnce();
    const out = [...w[0].servers.sent.slice(FLOWS - ofOne), ...w[1].servers.sent.slice(ofOne)];
    assert.equal(out.length, FLOWS, "each reply sent once");
    for (const x of out) assert.equal([...x.subarray(12, 16)].join("."), "10.9.0.1", "rewritten to the VIP by the worker holding its flow");
    assert.equal(w[1].director.stats.handedOff, FLOWS - ofOne);
    for (const x of w) assert.equal(x.director.stats.passed, 0, "no packet missed its flow");
  } finally {
    closeMesh(mesh);
  }
});

test("two workers: a batch given away whole does not hide the next batch's packets", () => {
  const mesh = meshData(2, 1 << 16);
  try {
    const w = [worker(mesh, 0), worker(mesh, 1)];
    // Learn which flows each worker owns.
    w[0].clients.inject(...ports.map(request));
    w[0].director.runOnce();
    w[1].director.runOnce();
    const mine = ports.filter((p) => w[0].holds(p));
    const theirs = ports.filter((p) => w[1].holds(p));
    const sent = w[0].servers.sent.length;
    // A batch of worker 1's packets only (all handed over), then one of worker 0's own.
    w[0].clients.inject(...theirs.map(request));
    w[0].director.runOnce();
    w[0].clients.inject(request(mine[0]));
    w[0].director.runOnce();
    assert.equal(w[0].servers.sent.length, sent + 1, "worker 0 forwarded its own packet of the next batch");
    w[1].director.runOnce();
    assert.equal(w[1].director.stats.takenOver, theirs.length * 2);
  } finally {
    closeMesh(mesh);
  }
});

test("hand-off ring: packets of many sizes cross whole and in order, across the wrap; a full ring refuses, then takes again", () => {
  const ring = HandoffRing.create(4096);
  const from = new Balancer({ connections: 16, slots: 4 }).slots;
  const to = new Balancer({ connections: 16, slots: 8 }).slots;
  const adapters = new Uint8Array(8);
  const queued: Array<{ bytes: Uint8Array; adapter: number }> = [];
  const received: Array<{ bytes: Uint8Array; adapter: number }> = [];
  let refusals = 0;
  const drain = () => {
    for (let n = ring.take(to, 0, 8, adapters); n > 0; n = ring.take(to, 0, 8, adapters)) {
      for (let s = 0; s < n; s++) received.push({ bytes: to.view(s).slice(), adapter: adapters[s] });
    }
  };
  for (let i = 0; i < 300; i++) {
    const length = 20 + ((i * 397) % 1481);
    const bytes = Uint8Array.from({ length }, (_, k) => (i + k * 7) & 0xff);
    from.write(0, bytes, LinkType.RawIp);
    if (!ring.push(from, 0, i % 3)) {
      refusals++;
      drain();
      assert.ok(ring.empty);
      assert.ok(ring.push(from, 0, i % 3), "an empty ring takes the packet");
    }
    queued.push({ bytes, adapter: i % 3 });
  }
  drain();
  assert.ok(refusals > 10, `the ring filled up ${refusals} times (it wrapped)`);
  assert.equal(received.length, queued.length);
  for (const [i, q] of queued.entries()) {
    assert.deepEqual(received[i].bytes, q.bytes, `packet ${i}`);
    assert.equal(received[i].adapter, q.adapter);
  }
});

/** The Internet checksum of bytes [from, to). */
function checksum(p: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i += 2) sum += (p[i] << 8) | (i + 1 < to ? p[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** ICMP port unreachable from `src` to `dst` quoting the first 28 bytes of `quoted`, checksums complete. */
function portUnreachable(src: string, dst: string, quoted: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + 8 + 28);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 1;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  v.setUint16(10, checksum(p, 0, 20));
  p[20] = 3;
  p[21] = 3;
  p.set(quoted.subarray(0, 28), 28);
  v.setUint16(22, checksum(p, 20, p.length));
  return p;
}

test("two workers: an ICMP error from a real server about a flow reaches the flow's owner, whichever worker received it", () => {
  const mesh = meshData(2, 1 << 16);
  try {
    const w = [worker(mesh, 0), worker(mesh, 1)];
    w[0].clients.inject(...ports.map(request));
    w[0].director.runOnce();
    w[1].director.runOnce();
    // The real server's kernel answers a forwarded packet of each worker's flows with port
    // unreachable; every error reaches worker 0's queue.
    const forwarded = [...w[0].servers.sent, ...w[1].servers.sent];
    const before = w.map((x) => x.director.stats.forwarded);
    w[0].servers.inject(...forwarded.map((f) => portUnreachable("10.8.0.2", "10.7.0.1", f)));
    w[0].director.runOnce();
    w[1].director.runOnce();
    const errors = w.reduce((n, x, i) => n + x.director.stats.forwarded - before[i], 0);
    assert.equal(errors, FLOWS, "every error forwarded toward its client");
    for (const x of w) assert.equal(x.director.stats.passed, 0, "none missed its flow");
    assert.ok(w[0].director.stats.handedOff > 0, "those of worker 1's flows went through the ring");
  } finally {
    closeMesh(mesh);
  }
});

test("a synced connection belongs to the worker that owns its packets (a backup's worker keeps what its owner would), persistent services by client network", () => {
  const b = new Balancer({ connections: 256, slots: 64 });
  const PERSIST: ServiceKey = { kind: "address", protocol: "tcp", address: "10.9.0.1", port: 443 };
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: "10.8.0.2", port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  b.addService({ key: PERSIST, scheduler: "rr", schedulerFlags: [], onePacket: false, persistence: { timeout: 300, netmask: "255.255.255.0" } });
  b.addDestination(PERSIST, { address: "10.8.0.3", port: 443, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const wasm = b.core.wasm as unknown as { ownerIndexRebuild(): number; packetOwner(slot: number, workers: number): number };
  wasm.ownerIndexRebuild();
  const record = (protocol: number, client: string, port: number, vport: number, rs: string) => ({
    protocol,
    family: 4 as const,
    client: { address: client, port },
    virtual: { address: "10.9.0.1", port: vport },
    destination: { address: rs, port: vport },
    state: 0,
    template: false,
    inactive: false,
    method: "masq" as const,
    fwmark: 0,
    timeoutMs: 60_000,
  });
  const packetOwner = (p: Uint8Array, workers: number) => {
    b.slots.write(0, p, LinkType.RawIp);
    return wasm.packetOwner(0, workers);
  };
  for (const workers of [2, 3, 8]) {
    const seen = new Set<number>();
    for (let i = 0; i < 64; i++) {
      const client = `10.7.${i % 4}.${1 + i}`;
      const owner = packetOwner(udp4(client, 30000 + i, "10.9.0.1", 53, new Uint8Array(4)), workers);
      seen.add(owner);
      assert.equal(b.syncOwner(record(17, client, 30000 + i, 53, "10.8.0.2"), workers), owner, `${client}:${30000 + i}, ${workers} workers`);
      // The real server's reply has the same owner.
      assert.equal(packetOwner(udp4("10.8.0.2", 53, client, 30000 + i, new Uint8Array(4)), workers), owner);
    }
    assert.equal(seen.size, workers, `the flows spread over all ${workers} workers`);
    // Persistent: one owner for every port of a client network /24.
    const owners = new Set(Array.from({ length: 16 }, (_, i) => b.syncOwner(record(6, `10.7.5.${1 + i}`, 40000 + i * 7, 443, "10.8.0.3"), workers)));
    assert.equal(owners.size, 1, "one client network, one worker");
    const syn = (i: number) => buildPacket({ protocol: "tcp", src: `10.7.5.${1 + i}`, dst: "10.9.0.1", sport: 40000 + i * 7, dport: 443, flags: "S" });
    for (let i = 0; i < 16; i++) assert.equal(packetOwner(syn(i), workers), [...owners][0], "its packets go to that worker");
  }
});

test("worker mesh: the counters each worker publishes add up where worker 0 reads them (drain idleness sees every worker)", () => {
  const mesh = meshData(3, 1 << 16);
  try {
    const workers = [0, 1, 2].map((i) => new WorkerMesh(mesh, i));
    workers[0].publish(10, 1);
    workers[1].publish(0, 0);
    workers[2].publish(0, 0);
    const before = workers[0].forwardedTotal();
    // Only worker 2 forwards: worker 0 must see the total move, and the connections add up.
    workers[2].publish(7, 4);
    workers[1].publish(0, 2);
    assert.equal(workers[0].forwardedTotal(), 17);
    assert.notEqual(workers[0].forwardedTotal(), before);
    assert.equal(workers[0].connectionsTotal(), 7);
    // Counters past 2^31 (an Int32 word each) still add, mod 2^32, and stay non-negative.
    workers[1].publish(0x9000_0000, 0);
    assert.equal(workers[0].forwardedTotal(), (0x9000_0000 + 17) >>> 0);
  } finally {
    closeMesh(mesh);
  }
});

/** Cuts an IPv4 packet (20-byte header) in two fragments at L4 byte `at` (a multiple of 8), with identification `id`. */
function fragments4(packet: Uint8Array, at: number, id: number): [Uint8Array, Uint8Array] {
  const piece = (from: number, to: number, more: boolean) => {
    const f = new Uint8Array(20 + to - from);
    f.set(packet.subarray(0, 20));
    f.set(packet.subarray(20 + from, 20 + to), 20);
    const v = new DataView(f.buffer);
    v.setUint16(2, f.length);
    v.setUint16(4, id);
    v.setUint16(6, (more ? 0x2000 : 0) | (from / 8));
    v.setUint16(10, 0);
    v.setUint16(10, ipv4Checksum(f));
    return f;
  };
  return [piece(0, at, true), piece(at, packet.length - 20, false)];
}

test("two workers: a later fragment follows its first fragment to the flow's owner (the kernel queues a datagram's fragments together)", () => {
  const mesh = meshData(2, 1 << 16);
  try {
    const w = [worker(mesh, 0), worker(mesh, 1)];
    // Every fragment reaches worker 0, each datagram's first fragment then its later one, as one TUN queue delivers them.
    const cut = ports.map((p, i) => fragments4(udp4("10.7.0.1", p, "10.9.0.1", 53, new Uint8Array(40)), 24, 0x1000 + i));
    w[0].clients.inject(...cut.flat());
    // 80 packets are more than one batch: run both workers until neither moves a packet.
    while (w[0].director.runOnce() + w[1].director.runOnce() > 0);
    const ofOne = ports.filter((p) => w[1].holds(p)).length;
    assert.ok(ofOne > 0 && ofOne < FLOWS, `the hash spreads the flows: ${ofOne} of ${FLOWS} owned by worker 1`);
    assert.equal(w[1].servers.sent.length, 2 * ofOne, "worker 1 forwarded both fragments of each datagram it owns");
    assert.equal(w[0].servers.sent.length, 2 * (FLOWS - ofOne), "worker 0 both of its own");
    assert.equal(w[0].director.stats.handedOff, 2 * ofOne, "the later fragments went the way of their first");
    for (const x of w) assert.equal(x.director.stats.passed, 0, "no fragment missed its flow");
  } finally {
    closeMesh(mesh);
  }
});
