// Packets per second through the TUN adapter, in a namespace built here (root needed):
//
//   node --import tsx bench/io.bench.ts [seconds-per-run=2] [runs=3]
//
// A blaster child process writes UDP packets into a second TUN device ("blast0"); the
// kernel forwards them into "lvs0", where this process receives them. Two measurements per
// batch size: receive only (read loop into slots), and the full NAT director (receive,
// balancer.process, write the rewritten packets back into lvs0, which the kernel routes to
// a blackhole), and the same director over a second device opened with offloads ("lvs1":
// IFF_VNET_HDR, readv / writev of the virtio-net header and the packet), which the blaster
// reaches through a second VIP: what offloads cost small packets, which are never GSO.
// Prints medians and writes nothing: copy the table into docs/benchmarks/io.md.

import { execFileSync, spawn } from "node:child_process";
import { Balancer, LinkType, PacketCore, type ServiceKey } from "../src/index.js";
import { TunDevice } from "../src/io/tun.js";
import { pollOne } from "../src/io/libc.js";
import { Director } from "../src/runtime/director.js";

const VIP = "10.250.9.1";
const VIP_OFFLOAD = "10.250.9.2";
const NS = process.argv[2] === "--blast" ? process.argv[3] : `lvsbench-${process.pid}`;

function udp4(src: number, sport: number, dport: number, size: number, vip: string): Uint8Array {
  const p = new Uint8Array(28 + size);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  v.setUint32(12, src);
  p.set(vip.split(".").map(Number), 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + size);
  return p;
}

/** The blaster: writes packets of 1024 flows into blast0 as fast as it can, for `seconds`. */
function blast(seconds: number, vip: string): void {
  const tun = TunDevice.open({ name: "blast0", netns: NS, multiQueue: true });
  const core = new PacketCore({ slotCount: 256 });
  for (let i = 0; i < 256; i++) core.slots.write(i, udp4(0x0af00000 + (i % 64), 10000 + i, 53, 64, vip), LinkType.RawIp);
  const idx = [...Array(256).keys()];
  const end = performance.now() + seconds * 1000;
  let sent = 0;
  let round = 0;
  while (performance.now() < end) {
    // Vary the source port per round so there are 1024 flows in all.
    if ((round++ & 3) === 0) {
      for (let i = 0; i < 256; i++) {
        const v = core.slots.view(i);
        v[20] = (10000 + i + 256 * (round & 3)) >> 8;
        v[21] = (10000 + i + 256 * (round & 3)) & 255;
      }
    }
    sent += tun.send(core.slots, idx);
  }
  process.stdout.write(`${sent}\n`);
  tun.close();
}

function ip(...args: string[]): void {
  execFileSync("ip", ["-n", NS, ...args], { stdio: "inherit" });
}

interface Sample {
  pps: number;
  offered: number;
}

async function measure(seconds: number, batch: number, nat: boolean, tun: TunDevice, b: Balancer): Promise<Sample> {
  const vip = tun.offload ? VIP_OFFLOAD : VIP;
  const child = spawn(process.execPath, ["--import", "tsx", new URL(import.meta.url).pathname, "--blast", NS, String(seconds + 0.5), vip], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const director = new Director({ balancer: b, io: [tun], batch });
  const slots = b.slots;
  // Let the blaster start, drain what queued meanwhile, then count for `seconds`.
  await new Promise((r) => setTimeout(r, 300));
  while (tun.receive(slots, 0, batch) > 0);
  let packets = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const n = nat ? director.runOnce() : tun.receive(slots, 0, batch);
    if (n === 0) pollOne(tun.fd, 5);
    packets += n;
  }
  const elapsed = (performance.now() - start) / 1000;
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  await new Promise((r) => child.on("exit", r));
  while (tun.receive(slots, 0, batch) > 0);
  return { pps: packets / elapsed, offered: Number(out.trim()) / (seconds + 0.5) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  if (process.argv[2] === "--blast") {
    blast(Number(process.argv[4]), process.argv[5] ?? VIP);
    return;
  }
  const seconds = Number(process.argv[2] ?? 2);
  const runs = Number(process.argv[3] ?? 3);
  execFileSync("ip", ["netns", "add", NS]);
  try {
    execFileSync("ip", [
      "netns",
      "exec",
      NS,
      "sysctl",
      "-q",
      "-w",
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    ip("link", "set", "lo", "up");
    const tun = TunDevice.open({ name: "lvs0", netns: NS });
    const tunOffload = TunDevice.open({ name: "lvs1", netns: NS, offload: true });
    const holder = TunDevice.open({ name: "blast0", netns: NS, multiQueue: true }); // keeps blast0 up between runs
    ip("route", "add", `${VIP}/32`, "dev", "lvs0");
    ip("route", "add", `${VIP_OFFLOAD}/32`, "dev", "lvs1");
    ip("route", "add", "blackhole", "10.251.0.0/16");
    ip("route", "add", "blackhole", "10.240.0.0/16");
    const b = new Balancer({ connections: 1 << 16, slots: 256 });
    for (const address of [VIP, VIP_OFFLOAD]) {
      const KEY: ServiceKey = { kind: "address", protocol: "udp", address, port: 53 };
      b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
      for (const rs of ["10.251.0.1", "10.251.0.2"])
        b.addDestination(KEY, { address: rs, port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    }
    const rows: string[] = [];
    console.log(`node ${process.version}, ${seconds} s per run, median of ${runs}; 92-byte UDP packets, 1024 flows`);
    console.log(
      "| batch | receive only (pps) | offered | NAT director: receive + process + send (pps) | offered | NAT director, device with offloads (pps) | offered |",
    );
    console.log("|---:|---:|---:|---:|---:|---:|---:|");
    for (const batch of [1, 8, 32, 64, 256]) {
      const rx: Sample[] = [];
      const nat: Sample[] = [];
      const natOffload: Sample[] = [];
      for (let r = 0; r < runs; r++) {
        rx.push(await measure(seconds, batch, false, tun, b));
        nat.push(await measure(seconds, batch, true, tun, b));
        natOffload.push(await measure(seconds, Math.min(batch, 192), true, tunOffload, b));
      }
      const f = (xs: number[]) => Math.round(median(xs)).toLocaleString("en");
      const row = `| ${batch} | ${f(rx.map((x) => x.pps))} | ${f(rx.map((x) => x.offered))} | ${f(nat.map((x) => x.pps))} | ${f(nat.map((x) => x.offered))} | ${f(natOffload.map((x) => x.pps))} | ${f(natOffload.map((x) => x.offered))} |`;
      rows.push(row);
      console.log(row);
    }
    holder.close();
    tun.close();
    tunOffload.close();
  } finally {
    execFileSync("ip", ["netns", "del", NS]);
  }
}

await main();
