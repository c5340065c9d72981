// The lvs-wasm NAT director of the system benchmark: one process, one Balancer, the Director
// loop over one TUN device. run.ts starts it inside the lab's director namespace
// (`ip netns exec ... node --import tsx bench/system/nat-director.ts ...`), so the device is
// created there; run.ts then adds the routes and the policy rule that send client -> VIP
// traffic and the real servers' replies into the device (as test/io-tun.test.ts does).
//
// Services (ipvsadm terms):
//   -A -t VIP:80 -s rr;            -a ... -r RSi:80 -m       for every --rs
//   -A -t VIP:5201 -s rr -p 300;   -a ... -r IPERF_RS:5201 -m  (iperf3 control + TCP data)
//   -A -u VIP:5201 -s rr -p 300;   -a ... -r IPERF_RS:5201 -m  (iperf3 UDP data)
//
// --no-offload opens the device as before offloads existed (no virtio-net header: the
// kernel cuts every super-packet to the MTU first); --txqueuelen N sizes the device's queue
// (the ring the kernel drops at when we fall behind; default the kernel's 500); --uring moves
// the packets through io_uring (src/io/tun-uring.ts) instead of a read / write each.
//
// Prints "ready <device>" once the device is open and the loop runs; on SIGUSR2 prints one
// line "@@stats@@{...}" (Director and adapter counters, connections in the table); exits on
// SIGTERM / SIGINT after stopping the loop and closing the device.

import { Balancer, Director, TunDevice, type ServiceKey } from "../../src/index.js";
import { UringTunDevice } from "../../src/io/tun-uring.js";
import { profileOnSignal } from "./profile-child.js";

interface Args {
  tun: string;
  vip: string;
  rs: string[];
  iperfRs: string;
  connections: number;
  batch: number;
  offload: boolean;
  txQueueLength: number | undefined;
  uring: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const vip = get("--vip");
  const rs = get("--rs");
  if (!vip || !rs) throw new Error("usage: nat-director.ts --vip ADDR --rs ADDR[,ADDR...] [--iperf-rs ADDR] [--tun NAME] [--connections N] [--batch N]");
  const list = rs.split(",").filter(Boolean);
  return {
    tun: get("--tun") ?? "lvs0",
    vip,
    rs: list,
    iperfRs: get("--iperf-rs") ?? list[0]!,
    connections: Number(get("--connections") ?? 1 << 19),
    batch: Number(get("--batch") ?? 256),
    offload: !argv.includes("--no-offload"),
    uring: argv.includes("--uring"),
    txQueueLength: get("--txqueuelen") === undefined ? undefined : Number(get("--txqueuelen")),
  };
}

const args = parseArgs(process.argv.slice(2));
// With offloads, 64 slots more than the batch: room for the segments of a super-packet the
// director must cut (never here: NAT in and out of one device with offloads).
const balancer = new Balancer({ connections: args.connections, slots: args.batch + (args.offload ? 64 : 0) });
const dest = (address: string, port: number) => ({
  address,
  port,
  method: "masq" as const,
  weight: 1,
  upperThreshold: 0,
  lowerThreshold: 0,
});
const http: ServiceKey = { kind: "address", protocol: "tcp", address: args.vip, port: 80 };
balancer.addService({ key: http, scheduler: "rr", schedulerFlags: [], onePacket: false });
for (const rs of args.rs) balancer.addDestination(http, dest(rs, 80));
for (const protocol of ["tcp", "udp"] as const) {
  const key: ServiceKey = { kind: "address", protocol, address: args.vip, port: 5201 };
  balancer.addService({
    key,
    scheduler: "rr",
    schedulerFlags: [],
    onePacket: false,
    persistence: { timeout: 300, netmask: "255.255.255.255" },
  });
  balancer.addDestination(key, dest(args.iperfRs, 5201));
}

const device = TunDevice.open({
  name: args.tun,
  offload: args.offload,
  ...(args.txQueueLength !== undefined ? { txQueueLength: args.txQueueLength } : {}),
});
// --uring: the same device, its packets moved by io_uring (one system call per batch each way).
const tun = args.uring ? new UringTunDevice(device) : device;
const director = new Director({ balancer, io: [tun], batch: args.batch });
profileOnSignal();
const loop = director.start();

function stats(): string {
  const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? Number(x) : x)));
  return `@@stats@@${JSON.stringify({
    director: director.stats,
    tun: tun.stats,
    gso: tun.gso,
    ...(tun instanceof UringTunDevice ? { uring: { enters: tun.ring.enters, holesFilled: tun.holesFilled, readErrors: tun.readErrors } } : {}),
    connections: balancer.connectionCount,
    // CPU time of the whole process (all threads), microseconds: the profile's per-packet cost under load.
    cpu: process.cpuUsage(),
    totals: plain(balancer.totals().stats),
  })}\n`;
}

process.on("SIGUSR2", () => {
  process.stdout.write(stats());
});

let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  void director
    .stop()
    .then(() => loop)
    .finally(() => {
      process.stdout.write(stats());
      tun.close();
      process.exit(0);
    });
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

process.stdout.write(`ready ${tun.name}\n`);
