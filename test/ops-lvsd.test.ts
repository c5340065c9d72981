// lvsd and lvsadm as an operator uses them, through real pipes and real daemons (issue 17):
// listings longer than a pipe's 64 KiB arrive whole, a reader that goes away ends lvsadm
// quietly, `lvsadm -Sn | lvsadm -R` copies a configuration between two directors byte for
// byte, one lvsd per socket (a live one is named, a stale one replaced), long socket paths,
// the top of --connections, idle and surplus control connections, garbage and half
// requests, concurrent lvsadm, and line numbers in restore errors.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { bigRules, createOpsHost, type LvsdProcess, type OpsHost } from "./support/lvsd-proc.js";
import { skipUnless } from "./support/tools.js";

const skip = skipUnless("root", "ip", "bash", "wc", "head");

/** Opens `n` control connections that send nothing; resolves when all are connected. */
function idleConnections(socket: string, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = createConnection(socket);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
          s.on("data", () => {});
        }),
    ),
  );
}

/** Resolves when every socket has been closed by the other side. */
function allClosed(sockets: readonly Socket[]): Promise<void> {
  return Promise.all(sockets.map((s) => (s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once("close", () => r()))))).then(() => {});
}

/** Sends raw bytes (optionally without half-closing) and returns the answer text. */
function rawRequest(socket: string, bytes: string | Buffer, end = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    let data = "";
    s.on("connect", () => (end ? s.end(bytes) : s.write(bytes)));
    s.on("data", (c) => (data += c.toString()));
    s.on("close", () => resolve(data));
    s.on("error", reject);
  });
}

