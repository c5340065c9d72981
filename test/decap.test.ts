// Real-server side decapsulation: scapy builds ipip / ip6ip6 / 4in6 / 6in4, GRE (with
// checksum, key, sequence) and GUE (checksummed or not, with options, remote checksum
// offload, variant 1) packets; each must come out as exactly the inner packet. Round trips
// through our own encapsulation must give the original back.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PacketCore, LinkType, Verdict, DropReason, PcapLinkType } from "../src/index.js";
import type { TunnelType } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const SKIP = { skip: skipUnless("scapy") };
const GUE_PORT = 6080;
const O4 = "src='192.0.2.1',dst='192.0.2.50'";
const O6 = "src='2001:db8:d::1',dst='2001:db8:d::50'";
const I4 = "IP(src='198.51.100.7',dst='203.0.113.10',tos=0x10,ttl=40)/TCP(sport=40001,dport=80,flags='PA')/(b'GET /')";
const I6 = "IPv6(src='2001:db8:c::7',dst='2001:db8:f::10',hlim=40)/UDP(sport=40002,dport=7777)/(b'hello six')";
const GUE4 = "b'\\x00\\x04\\x00\\x00'";
const GUE41 = "b'\\x00\\x29\\x00\\x00'";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

interface DecapCase {
  label: string;
  outer: string;
  inner: string;
  ether?: boolean;
}

const CASES: DecapCase[] = [
  { label: "ipip", outer: `IP(${O4})`, inner: I4 },
  { label: "ip6ip6", outer: `IPv6(${O6})`, inner: I6 },
  { label: "4in6", outer: `IPv6(${O6})`, inner: I4 },
  { label: "6in4", outer: `IP(${O4})`, inner: I6 },
  { label: "ipip ether", outer: `IP(${O4})`, inner: I4, ether: true },
  { label: "6in4 ether (EtherType changes)", outer: `IP(${O4})`, inner: I6, ether: true },
  { label: "GRE v4", outer: `IP(${O4})/GRE()`, inner: I4 },
  { label: "GRE csum", outer: `IP(${O4})/GRE(chksum_present=1)`, inner: I6 },
  { label: "GRE key+seq", outer: `IPv6(${O6})/GRE(key_present=1,key=0x1234,seqnum_present=1,sequence_number=9)`, inner: I4 },
  {
    label: "GRE csum+key+seq ether",
    outer: `IPv6(${O6})/GRE(chksum_present=1,key_present=1,key=7,seqnum_present=1,sequence_number=1)`,
    inner: I6,
    ether: true,
  },
  { label: "GUE v4 with UDP checksum", outer: `IP(${O4})/UDP(sport=50000,dport=${GUE_PORT})/Raw(${GUE4})`, inner: I4 },
  { label: "GUE v4 zero checksum", outer: `IP(${O4})/UDP(sport=50000,dport=${GUE_PORT},chksum=0)/Raw(${GUE41})`, inner: I6 },
  { label: "GUE v6 zero checksum (RFC 6935)", outer: `IPv6(${O6})/UDP(sport=50000,dport=${GUE_PORT},chksum=0)/Raw(${GUE4})`, inner: I4 },
  { label: "GUE v6 checksum ether", outer: `IPv6(${O6})/UDP(sport=50000,dport=${GUE_PORT})/Raw(${GUE41})`, inner: I6, ether: true },
  { label: "GUE hlen options skipped", outer: `IP(${O4})/UDP(sport=50000,dport=${GUE_PORT})/Raw(b'\\x02\\x04\\x00\\x00' + b'\\xaa'*8)`, inner: I4 },
  { label: "GUE variant 1 (direct IP)", outer: `IP(${O4})/UDP(sport=50000,dport=${GUE_PORT})`, inner: I6 },
];

function wrap(c: DecapCase, outer: string, inner: string): string {
  const pkt = `${outer}/${inner}`;
  return c.ether ? `Ether(src='02:00:00:00:0a:01',dst='02:00:00:00:0b:02')/${pkt}` : pkt;
}

