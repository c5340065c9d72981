// The data-plane worker of bench/ops/restore-stall.ts: lvsd's own worker (runLvsdWorker)
// over an adapter that always has a packet to deliver, so the Director loop reads as often
// as it can. The adapter notes the time of every read and keeps its figures in a
// SharedArrayBuffer that the main thread reads (handed over on a BroadcastChannel), so
// that measuring sends no message to this thread and allocates nothing per read.

import { createRequire } from "node:module";
import { BroadcastChannel } from "node:worker_threads";
import { PerformanceObserver } from "node:perf_hooks";
import type { PacketSlots } from "../../src/core/packet-slots.js";
import { MemoryPacketIO } from "../../src/io/packet-io.js";
import { isLvsdWorker, runLvsdWorker } from "../../src/runtime/lvsd-worker.js";
import { buildPacket } from "../../src/testing/packets.js";

/** The figures' places in the shared Float64Array; RESET is set by the main thread to start a new row. */
export const STALL = { longestMs: 0, longestCpuMs: 1, busyOver2: 2, busyOver5: 3, reads: 4, longestGcMs: 5, reset: 6, size: 7 } as const;
export const STALL_CHANNEL = "lvs-wasm-restore-stall";

// This thread's own CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID) through koffi, into a
// buffer made once): a gap whose CPU here is far below its length was the machine running
// other threads, not this one working.
const koffi = createRequire(import.meta.url)("koffi") as {
  load(path: string): { func(decl: string): (clock: number, out: Buffer) => number };
};
const clockGettime = koffi.load("libc.so.6").func("int clock_gettime(int clock, void *ts)");
const CLOCK_THREAD_CPUTIME_ID = 3;
const timespec = Buffer.alloc(16);
function cpuMicros(): number {
  clockGettime(CLOCK_THREAD_CPUTIME_ID, timespec);
  return timespec.readUInt32LE(0) * 1e6 + timespec.readUInt32LE(8) / 1000;
}

/** Always one UDP datagram to deliver (to no service: passed, the cheapest verdict); notes each read. */
class BusyIO extends MemoryPacketIO {
  private last = performance.now();
  private lastCpu = cpuMicros();
  private readonly packet = buildPacket({ protocol: "udp", src: "172.16.0.1", dst: "203.0.113.1", sport: 4000, dport: 53 });
  constructor(private readonly figures: Float64Array) {
    super("busy0");
  }
  override receive(slots: PacketSlots, first: number, max: number): number {
    const f = this.figures;
    const now = performance.now();
    const cpuNow = cpuMicros();
    if (f[STALL.reset] !== 0) {
      f.fill(0);
    } else {
      const gap = now - this.last;
      f[STALL.longestMs] = Math.max(f[STALL.longestMs], gap);
      // The CPU this thread used in the gap: the stall that was its own work (or its collector's).
      const busy = (cpuNow - this.lastCpu) / 1000;
      f[STALL.longestCpuMs] = Math.max(f[STALL.longestCpuMs], busy);
      if (busy > 2) f[STALL.busyOver2]++;
      if (busy > 5) f[STALL.busyOver5]++;
      f[STALL.reads]++;
    }
    this.last = now;
    this.lastCpu = cpuNow;
    this.inject(this.packet);
    return super.receive(slots, first, max);
  }
  override send(): number {
    return 0;
  }
}

if (isLvsdWorker()) {
  const figures = new Float64Array(new SharedArrayBuffer(STALL.size * 8));
  // Garbage-collection pauses in this isolate, to tell them from the work's own slices.
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (figures[STALL.reset] === 0) figures[STALL.longestGcMs] = Math.max(figures[STALL.longestGcMs], e.duration);
  }).observe({ entryTypes: ["gc"] });
  const channel = new BroadcastChannel(STALL_CHANNEL);
  channel.postMessage(figures.buffer);
  channel.close();
  void runLvsdWorker({ io: [new BusyIO(figures)] });
}
