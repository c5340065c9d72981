// AF_XDP against AF_PACKET, side by side in one run: the real lvsd as a NAT director in the
// namespace lab (mode `nat`, src/lab), once over AF_PACKET and once over AF_XDP, both
// interfaces each, and the same client and real servers (root, libxdp1, wrk, iperf3):
//
//   npm run bench:xdp -- [--rounds N (3)] [--seconds S (4)]
//
//   af-packet  lvsd --af-packet eth0 --af-packet eth1 --route ... --isolate-vip VIP
//              (virtio-net header on; the director's forwarding off: the replies are lvsd's)
//   af-xdp     lvsd --af-xdp eth0 --af-xdp eth1 --route ... (native XDP on veth; the UMEM
//              in the wasm memory; lvsd answers ARP for the VIP and the gateway address)
//
// Services: VIP:80 rr masq over RS1, RS2 (nginx); VIP:5201 tcp and udp, persistence 300 s,
// RS1 (iperf3 -s). Per round and adapter: wrk keep-alive (-t1 -c32) requests/s, and iperf3
// UDP 64-byte datagrams (-u -l 64 -b 0) received per second, and lvsd's CPU time (user +
// system, all its threads, /proc/PID/stat) per request and per datagram. The client and the real
// servers send whole checksums (tx checksum offload, and with it TSO, off) so both adapters
// see the same frames. Rounds interleave the adapters (one lvsd at a time) so that load
// drift on a shared machine hits both alike. Prints medians and the per-round ratio
// af-xdp / af-packet; writes nothing (copy the table into docs/benchmarks.md).

import { readFileSync } from "node:fs";
import { createLab, httpUrl, startHttpServer, startIperf3Server, wrk, type Lab } from "../src/lab/index.js";
import { sendCommand } from "../src/admin/control-client.js";
import { disableTxChecksumOffload } from "../src/runtime/ethernet.js";
import { startLvsd, type RunningLvsd } from "../src/demo/support.js";

