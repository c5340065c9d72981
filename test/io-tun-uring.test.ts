// A TUN device through io_uring (src/io/uring.ts, src/io/tun-uring.ts): a batch of reads
// and a batch of writes per io_uring_enter. Against the kernel, in namespaces built here:
// packets routed into the device arrive whole and in order, in fewer system calls than
// packets; an idle device answers at once (the reads must not wait for packets); written
// packets are routed; a NAT director over it with offloads moves iperf3's GSO super-packets
// both ways. packBatch, which keeps a batch contiguous when a read in the middle failed, is
// checked without a kernel.

import { test } from "node:test";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { LinkType, PacketCore } from "../src/index.js";
import { HEADROOM, OFFLOAD_SIZE, VNET_HDR_SIZE } from "../src/core/abi.js";
import { TunDevice } from "../src/io/tun.js";
import { packBatch, SMALL_BATCH, UringTunDevice } from "../src/io/tun-uring.js";
import { IoUring } from "../src/io/uring.js";
import { skipUnless } from "./support/tools.js";
import { udp4, until, withLab } from "./support/io-lab.js";
import { iperfThroughTunNat } from "./support/tun-gso-nat.js";

const UDP_SEND = `
const d = require('dgram').createSocket('udp4');
const [dst, port, sizes] = process.argv.slice(1);
const list = sizes.split(',').map(Number);
let i = 0;
const next = () => { if (i === list.length) return d.close();
  const n = list[i++]; const b = Buffer.alloc(n); for (let k = 0; k < n; k++) b[k] = (k * 7 + n) & 255;
  d.send(b, Number(port), dst, next); };
next();`;

