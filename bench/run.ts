// Runs every bench/*.bench.ts in turn, each in its own Node process (so one benchmark's
// JIT state and heap do not colour the next). `npm run bench` builds the wasm first.
// Arguments filter by file name: `node --import tsx bench/run.ts rewrite`.

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const dir = fileURLToPath(new URL(".", import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no bench/*.bench.ts files${filters.length ? ` match ${filters.join(", ")}` : ""}`);
  process.exit(1);
}
const failed: string[] = [];
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", join(dir, file)], { stdio: "inherit" });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    failed.push(file);
    console.log(`=== ${file}: FAILED (${r.signal ?? `exit ${r.status}`}) after ${secs} s ===`);
  } else console.log(`=== ${file}: done in ${secs} s ===`);
}
if (failed.length) {
  console.error(`\n${failed.length} of ${files.length} benchmarks failed: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\n${files.length} benchmark${files.length === 1 ? "" : "s"} done`);
