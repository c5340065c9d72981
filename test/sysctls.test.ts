// The IPVS sysctls that change decisions, each shown changing one (Linux 6.x semantics:
// tcp_conn_schedule and sctp_conn_schedule for sloppy_*, ip_vs_in_icmp for schedule_icmp,
// update_defense_level / ip_vs_todrop / ip_vs_random_dropentry for the defence strategies,
// is_new_conn_expected for conn_reuse_mode; defaults from ipvs-sysctl.rst).

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, Verdict, DropReason, DEFAULT_SYSCTLS, parseSysctlAssignment, type ServiceKey, type BalancerOptions } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { skipUnless } from "./support/tools.js";

const skip = skipUnless("scapy");
const VIP = "192.168.227.128";
const RS1 = "192.168.253.143";
const RS2 = "192.168.253.144";
const CLIENT = "10.0.0.1";
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 80 };
const ETH = "Ether(src='02:00:00:00:00:01',dst='02:00:00:00:00:fe')";
const tcp = (sp: number, flags: string, src = CLIENT) => `IP(src='${src}',dst='${VIP}')/TCP(sport=${sp},dport=80,flags='${flags}',seq=1000,ack=1)`;

type Method = "masq" | "route" | "tunnel";

function balancer(method: Method, options: BalancerOptions = {}, rss = [RS1]) {
  const b = new Balancer({ connections: 64, director: { mac: "02:00:00:00:00:fe", tunnelSource4: "192.168.253.1" }, ...options });
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  for (const rs of rss) {
    b.addDestination(KEY, {
      address: rs,
      port: 80,
      method,
      weight: 1,
      upperThreshold: 0,
      lowerThreshold: 0,
      ...(method === "tunnel" ? { tunnel: { type: "ipip", checksum: "nocsum" } as const } : {}),
    });
    b.setNeighbour(rs, "02:00:00:00:01:43");
  }
  return b;
}
/**
 * Builds every packet a test sends in one scapy run (a run costs about a second), keyed by
 * its expression: raw IP for NAT and TUN, Ethernet for DR (the frame goes to the real
 * server's MAC). `send` then looks the bytes up.
 */
function packets(method: Method, exprs: readonly string[]): Map<string, Uint8Array> {
  const unique = [...new Set(exprs)];
  const built = scapyBuild(unique.map((e) => (method === "route" ? `${ETH}/${e}` : e)));
  return new Map(unique.map((e, i) => [e, built[i]]));
}
function sender(method: Method, exprs: readonly string[]) {
  const built = packets(method, exprs);
  return (b: Balancer, packet: string, now = 0) => b.processPacket(built.get(packet)!, method === "route" ? LinkType.Ethernet : LinkType.RawIp, now);
}
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

test("the defaults are the kernel's (ipvs-sysctl.rst), and bad names or values are one-line errors that change nothing", () => {
  const b = new Balancer({ connections: 16 });
  assert.deepEqual(b.sysctls(), DEFAULT_SYSCTLS);
  assert.deepEqual(DEFAULT_SYSCTLS, {
    expire_nodest_conn: 0,
    expire_quiescent_template: 0,
    conn_reuse_mode: 1,
    sloppy_tcp: 0,
    sloppy_sctp: 0,
    schedule_icmp: 0,
    secure_tcp: 0,
    drop_entry: 0,
    drop_packet: 0,
    amemthresh: 1024,
    am_droprate: 10,
  });
  assert.throws(() => b.setSysctl("sloppy_tcp", 2), /^ConfigError: sysctl sloppy_tcp: 2 is not an integer in 0\.\.1$/);
  assert.throws(() => b.setSysctl("nope" as "sloppy_tcp", 1), /unknown name "nope"/);
  assert.throws(() => b.setSysctl("amemthresh", 0), /not an integer in 1\.\./);
  assert.deepEqual(b.sysctls(), DEFAULT_SYSCTLS);
  assert.deepEqual(parseSysctlAssignment("net.ipv4.vs.sloppy_tcp=1"), { name: "sloppy_tcp", value: 1 });
  assert.throws(() => parseSysctlAssignment("sloppy_tcp"), /is not NAME=VALUE/);
});

