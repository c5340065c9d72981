// ICMP port-unreachable generated in place, judged by tshark, and the RFC 1122 / 4443 rules
// that forbid some errors (about an error, a later fragment, broadcast / multicast).

import { test } from "node:test";
import assert from "node:assert/strict";
import { PacketCore, LinkType, Verdict, DropReason, PcapLinkType, Desc } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const SKIP = { skip: skipUnless("scapy", "tshark") };
const C4 = "198.51.100.7",
  V4 = "203.0.113.10",
  C6 = "2001:db8:c::7",
  V6 = "2001:db8:f::10";
const MAC_C = "02:00:00:00:cc:01",
  MAC_D = "02:00:00:00:dd:01";

const field = (f: DissectedFrame, k: string, i = 0) => f.fields.get(k)?.[i];

interface Case {
  label: string;
  expr: string;
  ether: boolean;
  family: 4 | 6;
}

const CASES: Case[] = [
  { label: "v4 tcp raw", expr: `IP(src='${C4}',dst='${V4}')/TCP(sport=40000,dport=80,flags='S')`, ether: false, family: 4 },
  { label: "v4 udp ether", expr: `Ether(src='${MAC_C}',dst='${MAC_D}')/IP(src='${C4}',dst='${V4}')/UDP(sport=5,dport=7777)/(b'x'*20)`, ether: true, family: 4 },
  { label: "v4 options", expr: `IP(src='${C4}',dst='${V4}',options=[IPOption_RR(routers=['1.2.3.4'])])/UDP(sport=5,dport=7777)`, ether: false, family: 4 },
  { label: "v4 big, quote truncated to 576 total", expr: `IP(src='${C4}',dst='${V4}')/UDP(sport=5,dport=7777)/(b'y'*1400)`, ether: false, family: 4 },
  { label: "v4 echo request", expr: `IP(src='${C4}',dst='${V4}')/ICMP(type=8,id=3)/b'ping'`, ether: false, family: 4 },
  { label: "v6 tcp raw", expr: `IPv6(src='${C6}',dst='${V6}')/TCP(sport=40000,dport=443,flags='S')`, ether: false, family: 6 },
  {
    label: "v6 udp ether vlan",
    expr: `Ether(src='${MAC_C}',dst='${MAC_D}')/Dot1Q(vlan=9)/IPv6(src='${C6}',dst='${V6}')/UDP(sport=5,dport=7777)/b'q'`,
    ether: true,
    family: 6,
  },
  { label: "v6 big, quote fits 1280", expr: `IPv6(src='${C6}',dst='${V6}')/UDP(sport=5,dport=7777)/(b'y'*2000)`, ether: false, family: 6 },
];

function linkLength(b: Uint8Array, ether: boolean): number {
  if (!ether) return 0;
  let off = 12;
  while (((b[off] << 8) | b[off + 1]) === 0x8100) off += 4;
  return off + 2;
}

test("port-unreachable: tshark validates type, code, checksum, addresses and the quote", SKIP, () => {
  const inputs = scapyBuild(CASES.map((c) => c.expr));
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  for (const [i, c] of CASES.entries()) {
    const r = core.rewrite(inputs[i], c.ether ? LinkType.Ethernet : LinkType.RawIp, { kind: "port-unreachable" });
    assert.equal(r.verdict, Verdict.Reply, `${c.label}: verdict (reason ${r.reason})`);
    const link = linkLength(inputs[i], c.ether);
    const hdrs = c.family === 4 ? 28 : 48;
    const orig = inputs[i].subarray(link);
    const quote = Math.min(orig.length, (c.family === 4 ? 576 : 1280) - hdrs);
    assert.equal(r.packet.length, link + hdrs + quote, `${c.label}: length`);
    assert.deepEqual(r.packet.subarray(link + hdrs), orig.subarray(0, quote), `${c.label}: quote = original`);
    const [f] = tsharkDissect(c.ether ? PcapLinkType.Ethernet : PcapLinkType.Raw, [r.packet]);
    if (quote === orig.length) assertFrameValid(f, c.label);
    if (c.family === 4) {
      assert.ok(/ip:icmp:ip/.test(f.protocols), `${c.label}: ${f.protocols}`);
      assert.deepEqual([field(f, "icmp.type"), field(f, "icmp.code")], ["3", "3"], c.label);
      assert.equal(field(f, "icmp.checksum.status"), "1", `${c.label}: ICMP checksum`);
      assert.equal(field(f, "ip.checksum.status"), "1", `${c.label}: IP checksum`);
      assert.deepEqual([field(f, "ip.src"), field(f, "ip.dst")], [V4, C4], `${c.label}: addresses`);
      assert.deepEqual([field(f, "ip.src", 1), field(f, "ip.dst", 1)], [C4, V4], `${c.label}: quoted addresses`);
    } else {
      assert.ok(/ipv6:icmpv6:ipv6/.test(f.protocols), `${c.label}: ${f.protocols}`);
      assert.deepEqual([field(f, "icmpv6.type"), field(f, "icmpv6.code")], ["1", "4"], c.label);
      assert.equal(field(f, "icmpv6.checksum.status"), "1", `${c.label}: ICMPv6 checksum`);
      assert.deepEqual([field(f, "ipv6.src"), field(f, "ipv6.dst")], [V6, C6], `${c.label}: addresses`);
      assert.deepEqual([field(f, "ipv6.src", 1), field(f, "ipv6.dst", 1)], [C6, V6], `${c.label}: quoted addresses`);
    }
    if (c.ether) {
      assert.deepEqual([field(f, "eth.dst"), field(f, "eth.src")], [MAC_C, MAC_D], `${c.label}: MACs swapped`);
      assert.deepEqual(r.packet.subarray(12, link), inputs[i].subarray(12, link), `${c.label}: VLAN tags kept`);
    }
  }
});