test("scapy-built tunnel packets decapsulate to exactly the inner packet", SKIP, () => {
  const built = scapyBuild(CASES.flatMap((c) => [wrap(c, c.outer, c.inner), c.inner]));
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  for (const [i, c] of CASES.entries()) {
    const [tunnelled, inner] = [built[2 * i], built[2 * i + 1]];
    const r = core.rewrite(tunnelled, c.ether ? LinkType.Ethernet : LinkType.RawIp, {
      kind: "decap",
      port: GUE_PORT,
      ...(c.ether ? { destinationMac: "02:00:00:00:0c:03", sourceMac: "02:00:00:00:0d:04" } : {}),
    });
    assert.equal(r.verdict, Verdict.Forward, `${c.label}: verdict (reason ${r.reason})`);
    if (c.ether) {
      assert.equal(hex(r.packet.subarray(14)), hex(inner), `${c.label}: inner`);
      assert.equal(hex(r.packet.subarray(0, 12)), "020000000c03" + "020000000d04", `${c.label}: MACs`);
      const et = (r.packet[12] << 8) | r.packet[13];
      assert.equal(et, inner[0] >> 4 === 4 ? 0x0800 : 0x86dd, `${c.label}: EtherType follows the inner family`);
    } else {
      assert.equal(hex(r.packet), hex(inner), `${c.label}: inner`);
    }
  }
});

