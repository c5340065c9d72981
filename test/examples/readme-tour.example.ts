import assert from "node:assert/strict";
import { Balancer, LinkType, Verdict } from "lvs-wasm";
import { buildPacket } from "lvs-wasm/testing"; // packet bytes for trying it out (needs fast-check)

const balancer = new Balancer({ connections: 1 << 16 });
const vip = { kind: "address", protocol: "tcp", address: "192.168.227.128", port: 80 } as const;
balancer.addService({ key: vip, scheduler: "rr", schedulerFlags: [], onePacket: false });
balancer.addDestination(vip, { address: "192.168.253.143", port: 80, method: "masq",
  weight: 1, upperThreshold: 0, lowerThreshold: 0 });

// A client's SYN to the VIP, as raw IPv4 bytes (a TUN device hands you the same).
const syn = buildPacket({ protocol: "tcp", src: "10.0.0.1", dst: "192.168.227.128", sport: 40000, dport: 80, flags: "S" });
const out = balancer.processPacket(syn, LinkType.RawIp, Date.now()); // or a batch: process(n, now)
assert.equal(out.verdict, Verdict.Forward);
assert.equal(out.packet.subarray(16, 20).join("."), "192.168.253.143"); // NAT rewrote the destination
