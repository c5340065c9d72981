// TUN forwarding judged by tshark: scapy builds the client packets, the data plane
// encapsulates them (ipip / ip6ip6 / 4in6 / 6in4, GUE, GRE), Wireshark dissects the result
// and validates every checksum. Expectations come from the input packet and the action, not
// from our own parser.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PacketCore, LinkType, Verdict, DropReason, PcapLinkType } from "../src/index.js";
import type { ForwardAction, TunnelType } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const SKIP = { skip: skipUnless("scapy", "tshark") };
const GUE_PORT = 6080;
const CLIENT4 = "198.51.100.7",
  VIP4 = "203.0.113.10",
  DIR4 = "192.0.2.1",
  RIP4 = "192.0.2.50";
const CLIENT6 = "2001:db8:c::7",
  VIP6 = "2001:db8:f::10",
  DIR6 = "2001:db8:d::1",
  RIP6 = "2001:db8:d::50";
const DST_MAC = "02:00:00:00:0b:02",
  SRC_MAC = "02:00:00:00:0a:01";

type Family = 4 | 6;
type L4 = "tcp" | "udp" | "icmp";

interface TunCase {
  label: string;
  inner: Family;
  outer: Family;
  l4: L4;
  type: TunnelType;
  csum: boolean;
  ether: boolean;
  /** Inner DS field (DSCP << 2 | ECN). */
  ds: number;
  ttl: number;
  df: boolean;
  expr: string;
}

function innerExpr(inner: Family, l4: L4, ds: number, ttl: number, df: boolean, n: number): string {
  const ip =
    inner === 4
      ? `IP(src='${CLIENT4}',dst='${VIP4}',tos=${ds},ttl=${ttl},flags=${df ? "'DF'" : "0"},id=${n})`
      : `IPv6(src='${CLIENT6}',dst='${VIP6}',tc=${ds},hlim=${ttl},fl=${n})`;
  const body =
    l4 === "tcp"
      ? `TCP(sport=${40000 + n},dport=80,flags='PA',seq=${n * 1000})/(b'GET / HTTP/1.0\\r\\n\\r\\n')`
      : l4 === "udp"
        ? `UDP(sport=${41000 + n},dport=7777)/(b'payload-${n}')`
        : inner === 4
          ? `ICMP(type=8,id=${n},seq=1)/(b'ping')`
          : `ICMPv6EchoRequest(id=${n},seq=1,data=b'ping')`;
  return `${ip}/${body}`;
}

/** Bytes of the outer header stack, from the RFCs, independently of the data plane. */
function encapBytes(c: { outer: Family; type: TunnelType; csum: boolean }): number {
  const ip = c.outer === 4 ? 20 : 40;
  if (c.type === "gue") return ip + 8 + 4;
  if (c.type === "gre") return ip + 4 + (c.csum ? 4 : 0);
  return ip;
}

