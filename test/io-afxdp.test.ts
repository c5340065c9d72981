// The AF_XDP adapter on a veth pair (native XDP, Linux 6.x veth), with scapy (an
// implementation we did not write) building the peer's frames and tshark judging what we
// send: frames land whole and in order in the slots the director asked for, with the UMEM
// in the wasm memory or in a mapping of its own; a batch sent back arrives with every
// checksum valid; closing detaches the program; bad input is one line. Needs root, libxdp1,
// scapy and tshark; skips with the reason otherwise (runs in CI, see .ci/run).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { LinkType, PacketCore } from "../src/index.js";
import { AfPacketSocket } from "../src/io/af-packet.js";
import { AfXdpSocket, xdpPoolSlots } from "../src/io/af-xdp.js";
import { IoError, IoUnavailableError } from "../src/io/libc.js";
import { Director } from "../src/runtime/director.js";
import { EthernetPort } from "../src/runtime/ethernet.js";
import { Balancer } from "../src/index.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import type { PacketSlots } from "../src/core/packet-slots.js";
import { IN_CI, skipUnless } from "./support/tools.js";
import { scapyBuild } from "./support/scapy.js";
import { assertFrameValid, checksumStatuses, tsharkDissect } from "./support/tshark.js";
import { scapySend, until, vethPair, withLab, type IoLab } from "./support/io-lab.js";

/** Why AF_XDP cannot be tried here (libxdp missing), or null. */
function libxdpMissing(): string | null {
  try {
    execFileSync("sh", ["-c", "ldconfig -p | grep -q 'libxdp.so.1 '"], { stdio: "ignore" });
    return null;
  } catch {
    return "libxdp.so.1 is not installed (apt-get install libxdp1)";
  }
}

function xdpSkip(): false | string {
  const tools = skipUnless("root", "ip", "scapy", "tshark");
  if (tools) return tools;
  const why = libxdpMissing();
  if (!why) return false;
  if (IN_CI) throw new Error(`required library missing in CI: ${why}`);
  console.warn(`SKIPPED: ${why}`);
  return `SKIPPED: ${why}`;
}

const skip = xdpSkip();
/** ns a: our side (a0, no address: XDP takes its frames); ns p: the peer (p0, this address). */
const PEER = "10.221.0.2/24";
const PCAP_ETHERNET = 1;
/** Slots the director may use in these tests; the receive pool follows. */
const DIRECTOR_SLOTS = 64;

/** A core with DIRECTOR_SLOTS slots for the director and an AF_XDP receive pool above them. */
function coreWithPool(): PacketCore {
  return new PacketCore({ slotCount: DIRECTOR_SLOTS + xdpPoolSlots(65728) });
}

/**
 * The frames the kernel holds on the fill ring now, sorted (white box: the ring's entries
 * between the kernel's consumer index and ours).
 */
function fillRingFrames(sock: AfXdpSocket): number[] {
  const fill = (sock as unknown as { fill: { entries: Uint32Array; mask: number; consumer: Uint32Array; cachedProd: number } }).fill;
  const out: number[] = [];
  for (let i = Atomics.load(fill.consumer, 0); i !== fill.cachedProd; i = (i + 1) >>> 0) {
    const at = (i & fill.mask) * 2;
    out.push(fill.entries[at] + fill.entries[at + 1] * 0x100000000);
  }
  return out.sort((x, y) => x - y);
}

/** Receives until `want` frames are in slots [0, want) (bounded); returns the batch sizes. */
async function receiveAll(sock: AfXdpSocket, slots: PacketSlots, want: number): Promise<number[]> {
  const batches: number[] = [];
  let got = 0;
  const ok = await until(() => {
    const n = sock.receive(slots, got, want - got);
    if (n > 0) batches.push(n);
    got += n;
    return got >= want;
  }, 15_000);
  assert.ok(ok, `received ${got} of ${want}`);
  return batches;
}

function xdpAttachment(lab: IoLab, ns: string): string {
  const line = lab.ip(ns, "-d", "link", "show", "a0");
  // The flags line says "xdp" (driver mode) or "xdpgeneric" ahead of "qdisc".
  return / xdpgeneric /.test(line) ? "generic" : / xdp /.test(line) ? "native" : "none";
}

/** UDP frames from the peer to a0, payload sizes 0..(n-1)*37 bytes (checksums by scapy). */
function peerFrames(peerMac: string, mac: string, n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `Ether(src='${peerMac}',dst='${mac}')/IP(src='10.221.0.2',dst='10.221.0.1')/UDP(sport=${4000 + i},dport=7000)/Raw(bytes([${i % 251}])*${i * 37})`,
  );
}

