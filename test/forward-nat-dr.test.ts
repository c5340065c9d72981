// NAT (dnat / snat) and DR rewrites of packets scapy built, judged by tshark: every checksum
// we touched must verify ("1"), and the rewritten fields must hold the new values (so a
// rewrite that did nothing fails).

import { test } from "node:test";
import assert from "node:assert/strict";
import { PacketCore, LinkType, Verdict, DropReason, Desc, PcapLinkType } from "../src/index.js";
import type { ForwardAction } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const SKIP = { skip: skipUnless("scapy", "tshark") };

const ADDR = {
  4: { cip: "10.0.0.1", vip: "10.0.0.100", rip: "192.168.7.5" },
  6: { cip: "2001:db8:1::1", vip: "2001:db8:2::100", rip: "2001:db8:3::5" },
} as const;
const CPORT = 40000;
const VPORT = 80;
const RPORT = 8080;
const ICMP_ID = 4242;
const OLD_MACS = "Ether(dst='02:00:00:00:00:01',src='02:00:00:00:00:02')";
const NEW_MACS = { destinationMac: "02:aa:bb:cc:dd:01", sourceMac: "02:aa:bb:cc:dd:02" };

type Family = 4 | 6;
type Proto = "tcp" | "udp" | "icmp";
type Method = "nat-dnat" | "nat-snat" | "dr";
type Link = "eth" | "raw";

/** The scapy expression for an IP packet of the flow, in the direction the method sees. */
function flowPacket(family: Family, proto: Proto, method: Method, ipExtra = ""): string {
  const a = ADDR[family];
  const reply = method === "nat-snat";
  const [src, dst, sport, dport] = reply ? [a.rip, a.cip, RPORT, CPORT] : [a.cip, a.vip, CPORT, VPORT];
  const ip = family === 4 ? `IP(src='${src}',dst='${dst}'${ipExtra})` : `IPv6(src='${src}',dst='${dst}'${ipExtra})`;
  if (proto === "tcp") return `${ip}/TCP(sport=${sport},dport=${dport},flags='PA',seq=1000,ack=2000)/b'hello, real server'`;
  if (proto === "udp") return `${ip}/UDP(sport=${sport},dport=${dport})/b'datagram!'`;
  if (family === 4) return `${ip}/ICMP(type=${reply ? 0 : 8},id=${ICMP_ID},seq=3)/b'ping payload'`;
  return `${ip}/${reply ? "ICMPv6EchoReply" : "ICMPv6EchoRequest"}(id=${ICMP_ID},seq=3)/b'ping payload'`;
}

function actionFor(family: Family, method: Method, macs: boolean): ForwardAction {
  const a = ADDR[family];
  const m = macs ? NEW_MACS : {};
  if (method === "nat-dnat") return { kind: "nat-dnat", address: a.rip, port: RPORT, ...m };
  if (method === "nat-snat") return { kind: "nat-snat", address: a.vip, port: VPORT, ...m };
  return { kind: "dr", ...NEW_MACS };
}

const one = (f: DissectedFrame, key: string): string => {
  const v = f.fields.get(key);
  assert.ok(v && v.length > 0, `tshark shows no ${key} (${f.protocols})`);
  return v[0];
};

/** Every listed checksum status is present and good ("1"), besides assertFrameValid. */
function assertChecksumsGood(f: DissectedFrame, fields: readonly string[], label: string): void {
  assertFrameValid(f, label);
  for (const key of fields) {
    const v = f.fields.get(key);
    assert.ok(v && v.length > 0, `${label}: tshark did not verify ${key} (${f.protocols})`);
    assert.deepEqual(
      v,
      v.map(() => "1"),
      `${label}: ${key} = ${v.join(",")}`,
    );
  }
}

function statusFields(family: Family, proto: Proto): string[] {
  const out = family === 4 ? ["ip.checksum.status"] : [];
  if (proto === "tcp") out.push("tcp.checksum.status");
  else if (proto === "udp") out.push("udp.checksum.status");
  else out.push(family === 4 ? "icmp.checksum.status" : "icmpv6.checksum.status");
  return out;
}

interface Case {
  label: string;
  family: Family;
  proto: Proto;
  method: Method;
  link: Link;
  macs: boolean;
  expr: string;
}

