// Connection sync on the wire (net/netfilter/ipvs/ip_vs_sync.c, Linux 6.x): a master's
// messages judged by Wireshark's own IPVS dissector against the master's connection table;
// messages packed by Python's struct from the kernel's C layout (not by our encoder) applied
// on a backup; the kernel's send rules (sync_threshold 3 / sync_period 50, state changes,
// templates).

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, PcapLinkType, Verdict, type ServiceKey } from "../src/index.js";
import type { SyncRecord } from "../src/balancer/sync-records.js";
import { buildPacket } from "../src/testing/packets.js";
import { encodeMessages, SyncReceiver, toSyncConnection, ConnFlag } from "../src/sync/index.js";
import { tsharkDissect } from "./support/tshark.js";
import { scapyRun } from "./support/scapy.js";
import { skipUnless } from "./support/tools.js";

const VIP = "192.168.50.10";
const VIP6 = "2001:db8:50::10";
const RS = ["10.50.0.11", "10.50.0.12"];
const RS6 = "2001:db8:51::11";
const DR: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 80 };
const NAT_UDP: ServiceKey = { kind: "address", protocol: "udp", address: VIP, port: 53 };
const PERSIST: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 443 };
const DR6: ServiceKey = { kind: "address", protocol: "tcp", address: VIP6, port: 80 };

const dest = (address: string, port: number, method: "masq" | "route") => ({ address, port, method, weight: 1, upperThreshold: 0, lowerThreshold: 0 });

