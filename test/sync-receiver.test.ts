// A backup's receiver against bad input: short, mis-sized, wrong-syncid and truncated
// messages are counted and change nothing; a fuzz run (fast-check) over random and mutated
// messages never throws, and every connection left in the table is one a message named.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, LinkType, type ServiceKey } from "../src/index.js";
import { buildPacket } from "../src/testing/packets.js";
import { ConnFlag, encodeMessages, OPT_LOCAL_ADDRESS, SyncReceiver, SyncSender, decodeMessage, type SyncConnection } from "../src/sync/index.js";

const VIP = "192.168.60.10";
const RS = "10.60.0.11";
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 80 };

function backup(): Balancer {
  const b = new Balancer({ connections: 256, slots: 4, slotCapacity: 2048 });
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: RS, port: 80, method: "route", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  return b;
}

const v4 = (s: string) => Uint8Array.from(s.split(".").map(Number));
const conn = (cport: number, over: Partial<SyncConnection> = {}): SyncConnection => ({
  family: 4,
  protocol: 6,
  flags: ConnFlag.DirectRoute | ConnFlag.NoOutput,
  state: 1,
  cport,
  vport: 80,
  dport: 80,
  fwmark: 0,
  timeout: 900,
  caddr: v4("172.16.9.1"),
  vaddr: v4(VIP),
  daddr: v4(RS),
  ...over,
});
const good = (syncId: number, conns: SyncConnection[]) => encodeMessages(conns, syncId, 1472)[0];

test("refused whole: too short, size field not the datagram's, another syncid; nothing imported", () => {
  const b = backup();
  const rx = new SyncReceiver(b, { syncId: 5, clock: () => 1000 });
  const m = good(5, [conn(1000), conn(1001)]);
  rx.handle(m.subarray(0, 3));
  rx.handle(Buffer.concat([m, Buffer.from([0])])); // one byte more than the size field says
  rx.handle(good(6, [conn(1002)]));
  assert.deepEqual(rx.stats.rejected, { short: 1, "bad-size": 1, "wrong-syncid": 1 });
  assert.equal(b.connectionCount, 0);
  // syncid 0 on the backup accepts every sender's id, as the kernel's does.
  const any = new SyncReceiver(b, { syncId: 0, clock: () => 1000 });
  any.handle(good(6, [conn(1002)]));
  assert.equal(any.stats.imported.created, 1);
});

test("cut short: a connection whose size runs past the message drops the rest; those before it stay", () => {
  const b = backup();
  const rx = new SyncReceiver(b, { clock: () => 1000 });
  const m = Buffer.from(good(1, [conn(2000), conn(2001), conn(2002)]));
  m.writeUInt16BE(0x0fff, 8 + 36 + 2); // the second connection claims 4095 bytes
  rx.handle(m);
  assert.equal(rx.stats.truncated, 1);
  assert.equal(rx.stats.imported.created, 1);
  assert.deepEqual(
    b.connections(1000).map((c) => c.client.port),
    [2000],
  );
  // A header that promises more connections than the datagram holds.
  const short = Buffer.from(good(1, [conn(2003)]));
  short.writeUInt8(3, 4);
  rx.handle(short);
  assert.equal(rx.stats.truncated, 2);
  assert.equal(b.connectionCount, 2);
  // Unknown states and protocols are skipped one by one, as the kernel does.
  rx.handle(good(1, [conn(2004, { state: 11 }), conn(2005, { protocol: 99 }), conn(2006)]));
  assert.equal(rx.stats.skipped, 2);
  assert.equal(b.connectionCount, 3);
  // A service or real server this backup does not have: counted, nothing created.
  rx.handle(good(1, [conn(2007, { daddr: v4("10.60.0.99") })]));
  assert.equal(rx.stats.imported["no-destination"], 1);
  assert.equal(b.connectionCount, 3);
});

