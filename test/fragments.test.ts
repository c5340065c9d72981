// IP fragments through the Balancer. The kernel reassembles before IPVS (nf_defrag_ipv4 /
// nf_defrag_ipv6, Linux 6.x), so a fragmented datagram is balanced as one: every fragment
// must reach the real server its first fragment was scheduled to, with headers a receiver
// reassembles into a whole datagram with a good checksum. Fragments are built by scapy
// (fragment() / fragment6()); tshark, with its own reassembly on, judges what comes out.
// Abuse (overlaps, duplicates, oversize, timeouts, floods) is dropped, counted, and leaves
// other flows alone; the checks follow ip_frag_queue / inet_frag_queue_insert (Linux 6.x).

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, Desc, DROP_REASON_NAMES, DropReason, LinkType, PcapLinkType, Verdict, type FragmentOptions, type ServiceKey } from "../src/index.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Director } from "../src/runtime/director.js";
import { scapyBuild, scapyRun } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const skip = skipUnless("scapy", "tshark");

const VIP = { 4: "192.168.227.128", 6: "fd00:227::128" } as const;
const RS = { 4: ["192.168.253.143", "192.168.253.144"], 6: ["fd00:253::143", "fd00:253::144"] } as const;
const CLIENT = { 4: "10.0.0.1", 6: "fd00:10::1" } as const;
const VPORT = 8053;
const RPORT_NAT = 9053;
type Family = 4 | 6;
type Method = "masq" | "route" | "tunnel" | "fullnat";
/** Full NAT's local address per family. */
const LIP = { 4: "192.168.253.250", 6: "fd00:253::fa" } as const;
const NONE = 0xffffffff;

function balancer(method: Method, fragments?: FragmentOptions, slots = 64): Balancer {
  const b = new Balancer({
    connections: 1024,
    slots,
    fragments,
    director: { tunnelSource4: "192.168.10.1", tunnelSource6: "fd00:10::fe" },
  });
  for (const family of [4, 6] as const) {
    const key: ServiceKey = { kind: "address", protocol: "udp", address: VIP[family], port: VPORT };
    b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
    for (const rs of RS[family]) {
      b.addDestination(key, {
        address: rs,
        port: method === "masq" || method === "fullnat" ? RPORT_NAT : VPORT,
        method,
        weight: 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        ...(method === "tunnel" ? { tunnel: { type: "ipip", checksum: "nocsum" } as const } : {}),
      });
    }
    if (method === "fullnat") b.addLocalAddress(key, LIP[family]);
  }
  return b;
}

interface Datagram {
  readonly v: Family;
  readonly src: string;
  readonly dst: string;
  readonly id: number;
  readonly sport: number;
  readonly dport: number;
  /** UDP payload bytes. */
  readonly size: number;
  /** scapy's fragsize (IPv4: payload bytes per fragment; IPv6: bytes per fragment). */
  readonly frag: number;
}

const FRAGMENT_PROGRAM = `
import sys, json, logging
logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
from scapy.all import *
out = []
for s in json.loads(sys.stdin.read()):
    data = bytes((i * 7 + s['id']) & 0xff for i in range(s['size']))
    if s['v'] == 4:
        p = IP(src=s['src'], dst=s['dst'], id=s['id'], ttl=64)/UDP(sport=s['sport'], dport=s['dport'])/Raw(data)
        fr = fragment(p, fragsize=s['frag'])
    else:
        p = IPv6(src=s['src'], dst=s['dst'], hlim=64)/IPv6ExtHdrFragment(id=s['id'])/UDP(sport=s['sport'], dport=s['dport'])/Raw(data)
        fr = fragment6(p, s['frag'])
    out.append([bytes(f).hex() for f in fr])
print(json.dumps(out))
`;

/** Each datagram's fragments, in order, as scapy cut them. */
function fragmentsOf(datagrams: readonly Datagram[]): Uint8Array[][] {
  return scapyRun<string[][]>(FRAGMENT_PROGRAM, datagrams).map((set) => set.map((h) => Uint8Array.from(Buffer.from(h, "hex"))));
}

