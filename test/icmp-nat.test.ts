// ICMP errors about NAT flows (icmp-nat-in / icmp-nat-out): scapy builds the errors, the
// data plane rewrites outer and quoted headers, tshark verifies every checksum and shows
// the new addresses and ports inside the quote.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PacketCore, LinkType, Verdict, DropReason, PcapLinkType } from "../src/index.js";
import type { ForwardAction } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const SKIP = { skip: skipUnless("scapy", "tshark") };

const ADDR = {
  4: { cip: "10.0.0.1", vip: "10.0.0.100", rip: "192.168.7.5", cliRouter: "10.0.0.254", rsRouter: "192.168.7.254" },
  6: { cip: "2001:db8:1::1", vip: "2001:db8:2::100", rip: "2001:db8:3::5", cliRouter: "2001:db8:1::fe", rsRouter: "2001:db8:3::fe" },
} as const;
const CPORT = 40000;
const VPORT = 80;
const RPORT = 8080;
const NEW_MACS = { destinationMac: "02:aa:bb:cc:dd:01", sourceMac: "02:aa:bb:cc:dd:02" };

type Family = 4 | 6;
type Dir = "in" | "out";
type L4 = "tcp" | "udp";
type Err = "too-big" | "time-exceeded" | "unreachable";

interface Case {
  label: string;
  family: Family;
  dir: Dir;
  l4: L4;
  full: boolean;
  eth: boolean;
  expr: string;
}

/**
 * in: a router on the client side answers a reply we sent (VIP:vport -> CIP:cport), so the
 * error goes to the VIP. out: the real-server side answers a packet we forwarded
 * (CIP:cport -> RIP:rport), so the error comes from there toward the client.
 */
function errorExpr(family: Family, dir: Dir, l4: L4, err: Err, full: boolean): string {
  const a = ADDR[family];
  const [osrc, odst] = dir === "in" ? [a.cliRouter, a.vip] : [a.rsRouter, a.cip];
  const [qsrc, qdst, qsport, qdport] = dir === "in" ? [a.vip, a.cip, VPORT, CPORT] : [a.cip, a.rip, CPORT, RPORT];
  const ipc = family === 4 ? "IP" : "IPv6";
  const l4expr = l4 === "tcp" ? `TCP(sport=${qsport},dport=${qdport},flags='PA',seq=7,ack=9)` : `UDP(sport=${qsport},dport=${qdport})`;
  const quoted = `${ipc}(src='${qsrc}',dst='${qdst}')/${l4expr}/b'quoted payload bytes'`;
  // A short quote is what RFC 792 asks for: the IP header and 8 bytes of L4.
  const quote = full ? quoted : `Raw(bytes(${quoted})[:${family === 4 ? 28 : 48}])`;
  let icmp: string;
  if (family === 4) icmp = err === "time-exceeded" ? "ICMP(type=11,code=0)" : err === "too-big" ? "ICMP(type=3,code=4,nexthopmtu=1400)" : "ICMP(type=3,code=3)";
  else icmp = err === "time-exceeded" ? "ICMPv6TimeExceeded(code=0)" : err === "too-big" ? "ICMPv6PacketTooBig(mtu=1280)" : "ICMPv6DestUnreach(code=4)";
  return `${ipc}(src='${osrc}',dst='${odst}')/${icmp}/${quote}`;
}

function actionFor(family: Family, dir: Dir, macs: boolean): ForwardAction {
  const a = ADDR[family];
  const m = macs ? NEW_MACS : {};
  return dir === "in" ? { kind: "icmp-nat-in", address: a.rip, port: RPORT, ...m } : { kind: "icmp-nat-out", address: a.vip, port: VPORT, ...m };
}

const all = (f: DissectedFrame, key: string): string[] => {
  const v = f.fields.get(key);
  assert.ok(v && v.length > 0, `tshark shows no ${key} (${f.protocols})`);
  return v;
};

function assertGood(f: DissectedFrame, keys: readonly string[], label: string): void {
  assertFrameValid(f, label);
  for (const key of keys) {
    const v = all(f, key);
    assert.deepEqual(
      v,
      v.map(() => "1"),
      `${label}: ${key} = ${v.join(",")}`,
    );
  }
}

