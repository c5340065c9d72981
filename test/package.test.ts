// The package as users get it: `npm pack` (prepack builds the wasm and dist/), installed
// from the tarball into an empty project, then loaded by a child Node process as ESM
// (import) and as CommonJS (require), each rewriting a packet; a strict TypeScript
// consumer type-checked against the installed declarations; every doc example run there
// (ESM and CJS), and every other ts block of the docs type-checked there
// (test/support/doc-blocks.ts says which is which).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ts from "typescript";
import { EXAMPLES, docBlocks } from "./support/doc-blocks.js";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../", import.meta.url));
const TSC = join(REPO, "node_modules/.bin/tsc");

let dir = "";
let project = "";
let setupError: unknown;

async function sh(cmd: string, args: string[], cwd: string, timeout = 120_000) {
  try {
    // A child under `node --test` would report to this runner (NODE_TEST_CONTEXT): it must report on its own.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    return await run(cmd, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...env, NODE_OPTIONS: "" } });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
  }
}

// The check each child runs, shared by the ESM and the CJS file: a hand-made IPv4/UDP
// packet 192.0.2.1:40000 -> 198.51.100.1:53 through NAT to 10.9.8.7:8080, checksums
// recomputed here from the bytes that came back.
const CHECK = `
function sum16(b, start, end, init) {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if ((end - start) & 1) s += b[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
function packet() {
  const payload = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 7];
  const p = new Uint8Array(20 + 8 + payload.length);
  p.set([0x45, 0, 0, p.length, 0xab, 0xcd, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1]);
  p.set([40000 >> 8, 40000 & 0xff, 0, 53, 0, 8 + payload.length, 0, 0], 20);
  p.set(payload, 28);
  const ip = ~sum16(p, 0, 20, 0) & 0xffff;
  p[10] = ip >> 8; p[11] = ip & 0xff;
  const udp = ~sum16(p, 20, p.length, sum16(p, 12, 20, 17 + 8 + payload.length)) & 0xffff;
  p[26] = udp >> 8; p[27] = udp & 0xff;
  return p;
}
function check(lib, where) {
  const out = { where, exports: Object.keys(lib).length };
  const core = new lib.PacketCore({ slotCount: 2, slotCapacity: 2048, actionCount: 4 });
  const input = packet();
  out.parseStatus = core.parseBytes(input, lib.LinkType.RawIp).status;
  const r = core.rewrite(input, lib.LinkType.RawIp, { kind: "nat-dnat", address: "10.9.8.7", port: 8080 });
  const p = r.packet;
  out.verdict = r.verdict;
  out.reason = r.reason;
  out.length = p.length;
  out.source = Array.from(p.subarray(12, 16)).join(".") + ":" + ((p[20] << 8) | p[21]);
  out.destination = Array.from(p.subarray(16, 20)).join(".") + ":" + ((p[22] << 8) | p[23]);
  out.ipHeaderSum = p.length >= 20 ? sum16(p, 0, 20, 0) : -1; // 0xffff when the checksum is right
  out.udpSum = p.length >= 28 ? sum16(p, 20, p.length, sum16(p, 12, 20, 17 + p.length - 20)) : -1;
  out.payloadSame = Buffer.from(p.subarray(28)).equals(Buffer.from(input.subarray(28)));
  return out;
}
`;

