// The metrics without devices: a Balancer with traffic through processPacket, its
// LvsMetrics served on loopback, scraped over HTTP: node_exporter's ipvs names, types and
// labels (FWM services as /proc/net/ip_vs prints them), values equal to the listing's
// counters, drops by reason, health gauges, promtool's lint when it is installed; the
// endpoint's address parsing and its 404. The Prometheus server itself scrapes lvsd in
// test/e2e-health.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Lvsd } from "../src/runtime/lvsd.js";
import { waitFor } from "../src/demo/support.js";
import { Balancer } from "../src/balancer/balancer.js";
import { LvsMetrics } from "../src/metrics/lvs-metrics.js";
import { parseMetricsAddress, serveMetrics } from "../src/metrics/metrics-server.js";
import { balancerSnapshot } from "../src/metrics/balancer-snapshot.js";
import { LinkType } from "../src/core/abi.js";
import { buildPacket } from "../src/testing/packets.js";
import { missingTool } from "./support/tools.js";

const VS = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 } as const;
const FWM = { kind: "fwmark", fwmark: 0x2a, family: 4 } as const;

/** The value of one sample line `name{labels} value`, labels given in any order. */
function sample(text: string, name: string, labels: Record<string, string> = {}): string | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return m[3];
  }
  return undefined;
}