interface Out {
  readonly verdict: number;
  readonly reason: string;
  readonly destination: number;
  readonly packet: Uint8Array;
}

/** Pushes frames one process() call each (at now, now + 1, ...) and collects every filled slot. */
function push(b: Balancer, frames: readonly Uint8Array[], now = 1000): Out[] {
  const out: Out[] = [];
  frames.forEach((f, i) => {
    b.slots.write(0, f, LinkType.RawIp, 0);
    const n = b.process(1, now + i);
    out.push(...collect(b, n));
  });
  return out;
}

function collect(b: Balancer, n: number): Out[] {
  const s = b.slots;
  return Array.from({ length: n }, (_, i) => ({
    verdict: s.field(i, Desc.Verdict),
    reason: DROP_REASON_NAMES[s.field(i, Desc.Reason)],
    destination: s.field(i, Desc.Action),
    packet: s.view(i).slice(),
  }));
}

const idOf = (family: Family, p: Uint8Array, inner = 0) =>
  family === 4 ? (p[inner + 4] << 8) | p[inner + 5] : Buffer.from(p.subarray(inner + 44, inner + 48)).readUInt32BE(0);
const addr = (family: Family, p: Uint8Array, at: number) =>
  family === 4
    ? [...p.subarray(at, at + 4)].join(".")
    : (Buffer.from(p.subarray(at, at + 16))
        .toString("hex")
        .match(/.{4}/g)
        ?.join(":") ?? "");
const dstOf = (family: Family, p: Uint8Array) => addr(family, p, family === 4 ? 16 : 24);
const srcOf = (family: Family, p: Uint8Array) => addr(family, p, family === 4 ? 12 : 8);
const expand6 = (a: string) => {
  const [h, t = ""] = a.split("::");
  const hs = h ? h.split(":") : [];
  const ts = t ? t.split(":") : [];
  return [...hs, ...Array(8 - hs.length - ts.length).fill("0"), ...ts].map((w) => w.padStart(4, "0")).join(":");
};
const norm = (family: Family, a: string) => (family === 4 ? a : expand6(a));

/** tshark's reassembled datagrams among the frames: one entry per frame that completed one. */
function reassembled(frames: readonly Uint8Array[]): DissectedFrame[] {
  const dissected = tsharkDissect(PcapLinkType.Raw, frames, { defragment: true });
  dissected.forEach((f, i) => assertFrameValid(f, `frame ${i}`));
  return dissected.filter((f) => f.fields.has("ip.reassembled.length") || f.fields.has("ipv6.reassembled.length"));
}
const field = (f: DissectedFrame, name: string) => f.fields.get(name)?.at(-1);

/** Orders that matter: in order, reversed (the first comes last), and a shuffle. */
const ORDERS: Record<string, (n: number) => number[]> = {
  "in order": (n) => [...Array(n).keys()],
  reversed: (n) => [...Array(n).keys()].reverse(),
  shuffled: (n) => [...Array(n).keys()].sort((a, b) => ((a * 5 + 3) % n) - ((b * 5 + 3) % n)),
};