for (const method of ["masq", "route", "tunnel"] as const) {
  test(`sloppy_tcp (${method}): a mid-stream ACK with no connection creates one, ESTABLISHED and active; never a RST`, { skip }, () => {
    const send = sender(method, [tcp(40001, "PA"), tcp(40002, "R"), tcp(40003, "F")]);
    const strict = balancer(method);
    const ack = send(strict, tcp(40001, "PA"));
    assert.equal(ack.verdict, Verdict.Pass, "default: only a SYN creates a connection (the host gets the rest)");
    assert.equal(strict.connectionCount, 0);

    const sloppy = balancer(method, { sysctls: { sloppy_tcp: 1 } });
    const out = send(sloppy, tcp(40001, "PA"));
    assert.equal(out.verdict, Verdict.Forward);
    const [c] = sloppy.connections(0);
    assert.equal(c.state, "ESTABLISHED", "INPUT ack from NONE: ESTABLISHED (Linux 6.x tcp_states)");
    assert.equal(sloppy.listing().services[0].destinations[0].activeConns, 1);
    assert.equal(send(sloppy, tcp(40002, "R")).verdict, Verdict.Pass, "a RST never creates one");
    assert.equal(send(sloppy, tcp(40003, "F")).verdict, Verdict.Forward, "a FIN does (a takeover in the middle of a close)");
    assert.equal(sloppy.connectionCount, 2);
  });
}

