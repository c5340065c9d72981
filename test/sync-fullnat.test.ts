// Full-NAT connections in the connection sync: a master's full-NAT flow goes out with its
// local address and port in our optional parameter (src/sync/wire.ts, OPT_LOCAL_ADDRESS),
// and a backup configured like it (same service, real server and local address pool)
// creates the same flow, rewrites both ways as the master does (judged by tshark with
// checksum validation), and keeps the synced local port from its own new flows until the
// connection goes. Wireshark's IPVS dissector reads the message with the option; a message
// packed by Python from the kernel's struct layout, with the option appended, is read too.
//
// The option's type has IPVS_OPT_F_PARAM (1 << 6) set: a kernel backup skips it in
// ip_vs_proc_sync_conn's `default:` case (net/netfilter/ipvs/ip_vs_sync.c, Linux 6.x,
// torvalds/linux 002c6ca7) and still creates the connection, as a plain masq one.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, DropReason, LinkType, PcapLinkType, Verdict, type ServiceKey } from "../src/index.js";
import type { SyncRecord } from "../src/balancer/sync-records.js";
import { buildPacket } from "../src/testing/packets.js";
import { ConnFlag, decodeMessage, OPT_LOCAL_ADDRESS, SyncReceiver, SyncSender } from "../src/sync/index.js";
import { scapyBuild, scapyRun } from "./support/scapy.js";
import { assertFrameValid, tsharkDissect } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const SKIP = { skip: skipUnless("scapy", "tshark") };
const SCAPY = { skip: skipUnless("scapy") };

type Family = 4 | 6;
const ADDR = {
  4: { cip: "198.51.100.7", cip2: "198.51.100.8", vip: "203.0.113.10", rip: "10.20.0.5", lip: ["10.20.0.250", "10.20.0.251"] },
  6: { cip: "2001:db8:c::7", cip2: "2001:db8:c::8", vip: "2001:db8:f::10", rip: "2001:db8:d::5", lip: ["2001:db8:d::fa", "2001:db8:d::fb"] },
} as const;
const CPORT = 40000;
const VPORT = 80;
const RPORT = 8080;
const keyOf = (family: Family): ServiceKey => ({ kind: "address", protocol: "tcp", address: ADDR[family].vip, port: VPORT });