test("LvsMetrics over HTTP: node_exporter's names and labels, values equal to the Balancer's counters, drops by reason, health; promtool accepts it", async () => {
  const b = new Balancer({ connections: 1024, slots: 8 });
  b.addService({ key: VS, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(VS, { address: "10.1.0.1", port: 80, method: "masq", weight: 3, upperThreshold: 0, lowerThreshold: 0 });
  b.addDestination(VS, { address: "10.1.0.2", port: 8080, method: "masq", weight: 0, upperThreshold: 0, lowerThreshold: 0 });
  b.addService({ key: FWM, scheduler: "wlc", schedulerFlags: [], onePacket: false });
  b.addDestination(FWM, { address: "10.1.0.3", port: 0, method: "route", weight: 2, upperThreshold: 0, lowerThreshold: 0 });
  for (let i = 0; i < 5; i++) {
    b.processPacket(buildPacket({ protocol: "tcp", src: "192.0.2.1", dst: "10.0.0.100", sport: 40000 + i, dport: 80, flags: "S" }), LinkType.RawIp, 1000);
  }
  const listing = b.listing();
  const dest1 = listing.services[0].destinations.find((d) => d.config.address === "10.1.0.1")!;
  const metrics = new LvsMetrics({
    snapshot: () =>
      balancerSnapshot(b, {
        datapath: { received: 9, forwarded: 5, replied: 1, passed: 1, dropped: 2, sendFailures: 0, neighbourMisses: 0, drops: { "bad-checksum": 2 } },
        adapters: [{ name: "lvs0", received: 9, sent: 6, sendErrors: 0, truncated: 0 }],
      }),
    health: () => ({
      virtualServers: [
        {
          services: ["TCP 10.0.0.100:80"],
          quorumUp: true,
          sorryServerActive: false,
          realServers: [
            {
              address: "10.1.0.1",
              port: 80,
              alive: false,
              weight: 3,
              lastTransition: 1_700_000_000_000,
              checks: [{ type: "TCP_CHECK", up: false, runs: 3, failures: 2 }],
            },
          ],
        },
      ],
    }),
  });
  metrics.observeCheck({ check: "TCP_CHECK", service: "TCP 10.0.0.100:80", destination: "10.1.0.1:80", ok: false, latencyMs: 3 });
  const server = await serveMetrics(metrics, { host: "127.0.0.1", port: 0 });
  try {
    const base = `http://127.0.0.1:${server.address.port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.equal((await fetch(`${base}/`)).status, 404);
    // node_exporter's: counters of the whole balancer, gauges per backend with its six labels.
    assert.match(text, /^# TYPE node_ipvs_connections_total counter$/m);
    assert.match(text, /^# TYPE node_ipvs_backend_weight gauge$/m);
    const totals = b.totals().stats;
    assert.equal(sample(text, "node_ipvs_connections_total"), String(totals.conns));
    assert.equal(sample(text, "node_ipvs_incoming_packets_total"), String(totals.inpkts));
    assert.equal(sample(text, "node_ipvs_incoming_bytes_total"), String(totals.inbytes));
    assert.equal(totals.conns, 5n);
    const backend = { local_address: "10.0.0.100", local_port: "80", remote_address: "10.1.0.1", remote_port: "80", proto: "TCP", local_mark: "" };
    assert.equal(sample(text, "node_ipvs_backend_weight", backend), "3");
    assert.equal(sample(text, "node_ipvs_backend_connections_inactive", backend), String(dest1.inactConns));
    assert.equal(sample(text, "node_ipvs_backend_weight", { ...backend, remote_address: "10.1.0.2", remote_port: "8080" }), "0");
    // A fwmark service: proto FWM, the mark as 8 hex digits, no local address.
    assert.equal(
      sample(text, "node_ipvs_backend_weight", { local_address: "", local_port: "0", proto: "FWM", local_mark: "0000002A", remote_address: "10.1.0.3" }),
      "2",
    );
    // lvs-wasm's own: per service and per destination, equal to the listing.
    assert.equal(
      sample(text, "lvs_wasm_service_connections_total", { local_address: "10.0.0.100", local_port: "80", proto: "TCP" }),
      String(listing.services[0].stats?.conns),
    );
    assert.equal(sample(text, "lvs_wasm_backend_incoming_bytes_total", backend), String(dest1.stats?.inbytes));
    assert.equal(sample(text, "lvs_wasm_datapath_drops_total", { reason: "bad-checksum" }), "2");
    assert.equal(sample(text, "lvs_wasm_adapter_sent_packets_total", { adapter: "lvs0" }), "6");
    assert.equal(sample(text, "lvs_wasm_connection_table_capacity"), "1024");
    assert.equal(sample(text, "lvs_wasm_connection_table_entries"), String(b.connectionCount));
    const health = { virtual_server: "TCP 10.0.0.100:80", remote_address: "10.1.0.1", remote_port: "80" };
    assert.equal(sample(text, "lvs_wasm_health_real_server_up", health), "0");
    assert.equal(sample(text, "lvs_wasm_health_real_server_last_transition_timestamp_seconds", health), "1700000000");
    assert.equal(sample(text, "lvs_wasm_health_check_duration_seconds_count", { ...health, check: "TCP_CHECK", result: "failure" }), "1");
    const why = missingTool("promtool");
    if (why) console.warn(`promtool lint skipped: ${why}`);
    else execFileSync("promtool", ["check", "metrics"], { input: text });
  } finally {
    await server.close();
  }
});

test("--metrics HOST:PORT: IPv4, [IPv6], names; anything else is a one-line error", () => {
  assert.deepEqual(parseMetricsAddress("127.0.0.1:9101"), { host: "127.0.0.1", port: 9101 });
  assert.deepEqual(parseMetricsAddress("[::1]:9101"), { host: "::1", port: 9101 });
  assert.deepEqual(parseMetricsAddress("localhost:80"), { host: "localhost", port: 80 });
  for (const bad of ["9101", "127.0.0.1", "::1:9101", "[nothost]:1", "127.0.0.1:70000", ":9101"]) {
    assert.throws(() => parseMetricsAddress(bad), /--metrics .*: expected HOST:PORT/, bad);
  }
});

test("Lvsd in-process with a keepalived.conf and metrics: the checks program the table, the endpoint serves it, stop() closes it", async () => {
  const rs = createServer((s) => s.destroy());
  await new Promise<void>((r) => rs.listen(0, "127.0.0.1", r));
  const port = (rs.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), "lvsd-keepalived-"));
  const conf = join(dir, "keepalived.conf");
  writeFileSync(
    conf,
    `virtual_server 10.0.0.100 80 {\n  lb_algo rr\n  protocol TCP\n  delay_loop 0.1\n  warmup 0\n  real_server 127.0.0.1 ${port} {\n    TCP_CHECK {\n      retry 0\n    }\n  }\n  real_server 127.0.0.2 ${port} {\n    TCP_CHECK {\n      retry 0\n      connect_timeout 0.5\n    }\n  }\n}\n`,
  );
  const lines: string[] = [];
  const daemon = await Lvsd.start({
    io: [new MemoryPacketIO("mem0")],
    socketPath: false,
    keepalivedFile: conf,
    metrics: { host: "127.0.0.1", port: 0 },
    log: (l) => lines.push(l),
  });
  try {
    // 127.0.0.2:port has no listener: its check fails and it leaves the table.
    await waitFor("127.0.0.2 removed", async () => !(await daemon.command({ argv: ["-Ln"] })).stdout.includes("127.0.0.2"));
    assert.match((await daemon.command({ argv: ["-Ln"] })).stdout, new RegExp(`-> 127\\.0\\.0\\.1:${port} +Masq +1 `));
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(lines.join("\n"))?.[1];
    assert.ok(url, lines.join("\n"));
    const text = await (await fetch(url)).text();
    assert.equal(sample(text, "node_ipvs_backend_weight", { remote_address: "127.0.0.1", remote_port: String(port) }), "1");
    assert.equal(sample(text, "lvs_wasm_health_real_server_up", { remote_address: "127.0.0.2" }), "0");
    assert.equal(sample(text, "lvs_wasm_adapter_received_packets_total", { adapter: "mem0" }), "0");
    await daemon.stop();
    await assert.rejects(fetch(url), "the endpoint is closed");
  } finally {
    await daemon.stop();
    rs.close();
  }
});
