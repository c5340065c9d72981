// The connection-tracking datapath, side by side in one run: new-flow setup while a table
// fills to 1M flows, the established-flow path (lookup, state, counters, NAT rewrite) with
// 1M live flows, a SYN flood against the full table, and established traffic during that
// flood. The bare NAT rewrite (applyActionBatch, no lookup) is the reference row.
// Writes docs/benchmarks/datapath.md.
//
//   node --import tsx bench/datapath.bench.ts      LVS_BENCH_FLOWS=1048576 by default
//
// Packets are pre-built in arenas; a slot is refilled by one copy outside the timed call.
// One sample = one process() call over a batch of 256; ns/packet = median sample / 256.

import { writeFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Balancer, LinkType, Verdict, DropReason, Desc, HEADROOM, type ServiceKey } from "../src/index.js";

const FLOWS = Number(process.env.LVS_BENCH_FLOWS ?? 1 << 20);
const BATCH = 256;
const PKT = 40; // IPv4 + TCP, no payload
const VIP = [10, 250, 0, 1];
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: "10.250.0.1", port: 80 };
const OUT = new URL("../docs/benchmarks/datapath.md", import.meta.url);

function sum(b: Uint8Array, s: number, e: number, init: number): number {
  let x = init;
  for (let i = s; i < e; i += 2) x += (b[i] << 8) | b[i + 1];
  while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
  return x;
}

/** count client -> VIP TCP packets with `flags`, client k = 11.(k>>16).(k>>8).(k) : 1024 + k % 50000. */
function arena(count: number, flags: number, offset = 0): Uint8Array {
  const a = new Uint8Array(count * PKT);
  for (let n = 0; n < count; n++) {
    const k = n + offset;
    const o = n * PKT;
    const p = a.subarray(o, o + PKT);
    p.set([0x45, 0, 0, PKT, 0, 0, 0x40, 0, 64, 6, 0, 0, 11, (k >> 16) & 255, (k >> 8) & 255, k & 255, ...VIP]);
    const sport = 1024 + (k % 50000);
    p.set([sport >> 8, sport & 255, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff], 20);
    const h = ~sum(p, 0, 20, 0) & 0xffff;
    p[10] = h >> 8; p[11] = h & 255;
    const c = ~sum(p, 20, 40, sum(p, 12, 20, 6 + 20)) & 0xffff;
    p[36] = c >> 8; p[37] = c & 255;
  }
  return a;
}

