// `lvsadm -Sn | lvsadm -R` between two real lvsd, at kube-proxy scale (issue 17): a
// configuration of SERVICES services with PER destinations each is restored into director
// A from a file, copied to director B through a pipe, listed, and compared byte for byte.
// Needs root (lvsd's TUN devices go in a namespace of its own). Prints one line per step
// with wall and the lvsd's CPU time; docs/benchmarks/operations.md quotes a run.
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
  await step(
    "lvsadm -Sn (A) | lvsadm -R (B)",
    `set -o pipefail; LVS_WASM_SOCKET=${a.socket} "$LVSADM" -Sn | LVS_WASM_SOCKET=${b.socket} "$LVSADM" -R`,
    a.socket,
    [a.process.pid, b.process.pid],
  );
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