describe("lvsd and lvsadm through pipes and real daemons", { skip }, () => {
  let host: OpsHost;
  let a: LvsdProcess;
  let b: LvsdProcess;
  let rulesFile: string;

  before(async () => {
    host = createOpsHost();
    rulesFile = join(host.dir, "big.rules");
    // The case: 3 services with 1,000 destinations each, 136,872 bytes of -Sn.
    writeFileSync(rulesFile, bigRules(3, 1000));
    [a, b] = await Promise.all([host.startLvsd(["--control-idle-ms", "3000", "--control-connections", "40"]), host.startLvsd()]);
    const r = await host.sh(`"$LVSADM" -R < ${rulesFile}`, a.socket);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await host?.destroy();
  });

  test("a listing longer than a pipe's buffer arrives whole, to a slow reader too, with exit status 0", async () => {
    const file = join(host.dir, "saved");
    const toFile = await host.sh(`"$LVSADM" -Sn > ${file}; echo "status $?"; wc -c < ${file}`, a.socket);
    const [, size] = /status 0\n(\d+)/.exec(toFile.stdout) ?? [];
    assert.ok(Number(size) > 65536 * 2, `the save is ${size} bytes`);
    const piped = await host.sh(`set -o pipefail; "$LVSADM" -Sn | wc -c`, a.socket);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(Number(piped.stdout.trim()), Number(size), "the pipe carries every byte the file got");
    const slow = await host.sh(`set -o pipefail; "$LVSADM" -Sn | (sleep 1; wc -c)`, a.socket);
    assert.equal(Number(slow.stdout.trim()), Number(size), "a reader that starts late still gets everything");
    const json = await host.sh(
      `set -o pipefail; "$LVSADM" -Ln --json | node -e 'let t="";process.stdin.on("data",c=>t+=c).on("end",()=>console.log(JSON.parse(t).services.reduce((n,s)=>n+s.destinations.length,0)))'`,
      a.socket,
    );
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stdout.trim(), "3000", "-Ln --json through a pipe parses whole");
  });

  test("a reader that goes away (| head) ends lvsadm quietly, as SIGPIPE ends ipvsadm", async () => {
    const r = await host.sh(`"$LVSADM" -Sn | head -c 100 > /dev/null; echo "status \${PIPESTATUS[0]}"`, a.socket);
    assert.match(r.stdout, /^status 141$/m);
    assert.equal(r.stderr, "", "no stack trace, no message");
  });

  test("lvsadm -Sn | lvsadm -R copies the configuration to another director byte for byte", async () => {
    const copy = await host.sh(`set -o pipefail; LVS_WASM_SOCKET=${a.socket} "$LVSADM" -Sn | LVS_WASM_SOCKET=${b.socket} "$LVSADM" -R`);
    assert.equal(copy.code, 0, copy.stderr);
    const [sa, sb] = await Promise.all([host.sh(`"$LVSADM" -Sn`, a.socket), host.sh(`"$LVSADM" -Sn`, b.socket)]);
    assert.equal(sb.stdout.length, sa.stdout.length);
    assert.ok(sb.stdout === sa.stdout, "the second director saves exactly what the first one does");
  });

  test("a restore error names its line, and changes nothing", async () => {
    const r = await host.sh(
      `printf '%s\\n' '-A -t 10.99.0.1:80 -s rr' '-a -t 10.99.0.1:80 -r 192.168.1.1:80 -m' '-A -t 10.0.0.0:80 -s rr' | "$LVSADM" -R`,
      a.socket,
    );
    assert.equal(r.code, 255);
    assert.equal(r.stderr, "line 3: Service already exists: TCP 10.0.0.0:80\n");
    const after = await host.sh(`"$LVSADM" -Ln -t 10.99.0.1:80`, a.socket);
    assert.notEqual(after.code, 0, "the first service of the refused restore was not added");
  });

  test("a second lvsd on the same socket is refused and names the first one's pid; the first keeps its socket", async () => {
    const second = host.spawnLvsd(["--tun", "lvsopsdup", "--netns", host.netns, "--socket", a.socket, "--no-huge-pages"]);
    const outcome = await Promise.race([second.exited, second.waitForOutput(/^lvsd: ready$/m, 120_000).then(() => ({ code: "ready" }))]);
    if (outcome.code === "ready") await second.stop("SIGKILL");
    const { code } = outcome;
    assert.equal(code, 1);
    const lines = second.output().trim().split("\n");
    const refusal = lines.find((l) => l.includes("cannot start"));
    assert.ok(refusal, second.output());
    assert.match(refusal, new RegExp(`control socket ${a.socket} is in use: process ${a.process.pid} holds it`));
    assert.ok(existsSync(a.socket), "the first lvsd's socket is still there");
    assert.equal((await host.sh(`"$LVSADM" -Ln > /dev/null`, a.socket)).code, 0, "and it still answers");
  });

  test("a stale socket of a dead lvsd is replaced", async () => {
    const dead = await host.startLvsd();
    dead.process.killSync();
    await dead.process.exited;
    assert.ok(existsSync(dead.socket), "SIGKILL left the socket file behind");
    const next = await host.startLvsd([], { socket: dead.socket });
    assert.equal((await host.sh(`"$LVSADM" -Ln > /dev/null`, next.socket)).code, 0);
    assert.equal(await next.stop(), 0);
    assert.equal(existsSync(dead.socket), false, "a clean stop removes its socket");
  });

  test("a socket path longer than sun_path: one line, exit 2, no file or directory made", async () => {
    const dir = join(host.dir, "x".repeat(60));
    const path = join(dir, `${"y".repeat(60)}.sock`);
    const p = host.spawnLvsd(["--tun", "lvsopslong", "--socket", path]);
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(
      p.output(),
      /^lvsd: control socket \/\S+: \d+ bytes, longer than the 107 a Unix socket path may have \(sun_path\); choose a shorter --socket path\n$/,
    );
    assert.equal(existsSync(dir), false);
  });

  test("idle control connections are closed and surplus ones refused with a logged line; lvsadm works again after", async () => {
    const idle = await idleConnections(a.socket, 200);
    const busy = JSON.parse(await rawRequest(a.socket, JSON.stringify({ argv: ["-L", "-n"], stdin: "" }))) as { stderr: string; exitCode: number };
    assert.equal(busy.exitCode, 2);
    assert.equal(busy.stderr, "lvsd: busy: 40 control connections are open; try again\n");
    await allClosed(idle);
    const ok = await host.sh(`"$LVSADM" -Ln > /dev/null`, a.socket);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(a.log(), /control: refused a connection: 40 already open \(raise --control-connections/);
    assert.match(a.log(), /control: closed a connection idle for 3000 ms without a whole request/);
  });

  test("garbage, a half request and a blob get answers or time out; lvsd keeps serving", async () => {
    assert.match(await rawRequest(a.socket, "not json at all"), /bad request/);
    assert.match(await rawRequest(a.socket, Buffer.alloc(4 * 1024 * 1024, 0xff)), /bad request/);
    assert.match(await rawRequest(a.socket, '{"argv": 7}'), /bad request/);
    assert.equal(await rawRequest(a.socket, '{"argv": ["-L", "-n"], "std', false), "", "a half request is closed after the idle time, unanswered");
    assert.equal((await host.sh(`"$LVSADM" -Ln > /dev/null`, a.socket)).code, 0);
  });

  test("a service for an address the kernel still has (local, TIME_WAIT) gets one warning line naming the fix", async () => {
    const ns = host.netns;
    await host.sh(`ip -n ${ns} link set lo up && ip -n ${ns} addr add 10.77.0.1/32 dev lo && ip -n ${ns} addr add 10.77.0.2/32 dev lo`);
    // Five connections the server closes first: five TIME_WAIT sockets for 10.77.0.2:8080.
    const tw = await host.sh(
      `ip netns exec ${ns} node -e '
        const net = require("node:net");
        const srv = net.createServer((s) => s.end()).listen(8080, "10.77.0.2", async () => {
          for (let i = 0; i < 5; i++) await new Promise((r) => net.connect(8080, "10.77.0.2").on("data", () => {}).on("close", r));
          srv.close();
        });' && ip -n ${ns} addr del 10.77.0.2/32 dev lo && ss -N ${ns} -Htan state time-wait | wc -l`,
    );
    assert.equal(tw.stdout.trim(), "5", tw.stderr);
    assert.equal(
      (await host.sh(`"$LVSADM" -A -t 10.77.0.1:80 -s rr && "$LVSADM" -A -t 10.77.0.2:8080 -s rr && "$LVSADM" -A -t 10.77.0.1:443`, a.socket)).code,
      0,
    );
    await a.process.waitForOutput(/TIME_WAIT/, 20_000);
    await a.process.waitForOutput(/10\.77\.0\.1:80: 10\.77\.0\.1 is a local address/, 20_000);
    const warnings = a
      .log()
      .split("\n")
      .filter((l) => l.includes("warning: service 10.77."));
    const local = warnings.filter((l) => l.includes("is a local address"));
    assert.equal(local.length, 1, `one line for the local address, not one per service:\n${warnings.join("\n")}`);
    assert.match(local[0], /remove it \(ip addr del 10\.77\.0\.1\/\.\.\. dev IF\)/);
    const early = warnings.filter((l) => l.includes("TIME_WAIT"));
    assert.equal(early.length, 1);
    assert.match(
      early[0],
      /^lvsd: warning: service 10\.77\.0\.2:8080: 5 TIME_WAIT sockets for 10\.77\.0\.2:8080 \(netns \S+\): early demux .*sysctl -w net\.ipv4\.ip_early_demux=0, or wait up to 60 s/,
    );
    assert.doesNotMatch(early[0], /local address/, "10.77.0.2 was removed: only its sockets remain");
  });

  test("concurrent lvsadm commands all apply", async () => {
    const adds = Array.from({ length: 16 }, (_, i) => `"$LVSADM" -a -t 10.0.0.1:80 -r 172.16.0.${i + 1}:80 -m & `).join("");
    const r = await host.sh(`${adds} wait; "$LVSADM" -Ln -t 10.0.0.1:80 | grep -c 172.16.0.`, a.socket);
    assert.equal(r.stdout.trim(), "16", r.stderr);
  });
});

describe("lvsd at the top of its documented ranges", { skip }, () => {
  let host: OpsHost;
  before(() => {
    host = createOpsHost();
  });
  after(async () => {
    await host?.destroy();
  });

  test("--connections 16777216 starts (the table is carved in pieces) and lists its size", async () => {
    const d = await host.startLvsd(["--connections", "16777216"]);
    const r = await host.sh(`"$LVSADM" -Ln | head -1`, d.socket);
    assert.match(r.stdout, /size=16777216/);
    assert.equal(await d.stop(), 0);
  });
});
