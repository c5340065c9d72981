// What one packet costs the TUN adapter, read / write against io_uring, in a namespace
// built here (root needed):
//
//   node --import tsx bench/io.bench.ts [packets-per-run=50000] [runs=3] [--batches 64,256]
//
// Per run, a blaster child process writes that many 92-byte UDP packets of 1024 flows into a
// second TUN device ("blast0"); the kernel forwards them to a VIP routed into the device
// under test, whose queue (txqueuelen 200,000) holds them all while we do not read. When
// the blaster has exited, this process drains the queue alone, timed: nothing else competes
// for the CPU (the machine has 2 cores, so a blaster running beside the reader measured the
// blaster). Per batch size and per backend (plain read / write per packet, or io_uring: one
// io_uring_enter per batch of reads and one per batch of writes, src/io/tun-uring.ts), each
// with and without offloads (IFF_VNET_HDR: readv / writev of the virtio-net header and the
// packet), two loops:
//
//   receive   the adapter's receive() into slots, nothing else;
//   NAT       Director.runOnce(): receive, balancer.process (UDP rr over two masq real
//             servers), write every packet back into the device (routed to a blackhole).
//
// Figures per run: packets/s drained; this process's CPU per packet (user and system,
// process.cpuUsage(); the system time includes the kernel routing each written packet); and
// system calls per packet (counted: each read / write, or each io_uring_enter). Runs are
// interleaved (every configuration once per round). Prints a table and writes nothing:
// copy it into docs/benchmarks/io.md.
//
// A run in which nothing arrives is an error naming the cause, never a row of zeros.

import { execFileSync, spawn } from "node:child_process";
import { Balancer, LinkType, PacketCore, type PacketIO, type PacketSlots, type ServiceKey } from "../src/index.js";
import { TunDevice } from "../src/io/tun.js";
import { UringTunDevice } from "../src/io/tun-uring.js";
import { Director } from "../src/runtime/director.js";

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

/** The blaster: writes `count` packets of 1024 flows into blast0 as fast as it can. */
function blast(count: number, vip: string): void {
  const tun = TunDevice.open({ name: "blast0", netns: NS, multiQueue: true });
  const core = new PacketCore({ slotCount: 256 });
  for (let i = 0; i < 256; i++) core.slots.write(i, udp4(0x0af00000 + (i % 64), 10000 + i, 53, 64, vip), LinkType.RawIp);
  const idx = [...Array(256).keys()];
  let sent = 0;
  let round = 0;
  while (sent < count) {
    // Vary the source port per round so there are 1024 flows in all.
    if ((round++ & 3) === 0) {
      for (let i = 0; i < 256; i++) {
        const v = core.slots.view(i);
        v[20] = (10000 + i + 256 * (round & 3)) >> 8;
        v[21] = (10000 + i + 256 * (round & 3)) & 255;
      }
    }
    sent += tun.send(core.slots, idx, Math.min(256, count - sent));
  }
  process.stdout.write(`${sent}\n`);
  tun.close();
}

function ip(...args: string[]): void {
  execFileSync("ip", ["-n", NS, ...args], { stdio: "inherit" });
}

/** Counts the system calls an adapter makes (read / write per packet, or io_uring enters). */
class Counting implements PacketIO {
  readonly linkType = LinkType.RawIp;
  syscalls = 0;
  constructor(readonly inner: TunDevice | UringTunDevice) {}
  get name() {
    return this.inner.name;
  }
  get fd() {
    return this.inner.fd;
  }
  get offload() {
    return this.inner.offload;
  }
  receive(slots: PacketSlots, first: number, max: number): number {
    const inner = this.inner;
    if (inner instanceof UringTunDevice) {
      // Ring rounds, and the small batches it reads plainly (a read per packet and one more).
      const before = inner.ring.enters + inner.tun.stats.received + inner.plainReceives;
      const n = inner.receive(slots, first, max);
      this.syscalls += inner.ring.enters + inner.tun.stats.received + inner.plainReceives - before;
      return n;
    }
    const n = inner.receive(slots, first, max);
    this.syscalls += n + (n < max ? 1 : 0); // one read per packet, and the one that found EAGAIN
    return n;
  }
  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    const inner = this.inner;
    if (inner instanceof UringTunDevice) {
      const before = inner.ring.enters + inner.tun.stats.sent;
      const n = inner.send(slots, indices, count);
      this.syscalls += inner.ring.enters + inner.tun.stats.sent - before;
      return n;
    }
    this.syscalls += count;
    return inner.send(slots, indices, count);
  }
  close(): void {}
}

interface Config {
  backend: "read/write" | "io_uring";
  offload: boolean;
  nat: boolean;
}

interface Sample {
  pps: number;
  queued: number;
  dropped: number;
  userNs: number;
  systemNs: number;
  syscalls: number;
}

interface Device {
  io: Counting;
  vip: string;
}

/** Bytes of the device's kernel counters: tx packets (into our queue) and tx drops. */
function deviceTx(name: string): { packets: number; dropped: number } {
  const [j] = JSON.parse(execFileSync("ip", ["-n", NS, "-s", "-j", "link", "show", name], { encoding: "utf8" })) as Array<{
    stats64: { tx: { packets: number; dropped: number } };
  }>;
  return j!.stats64.tx;
}

