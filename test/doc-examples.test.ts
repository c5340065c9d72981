// Every example a doc shows runs here, from the sources: the doc must include the file
// verbatim in a ts code block, and the example (importing "lvs-wasm" and "lvs-wasm/testing"
// as a user would, mapped onto the sources) must run. Examples using node:test register
// their tests here. test/package.test.ts runs the same examples from the packed tarball, in
// ESM and CJS, and type-checks every other ts block of the docs against it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdtempSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { EXAMPLES, REPO_URL, docBlocks, docFiles } from "./support/doc-blocks.js";

const blocks = docBlocks();
const src = (p: string) => pathToFileURL(new URL(p, REPO_URL).pathname).href;
// Inside the project, so "fast-check" and node_modules resolve.
const cache = new URL("node_modules/.cache/", REPO_URL).pathname;
mkdirSync(cache, { recursive: true });

test("every doc-check comment stands right before a ts block, and every skip says why", () => {
  for (const b of blocks) if (b.skip !== undefined) assert.ok(b.skip.length > 10, `${b.doc}:${b.line}: a skip needs its reason`);
  const used = blocks.filter((b) => b.skip !== undefined || b.context !== undefined).length;
  const written = docFiles().reduce((n, doc) => n + (readFileSync(new URL(doc, REPO_URL), "utf8").match(/<!-- doc-check: /g) ?? []).length, 0);
  assert.equal(used, written, "a doc-check comment that is not on the line right before a ```ts fence is ignored: move it");
});

for (const [examplePath, docPath] of EXAMPLES) {
  const example = readFileSync(new URL(examplePath, REPO_URL), "utf8");
  test(`${docPath} includes ${examplePath} verbatim`, () => {
    assert.ok(
      blocks.some((b) => b.doc === docPath && b.example === examplePath),
      `${docPath} must contain ${examplePath} in a ts code block`,
    );
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

test("README names exactly the built-in schedulers", async () => {
  const { KERNEL_SCHEDULERS } = await import("../src/index.js");
  const readme = readFileSync(new URL("README.md", REPO_URL), "utf8").replace(/\s+/g, " ");
  const listed = /\*\*Schedulers\*\* \(`docs\/schedulers\.md`\): ([^;]+);/.exec(readme)?.[1];
  assert.ok(listed, "README's Schedulers line");
  assert.deepEqual(listed.split(", ").sort(), [...KERNEL_SCHEDULERS].sort());
});

// Files the docs name: each must be in the repository (a stale path after a move, or a path
// outside the checkout, is what a reader cannot follow). Globs must match something.
const NOT_IN_REPO: Record<string, string> = {
  "assembly/sched/mine.ts": "the file the reader writes in docs/schedulers.md's AssemblyScript recipe",
  "bench/out/system.json": "written by npm run bench:system (git-ignored)",
};

test("every repository path the docs name exists, and none points outside the repository", () => {
  const missing: string[] = [];
  const root = new URL(".", REPO_URL).pathname;
  for (const doc of docFiles()) {
    const text = readFileSync(new URL(doc, REPO_URL), "utf8");
    for (const [path] of text.matchAll(/(?:\.\.\/)+[\w./-]+|\b(?:src|test|docs|bench|scripts|assembly)\/[\w./*-]+\.(?:ts|md|json|cjs|mjs|lua)\b/g)) {
      if (path.startsWith("../")) {
        // relative to the doc; an import specifier's .js is the .ts source
        const target = join(root, dirname(doc), path);
        if (!target.startsWith(root)) missing.push(`${doc}: ${path} is outside the repository`);
        else if (!existsSync(target) && !existsSync(target.replace(/\.js$/, ".ts"))) missing.push(`${doc}: ${path}`);
        continue;
      }
      if (NOT_IN_REPO[path]) continue;
      if (path.includes("*")) {
        const dir = path.slice(0, path.lastIndexOf("/") + 1);
        const name = new RegExp(`^${path.slice(dir.length).replace(/\./g, "\\.").replace(/\*/g, ".*")}$`);
        if (!readdirSync(join(root, dir)).some((f) => name.test(f))) missing.push(`${doc}: ${path} matches nothing`);
      } else if (!existsSync(join(root, path))) missing.push(`${doc}: ${path}`);
    }
  }
  assert.deepEqual(missing, []);
});