for (const method of ["masq", "route", "tunnel", "fullnat"] as const) {
  for (const family of [4, 6] as const) {
    test(`${method} IPv${family}: every fragment of a datagram reaches the one real server of its first, in any order, and reassembles whole with good checksums`, {
      skip,
    }, () => {
      const b = balancer(method);
      const orders = Object.entries(ORDERS);
      const datagrams = orders.map(
        (_, k): Datagram => ({
          v: family,
          src: CLIENT[family],
          dst: VIP[family],
          id: 0x1200 + k,
          sport: 40000 + k,
          dport: VPORT,
          size: 3000 + k * 111,
          frag: 1000,
        }),
      );
      const sets = fragmentsOf(datagrams);
      // The inputs themselves reassemble cleanly (the judge agrees with the builder).
      assert.equal(reassembled(sets.flat()).length, datagrams.length, "scapy's fragments reassemble in tshark");
      // The datagrams, one client and one server apart from the IP id, interleaved: each in
      // its own order, taking turns, so that only the id tells their fragments apart.
      const queues = orders.map(([, order], k) => order(sets[k].length).map((i) => sets[k][i]));
      const frames: Uint8Array[] = [];
      for (let turn = 0; queues.some((q) => q.length > 0); turn++) {
        const q = queues[turn % queues.length];
        if (q.length > 0) frames.push(q.shift()!);
      }
      const out = push(b, frames);

      assert.equal(out.length, frames.length + out.filter((o) => o.reason === "fragment-held").length, "every held fragment came out again");
      const sent = out.filter((o) => o.verdict === Verdict.Forward);
      assert.equal(sent.length, frames.length, `all forwarded: ${JSON.stringify(out.filter((o) => o.verdict !== Verdict.Forward).map((o) => o.reason))}`);
      const inner = method === "tunnel" ? (family === 4 ? 20 : 40) : 0;
      const destinationsById = new Map<number, Set<number>>();
      for (const o of sent) {
        const id = idOf(family, o.packet, inner);
        destinationsById.set(id, (destinationsById.get(id) ?? new Set()).add(o.destination));
      }
      assert.equal(destinationsById.size, datagrams.length);
      for (const [id, dests] of destinationsById) assert.equal(dests.size, 1, `datagram ${id}: one real server`);
      const used = new Set([...destinationsById.values()].map((d) => [...d][0]));
      assert.equal(used.size, 2, "rr spread the datagrams over both real servers");

      const whole = reassembled(sent.map((o) => o.packet));
      assert.equal(whole.length, datagrams.length, "tshark reassembled every datagram");
      for (const f of whole) {
        assert.equal(field(f, "udp.checksum.status"), "1", "the reassembled datagram's UDP checksum is good");
        const id = Number(field(f, family === 4 ? "ip.id" : "ipv6.fraghdr.ident"));
        const d = datagrams.find((x) => x.id === id)!;
        assert.ok(d, `datagram id ${id}`);
        assert.equal(Number(field(f, "udp.length")), d.size + 8);
        assert.equal(Number(field(f, "udp.dstport")), method === "masq" || method === "fullnat" ? RPORT_NAT : VPORT);
      }
      // Where the fragments went: NAT rewrote each one's destination; DR kept the VIP; TUN
      // addressed the outer header to the real server.
      for (const o of sent) {
        const target = method === "route" ? VIP[family] : b.scheduler.destination(o.destination).address;
        assert.equal(norm(family, dstOf(family, o.packet)), norm(family, target));
        // Full NAT: every fragment, the later ones too, leaves from the local address.
        if (method === "fullnat") assert.equal(norm(family, srcOf(family, o.packet)), norm(family, LIP[family]));
      }
      const stats = b.fragmentStats();
      assert.equal(stats.completed, datagrams.length);
      assert.equal(stats.released, stats.held);
      assert.ok(stats.held > 0, "the out-of-order datagrams had fragments held");
      assert.equal(stats.memoryInUse, 0, "nothing stays held");
      assert.equal(stats.datagramsInUse, 0, "completed datagrams leave the table");
      // The service counts each datagram once (as the kernel counts a reassembled skb).
      const svc = b.service({ kind: "address", protocol: "udp", address: VIP[family], port: VPORT });
      assert.equal(svc.stats!.inpkts, BigInt(datagrams.length));
    });
  }
}

