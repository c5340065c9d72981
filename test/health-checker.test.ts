// The HealthChecker from the TypeScript API, on a Balancer in this process, without root:
// keepalived's retry counting, quorum with hysteresis and the sorry server, MISC_CHECK
// misc_dynamic weights from a real program's exit status, HTTP_GET's status and digest
// against a real HTTP server on loopback, inhibit_on_failure, and a reconfigure that keeps
// unchanged servers' state. The same in namespaces with nginx and lvsd is
// test/e2e-health.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { Balancer } from "../src/balancer/balancer.js";
import { CheckState } from "../src/health/check-state.js";
import { HttpCheckState } from "../src/health/http-check-state.js";
import { HealthChecker } from "../src/health/health-checker.js";
import type { CheckSpec, CheckTimers, HealthConfig, RealServerSpec } from "../src/health/spec.js";
import type { ServiceConfig } from "../src/config/types.js";
import { waitFor } from "../src/demo/support.js";
import { skipUnless } from "./support/tools.js";

const SERVICE: ServiceConfig = {
  key: { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 },
  scheduler: "wlc",
  schedulerFlags: [],
  onePacket: false,
};
const FAST: CheckTimers = { delayLoop: 30, connectTimeout: 500, retry: 0, delayBeforeRetry: 10, warmup: 0, alpha: false };

function rs(address: string, checks: CheckSpec[], extra: Partial<RealServerSpec> = {}, weight = 1): RealServerSpec {
  return { destination: { address, port: 80, method: "masq", weight, upperThreshold: 0, lowerThreshold: 0 }, checks, inhibitOnFailure: false, ...extra };
}
const tcp = (address: string, timers: Partial<CheckTimers> = {}): CheckSpec => ({ type: "TCP_CHECK", ...FAST, ...timers, address, port: 80 });

/** "address weight" of every destination of the service, in table order. */
/** The table as "address weight" lines, sorted (a listing itself is newest first). */
function table(b: Balancer): string[] {
  return b
    .listing()
    .services.flatMap((s) => s.destinations.map((d) => `${d.config.address} ${d.config.weight}`))
    .sort();
}

test("CheckState: keepalived's counting — the first failure decides, then retry extra attempts delay_before_retry apart, a success resets; alpha starts down", () => {
  const s = new CheckState({ delayLoop: 1000, retry: 2, delayBeforeRetry: 100, alpha: false });
  assert.equal(s.up, true);
  assert.deepEqual(s.record(true), { delay: 1000, transition: null, retrying: 0, failuresInRow: 0 });
  assert.deepEqual(s.record(false), { delay: 100, transition: null, retrying: 1, failuresInRow: 1 }, "first failure of an up checker: retry");
  assert.deepEqual(s.record(false), { delay: 100, transition: null, retrying: 2, failuresInRow: 2 });
  assert.deepEqual(s.record(false), { delay: 1000, transition: "down", retrying: 0, failuresInRow: 3 }, "retry + 1 failures in a row: down");
  assert.deepEqual(s.record(true), { delay: 1000, transition: "up", retrying: 0, failuresInRow: 0 });
  assert.deepEqual(s.record(false), { delay: 100, transition: null, retrying: 1, failuresInRow: 1 });
  assert.deepEqual(s.record(true), { delay: 1000, transition: null, retrying: 0, failuresInRow: 0 }, "a success resets the count");
  const first = new CheckState({ delayLoop: 1000, retry: 3, delayBeforeRetry: 100, alpha: false });
  assert.equal(first.record(false).transition, "down", "before the first result the counter is full: one failure is enough");
  const alpha = new CheckState({ delayLoop: 1000, retry: 1, delayBeforeRetry: 100, alpha: true });
  assert.equal(alpha.up, false);
  assert.equal(alpha.record(true).transition, "up");
});

test("HttpCheckState: keepalived's HTTP_GET order — one url per attempt; the failed url is retried, then asked every max(delay_before_retry, delay_loop); on recovery every url again from the first", () => {
  const s = new HttpCheckState({ delayLoop: 1000, retry: 1, delayBeforeRetry: 300, alpha: false }, 2);
  const step = (ok: boolean) => {
    const asked = s.url;
    const o = s.record(ok);
    return `${asked}:${ok ? "ok" : "fail"} -> ${o.transition ?? "-"} +${o.delay}`;
  };
  assert.deepEqual(
    [step(true), step(true), step(true), step(false), step(false), step(false), step(true), step(true), step(true)],
    [
      "0:ok -> - +1000",
      "1:ok -> - +1000",
      "0:ok -> - +1000",
      "1:fail -> - +300", // retry the same url
      "1:fail -> down +1000", // retry + 1 failures: down, url 1 remembered
      "1:fail -> - +1000", // down: the failed url every max(300, 1000)
      "1:ok -> - +1000", // it answers: start over from the first url
      "0:ok -> - +1000",
      "1:ok -> up +1000", // every url passed: up
    ],
  );
  const fast = new HttpCheckState({ delayLoop: 1000, retry: 0, delayBeforeRetry: 300, alpha: true }, 2, true);
  assert.deepEqual([fast.record(true).delay, fast.record(true).transition], [0, "up"], "fast_recovery: no delay_loop between urls before the first result");
});

