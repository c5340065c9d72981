// Full NAT's local addresses on an AF_PACKET director: the real servers' replies are
// addressed to them, so every port (the server side included, which answers for no VIP)
// answers ARP and neighbour solicitations for them; they come and go with the configuration.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer } from "../src/index.js";
import { VipArp, type EthernetPort } from "../src/runtime/ethernet.js";
import { scapyBuild } from "./support/scapy.js";
import { skipUnless } from "./support/tools.js";

const RS_MAC = "02:00:00:00:11:00";
const arpRequest = (target: string) => `Ether(src='${RS_MAC}',dst='ff:ff:ff:ff:ff:ff')/ARP(op=1,hwsrc='${RS_MAC}',psrc='10.1.0.5',pdst='${target}')`;
const solicit = (target: string) =>
  `Ether(src='${RS_MAC}',dst='33:33:ff:00:00:fa')/IPv6(src='fd00:10::5',dst='ff02::1:ff00:fa',hlim=255)/ICMPv6ND_NS(tgt='${target}')/ICMPv6NDOptSrcLLAddr(lladdr='${RS_MAC}')`;

test("VipArp answers ARP and ND for full NAT's local addresses on every port, server side included, and stops when they are deleted", {
  skip: skipUnless("scapy"),
}, () => {
  const balancer = new Balancer({ connections: 16 });
  const sent: Array<[string, Uint8Array]> = [];
  const port = (name: string, mac: string, serverSide: boolean) =>
    ({ name, mac, serverSide, sendFrame: (f: Uint8Array) => sent.push([name, f.slice()]) > 0 }) as unknown as EthernetPort;
  const client = port("eth0", "02:00:00:00:02:00", false);
  const server = port("eth1", "02:00:00:00:02:01", true);
  const arp = new VipArp(balancer, [client, server]);
  const k4 = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 } as const;
  const k6 = { kind: "address", protocol: "tcp", address: "fd00::100", port: 80 } as const;
  for (const key of [k4, k6]) balancer.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  const [who4, who6, whoVip] = scapyBuild([arpRequest("10.1.0.250"), solicit("fd00:10::fa"), arpRequest("10.0.0.100")]);

  // An ARP answer is the request turned round in place and forwarded (opcode 2 at 20..21,
  // sender IP at 28..31); an ND advertisement is sent (ICMPv6 type 136 at 54).
  const askArp = (p: EthernetPort, frame: Uint8Array) => {
    const f = frame.slice();
    const decision = arp.hook(f, p, 0);
    return decision === "forward" ? [f[21], [...f.subarray(28, 32)].join(".")] : decision;
  };
  assert.equal(askArp(server, who4), "consumed", "no local address yet: no answer");
  balancer.addLocalAddress(k4, "10.1.0.250");
  balancer.addLocalAddress(k6, "fd00:10::fa");
  for (const p of [server, client]) {
    assert.deepEqual(askArp(p, who4), [2, "10.1.0.250"], `ARP answered on ${p.name}`);
    arp.hook(who6.slice(), p, 0);
  }
  assert.deepEqual(
    sent.map(([n, f]) => [n, f[54]]),
    [
      ["eth1", 136],
      ["eth0", 136],
    ],
    "ND answered on both ports",
  );
  assert.equal(askArp(server, whoVip), "consumed", "the server side still answers for no VIP");
  assert.deepEqual(askArp(client, whoVip), [2, "10.0.0.100"], "the client side does");
  balancer.deleteLocalAddress(k4, "10.1.0.250");
  assert.equal(askArp(client, who4), "consumed", "a deleted local address is no longer answered for");
});
