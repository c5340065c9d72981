// bench:system's report (bench/system/report.ts, pure): what the stall watchdog caught, the
// TIME_WAIT check, and the same-round ratios of the io_uring variant, from a made-up run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderReport, type RoundValues, type RunRecord, type SystemRecord } from "../bench/system/report.js";

function system(id: SystemRecord["id"], label: string, rounds: RoundValues[]): SystemRecord {
  return { id, label, description: `${label} set-up`, unavailable: null, error: null, rounds, counters: null };
}

function run(systems: SystemRecord[]): RunRecord {
  return {
    command: "npm run bench:system -- --systems nat,nat-uring",
    date: "2026-12-06T07:00:00.000Z",
    durationS: 100,
    node: "v20",
    kernel: "6.18",
    cpu: "x 2",
    commit: "abc",
    loadBefore: [1, 1, 1],
    loadAfter: [2, 2, 2],
    loadPerRound: [[2, 2, 2]],
    options: { rounds: 2, wrkS: 3, iperfS: 3, udpS: 2, connections: 32, cases: ["ka", "up"], manyConnections: 256, streams: 4 },
    tools: {},
    systems,
  };
}

test("the report lists each stall the watchdog caught and each TIME_WAIT finding, and says so when there were none", () => {
  const stall = {
    measurement: "iperf3 client->server",
    stalledForS: 2.1,
    atS: 3.4,
    progress: 1234,
    timeWaitSockets: 7,
    tunDrops: 42,
    lvsd: null,
    kernel: { links: "", nstat: "", snmp: "" },
  };
  const md = renderReport(
    run([
      system("nat", "lvs-wasm NAT", [
        { round: 1, errors: [], kaRps: 100, upBps: 1e9, stalls: [stall] },
        { round: 2, errors: [], kaRps: 110, upBps: 1e9, timeWait: 3 },
      ]),
    ]),
  );
  assert.match(md, /- lvs-wasm NAT, round 1, iperf3 client->server: stalled 2.1 s at 3.4 s; TIME_WAIT sockets in the director 7; TUN queue drops so far 42/);
  assert.match(md, /- lvs-wasm NAT, round 2: 3 TIME_WAIT sockets in the director's kernel before its measurements/);
  const quiet = renderReport(run([system("nat", "lvs-wasm NAT", [{ round: 1, errors: [], kaRps: 100 }])]));
  assert.match(quiet, /Stall watchdog: no measurement went 2 s without progress/);
  assert.doesNotMatch(quiet, /stalled/);
});

test("the report gives io_uring's ratio to read / write from the same rounds, and marks cases not run", () => {
  const md = renderReport(
    run([
      system("nat", "lvs-wasm NAT", [
        { round: 1, errors: [], kaRps: 100, upBps: 2e9 },
        { round: 2, errors: [], kaRps: 200, upBps: 4e9 },
      ]),
      system("nat-uring", "NAT, io_uring", [
        { round: 1, errors: [], kaRps: 150, upBps: 2e9 },
        { round: 2, errors: [], kaRps: 200, upBps: 2e9 },
      ]),
    ]),
  );
  const section = md.slice(md.indexOf("## What fewer system calls bought"));
  assert.ok(section.length > 0 && md.includes("## What fewer system calls bought"));
  // keep-alive medians 175 / 150 = 1.17x; rounds 1.50x and 1.00x. Upload: 2 / 3 = 0.67x; rounds 1.00x, 0.50x.
  assert.match(section, /\| HTTP keep-alive req\/s \| \*\*1\.17x\*\* \[1\.00x–1\.50x\] \|/);
  assert.match(section, /\| bulk client -> server \| \*\*0\.67x\*\* \[0\.50x–1\.00x\] \|/);
  assert.doesNotMatch(section.split("\n## ")[0]!, /UDP 64 B/, "a case no system ran has no row");
  assert.match(md, /\| iperf3 -P \(several streams\) client -> server, Gbit\/s \| not run \| not run \|/);
});

test("the report judges issue 13's targets on the run: met at the bar, missed below it, p99 against HAProxy's", () => {
  const rounds = (ka: number, p99: number, up: number): RoundValues[] => [
    { round: 1, errors: [], kaRps: ka, closeRps: ka / 4, upBps: up, downBps: up, udpPps: ka, kaP99: p99 },
  ];
  const md = (natKa: number, natP99: number) =>
    renderReport(
      run([
        system("router", "kernel router", rounds(1000, 1000, 10e9)),
        system("haproxy", "HAProxy", rounds(500, 2000, 5e9)),
        system("nat", "lvs-wasm NAT", rounds(natKa, natP99, 8e9)),
      ]),
    );
  const row = (text: string, target: string) =>
    text
      .slice(text.indexOf("## The data-plane targets"))
      .split("\n")
      .find((l) => l.startsWith(`| ${target}`)) ?? "";
  // 800 req/s: 1.6x HAProxy and 0.8x the router, exactly at both bars.
  const at = md(800, 2000);
  assert.match(row(at, "NAT keep-alive req/s"), /1\.60x HAProxy, 0\.80x router: met/);
  assert.match(row(at, "NAT bulk, each direction"), /0\.80x \/ 0\.80x: met/);
  assert.match(row(at, "NAT p99 under keep-alive"), /2\.00 ms against 2\.00 ms: met/);
  const below = md(790, 2100);
  assert.match(row(below, "NAT keep-alive req/s"), /0\.79x router: \*\*missed\*\*/);
  assert.match(row(below, "NAT p99 under keep-alive"), /2\.10 ms against 2\.00 ms: \*\*missed\*\*/);
  assert.match(row(below, "UDP 64 B datagrams"), /0\.79x: \*\*missed\*\*/);
});
