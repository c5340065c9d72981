// Runs the Balancer example that docs/balancer.md shows, and checks the doc shows it verbatim.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url);
const example = readFileSync(new URL("test/examples/balancer-nat.example.ts", root), "utf8");

test("docs/balancer.md includes the example verbatim, and it runs", async () => {
  const doc = readFileSync(new URL("docs/balancer.md", root), "utf8");
  assert.ok(doc.includes("```ts\n" + example + "```"), "docs/balancer.md must contain test/examples/balancer-nat.example.ts in a ts code block");
  const src = (p: string) => pathToFileURL(new URL(p, root).pathname).href;
  const code = example
    .replace('from "lvs-wasm/testing"', `from ${JSON.stringify(src("src/testing/index.ts"))}`)
    .replace('from "lvs-wasm"', `from ${JSON.stringify(src("src/index.ts"))}`);
  assert.notEqual(code, example);
  const cache = new URL("node_modules/.cache/", root).pathname;
  mkdirSync(cache, { recursive: true });
  const file = join(mkdtempSync(join(cache, "lvs-example-")), "example.ts");
  writeFileSync(file, code);
  await import(pathToFileURL(file).href); // its assertions throw on any difference
});
