// The TypeScript a reader sees in README.md and docs/: every ```ts block, where it is, and
// how the checks treat it. A block is either a runnable example (a file in test/examples
// that the doc includes verbatim: run by test/doc-examples.test.ts from the sources and by
// test/package.test.ts from the packed tarball, in ESM and in CJS), or a fragment that is
// type-checked against the installed package. An HTML comment on the line before a block
// (invisible on the rendered page) can give a fragment its context, or exempt it with a reason:
//   <!-- doc-check: context declare const balancer: Balancer; -->
//   <!-- doc-check: skip AssemblyScript, compiled into the data plane -->

import { readdirSync, readFileSync } from "node:fs";

export const REPO_URL = new URL("../../", import.meta.url);

/** Runnable examples and the doc that shows each. */
export const EXAMPLES: ReadonlyArray<readonly [example: string, doc: string]> = [
  ["test/examples/readme-tour.example.ts", "README.md"],
  ["test/examples/scheduler-fairness.example.ts", "docs/schedulers.md"],
  ["test/examples/balancer-nat.example.ts", "docs/balancer.md"],
  ["test/examples/huge-pages.example.ts", "docs/balancer.md"],
  ["test/examples/sync-pair.example.ts", "docs/sync.md"],
  ["test/examples/fragments.example.ts", "docs/fragments.md"],
];

export interface DocBlock {
  readonly doc: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly code: string;
  /** The example file this block is, if any. */
  readonly example?: string;
  /** TypeScript placed before the block when type-checking it. */
  readonly context?: string;
  /** Why the block is not checked. */
  readonly skip?: string;
}

export function docFiles(): string[] {
  const docs = readdirSync(new URL("docs/", REPO_URL), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  return ["README.md", ...docs.sort()];
}

const DIRECTIVE = /^<!-- doc-check: (context|skip) (.+) -->$/;

export function docBlocks(): DocBlock[] {
  const examples = EXAMPLES.map(([file]) => [file, readFileSync(new URL(file, REPO_URL), "utf8")] as const);
  const blocks: DocBlock[] = [];
  for (const doc of docFiles()) {
    const lines = readFileSync(new URL(doc, REPO_URL), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== "```ts") continue;
      const end = lines.indexOf("```", i + 1);
      if (end < 0) throw new Error(`${doc}:${i + 1}: a ts code block that never closes`);
      const code = `${lines.slice(i + 1, end).join("\n")}\n`;
      const directive = DIRECTIVE.exec(lines[i - 1] ?? "");
      const example = examples.find(([, text]) => text === code)?.[0];
      blocks.push({
        doc,
        line: i + 1,
        code,
        ...(example ? { example } : {}),
        ...(directive?.[1] === "context" ? { context: directive[2] } : {}),
        ...(directive?.[1] === "skip" ? { skip: directive[2] } : {}),
      });
      i = end;
    }
  }
  return blocks;
}