function cases(): Case[] {
  const out: Case[] = [];
  let n = 0;
  for (const family of [4, 6] as const)
    for (const dir of ["in", "out"] as const)
      for (const l4 of ["tcp", "udp"] as const)
        for (const err of ["too-big", "time-exceeded", "unreachable"] as const)
          for (const full of [true, false]) {
            const eth = n++ % 3 === 0; // a third of them as Ethernet frames with a MAC rewrite
            const ip = errorExpr(family, dir, l4, err, full);
            out.push({
              label: `IPv${family} ${err} quoting ${l4} (${full ? "full" : "8-byte"} quote), icmp-nat-${dir}${eth ? ", Ethernet" : ""}`,
              family,
              dir,
              l4,
              full,
              eth,
              expr: eth ? `Ether(dst='02:00:00:00:00:01',src='02:00:00:00:00:02')/${ip}` : ip,
            });
          }
  return out;
}

test("ICMP-error NAT: outer and quoted headers rewritten, every checksum verified by tshark", SKIP, () => {
  const list = cases();
  const packets = scapyBuild(list.map((c) => c.expr));
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  const results = list.map((c, i) => {
    const r = core.rewrite(packets[i], c.eth ? LinkType.Ethernet : LinkType.RawIp, actionFor(c.family, c.dir, c.eth));
    assert.equal(r.verdict, Verdict.Forward, `${c.label}: verdict ${r.verdict} reason ${r.reason}`);
    assert.equal(r.packet.length, packets[i].length);
    return r.packet;
  });
  for (const eth of [true, false]) {
    const idx = list.flatMap((c, i) => (c.eth === eth ? [i] : []));
    const lt = eth ? PcapLinkType.Ethernet : PcapLinkType.Raw;
    const before = tsharkDissect(
      lt,
      idx.map((i) => packets[i]),
    );
    const after = tsharkDissect(
      lt,
      idx.map((i) => results[i]),
    );
    idx.forEach((ci, k) => {
      const c = list[ci];
      const a = ADDR[c.family];
      const ipx = c.family === 4 ? "ip" : "ipv6";
      const keys = c.family === 4 ? ["ip.checksum.status", "icmp.checksum.status"] : ["icmpv6.checksum.status"];
      // The quoted L4 checksum is checkable only when the whole original is quoted.
      if (c.full) keys.push(`${c.l4}.checksum.status`);
      assertGood(before[k], keys, `${c.label} (original)`);
      assertGood(after[k], keys, c.label);
      if (c.family === 4) assert.equal(all(after[k], "ip.checksum.status").length, 2, `${c.label}: outer and quoted IPv4 headers verified`);
      const src = all(after[k], `${ipx}.src`);
      const dst = all(after[k], `${ipx}.dst`);
      const sport = Number(all(after[k], `${c.l4}.srcport`)[0]);
      const dport = Number(all(after[k], `${c.l4}.dstport`)[0]);
      if (c.dir === "in") {
        assert.deepEqual(
          [src, dst],
          [
            [a.cliRouter, a.rip],
            [a.rip, a.cip],
          ],
          `${c.label}: outer dst and quoted src -> RIP`,
        );
        assert.deepEqual([sport, dport], [RPORT, CPORT], `${c.label}: quoted source port -> rport`);
      } else {
        assert.deepEqual(
          [src, dst],
          [
            [a.vip, a.cip],
            [a.cip, a.vip],
          ],
          `${c.label}: outer src and quoted dst -> VIP`,
        );
        assert.deepEqual([sport, dport], [CPORT, VPORT], `${c.label}: quoted destination port -> vport`);
      }
      if (c.eth) {
        assert.equal(all(after[k], "eth.dst")[0], NEW_MACS.destinationMac);
        assert.equal(all(after[k], "eth.src")[0], NEW_MACS.sourceMac);
      }
    });
  }
});

test("ICMP-error NAT of a quoted later fragment rewrites the address only", SKIP, () => {
  const a = ADDR[4];
  const [pkt] = scapyBuild([
    `IP(src='${a.rsRouter}',dst='${a.cip}')/ICMP(type=11,code=1)/IP(src='${a.cip}',dst='${a.rip}',frag=20,proto=17)/(b'later fragment bytes')`,
  ]);
  const core = new PacketCore({ slotCount: 1, slotCapacity: 2048 });
  const r = core.rewrite(pkt, LinkType.RawIp, { kind: "icmp-nat-out", address: a.vip, port: VPORT });
  assert.equal(r.verdict, Verdict.Forward, `reason ${r.reason}`);
  const qL4 = 20 + 8 + 20;
  assert.deepEqual(r.packet.subarray(qL4), pkt.subarray(qL4), "no L4 header in a later fragment: bytes after the quoted IP header unchanged");
  const [f] = tsharkDissect(PcapLinkType.Raw, [r.packet]);
  assertGood(f, ["ip.checksum.status", "icmp.checksum.status"], "quoted later fragment");
  assert.deepEqual(all(f, "ip.src"), [a.vip, a.cip]);
  assert.deepEqual(all(f, "ip.dst"), [a.cip, a.vip]);
});

