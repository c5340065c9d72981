// IPv6 neighbour discovery on the AF_PACKET path (src/runtime/nd-responder.ts): scapy builds
// the solicitations and advertisements a client, a router or a real server sends; the
// responder answers through a frame sender that records what it sends, and tshark judges
// those frames with checksum validation. The namespace matrix (test/adapter-matrix.test.ts)
// checks the same code against real kernels' neighbour discovery.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, PcapLinkType } from "../src/index.js";
import { NdResponder, icmp6Checksum } from "../src/runtime/nd-responder.js";
import { VipArp } from "../src/runtime/ethernet.js";
import { scapyBuild } from "./support/scapy.js";
import { assertFrameValid, tsharkDissect, type DissectedFrame } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";
import type { PacketIO } from "../src/io/packet-io.js";

const OUR_MAC = "02:00:00:00:02:00";
const CLIENT_MAC = "02:00:00:00:01:00";
const VIP6 = "fd00::100";
const CLIENT6 = "fd00::2";
const RS6 = "fd00:10::11";
const RS_MAC = "02:00:00:00:11:00";

const NO_IO = {} as PacketIO;

function setup(vips: readonly string[] = [VIP6], probeSource?: string) {
  const sent: Uint8Array[] = [];
  const balancer = new Balancer({ connections: 16 });
  const nd = new NdResponder({ balancer, vips, io: { mac: OUR_MAC, sendFrame: (f) => sent.push(f.slice()) > 0 }, ...(probeSource ? { probeSource } : {}) });
  return { balancer, nd, sent };
}

const field = (f: DissectedFrame, name: string) => f.fields.get(name)?.[0];

/** A neighbour solicitation as a client's kernel sends it (to the solicited-node group). */
const ns = (target: string, extra = "") =>
  `Ether(src='${CLIENT_MAC}',dst='33:33:ff:00:01:00')/IPv6(src='${CLIENT6}',dst='ff02::1:ff00:100',hlim=255)/ICMPv6ND_NS(tgt='${target}')/ICMPv6NDOptSrcLLAddr(lladdr='${CLIENT_MAC}')${extra}`;

test("ND: a solicitation for a VIP gets a solicited, override advertisement with our MAC, valid to tshark; the asker is learnt", {
  skip: skipUnless("scapy", "tshark"),
}, () => {
  const { nd, sent } = setup();
  const [frame] = scapyBuild([ns(VIP6)]);
  assert.equal(nd.hook(frame, NO_IO, 0), "consumed");
  assert.equal(sent.length, 1, "one advertisement sent");
  const [na] = tsharkDissect(PcapLinkType.Ethernet, sent);
  assertFrameValid(na, "NA");
  assert.equal(field(na, "icmpv6.checksum.status"), "1", "ICMPv6 checksum verified good");
  assert.equal(field(na, "icmpv6.type"), "136");
  assert.equal(field(na, "icmpv6.nd.na.target_address"), VIP6);
  assert.equal(field(na, "icmpv6.nd.na.flag.s"), "1", "solicited");
  assert.equal(field(na, "icmpv6.nd.na.flag.o"), "1", "override");
  assert.equal(field(na, "icmpv6.nd.na.flag.r"), "0", "not a router");
  assert.equal(field(na, "icmpv6.opt.type"), "2", "target link-layer address option");
  assert.equal(field(na, "icmpv6.opt.linkaddr"), OUR_MAC);
  assert.equal(field(na, "ipv6.src"), VIP6);
  assert.equal(field(na, "ipv6.dst"), CLIENT6, "unicast back to the asker");
  assert.equal(field(na, "ipv6.hlim"), "255");
  assert.equal(field(na, "eth.dst"), CLIENT_MAC, "to the solicitation's source link-layer address");
  assert.equal(field(na, "eth.src"), OUR_MAC);
  assert.deepEqual([...nd.learned], [[CLIENT6, CLIENT_MAC]]);
});

