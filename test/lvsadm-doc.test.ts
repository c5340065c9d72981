// docs/lvsadm.md's promises about output and help, checked against the code that keeps them:
// every sample listing or save line in "## Output" that starts like a service or a rule is
// produced by running the commands below; --help names what lvsadm adds to ipvsadm; every
// option `lvsadm replay --help` shows is documented.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { Balancer, executeCommand, parseCommand } from "../src/index.js";

const run = promisify(execFile);
const CLI = new URL("../src/admin/lvsadm-cli.ts", import.meta.url).pathname;
const DOC = readFileSync(new URL("../docs/lvsadm.md", import.meta.url), "utf8");

// The rule set behind the samples.
const RULES = [
  "-A -t 10.0.0.1:80 -s rr -b flag-1 -p 300 -M 255.255.255.0",
  "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
  "-A -u 10.0.0.1:5060 -s sh -b flag-1 -p 300 -M 255.255.255.0 --pe sip -o",
  "-A -f 5 -s wlc",
];

test("every service and rule line docs/lvsadm.md shows under Output is one lvsadm prints", () => {
  const b = new Balancer({ connections: 1024, director: { tunnelSource4: "10.1.0.254" } });
  const lvsadm = (line: string) => executeCommand({ balancer: b, now: () => 0, program: "lvsadm" }, parseCommand(line.split(" "), { program: "lvsadm" }));
  for (const line of RULES) assert.equal(lvsadm(line).exitCode, 0, line);
  const printed = new Set([...lvsadm("-Ln").stdout.split("\n"), ...lvsadm("-S -n").stdout.split("\n")]);
  const output = DOC.slice(DOC.indexOf("## Output"), DOC.indexOf("\n## ", DOC.indexOf("## Output") + 1));
  const samples = [...output.matchAll(/`((?:TCP|UDP) {2}[^`]+|-[Aa] -[tuf] [^`]+)`/g)].map((m) => m[1]);
  assert.ok(samples.length >= 4, `${samples.length} samples found`);
  for (const sample of samples) assert.ok(printed.has(sample), `docs/lvsadm.md shows "${sample}", which lvsadm does not print:\n${[...printed].join("\n")}`);
});

test("lvsadm --help adds -v, --json and replay to ipvsadm's help; every replay option is documented", async () => {
  const help = (await run(process.execPath, ["--import", "tsx", CLI, "--help"])).stdout;
  assert.match(help, /^ipvsadm v1\.31 /, "ipvsadm's help first");
  for (const word of [/--version\s+-v\b/, /--json\b/, /lvsadm replay\b/]) assert.match(help, word);
  const replayHelp = (await run(process.execPath, ["--import", "tsx", CLI, "replay", "--help"])).stdout;
  const usage = replayHelp.slice(0, replayHelp.indexOf("\nRuns ")); // the usage lines, not the prose after them
  const options = [...new Set(usage.match(/--[a-z][a-z-]+/g))];
  assert.ok(options.length >= 7, options.join(" "));
  const replaySection = DOC.slice(DOC.indexOf("## Offline: `lvsadm replay`"));
  for (const option of options) assert.ok(replaySection.includes(`\`${option}`), `docs/lvsadm.md's replay section does not mention ${option}`);
});
