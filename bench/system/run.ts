// The system benchmark (`npm run bench:system`, root): the same client, the same real
// servers and the same namespace topology (src/lab, docs/lab.md) behind
//
//   router   the plain kernel router: no balancer, the client talks to RS1 through the
//            director namespace's forwarding path (the limit);
//   haproxy  HAProxy 2.x in the director, TCP mode, one thread, round robin over RS1, RS2
//            (VIP:5201 balanced by source for iperf3);
//   nat      lvs-wasm NAT: one process in the director namespace running the Director loop
//            over a TUN device with offloads (bench/system/nat-director.ts), rr over RS1, RS2;
//   nat-q    the same without offloads, queue 4096 (what sizing the queue alone buys);
//   nat-plain the same without offloads, queue 500: the code before offloads (the baseline);
//   nat-uring lvs-wasm NAT with the TUN device's packets moved by io_uring (src/io/tun-uring.ts);
//   dr       lvs-wasm DR: src/runtime/dr-director.ts (AF_PACKET) in one process (mode-director.ts);
//   dr-bypass the same with PACKET_QDISC_BYPASS on both sockets;
//   tun      lvs-wasm TUN: src/runtime/tun-director.ts in one process, and the real-server
//            decap agent (src/runtime/rs-agent.ts) in one process per real server.
//
// Each system has its own lab, all built before the first measurement; the rounds then
// interleave (router, haproxy, nat, dr, tun, router, haproxy, ...) so that load drift on the
// shared machine hits every system alike. Per system and round: wrk keep-alive, wrk
// connection-per-request, iperf3 both ways (one stream), iperf3 UDP 64-byte datagrams, and
// the multi-flow cases: wrk -t2 -c256 keep-alive, iperf3 -P 4 upload.
// Medians and spreads (min-max over rounds) go to docs/benchmarks.md, the raw figures to
// bench/out/system.json.
//
// Options: --rounds N (3)  --wrk-s S (4)  --iperf-s S (5)  --udp-s S (2)  --connections N (32)
//          --quick (1 round, 2 s each)  --no-write (print only)  --out PATH (docs/benchmarks.md)
//          --from-json PATH (no measuring: render the report of a saved run again)
//          --systems router,haproxy,nat,nat-q,nat-plain,nat-uring,dr,dr-bypass,tun (a subset; default all)
//          --cases ka,close,up,down,udp,many-ka,many-up (a subset; default all)
//          --many-connections N (256)  --streams N (4): the multi-flow cases (wrk -t2 -cN, iperf3 -P N)
//          --profile: per measurement of the NAT directors, CPU per packet, a V8 profile of the main
//          thread and perf stat counts of system calls (bench/system/profile-*.ts; needs perf)
//
// A stall watchdog (bench/system/watchdog.ts) samples the packets the real servers received
// beside every measurement; 2 s without one is reported with lvsd's and the kernel's counters.
// Before each lvs-wasm measurement, TIME_WAIT sockets in the director's kernel are counted:
// with a lab per system there are none; if some are there, early demux would tie new
// connections to them and drop forwarded packets (docs/benchmarks.md), and the report says so.
//
// Every lab is torn down on the way out, on an error, and on Ctrl-C / SIGTERM (the lab
// registry does it synchronously before the process dies of the signal).

import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createLab,
  curl,
  httpUrl,
  iperf3,
  startHaproxy,
  startHttpServer,
  startIperf3Server,
  wrk,
  type HostName,
  type Lab,
  type LabProcess,
  type WrkResult,
} from "../../src/lab/index.js";
import { renderReport, type RunRecord, type SystemRecord, type SystemId, type RoundValues, type StallRecord, type ProfileRecord } from "./report.js";
import { StallWatchdog, type Stall } from "./watchdog.js";
import { parsePerfReport, parsePerfStat, perfStatEvents, summariseProfile, type CpuProfile, type PerfBreakdown } from "./profile-summary.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");

// ------------------------------------------------------------------------------ options

interface Options {
  rounds: number;
  wrkS: number;
  iperfS: number;
  udpS: number;
  connections: number;
  write: boolean;
  out: string;
  /** Re-render the report from a saved run (bench/out/system.json) instead of measuring. */
  fromJson?: string;
  /** Only these systems (default all); the ratio columns need router and haproxy. */
  systems: SystemId[] | null;
  /** Only these measurements (default all): see CASES. */
  cases: CaseId[];
  /** Connections and wrk threads of the multi-flow keep-alive case; streams of the multi-flow iperf3 case. */
  manyConnections: number;
  streams: number;
  /** Profile lvs-wasm NAT directors per measurement (V8 CPU profile + perf trace -s). */
  profile: boolean;
}

/** The measurements of a round, in order; `--cases` picks some. */
const CASES = ["ka", "close", "up", "down", "udp", "many-ka", "many-up"] as const;
type CaseId = (typeof CASES)[number];
const SYSTEM_IDS: readonly SystemId[] = ["router", "haproxy", "nat", "nat-q", "nat-plain", "nat-uring", "dr", "dr-bypass", "tun"];

