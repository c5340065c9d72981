// Runs the testing-kit example that docs/schedulers.md shows, and checks the doc shows it
// verbatim. The example imports "lvs-wasm" and "lvs-wasm/testing" as a user would; here
// those names are mapped onto the sources.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url);
const example = readFileSync(new URL("test/examples/scheduler-fairness.example.ts", root), "utf8");

test("docs/schedulers.md includes the example verbatim", () => {
  const doc = readFileSync(new URL("docs/schedulers.md", root), "utf8");
  assert.ok(doc.includes("```ts\n" + example + "```"), "docs/schedulers.md must contain test/examples/scheduler-fairness.example.ts in a ts code block");
});

// The example's own tests register at top level and run here like any other test.
const src = (p: string) => pathToFileURL(new URL(p, root).pathname).href;
const code = example
  .replace('from "lvs-wasm/testing"', `from ${JSON.stringify(src("src/testing/index.ts"))}`)
  .replace('from "lvs-wasm"', `from ${JSON.stringify(src("src/index.ts"))}`);
assert.notEqual(code, example);
// inside the project, so "fast-check" resolves from its node_modules
const cache = new URL("node_modules/.cache/", root).pathname;
mkdirSync(cache, { recursive: true });
const file = join(mkdtempSync(join(cache, "lvs-example-")), "example.ts");
writeFileSync(file, code);
await import(pathToFileURL(file).href);
rmSync(dirname(file), { recursive: true, force: true }); // loaded: the copy is no longer needed