test("an expiration message for a connection already replaced is ignored (ip_vs_proc_conn)", () => {
  const b = backup();
  b.addDestination(KEY, { address: "10.60.0.12", port: 80, method: "route", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const rx = new SyncReceiver(b, { clock: () => 1000 });
  rx.handle(good(1, [conn(3000)]));
  // The same client port now on another real server, still inactive: stale, ignored.
  rx.handle(good(1, [conn(3000, { daddr: v4("10.60.0.12"), flags: ConnFlag.DirectRoute | ConnFlag.Inactive, state: 5 })]));
  assert.equal(rx.stats.imported.stale, 1);
  assert.equal(b.connections(1000)[0].destination.address, RS);
  // Active on the other server: the old entry goes, the new one replaces it.
  rx.handle(good(1, [conn(3000, { daddr: v4("10.60.0.12") })]));
  assert.equal(rx.stats.imported.created, 2);
  assert.deepEqual(
    b.connections(1000).map((c) => c.destination.address),
    ["10.60.0.12"],
  );
});

test("fuzz: random and mutated datagrams never throw, and only connections a message named appear", () => {
  const b = backup();
  const rx = new SyncReceiver(b, { clock: () => 5000 });
  const base = good(0, [
    conn(4000),
    conn(4001, { family: 6, caddr: new Uint8Array(16).fill(7), vaddr: new Uint8Array(16), daddr: new Uint8Array(16) }),
    conn(4002),
  ]);
  const mutated = fc
    .tuple(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(base.length))
    .map(([edits, cut]) => {
      const m = Buffer.from(base);
      for (const [at, v] of edits) m[at] = v;
      const out = m.subarray(0, Math.max(cut, 4));
      // Keep the size field honest half of the time, so that the per-connection checks run.
      if (edits.length % 2 === 0) out.writeUInt16BE(out.length, 2);
      return out;
    });
  const anyBytes = fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u));
  fc.assert(
    fc.property(fc.oneof(mutated, anyBytes), (m) => {
      rx.handle(m); // must not throw
      for (const c of b.connections(5000)) {
        assert.ok(c.virtual.port >= 0 && c.destination.address === RS, "only the one configured real server can be bound");
      }
    }),
    { numRuns: 3000 },
  );
  assert.ok(rx.stats.messages >= 3000);
  const refused = Object.values(rx.stats.rejected).reduce((a, n) => a + n, 0);
  assert.ok(refused + rx.stats.truncated + rx.stats.skipped > 0, "the fuzz reached the error paths");
});

// ------------------------------------------------ full NAT: the local address option

const FNAT_VIP = "192.168.61.10";
const FNAT_RS = "10.61.0.11";
const LIP = "10.61.0.250";
const FNAT_KEY: ServiceKey = { kind: "address", protocol: "tcp", address: FNAT_VIP, port: 80 };