function parseList<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T[] {
  const items = (text ?? "").split(",").filter(Boolean);
  const bad = items.filter((x) => !allowed.includes(x as T));
  if (items.length === 0 || bad.length > 0) throw new Error(`${flag} takes a comma-separated list of ${allowed.join(", ")}; got ${String(text)}`);
  return items as T[];
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = {
    rounds: 3,
    wrkS: 4,
    iperfS: 5,
    udpS: 2,
    connections: 32,
    write: true,
    out: join(root, "docs", "benchmarks.md"),
    systems: null,
    cases: [...CASES],
    manyConnections: 256,
    streams: 4,
    profile: false,
  };
  const num = (i: number, flag: string): number => {
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} wants a positive number, got ${String(argv[i + 1])}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") o.rounds = Math.floor(num(i++, a));
    else if (a === "--wrk-s") o.wrkS = Math.floor(num(i++, a));
    else if (a === "--iperf-s") o.iperfS = Math.floor(num(i++, a));
    else if (a === "--udp-s") o.udpS = Math.floor(num(i++, a));
    else if (a === "--connections") o.connections = Math.floor(num(i++, a));
    else if (a === "--quick") Object.assign(o, { rounds: 1, wrkS: 2, iperfS: 2, udpS: 2 });
    else if (a === "--no-write") o.write = false;
    else if (a === "--out") o.out = argv[++i]!;
    else if (a === "--from-json") o.fromJson = argv[++i]!;
    else if (a === "--systems") o.systems = parseList(a, argv[++i], SYSTEM_IDS);
    else if (a === "--cases") o.cases = parseList(a, argv[++i], CASES);
    else if (a === "--many-connections") o.manyConnections = Math.floor(num(i++, a));
    else if (a === "--streams") o.streams = Math.floor(num(i++, a));
    else if (a === "--profile") o.profile = true;
    else if (a === "--help" || a === "-h") {
      console.log(
        "usage: node --import tsx bench/system/run.ts [--rounds N] [--wrk-s S] [--iperf-s S] [--udp-s S] [--connections N] [--quick] [--no-write] [--out PATH] [--from-json PATH]\n" +
          `   [--systems ${SYSTEM_IDS.join(",")}] [--cases ${CASES.join(",")}] [--many-connections N (256)] [--streams N (4)] [--profile]`,
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a} (--help)`);
  }
  return o;
}

// ------------------------------------------------------------------------------ helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

function missingTools(): string[] {
  const need = ["ip", "ss", "curl", "wrk", "iperf3", "haproxy"];
  return need.filter((t) => {
    try {
      execFileSync("sh", ["-c", `command -v ${t}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
}

/** iperf3 UDP: `-u -l SIZE -b 0`; what the receiver got, in datagrams per second. */
async function iperf3Udp(lab: Lab, server: string, durationS: number, size: number): Promise<{ receivedPps: number; sentPps: number; lossPercent: number }> {
  const r = await lab.exec("client", "iperf3", ["-c", server, "-u", "-l", String(size), "-b", "0", "-t", String(durationS), "-J"], {
    timeoutMs: (durationS + 20) * 1000,
    allowFailure: true,
  });
  type Sum = { seconds?: number; packets?: number; lost_packets?: number; lost_percent?: number };
  let j: { error?: string; end?: { sum?: Sum; sum_sent?: Sum; sum_received?: Sum } };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new Error(`iperf3 -u -c ${server}: no JSON (exit ${String(r.code)}): ${(r.stdout + r.stderr).slice(-500)}`);
  }
  if (j.error || r.code !== 0) throw new Error(`iperf3 -u -c ${server}: ${j.error ?? `exit ${String(r.code)}`}`);
  const sent = j.end?.sum_sent ?? j.end?.sum;
  const recv = j.end?.sum_received ?? j.end?.sum;
  if (!sent || !recv || !sent.seconds || !recv.seconds) throw new Error(`iperf3 -u -c ${server}: no end summary`);
  const sentPackets = sent.packets ?? 0;
  // The receiver's own count when iperf3 reports it; else what was sent minus what was lost.
  const received = j.end?.sum_received ? (recv.packets ?? 0) - (recv.lost_packets ?? 0) : sentPackets - (recv.lost_packets ?? 0);
  return {
    receivedPps: Math.max(0, received) / recv.seconds,
    sentPps: sentPackets / sent.seconds,
    lossPercent: recv.lost_percent ?? 0,
  };
}

// ------------------------------------------------------------------------------ systems

interface System {
  readonly id: SystemId;
  readonly label: string;
  readonly description: string;
  /** Why it is not measured (null: it is). */
  readonly unavailable: string | null;
  lab: Lab | null;
  /** HTTP and iperf3 target address. */
  target: string;
  /** Whether UDP through it makes sense (HAProxy in TCP mode does not carry UDP). */
  udp: boolean;
  /** Servers expected to answer "/" (a check before measuring). */
  expectLabels: string[];
  setup(): Promise<void>;
  /** Counters of our own data plane, if any. */
  counters?(): Promise<Record<string, unknown> | null>;
  /** The TUN device in the director whose queue drops are counted per measurement. */
  tunDevice?: string;
  /** The director process --profile profiles (bench/system/profile-child.ts). */
  profileTarget?(): LabProcess | null;
  error: string | null;
}