test("AF_XDP (native, UMEM in the wasm memory): the peer's frames land whole, in order, in the slots asked for; the pool is the adapter's", {
  skip,
  timeout: 60_000,
}, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    const sock = AfXdpSocket.open({ interface: "a0", netns: a, umem: "wasm" });
    try {
      assert.equal(sock.fd, -1, "nothing is attached before attach()");
      assert.equal(xdpAttachment(lab, a), "none");
      const core = coreWithPool();
      const slots = core.slots;
      sock.attach(slots, DIRECTOR_SLOTS);
      assert.equal(sock.umemPlacement, "wasm");
      assert.equal(sock.slotLimit, DIRECTOR_SLOTS, "the director keeps to the slots below the pool");
      assert.equal(new EthernetPort(sock, false).slotLimit, DIRECTOR_SLOTS, "and so does lvsd's port over it");
      assert.equal(xdpAttachment(lab, a), "native", "libxdp's program is attached in native (driver) mode");
      assert.equal(sock.receive(slots, 0, DIRECTOR_SLOTS), 0, "nothing queued: returns at once");
      const expressions = peerFrames(peerMac, sock.mac, 40);
      const expected = scapyBuild(expressions);
      await scapySend(lab, p, "p0", expressions);
      // Received in two halves at different places: the frames go where they are asked to.
      const first = await receiveAll(sock, slots, 40);
      assert.ok(first.length < 40, `several frames per receive (${first.join(",")})`);
      for (let i = 0; i < 40; i++) {
        assert.equal(slots.field(i, 8), LinkType.Ethernet);
        assert.deepEqual(slots.view(i), expected[i], `frame ${i} is the peer's frame, whole and in order`);
      }
      assert.equal(sock.receive(slots, DIRECTOR_SLOTS - 2, 10), 0, "nothing more arrived");
      await scapySend(lab, p, "p0", expressions.slice(0, 6));
      let got = 0;
      assert.ok(await until(() => (got += sock.receive(slots, DIRECTOR_SLOTS - 4 + got, 10)) >= 4, 15_000), `received ${got}`);
      assert.equal(got, 4, "a receive stops at the pool (slotLimit)");
      for (let i = 0; i < 4; i++) assert.deepEqual(slots.view(DIRECTOR_SLOTS - 4 + i), expected[i]);
      assert.ok(await until(() => (got += sock.receive(slots, 0, 10)) >= 6, 15_000));
      assert.deepEqual(slots.view(0), expected[4], "the rest waits in the ring for the next receive");
      assert.equal(sock.stats.received, 46);
      const k = sock.kernelStats();
      assert.equal(k.rxDropped + k.rxInvalidDescs + k.rxFillRingEmpty, 0, JSON.stringify(k));
    } finally {
      sock.close();
    }
    assert.equal(xdpAttachment(lab, a), "none", "closing the last socket detaches the program");
  });
});

test("AF_XDP: 3 bursts of 1,000 frames through the 1,024-frame receive pool (its frames recycled): each whole, in order, none lost or refused", {
  skip,
  timeout: 120_000,
}, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    const sock = AfXdpSocket.open({ interface: "a0", netns: a });
    try {
      const core = coreWithPool();
      const slots = core.slots;
      sock.attach(slots, DIRECTOR_SLOTS);
      const pool = fillRingFrames(sock);
      assert.equal(pool.length, 1024, "every pool frame starts on the fill ring");
      const BURST = 1000;
      for (let burst = 0; burst < 3; burst++) {
        // The whole burst waits in the pool before we read: a frame handed back to the
        // kernel twice, or at the wrong address, would be overwritten or refused.
        const program = [
          "import logging",
          "logging.getLogger('scapy.runtime').setLevel(logging.ERROR)",
          "from scapy.all import *",
          `frames = [Ether(src='${peerMac}',dst='${sock.mac}')/IP(src='10.221.0.2',dst='10.221.0.1')/UDP(sport=9000,dport=7001)/Raw(i.to_bytes(4,'big')*16) for i in range(${burst * BURST}, ${(burst + 1) * BURST})]`,
          "sendp(frames, iface='p0', verbose=0)",
        ].join("\n");
        await lab.exec(p, "/usr/bin/python3", ["-c", program], 60_000);
        const indexes: number[] = [];
        let broken = 0;
        const drain = () => {
          const n = sock.receive(slots, 0, DIRECTOR_SLOTS);
          for (let i = 0; i < n; i++) {
            const f = slots.view(i);
            const payload = f.subarray(14 + 28);
            if (f.length !== 14 + 28 + 64 || !payload.every((b, k) => b === payload[k & 3])) broken++;
            indexes.push(new DataView(payload.buffer, payload.byteOffset).getUint32(0));
          }
          return indexes.length >= BURST;
        };
        assert.ok(await until(drain, 20_000, 1), `burst ${burst}: received ${indexes.length} of ${BURST}`);
        assert.equal(broken, 0, `burst ${burst}: every frame whole`);
        assert.deepEqual(
          indexes,
          Array.from({ length: BURST }, (_, i) => burst * BURST + i),
          `burst ${burst}: every frame once, in order`,
        );
      }
      const k = sock.kernelStats();
      assert.deepEqual([k.rxInvalidDescs, k.rxDropped, k.rxFillRingEmpty], [0, 0, 0], JSON.stringify(k));
      assert.equal(sock.stats.received, 3 * BURST);
      assert.deepEqual(fillRingFrames(sock), pool, "every pool frame is back on the fill ring, once, at its own address");
    } finally {
      sock.close();
    }
  });
});