const b = new Balancer({ connections: FLOWS, slots: BATCH, slotCapacity: 2048, maxDestinations: 64 });
b.addService({ key: KEY, scheduler: "wlc", schedulerFlags: [], onePacket: false });
for (let i = 1; i <= 8; i++) {
  b.addDestination(KEY, { address: `192.168.10.${i}`, port: 8080, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
}
const slots = b.slots;
const mem = () => slots.bytes;
const descU32 = () => new Uint32Array(mem().buffer, slots.descBase, BATCH * 8);

/** Copies packets [first, first+BATCH) of an arena (indices mod its size, via `pick`) into the slots. */
function refill(src: Uint8Array, pick: (i: number) => number): void {
  const m = mem();
  const d = descU32();
  for (let i = 0; i < BATCH; i++) {
    const k = pick(i);
    m.set(src.subarray(k * PKT, k * PKT + PKT), slots.slotAddress(i) + HEADROOM);
    const o = i * 8;
    d[o] = HEADROOM; d[o + 1] = PKT; d[o + 2] = LinkType.RawIp; d[o + 3] = 0;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[s.length >> 1];
}

let now = 1000;
/** Times `batches` process() calls; returns ns/packet samples and verdict counts. */
function run(batches: number, fill: (batch: number) => void): { ns: number[]; verdicts: Map<string, number> } {
  const ns: number[] = [];
  const verdicts = new Map<string, number>();
  for (let n = 0; n < batches; n++) {
    fill(n);
    const t0 = process.hrtime.bigint();
    b.process(BATCH, now);
    ns.push(Number(process.hrtime.bigint() - t0) / BATCH);
    for (let i = 0; i < BATCH; i++) {
      const v = slots.field(i, Desc.Verdict);
      const r = slots.field(i, Desc.Reason);
      const key = v === Verdict.Drop ? `drop:${r}` : String(v);
      verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
    }
    if ((n & 63) === 63) now += 1;
  }
  return { ns, verdicts };
}

console.log(`building ${FLOWS} flows' SYN and ACK arenas ...`);
const syns = arena(FLOWS, 0x02);
const acks = arena(FLOWS, 0x10);
const floodCount = 256 * 1024;
const flood = arena(floodCount, 0x02, FLOWS + 1);
let rng = 12345;
const rand = (n: number) => ((rng = (rng * 1103515245 + 12345) >>> 0) % n);

// 1. New flows while the table fills: every SYN creates a connection.
const setup = run(FLOWS / BATCH, (n) => refill(syns, (i) => n * BATCH + i));
const created = setup.verdicts.get(String(Verdict.Forward)) ?? 0;
// 2. First ACK of each flow moves it to ESTABLISHED (not measured as steady state).
run(FLOWS / BATCH, (n) => refill(acks, (i) => n * BATCH + i));
// 3. Established flows, random order over the million: lookup + state + counters + NAT.
const established = run(4096, () => refill(acks, () => rand(FLOWS)));
// 4. Flood: the table is full; new SYNs are refused.
const floodRun = run(floodCount / BATCH, (n) => refill(flood, (i) => n * BATCH + i));
// 5. Established traffic during the flood: half the batch flood, half established.
const mixed = run(2048, (n) => {
  const m = mem();
  refill(acks, () => rand(FLOWS));
  for (let i = 0; i < BATCH; i += 2) {
    const k = (n * BATCH + i) % floodCount;
    m.set(flood.subarray(k * PKT, k * PKT + PKT), slots.slotAddress(i) + HEADROOM);
  }
});
const mixedForwarded = mixed.verdicts.get(String(Verdict.Forward)) ?? 0;
// Reference: the NAT rewrite alone over the same packets (no lookup, no state).
b.core.setAction(64, { kind: "nat-dnat", address: "192.168.10.1", port: 8080 });
const rewriteNs: number[] = [];
for (let n = 0; n < 4096; n++) {
  refill(acks, () => rand(FLOWS));
  for (let i = 0; i < BATCH; i++) slots.setField(i, Desc.Action, 64);
  const t0 = process.hrtime.bigint();
  b.core.applyBatch(0, BATCH);
  rewriteNs.push(Number(process.hrtime.bigint() - t0) / BATCH);
}

const w = b.core.wasm as unknown as Record<string, () => number>;
const bytesPerFlow = w.connTableBytesPerEntry();
const rows = [
  ["new flow (SYN, table filling to " + FLOWS + ")", median(setup.ns)],
  ["established flow (ACK, " + FLOWS + " live)", median(established.ns)],
  ["flood SYN against the full table (dropped)", median(floodRun.ns)],
  ["established + flood, mixed 1:1", median(mixed.ns)],
  ["reference: NAT rewrite alone (no lookup)", median(rewriteNs)],
] as const;
const estNs = rows[1][1];
const report = [
  "# Datapath benchmark",
  "",
  `Command: \`node --import tsx bench/datapath.bench.ts\` (LVS_BENCH_FLOWS=${FLOWS}). Node ${process.version}, ${cpus()[0]?.model ?? "?"} (${cpus().length} cores), load average ${loadavg()[0].toFixed(2)}, ${new Date().toISOString().slice(0, 10)}.`,
  "",
  "One sample = one `process()` call over a batch of 256 40-byte IPv4/TCP packets, timed alone (slot refill outside); figures are medians.",
  "",
  "| path | ns/packet | Mpps | vs rewrite alone |",
  "|---|---:|---:|---:|",
  ...rows.map(([name, ns]) => `| ${name} | ${ns.toFixed(1)} | ${(1000 / ns).toFixed(1)} | ${(ns / rows[4][1]).toFixed(2)}x |`),
  "",
  `- Connections created: ${created} of ${FLOWS} SYNs; table bytes per flow (record + both hash indexes): ${bytesPerFlow}.`,
  `- Flood: ${floodRun.verdicts.get(`drop:${DropReason.TableFull}`) ?? 0} of ${floodCount} SYNs dropped with table-full; during the mixed run ${mixedForwarded} of ${mixed.ns.length * BATCH / 2} established packets forwarded.`,
  `- Targets (one core): established >= 20 Mpps (<= 50 ns), new flows >= 5 M/s (<= 200 ns), <= 128 bytes per flow: ` +
    `${estNs <= 50 ? "met" : "missed"}, ${rows[0][1] <= 200 ? "met" : "missed"}, ${bytesPerFlow <= 128 ? "met" : "missed"}.`,
  "",
];
mkdirSync(new URL(".", OUT), { recursive: true });
writeFileSync(OUT, report.join("\n"));
console.log(report.join("\n"));