function routerSystem(): System {
  const s: System = {
    id: "router",
    label: "kernel router",
    unavailable: null,
    lab: null,
    target: "",
    udp: true,
    expectLabels: ["RS1"],
    error: null,
    description: "lab mode `router`: no balancer; the client talks to RS1 (192.168.10.11) through the director namespace's kernel forwarding",
    async setup() {
      const lab = (s.lab = await createLab({ mode: "router", realServers: 2 }));
      await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1")]);
      s.target = lab.target.v4;
    },
  };
  return s;
}

function haproxySystem(): System {
  const s: System = {
    id: "haproxy",
    label: "HAProxy",
    unavailable: null,
    lab: null,
    target: "",
    udp: false,
    expectLabels: ["RS1", "RS2"],
    error: null,
    description:
      "lab mode `nat`, haproxy in the director: `nbthread 1`, `mode tcp`, `balance roundrobin` on VIP:80 over RS1, RS2; VIP:5201 `balance source` (iperf3); no UDP (TCP mode)",
    async setup() {
      const lab = (s.lab = await createLab({ mode: "nat", realServers: 2 }));
      await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1"), startIperf3Server(lab, "rs2")]);
      await startHaproxy(lab);
      s.target = lab.vip!.v4;
    },
  };
  return s;
}

interface NatVariant {
  readonly id: "nat" | "nat-q" | "nat-plain" | "nat-uring";
  readonly label: string;
  readonly offload: boolean;
  readonly txqueuelen: number;
  readonly uring?: boolean;
}

const NAT_VARIANTS: readonly NatVariant[] = [
  { id: "nat", label: "lvs-wasm NAT", offload: true, txqueuelen: 4096 },
  { id: "nat-q", label: "NAT, no offloads, queue 4096", offload: false, txqueuelen: 4096 },
  { id: "nat-plain", label: "NAT before (no offloads, queue 500)", offload: false, txqueuelen: 500 },
  { id: "nat-uring", label: "NAT, io_uring", offload: true, txqueuelen: 4096, uring: true },
];

function natSystem(v: NatVariant): System {
  let director: LabProcess | null = null;
  const s: System = {
    id: v.id,
    label: v.label,
    unavailable: null,
    lab: null,
    target: "",
    udp: true,
    expectLabels: ["RS1", "RS2"],
    error: null,
    tunDevice: "lvs0",
    description:
      "lab mode `nat` without the VIP on the director's kernel; one node process in the director namespace (bench/system/nat-director.ts): " +
      `Balancer + Director loop over TUN device lvs0${v.uring ? ", packets moved by io_uring (src/io/tun-uring.ts: one io_uring_enter per batch of reads and one per batch of writes)," : ""} ${v.offload ? "with offloads (IFF_VNET_HDR, TUNSETOFFLOAD: GSO super-packets and partial checksums)" : "without offloads (every packet cut to the 1500-byte MTU by the kernel)"}, ` +
      `txqueuelen ${v.txqueuelen}, batch 256; VIP:80 rr masq over RS1, RS2; VIP:5201 tcp and udp, persistence 300 s, RS1; ` +
      "routes: VIP/32 dev lvs0, table 100 `default dev lvs0`, `ip rule iif eth1 lookup 100` (the real servers' replies)",
    async setup() {
      const lab = (s.lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false }));
      await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1")]);
      const vip = lab.vip!.v4;
      director = spawnBenchChild(lab, "director", "nat-director.ts", [
        "--tun",
        "lvs0",
        "--vip",
        vip,
        "--rs",
        lab.realServers.map((r) => r.eth0.ipv4).join(","),
        "--iperf-rs",
        lab.realServers[0]!.eth0.ipv4,
        "--txqueuelen",
        String(v.txqueuelen),
        ...(v.offload ? [] : ["--no-offload"]),
        ...(v.uring ? ["--uring"] : []),
      ]);
      await director.waitForOutput(/ready lvs0/, 30_000);
      const ip = async (...a: string[]) => {
        await lab.exec("director", "ip", a);
      };
      lab.sysctl("director", "net.ipv4.conf.lvs0.rp_filter", 0);
      await ip("route", "add", `${vip}/32`, "dev", "lvs0");
      await ip("route", "add", "default", "dev", "lvs0", "table", "100");
      await ip("rule", "add", "iif", "eth1", "lookup", "100");
      s.target = vip;
    },
    async counters() {
      const c = await childStats(director);
      if (c && s.lab) c.device = await deviceCounters(s.lab, "director", "lvs0");
      return c;
    },
    profileTarget: () => director,
  };
  return s;
}