for (const [umem, mode] of [
  ["wasm", "native"],
  ["separate", "native"],
  ["wasm", "generic"],
] as const) {
  test(`AF_XDP (UMEM ${umem}, ${mode} XDP): frames sent back from the slots reach the peer, every checksum valid by tshark`, {
    skip,
    timeout: 60_000,
  }, async () => {
    await withLab(async (lab) => {
      const { a, p, peerMac } = vethPair(lab, PEER);
      const sock = AfXdpSocket.open({ interface: "a0", netns: a, umem, mode });
      const tap = AfPacketSocket.open({ interface: "p0", netns: p });
      try {
        const core = coreWithPool();
        const slots = core.slots;
        sock.attach(slots, DIRECTOR_SLOTS);
        assert.equal(sock.umemPlacement, umem);
        assert.equal(sock.slotLimit, umem === "wasm" ? DIRECTOR_SLOTS : undefined);
        assert.equal(xdpAttachment(lab, a), mode);
        const expressions = peerFrames(peerMac, sock.mac, 32);
        await scapySend(lab, p, "p0", expressions);
        await receiveAll(sock, slots, 32);
        // Reply in place: swap MACs, addresses and ports (no checksum changes: the sums commute).
        for (let i = 0; i < 32; i++) {
          const f = slots.view(i);
          const swap = (x: number, y: number, n: number) => {
            const t = f.slice(x, x + n);
            f.copyWithin(x, y, y + n);
            f.set(t, y);
          };
          swap(0, 6, 6);
          swap(14 + 12, 14 + 16, 4);
          swap(14 + 20, 14 + 22, 2);
        }
        const order = Array.from({ length: 32 }, (_, i) => 31 - i);
        assert.equal(sock.send(slots, order), 32);
        assert.equal(sock.stats.sent, 32);
        const peer = new PacketCore({ slotCount: 64 });
        const seen: Uint8Array[] = [];
        assert.ok(
          await until(() => {
            const n = tap.receive(peer.slots, 0, 64);
            for (let i = 0; i < n; i++) {
              const f = peer.slots.view(i);
              if (f[12] === 0x08 && f[14 + 9] === 17 && ((f[14 + 20] << 8) | f[14 + 21]) === 7000) seen.push(f.slice());
            }
            return seen.length >= 32;
          }, 15_000),
          `the peer saw ${seen.length} of 32`,
        );
        const dissected = tsharkDissect(PCAP_ETHERNET, seen);
        dissected.forEach((frame, i) => {
          assertFrameValid(frame, `frame ${i}`);
          assert.ok(
            checksumStatuses(frame).some(([k, v]) => k.startsWith("ip.") && v === "1"),
            "tshark verified the IP checksum",
          );
          const sport = Number(frame.fields.get("udp.srcport")?.[0]);
          assert.equal(sport, 7000);
          const dport = Number(frame.fields.get("udp.dstport")?.[0]);
          assert.equal(dport, 4000 + 31 - i, "sent in the order given");
          assert.equal(Number(frame.fields.get("udp.length")?.[0]), 8 + (31 - i) * 37, "whole");
          assert.equal(frame.fields.get("eth.src")?.[0], sock.mac);
          assert.equal(frame.fields.get("ip.dst")?.[0], "10.221.0.2");
        });
        // And a control frame (ARP, say) from a JavaScript buffer.
        const arp = scapyBuild([`Ether(src='${sock.mac}',dst='ff:ff:ff:ff:ff:ff')/ARP(op=1,hwsrc='${sock.mac}',psrc='10.221.0.1',pdst='10.221.0.2')`])[0];
        assert.ok(sock.sendFrame(arp));
        let gotArp = false;
        assert.ok(
          await until(() => {
            const n = tap.receive(peer.slots, 0, 64);
            for (let i = 0; i < n; i++) if (Buffer.from(peer.slots.view(i)).equals(Buffer.from(arp))) gotArp = true;
            return gotArp;
          }, 15_000),
          "the ARP request arrived as sent",
        );
      } finally {
        tap.close();
        sock.close();
      }
      assert.equal(xdpAttachment(lab, a), "none");
    });
  });
}

