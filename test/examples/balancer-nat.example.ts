import assert from "node:assert/strict";
import { Balancer, LinkType, Verdict, type ServiceKey } from "lvs-wasm";
import { buildPacket } from "lvs-wasm/testing";

// ipvsadm -A -t 192.168.227.128:80 -s rr
const balancer = new Balancer({ connections: 65536 });
const vip: ServiceKey = { kind: "address", protocol: "tcp", address: "192.168.227.128", port: 80 };
balancer.addService({ key: vip, scheduler: "rr", schedulerFlags: [], onePacket: false });

// ipvsadm -a -t 192.168.227.128:80 -r 192.168.253.143:80 -m   (and .144)
for (const rip of ["192.168.253.143", "192.168.253.144"]) {
  balancer.addDestination(vip, {
    address: rip, port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0,
  });
}

// Four clients open connections: each SYN is scheduled, rewritten and forwarded.
const chosen: string[] = [];
for (let i = 0; i < 4; i++) {
  const syn = buildPacket({
    protocol: "tcp", src: `10.0.0.${i + 1}`, dst: "192.168.227.128", sport: 40000, dport: 80, flags: "S",
  });
  const out = balancer.processPacket(syn, LinkType.RawIp, Date.now());
  assert.equal(out.verdict, Verdict.Forward);
  chosen.push(out.packet.subarray(16, 20).join("."));
}
assert.deepEqual(chosen, ["192.168.253.143", "192.168.253.144", "192.168.253.143", "192.168.253.144"]);

// What ipvsadm -Ln would show: two connections on each real server, not yet established.
const [service] = balancer.listing().services;
assert.deepEqual(service.destinations.map((d) => d.inactConns), [2, 2]);