/** Asks a bench child (SIGUSR2) for its "@@stats@@{...}" line. */
async function childStats(proc: LabProcess | null): Promise<Record<string, unknown> | null> {
  if (!proc || proc.hasExited) return null;
  const marks = () => proc.output().split("@@stats@@").length;
  const before = marks();
  process.kill(proc.pid, "SIGUSR2");
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const text = proc.output();
    if (marks() > before && text.endsWith("\n")) {
      const line = text.slice(text.lastIndexOf("@@stats@@") + 9).split("\n")[0]!;
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return null;
      }
    }
    await sleep(20);
  }
  return null;
}

/** The kernel's counters of a device (`ip -s -j link`): packets, and drops at its queue. */
async function deviceCounters(lab: Lab, host: "director", dev: string): Promise<Record<string, unknown> | null> {
  const r = await lab.exec(host, "ip", ["-s", "-j", "link", "show", dev], { allowFailure: true });
  try {
    const [j] = JSON.parse(r.stdout) as Array<{ stats64?: { rx?: Record<string, number>; tx?: Record<string, number> }; txqlen?: number }>;
    return { txqlen: j?.txqlen, rx: j?.stats64?.rx, tx: j?.stats64?.tx };
  } catch {
    return null;
  }
}

/** iperf3 -s bound to the VIP (DR/TUN real servers hold it on lo): UDP replies then leave from the VIP. */
async function startIperf3OnVip(lab: Lab, host: HostName, vip: string): Promise<void> {
  const proc = lab.spawn(host, "iperf3", ["-s", "-p", "5201", "-B", vip, "--forceflush"]);
  await proc.waitForOutput(/Server listening/);
}

function spawnBenchChild(lab: Lab, host: HostName, script: string, args: readonly string[]): LabProcess {
  return lab.spawn(host, process.execPath, ["--import", import.meta.resolve("tsx"), join(here, script), ...args]);
}

function drSystem(variant: { id: "dr" | "dr-bypass"; label: string; qdiscBypass: boolean } = { id: "dr", label: "lvs-wasm DR", qdiscBypass: false }): System {
  let director: LabProcess | null = null;
  const s: System = {
    id: variant.id,
    label: variant.label,
    unavailable: null,
    lab: null,
    target: "",
    udp: true,
    expectLabels: ["RS1", "RS2"],
    error: null,
    description:
      "lab mode `dr` (VIP 192.168.10.100 on the back segment, on every RS's lo); one node process in the director namespace " +
      "(bench/system/mode-director.ts) running `startDrDirector` (src/runtime/dr-director.ts): AF_PACKET on eth0 and eth1 with PACKET_VNET_HDR, batch 256, " +
      (variant.qdiscBypass ? "PACKET_QDISC_BYPASS on both sockets (sends skip the qdisc), " : "") +
      "MAC rewrite only, tc ingress drop of VIP traffic after the tap; VIP:80 rr -g over RS1, RS2; VIP:5201 tcp and udp -p 300, RS1 (iperf3 -s -B VIP). " +
      "Replies go RS -> director's kernel (their gateway) -> client, never through the balancer. The client keeps its TSO and checksum " +
      "offload on: its 64 KB frames and their partial checksums pass the director whole (a virtio-net header per frame)",
    async setup() {
      const lab = (s.lab = await createLab({ mode: "dr", realServers: 2 }));
      const vip = lab.vip!.v4;
      await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3OnVip(lab, "rs1", vip)]);
      director = spawnBenchChild(lab, "director", "mode-director.ts", [
        "--mode",
        "dr",
        "--vip",
        vip,
        "--rs",
        lab.realServers.map((r) => r.eth0.ipv4).join(","),
        "--iperf-rs",
        lab.realServers[0]!.eth0.ipv4,
        ...(variant.qdiscBypass ? ["--qdisc-bypass"] : []),
      ]);
      await director.waitForOutput(/ready dr/, 30_000);
      s.target = vip;
    },
    counters: () => childStats(director),
  };
  return s;
}

function tunSystem(): System {
  let director: LabProcess | null = null;
  const agents: LabProcess[] = [];
  const s: System = {
    id: "tun",
    label: "lvs-wasm TUN",
    unavailable: null,
    lab: null,
    target: "",
    udp: true,
    expectLabels: ["RS1", "RS2"],
    error: null,
    tunDevice: "lvs0",
    description:
      "lab mode `tun` without the VIP on the director's kernel; one node process in the director namespace " +
      "(bench/system/mode-director.ts) running `startTunDirector` (src/runtime/tun-director.ts): TUN device lvs0 the VIP is routed into, batch 256, " +
      "IP-in-IP from 192.168.10.1 to the RS (tunnel MTU 1500); VIP:80 rr -i over RS1, RS2; VIP:5201 tcp and udp -p 300, RS1 (iperf3 -s -B VIP). " +
      "Each RS runs the decap agent in its own node process (bench/system/rs-agent.ts: src/runtime/rs-agent.ts, raw IPIP socket -> " +
      "data-plane decap -> local TUN device; the kernel here has no ipip module). Replies go RS -> director's kernel -> client",
    async setup() {
      const lab = (s.lab = await createLab({ mode: "tun", realServers: 2, vipOnDirector: false }));
      const vip = lab.vip!.v4;
      await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3OnVip(lab, "rs1", vip)]);
      for (const rs of lab.realServers) agents.push(spawnBenchChild(lab, rs.name, "rs-agent.ts", []));
      await Promise.all(agents.map((a) => a.waitForOutput(/ready/, 30_000)));
      director = spawnBenchChild(lab, "director", "mode-director.ts", [
        "--mode",
        "tun",
        "--vip",
        vip,
        "--rs",
        lab.realServers.map((r) => r.eth0.ipv4).join(","),
        "--iperf-rs",
        lab.realServers[0]!.eth0.ipv4,
        "--tunnel-source",
        lab.director.back.ipv4,
      ]);
      await director.waitForOutput(/ready tun/, 30_000);
      s.target = vip;
    },
    async counters() {
      const c = await childStats(director);
      if (c) {
        c.agents = await Promise.all(agents.map((a) => childStats(a)));
        if (s.lab) c.device = await deviceCounters(s.lab, "director", "lvs0");
      }
      return c;
    },
  };
  return s;
}