before(async () => {
  try {
    dir = mkdtempSync(join(tmpdir(), "lvs-package-"));
    await sh("npm", ["pack", "--pack-destination", dir, "--silent"], REPO);
    const tgz = readdirSync(dir).filter((f) => f.endsWith(".tgz"));
    assert.equal(tgz.length, 1, `npm pack wrote ${tgz.join(", ") || "nothing"}`);
    project = join(dir, "consumer");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
    // fast-check is the testing kit's optional peer: a user of lvs-wasm/testing installs it.
    const fastCheck = JSON.parse(readFileSync(join(REPO, "node_modules/fast-check/package.json"), "utf8")).version;
    await sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(dir, tgz[0]), `fast-check@${fastCheck}`], project);

    writeFileSync(
      join(project, "esm.mjs"),
      [
        CHECK,
        `const lib = await import("lvs-wasm");`,
        `const out = check(lib, import.meta.resolve("lvs-wasm"));`,
        `const testing = await import("lvs-wasm/testing");`,
        `out.testing = import.meta.resolve("lvs-wasm/testing") + " " + typeof testing;`,
        `console.log(JSON.stringify(out));`,
      ].join("\n"),
    );
    writeFileSync(
      join(project, "cjs.cjs"),
      [
        CHECK,
        `const lib = require("lvs-wasm");`,
        `const out = check(lib, require.resolve("lvs-wasm"));`,
        `const testing = require("lvs-wasm/testing");`,
        `out.testing = require.resolve("lvs-wasm/testing") + " " + typeof testing;`,
        `console.log(JSON.stringify(out));`,
      ].join("\n"),
    );
  } catch (e) {
    setupError = e;
  }
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface ChildResult {
  where: string;
  exports: number;
  parseStatus: number;
  verdict: number;
  reason: number;
  length: number;
  source: string;
  destination: string;
  ipHeaderSum: number;
  udpSum: number;
  payloadSame: boolean;
  testing: string;
}

const results = new Map<string, ChildResult>();

async function child(file: string): Promise<ChildResult> {
  if (setupError) throw setupError;
  let r = results.get(file);
  if (!r) {
    const { stdout } = await sh(process.execPath, [file], project, 30_000);
    r = JSON.parse(stdout.trim().split("\n").pop()!) as ChildResult;
    results.set(file, r);
  }
  return r;
}

for (const [label, file, entry] of [
  ["ESM import()", "esm.mjs", "dist/index.js"],
  ["CJS require()", "cjs.cjs", "dist/index.cjs"],
] as const) {
  test(`${label} loads the installed package and its wasm`, async () => {
    const r = await child(file);
    const installed = join(project, "node_modules/lvs-wasm", entry);
    assert.equal(r.where.replace(/^file:\/\//, ""), installed, "resolved from the installed tarball, not the repo");
    assert.ok(r.exports > 10, `${r.exports} exports`);
    assert.equal(r.parseStatus, 0, "the data plane parses the packet");
    assert.match(r.testing, new RegExp(`node_modules/lvs-wasm/dist/testing/index\\.${file.endsWith(".mjs") ? "js" : "cjs"} object$`));
  });

  test(`${label} rewrites an IPv4/UDP packet through NAT (destination, port, checksums)`, async () => {
    const r = await child(file);
    assert.deepEqual(
      { verdict: r.verdict, reason: r.reason },
      { verdict: 1, reason: 0 },
      `expected verdict forward (1) reason none (0), got ${JSON.stringify(r)}`,
    );
    assert.equal(r.destination, "10.9.8.7:8080", "destination address and port rewritten");
    assert.equal(r.source, "192.0.2.1:40000", "source untouched");
    assert.equal(r.length, 41, "length unchanged");
    assert.equal(r.ipHeaderSum, 0xffff, "IPv4 header checksum valid");
    assert.equal(r.udpSum, 0xffff, "UDP checksum valid");
    assert.ok(r.payloadSame, "payload untouched");
  });
}

test("the installed declarations type-check a strict consumer (node16, ESM and CJS), and catch a misuse", async () => {
  if (setupError) throw setupError;
  const use = (imp: string) => `${imp}
const core: PacketCore = new PacketCore({ slotCount: 4 });
const action: ForwardAction = { kind: "tunnel", type: "gue", remote: "10.0.0.2", local: "10.0.0.1", port: 6080 };
core.setAction(0, action);
const r: SlotResult = core.rewrite(new Uint8Array(40), LinkType.RawIp, { kind: "nat-dnat", address: "10.0.0.9", port: 80 });
const v: Verdict = r.verdict;
const reason: string | undefined = DROP_REASON_NAMES[r.reason];
const p: ParsedPacket = core.parseBytes(r.packet, LinkType.Ethernet);
const family: 4 | 6 = p.family;
export const summary = [v, reason, family, Verdict.Forward, DropReason.NotIp, ActionKind.Tunnel];
`;
  const names = "PacketCore, LinkType, Verdict, DropReason, ActionKind, DROP_REASON_NAMES, type ForwardAction, type SlotResult, type ParsedPacket";
  writeFileSync(join(project, "consumer.ts"), use(`import { ${names} } from "lvs-wasm";\nimport "lvs-wasm/testing";`));
  writeFileSync(join(project, "consumer.cts"), use(`import { ${names} } from "lvs-wasm";\nimport testing = require("lvs-wasm/testing");\nvoid testing;`));
  writeFileSync(
    join(project, "misuse.ts"),
    `import { PacketCore } from "lvs-wasm";
new PacketCore().setAction(0, { kind: "nat-dnat", port: 80 });
`,
  );
  const tsconfig = (files: string[]) =>
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: "node16",
        moduleResolution: "node16",
        target: "es2022",
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
        typeRoots: [join(REPO, "node_modules/@types")],
      },
      files,
    });
  writeFileSync(join(project, "tsconfig.json"), tsconfig(["consumer.ts", "consumer.cts"]));
  await sh(TSC, ["-p", "tsconfig.json"], project);
  // A missing required field must be a type error: proves the declarations were really used.
  writeFileSync(join(project, "tsconfig.misuse.json"), tsconfig(["misuse.ts"]));
  await assert.rejects(sh(TSC, ["-p", "tsconfig.misuse.json"], project), /misuse\.ts.*error TS2345|error TS2345.*misuse/s);
});

