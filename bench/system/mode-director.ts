// The lvs-wasm DR and TUN directors of the system benchmark, one process each, started by
// run.ts inside the lab's director namespace (`ip netns exec ... node --import tsx
// bench/system/mode-director.ts --mode dr|tun ...`). They are the other engineers' runtime
// directors, used as they are:
//
//   dr   startDrDirector (src/runtime/dr-director.ts): AF_PACKET on eth0 (clients) and eth1
//        (real servers), MAC rewrite only, tc ingress drop of VIP traffic after the tap;
//   tun  startTunDirector (src/runtime/tun-director.ts): a TUN device the VIP is routed
//        into, IP-in-IP to the real server (whose agent, bench/system/rs-agent.ts, decaps).
//
// Services, in ipvsadm syntax (-g for dr, -i for tun):
//   -A -t VIP:80 -s rr;             -a -t VIP:80 -r RSi:80 -g|-i        for every --rs
//   -A -t VIP:5201 -s rr -p 300;    -a -t VIP:5201 -r IPERF_RS:5201 -g|-i
//   -A -u VIP:5201 -s rr -p 300;    -a -u VIP:5201 -r IPERF_RS:5201 -g|-i
//
// Prints "ready <mode>" once the loop runs (dr: after the real servers' MACs are known); on
// SIGUSR2 one line "@@stats@@{...}"; SIGTERM / SIGINT stop the director and exit.

import { startDrDirector, type DrDirector } from "../../src/runtime/dr-director.js";
import { startTunDirector, type TunDirector } from "../../src/runtime/tun-director.js";
import { PACKET_QDISC_BYPASS, SOL_PACKET, setIntOption } from "../../src/io/libc.js";

function arg(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const mode = arg("--mode");
const vip = arg("--vip");
const rs = (arg("--rs") ?? "").split(",").filter(Boolean);
const iperfRs = arg("--iperf-rs") ?? rs[0];
const batch = Number(arg("--batch") ?? 256);
const connections = Number(arg("--connections") ?? 1 << 19);
if ((mode !== "dr" && mode !== "tun") || !vip || rs.length === 0 || !iperfRs) {
  throw new Error("usage: mode-director.ts --mode dr|tun --vip ADDR --rs ADDR[,ADDR...] [--iperf-rs ADDR] [--tunnel-source ADDR] [--batch N]");
}

let d: DrDirector | TunDirector;
if (mode === "dr") {
  d = await startDrDirector({ clientInterface: "eth0", serverInterface: "eth1", vips: [vip], batch, balancer: { connections } });
} else {
  const source = arg("--tunnel-source");
  if (!source) throw new Error("tun mode needs --tunnel-source (the director's address on the real servers' segment)");
  d = await startTunDirector({ vips: [vip], tunnelSource4: source, batch, balancer: { connections } });
}
const flag = mode === "dr" ? "-g" : "-i";
const lines = [
  `-A -t ${vip}:80 -s rr`,
  ...rs.map((r) => `-a -t ${vip}:80 -r ${r}:80 ${flag} -w 1`),
  `-A -t ${vip}:5201 -s rr -p 300`,
  `-a -t ${vip}:5201 -r ${iperfRs}:5201 ${flag} -w 1`,
  `-A -u ${vip}:5201 -s rr -p 300`,
  `-a -u ${vip}:5201 -r ${iperfRs}:5201 ${flag} -w 1`,
];
for (const line of lines) {
  const r = d.ipvsadm(line);
  if (r.exitCode !== 0) throw new Error(`${line}: ${r.stderr}`);
}
if (mode === "dr") await (d as DrDirector).resolveNeighbours(rs, 10_000);
// --qdisc-bypass: both AF_PACKET sockets send past the qdisc (set after the fact: the option
// may change at any time; AfPacketOptions.qdiscBypass sets it at open).
if (mode === "dr" && process.argv.includes("--qdisc-bypass")) {
  for (const port of [(d as DrDirector).client, (d as DrDirector).server]) {
    setIntOption(port.socket.fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "setting PACKET_QDISC_BYPASS");
  }
}

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? Number(x) : x)));
function stats(): string {
  const io =
    mode === "dr"
      ? {
          client: (d as DrDirector).client.stats,
          server: (d as DrDirector).server.stats,
          gso: { ...(d as DrDirector).client.socket.gso, sent: (d as DrDirector).server.socket.gso.sent },
        }
      : { tun: (d as TunDirector).device.stats, gso: (d as TunDirector).device.gso };
  return `@@stats@@${JSON.stringify({
    director: d.director.stats,
    io,
    connections: d.balancer.connectionCount,
    totals: plain(d.balancer.totals().stats),
  })}\n`;
}
process.on("SIGUSR2", () => process.stdout.write(stats()));
let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  void d.stop().finally(() => {
    process.stdout.write(stats());
    process.exit(0);
  });
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdout.write(`ready ${mode}\n`);