function option(flag: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} takes a positive number`);
  return v;
}

const ROUNDS = option("--rounds", 3);
const SECONDS = option("--seconds", 4);
type Adapter = "af-packet" | "af-xdp";
const ADAPTERS: readonly Adapter[] = ["af-packet", "af-xdp"];

/** iperf3 -u -l 64 -b 0: datagrams received per second. A server still busy with the last test is retried for up to 15 s. */
async function udp64(lab: Lab, server: string, seconds: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await udp64Once(lab, server, seconds);
    } catch (e) {
      if (attempt >= 30 || !/busy/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function udp64Once(lab: Lab, server: string, seconds: number): Promise<number> {
  const r = await lab.exec("client", "iperf3", ["-c", server, "-u", "-l", "64", "-b", "0", "-t", String(seconds), "-J"], {
    timeoutMs: (seconds + 20) * 1000,
    allowFailure: true,
  });
  const j = JSON.parse(r.stdout) as { error?: string; end?: { sum?: { packets?: number; lost_packets?: number; seconds?: number } } };
  if (j.error || !j.end?.sum?.seconds) throw new Error(`iperf3 -u: ${j.error ?? "no summary"}`);
  const s = j.end.sum;
  return ((s.packets ?? 0) - (s.lost_packets ?? 0)) / s.seconds!;
}

/** CPU seconds (user + system, every thread) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false });
type Figures = { rps: number[]; pps: number[]; usPerRequest: number[]; usPerDatagram: number[] };
const empty = (): Figures => ({ rps: [], pps: [], usPerRequest: [], usPerDatagram: [] });
const results: Record<Adapter, Figures> = { "af-packet": empty(), "af-xdp": empty() };
try {
  const vip = lab.vip!.v4;
  const [rs1, rs2] = lab.realServers;
  await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1")]);
  for (const ns of [lab.ns("client"), rs1!.ns, rs2!.ns]) disableTxChecksumOffload(ns, "eth0");
  await lab.exec("director", "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
  const routes = ["--route", "10.0.0.0/24=eth0", "--route", "192.168.10.0/24=eth1"];
  const args: Record<Adapter, string[]> = {
    "af-packet": ["--af-packet", "eth0", "--af-packet", "eth1", ...routes, "--isolate-vip", vip],
    "af-xdp": ["--af-xdp", "eth0", "--af-xdp", "eth1", ...routes],
  };
  const rules = [
    ["-A", "-t", `${vip}:80`, "-s", "rr"],
    ["-a", "-t", `${vip}:80`, "-r", `${rs1!.eth0.ipv4}:80`, "-m", "-w", "1"],
    ["-a", "-t", `${vip}:80`, "-r", `${rs2!.eth0.ipv4}:80`, "-m", "-w", "1"],
    ["-A", "-t", `${vip}:5201`, "-s", "rr", "-p", "300"],
    ["-a", "-t", `${vip}:5201`, "-r", `${rs1!.eth0.ipv4}:5201`, "-m", "-w", "1"],
    ["-A", "-u", `${vip}:5201`, "-s", "rr", "-p", "300"],
    ["-a", "-u", `${vip}:5201`, "-r", `${rs1!.eth0.ipv4}:5201`, "-m", "-w", "1"],
  ];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const adapter of round % 2 ? ADAPTERS : [...ADAPTERS].reverse()) {
      let lvsd: RunningLvsd | undefined;
      try {
        lvsd = await startLvsd(lab, args[adapter]);
        for (const r of rules) {
          const res = await sendCommand(lvsd.socket, r);
          if (res.exitCode !== 0) throw new Error(`lvsadm ${r.join(" ")}: ${res.stderr}`);
        }
        // Warm up: the real servers' MACs (lvsd's ARP probes) and the client's for the VIP.
        const deadline = Date.now() + 15_000;
        for (;;) {
          const w = await wrk(lab, "client", httpUrl(vip), { durationS: 1, connections: 2 }).catch(() => null);
          if (w && w.requests > 0 && w.errors.connect + w.errors.timeout === 0) break;
          if (Date.now() > deadline) throw new Error(`${adapter}: no answer from the VIP after 15 s:\n${lvsd.log()}`);
        }
        const pid = lvsd.process.pid;
        const cpu0 = cpuSeconds(pid);
        const w = await wrk(lab, "client", httpUrl(vip), { durationS: SECONDS, connections: 32 });
        const cpu1 = cpuSeconds(pid);
        const pps = await udp64(lab, vip, SECONDS);
        const cpu2 = cpuSeconds(pid);
        const r = results[adapter];
        r.rps.push(w.requestsPerSec);
        r.pps.push(pps);
        r.usPerRequest.push(((cpu1 - cpu0) / w.requests) * 1e6);
        r.usPerDatagram.push(((cpu2 - cpu1) / (pps * SECONDS)) * 1e6);
        console.log(
          `round ${round} ${adapter}: keep-alive ${w.requestsPerSec.toFixed(0)} requests/s (lvsd ${r.usPerRequest.at(-1)!.toFixed(1)} µs CPU each), ` +
            `UDP 64 B ${pps.toFixed(0)} datagrams/s (lvsd ${r.usPerDatagram.at(-1)!.toFixed(2)} µs CPU each)`,
        );
      } finally {
        if (lvsd && !lvsd.process.hasExited) await lvsd.stop();
      }
    }
  }
} finally {
  await lab.destroy();
}

const ratio = (k: keyof Figures) => results["af-xdp"][k].map((x, i) => x / results["af-packet"][k][i]!);
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" / ");
console.log(`\n| lvsd NAT, ${ROUNDS} rounds x ${SECONDS} s | AF_PACKET | AF_XDP | AF_XDP / AF_PACKET (median; per round) |`);
console.log("|---|---:|---:|---|");
for (const [k, label, digits] of [
  ["rps", "keep-alive requests/s (wrk -c32)", 0],
  ["pps", "UDP 64 B datagrams/s received", 0],
  ["usPerRequest", "lvsd CPU per keep-alive request (µs)", 1],
  ["usPerDatagram", "lvsd CPU per UDP datagram (µs)", 2],
] as const) {
  const r = ratio(k);
  console.log(
    `| ${label} | ${median(results["af-packet"][k]).toFixed(digits)} | ${median(results["af-xdp"][k]).toFixed(digits)} | ${median(r).toFixed(2)}x (${fmt(r)}) |`,
  );
}