for (const family of [4, 6] as const) {
  test(`masq IPv${family}: a fragmented reply from the real server leaves from VIP:vport, whole and with good checksums`, { skip }, () => {
    const b = balancer("masq");
    const [hello] = scapyBuild([
      family === 4
        ? `IP(src='${CLIENT[4]}',dst='${VIP[4]}')/UDP(sport=41000,dport=${VPORT})/Raw(b'hi')`
        : `IPv6(src='${CLIENT[6]}',dst='${VIP[6]}')/UDP(sport=41000,dport=${VPORT})/Raw(b'hi')`,
    ]);
    const first = push(b, [hello])[0];
    assert.equal(first.verdict, Verdict.Forward);
    const rs = b.scheduler.destination(first.destination).address;
    const [set] = fragmentsOf([{ v: family, src: rs, dst: CLIENT[family], id: 0x4242, sport: RPORT_NAT, dport: 41000, size: 2500, frag: 800 }]);
    const out = push(b, [...set].reverse(), 2000);
    const sent = out.filter((o) => o.verdict === Verdict.Forward);
    assert.equal(sent.length, set.length);
    for (const o of sent) assert.equal(norm(family, srcOf(family, o.packet)), norm(family, VIP[family]), "source back to the VIP");
    const [whole] = reassembled(sent.map((o) => o.packet));
    assert.ok(whole, "tshark reassembled the reply");
    assert.equal(field(whole, "udp.checksum.status"), "1");
    assert.equal(Number(field(whole, "udp.srcport")), VPORT);
    assert.equal(Number(field(whole, "udp.length")), 2508);
  });
}

for (const family of [4, 6] as const) {
  test(`fullnat IPv${family}: a fragmented reply to the local address leaves from VIP:vport to the client, whole and with good checksums`, { skip }, () => {
    const b = balancer("fullnat");
    const [hello] = scapyBuild([
      family === 4
        ? `IP(src='${CLIENT[4]}',dst='${VIP[4]}')/UDP(sport=41000,dport=${VPORT})/Raw(b'hi')`
        : `IPv6(src='${CLIENT[6]}',dst='${VIP[6]}')/UDP(sport=41000,dport=${VPORT})/Raw(b'hi')`,
    ]);
    const first = push(b, [hello])[0];
    assert.equal(first.verdict, Verdict.Forward);
    const rs = b.scheduler.destination(first.destination).address;
    const lport = family === 4 ? (first.packet[20] << 8) | first.packet[21] : (first.packet[40] << 8) | first.packet[41];
    const [set] = fragmentsOf([{ v: family, src: rs, dst: LIP[family], id: 0x4243, sport: RPORT_NAT, dport: lport, size: 2500, frag: 800 }]);
    const out = push(b, [...set].reverse(), 2000);
    const sent = out.filter((o) => o.verdict === Verdict.Forward);
    assert.equal(sent.length, set.length);
    for (const o of sent) {
      assert.equal(norm(family, srcOf(family, o.packet)), norm(family, VIP[family]), "source back to the VIP");
      assert.equal(norm(family, dstOf(family, o.packet)), norm(family, CLIENT[family]), "destination back to the client");
    }
    const [whole] = reassembled(sent.map((o) => o.packet));
    assert.ok(whole, "tshark reassembled the reply");
    assert.equal(field(whole, "udp.checksum.status"), "1");
    assert.equal(Number(field(whole, "udp.srcport")), VPORT);
    assert.equal(Number(field(whole, "udp.dstport")), 41000);
  });
}

test("one batch: fragments held in it are released into the free slots after it, in the same process() call", { skip }, () => {
  const b = balancer("masq");
  const [a, c] = fragmentsOf([
    { v: 4, src: CLIENT[4], dst: VIP[4], id: 1, sport: 42001, dport: VPORT, size: 4000, frag: 1000 },
    { v: 6, src: CLIENT[6], dst: VIP[6], id: 2, sport: 42002, dport: VPORT, size: 4000, frag: 1000 },
  ]);
  const frames = [...a.slice(1), ...c.slice(1), a[0], c[0]];
  frames.forEach((f, i) => b.slots.write(i, f, LinkType.RawIp, 0));
  const n = b.process(frames.length, 5000);
  assert.equal(n, frames.length + a.length - 1 + c.length - 1, "released fragments fill slots after the batch");
  const out = collect(b, n);
  assert.deepEqual(
    out.slice(0, frames.length).map((o) => o.reason),
    [...Array(a.length - 1 + c.length - 1).fill("fragment-held"), "none", "none"],
  );
  assert.ok(out.slice(frames.length).every((o) => o.verdict === Verdict.Forward));
  assert.equal(reassembled(out.filter((o) => o.verdict === Verdict.Forward).map((o) => o.packet)).length, 2);
});

