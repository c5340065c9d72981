// What being a sync master costs the established path, side by side in one run: the same
// balancer, the same uniform traffic over 4096 established DR flows (cache-resident: the worst case for the ratio), with no sync listener
// (the data plane skips the rules: one branch per packet) and as a master whose
// connections are encoded into IPVS sync messages (SyncSender, the socket replaced by a
// no-op). At sync_threshold 3 / sync_period 50 one packet in 50 of a long flow queues a
// snapshot (a flow's first data packet, its third, is always sent: not measured here).
// Writes docs/benchmarks/sync.md.
//
//   node --import tsx bench/sync.bench.ts

import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Balancer, LinkType, Verdict, HEADROOM, SyncSender, type ServiceKey } from "../src/index.js";
import { ipv4Tcp } from "./support/packets.js";

const FLOWS = 1 << 12; // each flow then sees about 50 packets in the run: one sync each
const BATCH = 256;
const ROUNDS = Number(process.env.ROUNDS ?? 400);
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: "10.250.0.1", port: 80 };
const OUT = new URL("../docs/benchmarks/sync.md", import.meta.url);

const b = new Balancer({ connections: FLOWS * 2, slots: BATCH, slotCapacity: 2048 });
b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
for (let i = 0; i < 4; i++) b.addDestination(KEY, { address: `10.251.0.${i + 1}`, port: 80, method: "route", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
b.setNeighbour("10.251.0.1", "02:00:00:00:00:01");

const client = (k: number) => `11.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
const packet = (k: number, flags: number) => {
  const p = ipv4Tcp(40, client(k), 1024 + (k % 50000), "10.250.0.1", 80, k);
  p[33] = flags;
  // Fix the TCP checksum for the new flags byte (RFC 1624: one 16-bit word changed).
  const old = 0x10;
  let c = ((~((p[36] << 8) | p[37]) & 0xffff) + (~old & 0xffff) + flags) >>> 0;
  while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
  c = ~c & 0xffff;
  p[36] = c >> 8;
  p[37] = c & 255;
  return p;
};
const acks = Array.from({ length: FLOWS }, (_, k) => packet(k, 0x10));
let now = 1000;
for (let k = 0; k < FLOWS; k++) b.processPacket(packet(k, 0x02), LinkType.RawIp, now);
// Three ACKs each: past the third packet (sync_threshold), so that what is measured is a
// long flow's steady state, one sync in sync_period (50) packets.
for (let round = 0; round < 3; round++) {
  for (let k = 0; k < FLOWS; k++) if (b.processPacket(acks[k], LinkType.RawIp, now).verdict !== Verdict.Forward) throw new Error("setup");
}

let rng = 0x9e3779b9;
const rand = () => {
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return (rng >>>= 0) % FLOWS;
};
const slots = b.slots;
function batchNs(): number {
  for (let s = 0; s < BATCH; s++) slots.write(s, acks[rand()], LinkType.RawIp);
  const t = performance.now();
  b.process(BATCH, ++now);
  return ((performance.now() - t) * 1e6) / BATCH;
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];

let messages = 0;
let conns = 0;
const off: number[] = [];
const on: number[] = [];
for (let i = 0; i < 50; i++) batchNs(); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  off.push(batchNs());
  const sender = new SyncSender(b, { syncId: 1, clock: () => now, send: (_m, done) => (messages++, done()) });
  on.push(batchNs());
  conns += sender.stats.connections;
  sender.close();
}
void HEADROOM;
const mOff = median(off);
const mOn = median(on);
const load = loadavg()[0].toFixed(1);
const text = `# Sync master cost (bench/sync.bench.ts)

Established DR flows (${FLOWS}), uniform ACK traffic, batches of ${BATCH}; ${ROUNDS} samples
each, alternated in one run. Machine: ${cpus()[0]?.model ?? "?"} x ${cpus().length}, load
${load} (shared with other work: compare the ratio, not the figures).

| | ns / packet (median) |
|---|---|
| no sync listener | ${mOff.toFixed(1)} |
| sync master (rules, snapshots, v1 encoding) | ${mOn.toFixed(1)} |
| ratio | ${(mOn / mOff).toFixed(2)} |

${conns} connections were encoded during the master samples (${messages} messages filled).
`;
writeFileSync(OUT, text);
console.log(text);