/** The inner TCP checksum in "partial" form: the folded pseudo-header sum (what remcsum carries). */
function toPartialChecksum(ip: Uint8Array, l4: number): Uint8Array {
  const out = ip.slice();
  const field = l4 + 16;
  const sum = (b: Uint8Array, from: number, to: number) => {
    let s = 0;
    for (let i = from; i < to; i += 2) s += (b[i] << 8) | (i + 1 < to ? b[i + 1] : 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return s;
  };
  const full = (out[field] << 8) | out[field + 1];
  out[field] = 0;
  out[field + 1] = 0;
  const data = sum(out, l4, out.length);
  // P such that data + P == ~full (one's complement): P = ~full + ~data.
  let p = (~full & 0xffff) + (~data & 0xffff);
  while (p > 0xffff) p = (p & 0xffff) + (p >>> 16);
  out[field] = p >> 8;
  out[field + 1] = p & 0xff;
  return out;
}

test("GUE remote checksum offload: the inner checksum is completed on decapsulation", SKIP, () => {
  const [inner] = scapyBuild([I4]);
  const partial = toPartialChecksum(inner, 20);
  assert.notEqual(hex(partial), hex(inner), "the partial form differs from the finished packet");
  // hlen 2: private flags word (REMCSUM) + csum start 20 / checksum field at 36, inner-relative.
  const gue = "02040001" + "80000000" + "0014" + "0024";
  const [tunnelled] = scapyBuild([`IP(${O4})/UDP(sport=50000,dport=${GUE_PORT})/Raw(bytes.fromhex('${gue}${hex(partial)}'))`]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  const r = core.rewrite(tunnelled, LinkType.RawIp, { kind: "decap", port: GUE_PORT });
  assert.equal(r.verdict, Verdict.Forward, `reason ${r.reason}`);
  assert.equal(hex(r.packet), hex(inner), "inner packet with its real checksum");
});

test("encapsulate then decapsulate gives the original packet back", SKIP, () => {
  const inputs = scapyBuild([I4, I6, `Ether()/${I4}`, `Ether()/Dot1Q(vlan=5)/${I6}`]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  let n = 0;
  for (const [i, pkt] of inputs.entries()) {
    const ether = i >= 2;
    const link = ether ? LinkType.Ethernet : LinkType.RawIp;
    for (const outer of [4, 6] as const) {
      for (const [type, checksum] of [
        ["ipip", false],
        ["gue", false],
        ["gue", true],
        ["gre", false],
        ["gre", true],
      ] as [TunnelType, boolean][]) {
        const enc = core.rewrite(pkt, link, {
          kind: "tunnel",
          type,
          remote: outer === 4 ? "192.0.2.50" : "2001:db8:d::50",
          local: outer === 4 ? "192.0.2.1" : "2001:db8:d::1",
          ...(type === "gue" ? { port: GUE_PORT } : {}),
          ...(type !== "ipip" && checksum ? { checksum } : {}),
        });
        assert.equal(enc.verdict, Verdict.Forward);
        assert.ok(enc.packet.length > pkt.length, "grew");
        const dec = core.rewrite(enc.packet, link, { kind: "decap", port: GUE_PORT });
        assert.equal(dec.verdict, Verdict.Forward, `${i} ${outer} ${type}: reason ${dec.reason}`);
        assert.equal(hex(dec.packet), hex(pkt), `${i} ${outer} ${type} ${checksum}: round trip`);
        n++;
      }
    }
  }
  assert.equal(n, 40);
});

test("packets that are not tunnels pass to the host unchanged", SKIP, () => {
  const pkts = scapyBuild([
    I4,
    `IP(${O4})/UDP(sport=1,dport=${GUE_PORT + 1})/${I4}`,
    `IP(${O4})/GRE(proto=0x6558)/Ether()/${I4}`, // transparent Ethernet bridging
    `IP(${O4})/UDP(sport=1,dport=${GUE_PORT})/Raw(b'\\x20\\x00\\x00\\x00')`, // GUE control message
  ]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  for (const [i, p] of pkts.entries()) {
    const r = core.rewrite(p, LinkType.RawIp, { kind: "decap", port: GUE_PORT });
    assert.deepEqual([r.verdict, r.reason], [Verdict.Pass, DropReason.None], `case ${i}`);
    assert.equal(hex(r.packet), hex(p), `case ${i} unchanged`);
  }
  // Without a GUE port, UDP is never decapsulated.
  const [gue] = scapyBuild([`IP(${O4})/UDP(sport=1,dport=${GUE_PORT})/Raw(${GUE4})/${I4}`]);
  assert.equal(core.rewrite(gue, LinkType.RawIp, { kind: "decap" }).verdict, Verdict.Pass);
});

test("broken tunnel packets are dropped with the reason", SKIP, () => {
  const [badInner, badGre, badUdp, wrongFamily, frag] = scapyBuild([
    `IP(${O4})/IP(src='1.1.1.1',dst='2.2.2.2',chksum=0x1234)/UDP()`,
    `IP(${O4})/GRE(chksum_present=1,chksum=0xbeef)/${I4}`,
    `IP(${O4})/UDP(sport=1,dport=${GUE_PORT},chksum=0x1111)/Raw(${GUE4})/${I4}`,
    `IP(${O4},proto=4)/${I6}`,
    `IP(${O4},flags='MF')/${I4}`,
  ]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  const reason = (p: Uint8Array) => {
    const r = core.rewrite(p, LinkType.RawIp, { kind: "decap", port: GUE_PORT });
    assert.equal(r.verdict, Verdict.Drop);
    return r.reason;
  };
  assert.equal(reason(badInner), DropReason.BadIpChecksum, "inner header checksum");
  assert.equal(reason(badGre), DropReason.BadL4Checksum, "GRE checksum");
  assert.equal(reason(badUdp), DropReason.BadL4Checksum, "GUE UDP checksum");
  assert.equal(reason(wrongFamily), DropReason.BadVersion, "protocol 4 carrying IPv6");
  assert.equal(reason(frag), DropReason.Fragment, "outer fragment");
});

test("ECN decapsulation (RFC 6040): outer CE marks an ECT inner packet, tshark-valid", { skip: skipUnless("scapy", "tshark") }, () => {
  const [ceOverEct, ceOverNotEct, ce6] = scapyBuild([
    `IP(${O4},tos=0x03)/IP(src='198.51.100.7',dst='203.0.113.10',tos=0x12)/UDP(sport=1,dport=7777)`,
    `IP(${O4},tos=0x03)/IP(src='198.51.100.7',dst='203.0.113.10',tos=0x10)/UDP(sport=1,dport=7777)`,
    `IPv6(${O6},tc=0x03)/IPv6(src='2001:db8:c::7',dst='2001:db8:f::10',tc=0x21)/UDP(sport=1,dport=7777)`,
  ]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 4096 });
  const a = core.rewrite(ceOverEct, LinkType.RawIp, { kind: "decap" });
  assert.equal(a.verdict, Verdict.Forward);
  assert.equal(a.packet[1], 0x13, "inner ECT(0) became CE, DSCP kept");
  const b = core.rewrite(ceOverNotEct, LinkType.RawIp, { kind: "decap" });
  assert.equal(b.verdict, Verdict.Drop, "not-ECT under CE is dropped");
  const c = core.rewrite(ce6, LinkType.RawIp, { kind: "decap" });
  assert.equal(c.verdict, Verdict.Forward);
  assert.equal(((c.packet[0] & 0xf) << 4) | (c.packet[1] >> 4), 0x23, "IPv6 inner CE");
  const frames = tsharkDissect(PcapLinkType.Raw, [a.packet, c.packet]);
  frames.forEach((f, i) => assertFrameValid(f, `ecn ${i}`));
  assert.equal(frames[0].fields.get("ip.checksum.status")?.[0], "1", "IPv4 header checksum updated");
});