// Each doc example, compiled to plain JavaScript the way a user's build would (imports of
// "lvs-wasm" and "lvs-wasm/testing" left alone), then run by Node in the consumer project.
function compileExample(file: string, format: "esm" | "cjs"): string {
  const source = readFileSync(join(REPO, file), "utf8");
  const module = format === "esm" ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS;
  return ts.transpileModule(source, { compilerOptions: { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true }, fileName: file }).outputText;
}

for (const [file, doc] of EXAMPLES) {
  const name = file.replace(/^.*\//, "").replace(/\.ts$/, "");
  for (const format of ["esm", "cjs"] as const) {
    test(`${doc}: ${name} runs from the installed package (${format.toUpperCase()})`, async () => {
      if (setupError) throw setupError;
      const out = join(project, `${name}.${format === "esm" ? "mjs" : "cjs"}`);
      writeFileSync(out, compileExample(file, format));
      // Tests inside (node:test) report as TAP; the process fails if any of them fails.
      const { stdout } = await sh(process.execPath, ["--test-reporter=tap", out], project, 60_000);
      if (readFileSync(join(REPO, file), "utf8").includes('from "node:test"')) {
        assert.match(stdout, /^# fail 0$/m, stdout);
        const passed = Number(/^# pass (\d+)$/m.exec(stdout)?.[1]);
        assert.ok(passed > 0, `no test ran: ${stdout}`);
      }
    });
  }
}

test("every other ts block of the docs type-checks against the installed package", async (t) => {
  if (setupError) throw setupError;
  const fragments = docBlocks().filter((b) => !b.example);
  const dir = join(project, "fragments");
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const b of fragments) {
    if (b.skip) {
      t.diagnostic(`${b.doc}:${b.line} not checked: ${b.skip}`);
      continue;
    }
    const name = `${b.doc.replace(/[/.]/g, "_")}_${b.line}.ts`;
    writeFileSync(join(dir, name), `${b.context ?? ""}\n${b.code}export {};\n`);
    files.push(`fragments/${name}`);
  }
  // The runnable examples too: their types against the declarations users get.
  for (const [file] of EXAMPLES) {
    const name = `example_${file.replace(/^.*\//, "")}`;
    writeFileSync(join(dir, name), readFileSync(join(REPO, file), "utf8"));
    files.push(`fragments/${name}`);
  }
  assert.ok(files.length >= 10, `${files.length} blocks to check`);
  const tsconfig = {
    compilerOptions: {
      strict: true,
      module: "node16",
      moduleResolution: "node16",
      target: "es2022",
      noEmit: true,
      skipLibCheck: true,
      types: ["node"],
      typeRoots: [join(REPO, "node_modules/@types")],
    },
    files,
  };
  writeFileSync(join(project, "tsconfig.docs.json"), JSON.stringify(tsconfig));
  // tsc names each failing block by its file: fragments/docs_tun-mode_md_44.ts is docs/tun-mode.md, fence on line 44.
  await sh(TSC, ["-p", "tsconfig.docs.json"], project);
});
