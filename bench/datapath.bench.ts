// The connection-tracking datapath, side by side in one run: new-flow setup while a table
// fills to 1M flows, the established-flow path (lookup, state, counters, NAT rewrite) with
// 1M live flows under uniform and Zipf traffic, a SYN flood against the full table, and
// established traffic during that flood; each on 4 KiB pages and on huge pages (the
// advice lvsd gives by default). References in the same run: the bare NAT rewrite (no
// lookup) and the memory floors of this machine (plain typed arrays, no packet work).
// Writes docs/benchmarks/datapath.md.
//
//   node --import tsx bench/datapath.bench.ts      LVS_BENCH_FLOWS=1048576 by default
//
// Packets are pre-built in arenas; a slot is refilled by one copy outside the timed call.
// One sample = one process() call over a batch of 256; ns/packet = median sample / 256.

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import {
  Balancer,
  LinkType,
  Verdict,
  DropReason,
  Desc,
  HEADROOM,
  adviseHugePages,
  hugePageBytes,
  transparentHugePageMode,
  type ServiceKey,
} from "../src/index.js";

const FLOWS = Number(process.env.LVS_BENCH_FLOWS ?? 1 << 20);
const BATCH = 256;
const PKT = 40; // IPv4 + TCP, no payload
const VIP = [10, 250, 0, 1];
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: "10.250.0.1", port: 80 };
const OUT = new URL("../docs/benchmarks/datapath.md", import.meta.url);

// Flow choice: xorshift32, not an LCG. `lcg % 2^20` keeps only an LCG's low bits, whose
// short periods made consecutive batches revisit nearby records: an earlier version of
// this bench measured 52-72 ns per established packet, depending on the seed, where
// uniform draws give about 100.
let rng = 0x9e3779b9;
function rand(n: number): number {
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng % n;
}

/**
 * Zipf (s = 1) over n flows: flow rank k drawn with weight 1 / (k + 1), the popularity
 * skew of real traffic (at a million flows the top 1% carry two thirds of the packets).
 * Inverse CDF by binary search; ranks are scattered so popular flows are not neighbours.
 */
function zipfSampler(n: number): () => number {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) cdf[k] = total += 1 / (k + 1);
  return () => {
    const u = (rand(0x7fffffff) / 0x7fffffff) * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return (Math.imul(lo, 0x9e3779b1) >>> 0) % n;
  };
}

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
    p[10] = h >> 8;
    p[11] = h & 255;
    const c = ~sum(p, 20, 40, sum(p, 12, 20, 6 + 20)) & 0xffff;
    p[36] = c >> 8;
    p[37] = c & 255;
  }
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[s.length >> 1];
}

console.log(`building ${FLOWS} flows' SYN and ACK arenas ...`);
const syns = arena(FLOWS, 0x02);
const acks = arena(FLOWS, 0x10);
const floodCount = 256 * 1024;
const flood = arena(floodCount, 0x02, FLOWS + 1);
const zipf = zipfSampler(FLOWS);

interface Measured {
  readonly newFlow: number;
  readonly uniform: number;
  readonly zipf: number;
  readonly flood: number;
  readonly mixed: number;
  readonly created: number;
  readonly floodDropped: number;
  readonly mixedForwarded: number;
  readonly mixedEstablished: number;
  readonly bytesPerFlow: number;
  readonly hugeBytes: number;
  readonly rewrite: number;
}

/**
 * Every phase on one fresh balancer, its memory advised to use huge pages or not. `flows`
 * below FLOWS is the warm-up: V8 compiles wasm with a baseline compiler first and swaps in
 * optimised code once a function is hot, and a small table's phases have too few samples
 * for the median to hide that (the compiled module, optimised code included, is shared by
 * every balancer of the process).
 */