// lvs-wasm's parser does not read SCTP ports yet (every SCTP packet has ports 0 to it), so
// SCTP reaches a service only through a firewall mark (-f), and flows differ by address
// here; the INIT / ABORT rule is the kernel's.
test("sloppy_sctp: only INIT creates an SCTP connection, any chunk but ABORT with sloppy_sctp", { skip }, () => {
  const key: ServiceKey = { kind: "fwmark", fwmark: 7, family: 4 };
  const make = (sloppy: number) => {
    const b = new Balancer({ connections: 16, director: { mac: "02:00:00:00:00:fe" }, sysctls: { sloppy_sctp: sloppy } });
    b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
    b.addDestination(key, { address: RS1, port: 0, method: "route", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    b.setNeighbour(RS1, "02:00:00:00:01:43");
    return b;
  };
  const [init, data, abort] = scapyBuild([
    `${ETH}/IP(src='${CLIENT}',dst='${VIP}')/SCTP(sport=5000,dport=3868)/SCTPChunkInit()`,
    `${ETH}/IP(src='10.0.0.2',dst='${VIP}')/SCTP(sport=5001,dport=3868)/SCTPChunkData(data=b'x')`,
    `${ETH}/IP(src='10.0.0.3',dst='${VIP}')/SCTP(sport=5002,dport=3868)/SCTPChunkAbort()`,
  ]);
  const strict = make(0);
  assert.equal(strict.processPacket(init, LinkType.Ethernet, 0, 7).verdict, Verdict.Forward);
  assert.equal(strict.processPacket(data, LinkType.Ethernet, 0, 7).verdict, Verdict.Pass);
  const sloppy = make(1);
  assert.equal(sloppy.processPacket(data, LinkType.Ethernet, 0, 7).verdict, Verdict.Forward);
  assert.equal(sloppy.processPacket(abort, LinkType.Ethernet, 0, 7).verdict, Verdict.Pass, "ABORT never");
});

test("schedule_icmp: an ICMP error quoting VIP -> client traffic this director never saw is scheduled as the client's flow", { skip }, () => {
  // A router tells the VIP that the client's path needs smaller packets; the reply it quotes
  // came from a real server directly (DR), or from another director behind ECMP.
  const icmp = `${ETH}/IP(src='10.99.0.1',dst='${VIP}')/ICMP(type=3,code=4,nexthopmtu=1400)/IP(src='${VIP}',dst='${CLIENT}')/TCP(sport=80,dport=40005,flags='A')`;
  const [frame, ack] = scapyBuild([icmp, `${ETH}/${tcp(40005, "A")}`]);
  const off = balancer("route", {}, [RS1, RS2]);
  assert.equal(off.processPacket(frame, LinkType.Ethernet, 0).verdict, Verdict.Pass);
  assert.equal(off.connectionCount, 0);

  const on = balancer("route", { sysctls: { schedule_icmp: 1 } }, [RS1, RS2]);
  const out = on.processPacket(frame, LinkType.Ethernet, 0);
  assert.equal(out.verdict, Verdict.Forward);
  const [c] = on.connections(0);
  assert.deepEqual([c.client.address, c.client.port, c.virtual.address, c.virtual.port], [CLIENT, 40005, VIP, 80]);
  assert.equal(c.destination.address, RS2, "rr's first pick: the head of the newest-first list");
  // the client's next segment follows the connection the error created
  const next = on.processPacket(ack, LinkType.Ethernet, 1);
  assert.equal(next.verdict, Verdict.Forward);
  assert.equal(on.connectionCount, 1);
  assert.equal(on.connections(1)[0].destination.address, RS2);
});

test("secure_tcp: while in force a client's ACK does not promote SYN_RECV (tcp_states_dos); mode 1 turns it on when the table is short of room", {
  skip,
}, () => {
  const send = sender(
    "masq",
    [...range(41000, 4), ...range(42000, 4)].flatMap((p) => [tcp(p, "S"), tcp(p, "A")]),
  );
  const walk = (b: Balancer, port: number) => {
    send(b, tcp(port, "S"));
    send(b, tcp(port, "A"));
    return b.connections(0).find((c) => c.client.port === port)!.state;
  };
  assert.equal(walk(balancer("masq"), 41000), "ESTABLISHED");
  assert.equal(walk(balancer("masq", { sysctls: { secure_tcp: 3 } }), 41000), "SYN_RECV");
  // mode 1: amemthresh 60 of 64 entries free is "short" as soon as 5 are used
  const b = balancer("masq", { sysctls: { secure_tcp: 1, amemthresh: 60 } });
  assert.equal(walk(b, 41001), "ESTABLISHED", "room enough: the normal table");
  for (let p = 42000; p < 42004; p++) send(b, tcp(p, "S"));
  b.tick(1000);
  assert.equal(b.sysctls().secure_tcp, 2, "short of room: mode 1 became 2");
  assert.equal(walk(b, 41002), "SYN_RECV");
  b.expireAll(10_000_000);
  b.tick(10_000_000);
  assert.equal(b.sysctls().secure_tcp, 1, "room again: back to 1");
  assert.equal(walk(b, 41003), "ESTABLISHED");
});

test("drop_packet: mode 3 refuses one new connection in every am_droprate; mode 1 only when short of room, at amemthresh / (amemthresh - free)", {
  skip,
}, () => {
  const send = sender("masq", [...range(43000, 9), ...range(44000, 4), ...range(45000, 16)].map((p) => tcp(p, "S")).concat(tcp(43001, "A")));
  const b = balancer("masq", { sysctls: { drop_packet: 3, am_droprate: 3 } });
  const verdicts = range(43000, 9).map((p) => send(b, tcp(p, "S")));
  // the kernel's drop_counter starts at 0, so the first new connection is refused, then every third
  assert.deepEqual(
    verdicts.map((v) => v.verdict),
    [Verdict.Drop, Verdict.Forward, Verdict.Forward, Verdict.Drop, Verdict.Forward, Verdict.Forward, Verdict.Drop, Verdict.Forward, Verdict.Forward],
  );
  assert.equal(verdicts[0].reason, DropReason.TableFull);
  // known connections are never refused
  assert.equal(send(b, tcp(43001, "A")).verdict, Verdict.Forward);

  const m1 = balancer("masq", { sysctls: { drop_packet: 1, amemthresh: 64 } }); // 64 free < 64? no: not short
  const before = range(44000, 4).map((p) => send(m1, tcp(p, "S")).verdict);
  assert.deepEqual(before, [Verdict.Forward, Verdict.Forward, Verdict.Forward, Verdict.Forward]);
  m1.tick(1000); // 60 free of amemthresh 64: rate 64 / (64 - 60) = 16
  assert.equal(m1.sysctls().drop_packet, 2);
  const after = range(45000, 16).map((p) => send(m1, tcp(p, "S")).verdict);
  assert.equal(after.filter((v) => v === Verdict.Drop).length, 1);
  assert.equal(after[15], Verdict.Drop);
});

test("drop_entry: in force, the once-a-second timer drops half-open entries from a random 1/32 of the table, never established ones", { skip }, () => {
  const send = sender("masq", [...range(46000, 40).map((p) => tcp(p, "S")), ...range(47000, 10).flatMap((p) => [tcp(p, "S"), tcp(p, "A")])]);
  const run = (dropEntry: number) => {
    const b = balancer("masq", { sysctls: { drop_entry: dropEntry } });
    for (const p of range(46000, 40)) send(b, tcp(p, "S")); // SYN_RECV
    for (const p of range(47000, 10)) {
      send(b, tcp(p, "S"));
      send(b, tcp(p, "A")); // ESTABLISHED
    }
    for (let s = 1; s <= 30; s++) b.tick(s * 1000);
    const states = b.connections(30_000).map((c) => c.state);
    return { halfOpen: states.filter((s) => s === "SYN_RECV").length, established: states.filter((s) => s === "ESTABLISHED").length };
  };
  assert.deepEqual(run(0), { halfOpen: 40, established: 10 });
  const on = run(3);
  assert.equal(on.established, 10);
  assert.ok(on.halfOpen < 40, `some half-open entries dropped: ${on.halfOpen} left`);
  assert.ok(on.halfOpen >= 40 - 2 * 30, "at most 64 >> 5 = 2 probes a second");
});

test("conn_reuse_mode: 0 keeps a SYN on a TIME_WAIT connection, 1 reschedules it, 3 also a DR FIN_WAIT one", { skip }, () => {
  const nat = sender("masq", [tcp(48000, "S"), tcp(48000, "F")]);
  const dr = sender("route", [tcp(49000, "S"), tcp(49000, "A"), tcp(49000, "FA")]);
  const timeWait = (mode: number) => {
    const b = balancer("masq", { sysctls: { conn_reuse_mode: mode } }, [RS1, RS2]);
    const first = nat(b, tcp(48000, "S")).packet.subarray(16, 20).join(".");
    nat(b, tcp(48000, "F")); // INPUT fin from SYN_RECV: TIME_WAIT
    assert.equal(b.connections(0)[0].state, "TIME_WAIT");
    const again = nat(b, tcp(48000, "S")).packet.subarray(16, 20).join(".");
    return [first, again];
  };
  assert.deepEqual(timeWait(0), [RS2, RS2], "mode 0: the old connection carries the SYN");
  assert.deepEqual(timeWait(1), [RS2, RS1], "mode 1: a new connection, rr moves on");

  const finWait = (mode: number) => {
    const b = balancer("route", { sysctls: { conn_reuse_mode: mode } }, [RS1, RS2]);
    dr(b, tcp(49000, "S"));
    dr(b, tcp(49000, "A"));
    dr(b, tcp(49000, "FA")); // INPUT-ONLY fin from ESTABLISHED: FIN_WAIT
    assert.equal(b.connections(0)[0].state, "FIN_WAIT");
    dr(b, tcp(49000, "S"));
    return b.listing().services[0].stats!.conns;
  };
  assert.equal(finWait(1), 1n, "mode 1: FIN_WAIT keeps the connection");
  assert.equal(finWait(3), 2n, "mode 3 (bit 1): a DR FIN_WAIT connection is replaced by a new one");
});

test("expire_nodest_conn and expire_quiescent_template set through setSysctl change what a removed or quiesced destination keeps", { skip }, () => {
  const send = sender("masq", [tcp(50000, "S"), tcp(50000, "A"), tcp(51000, "S"), tcp(51001, "S", "10.0.0.1")]);
  const run = (nodest: number) => {
    const b = balancer("masq", {}, [RS1, RS2]);
    b.setSysctl("expire_nodest_conn", nodest);
    send(b, tcp(50000, "S")); // to RS2
    b.deleteDestination(KEY, { address: RS2, port: 80 });
    return send(b, tcp(50000, "A"));
  };
  assert.equal(run(0).verdict, Verdict.Forward, "kept: the connection lives on with its removed destination");
  const dropped = run(1);
  assert.deepEqual([dropped.verdict, dropped.reason], [Verdict.Drop, DropReason.NoDestination]);

  const persist = (quiescent: number) => {
    const b = new Balancer({ connections: 64, sysctls: { expire_quiescent_template: quiescent } });
    b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false, persistence: { timeout: 300, netmask: "255.255.255.255" } });
    for (const rs of [RS1, RS2]) b.addDestination(KEY, { address: rs, port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    send(b, tcp(51000, "S"));
    b.editDestination(KEY, { address: RS2, port: 80, method: "masq", weight: 0, upperThreshold: 0, lowerThreshold: 0 });
    return send(b, tcp(51001, "S")).packet.subarray(16, 20).join(".");
  };
  assert.equal(persist(0), RS2, "the template still pins the client to the quiesced RS2");
  assert.equal(persist(1), RS1, "the template no longer pins: scheduled afresh");
});
