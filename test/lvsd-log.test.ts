// docs/daemon.md shows lvsd's log as a sample and promises how a failure to start ends. Both
// are checked here against lvsd as a program, on a TUN device in a namespace of its own:
// each sample line (numbers, paths and "..." as wildcards) must be printed, in the order shown.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sendCommand } from "../src/index.js";
import { nextLabId, registerLab, unregisterLab } from "../src/lab/registry.js";
import { runSync, trySync } from "../src/lab/shell.js";
import { skipUnless } from "./support/tools.js";

const skip = skipUnless("root", "ip");
const CLI = new URL("../src/runtime/lvsd-cli.ts", import.meta.url).pathname;
const DOC = readFileSync(new URL("../docs/daemon.md", import.meta.url), "utf8");

/** The sample block that follows "One line per event on stderr". */
function sampleLines(): string[] {
  const at = DOC.indexOf("One line per event on stderr");
  const start = DOC.indexOf("```\n", at) + 4;
  return DOC.slice(start, DOC.indexOf("```", start))
    .split("\n")
    .filter((l) => l.startsWith("lvsd: "));
}

/** A sample line as a pattern: numbers, paths and "..." stand for whatever lvsd printed there. */
function pattern(line: string): RegExp {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^${escaped
      .replace(/ ?\\\.\\\.\\\./g, ".*")
      .replace(/\/(?:etc|run)\/lvs-wasm\/[\w./]+/g, "\\S+")
      .replace(/\d+/g, "\\d+")}$`,
  );
}

class Lines {
  readonly all: string[] = [];
  private waiters: { re: RegExp; resolve: () => void }[] = [];
  constructor(child: ChildProcess) {
    let buffer = "";
    child.stderr!.on("data", (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        // The namespace is this test's; the sample shows lvsd on the host.
        this.all.push(buffer.slice(0, nl).replace(/ in netns \S+/, ""));
        buffer = buffer.slice(nl + 1);
        this.waiters = this.waiters.filter((w) => !(this.all.some((l) => w.re.test(l)) && (w.resolve(), true)));
      }
    });
  }
  /** Resolves when a line matches (already or later); rejects after timeoutMs. */
  waitFor(re: RegExp, timeoutMs = 20_000): Promise<void> {
    if (this.all.some((l) => re.test(l))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line ${re} in:\n${this.all.join("\n")}`)), timeoutMs);
      this.waiters.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

test("lvsd prints the log docs/daemon.md shows, and a failure to start ends with one 'cannot start' line and status 1", { skip }, async () => {
  const ns = `${nextLabId()}-lvsd`;
  const lab = { id: ns, destroySync: () => void trySync("ip", ["netns", "del", ns]) };
  registerLab(lab);
  const dir = mkdtempSync(join(tmpdir(), "lvsd-log-"));
  try {
    runSync("ip", ["netns", "add", ns]);
    const rules = join(dir, "rules");
    const socket = join(dir, "run", "lvsd.sock");
    writeFileSync(rules, "-A -u 10.0.0.100:7 -s rr\n-a -u 10.0.0.100:7 -r 192.168.10.11:7 -m -w 1\n-a -u 10.0.0.100:7 -r 192.168.10.12:7 -m -w 1\n");
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "--workers", "1", "--netns", ns, "--tun", "lvs0", "--rules", rules, "--socket", socket], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const lines = new Lines(child);
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      await lines.waitFor(/^lvsd: ready$/);
      assert.equal((await sendCommand(socket, ["-A", "-t", "10.0.0.100:80", "-s", "rr"])).exitCode, 0);
      assert.notEqual((await sendCommand(socket, ["-A", "-t", "10.0.0.100:80", "-s", "rr"])).exitCode, 0);
      await lines.waitFor(/: Service already exists$/);
      // docs/lvsadm.md's --json sample shows lvsd's default table size.
      const json = JSON.parse((await sendCommand(socket, ["-L", "-n"], "", 10_000, true)).stdout) as { tableSize: number };
      const lvsadmDoc = readFileSync(new URL("../docs/lvsadm.md", import.meta.url), "utf8");
      assert.equal(json.tableSize, Number(/lvsadm -Ln --json +# \{ "tableSize": (\d+)/.exec(lvsadmDoc)?.[1]));
      writeFileSync(rules, `${readFileSync(rules, "utf8")}-A -t 10.0.0.100:80 -s rr\n-A -t 10.0.0.100:84 -s rr\n`);
      child.kill("SIGHUP");
      await lines.waitFor(/^lvsd: reload /);
      child.kill("SIGUSR1");
      await lines.waitFor(/^lvsd: packets received /);
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      child.kill("SIGKILL");
    }
    let from = 0;
    for (const sample of sampleLines()) {
      const re = pattern(sample);
      const at = lines.all.findIndex((l, i) => i >= from && re.test(l));
      assert.ok(at >= 0, `docs/daemon.md shows\n  ${sample}\nwhich lvsd did not print (after line ${from}):\n${lines.all.join("\n")}`);
      from = at + 1;
    }

    // A rules file that does not validate: lvsd says what it was doing, then one last line.
    const bad = join(dir, "bad");
    writeFileSync(bad, "# a comment\n-A -t 10.0.0.100:80 -s nosuch\n");
    const failing = spawn(
      process.execPath,
      ["--import", "tsx", CLI, "--workers", "1", "--netns", ns, "--tun", "lvs0", "--rules", bad, "--socket", join(dir, "other.sock")],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const failed = new Lines(failing);
    const code = await new Promise<number | null>((resolve) => failing.on("close", (c) => resolve(c)));
    assert.equal(code, 1);
    assert.match(failed.all.at(-1)!, /^lvsd: cannot start: line 2: scheduler: "nosuch" is not/);
    assert.equal(failed.all.filter((l) => l.includes("cannot start")).length, 1);
    assert.match(DOC, /a failure to start[^.]*ends with one line `lvsd: cannot start: REASON` and exit status 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    lab.destroySync();
    unregisterLab(lab);
  }
});
