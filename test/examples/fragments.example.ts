import assert from "node:assert/strict";
import { Balancer, Desc, LinkType, Verdict, type ServiceKey } from "lvs-wasm";
import { buildPacket } from "lvs-wasm/testing";

// Track up to 4096 datagrams, hold up to 8 MiB of early fragments, 30 s each.
const balancer = new Balancer({
  connections: 65536,
  fragments: { datagrams: 4096, memory: 8 << 20, timeoutMs: 30_000 },
});
const dns: ServiceKey = { kind: "address", protocol: "udp", address: "192.168.227.128", port: 53 };
balancer.addService({ key: dns, scheduler: "rr", schedulerFlags: [], onePacket: false });
for (const rip of ["192.168.253.143", "192.168.253.144"]) {
  balancer.addDestination(dns, { address: rip, port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
}

/** Cuts an IPv4 packet (20-byte header) into two fragments at payload offset `at` (a multiple of 8). */
function fragmentIPv4(whole: Uint8Array, at: number): Uint8Array[] {
  const parts: Array<[number, Uint8Array, boolean]> = [
    [0, whole.subarray(20, 20 + at), true],
    [at, whole.subarray(20 + at), false],
  ];
  return parts.map(([offset, part, more]) => {
    const f = new Uint8Array(20 + part.length);
    f.set(whole.subarray(0, 20));
    f.set(part, 20);
    f[2] = f.length >> 8;
    f[3] = f.length & 0xff;
    const field = (more ? 0x2000 : 0) | (offset / 8);
    f[6] = field >> 8;
    f[7] = field & 0xff;
    f[10] = f[11] = 0;
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (f[i] << 8) | f[i + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    f[10] = (~sum >> 8) & 0xff;
    f[11] = ~sum & 0xff;
    return f;
  });
}

const query = buildPacket({ protocol: "udp", src: "10.0.0.1", dst: "192.168.227.128", sport: 40000, dport: 53, payload: new Uint8Array(2000) });
const [first, second] = fragmentIPv4(query, 1000);

// The later fragment comes first: it is held ...
balancer.slots.write(0, second, LinkType.RawIp);
assert.equal(balancer.process(1, 1000), 1);
assert.equal(balancer.slots.field(0, Desc.Verdict), Verdict.Drop); // reason: fragment-held

// ... and released, in slot 1, right after the first fragment has been scheduled.
balancer.slots.write(0, first, LinkType.RawIp);
const filled = balancer.process(1, 1001);
assert.equal(filled, 2);
for (let i = 0; i < filled; i++) assert.equal(balancer.slots.field(i, Desc.Verdict), Verdict.Forward);
assert.equal(balancer.slots.field(1, Desc.Action), balancer.slots.field(0, Desc.Action)); // one real server

const stats = balancer.fragmentStats();
assert.equal(stats.held, 1);
assert.equal(stats.released, 1);
assert.equal(stats.completed, 1);
assert.equal(stats.memoryInUse, 0);
