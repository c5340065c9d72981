// Self-check of the benchmark peers: the router lab (no balancer: client -> kernel router ->
// RS1) and HAProxy (one thread, TCP mode, round robin) in the director. curl gets the right
// servers, wrk gets a positive request rate, iperf3 a positive bitrate. The figures are
// printed (not judged): the system benchmark compares them side by side.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createLab, curl, httpUrl, iperf3, startHaproxy, startHttpServer, startIperf3Server, wrk, labSkip } from "./support/netns.js";

const SKIP = { skip: labSkip("curl", "wrk", "iperf3") };
const SKIP_HAPROXY = { skip: labSkip("curl", "wrk", "iperf3", "haproxy") };

const mbps = (bps: number) => `${(bps / 1e6).toFixed(0)} Mbit/s`;

test("router lab: curl answers RS1, wrk and iperf3 measure the plain kernel path", SKIP, async () => {
  const lab = await createLab({ mode: "router", realServers: 2 });
  try {
    await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1")]);
    const target = lab.target.v4;
    for (let i = 0; i < 2; i++) assert.equal((await curl(lab, "client", httpUrl(target))).body, "RS1\n");
    assert.equal((await curl(lab, "client", httpUrl("192.168.10.12"))).body, "RS2\n");

    const w = await wrk(lab, "client", httpUrl(target), { durationS: 2, connections: 10 });
    assert.ok(w.requestsPerSec > 0 && w.requests > 0, JSON.stringify(w));
    assert.equal(w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout + w.errors.status, 0, JSON.stringify(w.errors));
    const ip = await iperf3(lab, "client", target, { durationS: 2 });
    assert.ok(ip.bitsPerSecond > 0, JSON.stringify(ip.raw).slice(0, 500));
    console.log(
      `router: wrk -t1 -c10 -d2s: ${w.requestsPerSec.toFixed(0)} req/s (p50 ${w.latencyUs.p50} us, p99 ${w.latencyUs.p99} us); ` +
        `iperf3 -t 2: ${mbps(ip.bitsPerSecond)}`,
    );
  } finally {
    await lab.destroy();
  }
});

test("haproxy lab: round robin alternates RS1/RS2; wrk and iperf3 (balance source) through it", SKIP_HAPROXY, async () => {
  const lab = await createLab({ mode: "nat", realServers: 2 });
  try {
    await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1"), startIperf3Server(lab, "rs2")]);
    const hp = await startHaproxy(lab);
    assert.match(hp.config, /nbthread 1/);
    assert.match(hp.config, /mode tcp/);
    const vip = lab.vip!.v4;
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) bodies.push((await curl(lab, "client", httpUrl(vip))).body.trim());
    assert.ok(bodies[0] === "RS1" || bodies[0] === "RS2", bodies.join(","));
    for (let i = 1; i < 4; i++) assert.notEqual(bodies[i], bodies[i - 1], `round robin alternates: ${bodies.join(",")}`);

    const w = await wrk(lab, "client", httpUrl(vip), { durationS: 2, connections: 10 });
    assert.ok(w.requestsPerSec > 0 && w.requests > 0, JSON.stringify(w));
    assert.equal(w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout + w.errors.status, 0, JSON.stringify(w.errors));
    const ip = await iperf3(lab, "client", vip, { durationS: 2 });
    assert.ok(ip.bitsPerSecond > 0, JSON.stringify(ip.raw).slice(0, 500));
    console.log(
      `haproxy (nbthread 1, tcp): wrk -t1 -c10 -d2s: ${w.requestsPerSec.toFixed(0)} req/s (p50 ${w.latencyUs.p50} us, ` +
        `p99 ${w.latencyUs.p99} us); iperf3 -t 2: ${mbps(ip.bitsPerSecond)}`,
    );
    await hp.stop();
    assert.ok(hp.process.hasExited);
  } finally {
    await lab.destroy();
  }
});