function matrix(): Case[] {
  const cases: Case[] = [];
  for (const family of [4, 6] as const)
    for (const proto of ["tcp", "udp", "icmp"] as const)
      for (const method of ["nat-dnat", "nat-snat", "dr"] as const)
        for (const link of ["eth", "raw"] as const) {
          // NAT on Ethernet once with a MAC rewrite, once without (MACs must then stay).
          for (const macs of method === "dr" || link === "raw" ? [method === "dr"] : [true, false]) {
            const ip = flowPacket(family, proto, method);
            cases.push({
              label: `IPv${family} ${proto} ${method} ${link}${link === "eth" ? (macs ? " +mac" : " keep-mac") : ""}`,
              family,
              proto,
              method,
              link,
              macs,
              expr: link === "eth" ? `${OLD_MACS}/${ip}` : ip,
            });
          }
        }
  return cases;
}

/** Checks the rewritten frame against the original: tshark's view of both. */
function checkRewrite(c: Case, before: DissectedFrame, after: DissectedFrame, beforeBytes: Uint8Array, afterBytes: Uint8Array): void {
  const ipx = c.family === 4 ? "ip" : "ipv6";
  const a = ADDR[c.family];
  assertChecksumsGood(after, statusFields(c.family, c.proto), c.label);
  if (c.link === "eth") {
    const mac = c.macs ? NEW_MACS : { destinationMac: "02:00:00:00:00:01", sourceMac: "02:00:00:00:00:02" };
    assert.equal(one(after, "eth.dst"), mac.destinationMac, `${c.label}: eth.dst`);
    assert.equal(one(after, "eth.src"), mac.sourceMac, `${c.label}: eth.src`);
  }
  const l4 = c.proto === "icmp" ? null : c.proto;
  if (c.method === "dr") {
    // DR leaves L3 and L4 byte for byte as they were.
    const l3 = c.link === "eth" ? 14 : 0;
    assert.deepEqual(afterBytes.subarray(l3), beforeBytes.subarray(l3), `${c.label}: L3/L4 unchanged`);
    assert.equal(one(after, `${ipx}.dst`), a.vip);
    return;
  }
  const dnat = c.method === "nat-dnat";
  assert.equal(one(after, `${ipx}.src`), dnat ? a.cip : a.vip, `${c.label}: source address`);
  assert.equal(one(after, `${ipx}.dst`), dnat ? a.rip : a.cip, `${c.label}: destination address`);
  if (l4) {
    assert.equal(Number(one(after, `${l4}.srcport`)), dnat ? CPORT : VPORT, `${c.label}: source port`);
    assert.equal(Number(one(after, `${l4}.dstport`)), dnat ? RPORT : CPORT, `${c.label}: destination port`);
  } else {
    const idField = c.family === 4 ? "icmp.ident" : "icmpv6.echo.identifier";
    assert.equal(Number(one(after, idField)), ICMP_ID, `${c.label}: the query id stays`);
    assert.equal(Number(one(after, idField)), Number(one(before, idField)));
  }
  if (c.family === 4) {
    assert.equal(one(after, "ip.ttl"), one(before, "ip.ttl"), `${c.label}: TTL is the datapath's business`);
  }
}

test("NAT and DR rewrite matrix over one batch: {IPv4, IPv6} x {TCP, UDP, ICMP echo} x {dnat, snat, dr} x {Ethernet, raw IP}", SKIP, () => {
  const cases = matrix();
  const packets = scapyBuild(cases.map((c) => c.expr));
  const core = new PacketCore({ slotCount: cases.length, slotCapacity: 2048, actionCount: cases.length });
  cases.forEach((c, i) => {
    core.setAction(i, actionFor(c.family, c.method, c.macs));
    core.slots.write(i, packets[i], c.link === "eth" ? LinkType.Ethernet : LinkType.RawIp);
    core.slots.setField(i, Desc.Action, i);
  });
  assert.equal(core.applyBatch(0, cases.length), cases.length);
  const results = cases.map((_, i) => core.slots.result(i));
  for (const [i, r] of results.entries()) {
    assert.equal(r.verdict, Verdict.Forward, `${cases[i].label}: verdict ${r.verdict} reason ${r.reason}`);
    assert.equal(r.reason, DropReason.None);
    assert.equal(r.packet.length, packets[i].length, `${cases[i].label}: length unchanged`);
  }
  for (const link of ["eth", "raw"] as const) {
    const idx = cases.flatMap((c, i) => (c.link === link ? [i] : []));
    const lt = link === "eth" ? PcapLinkType.Ethernet : PcapLinkType.Raw;
    const before = tsharkDissect(
      lt,
      idx.map((i) => packets[i]),
    );
    const after = tsharkDissect(
      lt,
      idx.map((i) => results[i].packet),
    );
    idx.forEach((ci, k) => {
      // The originals must verify too, or a "good" after proves nothing.
      assertChecksumsGood(before[k], statusFields(cases[ci].family, cases[ci].proto), `${cases[ci].label} (original)`);
      checkRewrite(cases[ci], before[k], after[k], packets[ci], results[ci].packet);
    });
  }
});