const UDP_LISTEN = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => console.log(r.address + ':' + r.port + ' ' + m.toString()));
d.bind(Number(process.argv[2]), process.argv[1], () => console.log('ready'));`;

test("packBatch: packets after failed reads move down into the holes, in order, with their virtio-net headers", () => {
  const core = new PacketCore({ slotCount: 8 });
  const slots = core.slots;
  const at = (slot: number) => slots.slotAddress(slot) + HEADROOM;
  // Reads into slots 2..6 returned: 30 bytes, EAGAIN, 40, EAGAIN, 50 (each counting a 10-byte header).
  for (const [slot, fill] of [
    [2, 0x21],
    [4, 0x41],
    [6, 0x61],
  ]) {
    slots.write(slot, new Uint8Array(60).fill(fill), LinkType.RawIp);
    slots.offloadRecord(slot).set(new Uint8Array(VNET_HDR_SIZE).fill(fill + 1));
  }
  const lengths = new Int32Array(8);
  const n = packBatch(slots, 2, [30, -11, 40, -11, 50], 5, true, lengths);
  assert.equal(n, 3);
  assert.deepEqual([...lengths.subarray(0, 3)], [20, 30, 40], "slots 2, 3, 4: packet lengths without the 10-byte header");
  assert.equal(slots.bytes[at(2)], 0x21, "slot 2 kept its own packet");
  // The bytes moved with them: slot 3 holds slot 4's packet and header, slot 4 slot 6's.
  assert.equal(slots.bytes[at(3)], 0x41);
  assert.equal(slots.bytes[at(3) + 29], 0x41);
  assert.equal(slots.bytes[at(4)], 0x61);
  assert.equal(slots.bytes[slots.offloadBase + 3 * OFFLOAD_SIZE], 0x42);
  assert.equal(slots.bytes[slots.offloadBase + 4 * OFFLOAD_SIZE + VNET_HDR_SIZE - 1], 0x62);
  // Without a header, a read of 10 bytes is 10 bytes of packet; an error or 0 is nothing.
  assert.equal(packBatch(slots, 0, [10, 0, -5], 3, false, lengths), 1);
  assert.equal(lengths[0], 10);
});

test("io_uring: the ring refuses a size that is not a power of two", () => {
  assert.throws(() => new IoUring(100), /power of two/);
});

test("io_uring TUN: an idle device answers at once; routed packets arrive whole and in order in fewer system calls than packets; written packets are routed", {
  skip: skipUnless("root", "ip"),
  timeout: 30_000,
}, async () => {
  await withLab(async (lab) => {
    const d = lab.ns("d");
    lab.sysctl(d, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
    const tun = new UringTunDevice(TunDevice.open({ name: "lvs0", mtu: 9000, netns: d }));
    try {
      lab.ip(d, "addr", "add", "10.202.0.1/24", "dev", "lvs0");
      const core = new PacketCore({ slotCount: 64 });
      const slots = core.slots;
      // Reads that waited for packets would block inside io_uring_enter: try it in a child with a deadline.
      const idle = await lab.exec(d, process.execPath, ["--import", "tsx", fileURLToPath(new URL("./support/uring-idle-child.ts", import.meta.url))], 15_000);
      assert.match(idle, /idle receive 0 in 1 enter/);
      assert.equal(tun.receive(slots, 0, 64, 0), 0, "nothing yet");

      const sizes = [8972, 100, 1472, 3000, 1, ...Array.from({ length: 35 }, (_, i) => 200 + i)];
      await lab.exec(d, "node", ["-e", UDP_SEND, "10.202.0.9", "5555", sizes.join(",")]);
      // The first wake-up reads with plain read(2) (a small batch); a full one switches to the ring.
      let got = 0;
      assert.ok(await until(() => (got += tun.receive(slots, got, SMALL_BATCH - got, 0)) >= SMALL_BATCH, 3000), `received ${got} of ${SMALL_BATCH}`);
      assert.ok(tun.plainReceives >= 1, "small batches by plain read(2)");
      const enters = tun.ring.enters;
      assert.ok(await until(() => (got += tun.receive(slots, got, 64 - got, 0)) >= sizes.length, 3000), `received ${got} of ${sizes.length}`);
      assert.equal(got, sizes.length);
      const used = tun.ring.enters - enters;
      assert.ok(used > 0 && used < (sizes.length - SMALL_BATCH) / 4, `${sizes.length - SMALL_BATCH} packets in ${used} io_uring_enter calls`);
      const lengths = Array.from({ length: got }, (_, i) => slots.view(i).length);
      assert.deepEqual(
        lengths,
        sizes.map((n) => n + 28),
        "every datagram whole, in order",
      );
      const big = slots.view(0);
      for (let k = 0; k < 8972; k += 997) assert.equal(big[28 + k], (k * 7 + 8972) & 255, `payload byte ${k}`);
      assert.equal(tun.readErrors, 0);

      const listener = await lab.start(d, "node", ["-e", UDP_LISTEN, "10.202.0.1", "9998"]);
      const N = 12;
      for (let i = 0; i < N; i++) {
        slots.write(i, udp4("10.202.0.9", 7000 + i, "10.202.0.1", 9998, new TextEncoder().encode(`hello ${i}`)), LinkType.RawIp);
      }
      const before = tun.ring.enters;
      assert.equal(tun.send(slots, [...Array(N).keys()]), N);
      assert.equal(tun.ring.enters - before, 1, `${N} writes, one io_uring_enter`);
      assert.ok(await until(() => listener.lines.length >= N, 3000), "the listener got the packets");
      assert.deepEqual(listener.lines.slice().sort(), Array.from({ length: N }, (_, i) => `10.202.0.9:${7000 + i} hello ${i}`).sort());
      // A few packets go by plain write(2).
      slots.write(0, udp4("10.202.0.9", 7100, "10.202.0.1", 9998, new TextEncoder().encode("few")), LinkType.RawIp);
      assert.equal(tun.send(slots, [0]), 1);
      assert.equal(tun.ring.enters - before, 1, "no ring round for one packet");
      assert.ok(await until(() => listener.lines.includes("10.202.0.9:7100 few"), 3000));
    } finally {
      tun.close();
    }
  });
});

test("io_uring TUN with offloads: iperf3 both ways through a NAT director moves GSO super-packets, every one we write taken", {
  skip: skipUnless("root", "ip", "iperf3"),
  timeout: 90_000,
}, async () => {
  await withLab((lab) =>
    iperfThroughTunNat(lab, 212, (netns) => new UringTunDevice(TunDevice.open({ name: "lvs0", netns, offload: true })), {
      after: (tun) => {
        assert.equal(tun.readErrors, 0);
        assert.ok(tun.ring.enters < tun.stats.received + tun.stats.sent, `${tun.ring.enters} enters for ${tun.stats.received} in, ${tun.stats.sent} out`);
      },
    }),
  );
});