test("ND: a DAD probe for a VIP is defended to all-nodes without the solicited flag", { skip: skipUnless("scapy", "tshark") }, () => {
  const { nd, sent } = setup();
  const [frame] = scapyBuild([`Ether(src='${CLIENT_MAC}',dst='33:33:ff:00:01:00')/IPv6(src='::',dst='ff02::1:ff00:100',hlim=255)/ICMPv6ND_NS(tgt='${VIP6}')`]);
  assert.equal(nd.hook(frame, NO_IO, 0), "consumed");
  const [na] = tsharkDissect(PcapLinkType.Ethernet, sent);
  assertFrameValid(na, "NA");
  assert.equal(field(na, "icmpv6.checksum.status"), "1");
  assert.equal(field(na, "ipv6.dst"), "ff02::1");
  assert.equal(field(na, "eth.dst"), "33:33:00:00:00:01");
  assert.equal(field(na, "icmpv6.nd.na.flag.s"), "0");
  assert.equal(nd.learned.size, 0, "nothing learnt from an unspecified source");
});

test("ND: solicitations for other addresses are not answered but teach the asker's MAC; invalid ones are dropped unanswered", {
  skip: skipUnless("scapy"),
}, () => {
  const { nd, sent } = setup();
  const frames = scapyBuild([
    ns("fd00::99"), // not a VIP
    ns(VIP6).replace("hlim=255", "hlim=64"), // RFC 4861 7.1.1: hop limit must be 255
    `Ether(src='${CLIENT_MAC}')/IPv6(src='${CLIENT6}',dst='ff02::1:ff00:100',hlim=255)/ICMPv6ND_NS(tgt='${VIP6}',cksum=0x1234)/ICMPv6NDOptSrcLLAddr(lladdr='${CLIENT_MAC}')`,
    `Ether(src='${CLIENT_MAC}')/IPv6(src='${CLIENT6}',dst='ff02::1:ff00:100',hlim=255)/ICMPv6ND_NS(tgt='${VIP6}',code=1)`,
    `Ether(src='${CLIENT_MAC}')/IPv6(src='::',dst='ff02::1:ff00:100',hlim=255)/ICMPv6ND_NS(tgt='${VIP6}')/ICMPv6NDOptSrcLLAddr(lladdr='${CLIENT_MAC}')`, // DAD with an option
    `Ether(src='${CLIENT_MAC}')/IPv6(src='${CLIENT6}',dst='ff02::1:ff00:100',hlim=255)/ICMPv6ND_NS(tgt='${VIP6}')/Raw(b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')`, // zero-length option
    `Ether(src='${CLIENT_MAC}')/IPv6(src='${CLIENT6}',dst='ff02::1:ff00:100',hlim=255)/ICMPv6EchoRequest()`, // not ND: next hook
  ]);
  assert.equal(nd.hook(frames[0], NO_IO, 0), "consumed");
  assert.equal(sent.length, 0, "no answer for an address that is not a VIP");
  assert.deepEqual([...nd.learned], [[CLIENT6, CLIENT_MAC]]);
  for (const [i, f] of frames.slice(1, 6).entries()) assert.equal(nd.hook(f, NO_IO, 0), "drop", `invalid solicitation ${i + 1}`);
  assert.equal(nd.stats.invalid, 5);
  assert.equal(nd.hook(frames[6], NO_IO, 0), "drop", "not ND, no next hook: dropped");
  // Truncated copies of a valid solicitation never throw and are never answered.
  const [good] = scapyBuild([ns(VIP6)]);
  for (let n = 0; n < good.length; n++) assert.ok(["drop", "consumed"].includes(String(nd.hook(good.slice(0, n), NO_IO, 0))));
  assert.equal(sent.length, 0);
});