test("a full batch leaves released fragments waiting; process(0) sends them", { skip }, () => {
  const b = balancer("masq", undefined, 4);
  const [a] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id: 3, sport: 42003, dport: VPORT, size: 3000, frag: 1000 }]);
  assert.equal(a.length, 4);
  const frames = [a[1], a[2], a[3], a[0]];
  frames.forEach((f, i) => b.slots.write(i, f, LinkType.RawIp, 0));
  assert.equal(b.process(4, 5000), 4, "no slot free after a full batch");
  const firstBatch = collect(b, 4);
  const n = b.process(0, 5001);
  assert.equal(n, 3);
  const released = collect(b, n);
  assert.ok(released.every((o) => o.verdict === Verdict.Forward && o.destination === firstBatch[3].destination));
  assert.equal(reassembled([firstBatch[3].packet, ...released.map((o) => o.packet)]).length, 1);
});

test("limitFragmentRelease: released fragments stay before the limit (a director's segment slots stay free); the rest wait", { skip }, () => {
  const b = balancer("masq", undefined, 8);
  b.limitFragmentRelease(3);
  const [a] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id: 4, sport: 42004, dport: VPORT, size: 4000, frag: 1000 }]);
  assert.equal(a.length, 5);
  // Four later fragments held one call at a time, then the first alone in slot 0.
  push(b, a.slice(1), 5000);
  b.slots.write(0, a[0], LinkType.RawIp, 0);
  assert.equal(b.process(1, 5010), 3, "the first, then two released into slots 1 and 2 only, not 3..7");
  const first = collect(b, 3);
  assert.equal(b.process(0, 5011), 2, "the other two at the next call");
  const rest = collect(b, 2);
  assert.ok([...first.slice(1), ...rest].every((o) => o.verdict === Verdict.Forward && o.destination === first[0].destination));
  assert.equal(reassembled([first[0].packet, ...first.slice(1).map((o) => o.packet), ...rest.map((o) => o.packet)]).length, 1);
  assert.throws(() => b.limitFragmentRelease(-1), /not a slot index/);
});

test("the Director sends released fragments: the first fragment last, all four leave for the real server in one step", { skip }, () => {
  const b = balancer("masq", undefined, 8);
  const [set] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id: 11, sport: 42011, dport: VPORT, size: 3000, frag: 1000 }]);
  const clients = new MemoryPacketIO("clients");
  const servers = new MemoryPacketIO("servers");
  const director = new Director({ balancer: b, io: [clients, servers], routes: [{ prefix: "192.168.253.0/24", io: servers }] });
  clients.inject(...[...set].reverse());
  assert.equal(director.runOnce(), set.length);
  assert.equal(servers.sent.length, set.length, "the held fragments went out after the first");
  assert.equal(director.stats.drops["fragment-held"], set.length - 1);
  assert.equal(reassembled(servers.sent.map((p) => p.slice())).length, 1);
});

test("tunnel MTU: fragments (DF clear) that no longer fit once encapsulated are dropped too-big, first and later alike", { skip }, () => {
  const b = new Balancer({ connections: 64, director: { tunnelSource4: "192.168.10.1", tunnelMtu: 1000 } });
  const key: ServiceKey = { kind: "address", protocol: "udp", address: VIP[4], port: VPORT };
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(key, {
    address: RS[4][0],
    port: VPORT,
    method: "tunnel",
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnel: { type: "ipip", checksum: "nocsum" },
  });
  // 996-byte fragments + 20 bytes of outer header > 1000; the 628-byte last one would fit,
  // but its datagram's first was dropped, so it is dropped with the first's reason.
  const [set] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id: 12, sport: 42012, dport: VPORT, size: 2552, frag: 976 }]);
  const out = push(b, set);
  assert.deepEqual(
    out.map((o) => o.reason),
    set.map(() => "too-big"),
  );
});

