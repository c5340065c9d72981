// `npm run demo [-- nat|dr|tun]`: the classic LVS walkthroughs in network namespaces.
// Each mode lives in its own module (src/demo/<mode>.ts) exporting
//   export async function run(log: (line: string) => void): Promise<void>
// and is loaded on demand, so a build without one of them still runs the others.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Mode name -> module, relative to this file. */
const MODES: Record<string, string> = {
  nat: "./nat.js",
  dr: "./dr.js",
  tun: "./tun.js",
};

type ModeModule = { run: (log: (line: string) => void) => Promise<void> };

/** True when the module's source (.ts under tsx) or build (.js) exists. */
function present(spec: string): boolean {
  const js = fileURLToPath(new URL(spec, import.meta.url));
  return existsSync(js) || existsSync(js.replace(/\.js$/, ".ts"));
}

async function main(argv: string[]): Promise<number> {
  const mode = argv[0] ?? "nat";
  if (mode === "-h" || mode === "--help") {
    process.stdout.write(`Usage: npm run demo [-- ${Object.keys(MODES).join("|")}]\nThe classic LVS walkthroughs in network namespaces (needs root).\n`);
    return 0;
  }
  const spec = MODES[mode];
  if (!spec) {
    process.stderr.write(`demo: unknown mode "${mode}" (modes: ${Object.keys(MODES).join(", ")})\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("demo: needs root for network namespaces (try: sudo npm run demo)\n");
    return 1;
  }
  if (!present(spec)) {
    process.stderr.write(`mode ${mode} is not available in this build\n`);
    return 1;
  }
  const mod = (await import(spec)) as Partial<ModeModule>;
  if (typeof mod.run !== "function") {
    process.stderr.write(`mode ${mode} is not available in this build (its module exports no run function)\n`);
    return 1;
  }
  await mod.run((line) => process.stdout.write(`${line}\n`));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