/** A director with the full-NAT service; `lips` picks its pool (by index into ADDR.lip). */
function director(family: Family, lips: readonly number[] = [0], options: ConstructorParameters<typeof Balancer>[0] = {}): Balancer {
  const b = new Balancer({ connections: 256, ...options });
  const key = keyOf(family);
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(key, { address: ADDR[family].rip, port: RPORT, method: "fullnat", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  for (const i of lips) b.addLocalAddress(key, ADDR[family].lip[i]);
  return b;
}

const ip = (family: Family, src: string, dst: string) => (family === 4 ? `IP(src='${src}',dst='${dst}',ttl=64)` : `IPv6(src='${src}',dst='${dst}',hlim=64)`);
const fromClient = (family: Family, flags: string, cport = CPORT, cip: string = ADDR[family].cip) =>
  `${ip(family, cip, ADDR[family].vip)}/TCP(sport=${cport},dport=${VPORT},flags='${flags}',seq=1000,ack=1)/b'full nat sync'`;
const fromServer = (family: Family, lip: string, lport: number, flags = "PA") =>
  `${ip(family, ADDR[family].rip, lip)}/TCP(sport=${RPORT},dport=${lport},flags='${flags}',seq=5000,ack=1001)/b'reply'`;

/** Source and destination ports of a rewritten IPv4 / IPv6 TCP packet (no IP options). */
function ports(p: Uint8Array, family: Family): { sport: number; dport: number } {
  const l4 = family === 4 ? 20 : 40;
  return { sport: (p[l4] << 8) | p[l4 + 1], dport: (p[l4 + 2] << 8) | p[l4 + 3] };
}

/** What tshark reads of a packet, every checksum verified good. */
function judge(packet: Uint8Array, family: Family, label: string): string {
  const [f] = tsharkDissect(PcapLinkType.Raw, [packet]);
  assertFrameValid(f, label);
  const v = (k: string) => f.fields.get(k)?.[0];
  if (family === 4) assert.equal(v("ip.checksum.status"), "1", `${label}: IP header checksum`);
  assert.equal(v("tcp.checksum.status"), "1", `${label}: TCP checksum`);
  const l3 = family === 4 ? "ip" : "ipv6";
  return `${v(`${l3}.src`)}:${v("tcp.srcport")} -> ${v(`${l3}.dst`)}:${v("tcp.dstport")}`;
}

/**
 * A full-NAT flow on the master (SYN, the real server's SYN-ACK, ACK, data: the data is the
 * sync_threshold's third packet) and the sync messages it sends, through SyncSender.
 */
function masterFlow(master: Balancer, family: Family, t0: number): { lport: number; messages: Buffer[] } {
  const messages: Buffer[] = [];
  const sender = new SyncSender(master, {
    syncId: 1,
    clock: () => t0,
    send: (m, done) => {
      messages.push(m);
      done();
    },
  });
  const [syn, ack, data] = scapyBuild([fromClient(family, "S"), fromClient(family, "A"), fromClient(family, "PA")]);
  const out = master.processPacket(syn, LinkType.RawIp, t0);
  assert.equal(out.verdict, Verdict.Forward);
  const lport = ports(out.packet, family).sport;
  const [synack] = scapyBuild([fromServer(family, ADDR[family].lip[0], lport, "SA")]);
  assert.equal(master.processPacket(synack, LinkType.RawIp, t0 + 1).verdict, Verdict.Forward);
  assert.equal(master.processPacket(ack, LinkType.RawIp, t0 + 2).verdict, Verdict.Forward);
  assert.equal(master.processPacket(data, LinkType.RawIp, t0 + 3).verdict, Verdict.Forward);
  sender.flush();
  sender.close();
  return { lport, messages };
}

/** The record a master with one full-NAT flow would send, for direct imports. */
function record(family: Family, lport: number, over: Partial<SyncRecord> = {}): SyncRecord {
  const a = ADDR[family];
  return {
    protocol: 6,
    family,
    client: { address: a.cip, port: CPORT },
    virtual: { address: a.vip, port: VPORT },
    destination: { address: a.rip, port: RPORT },
    state: 1,
    template: false,
    inactive: false,
    method: "fullnat",
    fwmark: 0,
    timeoutMs: 900_000,
    local: { address: a.lip[0], port: lport },
    ...over,
  };
}

for (const family of [4, 6] as const) {
  test(
    `IPv${family}: master -> message -> backup: the backup holds (client, VIP, LIP, lport, RIP) and rewrites both ways as the master; tshark verifies every checksum`,
    SKIP,
    () => {
      const a = ADDR[family];
      const master = director(family);
      const { lport, messages } = masterFlow(master, family, 1000);
      assert.equal(messages.length, 1);
      // On the wire: the kernel's masq flags, and our option with the local address and port.
      const [c] = decodeMessage(messages[0]).connections;
      assert.equal(c.flags & ConnFlag.FwdMask, ConnFlag.Masq);
      assert.equal(c.state, 1, "ESTABLISHED");
      assert.ok(c.local, "the connection carries its local address");
      // Its option type, right after the connection's fixed part: IPVS_OPT_F_PARAM (64) set, so
      // a kernel backup skips it; 0x2c is none of the kernel's options (1, 2, 3).
      const type = messages[0][8 + (family === 4 ? 36 : 72)];
      assert.equal(type, OPT_LOCAL_ADDRESS);
      assert.deepEqual([type & 0x40, type & ~0x40], [0x40, 0x2c]);
      // Wireshark's IPVS dissector reads the connection, the option counted in its size, and finds nothing malformed.
      const [frame] = tsharkDissect(
        PcapLinkType.Raw,
        [
          buildPacket({
            protocol: "udp",
            src: family === 4 ? "10.20.0.1" : "2001:db8:d::1",
            dst: family === 4 ? "224.0.0.81" : "ff02::51",
            sport: 8848,
            dport: 8848,
            payload: messages[0],
          }),
        ],
        { decodeAs: ["udp.port==8848,ipvs"] },
      );
      assertFrameValid(frame, "sync message");
      const ws = (k: string) => frame.fields.get(`ipvs.${k}`)?.[0];
      const six = family === 6 ? "6" : "";
      assert.deepEqual(
        [ws(`caddr${six}`), ws(`vaddr${six}`), ws(`daddr${six}`), ws("flags.v1"), ws("size.v1")],
        [a.cip, a.vip, a.rip, "0x00000000", String(family === 4 ? 36 + 8 : 72 + 20)],
      );
      assert.deepEqual([Buffer.from(c.local.address), c.local.port], [Buffer.from(scapyRun<number[]>(PTON, { family, address: a.lip[0] })), lport]);

      const backup = director(family);
      const rx = new SyncReceiver(backup, { clock: () => 2000 });
      for (const m of messages) rx.handle(m);
      assert.equal(rx.stats.imported.created, 1);
      assert.deepEqual(backup.localAddresses(keyOf(family)), [{ address: a.lip[0], connections: 1, exhausted: 0 }]);

      // The flow's next packets, the same bytes to both directors: the same bytes out.
      const [data, reply] = scapyBuild([fromClient(family, "PA"), fromServer(family, a.lip[0], lport)]);
      const onMaster = [master.processPacket(data, LinkType.RawIp, 2001), master.processPacket(reply, LinkType.RawIp, 2002)];
      const onBackup = [backup.processPacket(data, LinkType.RawIp, 2001), backup.processPacket(reply, LinkType.RawIp, 2002)];
      for (const o of onBackup) assert.deepEqual([o.verdict, o.reason], [Verdict.Forward, DropReason.None]);
      assert.equal(judge(onBackup[0].packet, family, "client -> RS on the backup"), `${a.lip[0]}:${lport} -> ${a.rip}:${RPORT}`);
      assert.equal(judge(onBackup[1].packet, family, "RS -> client on the backup"), `${a.vip}:${VPORT} -> ${a.cip}:${CPORT}`);
      assert.deepEqual(Buffer.from(onBackup[0].packet), Buffer.from(onMaster[0].packet), "client -> RS: the master's bytes");
      assert.deepEqual(Buffer.from(onBackup[1].packet), Buffer.from(onMaster[1].packet), "RS -> client: the master's bytes");
    },
  );
}

/** Python: an address in network byte order (what the option must carry). */
const PTON = `
import sys, json, socket
s = json.loads(sys.stdin.read())
print(json.dumps(list(socket.inet_pton(socket.AF_INET6 if s['family'] == 6 else socket.AF_INET, s['address']))))
`;

test("a new flow on the backup never takes a synced local port; the port is free again once the synced connection expires", SCAPY, () => {
  const a = ADDR[4];
  const range = { localPortRange: [40000, 40001] as [number, number] };
  const master = director(4, [0], range);
  const { lport, messages } = masterFlow(master, 4, 1000);
  assert.equal(lport, 40000);
  const backup = director(4, [0], range);
  const rx = new SyncReceiver(backup, { clock: () => 2000 });
  for (const m of messages) rx.handle(m);
  assert.equal(rx.stats.imported.created, 1);
  const [n1, n2, n3] = scapyBuild([41001, 41002, 41003].map((p) => fromClient(4, "S", p, a.cip2)));
  const first = backup.processPacket(n1, LinkType.RawIp, 2001);
  assert.equal(first.verdict, Verdict.Forward);
  assert.equal(ports(first.packet, 4).sport, 40001, "the new flow skips the synced 40000");
  const second = backup.processPacket(n2, LinkType.RawIp, 2002);
  assert.deepEqual([second.verdict, second.reason], [Verdict.Drop, DropReason.LaddrExhausted], "both ports are held");
  assert.deepEqual(backup.localAddresses(keyOf(4)), [{ address: a.lip[0], connections: 2, exhausted: 1 }]);
  // Everything expires (the synced flow's 900 s included): its port is handed out again.
  backup.expireAll(2000 + 901_000);
  assert.equal(backup.localAddresses(keyOf(4))[0].connections, 0);
  const third = backup.processPacket(n3, LinkType.RawIp, 2000 + 902_000);
  assert.equal(third.verdict, Verdict.Forward);
  assert.equal(ports(third.packet, 4).sport, 40000, "the synced connection's port was freed");
});

test("refused and counted: no local address, one not in this backup's pool, or a local port a flow here already holds", SCAPY, () => {
  const a = ADDR[4];
  // The backup's pool has another address: nothing created.
  const other = director(4, [1]);
  assert.equal(other.importConnection(record(4, 40000), 1000), "no-local-address");
  // No local address at all (a kernel master, or an older lvs-wasm).
  const { local: _, ...bare } = record(4, 40000);
  assert.equal(other.importConnection({ ...bare, method: "masq" }, 1000), "no-local-address");
  assert.equal(other.connectionCount, 0);
  assert.deepEqual(other.localAddresses(keyOf(4)), [{ address: a.lip[1], connections: 0, exhausted: 0 }]);
  // A template names a real server only: imported without a local address.
  assert.equal(other.importConnection({ ...bare, template: true, client: { address: a.cip, port: 0 }, state: 0 }, 1000), "created");

  // The backup's own flow holds LIP:40000 toward the real server: the synced one is refused, its flow untouched.
  const busy = director(4, [0], { localPortRange: [40000, 40000] });
  const [own] = scapyBuild([fromClient(4, "S", 41000, a.cip2)]);
  const out = busy.processPacket(own, LinkType.RawIp, 1000);
  assert.equal(ports(out.packet, 4).sport, 40000);
  assert.equal(busy.importConnection(record(4, 40000), 1001), "local-port-in-use");
  assert.equal(busy.connectionCount, 1);
  const [reply] = scapyBuild([fromServer(4, a.lip[0], 40000)]);
  const back = busy.processPacket(reply, LinkType.RawIp, 1002);
  assert.equal(back.verdict, Verdict.Forward);
  assert.deepEqual([...back.packet.subarray(16, 20)].join("."), a.cip2, "the reply still goes to the backup's own client");
});

test("updates: a state change keeps the entry and its one hold on the local address; a new local port replaces it and frees the old", SCAPY, () => {
  const a = ADDR[4];
  const backup = director(4);
  const key = keyOf(4);
  assert.equal(backup.importConnection(record(4, 40000), 1000), "created");
  assert.equal(backup.importConnection(record(4, 40000, { state: 4, inactive: true, timeoutMs: 120_000 }), 1001), "updated");
  assert.equal(backup.connectionCount, 1);
  assert.equal(backup.localAddresses(key)[0].connections, 1);
  assert.equal(backup.connections(1001)[0].state, "FIN_WAIT");
  // The same client tuple with another local port (the client's port reused after a failover).
  assert.equal(backup.importConnection(record(4, 40005), 1002), "created");
  assert.equal(backup.connectionCount, 1);
  assert.equal(backup.localAddresses(key)[0].connections, 1);
  const [old, now] = scapyBuild([fromServer(4, a.lip[0], 40000), fromServer(4, a.lip[0], 40005)]);
  assert.equal(backup.processPacket(old, LinkType.RawIp, 1003).verdict, Verdict.Pass, "nothing answers the old port");
  assert.equal(backup.processPacket(now, LinkType.RawIp, 1004).verdict, Verdict.Forward);
});

/** Python: a v1 message packed from the kernel's struct layout, our option after a sequence option. */
const PACK = `
import sys, json, struct, socket
s = json.loads(sys.stdin.read())
fam = socket.AF_INET6 if s['family'] == 6 else socket.AF_INET
addrs = b''.join(socket.inet_pton(fam, s[k]) for k in ('caddr', 'vaddr', 'daddr'))
lip = socket.inet_pton(fam, s['lip'])
opts = struct.pack('!BB6I', 1, 24, 1, 2, 3, 4, 5, 6)
opts += struct.pack('!BB', s['opt'], len(lip) + 2) + lip + struct.pack('!H', s['lport'])
size = (72 if s['family'] == 6 else 36) + len(opts)
conn = struct.pack('!BBHIHHHHII', 1 if s['family'] == 6 else 0, 6, size, s['flags'], 1, s['cport'], s['vport'], s['dport'], 0, 900) + addrs + opts
conn += b'\\0' * ((4 - len(conn) % 4) % 4)
print(json.dumps(struct.pack('!BBHBbH', 0, 7, 8 + len(conn), 1, 1, 0).hex() + conn.hex()))
`;

for (const family of [4, 6] as const) {
  test(`IPv${family}: a message packed by Python from the kernel's layout, the option appended, is decoded and creates the full-NAT flow`, SCAPY, () => {
    const a = ADDR[family];
    const hex = scapyRun<string>(PACK, {
      family,
      caddr: a.cip,
      vaddr: a.vip,
      daddr: a.rip,
      lip: a.lip[0],
      lport: 45678,
      cport: CPORT,
      vport: VPORT,
      dport: RPORT,
      flags: ConnFlag.Masq | ConnFlag.InSeq,
      opt: 0x40 | 0x2c, // the documented wire value: IPVS_OPT_F_PARAM | 0x2c
    });
    const m = Buffer.from(hex, "hex");
    const d = decodeMessage(m);
    assert.deepEqual([d.fault, d.skipped, d.connections.length], [null, 0, 1]);
    assert.equal(d.connections[0].local?.port, 45678);
    assert.ok(d.connections[0].seq, "the kernel's own option before ours is read too");
    const backup = director(family);
    const rx = new SyncReceiver(backup, { clock: () => 1000 });
    rx.handle(m);
    assert.equal(rx.stats.imported.created, 1);
    const [reply] = scapyBuild([fromServer(family, a.lip[0], 45678)]);
    const back = backup.processPacket(reply, LinkType.RawIp, 1001);
    assert.equal(back.verdict, Verdict.Forward);
    assert.deepEqual(ports(back.packet, family), { sport: VPORT, dport: CPORT });
  });
}

test("a full-NAT connection that carries the PROXY protocol header is not synced (its sequence offset is not in the message)", SCAPY, () => {
  const master = director(4);
  master.editService({ key: keyOf(4), scheduler: "rr", schedulerFlags: [], onePacket: false, proxyProtocol: "v2" });
  const sent: string[] = [];
  master.onSync((records) => {
    for (const r of records) sent.push(`${r.client.port}`);
  });
  const pkts = scapyBuild(["S", "A", "PA", "PA"].map((f) => fromClient(4, f)));
  for (const [i, p] of pkts.entries()) master.processPacket(p, LinkType.RawIp, 1000 + i);
  master.refreshSync(5000, 0, 256);
  assert.deepEqual(sent, []);
});