test("ND: resolve() sends a tshark-valid solicitation to the target's solicited-node group, rate-limited; the advertisement teaches the MAC", {
  skip: skipUnless("scapy", "tshark"),
}, () => {
  const { nd, sent, balancer } = setup([]);
  nd.resolve(RS6, 6);
  nd.resolve(RS6, 6); // within the interval: no second probe
  nd.resolve("192.168.10.11", 4); // ARP's business
  assert.equal(sent.length, 1);
  const [probe] = tsharkDissect(PcapLinkType.Ethernet, sent);
  assertFrameValid(probe, "NS");
  assert.equal(field(probe, "icmpv6.checksum.status"), "1");
  assert.equal(field(probe, "icmpv6.type"), "135");
  assert.equal(field(probe, "icmpv6.nd.ns.target_address"), RS6);
  assert.equal(field(probe, "ipv6.dst"), "ff02::1:ff00:11");
  assert.equal(field(probe, "eth.dst"), "33:33:ff:00:00:11");
  assert.equal(field(probe, "ipv6.src"), "::", "a probe from the unspecified address, like ARP's from 0.0.0.0");
  assert.equal(field(probe, "icmpv6.opt.type"), undefined, "no source link-layer option from ::");
  // The real server's kernel answers a probe from :: to all-nodes, not solicited (RFC 4861 7.2.4).
  const [na] = scapyBuild([
    `Ether(src='${RS_MAC}',dst='33:33:00:00:00:01')/IPv6(src='${RS6}',dst='ff02::1',hlim=255)/ICMPv6ND_NA(tgt='${RS6}',S=0,O=1)/ICMPv6NDOptDstLLAddr(lladdr='${RS_MAC}')`,
  ]);
  assert.equal(nd.hook(na, NO_IO, 0), "consumed");
  assert.equal(nd.learned.get(RS6), RS_MAC);
  // The balancer has it: a second setNeighbour of the same entry is no new learning.
  assert.equal(nd.stats.learned, 1);
  void balancer;
});

test("ND: with a probe source the solicitation carries our link-layer address, and its checksum is right", { skip: skipUnless("tshark") }, () => {
  const { nd, sent } = setup([], "fd00:10::1");
  nd.resolve(RS6, 6);
  const [probe] = tsharkDissect(PcapLinkType.Ethernet, sent);
  assertFrameValid(probe, "NS");
  assert.equal(field(probe, "icmpv6.checksum.status"), "1");
  assert.equal(field(probe, "ipv6.src"), "fd00:10::1");
  assert.equal(field(probe, "icmpv6.opt.linkaddr"), OUR_MAC);
  // The checksum function itself: a frame we sent sums to zero with its checksum in place.
  const f = sent[0];
  assert.equal(icmp6Checksum(f.subarray(22, 38), f.subarray(38, 54), f, 54, f.length - 54), 0);
  f[60] ^= 1;
  assert.notEqual(icmp6Checksum(f.subarray(22, 38), f.subarray(38, 54), f, 54, f.length - 54), 0);
});

test("VipArp: ND answers for the IPv6 VIPs of the configuration on client ports only, and probes IPv6 next hops on the port they route to", {
  skip: skipUnless("scapy"),
}, () => {
  const balancer = new Balancer({ connections: 16 });
  const sent: Array<[string, Uint8Array]> = [];
  const port = (name: string, mac: string, serverSide: boolean) =>
    ({
      name,
      mac,
      serverSide,
      sendFrame: (f: Uint8Array) => sent.push([name, f.slice()]) > 0,
    }) as unknown as import("../src/runtime/ethernet.js").EthernetPort;
  const client = port("eth0", OUR_MAC, false);
  const server = port("eth1", "02:00:00:00:02:01", true);
  const arp = new VipArp(balancer, [client, server], [{ prefix: "fd00:10::/64", port: server }]);
  const key = { kind: "address", protocol: "tcp", address: VIP6, port: 80 } as const;
  balancer.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  const [solicit] = scapyBuild([ns(VIP6)]);
  assert.equal(arp.hook(solicit.slice(), server, 0), "consumed");
  assert.equal(sent.length, 0, "the server side answers for no VIP");
  assert.equal(arp.hook(solicit.slice(), client, 0), "consumed");
  assert.deepEqual(
    sent.map(([n, f]) => [n, f[54]]),
    [["eth0", 136]],
    "the client side answers with an advertisement",
  );
  assert.equal(arp.portFor(RS6), server);
  assert.equal(arp.portFor("fd00::5"), undefined);
  arp.resolve(RS6, 6, client);
  assert.deepEqual(
    sent.slice(1).map(([n, f]) => [n, f[54]]),
    [["eth1", 135]],
    "the probe leaves by the port the next hop routes to",
  );
  assert.equal(arp.learned().get(CLIENT6), CLIENT_MAC);
});