test("quorum with hysteresis: below quorum - hysteresis the sorry server replaces the real servers; at quorum + hysteresis they come back", async () => {
  const healthy = new Map([
    ["10.1.0.1", true],
    ["10.1.0.2", true],
    ["10.1.0.3", true],
  ]);
  const b = new Balancer({ connections: 1024, slots: 4 });
  const lines: string[] = [];
  const checker = HealthChecker.forBalancer(b, {
    log: (l) => lines.push(l),
    probe: async (spec) => ({ ok: "address" in spec && healthy.get(spec.address) === true, detail: "fake" }),
  });
  const config: HealthConfig = {
    virtualServers: [
      {
        services: [SERVICE],
        realServers: ["10.1.0.1", "10.1.0.2", "10.1.0.3"].map((a) => rs(a, [tcp(a)])),
        quorum: 2,
        hysteresis: 1,
        sorryServer: { destination: { address: "10.9.9.9", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 }, inhibit: false },
      },
    ],
  };
  await checker.start(config);
  try {
    assert.deepEqual(table(b), ["10.1.0.1 1", "10.1.0.2 1", "10.1.0.3 1"]);
    // Live weight 2: quorum 2 - hysteresis 1 = 1 still holds.
    healthy.set("10.1.0.1", false);
    await waitFor("10.1.0.1 removed", () => table(b).length === 2);
    assert.deepEqual(table(b), ["10.1.0.2 1", "10.1.0.3 1"]);
    // Live weight 1: still >= 1.
    healthy.set("10.1.0.2", false);
    await waitFor("10.1.0.2 removed", () => table(b).length === 1);
    await checker.settled();
    assert.deepEqual(table(b), ["10.1.0.3 1"]);
    assert.equal(checker.status()[0].quorumUp, true);
    // Live weight 0 < 2 - 1: quorum lost, the sorry server in.
    healthy.set("10.1.0.3", false);
    await waitFor("sorry server in", () => table(b).includes("10.9.9.9 1"));
    await checker.settled();
    assert.deepEqual(table(b), ["10.9.9.9 1"], "only the sorry server");
    // Recovery to weight 2 is below quorum + hysteresis = 3: the sorry server stays.
    healthy.set("10.1.0.1", true);
    healthy.set("10.1.0.2", true);
    await waitFor("two servers alive", () => checker.status()[0].realServers.filter((r) => r.alive).length === 2);
    // Two more rounds of every check after that: the state they lead to is stable.
    const runs = () => checker.status()[0].realServers.map((r) => r.checks[0].runs);
    const before = runs();
    await waitFor("two more rounds", () => runs().every((n, i) => n >= before[i] + 2));
    await checker.settled();
    assert.deepEqual(table(b), ["10.9.9.9 1"], "weight 2 < quorum 2 + hysteresis 1: the sorry server stays");
    healthy.set("10.1.0.3", true);
    await waitFor("quorum back", () => !table(b).includes("10.9.9.9 1"));
    await checker.settled();
    assert.deepEqual(table(b).sort(), ["10.1.0.1 1", "10.1.0.2 1", "10.1.0.3 1"]);
    assert.ok(
      lines.some((l) => /lost quorum \(live weight 0 < 2-1\); sorry server 10\.9\.9\.9:80 in, real servers out/.test(l)),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => /gained quorum \(live weight 3 >= 2\+1\); sorry server 10\.9\.9\.9:80 out/.test(l)),
      lines.join("\n"),
    );
  } finally {
    checker.stop();
  }
});

