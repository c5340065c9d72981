// How long the data plane waits while lvsd's control plane works at kube-proxy scale
// (issue 17): lvsd's daemon (the code its data-plane worker runs) with its default tables
// over an adapter that always has a packet to deliver, so the Director loop reads it as
// often as it can; the adapter notes the time of every read. The longest gap between two
// reads is the longest the packet loop stalled. Measured with nothing else to do (the
// baseline: garbage collection, timers), then during a 250,000-line `lvsadm -R`, a `-Ln`
// and a `-Sn` of the result, a `-Ln` asked while another restore runs, and a reload of the
// whole file with one line changed. No root needed.
//
//   node --import tsx bench/ops/restore-stall.ts [SERVICES] [PER]

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { MemoryPacketIO } from "../../src/io/packet-io.js";
import type { PacketSlots } from "../../src/core/packet-slots.js";
import { Lvsd } from "../../src/runtime/lvsd.js";
import { buildPacket } from "../../src/testing/packets.js";
import { bigRules } from "../../test/support/lvsd-proc.js";

const services = Number(process.argv[2] ?? 50_000);
const per = Number(process.argv[3] ?? 4);

function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** Always one UDP datagram to deliver (to no service: passed, the cheapest verdict); notes each read. */
class BusyIO extends MemoryPacketIO {
  private last = performance.now();
  private lastCpu = cpuMicros();
  private longest = 0;
  private longestCpu = 0;
  private over10 = 0;
  private reads = 0;
  private readonly packet = buildPacket({ protocol: "udp", src: "172.16.0.1", dst: "203.0.113.1", sport: 4000, dport: 53 });
  override receive(slots: PacketSlots, first: number, max: number): number {
    const now = performance.now();
    const cpuNow = cpuMicros();
    this.longest = Math.max(this.longest, now - this.last);
    // The CPU this process used in the gap: a gap far longer than it was another process's turn.
    this.longestCpu = Math.max(this.longestCpu, (cpuNow - this.lastCpu) / 1000);
    if (now - this.last > 10) this.over10++;
    this.last = now;
    this.lastCpu = cpuNow;
    this.reads++;
    this.inject(this.packet);
    return super.receive(slots, first, max);
  }
  override send(): number {
    return 0;
  }
  /** The longest gap (wall, and CPU used in it), gaps over 10 ms and the reads since the last call. */
  take(): { longestMs: number; longestCpuMs: number; over10: number; reads: number } {
    const r = { longestMs: this.longest, longestCpuMs: this.longestCpu, over10: this.over10, reads: this.reads };
    this.longest = 0;
    this.longestCpu = 0;
    this.over10 = 0;
    this.reads = 0;
    this.last = performance.now();
    this.lastCpu = cpuMicros();
    return r;
  }
}

// Garbage-collection pauses, to tell them from the slices' own length.
let longestGc = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) longestGc = Math.max(longestGc, e.duration);
}).observe({ entryTypes: ["gc"] });

const dir = mkdtempSync(join(tmpdir(), "restore-stall-"));
const file = join(dir, "rules");
writeFileSync(file, "");
const io = new BusyIO("busy0");
const daemon = await Lvsd.start({ io: [io], socketPath: false, vipCheck: false, rulesFile: file, log: () => {} });
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const row = async (label: string, work: () => Promise<string>) => {
  io.take();
  longestGc = 0;
  const c0 = cpu();
  const t0 = performance.now();
  const note = await work();
  const wall = (performance.now() - t0) / 1000;
  const used = cpu() - c0;
  const { longestMs, longestCpuMs, over10, reads } = io.take();
  console.log(
    `| ${label} | ${wall.toFixed(2)} s | ${used.toFixed(2)} s | ${reads} | ${longestMs.toFixed(1)} ms | ${longestCpuMs.toFixed(1)} ms | ${over10} | ${longestGc.toFixed(1)} ms | ${note} |`,
  );
};
try {
  const text = bigRules(services, per);
  console.log(
    `${services} services, ${services * per} destinations; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}; node ${process.version}`,
  );
  console.log("| step | wall | CPU | packet-loop reads | longest gap | CPU in the longest-CPU gap | gaps > 10 ms | longest GC pause | |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---|");
  await row("nothing (baseline, 1 s)", async () => {
    await new Promise((r) => setTimeout(r, 1000));
    return "";
  });
  await row(`\`-R\` of ${text.split("\n").length - 1} lines`, async () => {
    const r = await daemon.command({ argv: ["-R"], stdin: text });
    return `exit ${r.exitCode}, ${daemon.balancer.serviceCount} services`;
  });
  await row("`-Ln`", async () => `${(await daemon.command({ argv: ["-Ln"] })).stdout.length} bytes`);
  await row("`-Sn`", async () => `${(await daemon.command({ argv: ["-Sn"] })).stdout.length} bytes`);
  // A listing while a second restore (of new services) runs: it answers between the slices.
  const second = bigRules(5000, per).replace(/-t 10\./g, "-t 11.");
  await row("`-Ln` asked during a 25,000-line `-R`", async () => {
    const restore = Promise.resolve(daemon.command({ argv: ["-R"], stdin: second }));
    let restored = false;
    void restore.then(() => (restored = true));
    const t = performance.now();
    const listing = await daemon.command({ argv: ["-Ln"] });
    const answered = (performance.now() - t) / 1000;
    const tookRestore = restored;
    await restore;
    return `-Ln answered in ${answered.toFixed(2)} s, ${tookRestore ? "after" : "before"} the restore ended (${listing.stdout.length} bytes)`;
  });
  // SIGHUP: the daemon reads its rules file again (all of it already applied by -R), then
  // with one line changed.
  writeFileSync(file, text + second);
  await row("reload of the whole file (adds nothing: already there)", async () => {
    const s = await daemon.reload();
    return s ? `${s.changes.length} changes` : "refused";
  });
  writeFileSync(file, (text + second).replace(/-w 1\n/, "-w 2\n"));
  await row("reload, one line changed", async () => {
    const s = await daemon.reload();
    return s ? `${s.changes.length} change: ${s.changes.join("; ")}` : "refused";
  });
} finally {
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
}