/** The pair's shared configuration (a backup is configured as its master). */
function director(): Balancer {
  const b = new Balancer({ connections: 4096, slots: 64, slotCapacity: 2048 });
  b.addService({ key: DR, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addService({ key: NAT_UDP, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addService({ key: PERSIST, scheduler: "rr", schedulerFlags: [], onePacket: false, persistence: { timeout: 300, netmask: "255.255.255.255" } });
  b.addService({ key: DR6, scheduler: "rr", schedulerFlags: [], onePacket: false });
  for (const a of RS) {
    b.addDestination(DR, dest(a, 80, "route"));
    b.addDestination(NAT_UDP, dest(a, 5353, "masq"));
    b.addDestination(PERSIST, dest(a, 443, "route"));
  }
  b.addDestination(DR6, dest(RS6, 80, "route"));
  return b;
}

const tcp = (src: string, sport: number, dst: string, dport: number, flags: string) => buildPacket({ protocol: "tcp", src, dst, sport, dport, flags });
const udp = (src: string, sport: number, dst: string, dport: number) => buildPacket({ protocol: "udp", src, dst, sport, dport, payload: new Uint8Array(8) });

/** Drives a little traffic through a master and returns what it queued for sync. */
function masterTraffic(b: Balancer, t0: number): SyncRecord[] {
  const sent: SyncRecord[] = [];
  b.onSync((records) => sent.push(...records));
  let now = t0;
  const send = (p: Uint8Array) => assert.equal(b.processPacket(p, LinkType.RawIp, now++).verdict, Verdict.Forward);
  // A DR TCP flow: SYN, ACK (ESTABLISHED), data: the third packet is the sync_threshold.
  for (const f of ["S", "A", "PA"]) send(tcp("172.16.0.1", 41000, VIP, 80, f));
  // A second one that then sends FIN: FIN_WAIT is a state change, synced at once.
  for (const f of ["S", "A", "PA", "FA"]) send(tcp("172.16.0.2", 41001, VIP, 80, f));
  // UDP through NAT: the third datagram.
  for (let i = 0; i < 3; i++) send(udp("172.16.0.3", 5000, VIP, 53));
  // A persistent flow: its template goes with it.
  for (const f of ["S", "A", "PA"]) send(tcp("172.16.0.4", 41002, VIP, 443, f));
  // IPv6.
  for (const f of ["S", "A", "PA"]) send(tcp("2001:db8:99::1", 41003, VIP6, 80, f));
  return sent;
}

const STATE_TIMEOUT_S: Record<string, number> = { ESTABLISHED: 900, FIN_WAIT: 120, UDP: 300 };

test("master: what the kernel's rules queue, and Wireshark's IPVS dissector reads back every field of the master's table", {
  skip: skipUnless("tshark"),
}, () => {
  const b = director();
  const now = 10_000;
  const sent = masterTraffic(b, now);
  // One record per qualifying packet: 3rd packet of each flow, the FIN, and the template
  // on each of its connection's packets (the kernel syncs a template every time).
  const keys = sent.map((r) => `${r.template ? "T" : "C"} ${r.client.address}:${r.client.port} ${r.state}`);
  assert.deepEqual(keys, [
    "C 172.16.0.1:41000 1",
    "C 172.16.0.2:41001 1",
    "C 172.16.0.2:41001 4",
    "C 172.16.0.3:5000 0",
    "T 172.16.0.4:0 0",
    "T 172.16.0.4:0 0",
    "C 172.16.0.4:41002 1",
    "T 172.16.0.4:0 0",
    "C 2001:db8:99::1:41003 1",
  ]);
  // Keep the last record of each entry (the table's state now), encode, dissect.
  const latest = new Map<string, SyncRecord>();
  for (const r of sent) latest.set(`${r.template}|${r.client.address}|${r.client.port}|${r.virtual.port}`, r);
  const byFamily = (f: 4 | 6) => [...latest.values()].filter((r) => r.family === f);
  const frames = [4, 6].flatMap((f) =>
    encodeMessages(byFamily(f as 4 | 6).map(toSyncConnection), 7, 1472).map((m) =>
      buildPacket({ protocol: "udp", src: "10.50.0.1", dst: "224.0.0.81", sport: 8848, dport: 8848, payload: m }),
    ),
  );
  const dissected = tsharkDissect(PcapLinkType.Raw, frames, { decodeAs: ["udp.port==8848,ipvs"] });
  const table = b.connectionRecords(now + 100);
  let checked = 0;
  for (const [fi, frame] of dissected.entries()) {
    assert.match(frame.protocols, /ipvs/, `frame ${fi} dissected as IPVS sync`);
    const f = (k: string) => frame.fields.get(k) ?? [];
    assert.equal(f("ipvs.syncid")[0], "7");
    assert.equal(f("ipvs.version")[0], "1");
    const n = Number(f("ipvs.conncount")[0]);
    assert.equal(Number(f("ipvs.size")[0]), 8 + n * (fi === 0 ? 36 : 72));
    const six = fi === 1;
    for (let i = 0; i < n; i++) {
      const caddr = f(six ? "ipvs.caddr6" : "ipvs.caddr")[i];
      const cport = Number(f("ipvs.cport")[i]);
      const vport = Number(f("ipvs.vport")[i]);
      const flags = Number(f("ipvs.flags.v1")[i]);
      const template = (flags & ConnFlag.Template) !== 0;
      const entry = table.find(
        (e) => e.template === template && e.snapshot.client.address === caddr && e.snapshot.client.port === cport && e.snapshot.virtual.port === vport,
      );
      assert.ok(entry, `connection ${caddr}:${cport} -> :${vport} is in the master's table`);
      const s = entry.snapshot;
      assert.equal(f(six ? "ipvs.vaddr6" : "ipvs.vaddr")[i], s.virtual.address);
      assert.equal(f(six ? "ipvs.daddr6" : "ipvs.daddr")[i], s.destination.address);
      assert.equal(Number(f("ipvs.dport")[i]), s.destination.port);
      assert.equal(Number(f("ipvs.proto")[i]), { tcp: 6, udp: 17, sctp: 132, ip: 0 }[s.protocol]);
      assert.equal(Number(f("ipvs.type")[i]), six ? 1 : 0);
      const wireState = Number(f("ipvs.state")[i]);
      assert.equal(wireState, template || s.protocol !== "tcp" ? 0 : entry.stateNumber, "state: the kernel's number (UDP and templates 0)");
      // The UDP service forwards by NAT, the TCP ones by direct routing.
      const fwd = s.protocol === "udp" ? ConnFlag.Masq : ConnFlag.DirectRoute | ConnFlag.NoOutput;
      assert.equal(flags & (ConnFlag.FwdMask | ConnFlag.NoOutput), fwd, "forwarding method and NOOUTPUT");
      assert.equal((flags & ConnFlag.Inactive) !== 0, template || !entry.active, "INACTIVE as the table counts it");
      const timeout = Number(f("ipvs.timeout")[i]);
      assert.equal(timeout, template ? 300 : STATE_TIMEOUT_S[s.state], `timeout of ${s.state}`);
      assert.equal(Number(f("ipvs.fwmark")[i]), 0);
      checked++;
    }
  }
  assert.equal(checked, latest.size, "every synced entry was dissected and matched");
});

test("sync_threshold / sync_period: a long flow is synced on packets 3, 53, 103 ...; nothing while no one listens", () => {
  const b = director();
  let now = 1;
  const counts: number[] = [];
  const records: SyncRecord[] = [];
  // Before anyone listens the data plane queues nothing.
  for (const f of ["S", "A", "PA"]) b.processPacket(tcp("172.16.1.1", 42000, VIP, 80, f), LinkType.RawIp, now++);
  b.onSync((r) => records.push(...r));
  assert.equal(records.length, 0);
  for (let pkt = 4; pkt <= 110; pkt++) {
    b.processPacket(tcp("172.16.1.1", 42000, VIP, 80, "A"), LinkType.RawIp, now++);
    if (records.length > counts.length) counts.push(pkt);
  }
  assert.deepEqual(counts, [53, 103]);
  b.setSyncParameters({ threshold: 1, period: 5 });
  const before = records.length;
  for (let i = 0; i < 10; i++) b.processPacket(tcp("172.16.1.1", 42000, VIP, 80, "A"), LinkType.RawIp, now++);
  assert.equal(records.length - before, 2, "packets 111..120: 111 and 116 (pkts % 5 == 1)");
  assert.throws(() => b.setSyncParameters({ threshold: 5, period: 5 }), /below sync_period/);
});

// ---------------------------------------------------------------- scapy-built messages

/** Python: packs sync messages with struct from the kernel's C layout (ip_vs_sync.c). */
const PACK = `
import sys, json, struct, socket
spec = json.loads(sys.stdin.read())
def conn_v1(c):
    six = ':' in c['caddr']
    fam = socket.AF_INET6 if six else socket.AF_INET
    addrs = b''.join(socket.inet_pton(fam, c[k]) for k in ('caddr', 'vaddr', 'daddr'))
    opts = b''
    if c.get('seq'):
        opts += struct.pack('!BB6I', 1, 24, *c['seq'])
    if c.get('optional_param'):
        opts += struct.pack('!BB', 7 | 64, 3) + b'xyz'
    size = (72 if six else 36) + len(opts)
    body = struct.pack('!BBHIHHHHII', 1 if six else 0, c['proto'], size & 0x0fff, c['flags'], c['state'],
                       c['cport'], c['vport'], c['dport'], c.get('fwmark', 0), c['timeout']) + addrs + opts
    return body
def msg_v1(syncid, conns):
    out = b''
    for c in conns:
        out += b'\\0' * ((4 - (8 + len(out)) % 4) % 4)
        out += conn_v1(c)
    return struct.pack('!BBHBbH', 0, syncid, 8 + len(out), len(conns), 1, 0) + out
def msg_v0(syncid, conns):
    out = b''
    for c in conns:
        out += struct.pack('!BBHHH4s4s4sHH', 0, c['proto'], c['cport'], c['vport'], c['dport'],
                           socket.inet_aton(c['caddr']), socket.inet_aton(c['vaddr']), socket.inet_aton(c['daddr']),
                           c['flags'], c['state'])
    return struct.pack('!BBH', len(conns), syncid, 4 + len(out)) + out
print(json.dumps([ (msg_v1 if m['version'] == 1 else msg_v0)(m['syncid'], m['conns']).hex() for m in spec ]))
`;

test("backup: messages packed by Python from the kernel's struct layout create the expected connections", { skip: skipUnless("scapy") }, () => {
  const DRF = ConnFlag.DirectRoute | ConnFlag.NoOutput;
  const messages = scapyRun<string[]>(PACK, [
    {
      version: 1,
      syncid: 3,
      conns: [
        { proto: 6, flags: DRF, state: 1, cport: 43000, vport: 80, dport: 80, timeout: 900, caddr: "172.16.2.1", vaddr: VIP, daddr: RS[1] },
        // A sequence option (24 bytes: the connection is 62 bytes, the next one padded to 4).
        {
          proto: 6,
          flags: DRF | ConnFlag.Inactive | ConnFlag.InSeq,
          state: 4,
          cport: 43001,
          vport: 80,
          dport: 80,
          timeout: 100,
          caddr: "172.16.2.2",
          vaddr: VIP,
          daddr: RS[0],
          seq: [1, 2, 3, 4, 5, 6],
        },
        {
          proto: 17,
          flags: ConnFlag.Masq | ConnFlag.Inactive,
          state: 0,
          cport: 6000,
          vport: 53,
          dport: 5353,
          timeout: 250,
          caddr: "172.16.2.3",
          vaddr: VIP,
          daddr: RS[0],
          optional_param: true,
        },
        { proto: 6, flags: DRF, state: 1, cport: 43002, vport: 80, dport: 80, timeout: 900, caddr: "2001:db8:98::2", vaddr: VIP6, daddr: RS6 },
        {
          proto: 6,
          flags: DRF | ConnFlag.Template | ConnFlag.Inactive,
          state: 0,
          cport: 0,
          vport: 443,
          dport: 443,
          timeout: 280,
          caddr: "172.16.2.4",
          vaddr: VIP,
          daddr: RS[1],
        },
      ],
    },
    // Version 0: no timeout on the wire, so the backup uses its own for the state.
    { version: 0, syncid: 3, conns: [{ proto: 6, flags: DRF, state: 1, cport: 43003, vport: 80, dport: 80, caddr: "172.16.2.5", vaddr: VIP, daddr: RS[0] }] },
  ]);
  const backup = director();
  const now = 50_000;
  const rx = new SyncReceiver(backup, { syncId: 3, clock: () => now });
  for (const m of messages) rx.handle(Buffer.from(m, "hex"));
  assert.deepEqual(rx.stats.imported, {
    created: 6,
    updated: 0,
    stale: 0,
    "no-destination": 0,
    "table-full": 0,
    "no-local-address": 0,
    "local-port-in-use": 0,
  });
  assert.equal(rx.stats.truncated + rx.stats.skipped, 0);
  const table = backup.connectionRecords(now);
  const find = (caddr: string, template = false) => table.find((e) => e.snapshot.client.address === caddr && e.template === template);
  const expect = [
    ["172.16.2.1", false, "ESTABLISHED", RS[1], 80, 900, true],
    ["172.16.2.2", false, "FIN_WAIT", RS[0], 80, 100, false],
    ["172.16.2.3", false, "UDP", RS[0], 5353, 250, false],
    ["2001:db8:98::2", false, "ESTABLISHED", RS6, 80, 900, true],
    ["172.16.2.4", true, "NONE", RS[1], 443, 280, false],
    ["172.16.2.5", false, "ESTABLISHED", RS[0], 80, 900, true], // v0: the backup's tcp timeout
  ] as const;
  for (const [caddr, template, state, daddr, dport, timeout, active] of expect) {
    const e = find(caddr, template);
    assert.ok(e, `${caddr} imported`);
    assert.equal(e.snapshot.state, state, `${caddr} state`);
    assert.equal(e.snapshot.destination.address, daddr);
    assert.equal(e.snapshot.destination.port, dport);
    assert.equal(e.snapshot.expires, timeout, `${caddr} timer (s)`);
    if (!template) assert.equal(e.active, active, `${caddr} counted ${active ? "active" : "inactive"}`);
  }
  // The counters the schedulers read follow the imported flags.
  // By address: a listing is newest first, as the kernel's list.
  const counts = (key: typeof DR) => Object.fromEntries(backup.service(key).destinations.map((d) => [d.config.address, [d.activeConns, d.inactConns]]));
  assert.deepEqual(counts(DR), { [RS[0]]: [1, 1], [RS[1]]: [1, 0] });
  assert.equal(backup.service(PERSIST).destinations.find((d) => d.config.address === RS[1])?.persistConns, 1);
  // The flow continues on the backup to the real server the master chose, not a new pick.
  const out = backup.processPacket(tcp("172.16.2.1", 43000, VIP, 80, "PA"), LinkType.RawIp, now + 5);
  assert.equal(out.verdict, Verdict.Forward);
  assert.equal(
    backup.connectionRecords(now + 5).find((e) => e.snapshot.client.port === 43000)?.destinationId,
    backup.connectionRecords(now).find((e) => e.snapshot.client.port === 43000)?.destinationId,
  );
  // A refresh: the same connection, now CLOSE_WAIT and inactive, updates in place.
  const again = scapyRun<string[]>(PACK, [
    {
      version: 1,
      syncid: 3,
      conns: [
        { proto: 6, flags: DRF | ConnFlag.Inactive, state: 7, cport: 43000, vport: 80, dport: 80, timeout: 60, caddr: "172.16.2.1", vaddr: VIP, daddr: RS[1] },
      ],
    },
  ]);
  rx.handle(Buffer.from(again[0], "hex"));
  assert.equal(rx.stats.imported.updated, 1);
  const e = backup.connectionRecords(now).find((x) => x.snapshot.client.port === 43000);
  assert.equal(e?.snapshot.state, "CLOSE_WAIT");
  assert.equal(e?.active, false);
  assert.deepEqual(counts(DR), { [RS[0]]: [1, 1], [RS[1]]: [0, 1] });
});

test("table refresh (beyond the kernel): an idle established connection is queued again once ageMs has passed", () => {
  const b = director();
  const records: SyncRecord[] = [];
  b.onSync((r) => records.push(...r));
  for (const f of ["S", "A", "PA"]) b.processPacket(tcp("172.16.3.1", 44000, VIP, 80, f), LinkType.RawIp, 1000);
  // A flow still in SYN_RECV is not one the kernel would carry.
  b.processPacket(tcp("172.16.3.2", 44001, VIP, 80, "S"), LinkType.RawIp, 1000);
  assert.equal(records.length, 1, "the kernel's rules: the third packet");
  assert.equal(b.refreshSync(1500, 1000, 4096), 0, "queued 500 ms ago: not yet");
  assert.equal(b.refreshSync(2000, 1000, 4096), 1, "1000 ms later: queued again");
  assert.equal(records.at(-1)?.client.port, 44000);
  assert.equal(b.refreshSync(2100, 1000, 4096), 0);
  // The budget bounds the records looked at; the cursor carries on from there.
  let total = 0;
  for (let i = 0; i < 8; i++) total += b.refreshSync(4000, 1000, 512);
  assert.equal(total, 1, "the whole table (4096 records) walked in 512-record steps finds it once");
});