function measure(hugePages: boolean, flows = FLOWS): Measured {
  const b = new Balancer({
    connections: flows,
    slots: BATCH,
    slotCapacity: 2048,
    maxDestinations: 64,
    ...(hugePages ? { prepareMemory: (m) => void adviseHugePages(m) } : {}),
  });
  b.addService({ key: KEY, scheduler: "wlc", schedulerFlags: [], onePacket: false });
  for (let i = 1; i <= 8; i++) {
    b.addDestination(KEY, { address: `192.168.10.${i}`, port: 8080, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  }
  const slots = b.slots;
  const refill = (src: Uint8Array, pick: (i: number) => number): void => {
    const m = slots.bytes;
    const d = new Uint32Array(m.buffer, slots.descBase, BATCH * 8);
    for (let i = 0; i < BATCH; i++) {
      const k = pick(i);
      m.set(src.subarray(k * PKT, k * PKT + PKT), slots.slotAddress(i) + HEADROOM);
      const o = i * 8;
      d[o] = HEADROOM;
      d[o + 1] = PKT;
      d[o + 2] = LinkType.RawIp;
      d[o + 3] = 0;
    }
  };
  let now = 1000;
  /** Times `batches` process() calls; returns ns/packet samples and verdict counts. */
  const run = (batches: number, fill: (batch: number) => void) => {
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
  };
  // 1. New flows while the table fills: every SYN creates a connection.
  const setup = run(flows / BATCH, (n) => refill(syns, (i) => n * BATCH + i));
  // 2. First ACK of each flow moves it to ESTABLISHED (not measured as steady state).
  run(flows / BATCH, (n) => refill(acks, (i) => n * BATCH + i));
  // 3. Established flows: each packet's flow drawn uniformly from the million (the worst
  // case: no two packets share a cache line), then Zipf-skewed.
  const uniform = run(4096, () => refill(acks, () => rand(flows)));
  const skewed = run(4096, () => refill(acks, () => zipf() % flows));
  // 4. Flood: the table is full; new SYNs are refused.
  const floodRun = run(floodCount / BATCH, (n) => refill(flood, (i) => n * BATCH + i));
  // 5. Established traffic during the flood: half the batch flood, half established.
  const mixed = run(2048, (n) => {
    refill(acks, () => rand(flows));
    for (let i = 0; i < BATCH; i += 2) {
      const k = (n * BATCH + i) % floodCount;
      slots.bytes.set(flood.subarray(k * PKT, k * PKT + PKT), slots.slotAddress(i) + HEADROOM);
    }
  });
  // Reference: the NAT rewrite alone over the same packets (no lookup, no state).
  b.core.setAction(64, { kind: "nat-dnat", address: "192.168.10.1", port: 8080 });
  const rewriteNs: number[] = [];
  for (let n = 0; n < 4096; n++) {
    refill(acks, () => rand(flows));
    for (let i = 0; i < BATCH; i++) slots.setField(i, Desc.Action, 64);
    const t0 = process.hrtime.bigint();
    b.core.applyBatch(0, BATCH);
    rewriteNs.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  const w = b.core.wasm as unknown as Record<string, () => number>;
  return {
    newFlow: median(setup.ns),
    uniform: median(uniform.ns),
    zipf: median(skewed.ns),
    flood: median(floodRun.ns),
    mixed: median(mixed.ns),
    created: setup.verdicts.get(String(Verdict.Forward)) ?? 0,
    floodDropped: floodRun.verdicts.get(`drop:${DropReason.TableFull}`) ?? 0,
    mixedForwarded: mixed.verdicts.get(String(Verdict.Forward)) ?? 0,
    mixedEstablished: (mixed.ns.length * BATCH) / 2,
    bytesPerFlow: w.connTableBytesPerEntry(),
    hugeBytes: process.platform === "linux" ? hugePageBytes(b.core.wasm.memory) : 0,
    rewrite: median(rewriteNs),
  };
}

/**
 * The memory floor of this table layout on this machine: plain typed arrays of the
 * table's size (index and records), the same batch shape and touch-ahead passes the
 * datapath makes, and nothing else (no parse, no state, no rewrite). Per packet one random
 * index line, then the random record line it names.
 */
function twoLineFloor(flows: number, batches: number): number {
  const positions = 1 << Math.ceil(Math.log2(flows * 2));
  const index = new Uint32Array(positions * 2);
  const records = new Uint32Array(flows * 24 + 16); // 96 bytes each
  const keys = new Uint32Array(flows);
  for (let i = 0; i < flows; i++) {
    const h = rand(0xffffffff) | 1;
    keys[i] = h;
    let p = h & (positions - 1);
    while (index[p * 2] !== 0) p = (p + 1) & (positions - 1);
    index[p * 2] = (h & 0xff000000) | i;
    records[i * 24] = h;
  }
  const find = (h: number, touchOnly: boolean): number => {
    let p = h & (positions - 1);
    for (;;) {
      const v = index[p * 2];
      if (v === 0) return 0;
      if ((v & 0xff000000) === (h & 0xff000000) && (touchOnly || records[(v & 0xffffff) * 24] === h)) {
        return touchOnly ? records[(v & 0xffffff) * 24] : v;
      }
      p = (p + 1) & (positions - 1);
    }
  };
  const want = new Uint32Array(BATCH);
  const ns: number[] = [];
  let sink = 0;
  for (let n = 0; n < batches; n++) {
    for (let i = 0; i < BATCH; i++) want[i] = keys[rand(flows)];
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < BATCH; c += 32) {
      for (let i = c; i < c + 32; i++) sink += index[(want[i] & (positions - 1)) * 2];
      for (let i = c; i < c + 32; i++) sink += find(want[i], true);
      for (let i = c; i < c + 32; i++) sink += find(want[i], false);
    }
    ns.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  if (sink === 0.5) console.log(sink);
  return median(ns);
}

/** The floor of any layout: one random 128-byte record per packet, read and written. */
function oneLineFloor(flows: number, batches: number): number {
  const records = new Uint32Array(flows * 32 + 32);
  for (let i = 0; i < flows; i++) records[i * 32] = i;
  const want = new Uint32Array(BATCH);
  const ns: number[] = [];
  let sink = 0;
  for (let n = 0; n < batches; n++) {
    for (let i = 0; i < BATCH; i++) want[i] = rand(flows) * 32;
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < BATCH; c += 32) {
      for (let i = c; i < c + 32; i++) sink += records[want[i]];
      for (let i = c; i < c + 32; i++) {
        records[want[i] + 1]++;
        sink += records[want[i]];
      }
    }
    ns.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  if (sink === 0.5) console.log(sink);
  return median(ns);
}

const thp = process.platform === "linux" ? transparentHugePageMode() : null;
measure(false, Math.min(FLOWS, 16384)); // warm-up, discarded
const small = measure(false);
const huge = measure(true);
const floor2 = twoLineFloor(FLOWS, 4096);
const floor1 = oneLineFloor(FLOWS, 4096);

const row = (name: string, a: number, h: number) =>
  `| ${name} | ${a.toFixed(1)} | ${(1000 / a).toFixed(1)} | ${h.toFixed(1)} | ${(1000 / h).toFixed(1)} | ${(a / small.rewrite).toFixed(2)}x |`;
const best = (m: Measured) => Math.min(m.uniform, m.zipf);
const verdict = (ok: boolean) => (ok ? "met" : "missed");
const report = [
  "# Datapath benchmark",
  "",
  `Command: \`node --import tsx bench/datapath.bench.ts\` (LVS_BENCH_FLOWS=${FLOWS}). Node ${process.version}, ${cpus()[0]?.model ?? "?"} (${cpus().length} cores), load average ${loadavg()[0].toFixed(2)}, transparent huge pages: ${thp ?? "none"}, ${new Date().toISOString().slice(0, 10)}.`,
  "",
  "One sample = one `process()` call over a batch of 256 40-byte IPv4/TCP packets, timed alone (slot refill outside); figures are medians. " +
    "Each path runs twice, on a balancer with 4 KiB pages and on one whose memory was advised to use huge pages before its tables were carved (`adviseHugePages`, lvsd's default).",
  "",
  "| path | ns/packet, 4 KiB pages | Mpps | ns/packet, huge pages | Mpps | 4 KiB vs rewrite alone |",
  "|---|---:|---:|---:|---:|---:|",
  row(`new flow (SYN, table filling to ${FLOWS})`, small.newFlow, huge.newFlow),
  row(`established flow (ACK, ${FLOWS} live, uniform)`, small.uniform, huge.uniform),
  row(`established flow (ACK, ${FLOWS} live, Zipf s=1)`, small.zipf, huge.zipf),
  row("flood SYN against the full table (dropped)", small.flood, huge.flood),
  row("established (uniform) + flood, mixed 1:1", small.mixed, huge.mixed),
  row("reference: NAT rewrite alone (no lookup)", small.rewrite, huge.rewrite),
  "",
  "Memory floors of this machine, same run (plain typed arrays of the table's size, 4 KiB pages, the same batch shape and touch-ahead passes, no packet work):",
  "",
  "| floor | ns/packet |",
  "|---|---:|",
  `| this layout: one random index line, then the random record line it names | ${floor2.toFixed(1)} |`,
  `| any layout: one random 128-byte record per packet, read and written | ${floor1.toFixed(1)} |`,
  "",
  `- Connections created: ${small.created} and ${huge.created} of ${FLOWS} SYNs; table bytes per flow (record + both hash indexes): ${small.bytesPerFlow}. Huge-page bytes under the advised balancer's memory: ${(huge.hugeBytes / 2 ** 20).toFixed(0)} MiB (4 KiB run: ${(small.hugeBytes / 2 ** 20).toFixed(0)} MiB).`,
  `- Flood: ${small.floodDropped} and ${huge.floodDropped} of ${floodCount} SYNs dropped with table-full; during the mixed runs ${small.mixedForwarded} and ${huge.mixedForwarded} of ${small.mixedEstablished} established packets forwarded.`,
  `- Targets (one core): established >= 20 Mpps (<= 50 ns): ${verdict(best(small) <= 50 || best(huge) <= 50)}; new flows >= 5 M/s (<= 200 ns): ${verdict(Math.min(small.newFlow, huge.newFlow) <= 200)}; <= 128 bytes per flow: ${verdict(small.bytesPerFlow <= 128)}.`,
  `- Established (uniform, 4 KiB pages) is ${(small.uniform / floor2).toFixed(2)}x this layout's memory floor and ${(small.uniform / floor1).toFixed(2)}x any layout's.`,
  "",
];
// The file's analysis below the marker is written by hand: keep it.
const MARKER = "<!-- Written by hand below: bench/datapath.bench.ts keeps this part. -->";
let kept = "";
try {
  const previous = readFileSync(OUT, "utf8");
  const at = previous.indexOf(MARKER);
  if (at >= 0) kept = previous.slice(at);
} catch {
  // first run: nothing to keep
}
mkdirSync(new URL(".", OUT), { recursive: true });
writeFileSync(OUT, report.join("\n") + (kept ? `\n${kept}` : ""));
console.log(report.join("\n"));