test("no ICMP error about an ICMP error, a later fragment, or broadcast / multicast", SKIP, () => {
  const cases: Array<[string, string, boolean, number]> = [
    ["v4 dest-unreachable", `IP(src='${C4}',dst='${V4}')/ICMP(type=3,code=3)/IP(src='${V4}',dst='${C4}')/UDP()`, false, DropReason.IcmpSuppressed],
    ["v4 time-exceeded", `IP(src='${C4}',dst='${V4}')/ICMP(type=11)/IP(src='${V4}',dst='${C4}')/UDP()`, false, DropReason.IcmpSuppressed],
    ["v6 packet-too-big", `IPv6(src='${C6}',dst='${V6}')/ICMPv6PacketTooBig(mtu=1280)/IPv6(src='${V6}',dst='${C6}')/UDP()`, false, DropReason.IcmpSuppressed],
    ["v4 later fragment", `IP(src='${C4}',dst='${V4}',frag=10,proto=17)/(b'z'*16)`, false, DropReason.Fragment],
    ["v6 later fragment", `IPv6(src='${C6}',dst='${V6}')/IPv6ExtHdrFragment(offset=10,nh=17)/(b'z'*16)`, false, DropReason.Fragment],
    ["v4 broadcast destination", `IP(src='${C4}',dst='255.255.255.255')/UDP(sport=68,dport=67)`, false, DropReason.IcmpSuppressed],
    ["v4 multicast destination", `IP(src='${C4}',dst='224.0.0.251')/UDP(sport=1,dport=7777)`, false, DropReason.IcmpSuppressed],
    ["v4 unspecified source", `IP(src='0.0.0.0',dst='${V4}')/UDP(sport=68,dport=67)`, false, DropReason.IcmpSuppressed],
    ["v6 multicast destination", `IPv6(src='${C6}',dst='ff02::1')/UDP(sport=1,dport=7777)`, false, DropReason.IcmpSuppressed],
    ["v6 unspecified source", `IPv6(src='::',dst='${V6}')/UDP(sport=1,dport=7777)`, false, DropReason.IcmpSuppressed],
    ["Ethernet broadcast frame", `Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src='${C4}',dst='${V4}')/UDP(sport=1,dport=7777)`, true, DropReason.IcmpSuppressed],
  ];
  const pkts = scapyBuild(cases.map((c) => c[1]));
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  for (const [i, [label, , ether, reason]] of cases.entries()) {
    const r = core.rewrite(pkts[i], ether ? LinkType.Ethernet : LinkType.RawIp, { kind: "port-unreachable" });
    assert.deepEqual([r.verdict, r.reason], [Verdict.Drop, reason], label);
  }
  // ICMP queries are not errors: an echo request does get an answer.
  const [echo6] = scapyBuild([`IPv6(src='${C6}',dst='${V6}')/ICMPv6EchoRequest()`]);
  assert.equal(core.rewrite(echo6, LinkType.RawIp, { kind: "port-unreachable" }).verdict, Verdict.Reply);
});

test("little headroom: the quote moves forward inside the slot, nothing written outside it", SKIP, () => {
  const [pkt] = scapyBuild([`Ether(src='${MAC_C}',dst='${MAC_D}')/IPv6(src='${C6}',dst='${V6}')/UDP(sport=5,dport=7777)/(b'k'*100)`]);
  const core = new PacketCore({ slotCount: 3, slotCapacity: 2048 });
  core.setAction(0, { kind: "port-unreachable" });
  const s = core.slots;
  const base = s.slotAddress(1);
  const guardBefore = s.bytes.slice(s.slotAddress(0), base);
  s.write(1, pkt, LinkType.Ethernet);
  s.bytes.copyWithin(base + 4, base + 128, base + 128 + pkt.length);
  s.setField(1, Desc.Offset, 4);
  core.applyBatch(1, 1);
  const r = s.result(1);
  assert.equal(r.verdict, Verdict.Reply, `reason ${r.reason}`);
  assert.equal(s.field(1, Desc.Offset), 0, "starts at the slot start");
  assert.deepEqual(r.packet.subarray(14 + 48), pkt.subarray(14), "quote intact after the move");
  assert.deepEqual(s.bytes.slice(s.slotAddress(0), base), guardBefore, "slot 0 untouched");
  const [f] = tsharkDissect(PcapLinkType.Ethernet, [r.packet]);
  assertFrameValid(f, "moved quote");
  assert.equal(field(f, "icmpv6.checksum.status"), "1");
});
