// What lvsd --workers adds per packet (docs/benchmarks.md, "Workers"): the owner of a
// packet (the wasm export packetOwner, asked for every received packet when N > 1) and a
// hand-off (the packet copied into a ring and out into the owner's slot), for 64-byte and
// 1,500-byte packets and a 64 KB GSO super-packet, beside the datapath's own process() on
// the same batch as the baseline. One sample = a batch of 64; ns/packet = median / 64.
//
//   node --import tsx bench/handoff.bench.ts

import { cpus, loadavg } from "node:os";
import { Bench, hrtimeNow } from "tinybench";
import { Balancer, LinkType } from "../src/index.js";
import { HandoffRing } from "../src/runtime/workers/handoff-ring.js";
import { buildPacket } from "../src/testing/packets.js";

const BATCH = 64;
const KEY = { kind: "address", protocol: "tcp", address: "10.9.0.1", port: 80 } as const;

function balancer(): Balancer {
  const b = new Balancer({ connections: 1 << 16, slots: BATCH, maxDestinations: 64 });
  b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(KEY, { address: "10.8.0.2", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  (b.core.wasm as unknown as { ownerIndexRebuild(): number }).ownerIndexRebuild();
  return b;
}

const packet = (i: number, payload: number) =>
  buildPacket({ protocol: "tcp", src: "10.7.0.1", dst: "10.9.0.1", sport: 10000 + i, dport: 80, flags: "A", payload: new Uint8Array(payload) });

const from = balancer();
const to = balancer();
const ring = HandoffRing.create(8 << 20);
const adapters = new Uint8Array(BATCH);
const owner = (from.core.wasm as unknown as { packetOwner(slot: number, workers: number): number }).packetOwner;
const fill = (payload: number) => {
  const ps = Array.from({ length: BATCH }, (_, i) => packet(i, payload));
  return () => {
    for (let s = 0; s < BATCH; s++) from.slots.write(s, ps[s], LinkType.RawIp);
  };
};

const bench = new Bench({ time: 1000, warmupTime: 200, now: hrtimeNow });
for (const [name, payload] of [
  ["64 B", 24],
  ["1,500 B", 1460],
  ["64 KB super-packet", 65_000],
] as const) {
  const refill = fill(payload);
  // Established flows: a SYN each first, so the ACKs take the datapath's established path.
  const established = () => {
    for (let s = 0; s < BATCH; s++) {
      from.slots.write(s, buildPacket({ protocol: "tcp", src: "10.7.0.1", dst: "10.9.0.1", sport: 10000 + s, dport: 80, flags: "S" }), LinkType.RawIp);
    }
    from.process(BATCH, 1000);
    refill();
  };
  // Tasks run after they are all added: each sets its slots up first (beforeAll).
  bench.add(
    `owner of ${name} packets (packetOwner)`,
    () => {
      let sum = 0;
      for (let s = 0; s < BATCH; s++) sum += owner(s, 2);
      if (sum < 0) throw new Error("a packet of no flow");
    },
    { beforeAll: established },
  );
  bench.add(
    `hand-off of ${name} packets (ring in and out)`,
    () => {
      for (let s = 0; s < BATCH; s++) if (!ring.push(from.slots, s, 0)) throw new Error("ring full");
      ring.take(to.slots, 0, BATCH, adapters);
    },
    { beforeAll: established },
  );
  bench.add(`refilling the slots with ${name} packets (a copy each, for scale)`, refill);
  bench.add(
    `refill + process() of ${name} packets (the datapath, established NAT flows, for scale)`,
    () => {
      refill();
      from.process(BATCH, 1000);
    },
    { beforeAll: established },
  );
}
await bench.run();
console.log(
  `${cpus()[0]?.model ?? "cpu"}, load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
console.log("| case | ns/packet |\n|---|---:|");
for (const t of bench.tasks) {
  const median = (t.result as { latency?: { p50?: number } } | undefined)?.latency?.p50 ?? Number.NaN;
  console.log(`| ${t.name} | ${((median * 1e6) / BATCH).toFixed(1)} |`);
}
