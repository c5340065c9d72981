// Per-folder scores from a Stryker JSON report (default reports/mutation/mutation.json), as
// docs/mutation-testing.md records them: killed + timed out over every mutant that compiled
// and that some test reached or not (survived and no-coverage count against the score).
//
//   node --import tsx scripts/mutation-score.ts [report.json]

import { readFileSync } from "node:fs";
import { dirname, relative } from "node:path";

interface Report {
  files: Record<string, { mutants: { status: string }[] }>;
}

const path = process.argv[2] ?? "reports/mutation/mutation.json";
const report = JSON.parse(readFileSync(path, "utf8")) as Report;
const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);

const rows = new Map<string, { detected: number; undetected: number; files: Set<string> }>();
for (const [file, { mutants }] of Object.entries(report.files)) {
  const folder = dirname(relative(process.cwd(), file));
  const row = rows.get(folder) ?? { detected: 0, undetected: 0, files: new Set<string>() };
  row.files.add(relative(process.cwd(), file));
  for (const m of mutants) {
    if (DETECTED.has(m.status)) row.detected++;
    else if (UNDETECTED.has(m.status)) row.undetected++;
  }
  rows.set(folder, row);
}
console.log("| folder | files mutated | killed or timed out | survived or not covered | score |");
console.log("| --- | --- | --- | --- | --- |");
for (const [folder, r] of [...rows].sort()) {
  const score = (100 * r.detected) / Math.max(1, r.detected + r.undetected);
  console.log(`| ${folder} | ${[...r.files].map((f) => f.slice(folder.length + 1)).join(", ")} | ${r.detected} | ${r.undetected} | ${score.toFixed(1)}% |`);
}