test("ICMP-error NAT drops malformed or unsupported messages with a reason, untouched", SKIP, () => {
  const a4 = ADDR[4];
  const a6 = ADDR[6];
  const q4 = `bytes(IP(src='${a4.cip}',dst='${a4.rip}')/TCP(sport=${CPORT},dport=${RPORT}))`;
  const q6 = `bytes(IPv6(src='${a6.cip}',dst='${a6.rip}')/TCP(sport=${CPORT},dport=${RPORT}))`;
  const outer4 = `IP(src='${a4.rsRouter}',dst='${a4.cip}')`;
  const outer6 = `IPv6(src='${a6.rsRouter}',dst='${a6.cip}')`;
  const v4out: ForwardAction = { kind: "icmp-nat-out", address: a4.vip, port: VPORT };
  const v6out: ForwardAction = { kind: "icmp-nat-out", address: a6.vip, port: VPORT };
  const cases: Array<[string, string, ForwardAction, number]> = [
    ["echo request is not an error", `${outer4}/ICMP(type=8,id=1)/b'ping'`, v4out, DropReason.Unsupported],
    ["ICMPv6 echo is not an error", `${outer6}/ICMPv6EchoRequest(id=1)`, v6out, DropReason.Unsupported],
    ["TCP is not ICMP", `${outer4}/TCP()`, v4out, DropReason.Unsupported],
    ["family mismatch", `${outer4}/ICMP(type=11)/Raw(${q4})`, v6out, DropReason.Unsupported],
    ["quote shorter than an IPv4 header", `${outer4}/ICMP(type=11)/Raw(${q4}[:12])`, v4out, DropReason.Truncated],
    ["quoted version 6 in ICMPv4", `${outer4}/ICMP(type=11)/Raw(${q6})`, v4out, DropReason.BadVersion],
    ["quoted IHL 4", `${outer4}/ICMP(type=11)/Raw(b'\\x44'+${q4}[1:])`, v4out, DropReason.BadHeaderLength],
    ["quoted IHL 15 past the quote", `${outer4}/ICMP(type=11)/Raw(b'\\x4f'+${q4}[1:28])`, v4out, DropReason.Truncated],
    ["quoted total length below IHL", `${outer4}/ICMP(type=11)/Raw(${q4}[:2]+b'\\x00\\x10'+${q4}[4:])`, v4out, DropReason.BadTotalLength],
    ["4 bytes of quoted TCP", `${outer4}/ICMP(type=3,code=4)/Raw(${q4}[:24])`, v4out, DropReason.Truncated],
    ["bad ICMP checksum", `${outer4}/ICMP(type=11,chksum=0x1234)/Raw(${q4})`, v4out, DropReason.BadL4Header],
    ["bad ICMPv6 checksum", `${outer6}/ICMPv6TimeExceeded(cksum=0x1234)/Raw(${q6})`, v6out, DropReason.BadL4Header],
    ["quote shorter than an IPv6 header", `${outer6}/ICMPv6TimeExceeded()/Raw(${q6}[:39])`, v6out, DropReason.Truncated],
    ["quoted version 4 in ICMPv6", `${outer6}/ICMPv6TimeExceeded()/Raw(${q4}+b'\\0'*24)`, v6out, DropReason.BadVersion],
    [
      "quoted extension header past the quote",
      `${outer6}/ICMPv6TimeExceeded()/Raw(bytes(IPv6(src='${a6.cip}',dst='${a6.rip}')/IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\\0'*30)])/TCP())[:56])`,
      v6out,
      DropReason.Truncated,
    ],
    ["fragmented ICMP error", `IP(src='${a4.rsRouter}',dst='${a4.cip}',flags='MF')/ICMP(type=11)/Raw(${q4})`, v4out, DropReason.Fragment],
  ];
  const packets = scapyBuild(cases.map((c) => c[1]));
  const core = new PacketCore({ slotCount: 1, slotCapacity: 2048 });
  for (const [i, [label, , action, reason]] of cases.entries()) {
    assert.equal(core.parseBytes(packets[i], LinkType.RawIp).status, DropReason.None, `${label}: parses as an IP packet`);
    const r = core.rewrite(packets[i], LinkType.RawIp, action);
    assert.equal(r.verdict, Verdict.Drop, label);
    assert.equal(r.reason, reason, `${label}: reason ${r.reason}, want ${reason}`);
    assert.deepEqual(r.packet, packets[i], `${label}: bytes unchanged`);
  }
});