// ------------------------------------------------------------------------------ measuring

async function check(s: System): Promise<void> {
  const lab = s.lab!;
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) seen.push((await curl(lab, "client", httpUrl(s.target), { timeoutMs: 5000 })).body.trim());
  for (const want of s.expectLabels) {
    if (!seen.includes(want)) throw new Error(`${s.label}: four GETs answered ${seen.join(", ")}, never ${want}`);
  }
}

const wrkErrors = (w: WrkResult) => w.errors.connect + w.errors.read + w.errors.write + w.errors.status + w.errors.timeout;

/**
 * Progress of traffic through a system: packets the real servers' eth0 received, read from
 * /proc/PID/net/dev of a process living in each RS namespace (a file read, no process spawned
 * per sample). Requests, uploads and the ACKs of downloads all reach the servers that way.
 */
function progressReader(lab: Lab): () => Promise<number> {
  const pids = lab.realServers.map((rs) => {
    const out = execFileSync("ip", ["netns", "pids", lab.ns(rs.name)], { encoding: "utf8" })
      .trim()
      .split("\n")[0];
    if (!out) throw new Error(`no process in ${rs.name}'s namespace to read its counters through`);
    return out;
  });
  return async () => {
    let sum = 0;
    for (const pid of pids) {
      const text = await readFile(`/proc/${pid}/net/dev`, "utf8");
      const line = text.split("\n").find((l) => l.trimStart().startsWith("eth0:"));
      if (line) sum += Number(line.split(":")[1]!.trim().split(/\s+/)[1]);
    }
    return sum;
  };
}

/** TIME_WAIT sockets in the director's kernel (the early-demux trap, see docs/benchmarks.md). */
async function timeWaitSockets(lab: Lab): Promise<number> {
  const r = await lab.exec("director", "ss", ["-Htan", "state", "time-wait"], { allowFailure: true });
  return r.stdout.split("\n").filter((l) => l.trim()).length;
}

/** What the kernel and lvsd say at the moment of a stall (every figure raw, for system.json). */
async function stallSnapshot(s: System, measurement: string, stall: Stall, t0: number): Promise<StallRecord> {
  const lab = s.lab!;
  const run = async (cmd: string, args: string[]) => (await lab.exec("director", cmd, args, { allowFailure: true })).stdout;
  const [links, nstat, snmp, timeWait, counters] = await Promise.all([
    run("ip", ["-s", "-j", "link"]),
    run("nstat", ["-asz", "--json"]),
    run("cat", ["/proc/net/snmp"]),
    timeWaitSockets(lab),
    s.counters ? s.counters() : Promise.resolve(null),
  ]);
  let tunDrops: number | undefined;
  try {
    const devs = JSON.parse(links) as Array<{ ifname: string; stats64?: { tx?: { dropped?: number } } }>;
    if (s.tunDevice) tunDrops = devs.find((d) => d.ifname === s.tunDevice)?.stats64?.tx?.dropped;
  } catch {
    // raw text kept below
  }
  return {
    measurement,
    stalledForS: Math.round((stall.detectedAt - stall.since) / 100) / 10,
    atS: Math.round((stall.detectedAt - t0) / 100) / 10,
    progress: stall.value,
    timeWaitSockets: timeWait,
    tunDrops,
    lvsd: counters,
    kernel: { links, nstat, snmp },
  };
}

/** Sends `signal` and waits for the child's next line starting with `mark`; returns the rest of that line. */
async function signalForMark(proc: LabProcess, signal: NodeJS.Signals, mark: string, timeoutMs = 10_000): Promise<string> {
  const count = () => proc.output().split(mark).length;
  const before = count();
  process.kill(proc.pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = proc.output();
    if (count() > before && text.endsWith("\n")) return text.slice(text.lastIndexOf(mark) + mark.length).split("\n")[0]!;
    await sleep(20);
  }
  throw new Error(`${proc.argv.join(" ").slice(-60)}: no ${mark} line within ${timeoutMs} ms of ${signal}`);
}

