// A service added again after ipvsadm -D / -C starts from zero counters, as the kernel's
// does (ip_vs_add_service allocates it zeroed), even where lvs-wasm reuses the deleted
// service's slot. Found by the adapter matrix, which clears and re-adds one VIP per case.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, Verdict, type ServiceKey } from "../src/index.js";
import { scapyBuild } from "./support/scapy.js";
import { skipUnless } from "./support/tools.js";

const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 };

test("a service deleted and added again (-C, -A) lists zero connections and packets until new traffic", { skip: skipUnless("scapy") }, () => {
  const b = new Balancer({ connections: 64 });
  const add = () => {
    b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
    b.addDestination(KEY, { address: "192.168.10.11", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  };
  const syns = scapyBuild([1, 2, 3].map((i) => `IP(src='10.0.0.2',dst='10.0.0.100')/TCP(sport=${40000 + i},dport=80,flags='S')`));
  add();
  for (const [i, p] of syns.entries()) assert.equal(b.processPacket(p, LinkType.RawIp, 1000 + i).verdict, Verdict.Forward);
  assert.equal(b.listing().services[0].stats!.conns, 3n);
  b.clear();
  add();
  const stats = b.listing().services[0].stats!;
  assert.equal(stats.conns, 0n, "a new service counts from zero");
  assert.equal(stats.inpkts, 0n);
});
