// What the adapter alone can take: 64-byte frames received per second by an AF_XDP socket
// against an AF_PACKET socket, on one veth pair in two namespaces built here (root, libxdp1):
//
//   node --import tsx bench/xdp-receive.bench.ts [--rounds N (3)] [--seconds S (3)]
//
// A blaster child process (this file with --blast) sends 64-byte UDP frames to the
// receiver's MAC from an AF_PACKET socket on the peer end, in batches of 256 (sendmmsg),
// for S seconds. This process receives them with receive() in batches of up to 256 into
// the slots of a PacketCore (nothing else: no datapath, no send), spinning when idle, and
// counts frames received per second and the frames lost. Per round, one run per adapter, the order alternating. --frames N sizes the AF_XDP
// receive pool (default 1024, lvsd's).
// The receiver's interface has no address: over AF_PACKET the kernel also builds an sk_buff
// per frame and drops it after the tap; over AF_XDP the XDP program redirects each frame
// before any sk_buff exists. Prints medians and per-round ratios; writes nothing.

import { execFileSync, spawn } from "node:child_process";
import { PacketCore, LinkType } from "../src/index.js";
import { AfPacketSocket } from "../src/io/af-packet.js";
import { AfXdpSocket, xdpPoolSlots } from "../src/io/af-xdp.js";
import type { PacketIO } from "../src/io/packet-io.js";

function option(flag: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} takes a positive number`);
  return v;
}

if (process.argv[2] === "--blast") {
  // node xdp-receive.bench.ts --blast NETNS DST_MAC SECONDS
  const [, , , netns, dstMac, seconds] = process.argv;
  const sock = AfPacketSocket.open({ interface: "p0", netns: netns!, qdiscBypass: true });
  const core = new PacketCore({ slotCount: 256 });
  const mac = (m: string) => Uint8Array.from(m.split(":").map((x) => parseInt(x, 16)));
  for (let i = 0; i < 256; i++) {
    const f = new Uint8Array(64);
    f.set(mac(dstMac!), 0);
    f.set(mac(sock.mac), 6);
    f.set([0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 222, 0, 2, 10, 222, 0, 1], 12);
    f.set([(9000 + i) >> 8, (9000 + i) & 255, 0x1b, 0x59, 0, 26, 0, 0], 34);
    core.slots.write(i, f, LinkType.Ethernet);
  }
  const all = [...Array(256).keys()];
  const end = Date.now() + Number(seconds) * 1000;
  let sent = 0;
  while (Date.now() < end) sent += sock.send(core.slots, all);
  process.stdout.write(`${sent}\n`);
  sock.close();
  process.exit(0);
}

const ROUNDS = option("--rounds", 3);
const SECONDS = option("--seconds", 3);
const FRAMES = option("--frames", 1024);
const NS = `lvsxdp-${process.pid}`;
const ip = (...a: string[]) => execFileSync("ip", a, { stdio: ["ignore", "pipe", "pipe"] });

type Adapter = "af-packet" | "af-xdp";
const results: Record<Adapter, { fps: number[]; lost: number[] }> = { "af-packet": { fps: [], lost: [] }, "af-xdp": { fps: [], lost: [] } };

async function measure(adapter: Adapter): Promise<void> {
  const core = new PacketCore({ slotCount: 256 + xdpPoolSlots(65728, FRAMES) });
  let io: PacketIO & { mac: string };
  if (adapter === "af-xdp") {
    const x = AfXdpSocket.open({ interface: "a0", netns: `${NS}-a`, frames: FRAMES });
    x.attach(core.slots, 256);
    io = x;
  } else {
    io = AfPacketSocket.open({ interface: "a0", netns: `${NS}-a` });
  }
  try {
    const blaster = spawn(process.execPath, ["--import", "tsx", new URL(import.meta.url).pathname, "--blast", `${NS}-p`, io.mac, String(SECONDS)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    blaster.stdout!.on("data", (d) => (out += d));
    let exited = false;
    const done = new Promise<void>((resolve) => blaster.on("exit", () => resolve(void (exited = true))));
    let received = 0;
    let first = 0;
    let last = 0;
    // Until the blaster is done and nothing has come for 200 ms.
    for (;;) {
      const n = io.receive(core.slots, 0, 256, 0);
      if (n > 0) {
        if (received === 0) first = performance.now();
        received += n;
        last = performance.now();
      } else {
        await new Promise<void>((r) => setImmediate(r));
        if (exited && performance.now() - last > 200) break;
      }
    }
    await done;
    const seconds = (last - first) / 1000;
    if (received === 0 || seconds <= 0) throw new Error(`${adapter}: nothing received (blaster sent ${out.trim() || "?"})`);
    const r = results[adapter];
    r.fps.push(received / seconds);
    r.lost.push(Math.max(0, 1 - received / Number(out.trim())) * 100);
    console.log(`${adapter}: received ${received} of ${out.trim()} sent (${r.lost.at(-1)!.toFixed(1)} % lost), ${(received / seconds).toFixed(0)} frames/s`);
  } finally {
    io.close();
  }
}

ip("netns", "add", `${NS}-a`);
ip("netns", "add", `${NS}-p`);
try {
  ip("-n", `${NS}-a`, "link", "add", "a0", "type", "veth", "peer", "name", "p0", "netns", `${NS}-p`);
  ip("-n", `${NS}-a`, "link", "set", "a0", "up");
  ip("-n", `${NS}-p`, "link", "set", "p0", "up");
  for (let round = 1; round <= ROUNDS; round++) {
    for (const adapter of (round % 2 ? ["af-packet", "af-xdp"] : ["af-xdp", "af-packet"]) as Adapter[]) await measure(adapter);
  }
} finally {
  for (const ns of [`${NS}-a`, `${NS}-p`]) {
    try {
      ip("netns", "del", ns);
    } catch {
      /* gone */
    }
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ratio = (k: "fps") => results["af-xdp"][k].map((x, i) => x / results["af-packet"][k][i]!);
console.log(
  `\n| receive only, 64 B frames, ${ROUNDS} rounds x ${SECONDS} s, AF_XDP pool ${FRAMES} frames | AF_PACKET | AF_XDP | AF_XDP / AF_PACKET (median; per round) |`,
);
console.log("|---|---:|---:|---|");
const r = ratio("fps");
console.log(
  `| frames/s received | ${median(results["af-packet"].fps).toFixed(0)} | ${median(results["af-xdp"].fps).toFixed(0)} | ${median(r).toFixed(2)}x (${r.map((x) => x.toFixed(2)).join(" / ")}) |`,
);
console.log(
  `| frames lost (%, per round) | ${results["af-packet"].lost.map((x) => x.toFixed(1)).join(" / ")} | ${results["af-xdp"].lost.map((x) => x.toFixed(1)).join(" / ")} | |`,
);
