// Traffic counters and IPVS's rate estimator (net/netfilter/ipvs/ip_vs_est.c), for the
// total, every service and every destination. Each block holds 64-bit counters plus the
// estimator's state; the host reads them directly from memory.
//
// Estimator, every 2 s: rate = delta << 9 for conns and packets, delta << 4 for bytes;
// avg += (rate - avg) >> 2 (signed). Shown as cps/pps = (avg + 0x1FF) >> 10 and
// bps = (avg + 0xF) >> 5.

export const STATS_SIZE: u32 = 128;
// Counters (u64).
export const ST_CONNS: u32 = 0;
export const ST_INPKTS: u32 = 8;
export const ST_OUTPKTS: u32 = 16;
export const ST_INBYTES: u32 = 24;
export const ST_OUTBYTES: u32 = 32;
// Values at the last estimation (u64).
const LAST: u32 = 40; // + 0, 8, 16, 24, 32 mirror the counters
// Smoothed averages (i64), scaled as in the kernel.
export const ST_AVG_CPS: u32 = 80;
export const ST_AVG_INPPS: u32 = 88;
export const ST_AVG_OUTPPS: u32 = 96;
export const ST_AVG_INBPS: u32 = 104;
export const ST_AVG_OUTBPS: u32 = 112;
// 120..127 spare

export const ESTIMATOR_INTERVAL_MS: u32 = 2000;

export let statsBase: usize = 0;
/** Blocks: [0] total, [1 .. 1+services) services, then destinations. */
export let statsServices: u32 = 0;
export let statsDests: u32 = 0;
let lastEstimate: u32 = 0;
let estimatorStarted: bool = false;

export function initStats(services: u32, dests: u32): bool {
  if (statsBase != 0 || services > 1 << 20 || dests > 1 << 22) return false;
  statsServices = services;
  statsDests = dests;
  const bytes = <usize>(1 + services + dests) * STATS_SIZE;
  statsBase = heap.alloc(bytes);
  memory.fill(statsBase, 0, bytes);
  return true;
}

@inline export function totalStats(): usize {
  return statsBase;
}
@inline export function serviceStats(svc: u32): usize {
  return statsBase + <usize>(1 + svc) * STATS_SIZE;
}
@inline export function destStats(dest: u32): usize {
  return statsBase + <usize>(1 + statsServices + dest) * STATS_SIZE;
}

@inline function bump(block: usize, field: u32, by: u64): void {
  store<u64>(block + field, load<u64>(block + field) + by);
}

/** A new connection to dest of svc (templates are not counted, as in the kernel). */
export function countConnection(svc: u32, dest: u32): void {
  bump(statsBase, ST_CONNS, 1);
  bump(serviceStats(svc), ST_CONNS, 1);
  bump(destStats(dest), ST_CONNS, 1);
}

/** A packet of `bytes` (IP length) client -> server (inbound) or back (outbound). */
@inline export function countPacket(svc: u32, dest: u32, bytes: u32, inbound: bool): void {
  const pk = inbound ? ST_INPKTS : ST_OUTPKTS;
  const by = inbound ? ST_INBYTES : ST_OUTBYTES;
  const s = serviceStats(svc);
  const d = destStats(dest);
  bump(statsBase, pk, 1);
  bump(statsBase, by, bytes);
  bump(s, pk, 1);
  bump(s, by, bytes);
  bump(d, pk, 1);
  bump(d, by, bytes);
}

/** Bytes without a packet: a later IP fragment of a datagram already counted as one. */
@inline export function countBytes(svc: u32, dest: u32, bytes: u32, inbound: bool): void {
  const by = inbound ? ST_INBYTES : ST_OUTBYTES;
  bump(statsBase, by, bytes);
  bump(serviceStats(svc), by, bytes);
  bump(destStats(dest), by, bytes);
}

/** Zeroes one block, counters and estimator alike (ipvsadm -Z). */
export function zeroStats(block: usize): void {
  memory.fill(block, 0, STATS_SIZE);
}

@inline function estimateField(block: usize, field: u32, avgField: u32, shift: u32): void {
  const now = load<u64>(block + field);
  const delta = now - load<u64>(block + LAST + field);
  store<u64>(block + LAST + field, now);
  const rate = <i64>(delta << shift);
  const avg = load<i64>(block + avgField);
  store<i64>(block + avgField, avg + ((rate - avg) >> 2));
}

function estimateBlock(block: usize): void {
  estimateField(block, ST_CONNS, ST_AVG_CPS, 9);
  estimateField(block, ST_INPKTS, ST_AVG_INPPS, 9);
  estimateField(block, ST_OUTPKTS, ST_AVG_OUTPPS, 9);
  estimateField(block, ST_INBYTES, ST_AVG_INBPS, 4);
  estimateField(block, ST_OUTBYTES, ST_AVG_OUTBPS, 4);
}

/** Runs one 2-second estimation over every block. */
export function estimateAll(): void {
  const blocks: u32 = 1 + statsServices + statsDests;
  for (let i: u32 = 0; i < blocks; i++) estimateBlock(statsBase + <usize>i * STATS_SIZE);
}

/**
 * Runs the estimator for every whole 2 s interval elapsed since the last run, at most
 * `maxCatchUp` of them (a host that stalled does not spin). Returns intervals run.
 */
export function estimateUntil(now: u32, maxCatchUp: u32): u32 {
  if (!estimatorStarted) {
    estimatorStarted = true;
    lastEstimate = now;
    return 0;
  }
  let runs: u32 = 0;
  while (<i32>(now - lastEstimate) >= <i32>ESTIMATOR_INTERVAL_MS) {
    lastEstimate += ESTIMATOR_INTERVAL_MS;
    if (runs < maxCatchUp) {
      estimateAll();
      runs++;
    }
  }
  return runs;
}

/** Displayed rate of a packet or connection average: (avg + 0x1FF) >> 10. */
@inline export function shownRate(avg: i64): u64 {
  return avg <= 0 ? 0 : <u64>((avg + 0x1ff) >> 10);
}
/** Displayed rate of a byte average: (avg + 0xF) >> 5. */
@inline export function shownByteRate(avg: i64): u64 {
  return avg <= 0 ? 0 : <u64>((avg + 0xf) >> 5);
}