test("MISC_CHECK misc_dynamic: exit status 2..255 sets the weight to status - 2, 0 keeps it, 1 takes the server down (inhibit_on_failure: weight 0, kept)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "misc-check-"));
  const status = join(dir, "status");
  const script = join(dir, "check.sh");
  writeFileSync(script, `#!/bin/sh\nexit $(cat ${status})\n`);
  chmodSync(script, 0o755);
  writeFileSync(status, "0");
  const b = new Balancer({ connections: 1024, slots: 4 });
  const lines: string[] = [];
  const checker = HealthChecker.forBalancer(b, { log: (l) => lines.push(l) });
  const misc: CheckSpec = { type: "MISC_CHECK", ...FAST, command: [script], timeout: 2000, dynamic: true };
  await checker.start({
    virtualServers: [{ services: [SERVICE], realServers: [rs("10.1.0.1", [misc], { inhibitOnFailure: true }, 5)], quorum: 1, hysteresis: 0 }],
  });
  try {
    assert.deepEqual(table(b), ["10.1.0.1 5"]);
    writeFileSync(status, "12");
    await waitFor("weight 10", () => table(b)[0] === "10.1.0.1 10");
    writeFileSync(status, "2");
    await waitFor("weight 0 by exit 2", () => table(b)[0] === "10.1.0.1 0");
    assert.equal(checker.status()[0].realServers[0].alive, true, "exit 2 is a success with weight 0");
    writeFileSync(status, "0");
    await waitFor("configured weight back", () => table(b)[0] === "10.1.0.1 5");
    writeFileSync(status, "1");
    await waitFor("down", () => checker.status()[0].realServers[0].alive === false);
    await checker.settled();
    assert.deepEqual(table(b), ["10.1.0.1 0"], "inhibit_on_failure: in the table at weight 0");
    assert.ok(
      lines.some((l) =>
        /MISC_CHECK \[.*check\.sh\] of real server 10\.1\.0\.1:80 \(TCP 10\.0\.0\.100:80\): down: .*exited with status 1; weight 0 \(inhibit_on_failure\)/.test(
          l,
        ),
      ),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => /weight 5 -> 10/.test(l)),
      lines.join("\n"),
    );
  } finally {
    checker.stop();
  }
});

