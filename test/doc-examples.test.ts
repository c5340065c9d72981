// Every example a doc shows runs here: the doc must include the file verbatim in a ts code
// block, and the example (importing "lvs-wasm" and "lvs-wasm/testing" as a user would, mapped
// onto the sources) must run. Examples using node:test register their tests here.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url);
const EXAMPLES: ReadonlyArray<readonly [example: string, doc: string]> = [
  ["test/examples/scheduler-fairness.example.ts", "docs/schedulers.md"],
  ["test/examples/balancer-nat.example.ts", "docs/balancer.md"],
  ["test/examples/huge-pages.example.ts", "docs/balancer.md"],
  ["test/examples/sync-pair.example.ts", "docs/sync.md"],
  ["test/examples/fragments.example.ts", "docs/fragments.md"],
];

const src = (p: string) => pathToFileURL(new URL(p, root).pathname).href;
// Inside the project, so "fast-check" and node_modules resolve.
const cache = new URL("node_modules/.cache/", root).pathname;
mkdirSync(cache, { recursive: true });

for (const [examplePath, docPath] of EXAMPLES) {
  const example = readFileSync(new URL(examplePath, root), "utf8");
  test(`${docPath} includes ${examplePath} verbatim`, () => {
    const doc = readFileSync(new URL(docPath, root), "utf8");
    assert.ok(doc.includes(`\`\`\`ts\n${example}\`\`\``), `${docPath} must contain ${examplePath} in a ts code block`);
  });
  const code = example
    .replace('from "lvs-wasm/testing"', `from ${JSON.stringify(src("src/testing/index.ts"))}`)
    .replace('from "lvs-wasm"', `from ${JSON.stringify(src("src/index.ts"))}`);
  assert.notEqual(code, example, `${examplePath} imports lvs-wasm`);
  const file = join(mkdtempSync(join(cache, "lvs-example-")), "example.ts");
  writeFileSync(file, code);
  // Top-level assertions throw at import; node:test tests inside register and run here.
  await import(pathToFileURL(file).href);
}
