// What the Balancer accepts as configuration, where the docs make a promise about it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, ConfigError, LinkType, Verdict, type ServiceKey } from "../src/index.js";
import { buildPacket } from "../src/testing/index.js";

const ANY_PORT: ServiceKey = { kind: "address", protocol: "tcp", address: "192.0.2.80", port: 0 };
const rs = { address: "10.7.0.1", port: 0, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 } as const;

test("a port-0 service needs persistence (docs/balancer.md): refused whole without it, scheduled on every port with it", () => {
  const b = new Balancer({ connections: 1024 });
  assert.throws(
    () => b.addService({ key: ANY_PORT, scheduler: "rr", schedulerFlags: [], onePacket: false }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^key\.port: 0 \(every port\) needs persistence/);
      return true;
    },
  );
  assert.equal(b.listing().services.length, 0, "nothing half-added");
  b.addService({ key: ANY_PORT, scheduler: "rr", schedulerFlags: [], onePacket: false, persistence: { timeout: 300, netmask: "255.255.255.255" } });
  b.addDestination(ANY_PORT, rs);
  for (const dport of [22, 80, 8443]) {
    const syn = buildPacket({ protocol: "tcp", src: "198.51.100.7", dst: ANY_PORT.address, sport: 40000 + dport, dport, flags: "S" });
    const out = b.processPacket(syn, LinkType.RawIp, 1);
    assert.equal(out.verdict, Verdict.Forward, `port ${dport}`);
    assert.equal(out.packet.subarray(16, 20).join("."), rs.address);
  }
  assert.throws(() => b.editService({ key: ANY_PORT, scheduler: "rr", schedulerFlags: [], onePacket: false }), ConfigError);
});