test("NAT keeps the port when the action's port is 0 or absent", SKIP, () => {
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  const [p4, p6] = scapyBuild([flowPacket(4, "tcp", "nat-dnat"), flowPacket(6, "udp", "nat-snat")]);
  const r4 = core.rewrite(p4, LinkType.RawIp, { kind: "nat-dnat", address: ADDR[4].rip });
  const r6 = core.rewrite(p6, LinkType.RawIp, { kind: "nat-snat", address: ADDR[6].vip, port: 0 });
  const [f4] = tsharkDissect(PcapLinkType.Raw, [r4.packet]);
  const [f6] = tsharkDissect(PcapLinkType.Raw, [r6.packet]);
  assertChecksumsGood(f4, ["ip.checksum.status", "tcp.checksum.status"], "v4 tcp no port");
  assertChecksumsGood(f6, ["udp.checksum.status"], "v6 udp no port");
  assert.equal(one(f4, "ip.dst"), ADDR[4].rip);
  assert.equal(Number(one(f4, "tcp.dstport")), VPORT);
  assert.equal(one(f6, "ipv6.src"), ADDR[6].vip);
  assert.equal(Number(one(f6, "udp.srcport")), RPORT);
});

test("NAT on IPv4 with options, VLAN and QinQ tags, and UDP checksum 0", SKIP, () => {
  const a4 = ADDR[4];
  const cases: Array<{ label: string; expr: string; link: Link; action: ForwardAction; family: Family; proto: Proto; vlans?: string[]; outerTag?: string }> = [
    {
      label: "IPv4 options (RR) + TCP options, dnat",
      expr: `IP(src='${a4.cip}',dst='${a4.vip}',options=[IPOption_RR(routers=['1.2.3.4','5.6.7.8'])])/TCP(sport=${CPORT},dport=${VPORT},options=[('MSS',1460),('SAckOK',b''),('WScale',7)])/b'opts'`,
      link: "raw",
      action: { kind: "nat-dnat", address: a4.rip, port: RPORT },
      family: 4,
      proto: "tcp",
    },
    {
      label: "IPv4 options (router alert) UDP snat",
      expr: `IP(src='${a4.rip}',dst='${a4.cip}',options=[IPOption_Router_Alert()])/UDP(sport=${RPORT},dport=${CPORT})/(b'x'*33)`,
      link: "raw",
      action: { kind: "nat-snat", address: a4.vip, port: VPORT },
      family: 4,
      proto: "udp",
    },
    {
      label: "802.1Q IPv4 UDP dnat",
      expr: `${OLD_MACS}/Dot1Q(vlan=7)/${flowPacket(4, "udp", "nat-dnat")}`,
      link: "eth",
      action: { kind: "nat-dnat", address: a4.rip, port: RPORT, ...NEW_MACS },
      family: 4,
      proto: "udp",
      vlans: ["7"],
    },
    {
      label: "802.1ad+802.1Q IPv6 TCP snat",
      expr: `${OLD_MACS}/Dot1AD(vlan=3)/Dot1Q(vlan=7)/${flowPacket(6, "tcp", "nat-snat")}`,
      link: "eth",
      action: { kind: "nat-snat", address: ADDR[6].vip, port: VPORT, ...NEW_MACS },
      family: 6,
      proto: "tcp",
      vlans: ["7"],
      outerTag: "3",
    },
    {
      label: "802.1Q IPv6 ICMPv6 echo dnat",
      expr: `${OLD_MACS}/Dot1Q(vlan=9)/${flowPacket(6, "icmp", "nat-dnat")}`,
      link: "eth",
      action: { kind: "nat-dnat", address: ADDR[6].rip, port: RPORT },
      family: 6,
      proto: "icmp",
      vlans: ["9"],
    },
  ];
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  const packets = scapyBuild(cases.map((c) => c.expr));
  for (const [i, c] of cases.entries()) {
    const lt = c.link === "eth" ? LinkType.Ethernet : LinkType.RawIp;
    const r = core.rewrite(packets[i], lt, c.action);
    assert.equal(r.verdict, Verdict.Forward, `${c.label}: ${r.reason}`);
    const [f] = tsharkDissect(c.link === "eth" ? PcapLinkType.Ethernet : PcapLinkType.Raw, [r.packet]);
    assertChecksumsGood(f, statusFields(c.family, c.proto), c.label);
    const ipx = c.family === 4 ? "ip" : "ipv6";
    if (c.action.kind === "nat-dnat") assert.equal(one(f, `${ipx}.dst`), (c.action as { address: string }).address, c.label);
    else assert.equal(one(f, `${ipx}.src`), (c.action as { address: string }).address, c.label);
    if (c.proto !== "icmp") {
      const want = c.action.kind === "nat-dnat" ? ["dstport", RPORT] : ["srcport", VPORT];
      assert.equal(Number(one(f, `${c.proto}.${want[0]}`)), want[1], c.label);
    }
    if (c.vlans) assert.deepEqual(f.fields.get("vlan.id"), c.vlans, `${c.label}: tags kept (${f.protocols})`);
    if (c.outerTag) assert.equal(one(f, "ieee8021ad.id"), c.outerTag, `${c.label}: 802.1ad tag kept`);
  }

  // UDP over IPv4 with checksum 0 ("none", RFC 768) must stay 0, whatever else changes.
  const [z] = scapyBuild([`IP(src='${a4.cip}',dst='${a4.vip}')/UDP(sport=${CPORT},dport=${VPORT},chksum=0)/b'no checksum'`]);
  assert.equal((z[26] << 8) | z[27], 0, "scapy kept the zero checksum");
  const r = core.rewrite(z, LinkType.RawIp, { kind: "nat-dnat", address: a4.rip, port: RPORT });
  assert.equal(r.verdict, Verdict.Forward);
  const [f] = tsharkDissect(PcapLinkType.Raw, [r.packet]);
  assertChecksumsGood(f, ["ip.checksum.status"], "udp csum 0");
  assert.equal(one(f, "udp.checksum"), "0x0000");
  assert.equal(one(f, "ip.dst"), a4.rip);
  assert.equal(Number(one(f, "udp.dstport")), RPORT);
});

