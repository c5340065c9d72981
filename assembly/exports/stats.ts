// ABI of the counters and rate estimator: start-up, where the blocks are, estimation and
// zeroing. The host reads the 64-bit counters straight from memory (layout in
// assembly/stats/counters.ts, mirrored in src/balancer/stats.ts).

import {
  initStats, statsBase, STATS_SIZE, estimateAll, estimateUntil, zeroStats, totalStats,
  serviceStats, destStats, statsServices, statsDests, countConnection, countPacket,
} from "../stats/counters";

export function statsInit(services: u32, dests: u32): u32 {
  return initStats(services, dests) ? 0 : 1;
}
export function regionStats(): usize { return statsBase; }
export function statsBlockBytes(): u32 { return STATS_SIZE; }
/** Runs the estimator for each whole 2 s interval since the last call (at most 8). */
export function statsEstimate(now: u32): u32 { return estimateUntil(now, 8); }
export function statsEstimateOnce(): void { estimateAll(); }
export function statsZeroTotal(): void { zeroStats(totalStats()); }
export function statsZeroService(svc: u32): void { if (svc < statsServices) zeroStats(serviceStats(svc)); }
export function statsZeroDest(dest: u32): void { if (dest < statsDests) zeroStats(destStats(dest)); }
// Test hooks (the datapath counts on its own).
export function statsTestConnection(svc: u32, dest: u32): void { countConnection(svc, dest); }
export function statsTestPacket(svc: u32, dest: u32, bytes: u32, inbound: u32): void { countPacket(svc, dest, bytes, inbound != 0); }