function fnatBackup(): Balancer {
  const b = new Balancer({ connections: 256, slots: 4, slotCapacity: 2048 });
  b.addService({ key: FNAT_KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(FNAT_KEY, { address: FNAT_RS, port: 8080, method: "fullnat", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  b.addLocalAddress(FNAT_KEY, LIP);
  return b;
}
const fnatConn = (cport: number, lport = 40000 + cport): SyncConnection =>
  conn(cport, { flags: ConnFlag.Masq, vaddr: v4(FNAT_VIP), daddr: v4(FNAT_RS), dport: 8080, local: { address: v4(LIP), port: lport } });

/** A message of [bad, good]: the bad connection's option bytes (after its 36-byte body) replaced. */
function withOption(option: number[]): Buffer {
  const body = Buffer.from(good(1, [conn(5000, { flags: ConnFlag.Masq, vaddr: v4(FNAT_VIP), daddr: v4(FNAT_RS), dport: 8080 })])).subarray(8);
  const first = Buffer.concat([body, Buffer.from(option)]);
  first.writeUInt16BE(first.length, 2);
  const padded = Buffer.concat([first, Buffer.alloc((4 - (first.length & 3)) & 3)]);
  const second = Buffer.from(good(1, [fnatConn(5001)])).subarray(8);
  const m = Buffer.concat([Buffer.alloc(8), padded, second]);
  m.writeUInt8(1, 1);
  m.writeUInt16BE(m.length, 2);
  m.writeUInt8(2, 4);
  m.writeInt8(1, 5);
  return m;
}

test("full NAT: bad local address options skip their connection (counted); the next one is still created", () => {
  const T = OPT_LOCAL_ADDRESS;
  const lip = [...v4(LIP)];
  const cases: Array<[string, number[]]> = [
    ["5 bytes for IPv4", [T, 5, ...lip, 0x9c]],
    ["an IPv6 length on an IPv4 connection", [T, 18, ...new Array(16).fill(0), 0x9c, 0x40]],
    ["local port 0", [T, 6, ...lip, 0, 0]],
    ["the option twice", [T, 6, ...lip, 0x9c, 0x40, T, 6, ...lip, 0x9c, 0x41]],
  ];
  for (const [label, option] of cases) {
    const b = fnatBackup();
    const rx = new SyncReceiver(b, { clock: () => 1000 });
    rx.handle(withOption(option));
    assert.equal(rx.stats.skipped, 1, `${label}: skipped`);
    assert.equal(rx.stats.truncated, 0, `${label}: the rest of the message is read`);
    assert.deepEqual(
      b.connections(1000).map((c) => c.client.port),
      [5001],
      `${label}: only the good connection`,
    );
  }
  // An option that claims more bytes than the connection has: the rest of the message goes.
  const b = fnatBackup();
  const rx = new SyncReceiver(b, { clock: () => 1000 });
  rx.handle(withOption([T, 60, ...lip, 0x9c, 0x40]));
  assert.equal(rx.stats.truncated, 1);
  assert.equal(b.connectionCount, 0);
});

test("fuzz (full NAT): mutated messages with the local address option never throw, and every flow made uses the pool's address", () => {
  const b = fnatBackup();
  const rx = new SyncReceiver(b, { clock: () => 5000 });
  const base = good(0, [fnatConn(6000), fnatConn(6001), conn(6002, { flags: ConnFlag.Masq, vaddr: v4(FNAT_VIP), daddr: v4(FNAT_RS), dport: 8080 })]);
  const mutated = fc
    .tuple(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(base.length))
    .map(([edits, cut]) => {
      const m = Buffer.from(base);
      for (const [at, v] of edits) m[at] = v;
      const out = m.subarray(0, Math.max(cut, 4));
      if (edits.length % 2 === 0) out.writeUInt16BE(out.length, 2);
      return out;
    });
  fc.assert(
    fc.property(mutated, (m) => {
      rx.handle(m); // must not throw
      const [pool] = b.localAddresses(FNAT_KEY);
      assert.equal(pool.address, LIP);
      // Every connection on the full-NAT real server holds the address once; templates none.
      const flows = b.connectionRecords(5000).filter((e) => !e.template).length;
      assert.equal(pool.connections, flows, "one hold per full-NAT connection, none leaked");
    }),
    { numRuns: 2000 },
  );
  assert.ok(rx.stats.imported.created > 0, "the fuzz created flows");
  assert.ok(rx.stats.skipped + rx.stats.truncated + rx.stats.imported["no-local-address"] > 0, "the fuzz reached the error paths");
  // The holds go with their flows.
  b.expireAll(5000 + 2_000_000);
  assert.equal(b.localAddresses(FNAT_KEY)[0].connections, b.connectionRecords(5000 + 2_000_000).filter((e) => !e.template).length);
});

test("sender: the data plane's connections fill messages up to sync_maxlen; a partial one leaves after flushMs", () => {
  const b = backup();
  let now = 0;
  const sent: Buffer[] = [];
  let pending = 0;
  const s = new SyncSender(b, {
    syncId: 9,
    maxLength: 8 + 36 * 2,
    flushMs: 2000,
    clock: () => now,
    send: (m, done) => {
      sent.push(m);
      pending++;
      if (pending <= 1) done(); // the second message stays with the "socket"
    },
    qlenMax: 1,
  });
  try {
    const flow = (port: number) => {
      for (const f of ["S", "A", "PA"])
        b.processPacket(buildPacket({ protocol: "tcp", src: "172.16.9.9", dst: VIP, sport: port, dport: 80, flags: f }), LinkType.RawIp, now);
    };
    flow(6000);
    flow(6001);
    assert.equal(sent.length, 0, "two connections fit: nothing sent yet");
    flow(6002);
    assert.equal(sent.length, 1, "the third does not fit: the full message goes");
    assert.deepEqual(
      decodeMessage(sent[0], 9).connections.map((c) => c.cport),
      [6000, 6001],
    );
    now = 1999;
    s.poll();
    assert.equal(sent.length, 1);
    now = 2000;
    s.poll();
    assert.equal(sent.length, 2, "flushMs after its first connection, the partial message goes");
    assert.deepEqual(
      decodeMessage(sent[1], 9).connections.map((c) => c.cport),
      [6002],
    );
    // sync_qlen_max 1: the second message is still with the socket, so a third is dropped.
    flow(6003);
    now = 5000;
    s.poll();
    assert.equal(sent.length, 2);
    assert.equal(s.stats.droppedQueueFull, 1);
    assert.equal(s.stats.connections, 4);
  } finally {
    s.close();
  }
});