test("NAT of fragments: the first carries the L4 change, later ones the address; tshark reassembles and verifies", SKIP, () => {
  const a4 = ADDR[4];
  const a6 = ADDR[6];
  const groups = [
    {
      label: "IPv4 UDP fragments, dnat",
      expr: `fragment(IP(src='${a4.cip}',dst='${a4.vip}',id=77)/UDP(sport=${CPORT},dport=${VPORT})/(bytes(range(256))*2), fragsize=200)`,
      action: { kind: "nat-dnat", address: a4.rip, port: RPORT } as ForwardAction,
      family: 4 as Family,
      proto: "udp",
    },
    {
      label: "IPv4 TCP fragments, snat",
      expr: `fragment(IP(src='${a4.rip}',dst='${a4.cip}',id=78)/TCP(sport=${RPORT},dport=${CPORT},flags='PA')/(bytes(range(256))*2), fragsize=256)`,
      action: { kind: "nat-snat", address: a4.vip, port: VPORT } as ForwardAction,
      family: 4 as Family,
      proto: "tcp",
    },
    {
      label: "IPv6 UDP fragments, dnat",
      expr: `fragment6(IPv6(src='${a6.cip}',dst='${a6.vip}')/IPv6ExtHdrFragment(id=99)/UDP(sport=${CPORT},dport=${VPORT})/(bytes(range(256))*3), 400)`,
      action: { kind: "nat-dnat", address: a6.rip, port: RPORT } as ForwardAction,
      family: 6 as Family,
      proto: "udp",
    },
    {
      label: "IPv6 ICMPv6 echo fragments, snat",
      expr: `fragment6(IPv6(src='${a6.rip}',dst='${a6.cip}')/IPv6ExtHdrFragment(id=98)/ICMPv6EchoReply(id=${ICMP_ID},data=bytes(range(256))*3), 400)`,
      action: { kind: "nat-snat", address: a6.vip } as ForwardAction,
      family: 6 as Family,
      proto: "icmp",
    },
  ];
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  // scapy returns a list per expression: one hex line per fragment.
  const counts = scapyBuild(groups.map((g) => `bytes([len(${g.expr})])`)).map((b) => b[0]);
  const frags = scapyBuild(groups.flatMap((g, gi) => Array.from({ length: counts[gi] }, (_, k) => `${g.expr}[${k}]`)));
  let at = 0;
  for (const [gi, g] of groups.entries()) {
    const mine = frags.slice(at, at + counts[gi]);
    at += counts[gi];
    assert.ok(mine.length >= 2, `${g.label}: scapy made ${mine.length} fragments`);
    const parsed = mine.map((p) => core.parseBytes(p, LinkType.RawIp).fragment);
    assert.deepEqual(parsed, [1, ...mine.slice(1).map(() => 2)], `${g.label}: first then later fragments`);
    const out = mine.map((p) => {
      const r = core.rewrite(p, LinkType.RawIp, g.action);
      assert.equal(r.verdict, Verdict.Forward, `${g.label}: reason ${r.reason}`);
      return r.packet;
    });
    const ipx = g.family === 4 ? "ip" : "ipv6";
    const addr = (g.action as { address: string }).address;
    const dissected = tsharkDissect(PcapLinkType.Raw, out);
    for (const f of dissected) {
      assertFrameValid(f, g.label);
      if (g.family === 4) assertChecksumsGood(f, ["ip.checksum.status"], g.label);
      assert.equal(one(f, g.action.kind === "nat-dnat" ? `${ipx}.dst` : `${ipx}.src`), addr, `${g.label}: every fragment readdressed`);
    }
    // The last frame carries the reassembled datagram: its L4 checksum must verify.
    const last = dissected[dissected.length - 1];
    const l4 = g.proto === "icmp" ? "icmpv6" : g.proto;
    assertChecksumsGood(last, [`${l4}.checksum.status`], `${g.label} reassembled`);
    if (g.proto !== "icmp") {
      const [key, want] = g.action.kind === "nat-dnat" ? ["dstport", RPORT] : ["srcport", VPORT];
      assert.equal(Number(one(last, `${g.proto}.${key}`)), want, `${g.label}: port in the reassembled datagram`);
    }
  }
});