/**
 * One run: the blaster queues `count` packets in the device (we do not read meanwhile),
 * exits, and then we drain the queue alone, timed: the drain rate is our cost per packet
 * with nothing else competing for the CPU.
 */
async function measure(count: number, batch: number, cfg: Config, dev: Device, b: Balancer): Promise<Sample> {
  const io = dev.io;
  const slots = b.slots;
  while (io.receive(slots, 0, batch) > 0);
  const before = deviceTx(io.name);
  const child = spawn(process.execPath, ["--import", "tsx", new URL(import.meta.url).pathname, "--blast", NS, String(count), dev.vip], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  const sent = Number(out.trim());
  if (code !== 0 || !Number.isFinite(sent) || sent === 0)
    throw new Error(`the blaster failed (exit ${String(code)}, sent ${out.trim() || "nothing"}): ${err.slice(-400)}`);
  const director = new Director({ balancer: b, io: [io], batch });
  io.syscalls = 0;
  let packets = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (;;) {
    const n = cfg.nat ? director.runOnce() : io.receive(slots, 0, batch);
    if (n === 0) break;
    packets += n;
  }
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // TUN counts tx packets when we read them; drops at its queue as they happen.
  const after = deviceTx(io.name);
  if (packets === 0) throw new Error(`${io.name}: the blaster sent ${sent} packets and none reached the device: check the routes and rp_filter in ${NS}`);
  return {
    pps: packets / elapsed,
    queued: after.packets - before.packets,
    dropped: after.dropped - before.dropped,
    userNs: (cpu.user * 1000) / packets,
    systemNs: (cpu.system * 1000) / packets,
    syscalls: io.syscalls / packets,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  if (process.argv[2] === "--blast") {
    blast(Number(process.argv[4]), process.argv[5]!);
    return;
  }
  if (process.getuid?.() !== 0) throw new Error("io.bench builds a network namespace and TUN devices: run it as root");
  const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && all[i - 1] !== "--batches");
  const count = Number(positional[0] ?? 50_000);
  const runs = Number(positional[1] ?? 3);
  const bi = process.argv.indexOf("--batches");
  const batches = bi > 0 ? process.argv[bi + 1]!.split(",").map(Number) : [64, 256];
  execFileSync("ip", ["netns", "add", NS]);
  const devices = new Map<string, Device>();
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
    const holder = TunDevice.open({ name: "blast0", netns: NS, multiQueue: true }); // keeps blast0 up between runs
    let n = 0;
    for (const backend of ["read/write", "io_uring"] as const) {
      for (const offload of [false, true]) {
        const name = `lvs${n}`;
        const vip = `10.250.9.${++n}`;
        const tun = TunDevice.open({ name, netns: NS, offload, txQueueLength: 200_000 });
        const io = new Counting(backend === "io_uring" ? new UringTunDevice(tun) : tun);
        ip("route", "add", `${vip}/32`, "dev", name);
        devices.set(`${backend} ${offload}`, { io, vip });
      }
    }
    ip("route", "add", "blackhole", "10.251.0.0/16");
    ip("route", "add", "blackhole", "10.240.0.0/16");
    const b = new Balancer({ connections: 1 << 16, slots: 320 });
    for (const { vip } of devices.values()) {
      const KEY: ServiceKey = { kind: "address", protocol: "udp", address: vip, port: 53 };
      b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
      for (const rs of ["10.251.0.1", "10.251.0.2"])
        b.addDestination(KEY, { address: rs, port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    }
    const configs: Config[] = [];
    for (const nat of [false, true])
      for (const offload of [false, true]) for (const backend of ["read/write", "io_uring"] as const) configs.push({ backend, offload, nat });
    console.log(
      `node ${process.version}, ${count} packets queued then drained per run, median of ${runs} interleaved runs; 92-byte UDP packets, 1024 flows; load ${(
        await import("node:os")
      )
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
    );
    console.log("| loop | offloads | batch | backend | drained packets/s | CPU ns/packet (user + system) | system calls/packet |");
    console.log("|---|---|---:|---|---:|---:|---:|");
    for (const batch of batches) {
      const samples = new Map<Config, Sample[]>(configs.map((c) => [c, []]));
      for (let r = 0; r < runs; r++) {
        for (const cfg of configs) samples.get(cfg)!.push(await measure(count, batch, cfg, devices.get(`${cfg.backend} ${cfg.offload}`)!, b));
      }
      for (const cfg of configs) {
        const xs = samples.get(cfg)!;
        const f = (pick: (s: Sample) => number) => Math.round(median(xs.map(pick))).toLocaleString("en");
        const user = median(xs.map((s) => s.userNs));
        const system = median(xs.map((s) => s.systemNs));
        console.log(
          `| ${cfg.nat ? "NAT director" : "receive only"} | ${cfg.offload ? "yes" : "no"} | ${batch} | ${cfg.backend} | ${f((s) => s.pps)} | ${Math.round(user + system).toLocaleString("en")} (${Math.round(user)} + ${Math.round(system)}) | ${median(xs.map((s) => s.syscalls)).toFixed(2)} |`,
        );
      }
    }
    holder.close();
  } finally {
    for (const d of devices.values()) d.io.inner.close();
    execFileSync("ip", ["netns", "del", NS]);
  }
}

await main();