// ------------------------------------------------------------------------------- abuse

const abuse = (expressions: string[]) => scapyBuild(expressions);
const udpWhole = (sport: number) => `IP(src='${CLIENT[4]}',dst='${VIP[4]}')/UDP(sport=${sport},dport=${VPORT})/Raw(b'x'*100)`;
const frag4 = (id: number, off8: number, mf: boolean, bytes: number, sport = 43000) =>
  off8 === 0
    ? `IP(src='${CLIENT[4]}',dst='${VIP[4]}',id=${id},flags=${mf ? "'MF'" : 0},proto=17)/Raw(bytes(UDP(sport=${sport},dport=${VPORT},len=8+${bytes * 4},chksum=0))+b'a'*${bytes - 8})`
    : `IP(src='${CLIENT[4]}',dst='${VIP[4]}',id=${id},flags=${mf ? "'MF'" : 0},frag=${off8},proto=17)/Raw(b'b'*${bytes})`;

/** A clean datagram and a whole packet, sent after some abuse: both must go through untouched. */
function assertOthersFlow(b: Balancer, now: number, id: number, sport: number): void {
  const [set] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id, sport, dport: VPORT, size: 2000, frag: 600 }]);
  const [whole] = abuse([udpWhole(sport + 1)]);
  const out = push(b, [...set].reverse().concat([whole]), now);
  const sent = out.filter((o) => o.verdict === Verdict.Forward);
  assert.equal(sent.length, set.length + 1, `other flows go through: ${JSON.stringify(out.map((o) => o.reason))}`);
  assert.equal(reassembled(sent.slice(0, set.length).map((o) => o.packet)).length, 1);
}

test("an overlapping fragment kills its datagram (RFC 5722; Linux 6.x inet_frag_queue_insert): the rest drops, counted; other flows are untouched", {
  skip,
}, () => {
  const b = balancer("masq");
  const frames = abuse([frag4(77, 0, true, 1000), frag4(77, 125, true, 1000), frag4(77, 240, true, 1000), frag4(77, 375, false, 500)]);
  // 240 * 8 = 1920 lies inside the second fragment (1000..2000): a partial overlap.
  const out = push(b, frames);
  assert.deepEqual(
    out.map((o) => o.reason),
    ["none", "none", "fragment-overlap", "fragment-overlap"],
  );
  const stats = b.fragmentStats();
  assert.equal(stats.overlaps, 1);
  assert.equal(stats.failedDrops, 1, "the fragment after the overlap dropped with its datagram");
  assertOthersFlow(b, 2000, 78, 43100);
});

test("an overlap among held fragments frees them (counted) and the first then drops", { skip }, () => {
  const b = balancer("masq");
  const frames = abuse([frag4(79, 125, true, 1000), frag4(79, 200, true, 1000), frag4(79, 0, true, 1000)]);
  const out = push(b, frames);
  assert.deepEqual(
    out.map((o) => o.reason),
    ["fragment-held", "fragment-overlap", "fragment-overlap"],
  );
  const stats = b.fragmentStats();
  assert.equal(stats.heldDropped, 1);
  assert.equal(stats.memoryInUse, 0);
});

test("a duplicate fragment is dropped alone; its datagram still completes", { skip }, () => {
  const b = balancer("masq");
  const [set] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id: 81, sport: 43200, dport: VPORT, size: 2000, frag: 600 }]);
  const out = push(b, [set[0], set[1], set[1], ...set.slice(2)]);
  assert.deepEqual(
    out.map((o) => o.reason),
    ["none", "none", "fragment-duplicate", ...set.slice(2).map(() => "none")],
  );
  assert.equal(b.fragmentStats().duplicates, 1);
  assert.equal(reassembled(out.filter((o) => o.verdict === Verdict.Forward).map((o) => o.packet)).length, 1);
});