test("NAT refuses what it cannot rewrite, leaving the packet untouched", SKIP, () => {
  const a4 = ADDR[4];
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  const [v4tcp, icmpErr, gre, v6udp] = scapyBuild([
    flowPacket(4, "tcp", "nat-dnat"),
    `IP(src='10.9.9.9',dst='${a4.vip}')/ICMP(type=3,code=3)/IP(src='${a4.vip}',dst='${a4.cip}')/UDP(sport=53,dport=4000)`,
    `IP(src='${a4.cip}',dst='${a4.vip}')/GRE()/IP()`,
    flowPacket(6, "udp", "nat-dnat"),
  ]);
  const cases: Array<[string, Uint8Array, ForwardAction]> = [
    ["IPv4 packet, IPv6 action", v4tcp, { kind: "nat-dnat", address: ADDR[6].rip, port: RPORT }],
    ["IPv6 packet, IPv4 action", v6udp, { kind: "nat-snat", address: a4.vip, port: VPORT }],
    ["ICMP error through plain NAT", icmpErr, { kind: "nat-dnat", address: a4.rip }],
    ["GRE", gre, { kind: "nat-dnat", address: a4.rip }],
  ];
  for (const [label, pkt, action] of cases) {
    const r = core.rewrite(pkt, LinkType.RawIp, action);
    assert.equal(r.verdict, Verdict.Drop, label);
    assert.equal(r.reason, DropReason.Unsupported, label);
    assert.deepEqual(r.packet, pkt, `${label}: bytes unchanged`);
  }
});

test("DR on raw IP forwards the packet unchanged; on Ethernet it always sets both MACs", SKIP, () => {
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  const [raw6, eth4] = scapyBuild([
    flowPacket(6, "tcp", "dr"),
    `Ether(dst='02:00:00:00:00:01',src='02:00:00:00:00:02')/Dot1Q(vlan=5)/${flowPacket(4, "udp", "dr")}`,
  ]);
  const r = core.rewrite(raw6, LinkType.RawIp, { kind: "dr", ...NEW_MACS });
  assert.equal(r.verdict, Verdict.Forward);
  assert.deepEqual(r.packet, raw6);
  const e = core.rewrite(eth4, LinkType.Ethernet, { kind: "dr", ...NEW_MACS });
  assert.equal(e.verdict, Verdict.Forward);
  assert.deepEqual(e.packet.subarray(12), eth4.subarray(12), "everything after the MACs, VLAN tag included, unchanged");
  const [f] = tsharkDissect(PcapLinkType.Ethernet, [e.packet]);
  assertChecksumsGood(f, ["ip.checksum.status", "udp.checksum.status"], "dr vlan");
  assert.equal(one(f, "eth.dst"), NEW_MACS.destinationMac);
  assert.equal(one(f, "eth.src"), NEW_MACS.sourceMac);
});
