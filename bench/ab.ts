// A/B of two checkouts in one run: runs a bench file of each, alternately (A B A B ...), and
// compares the medians row by row. Each table row's first number is read (the bench's own
// median); the report gives, per row, the median over the rounds for A and B and B / A.
// Used to show that a change leaves other paths as fast as they were (the machine's load
// moves both sides alike when they alternate).
//
//   node --import tsx bench/ab.ts BASE_DIR NEW_DIR datapath.bench.ts [rounds=3]
//
// Each checkout needs its build (npm run build:wasm) and node_modules. Environment
// variables pass through (LVS_BENCH_FLOWS, LVS_BENCH_TIME). The benches write their
// docs/benchmarks/*.md in each checkout as usual.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadavg } from "node:os";

const [base, next, file, roundsText] = process.argv.slice(2);
if (!base || !next || !file) {
  console.error("usage: node --import tsx bench/ab.ts BASE_DIR NEW_DIR FILE.bench.ts [rounds]");
  process.exit(2);
}
const rounds = Number(roundsText ?? 3);

/** Table rows "| label | number | ..." of a bench's output: label -> first number. */
function rows(output: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of output.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4 || cells[1] === "" || cells[1].startsWith("---")) continue;
    const label = cells
      .slice(1, -1)
      .filter((c) => !/^[\d.]+$/.test(c) && !/^[\d.]+x/.test(c) && !/faster|slower/.test(c))
      .join(" / ");
    const value = cells.slice(2).find((c) => /^\d+(\.\d+)?$/.test(c));
    if (value !== undefined && !out.has(label)) out.set(label, Number(value));
  }
  return out;
}

function run(dir: string): Map<string, number> {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(dir, "bench", file)], { cwd: dir, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${dir}: ${file} failed: ${r.stderr.slice(-2000)}`);
  return rows(r.stdout);
}

const samples = { a: new Map<string, number[]>(), b: new Map<string, number[]>() };
const loads: number[] = [];
for (let i = 0; i < rounds; i++) {
  for (const [side, dir] of [
    ["a", base],
    ["b", next],
  ] as const) {
    loads.push(loadavg()[0]);
    for (const [label, v] of run(dir)) {
      const list = samples[side].get(label) ?? [];
      list.push(v);
      samples[side].set(label, list);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(
  `A = ${base}\nB = ${next}\n${file}, ${rounds} rounds alternating, load average ${Math.min(...loads).toFixed(1)}..${Math.max(...loads).toFixed(1)}\n`,
);
console.log("| row | A median | B median | B / A |\n|---|---:|---:|---:|");
for (const [label, a] of samples.a) {
  const b = samples.b.get(label);
  if (!b) continue;
  console.log(`| ${label} | ${median(a)} | ${median(b)} | ${(median(b) / median(a)).toFixed(2)} |`);
}