test("a datagram longer than 65,535 bytes is killed (too big), as are a non-last fragment not a multiple of 8 and one past the known end", { skip }, () => {
  const b = balancer("masq");
  const out = push(
    b,
    abuse([
      frag4(90, 0, true, 1000),
      frag4(90, 8189, false, 100), // 20 + 65512 + 100 > 65535
      frag4(91, 0, true, 1000),
      frag4(91, 125, true, 1001), // not a multiple of 8
      frag4(92, 0, true, 1000),
      frag4(92, 250, false, 500), // the end: 2500
      frag4(92, 400, true, 8), // past the end
    ]),
  );
  assert.deepEqual(
    out.map((o) => o.reason),
    ["none", "fragment-too-big", "none", "fragment-invalid", "none", "none", "fragment-invalid"],
  );
  const stats = b.fragmentStats();
  assert.equal(stats.tooBig, 1);
  assert.equal(stats.invalid, 2);
  assertOthersFlow(b, 3000, 93, 43300);
});

test("fragments without their first are held, then dropped when the datagram's time (timeoutMs) runs out; memory comes back", { skip }, () => {
  const b = balancer("masq", { timeoutMs: 500 });
  const [set] = fragmentsOf([{ v: 6, src: CLIENT[6], dst: VIP[6], id: 95, sport: 43400, dport: VPORT, size: 3000, frag: 800 }]);
  const later = set.slice(1);
  const out = push(b, later, 10_000);
  assert.ok(out.every((o) => o.reason === "fragment-held"));
  let stats = b.fragmentStats();
  assert.equal(stats.held, later.length);
  assert.ok(stats.memoryInUse >= later.reduce((n, f) => n + f.length, 0));
  assert.equal(stats.datagramsInUse, 1);
  b.process(0, 10_000 + 499);
  assert.equal(b.fragmentStats().timeouts, 0, "not before its time");
  b.process(0, 10_000 + 500);
  stats = b.fragmentStats();
  assert.equal(stats.timeouts, 1);
  assert.equal(stats.heldDropped, later.length);
  assert.equal(stats.memoryInUse, 0);
  assert.equal(stats.datagramsInUse, 0);
  // The first, late, starts a new datagram: it goes out alone, nothing is released.
  const [first] = push(b, [set[0]], 10_600);
  assert.equal(first.verdict, Verdict.Forward);
  assert.equal(b.fragmentStats().released, 0);
  // That lone first never completes either: its datagram times out too (at 11,100).
  // tick() expires as process() does.
  push(b, later.slice(0, 1), 20_000);
  b.tick(20_499);
  assert.equal(b.fragmentStats().timeouts, 2);
  b.tick(20_500);
  assert.equal(b.fragmentStats().timeouts, 3);
});

test("an endless stream of fragments never exceeds the memory or table bounds; whole flows go on; fragments work again after the time", { skip }, () => {
  const memory = 16 * 1024;
  const b = balancer("masq", { datagrams: 32, memory, timeoutMs: 1000 });
  const flood = abuse(Array.from({ length: 200 }, (_, k) => frag4(1000 + k, 125, true, 1000)));
  const wholeFlows = abuse(Array.from({ length: 20 }, (_, k) => udpWhole(44000 + k)));
  const out = push(b, flood, 50_000);
  let peak = 0;
  for (let k = 0; k < wholeFlows.length; k++) {
    const [o] = push(b, [wholeFlows[k]], 50_100 + k);
    assert.equal(o.verdict, Verdict.Forward, "a whole datagram is not disturbed by the flood");
    peak = Math.max(peak, b.fragmentStats().memoryInUse);
  }
  const stats = b.fragmentStats();
  assert.ok(stats.memoryInUse <= memory && peak <= memory, `held memory ${stats.memoryInUse} within ${memory}`);
  assert.ok(stats.datagramsInUse <= 32);
  assert.equal(out.filter((o) => o.reason === "fragment-held").length, stats.held);
  assert.ok(stats.noRoom > 0 && out.filter((o) => o.reason === "fragment-no-room").length === stats.noRoom - 0, "refusals counted");
  assert.equal(stats.held + stats.noRoom, flood.length);
  // After the time, the table and the pool are empty again and fragments flow.
  b.tick(52_000);
  assert.equal(b.fragmentStats().memoryInUse, 0);
  assert.equal(b.fragmentStats().datagramsInUse, 0);
  assertOthersFlow(b, 52_001, 99, 44500);
});

