// Service lookup on the packet path as services grow (issue 17): SYNs for a service that
// exists (a hit: found, then no destination to schedule, so nothing is created) and SYNs for
// an address with no service (a miss: passed to the host), with 1, 16, 1,024, 50,000 and
// 65,536 services, and once more at 65,536 after 200,000 services were added and removed (a
// table with tombstones probed ever longer runs; backward-shift removal keeps it flat).
// Side by side in one run; ratios against the 1-service row. Writes
// docs/benchmarks/service-lookup.md.
//
//   node --import tsx bench/service-lookup.bench.ts
//
// One sample = one process() call over a batch of 256; ns/packet = median sample / 256.

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Bench, hrtimeNow } from "tinybench";
import { Balancer, LinkType, Verdict, Desc } from "../src/index.js";
import { buildPacket } from "../src/testing/packets.js";

const BATCH = 256;
const OUT = new URL("../docs/benchmarks/service-lookup.md", import.meta.url);
const vip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

interface Case {
  readonly name: string;
  readonly services: number;
  readonly churn: number;
}
const CASES: Case[] = [
  { name: "1 service", services: 1, churn: 0 },
  { name: "16 services", services: 16, churn: 0 },
  { name: "1,024 services", services: 1024, churn: 0 },
  { name: "50,000 services", services: 50000, churn: 0 },
  { name: "65,536 services", services: 65536, churn: 0 },
  { name: "65,536 services after 200,000 added and removed", services: 65536, churn: 200_000 },
];

function balancerWith(c: Case): Balancer {
  const b = new Balancer({ maxServices: 65536, maxDestinations: 65536 + 16, destinationsPerService: 4, connections: 4096, slots: BATCH });
  // Churn first, in slots the real services take afterwards.
  for (let round = 0; round < c.churn; round += 1024) {
    const keys = Array.from({ length: 1024 }, (_, i) => ({ kind: "address", protocol: "udp", address: vip(round + i), port: 53 }) as const);
    for (const key of keys) b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
    for (const key of keys) b.deleteService(key);
  }
  for (let i = 0; i < c.services; i++) {
    b.addService({ key: { kind: "address", protocol: "tcp", address: vip(i), port: 80 }, scheduler: "rr", schedulerFlags: [], onePacket: false });
  }
  return b;
}

/**
 * 256 SYNs to services spread over the table (the services have no destination: the
 * lookup finds the service, scheduling finds nobody, no connection is created, so every
 * sample does the same work), or to addresses with no service.
 */
function packets(services: number, hit: boolean): Uint8Array[] {
  return Array.from({ length: BATCH }, (_, i) =>
    buildPacket({
      protocol: "tcp",
      src: `172.16.${(i >> 8) & 255}.${i & 255}`,
      dst: hit ? vip(Math.floor((i * 2654435761) % services)) : `203.0.113.${i & 255}`,
      sport: 40000 + i,
      dport: 80,
      flags: "S",
    }),
  );
}

const bench = new Bench({ time: 1500, warmupTime: 200, warmupIterations: 32, iterations: 64, now: hrtimeNow });
const verdicts = new Map<string, string>();
for (const c of CASES) {
  const b = balancerWith(c);
  for (const hit of [true, false]) {
    const batch = packets(c.services, hit);
    const fill = () => {
      for (let i = 0; i < BATCH; i++) b.slots.write(i, batch[i], LinkType.RawIp);
    };
    fill();
    b.process(BATCH, 1);
    const verdict = b.slots.field(0, Desc.Verdict);
    verdicts.set(`${c.name} ${hit}`, Object.entries(Verdict).find(([, v]) => v === verdict)?.[0] ?? "?");
    bench.add(`${c.name}|${hit ? "hit" : "miss"}`, () => b.process(BATCH, 1), { beforeEach: fill });
  }
}
await bench.run();

const p50 = (name: string) => (bench.getTask(name)!.result as { latency: { p50: number } }).latency.p50;
const rows: string[] = [];
for (const kind of ["hit", "miss"]) {
  const base = p50(`${CASES[0].name}|${kind}`);
  for (const c of CASES) {
    const ms = p50(`${c.name}|${kind}`);
    rows.push(`| ${kind} | ${c.name} | ${((ms * 1e6) / BATCH).toFixed(1)} | ${(ms / base).toFixed(2)} | ${verdicts.get(`${c.name} ${kind === "hit"}`)} |`);
  }
}
const text = `# Service lookup as services grow

Written by \`node --import tsx bench/service-lookup.bench.ts\` (${new Date().toISOString()}; node ${process.version}, ${cpus()[0]?.model ?? "?"} x ${cpus().length}; load average ${loadavg()
  .map((x) => x.toFixed(2))
  .join(" / ")}).

Each sample runs one batch of ${BATCH} TCP SYNs through \`process()\`: a **hit** is for an existing
service (found; it has no destination, so nothing is scheduled or created and every sample
does the same work), a **miss** for an address with no service (passed to the host). The services are spread over the table. The last row of each
kind has had 200,000 other services added and removed first: a removal shifts the entries
after it back instead of leaving a tombstone, so the probe stops at the first empty slot as
in a fresh table. The ratio column is against the 1-service row of the same run; the
machine was shared (2 cores, other work running), so read ratios, not absolute figures.

| packet | services | median ns/packet | vs 1 service | verdict |
|---|---|---:|---:|---|
${rows.join("\n")}
`;
mkdirSync(new URL(".", OUT), { recursive: true });
writeFileSync(OUT, text);
console.log(text);