function tunnelAction(c: { outer: Family; type: TunnelType; csum: boolean; ether: boolean }, mtu?: number): ForwardAction {
  return {
    kind: "tunnel",
    type: c.type,
    remote: c.outer === 4 ? RIP4 : RIP6,
    local: c.outer === 4 ? DIR4 : DIR6,
    ...(c.type === "gue" ? { port: GUE_PORT } : {}),
    ...(c.type !== "ipip" && c.csum ? { checksum: true } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(c.ether ? { destinationMac: DST_MAC, sourceMac: SRC_MAC } : {}),
  };
}

function cases(): TunCase[] {
  const list: Omit<TunCase, "expr" | "label">[] = [];
  let n = 0;
  const dsList = [0x00, 0x2b, 0xb9, 0x02, 0x51]; // ECN not-ECT, CE, ECT(1), ECT(0), ECT(1)
  for (const inner of [4, 6] as const) {
    for (const l4 of ["tcp", "udp", "icmp"] as const) {
      for (const [type, csum] of [
        ["ipip", false],
        ["gue", false],
        ["gue", true],
        ["gre", false],
        ["gre", true],
      ] as const) {
        for (const ether of [false, true]) {
          n++;
          list.push({ inner, outer: inner, l4, type, csum, ether, ds: dsList[n % dsList.length], ttl: 20 + n, df: n % 3 !== 0 });
        }
      }
    }
  }
  // Mixed families (4in6 and 6in4), plain and GUE.
  for (const [inner, outer] of [
    [4, 6],
    [6, 4],
  ] as const) {
    for (const [type, csum] of [
      ["ipip", false],
      ["gue", true],
      ["gre", true],
    ] as const) {
      for (const ether of [false, true]) {
        n++;
        list.push({ inner, outer, l4: n % 2 ? "tcp" : "udp", type, csum, ether, ds: 0x2b, ttl: 20 + n, df: true });
      }
    }
  }
  return list.map((c, i) => {
    const ipExpr = innerExpr(c.inner, c.l4, c.ds, c.ttl, c.df, i + 1);
    const expr = c.ether
      ? i % 4 === 1
        ? `Ether(src='02:00:00:00:cc:01',dst='02:00:00:00:dd:01')/Dot1Q(vlan=42)/${ipExpr}`
        : `Ether(src='02:00:00:00:cc:01',dst='02:00:00:00:dd:01')/${ipExpr}`
      : ipExpr;
    const label = `${c.inner === c.outer ? (c.inner === 4 ? "ipv4" : "ipv6") : `${c.inner}in${c.outer}`} ${c.l4} ${c.type}${c.csum ? "+csum" : ""} ${c.ether ? "ether" : "raw"}`;
    return { ...c, expr, label };
  });
}

function linkLength(bytes: Uint8Array, ether: boolean): number {
  if (!ether) return 0;
  let off = 12;
  while (((bytes[off] << 8) | bytes[off + 1]) === 0x8100) off += 4;
  return off + 2;
}

function field(frame: DissectedFrame, name: string, index = 0): string | undefined {
  return frame.fields.get(name)?.[index];
}

function num(value: string | undefined): number {
  assert.ok(value !== undefined, "field missing");
  return Number(value);
}

function protocolChain(c: TunCase): string {
  const ipName = (f: Family) => (f === 4 ? "ip" : "ipv6");
  const l4 = c.l4 === "icmp" ? (c.inner === 4 ? "icmp" : "icmpv6") : c.l4;
  const mid = c.type === "gue" ? "udp:gue:" : c.type === "gre" ? "gre:" : "";
  return `${ipName(c.outer)}:${mid}${ipName(c.inner)}:${l4}`;
}

test("encapsulation matrix: tshark recognises every tunnel, checksums good, inner packet unchanged", SKIP, () => {
  const all = cases();
  const inputs = scapyBuild(all.map((c) => c.expr));
  const core = new PacketCore({ slotCount: 2, slotCapacity: 4096 });
  const out: Uint8Array[] = [];
  for (const [i, c] of all.entries()) {
    const r = core.rewrite(inputs[i], c.ether ? LinkType.Ethernet : LinkType.RawIp, tunnelAction(c));
    assert.equal(r.verdict, Verdict.Forward, `${c.label}: verdict (reason ${r.reason})`);
    const link = linkLength(inputs[i], c.ether);
    const innerIp = inputs[i].subarray(link);
    const encap = encapBytes(c);
    assert.equal(r.packet.length, link + encap + innerIp.length, `${c.label}: length`);
    assert.deepEqual(r.packet.subarray(link + encap), innerIp, `${c.label}: inner packet byte-identical`);
    if (c.ether) {
      // VLAN tags kept, EtherType announces the outer family.
      assert.deepEqual(r.packet.subarray(12, link - 2), inputs[i].subarray(12, link - 2), `${c.label}: VLAN tags`);
      const et = (r.packet[link - 2] << 8) | r.packet[link - 1];
      assert.equal(et, c.outer === 4 ? 0x0800 : 0x86dd, `${c.label}: EtherType`);
    }
    out.push(r.packet);
  }
  const frames = new Map<boolean, DissectedFrame[]>();
  for (const ether of [false, true]) {
    frames.set(
      ether,
      tsharkDissect(
        ether ? PcapLinkType.Ethernet : PcapLinkType.Raw,
        out.filter((_, i) => all[i].ether === ether),
        { guePort: GUE_PORT },
      ),
    );
  }
  const cursor = new Map<boolean, number>([
    [false, 0],
    [true, 0],
  ]);
  const guePorts = new Set<number>();
  for (const c of all) {
    const k = cursor.get(c.ether)!;
    cursor.set(c.ether, k + 1);
    const f = frames.get(c.ether)![k];
    const L = c.label;
    assert.ok(f.protocols.includes(protocolChain(c)), `${L}: protocols ${f.protocols}, want ${protocolChain(c)}`);
    assertFrameValid(f, L);
    // Outer header: addresses, TTL / hop limit, DSCP copied, ECN per RFC 6040.
    const innerEcn = c.ds & 3;
    const outerEcn = innerEcn === 3 ? 2 : innerEcn;
    if (c.outer === 4) {
      assert.equal(field(f, "ip.src"), DIR4, `${L}: outer src`);
      assert.equal(field(f, "ip.dst"), RIP4, `${L}: outer dst`);
      assert.equal(num(field(f, "ip.ttl")), c.ttl, `${L}: outer TTL`);
      assert.equal(num(field(f, "ip.flags.df")), c.inner === 6 || c.df ? 1 : 0, `${L}: outer DF`);
      assert.equal(num(field(f, "ip.dsfield.dscp")), c.ds >> 2, `${L}: DSCP`);
      assert.equal(num(field(f, "ip.dsfield.ecn")), outerEcn, `${L}: ECN`);
      assert.equal(field(f, "ip.checksum.status"), "1", `${L}: outer IP checksum verified`);
    } else {
      assert.equal(field(f, "ipv6.src"), DIR6, `${L}: outer src`);
      assert.equal(field(f, "ipv6.dst"), RIP6, `${L}: outer dst`);
      assert.equal(num(field(f, "ipv6.hlim")), c.ttl, `${L}: outer hop limit`);
      assert.equal(num(field(f, "ipv6.tclass.dscp")), c.ds >> 2, `${L}: DSCP`);
      assert.equal(num(field(f, "ipv6.tclass.ecn")), outerEcn, `${L}: ECN`);
      assert.notEqual(num(field(f, "ipv6.flow")), 0, `${L}: flow label set`);
    }
    const innerIpKey = c.inner === 4 ? "ip.src" : "ipv6.src";
    const innerIndex = c.inner === c.outer ? 1 : 0;
    assert.equal(field(f, innerIpKey, innerIndex), c.inner === 4 ? CLIENT4 : CLIENT6, `${L}: inner src`);
    if (c.l4 !== "icmp") {
      const index = c.type === "gue" && c.l4 === "udp" ? 1 : 0; // GUE's own UDP comes first
      assert.equal(field(f, `${c.l4}.checksum.status`, index), "1", `${L}: inner ${c.l4} checksum`);
    } else assert.equal(field(f, c.inner === 4 ? "icmp.checksum.status" : "icmpv6.checksum.status"), "1", `${L}: inner ICMP checksum`);
    if (c.type === "gue") {
      assert.equal(num(field(f, "udp.dstport")), GUE_PORT, `${L}: GUE port`);
      const sport = num(field(f, "udp.srcport"));
      assert.ok(sport >= 49152 && sport <= 65535, `${L}: source port ${sport} in the dynamic range`);
      guePorts.add(sport);
      assert.equal(num(field(f, "gue.version")), 0, `${L}: GUE version`);
      assert.equal(num(field(f, "gue.hlen")), 0, `${L}: GUE hlen`);
      assert.equal(num(field(f, "gue.proto")), c.inner === 4 ? 4 : 41, `${L}: GUE proto`);
      if (c.csum) assert.equal(field(f, "udp.checksum.status"), "1", `${L}: outer UDP checksum verified`);
      else assert.equal(num(field(f, "udp.checksum")), 0, `${L}: no outer UDP checksum`);
    }
    if (c.type === "gre") {
      assert.equal(num(field(f, "gre.proto")), c.inner === 4 ? 0x0800 : 0x86dd, `${L}: GRE protocol type`);
      assert.equal(num(field(f, "gre.flags.checksum")), c.csum ? 1 : 0, `${L}: GRE C bit`);
      if (c.csum) assert.equal(field(f, "gre.checksum.status"), "1", `${L}: GRE checksum verified`);
    }
    if (c.ether) {
      assert.equal(field(f, "eth.dst"), DST_MAC, `${L}: MAC rewritten`);
      assert.equal(field(f, "eth.src"), SRC_MAC, `${L}: MAC rewritten`);
    }
  }
  assert.ok(guePorts.size > 5, `different flows spread over source ports (${[...guePorts].join(",")})`);
});

test("GUE source port and IPv6 flow label are stable per flow and differ between flows", SKIP, () => {
  const exprs = [0, 1, 2, 3].map((n) => `IPv6(src='${CLIENT6}',dst='${VIP6}')/TCP(sport=${50000 + n},dport=80)`);
  const pkts = scapyBuild(exprs);
  const core = new PacketCore({ slotCount: 2, slotCapacity: 4096 });
  const c = { outer: 6 as Family, type: "gue" as TunnelType, csum: false, ether: false };
  const key = (p: Uint8Array) => [((p[1] & 0xf) << 16) | (p[2] << 8) | p[3], (p[40] << 8) | p[41]];
  const first = pkts.map((p) => key(core.rewrite(p, LinkType.RawIp, tunnelAction(c)).packet));
  const again = pkts.map((p) => key(core.rewrite(p, LinkType.RawIp, tunnelAction(c)).packet));
  assert.deepEqual(again, first, "same flow, same label and port");
  assert.equal(new Set(first.map((k) => k[0])).size, 4, "four flows, four flow labels");
  assert.equal(new Set(first.map((k) => k[1])).size, 4, "four flows, four source ports");
});

test("Ethernet padding is not carried into the tunnel", SKIP, () => {
  const [frame] = scapyBuild([`Ether()/IP(src='${CLIENT4}',dst='${VIP4}')/UDP(sport=1,dport=7777)/Padding(load=b'\\x00'*18)`]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  const r = core.rewrite(frame, LinkType.Ethernet, tunnelAction({ outer: 4, type: "ipip", csum: false, ether: true }));
  assert.equal(r.verdict, Verdict.Forward);
  assert.equal(r.packet.length, 14 + 20 + 28);
  const [f] = tsharkDissect(PcapLinkType.Ethernet, [r.packet]);
  assertFrameValid(f, "padded");
  assert.equal(field(f, "eth.padding"), undefined, "no padding left");
});

test("not enough headroom: dropped, not written outside the slot", () => {
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  // A minimal IPv4/UDP packet with a valid header checksum, placed 10 bytes into its slot.
  const ip = Uint8Array.from([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2, 0, 8, 0, 0]);
  const sum = core.checksum(ip.subarray(0, 20));
  ip[10] = sum >> 8;
  ip[11] = sum & 0xff;
  core.setAction(0, tunnelAction({ outer: 4, type: "gue", csum: false, ether: false }));
  const base = core.slots.slotAddress(1);
  const before = core.slots.bytes.slice(base - 64, base + 64);
  core.slots.bytes.set(ip, base + 10);
  core.slots.setField(1, 0, 10);
  core.slots.setField(1, 4, ip.length);
  core.slots.setField(1, 8, LinkType.RawIp);
  core.slots.setField(1, 24, 0);
  core.applyBatch(1, 1);
  assert.equal(core.slots.field(1, 16), Verdict.Drop);
  assert.equal(core.slots.field(1, 20), DropReason.NoHeadroom);
  assert.deepEqual(core.slots.bytes.slice(base - 64, base), before.subarray(0, 64), "previous slot untouched");
});

/**
 * assertFrameValid for an ICMP error. When the quote is truncated (RFC 792 / 4443 allow
 * that), tshark still sums the quoted transport header over the bytes it has and calls the
 * quoted checksum bad; only that one status is excused, and only for a truncated quote.
 */
function assertErrorFrameValid(f: DissectedFrame, label: string, truncated: boolean): void {
  if (!truncated) {
    assertFrameValid(f, label);
    return;
  }
  const fields = new Map(f.fields);
  for (const key of ["tcp.checksum.status", "udp.checksum.status"]) fields.delete(key);
  const expert = f.expert.filter((m) => !/^Bad checksum \[should be/.test(m));
  assertFrameValid({ protocols: f.protocols, fields, expert }, label);
}

// ---- Path MTU: frag-needed / packet-too-big instead of forwarding ----

interface MtuCase {
  label: string;
  inner: Family;
  type: TunnelType;
  csum: boolean;
  ether: boolean;
  size: number;
  mtu: number;
  /** MTU value the ICMP error must carry. */
  report: number;
}

test("a DF packet too big for the tunnel MTU becomes frag-needed / packet-too-big", SKIP, () => {
  const mtuCases: MtuCase[] = [
    { label: "v4 ipip raw", inner: 4, type: "ipip", csum: false, ether: false, size: 1400, mtu: 1400, report: 1380 },
    { label: "v4 gue ether", inner: 4, type: "gue", csum: true, ether: true, size: 1500, mtu: 1500, report: 1468 },
    { label: "v4 gre+csum raw", inner: 4, type: "gre", csum: true, ether: false, size: 300, mtu: 320, report: 292 },
    { label: "v6 ip6ip6 raw", inner: 6, type: "ipip", csum: false, ether: false, size: 1500, mtu: 1500, report: 1460 },
    { label: "v6 gue ether", inner: 6, type: "gue", csum: false, ether: true, size: 1400, mtu: 1400, report: 1348 },
    { label: "v6 below 1280 reports 1280", inner: 6, type: "gre", csum: false, ether: false, size: 1300, mtu: 1300, report: 1280 },
  ];
  const exprs = mtuCases.map((c) => {
    const ip =
      c.inner === 4
        ? `IP(src='${CLIENT4}',dst='${VIP4}',flags='DF',ttl=50)/TCP(sport=33000,dport=80,flags='A')/(b'z'*${c.size - 40})`
        : `IPv6(src='${CLIENT6}',dst='${VIP6}',hlim=50)/TCP(sport=33000,dport=80,flags='A')/(b'z'*${c.size - 60})`;
    return c.ether ? `Ether(src='02:00:00:00:cc:01',dst='02:00:00:00:dd:01')/${ip}` : ip;
  });
  const inputs = scapyBuild(exprs);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  for (const [i, c] of mtuCases.entries()) {
    const outer = c.inner;
    const action = tunnelAction({ outer, type: c.type, csum: c.csum, ether: c.ether }, c.mtu);
    const r = core.rewrite(inputs[i], c.ether ? LinkType.Ethernet : LinkType.RawIp, action);
    assert.equal(r.verdict, Verdict.Reply, `${c.label}: verdict (reason ${r.reason})`);
    const link = c.ether ? 14 : 0;
    const hdrs = c.inner === 4 ? 28 : 48;
    const quoteMax = (c.inner === 4 ? 576 : 1280) - hdrs;
    const orig = inputs[i].subarray(link);
    const quote = Math.min(orig.length, quoteMax);
    assert.equal(r.packet.length, link + hdrs + quote, `${c.label}: length`);
    assert.deepEqual(r.packet.subarray(link + hdrs), orig.subarray(0, quote), `${c.label}: quote is the original`);
    const [f] = tsharkDissect(c.ether ? PcapLinkType.Ethernet : PcapLinkType.Raw, [r.packet]);
    assertErrorFrameValid(f, c.label, quote < orig.length);
    if (c.inner === 4) {
      assert.ok(f.protocols.includes("ip:icmp:ip:tcp"), `${c.label}: ${f.protocols}`);
      assert.equal(num(field(f, "icmp.type")), 3);
      assert.equal(num(field(f, "icmp.code")), 4);
      assert.equal(num(field(f, "icmp.mtu")), c.report, `${c.label}: next-hop MTU`);
      assert.equal(field(f, "icmp.checksum.status"), "1", `${c.label}: ICMP checksum`);
      assert.equal(field(f, "ip.src"), VIP4);
      assert.equal(field(f, "ip.dst"), CLIENT4);
      assert.equal(field(f, "ip.src", 1), CLIENT4, "quoted source");
    } else {
      assert.ok(f.protocols.includes("ipv6:icmpv6:ipv6:tcp"), `${c.label}: ${f.protocols}`);
      assert.equal(num(field(f, "icmpv6.type")), 2);
      assert.equal(num(field(f, "icmpv6.code")), 0);
      assert.equal(num(field(f, "icmpv6.mtu")), c.report, `${c.label}: MTU`);
      assert.equal(field(f, "icmpv6.checksum.status"), "1", `${c.label}: ICMPv6 checksum`);
      assert.equal(field(f, "ipv6.src"), VIP6);
      assert.equal(field(f, "ipv6.dst"), CLIENT6);
    }
    if (c.ether) {
      assert.equal(field(f, "eth.dst"), "02:00:00:00:cc:01", `${c.label}: back to the sender's MAC`);
      assert.equal(field(f, "eth.src"), "02:00:00:00:dd:01");
    }
  }
});

test("MTU edges: exactly fitting forwards, DF clear drops too-big, ICMP errors are not answered", SKIP, () => {
  const [fits, noDf, icmpErr, v6fits] = scapyBuild([
    `IP(src='${CLIENT4}',dst='${VIP4}',flags='DF')/UDP(sport=1,dport=7777)/(b'a'*72)`, // 100 bytes
    `IP(src='${CLIENT4}',dst='${VIP4}',flags=0)/UDP(sport=1,dport=7777)/(b'a'*1472)`,
    `IP(src='${CLIENT4}',dst='${VIP4}',flags='DF')/ICMP(type=3,code=1)/IP(src='${VIP4}',dst='${CLIENT4}')/UDP()/(b'q'*1400)`,
    `IPv6(src='${CLIENT6}',dst='${VIP6}')/UDP(sport=1,dport=7777)/(b'a'*1352)`, // 1400 bytes
  ]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  const v4 = { outer: 4 as Family, type: "gre" as TunnelType, csum: true, ether: false };
  const exact = core.rewrite(fits, LinkType.RawIp, tunnelAction(v4, 100 + 28));
  assert.equal(exact.verdict, Verdict.Forward, "inner + overhead == MTU fits");
  const over = core.rewrite(fits, LinkType.RawIp, tunnelAction(v4, 100 + 27));
  assert.equal(over.verdict, Verdict.Reply, "one byte over does not");
  const frag = core.rewrite(noDf, LinkType.RawIp, tunnelAction(v4, 1500));
  assert.deepEqual([frag.verdict, frag.reason], [Verdict.Drop, DropReason.TooBig]);
  const err = core.rewrite(icmpErr, LinkType.RawIp, tunnelAction(v4, 1000));
  assert.deepEqual([err.verdict, err.reason], [Verdict.Drop, DropReason.IcmpSuppressed]);
  const v6 = core.rewrite(v6fits, LinkType.RawIp, tunnelAction({ outer: 6, type: "ipip", csum: false, ether: false }, 1440));
  assert.equal(v6.verdict, Verdict.Forward, "1400 + 40 == 1440 fits");
});

test("outer IPv4 header checksum is right for every total length (a low byte >= 0x80 once sign-extended into the sum)", SKIP, () => {
  // Outer total lengths 20 + 28 + n for n in 0..255 cover every low byte.
  const sizes = Array.from({ length: 256 }, (_, n) => n);
  const inputs = scapyBuild(sizes.map((n) => `IP(src='10.0.0.1',dst='192.168.227.128',ttl=63)/UDP(sport=40000,dport=40002)/Raw(b'x'*${n})`));
  const core = new PacketCore({ slotCount: 2, slotCapacity: 4096 });
  const out = inputs.map((p) => core.rewrite(p, LinkType.RawIp, tunnelAction({ outer: 4, type: "ipip", csum: false, ether: false })).packet);
  tsharkDissect(PcapLinkType.Raw, out).forEach((f, i) => assertFrameValid(f, `outer length ${out[i].length}`));
});

test("the outer IPv4 header checksum is right at every length and ID (a sign-extended header word once lost a carry at 1,508 bytes)", () => {
  const core = new PacketCore({ slotCount: 2, slotCapacity: 4096 });
  const sumWords = (b: Uint8Array) => {
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (b[i] << 8) | b[i + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return s;
  };
  let checked = 0;
  for (let payload = 0; payload <= 1460; payload += 7) {
    const inner = new Uint8Array(40 + payload);
    inner.set([0x45, 0, (40 + payload) >> 8, (40 + payload) & 0xff, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 7, 203, 0, 113, 10]);
    inner[32] = 0x50; // TCP data offset 5 (the L4 checksum is not checked: only the outer header is)
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (inner[i] << 8) | inner[i + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    inner[10] = (~s >> 8) & 0xff;
    inner[11] = ~s & 0xff;
    const r = core.rewrite(inner, LinkType.RawIp, { kind: "tunnel", type: "ipip", remote: "192.0.2.50", local: "192.0.2.1" });
    assert.equal(r.verdict, Verdict.Forward);
    assert.equal(sumWords(r.packet), 0xffff, `outer header of a ${r.packet.length}-byte packet (ID ${(r.packet[4] << 8) | r.packet[5]})`);
    checked++;
  }
  assert.ok(checked > 200);
});