test("fragments: { datagrams: 0 } turns tracking off: first fragments are balanced, later ones dropped as before", { skip }, () => {
  const b = balancer("masq", { datagrams: 0 });
  const [set] = fragmentsOf([{ v: 4, src: CLIENT[4], dst: VIP[4], id: 5, sport: 45000, dport: VPORT, size: 2000, frag: 1000 }]);
  const out = push(b, set);
  assert.deepEqual(
    out.map((o) => o.reason),
    ["none", ...set.slice(1).map(() => "fragment")],
  );
  assert.equal(out[0].verdict, Verdict.Forward);
});

test("fragment options are validated", () => {
  assert.throws(() => new Balancer({ connections: 8, fragments: { timeoutMs: 0 } }), /fragments.timeoutMs/);
  assert.throws(() => new Balancer({ connections: 8, fragments: { memory: -1 } }), /fragments.memory/);
  assert.throws(() => new Balancer({ connections: 8, fragments: { datagrams: 1.5 } }), /fragments.datagrams/);
  assert.equal(DropReason.FragmentHeld, DROP_REASON_NAMES.indexOf("fragment-held"));
});

test("property: any fragmentation and order of datagrams from many clients: each reassembles whole at one real server", { skip }, () => {
  const cases = fc.sample(
    fc.record({
      v: fc.constantFrom<Family>(4, 6),
      size: fc.integer({ min: 1, max: 9000 }),
      frag: fc.integer({ min: 8, max: 180 }).map((n) => n * 8),
      order: fc.array(fc.nat(), { minLength: 40, maxLength: 40 }),
    }),
    { numRuns: 40, seed: 1212 },
  );
  const datagrams = cases.map(
    (c, k): Datagram => ({
      v: c.v,
      // Four clients: datagrams of one client differ only by their IP id.
      src: c.v === 4 ? `10.1.0.${k % 4}` : `fd00:11::${k % 4}`,
      dst: VIP[c.v],
      id: 0x500 + k,
      sport: 46000 + k,
      dport: VPORT,
      size: c.size,
      frag: c.v === 6 ? Math.max(c.frag, 64) : c.frag,
    }),
  );
  const sets = fragmentsOf(datagrams);
  // Interleave: each datagram's fragments in a random order, datagrams mixed by the rank.
  const queue: Array<{ k: number; f: Uint8Array; rank: number }> = [];
  sets.forEach((set, k) => {
    const order = cases[k].order;
    set.forEach((f, i) => queue.push({ k, f, rank: order[i % order.length] * 1000 + i }));
  });
  queue.sort((a, b) => a.rank - b.rank);
  const b = balancer("masq");
  const out = push(
    b,
    queue.map((q) => q.f),
  );
  const sent = out.filter((o) => o.verdict === Verdict.Forward);
  assert.equal(sent.length, queue.length, "every fragment forwarded");
  const destOf = new Map<string, Set<number>>();
  for (const o of sent) {
    const family: Family = o.packet[0] >> 4 === 4 ? 4 : 6;
    const key = `${family}/${idOf(family, o.packet)}`;
    destOf.set(key, (destOf.get(key) ?? new Set()).add(o.destination));
  }
  for (const [key, d] of destOf) assert.equal(d.size, 1, `datagram ${key} at one real server`);
  const whole = reassembled(sent.map((o) => o.packet));
  const fragmented = sets.filter((s) => s.length > 1).length;
  assert.equal(whole.length, fragmented, "every fragmented datagram reassembled");
  for (const f of whole) assert.equal(field(f, "udp.checksum.status"), "1");
  const stats = b.fragmentStats();
  assert.equal(stats.memoryInUse, 0);
  assert.equal(stats.datagramsInUse, 0);
  assert.notEqual(NONE, 0);
});