test("HTTP_GET: a wrong status or a changed digest takes the server down, the right answer brings it back; keepalived's request line and Host", async () => {
  let body = "healthy\n";
  let code = 200;
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} HTTP/${req.httpVersion} ${req.headers["user-agent"]} ${req.headers.host}`);
    res.writeHead(code, { "content-type": "text/plain" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const digest = createHash("md5").update("healthy\n").digest("hex");
  const b = new Balancer({ connections: 1024, slots: 4 });
  const lines: string[] = [];
  const checker = HealthChecker.forBalancer(b, { log: (l) => lines.push(l) });
  const http: CheckSpec = {
    type: "HTTP_GET",
    ...FAST,
    address: "127.0.0.1",
    port,
    httpProtocol: "1.0",
    urls: [{ path: "/health", digest, statusCodes: [[200, 299]] }],
  };
  await checker.start({ virtualServers: [{ services: [SERVICE], realServers: [rs("10.1.0.1", [http])], quorum: 1, hysteresis: 0 }] });
  try {
    await waitFor("a request", () => requests.length > 0);
    assert.equal(requests[0], `GET /health HTTP/1.0 KeepAliveClient 127.0.0.1:${port}`);
    code = 503;
    await waitFor("down on 503", () => table(b).length === 0);
    code = 200;
    await waitFor("up again", () => table(b).length === 1);
    body = "changed\n";
    await waitFor("down on digest", () => table(b).length === 0);
    assert.ok(
      lines.some((l) => /HTTP_GET 127\.0\.0\.1:\d+ of real server 10\.1\.0\.1:80 \(TCP 10\.0\.0\.100:80\): down: \/health: status 503; removed/.test(l)),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => new RegExp(`down: /health: digest ${createHash("md5").update("changed\n").digest("hex")}, expected ${digest}; removed`).test(l)),
      lines.join("\n"),
    );
  } finally {
    checker.stop();
    server.close();
  }
});

test("reconfigure: unchanged servers keep their state (a down server stays down, no re-add), a changed weight is one -e, a removed server one -d", async () => {
  const healthy = new Map([
    ["10.1.0.1", true],
    ["10.1.0.2", false],
  ]);
  const b = new Balancer({ connections: 1024, slots: 4 });
  const commands: string[] = [];
  const checker = HealthChecker.forBalancer(b, {
    log: () => {},
    probe: async (spec) => ({ ok: "address" in spec && healthy.get(spec.address) === true, detail: "fake" }),
  });
  checker.on((e) => {
    if (e.type === "table") commands.push(e.argv.join(" "));
  });
  const config = (w: number, servers: string[]): HealthConfig => ({
    virtualServers: [{ services: [SERVICE], realServers: servers.map((a) => rs(a, [tcp(a)], {}, a === "10.1.0.1" ? w : 1)), quorum: 1, hysteresis: 0 }],
  });
  await checker.start(config(1, ["10.1.0.1", "10.1.0.2", "10.1.0.3"]));
  try {
    await waitFor("10.1.0.2 down", () => !table(b).includes("10.1.0.2 1"));
    await waitFor("10.1.0.3 down", () => !table(b).includes("10.1.0.3 1"));
    commands.length = 0;
    const summary = await checker.reconfigure(config(4, ["10.1.0.1", "10.1.0.2"]));
    assert.deepEqual(summary, { kept: 2, added: 0, changed: 0, removed: 1 });
    assert.deepEqual(commands, ["-e -t 10.0.0.100:80 -r 10.1.0.1:80 -m -w 4"], "10.1.0.2 stays down (not re-added); 10.1.0.3 was not in the table");
    assert.deepEqual(table(b), ["10.1.0.1 4"]);
    // A kept server's checks now count for the new configuration: its failure loses the
    // new virtual server's quorum and brings in the sorry server it names.
    await checker.reconfigure({
      virtualServers: [
        {
          ...config(4, ["10.1.0.1", "10.1.0.2"]).virtualServers[0],
          sorryServer: { destination: { address: "10.9.9.9", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 }, inhibit: false },
        },
      ],
    });
    healthy.set("10.1.0.1", false);
    await waitFor("sorry server in", () => table(b).join() === "10.9.9.9 1");
  } finally {
    checker.stop();
  }
});

test("DNS_CHECK: an answer with the query's id and rcode 0 succeeds; rcode 3 (NXDOMAIN) or silence fails", async () => {
  let rcode = 0;
  let answer = true;
  const seen: string[] = [];
  const dns = createSocket("udp4");
  dns.on("message", (msg, from) => {
    // The question's name, as labels: "example.org".
    const labels: string[] = [];
    for (let at = 12; msg[at] !== 0; at += msg[at] + 1) labels.push(msg.subarray(at + 1, at + 1 + msg[at]).toString());
    seen.push(`${labels.join(".")} type ${msg.readUInt16BE(msg.length - 4)} rd ${(msg.readUInt16BE(2) >> 8) & 1}`);
    if (!answer) return;
    const reply = Buffer.from(msg);
    reply.writeUInt16BE(0x8180 | rcode, 2);
    dns.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => dns.bind(0, "127.0.0.1", r));
  const port = dns.address().port;
  const b = new Balancer({ connections: 1024, slots: 4 });
  const checker = HealthChecker.forBalancer(b, { log: () => {} });
  const check: CheckSpec = { type: "DNS_CHECK", ...FAST, connectTimeout: 200, address: "127.0.0.1", port, queryType: "A", name: "example.org" };
  await checker.start({ virtualServers: [{ services: [SERVICE], realServers: [rs("10.1.0.1", [check])], quorum: 1, hysteresis: 0 }] });
  try {
    await waitFor("a query", () => seen.length > 0);
    assert.equal(seen[0], "example.org type 1 rd 1");
    assert.deepEqual(table(b), ["10.1.0.1 1"]);
    rcode = 3;
    await waitFor("down on NXDOMAIN", () => table(b).length === 0);
    rcode = 0;
    await waitFor("up", () => table(b).length === 1);
    answer = false;
    await waitFor("down on silence", () => table(b).length === 0);
    assert.match(checker.status()[0].realServers[0].checks[0].lastDetail, /no answer within 200 ms/);
  } finally {
    checker.stop();
    dns.close();
  }
});

test("SSL_GET: HTTP over TLS (a self-signed certificate is accepted, as keepalived without an SSL block); a wrong status fails", {
  skip: skipUnless("openssl"),
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "ssl-get-"));
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=rs1"],
    { stdio: "ignore" },
  );
  let code = 200;
  const server = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (_req, res) =>
    res.writeHead(code).end("ok\n"),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const b = new Balancer({ connections: 1024, slots: 4 });
  const checker = HealthChecker.forBalancer(b, { log: () => {} });
  const check: CheckSpec = { type: "SSL_GET", ...FAST, address: "127.0.0.1", port, httpProtocol: "1.1", urls: [{ path: "/", statusCodes: [[200, 200]] }] };
  await checker.start({ virtualServers: [{ services: [SERVICE], realServers: [rs("10.1.0.1", [check])], quorum: 1, hysteresis: 0 }] });
  try {
    await waitFor("a passing check", () => checker.status()[0].realServers[0].checks[0].runs > 0);
    assert.equal(checker.status()[0].realServers[0].checks[0].lastDetail, "/: ok");
    code = 500;
    await waitFor("down on 500", () => table(b).length === 0);
  } finally {
    checker.stop();
    server.close();
  }
});

test("notify_down / notify_up run on each change; warmup delays the first check by random x warmup", async () => {
  const dir = mkdtempSync(join(tmpdir(), "notify-"));
  const events = join(dir, "events");
  writeFileSync(events, "");
  let healthy = true;
  const firstAt: number[] = [];
  const started = performance.now();
  const b = new Balancer({ connections: 1024, slots: 4 });
  const checker = HealthChecker.forBalancer(b, {
    log: () => {},
    random: () => 0.5,
    probe: async () => {
      if (firstAt.length === 0) firstAt.push(performance.now() - started);
      return { ok: healthy, detail: "fake" };
    },
  });
  const sh = (word: string) => ["/bin/sh", "-c", `echo ${word} >> ${events}`];
  await checker.start({
    virtualServers: [
      {
        services: [SERVICE],
        realServers: [rs("10.1.0.1", [tcp("10.1.0.1", { warmup: 300 })], { notifyUp: sh("up"), notifyDown: sh("down") })],
        quorum: 1,
        hysteresis: 0,
      },
    ],
  });
  try {
    await waitFor("first check", () => firstAt.length > 0);
    assert.ok(firstAt[0] >= 140, `first check after ${firstAt[0].toFixed(0)} ms, warmup 300 x 0.5`);
    healthy = false;
    await waitFor("notify_down ran", () => readFileSync(events, "utf8") === "down\n");
    healthy = true;
    await waitFor("notify_up ran", () => readFileSync(events, "utf8") === "down\nup\n");
  } finally {
    checker.stop();
  }
});

test("alpha: a server starts out of the table until its first success; sorry_server_inhibit keeps the sorry server at weight 0 while quorum holds", async () => {
  let healthy = false;
  const b = new Balancer({ connections: 1024, slots: 4 });
  const checker = HealthChecker.forBalancer(b, { log: () => {}, probe: async () => ({ ok: healthy, detail: "fake" }) });
  await checker.start({
    virtualServers: [
      {
        services: [SERVICE],
        realServers: [rs("10.1.0.1", [tcp("10.1.0.1", { alpha: true, warmup: 0 })])],
        quorum: 1,
        hysteresis: 0,
        sorryServer: { destination: { address: "10.9.9.9", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 }, inhibit: true },
      },
    ],
  });
  try {
    // Alpha: down from the start, so quorum is down and the sorry server serves.
    assert.deepEqual(table(b), ["10.9.9.9 1"]);
    await waitFor("a failing check", () => checker.status()[0].realServers[0].checks[0].runs > 0);
    assert.deepEqual(table(b), ["10.9.9.9 1"], "a failure keeps an alpha server out");
    healthy = true;
    await waitFor("the server in", () => table(b).includes("10.1.0.1 1"));
    await checker.settled();
    assert.deepEqual(table(b).sort(), ["10.1.0.1 1", "10.9.9.9 0"], "sorry_server_inhibit: the sorry server stays at weight 0");
  } finally {
    checker.stop();
  }
});

test("TCP_CHECK connect_ip / connect_port / bindto / bind_port: the check connects where it is told, from where it is told", async () => {
  const peers: string[] = [];
  const server = createTcpServer((s) => {
    peers.push(`${s.remoteAddress}`);
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.3", r));
  const port = (server.address() as AddressInfo).port;
  const b = new Balancer({ connections: 1024, slots: 4 });
  const checker = HealthChecker.forBalancer(b, { log: () => {} });
  // The real server is 10.1.0.1:80; its check goes to 127.0.0.3:port from 127.0.0.5.
  const check: CheckSpec = { type: "TCP_CHECK", ...FAST, address: "127.0.0.3", port, bindto: "127.0.0.5" };
  await checker.start({ virtualServers: [{ services: [SERVICE], realServers: [rs("10.1.0.1", [check])], quorum: 1, hysteresis: 0 }] });
  try {
    await waitFor("a connection", () => peers.length > 0);
    assert.equal(peers[0], "127.0.0.5");
    assert.deepEqual(table(b), ["10.1.0.1 1"]);
    server.close();
    await waitFor("down once nothing listens", () => table(b).length === 0);
  } finally {
    checker.stop();
  }
});