/** `perf report` of a `perf record` file, cut into kinds of work; null when perf could not say. */
async function perfBreakdown(file: string): Promise<PerfBreakdown | null> {
  return new Promise((resolve) => {
    execFile("perf", ["report", "-i", file, "--no-children", "--sort", "dso,symbol", "--stdio"], { maxBuffer: 64 << 20 }, (err, stdout) => {
      resolve(err ? null : parsePerfReport(stdout));
    });
  });
}

/**
 * --profile: around one measurement, a V8 CPU profile of the director's main thread and
 * `perf stat` counts of its system calls, and the packets it received meanwhile.
 */
async function profiled(proc: LabProcess, fn: () => Promise<void>): Promise<ProfileRecord> {
  const sample = async () => {
    const st = (await childStats(proc)) as { director?: { received?: number }; cpu?: { user: number; system: number } } | null;
    return { received: st?.director?.received ?? Number.NaN, user: st?.cpu?.user ?? Number.NaN, system: st?.cpu?.system ?? Number.NaN };
  };
  const s0 = await sample();
  await signalForMark(proc, "SIGWINCH", "@@profiling@@");
  const perf = spawn("perf", ["stat", "-x,", "-e", perfStatEvents(), "-p", String(proc.pid)], { stdio: ["ignore", "pipe", "pipe"] });
  let perfText = "";
  perf.stdout.on("data", (d) => (perfText += d));
  perf.stderr.on("data", (d) => (perfText += d));
  const perfExited = new Promise<void>((r) => perf.on("close", () => r()));
  // Where the CPU samples fall, kernel symbols included (the system calls' own work).
  const perfData = join(process.env.LVS_PROFILE_DIR ?? "/tmp", `${proc.pid}-${Date.now()}.perf.data`);
  const record = spawn("perf", ["record", "-q", "-F", "999", "-o", perfData, "-p", String(proc.pid)], { stdio: "ignore" });
  const recordExited = new Promise<void>((r) => record.on("close", () => r()));
  await sleep(200); // perf attaches
  const t0 = performance.now();
  let failure: unknown;
  try {
    await fn();
  } catch (e) {
    failure = e;
  }
  const wallMs = performance.now() - t0;
  perf.kill("SIGINT");
  record.kill("SIGINT");
  await Promise.all([perfExited, recordExited]);
  const path = await signalForMark(proc, "SIGWINCH", "@@profile@@");
  if (failure !== undefined) throw failure;
  const s1 = await sample();
  const summary = summariseProfile(JSON.parse(readFileSync(path, "utf8")) as CpuProfile);
  return {
    packets: s1.received - s0.received,
    wallMs,
    cpuUserMs: (s1.user - s0.user) / 1000,
    cpuSystemMs: (s1.system - s0.system) / 1000,
    profile: summary,
    syscalls: parsePerfStat(perfText),
    perf: await perfBreakdown(perfData),
    profilePath: path,
  };
}

