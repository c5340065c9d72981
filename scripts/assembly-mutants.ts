// Hand-written mutants of the data plane (assembly/): each is applied in turn, the wasm is
// rebuilt, and the tests named for it must fail. A mutant they survive is a hole in the
// suite. The sources are restored and the wasm rebuilt at the end, whatever happens.
// StrykerJS covers src/ (npm run test:mutation); it cannot mutate AssemblyScript, hence this.
//
//   npm run test:mutation:assembly              every mutant
//   npm run test:mutation:assembly -- lblcr-no-shed sh-port-always   only these
//
// Not run in CI (each mutant costs a wasm build and a few test files). The last result is
// in docs/mutation-testing.md.

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Mutant {
  readonly id: string;
  /** What the mutant breaks, in a few words. */
  readonly what: string;
  readonly file: string;
  /** [text found exactly once in the file, its replacement], applied in order. */
  readonly edits: readonly (readonly [find: string, replace: string])[];
  /** Test files (under test/) that must fail with the mutant in place. */
  readonly tests: readonly string[];
}

const MUTANTS: readonly Mutant[] = [
  {
    id: "lblcr-no-shed",
    what: "lblcr never sheds the busiest member of an old set",
    file: "assembly/sched/lblcr.ts",
    edits: [["if (load<u32>(p + E_SET_SIZE) > 1 && timeBefore(", "if (false && load<u32>(p + E_SET_SIZE) > 1 && timeBefore("]],
    tests: ["sched-lblc.test.ts"],
  },
  {
    id: "fold-ipv6-one-word",
    what: "the scheduler address fold ignores three of the four IPv6 words",
    file: "assembly/sched/hash.ts",
    edits: [["if (family == 6) w ^= load<u32>(p + 4) ^ load<u32>(p + 8) ^ load<u32>(p + 12);", "if (family == 6) w ^= 0;"]],
    tests: ["sched-properties.test.ts"],
  },
  {
    id: "sh-port-always",
    what: "sh hashes the client port without sh-port (same client, other port, other server)",
    file: "assembly/sched/sh.ts",
    edits: [["const port = (flags & SH_PORT) != 0 && l4Ported(", "const port = true && l4Ported("]],
    tests: ["sched-properties.test.ts"],
  },
  {
    id: "lc-weighted",
    what: "lc compares overhead/weight like wlc (a swapped formula)",
    file: "assembly/sched/lc.ts",
    edits: [["const doh = <u32>overhead(d);", "const doh = <u32>overhead(d) / <u32>weightOf(d);"]],
    tests: ["sched-properties.test.ts"],
  },
  {
    id: "mh-no-gcd",
    what: "mh's weight shift ignores the gcd of the weights",
    file: "assembly/sched/mh.ts",
    edits: [["(32 - <i32>clz<u32>(<u32>(mw / g))) - TAB_BITS", "(32 - <i32>clz<u32>(<u32>(mw))) - TAB_BITS"]],
    tests: ["sched-known-answers.test.ts"],
  },
  {
    id: "rr-reset-on-template-expiry",
    what: "a persistence template's expiry resets its service's rr position (a spurious reset)",
    file: "assembly/datapath/expire.ts",
    edits: [
      [
        'import { dropConn } from "./accounting";',
        'import { dropConn } from "./accounting";\nimport { C_SERVICE } from "../conn/conn-table";\nimport { svcPtr, S_A } from "../sched/table";',
      ],
      [
        "    dropConn(i);\n    expired++;",
        "    if ((<u32>load<u16>(connPtr(i) + C_FLAGS) & F_TEMPLATE) != 0) store<i32>(svcPtr(load<u32>(connPtr(i) + C_SERVICE)) + S_A, -1);\n    dropConn(i);\n    expired++;",
      ],
    ],
    tests: ["datapath.test.ts"],
  },
  {
    id: "tunnel-encap-dropped",
    what: "every tunnel action drops the packet (bad-action) instead of encapsulating: no trap, no stray write",
    file: "assembly/forward/apply.ts",
    edits: [["if (kind == ACTION_TUNNEL) return tunnelEncap(i, pkt, rec);", "if (kind == ACTION_TUNNEL) return outcome(VERDICT_DROP, REASON_BAD_ACTION);"]],
    tests: ["fuzz-no-trap.test.ts"],
  },
];

function build(): void {
  execFileSync("npm", ["run", "--silent", "build:wasm"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
}

function runTests(files: readonly string[]): { failed: boolean; summary: string } {
  // A child of `node --test` would report to its parent: run on its own.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...files.map((f) => `test/${f}`)], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    timeout: 15 * 60_000,
  });
  const out = `${r.stdout}${r.stderr}`;
  const count = (what: string) => new RegExp(`^ℹ ${what} (\\d+)$`, "m").exec(out)?.[1];
  return { failed: r.status !== 0, summary: `pass ${count("pass") ?? "?"}, fail ${count("fail") ?? "?"}, skipped ${count("skipped") ?? "?"}` };
}

const only = process.argv.slice(2);
const chosen = only.length ? MUTANTS.filter((m) => only.includes(m.id)) : MUTANTS;
if (only.length && chosen.length !== only.length) {
  console.error(`unknown mutant: ${only.filter((id) => !MUTANTS.some((m) => m.id === id)).join(", ")}`);
  process.exit(2);
}

const results: { mutant: Mutant; killed: boolean; summary: string }[] = [];
try {
  for (const mutant of chosen) {
    const path = `${ROOT}${mutant.file}`;
    const original = readFileSync(path, "utf8");
    let mutated = original;
    for (const [find, replace] of mutant.edits) {
      const at = mutated.indexOf(find);
      if (at < 0 || mutated.indexOf(find, at + 1) >= 0) throw new Error(`${mutant.id}: ${JSON.stringify(find)} is not found exactly once in ${mutant.file}`);
      mutated = mutated.slice(0, at) + replace + mutated.slice(at + find.length);
    }
    try {
      writeFileSync(path, mutated);
      build();
      const r = runTests(mutant.tests);
      results.push({ mutant, killed: r.failed, summary: r.summary });
      console.log(`${r.failed ? "killed  " : "SURVIVED"} ${mutant.id}: ${mutant.what} (${mutant.tests.join(" ")}: ${r.summary})`);
    } finally {
      writeFileSync(path, original);
    }
  }
} finally {
  build();
}
const survived = results.filter((r) => !r.killed);
console.log(`${results.length - survived.length} of ${results.length} mutants killed`);
process.exit(survived.length ? 1 : 0);
