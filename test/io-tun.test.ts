// The TUN adapter and the director over it, in namespaces built here: packets the kernel
// routes into the device arrive in slots whole (9000 bytes with a big MTU), packets written
// are routed by the kernel, and a NAT director over a TUN device serves four curls rr.
// The director's logic without devices is in io-director.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, PacketCore, type ServiceKey } from "../src/index.js";
import { TunDevice } from "../src/io/tun.js";
import { Director } from "../src/runtime/director.js";
import { skipUnless } from "./support/tools.js";
import { udp4, until, withLab } from "./support/io-lab.js";
import { iperfThroughTunNat } from "./support/tun-gso-nat.js";

const skip = skipUnless("root", "ip");
const skipHttp = skipUnless("root", "ip", "curl");

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

test("TUN: packets the kernel routes into the device arrive in slots in order; 9000 bytes whole with MTU 9000; written packets are routed", {
  skip,
}, async () => {
  await withLab(async (lab) => {
    const d = lab.ns("d");
    // No IPv6 on the device: no router solicitations mixed into the batch.
    lab.sysctl(d, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
    const tun = TunDevice.open({ name: "lvs0", mtu: 9000, netns: d });
    try {
      assert.equal(tun.name, "lvs0");
      assert.match(lab.ip(d, "link", "show", "lvs0"), /mtu 9000 .*state (UNKNOWN|UP)|mtu 9000/);
      lab.ip(d, "addr", "add", "10.201.0.1/24", "dev", "lvs0");
      const core = new PacketCore({ slotCount: 16 });
      const slots = core.slots;
      assert.equal(tun.receive(slots, 0, 16, 0), 0, "nothing yet, and no blocking");

      // Five datagrams routed into the device; 8972 bytes of UDP payload make a 9000-byte packet.
      const sizes = [8972, 100, 1472, 3000, 1];
      await lab.exec(d, "node", ["-e", UDP_SEND, "10.201.0.9", "5555", sizes.join(",")]);
      let got = 0;
      assert.ok(await until(() => (got += tun.receive(slots, got, 16 - got, 0)) >= sizes.length, 2000), `received ${got} of ${sizes.length}`);
      const udp = [];
      for (let i = 0; i < got; i++) {
        const p = slots.view(i);
        udp.push(p.slice());
        assert.equal(slots.field(i, 8 /* link */), LinkType.RawIp);
      }
      assert.deepEqual(
        udp.map((p) => p.length),
        sizes.map((n) => n + 28),
        "every datagram whole, in order",
      );
      const big = udp[0];
      assert.equal((big[2] << 8) | big[3], 9000, "IP total length 9000: not truncated, not fragmented");
      assert.equal([...big.subarray(16, 20)].join("."), "10.201.0.9");
      for (let k = 0; k < 8972; k += 997) assert.equal(big[28 + k], (k * 7 + 8972) & 255, `payload byte ${k}`);

      // The other way: a packet written into the device is routed by the kernel to a local socket.
      const listener = await lab.start(d, "node", ["-e", UDP_LISTEN, "10.201.0.1", "9998"]);
      const packet = udp4("10.201.0.9", 7777, "10.201.0.1", 9998, new TextEncoder().encode("hello through the tun"));
      slots.write(3, packet, LinkType.RawIp);
      assert.equal(tun.send(slots, [3]), 1);
      assert.ok(await until(() => listener.lines.length > 0, 3000), "the listener got the packet");
      assert.equal(listener.lines[0], "10.201.0.9:7777 hello through the tun");
    } finally {
      tun.close();
    }
  });
});

test("NAT director over a TUN device: four curls to the VIP answer RS2, RS1, RS2, RS1 (rr, masq; newest destination first)", { skip: skipHttp }, async () => {
  await withLab(async (lab) => {
    const VIP = "10.210.9.1";
    const c = lab.ns("c");
    const d = lab.ns("d");
    const s1 = lab.ns("s1");
    const s2 = lab.ns("s2");
    lab.sysctl(
      d,
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    );
    lab.veth(c, "c0", "10.210.1.2/24", d, "d0", "10.210.1.1/24");
    lab.veth(s1, "s0", "10.210.2.2/24", d, "d1", "10.210.2.1/24");
    lab.veth(s2, "s0", "10.210.3.2/24", d, "d2", "10.210.3.1/24");
    lab.ip(c, "route", "add", "default", "via", "10.210.1.1");
    lab.ip(s1, "route", "add", "default", "via", "10.210.2.1");
    lab.ip(s2, "route", "add", "default", "via", "10.210.3.1");
    const tun = TunDevice.open({ name: "lvs0", netns: d });
    const b = new Balancer({ connections: 1024, slots: 64 });
    const director = new Director({ balancer: b, io: [tun] });
    try {
      lab.sysctl(d, "net.ipv4.conf.lvs0.rp_filter=0");
      // Client -> VIP goes into the device (the VIP is not a local address of the director).
      lab.ip(d, "route", "add", `${VIP}/32`, "dev", "lvs0");
      // Real servers' replies go into the device too, by policy: whatever arrives from them.
      lab.ip(d, "route", "add", "default", "dev", "lvs0", "table", "100");
      lab.ip(d, "rule", "add", "iif", "d1", "lookup", "100");
      lab.ip(d, "rule", "add", "iif", "d2", "lookup", "100");
      const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 80 };
      b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
      for (const rs of ["10.210.2.2", "10.210.3.2"]) {
        b.addDestination(KEY, { address: rs, port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
      }
      const server = (name: string) => `require('http').createServer((q, r) => r.end('${name}')).listen(80, () => console.log('ready'))`;
      await Promise.all([lab.start(s1, "node", ["-e", server("RS1")]), lab.start(s2, "node", ["-e", server("RS2")])]);
      const loop = director.start();
      const answers: string[] = [];
      for (let i = 0; i < 4; i++) answers.push(await lab.exec(c, "curl", ["-sS", "--max-time", "5", `http://${VIP}/`]));
      await director.stop();
      await loop;
      assert.deepEqual(answers, ["RS2", "RS1", "RS2", "RS1"]);
      const listing = b.listing();
      assert.equal(listing.services[0].stats!.conns, 4n);
      assert.ok(director.stats.forwarded >= 4 * 6, `forwards both ways (${director.stats.forwarded})`);
      assert.equal(director.stats.sendFailures, 0);
    } finally {
      await director.stop();
      tun.close();
    }
  });
});

test("TUN with offloads: iperf3 both ways through a NAT director moves GSO super-packets, and the kernel takes every one we write", {
  skip: skipUnless("root", "ip", "iperf3"),
}, async () => {
  await withLab((lab) =>
    iperfThroughTunNat(lab, 211, (netns) => TunDevice.open({ name: "lvs0", netns, offload: true }), {
      before: (tun) => assert.deepEqual([tun.offloads.csum, tun.offloads.tso4, tun.offloads.tso6], [true, true, true], "checksum and TSO granted"),
      after: (tun) =>
        assert.ok(
          tun.gso.receivedBytes / tun.gso.received > 8000,
          `super-packets are large (${Math.round(tun.gso.receivedBytes / tun.gso.received)} bytes on average)`,
        ),
    }),
  );
});
