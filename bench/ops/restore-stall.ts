// How long the data plane waits while lvsd's control plane works at kube-proxy scale
// (issue 17). lvsd as its command line runs it: the control requests on the main thread
// (LvsdHost), the data plane on one worker thread (runLvsdWorker, with lvsd's default
// tables) over an adapter that always has a packet to deliver, so the Director loop reads
// it as often as it can (restore-stall-worker.ts). The longest gap between two reads is the
// longest the packet loop stalled; the busiest gap is the most CPU the data-plane thread
// itself used between two reads (its work and its collector: on a loaded machine the
// longest gap also holds other processes' turns). Measured with nothing else to do (the baseline: garbage
// collection, timers), then during a 250,000-line `lvsadm -R`, a `-Ln` and a `-Sn` of the
// result, a `-Ln` asked while another restore runs, and two reloads (SIGHUP) of the whole
// file, with nothing and with one line changed. No root needed.
//
//   node --import tsx bench/ops/restore-stall.ts [SERVICES] [PER]

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { BroadcastChannel } from "node:worker_threads";
import { LvsdHost } from "../../src/runtime/lvsd-worker.js";
import { bigRules } from "../../test/support/lvsd-proc.js";
import { STALL, STALL_CHANNEL } from "./restore-stall-worker.js";

const services = Number(process.argv[2] ?? 50_000);
const per = Number(process.argv[3] ?? 4);

// Garbage-collection pauses of the main (control) thread, for comparison: they stall no packet.
let longestMainGc = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) longestMainGc = Math.max(longestMainGc, e.duration);
}).observe({ entryTypes: ["gc"] });

const dir = mkdtempSync(join(tmpdir(), "restore-stall-"));
const file = join(dir, "rules");
writeFileSync(file, "");
const channel = new BroadcastChannel(STALL_CHANNEL);
const shared = new Promise<Float64Array>((resolve) => {
  channel.onmessage = (e) => resolve(new Float64Array((e as MessageEvent).data as SharedArrayBuffer));
});
const host = await LvsdHost.start(
  new URL("./restore-stall-worker.ts", import.meta.url),
  { adapters: [], workers: 1, socketPath: false, vipCheck: false, rulesFile: file },
  () => {},
);
const figures = await shared;
channel.close();

/** Starts a new row: the worker zeroes the figures at its next read. */
async function resetFigures(): Promise<void> {
  figures[STALL.reset] = 1;
  while (figures[STALL.reset] !== 0) await new Promise((r) => setImmediate(r));
}
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const row = async (label: string, work: () => Promise<string>) => {
  await resetFigures();
  longestMainGc = 0;
  const c0 = cpu();
  const t0 = performance.now();
  const note = await work();
  const wall = (performance.now() - t0) / 1000;
  const used = cpu() - c0;
  const f = Float64Array.from(figures);
  console.log(
    `| ${label} | ${wall.toFixed(2)} s | ${used.toFixed(2)} s | ${f[STALL.reads]} | ${f[STALL.longestMs].toFixed(1)} ms | ${f[STALL.longestCpuMs].toFixed(1)} ms | ${f[STALL.busyOver2]} | ${f[STALL.busyOver5]} | ${f[STALL.longestGcMs].toFixed(1)} ms | ${longestMainGc.toFixed(1)} ms | ${note} |`,
  );
};
try {
  const text = bigRules(services, per);
  console.log(
    `${services} services, ${services * per} destinations; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}; node ${process.version}`,
  );
  console.log(
    "| step | wall | CPU | packet-loop reads | longest gap | busiest gap (the data-plane thread's CPU in it) | busy gaps > 2 ms | busy gaps > 5 ms | longest GC pause, data plane | longest GC pause, control thread | |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  // The text was just built: let the control thread's collector settle before the baseline.
  await new Promise((r) => setTimeout(r, 500));
  await row("nothing (baseline, 1 s)", async () => {
    await new Promise((r) => setTimeout(r, 1000));
    return "";
  });
  await row(`\`-R\` of ${text.split("\n").length - 1} lines`, async () => {
    const r = await host.command({ argv: ["-R"], stdin: text });
    return `exit ${r.exitCode}${r.stderr ? ` ${r.stderr.trim()}` : ""}`;
  });
  await row("`-Ln`", async () => `${(await host.command({ argv: ["-Ln"] })).stdout.length} bytes`);
  await row("`-Sn`", async () => `${(await host.command({ argv: ["-Sn"] })).stdout.length} bytes`);
  // A listing while a second restore (of new services) runs: it answers between the slices.
  const second = bigRules(5000, per).replace(/-t 10\./g, "-t 11.");
  await row("`-Ln` asked during a 25,000-line `-R`", async () => {
    const restore = host.command({ argv: ["-R"], stdin: second });
    let restored = false;
    void restore.then(() => (restored = true));
    const t = performance.now();
    const listing = await host.command({ argv: ["-Ln"] });
    const answered = (performance.now() - t) / 1000;
    const tookRestore = restored;
    await restore;
    return `-Ln answered in ${answered.toFixed(2)} s, ${tookRestore ? "after" : "before"} the restore ended (${listing.stdout.length} bytes)`;
  });
  // SIGHUP: the daemon reads its rules file again (all of it already applied by -R), then
  // with one line changed.
  writeFileSync(file, text + second);
  await row("reload of the whole file (adds nothing: already there)", async () => {
    const s = await host.reload();
    return s ? `${s.changes.length} changes` : "refused";
  });
  writeFileSync(file, (text + second).replace(/-w 1\n/, "-w 2\n"));
  await row("reload, one line changed", async () => {
    const s = await host.reload();
    return s ? `${s.changes.length} change: ${s.changes.join("; ")}` : "refused";
  });
} finally {
  await host.stop();
  rmSync(dir, { recursive: true, force: true });
}