async function measureRound(s: System, o: Options, values: RoundValues, log: (line: string) => void): Promise<void> {
  const lab = s.lab!;
  const url = httpUrl(s.target);
  const progress = progressReader(lab);
  // The kernel's drops at our TUN device's queue during each measurement (tx_dropped).
  const queueDrops = async (): Promise<number | undefined> => {
    if (!s.tunDevice) return undefined;
    const c = await deviceCounters(lab, "director", s.tunDevice);
    return (c?.tx as Record<string, number> | undefined)?.dropped;
  };
  const attempt = async (id: CaseId, name: string, fn: () => Promise<void>, dropsKey?: "kaDrops" | "closeDrops" | "upDrops" | "downDrops" | "udpDrops") => {
    if (!o.cases.includes(id)) return;
    // A lab per system keeps the director's kernel free of other systems' TIME_WAIT
    // sockets; say so if one is there anyway before we measure through lvs-wasm.
    if (s.tunDevice || s.id === "dr") {
      const tw = await timeWaitSockets(lab);
      if (tw > 0) {
        values.timeWait = (values.timeWait ?? 0) + tw;
        log(`    ${name}: ${tw} TIME_WAIT sockets in the director's kernel before measuring (early-demux trap)`);
      }
    }
    const before = dropsKey ? await queueDrops() : undefined;
    const t0 = performance.now();
    const dog = new StallWatchdog(progress, async (stall) => {
      const snap = await stallSnapshot(s, name, stall, t0);
      (values.stalls ??= []).push(snap);
      log(
        `    ${name}: STALL: no packet reached the real servers for ${snap.stalledForS} s (at ${snap.atS} s); ` +
          `TIME_WAIT sockets in the director ${snap.timeWaitSockets}${snap.tunDrops === undefined ? "" : `, TUN queue drops so far ${snap.tunDrops}`}`,
      );
    }).start();
    try {
      const target = o.profile ? s.profileTarget?.() : null;
      if (target) {
        const rec = await profiled(target, fn);
        (values.profiles ??= {})[id] = rec;
        log(
          `    ${name}: profiled ${rec.packets} packets: main thread ${(((rec.profile.totalMs - rec.profile.idleMs) * 1000) / Math.max(1, rec.packets)).toFixed(2)} us busy per packet, ` +
            `${((rec.syscalls.all ?? 0) / Math.max(1, rec.packets)).toFixed(2)} system calls per packet`,
        );
      } else {
        await fn();
      }
      const after = dropsKey ? await queueDrops() : undefined;
      if (dropsKey && before !== undefined && after !== undefined) values[dropsKey] = after - before;
    } catch (e) {
      const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
      values.errors.push(`${name}: ${msg}`);
      log(`    ${name}: FAILED ${msg}`);
    } finally {
      await dog.stop();
    }
    await sleep(300);
  };
  await attempt(
    "ka",
    "wrk keep-alive",
    async () => {
      const w = await wrk(lab, "client", url, { durationS: o.wrkS, connections: o.connections, threads: 1 });
      Object.assign(values, {
        kaRps: w.requestsPerSec,
        kaP50: w.latencyUs.p50,
        kaP90: w.latencyUs.p90,
        kaP99: w.latencyUs.p99,
        kaErrors: wrkErrors(w),
      });
      log(
        `    wrk keep-alive: ${w.requestsPerSec.toFixed(0)} req/s, p50/p90/p99 ${w.latencyUs.p50}/${w.latencyUs.p90}/${w.latencyUs.p99} us, errors ${wrkErrors(w)}`,
      );
    },
    "kaDrops",
  );
  await attempt(
    "close",
    "wrk connection-per-request",
    async () => {
      const w = await wrk(lab, "client", url, { durationS: o.wrkS, connections: o.connections, threads: 1, connectionClose: true });
      Object.assign(values, {
        closeRps: w.requestsPerSec,
        closeP50: w.latencyUs.p50,
        closeP90: w.latencyUs.p90,
        closeP99: w.latencyUs.p99,
        closeErrors: wrkErrors(w),
      });
      log(
        `    wrk Connection: close: ${w.requestsPerSec.toFixed(0)} req/s, p50/p90/p99 ${w.latencyUs.p50}/${w.latencyUs.p90}/${w.latencyUs.p99} us, errors ${wrkErrors(w)}`,
      );
    },
    "closeDrops",
  );
  await attempt(
    "up",
    "iperf3 client->server",
    async () => {
      const r = await iperf3(lab, "client", s.target, { durationS: o.iperfS });
      values.upBps = r.bitsPerSecond;
      values.upRetr = r.retransmits ?? undefined;
      log(`    iperf3 client->server: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, retransmits ${String(r.retransmits)}`);
    },
    "upDrops",
  );
  await attempt(
    "down",
    "iperf3 -R server->client",
    async () => {
      const r = await iperf3(lab, "client", s.target, { durationS: o.iperfS, reverse: true });
      values.downBps = r.bitsPerSecond;
      values.downRetr = r.retransmits ?? undefined;
      log(`    iperf3 -R server->client: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, retransmits ${String(r.retransmits)}`);
    },
    "downDrops",
  );
  if (s.udp) {
    await attempt(
      "udp",
      "iperf3 UDP 64 B",
      async () => {
        const u = await iperf3Udp(lab, s.target, o.udpS, 64);
        values.udpPps = u.receivedPps;
        values.udpSentPps = u.sentPps;
        values.udpLoss = u.lossPercent;
        log(`    iperf3 -u -l 64 -b 0: received ${u.receivedPps.toFixed(0)} datagrams/s (sent ${u.sentPps.toFixed(0)}/s, loss ${u.lossPercent.toFixed(1)} %)`);
      },
      "udpDrops",
    );
  }
  await attempt("many-ka", `wrk keep-alive -t2 -c${o.manyConnections}`, async () => {
    const w = await wrk(lab, "client", url, { durationS: o.wrkS, connections: o.manyConnections, threads: 2 });
    Object.assign(values, { manyKaRps: w.requestsPerSec, manyKaP99: w.latencyUs.p99, manyKaErrors: wrkErrors(w) });
    log(`    wrk -t2 -c${o.manyConnections} keep-alive: ${w.requestsPerSec.toFixed(0)} req/s, p99 ${w.latencyUs.p99} us, errors ${wrkErrors(w)}`);
  });
  await attempt("many-up", `iperf3 -P ${o.streams} client->server`, async () => {
    const r = await iperf3(lab, "client", s.target, { durationS: o.iperfS, parallel: o.streams });
    values.manyUpBps = r.bitsPerSecond;
    values.manyUpRetr = r.retransmits ?? undefined;
    log(`    iperf3 -P ${o.streams} client->server: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, retransmits ${String(r.retransmits)}`);
  });
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.fromJson) {
    const saved = JSON.parse(readFileSync(o.fromJson, "utf8")) as RunRecord;
    const md = renderReport(saved);
    if (o.write) writeFileSync(o.out, md);
    else console.log(md);
    return;
  }
  if (process.getuid?.() !== 0) throw new Error("bench:system builds network namespaces: run it as root");
  if (o.profile) {
    try {
      execFileSync("perf", ["--version"], { stdio: "ignore" });
    } catch {
      throw new Error("--profile needs perf (Debian: linux-perf) for the system-call counts");
    }
    process.env.LVS_PROFILE_DIR = join(root, "bench", "out", "profiles");
  }
  const missing = missingTools();
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(", ")} (Debian: iproute2 curl wrk iperf3 haproxy nginx-light)`);

  const started = new Date();
  const t0 = Date.now();
  const loadBefore = load();
  const log = (line: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  log(`bench:system: ${o.rounds} rounds; wrk -t1 -c${o.connections} -d${o.wrkS}s; iperf3 -t ${o.iperfS}; UDP ${o.udpS} s; load ${loadBefore.join(" ")}`);

  const systems: System[] = [
    routerSystem(),
    haproxySystem(),
    ...NAT_VARIANTS.map(natSystem),
    drSystem(),
    drSystem({ id: "dr-bypass", label: "DR, qdisc bypass", qdiscBypass: true }),
    tunSystem(),
  ].filter((s) => o.systems === null || o.systems.includes(s.id));
  const records = new Map<SystemId, SystemRecord>();
  for (const s of systems) {
    records.set(s.id, { id: s.id, label: s.label, description: s.description, unavailable: s.unavailable, error: null, rounds: [], counters: null });
  }
  const loadPerRound: Array<[number, number, number]> = [];

  try {
    for (const s of systems) {
      if (s.unavailable) {
        log(`${s.label}: ${s.unavailable}`);
        continue;
      }
      try {
        log(`${s.label}: building the lab and starting servers`);
        await s.setup();
        await check(s);
        // Warm-up (JIT of our director, caches, ARP): one short keep-alive and close run, untimed.
        await wrk(s.lab!, "client", httpUrl(s.target), { durationS: 1, connections: o.connections });
        await wrk(s.lab!, "client", httpUrl(s.target), { durationS: 1, connections: o.connections, connectionClose: true });
        log(`${s.label}: ready (${s.lab!.id}, target ${s.target})`);
      } catch (e) {
        s.error = (e instanceof Error ? e.message : String(e)).split("\n").slice(0, 3).join(" ");
        records.get(s.id)!.error = s.error;
        log(`${s.label}: SET-UP FAILED: ${s.error}`);
        if (s.lab) await s.lab.destroy();
      }
    }

    const live = systems.filter((s) => !s.unavailable && !s.error);
    for (let round = 1; round <= o.rounds; round++) {
      for (const s of live) {
        log(`round ${round}/${o.rounds}: ${s.label}`);
        const values: RoundValues = { round, errors: [] };
        await measureRound(s, o, values, log);
        records.get(s.id)!.rounds.push(values);
      }
      loadPerRound.push(load());
      log(`round ${round} done, load ${load().join(" ")}`);
    }
    for (const s of live) if (s.counters) records.get(s.id)!.counters = await s.counters();
  } finally {
    for (const s of systems) if (s.lab) await s.lab.destroy();
  }

  const loadAfter = load();
  const run: RunRecord = {
    command: `npm run bench:system${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    date: started.toISOString(),
    durationS: Math.round((Date.now() - t0) / 1000),
    node: process.version,
    kernel: os.release(),
    cpu: `${os.cpus()[0]?.model ?? "unknown"} x ${os.cpus().length}`,
    commit: gitDescribe(),
    loadBefore,
    loadAfter,
    loadPerRound,
    options: {
      rounds: o.rounds,
      wrkS: o.wrkS,
      iperfS: o.iperfS,
      udpS: o.udpS,
      connections: o.connections,
      cases: o.cases,
      manyConnections: o.manyConnections,
      streams: o.streams,
    },
    tools: toolVersions(),
    systems: [...records.values()],
  };
  mkdirSync(join(root, "bench", "out"), { recursive: true });
  writeFileSync(join(root, "bench", "out", "system.json"), JSON.stringify(run, null, 2));
  const md = renderReport(run);
  if (o.write) {
    writeFileSync(o.out, md);
    log(`wrote ${relative(process.cwd(), o.out)} and bench/out/system.json (${run.durationS} s, load ${loadAfter.join(" ")})`);
  } else {
    console.log(md);
  }
}

function gitDescribe(): string {
  try {
    const head = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["-C", root, "status", "--porcelain", "--", "src", "assembly"], { encoding: "utf8" }).split("\n").filter(Boolean).length;
    return dirty > 0 ? `${head} (+ ${dirty} uncommitted files in src/ and assembly/ of work in progress)` : head;
  } catch {
    return "unknown";
  }
}

function toolVersions(): Record<string, string> {
  const first = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
        .split("\n")[0]!
        .trim();
    } catch (e) {
      const out = (e as { stdout?: string; stderr?: string }).stdout || (e as { stderr?: string }).stderr || "";
      return out.split("\n")[0]!.trim() || "unknown";
    }
  };
  return {
    haproxy: first("haproxy", ["-v"]).replace(/ - https.*$/, ""),
    wrk: first("wrk", ["-v"]).replace(/ Copyright.*$/, ""),
    iperf3: first("iperf3", ["--version"]),
    nginx: existsSync("/usr/sbin/nginx") ? first("sh", ["-c", "/usr/sbin/nginx -v 2>&1"]) : "node:http (nginx-light not installed)",
  };
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