test("AF_XDP: a socket on the same queue right after close attaches (the kernel frees the queue from a workqueue; attach waits for it)", {
  skip,
  timeout: 60_000,
}, async () => {
  await withLab(async (lab) => {
    const { a } = vethPair(lab, PEER);
    const core = coreWithPool();
    for (let i = 0; i < 8; i++) {
      const sock = AfXdpSocket.open({ interface: "a0", netns: a });
      try {
        sock.attach(core.slots, DIRECTOR_SLOTS);
        assert.equal(xdpAttachment(lab, a), "native", `cycle ${i}`);
      } finally {
        sock.close();
      }
    }
    assert.equal(xdpAttachment(lab, a), "none");
  });
});

test("AF_XDP bad input: a missing interface, a missing libxdp, a pool that does not fit, a device without native XDP: one line each", {
  skip,
  timeout: 60_000,
}, async () => {
  await withLab(async (lab) => {
    const { a } = vethPair(lab, PEER);
    const oneLine = (e: unknown, pattern: RegExp, type: new (...args: never[]) => Error) => {
      assert.ok(e instanceof type, `${(e as Error).name}: ${(e as Error).message}`);
      assert.doesNotMatch(e.message, /\n/);
      assert.match(e.message, pattern);
      return true;
    };
    assert.throws(
      () => AfXdpSocket.open({ interface: "nope0", netns: a }),
      (e) => oneLine(e, /looking up interface nope0/, IoError),
    );
    const saved = process.env.LVS_WASM_LIBXDP;
    process.env.LVS_WASM_LIBXDP = "/nonexistent/libxdp.so.1";
    try {
      assert.throws(
        () => AfXdpSocket.open({ interface: "a0", netns: a }),
        (e) => oneLine(e, /^AF_XDP needs libxdp: \/nonexistent\/libxdp\.so\.1 could not be loaded \(apt-get install libxdp1\)/, IoUnavailableError),
      );
    } finally {
      if (saved === undefined) delete process.env.LVS_WASM_LIBXDP;
      else process.env.LVS_WASM_LIBXDP = saved;
    }
    assert.throws(() => AfXdpSocket.open({ interface: "a0", netns: a, frames: 1000 }), /frames 1000: a power of two in 64\.\.16384/);
    const core = coreWithPool();
    const sock = AfXdpSocket.open({ interface: "a0", netns: a, umem: "wasm" });
    try {
      assert.throws(
        () => sock.attach(core.slots, core.slots.count - 2),
        (e) => oneLine(e, /cannot hold 1024 frames of 4 KiB/, RangeError),
      );
      assert.equal(xdpAttachment(lab, a), "none", "nothing was attached");
    } finally {
      sock.close();
    }
    // Loopback has no native XDP: the attach is refused, and nothing stays behind.
    const lo = AfXdpSocket.open({ interface: "lo", netns: a });
    try {
      assert.throws(
        () => lo.attach(core.slots, DIRECTOR_SLOTS),
        (e) => oneLine(e, /^E\w+ AF_XDP lo: creating the socket on queue 0 and attaching the XDP program \(native mode\)/, IoError),
      );
    } finally {
      lo.close();
    }
    assert.doesNotMatch(lab.ip(a, "link", "show", "lo"), /xdp/);
  });
});

test("Director: an adapter's slotLimit keeps the batches below it", () => {
  class Limited extends MemoryPacketIO {
    readonly slotLimit = 5;
    readonly asked: Array<[number, number]> = [];
    override receive(slots: PacketSlots, first: number, max: number): number {
      this.asked.push([first, max]);
      return super.receive(slots, first, max);
    }
  }
  const io = new Limited("x", LinkType.Ethernet);
  const balancer = new Balancer({ connections: 64, slots: 32 });
  const director = new Director({ balancer, io: [io] });
  io.inject(new Uint8Array(60));
  director.step(0);
  assert.deepEqual(io.asked, [[0, 5]], "the batch is capped at slotLimit");
  assert.throws(() => new Director({ balancer, io: [Object.assign(new MemoryPacketIO("y"), { slotLimit: 0 })] }), /leave no slot/);
});
