// The walkthrough's dispatcher, apart from the process so it can be tested: which mode, is
// it available, may this user run it. Each mode lives in its own module
// (src/demo/<mode>.ts) exporting
//   export async function run(log: (line: string) => void): Promise<void>
// and is loaded on demand, so a build without one of them still runs the others.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Mode name -> module, relative to this file. */
const MODES: Record<string, string> = {
  nat: "./nat.js",
  dr: "./dr.js",
  tun: "./tun.js",
  ecmp: "./ecmp.js",
};

type ModeModule = { run: (log: (line: string) => void) => Promise<void> };

export interface DemoEnvironment {
  /** The effective user id (network namespaces need root). */
  readonly uid: number | undefined;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** True when the module's source (.ts under tsx) or build (.js) exists. */
function present(spec: string): boolean {
  const js = fileURLToPath(new URL(spec, import.meta.url));
  return existsSync(js) || existsSync(js.replace(/\.js$/, ".ts"));
}

/** Runs `npm run demo [-- mode]`; returns the exit status. */
export async function runWalkthrough(argv: readonly string[], env: DemoEnvironment): Promise<number> {
  const mode = argv[0] ?? "nat";
  if (mode === "-h" || mode === "--help") {
    env.out(`Usage: npm run demo [-- ${Object.keys(MODES).join("|")}]\nThe classic LVS walkthroughs in network namespaces (needs root).\n`);
    return 0;
  }
  const spec = MODES[mode];
  if (!spec) {
    env.err(`demo: unknown mode "${mode}" (modes: ${Object.keys(MODES).join(", ")})\n`);
    return 2;
  }
  if (env.uid !== 0) {
    env.err("demo: needs root for network namespaces (try: sudo npm run demo)\n");
    return 1;
  }
  if (!present(spec)) {
    env.err(`mode ${mode} is not available in this build\n`);
    return 1;
  }
  const mod = (await import(spec)) as Partial<ModeModule>;
  if (typeof mod.run !== "function") {
    env.err(`mode ${mode} is not available in this build (its module exports no run function)\n`);
    return 1;
  }
  await mod.run((line) => env.out(`${line}\n`));
  return 0;
}
