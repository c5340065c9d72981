// `lvsadm -Sn | lvsadm -R` between two real lvsd, at kube-proxy scale (issue 17): a
// configuration of SERVICES services with PER destinations each is restored into director
// A from a file, copied to director B through a pipe, listed, and compared byte for byte.
// Needs root (lvsd's TUN devices go in a namespace of its own). Prints one line per step
// with wall and the lvsd's CPU time; docs/benchmarks/operations.md quotes a run. While B
// restores, SIGUSR1 and one `lvsadm -Ln` go to B (B's CPU for that step includes that listing).
//
//   node --import tsx bench/ops/restore-between-directors.ts [SERVICES] [PER]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { bigRules, createOpsHost } from "../../test/support/lvsd-proc.js";

const services = Number(process.argv[2] ?? 50_000);
const per = Number(process.argv[3] ?? 4);
const host = createOpsHost();
/** CPU seconds a process has used so far (utime + stime from /proc). */
const cpu = async (pid: number) => {
  const r = await host.sh(`awk '{print ($14 + $15) / 100}' /proc/${pid}/stat`);
  return Number(r.stdout.trim());
};
try {
  const rules = join(host.dir, "rules");
  writeFileSync(rules, bigRules(services, per));
  const [a, b] = await Promise.all([host.startLvsd(), host.startLvsd()]);
  console.log(
    `${services} services, ${services * per} destinations; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  const step = async (label: string, line: string, socket: string, pids: number[]) => {
    const before = await Promise.all(pids.map(cpu));
    const t = performance.now();
    const r = await host.sh(line, socket, 600_000);
    const wall = (performance.now() - t) / 1000;
    const after = await Promise.all(pids.map(cpu));
    const used = after.map((x, i) => (x - before[i]).toFixed(2)).join(" + ");
    console.log(`${label}: ${wall.toFixed(2)} s wall, lvsd CPU ${used} s, exit ${r.code}${r.code ? ` ${r.stderr.trim()}` : ""}`);
    return r;
  };
  await step("lvsadm -R < file (A)", `"$LVSADM" -R < ${rules}`, a.socket, [a.process.pid]);
  await step("lvsadm -Ln > /dev/null (A)", `"$LVSADM" -Ln > /dev/null`, a.socket, [a.process.pid]);
  await step("lvsadm -Sn | wc -c (A)", `set -o pipefail; "$LVSADM" -Sn | wc -c`, a.socket, [a.process.pid]);
  // While B restores from the pipe: a listing of B and SIGUSR1 to B, once B has started
  // applying (its table is no longer empty): both answer between the restore's slices.
  const copy = step(
    "lvsadm -Sn (A) | lvsadm -R (B)",
    `set -o pipefail; LVS_WASM_SOCKET=${a.socket} "$LVSADM" -Sn | LVS_WASM_SOCKET=${b.socket} "$LVSADM" -R`,
    a.socket,
    [a.process.pid, b.process.pid],
  );
  let copied = false;
  void copy.then(() => (copied = true));
  const count = async () => Number((await host.sh(`"$LVSADM" -Ln | grep -c '^TCP'`, b.socket)).stdout.trim() || 0);
  // Polled with a one-service listing (cheap): the first service of the file exists once B applies.
  while (!copied && (await host.sh(`"$LVSADM" -L -n -t 10.0.0.0:80`, b.socket)).code !== 0) await new Promise((r) => setTimeout(r, 20));
  if (!copied) {
    const t = performance.now();
    const seen = b
      .log()
      .split("\n")
      .filter((l) => l.includes("packets received")).length;
    process.kill(b.process.pid, "SIGUSR1");
    while (
      b
        .log()
        .split("\n")
        .filter((l) => l.includes("packets received")).length === seen
    )
      await new Promise((r) => setTimeout(r, 5));
    const usr1 = (performance.now() - t) / 1000;
    const t2 = performance.now();
    const listed = await count();
    const listing = (performance.now() - t2) / 1000;
    console.log(
      `during the copy: SIGUSR1 answered in ${usr1.toFixed(2)} s; lvsadm -Ln answered in ${listing.toFixed(2)} s (${listed} services applied so far, restore ${copied ? "ended" : "still running"})`,
    );
  }
  await copy;
  const same = await host.sh(
    `cmp <(LVS_WASM_SOCKET=${a.socket} "$LVSADM" -Sn) <(LVS_WASM_SOCKET=${b.socket} "$LVSADM" -Sn) && echo identical`,
    a.socket,
    600_000,
  );
  console.log(`A and B save: ${same.stdout.trim() || same.stderr.trim()}`);
  await step("SIGHUP-sized diff: lvsadm -Ln (B)", `"$LVSADM" -Ln > /dev/null`, b.socket, [b.process.pid]);
} finally {
  await host.destroy();
}
