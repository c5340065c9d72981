// The AF_PACKET adapter on a veth pair, with scapy (an implementation we did not write) as
// the peer: frames arrive in slots in batches, a batch sent arrives at a UDP socket, our own
// frames are not read back, and fanout hash keeps both directions of a flow on one socket.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, LinkType, PacketCore, PacketFlags, type ServiceKey } from "../src/index.js";
import { AfPacketSocket } from "../src/io/af-packet.js";
import { ArpResponder } from "../src/runtime/arp-responder.js";
import { Director } from "../src/runtime/director.js";
import { skipUnless } from "./support/tools.js";
import { scapySend, udp4, until, vethPair, withLab } from "./support/io-lab.js";

const skip = skipUnless("root", "ip", "scapy");
/** ns a: our side (a0, no address); ns p: the peer (p0, this address). */
const PEER = "10.220.0.2/24";

const UDP_LISTEN = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => console.log(r.address + ':' + r.port + ' ' + m.toString()));
d.bind(Number(process.argv[2]), process.argv[1], () => console.log('ready'));`;

test("AF_PACKET: frames from the peer arrive in slots in batches, in order and whole", { skip }, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    const sock = AfPacketSocket.open({ interface: "a0", netns: a });
    try {
      assert.match(sock.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.ok(sock.receiveBuffer >= 8 << 20, `SO_RCVBUFFORCE granted ${sock.receiveBuffer}`);
      const core = new PacketCore({ slotCount: 64 });
      const slots = core.slots;
      assert.equal(sock.receive(slots, 0, 64), 0, "nothing queued: returns at once");
      const frames = Array.from(
        { length: 20 },
        (_, i) => `Ether(src='${peerMac}',dst='${sock.mac}')/IP(src='10.220.0.2',dst='10.220.0.1')/UDP(sport=${1000 + i},dport=2000)/Raw(b'x'*${i * 50})`,
      );
      await scapySend(lab, p, "p0", frames);
      const batches: number[] = [];
      let got = 0;
      assert.ok(
        await until(() => {
          const n = sock.receive(slots, got, 64 - got);
          if (n) batches.push(n);
          return (got += n) >= 20;
        }, 3000),
        `received ${got} of 20`,
      );
      assert.equal(got, 20);
      assert.ok(batches.length < 20, `recvmmsg took several frames per call (${batches.join(",")})`);
      for (let i = 0; i < 20; i++) {
        const f = slots.view(i);
        assert.equal(slots.field(i, 8), LinkType.Ethernet);
        assert.equal(f.length, 14 + 28 + i * 50, `frame ${i} whole`);
        assert.equal((f[14 + 20] << 8) | f[14 + 21], 1000 + i, "in order");
      }
    } finally {
      sock.close();
    }
  });
});

test("AF_PACKET: a batch sent with sendmmsg reaches a UDP socket in the peer; PACKET_IGNORE_OUTGOING keeps sent frames from other sockets", {
  skip,
}, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    const sock = AfPacketSocket.open({ interface: "a0", netns: a });
    // A second socket of the director (another worker) must not read what the first sent;
    // a tap without the option does see it, which shows the check can tell.
    const worker = AfPacketSocket.open({ interface: "a0", netns: a });
    const tap = AfPacketSocket.open({ interface: "a0", netns: a, ignoreOutgoing: false });
    try {
      const listener = await lab.start(p, "node", ["-e", UDP_LISTEN, "10.220.0.2", "9999"]);
      const core = new PacketCore({ slotCount: 16 });
      const slots = core.slots;
      const mac = (m: string) => Uint8Array.from(m.split(":").map((x) => parseInt(x, 16)));
      for (let i = 0; i < 10; i++) {
        const ip = udp4("10.220.0.1", 3000 + i, "10.220.0.2", 9999, new TextEncoder().encode(`m${i}`));
        const frame = new Uint8Array(14 + ip.length);
        frame.set(mac(peerMac), 0);
        frame.set(mac(sock.mac), 6);
        frame[12] = 0x08;
        frame.set(ip, 14);
        slots.write(i, frame, LinkType.Ethernet);
      }
      assert.equal(sock.send(slots, [...Array(10).keys()]), 10);
      assert.ok(await until(() => listener.lines.length >= 10, 3000), `peer got ${listener.lines.length} of 10`);
      assert.deepEqual(listener.lines.map((l) => l.split(" ")[1]).sort(), [...Array(10).keys()].map((i) => `m${i}`).sort());
      const ours = (io: AfPacketSocket) => {
        const n = io.receive(slots, 0, 16, 20);
        let count = 0;
        for (let i = 0; i < n; i++) {
          const src = [...slots.view(i).subarray(6, 12)].map((x) => x.toString(16).padStart(2, "0")).join(":");
          if (src === sock.mac) count++;
        }
        return count;
      };
      assert.equal(ours(tap), 10, "the tap without PACKET_IGNORE_OUTGOING sees the 10 sent frames");
      assert.equal(ours(worker), 0, "the worker with PACKET_IGNORE_OUTGOING sees none");
    } finally {
      for (const s of [sock, worker, tap]) s.close();
    }
  });
});

test("AF_PACKET fanout hash: both directions of each flow land on the same socket; flows spread over both", { skip }, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    const socks = [0, 1].map(() => AfPacketSocket.open({ interface: "a0", netns: a, fanout: { group: 4242, mode: "hash" } }));
    try {
      const frames: string[] = [];
      for (let i = 0; i < 24; i++) {
        const x = `10.230.${i}.1`;
        const y = `10.231.${i}.2`;
        const e = `Ether(src='${peerMac}',dst='${socks[0].mac}')`;
        frames.push(`${e}/IP(src='${x}',dst='${y}')/TCP(sport=${20000 + i},dport=80,flags='S')`);
        frames.push(`${e}/IP(src='${y}',dst='${x}')/TCP(sport=80,dport=${20000 + i},flags='SA')`);
      }
      await scapySend(lab, p, "p0", frames);
      const core = new PacketCore({ slotCount: 64 });
      const seen = new Map<number, Set<number>>();
      let total = 0;
      assert.ok(
        await until(() => {
          socks.forEach((s, k) => {
            const n = s.receive(core.slots, 0, 64);
            for (let j = 0; j < n; j++) {
              const f = core.slots.view(j);
              const flow = f[14 + 12 + 1] === 230 ? f[14 + 12 + 2] : f[14 + 16 + 2];
              if (!seen.has(flow)) seen.set(flow, new Set());
              seen.get(flow)!.add(k);
            }
            total += n;
          });
          return total >= 48;
        }, 3000),
        `received ${total} of 48`,
      );
      assert.equal(seen.size, 24);
      for (const [flow, where] of seen) assert.equal(where.size, 1, `flow ${flow} was split across sockets`);
      const perSocket = [0, 1].map((k) => [...seen.values()].filter((w) => w.has(k)).length);
      assert.ok(perSocket[0] > 0 && perSocket[1] > 0, `flows per socket ${perSocket}`);
    } finally {
      for (const s of socks) s.close();
    }
  });
});

test("ARP responder: the peer's kernel resolves the VIP to our MAC; our probe teaches the balancer the peer's MAC", { skip }, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    const sock = AfPacketSocket.open({ interface: "a0", netns: a });
    const balancer = new Balancer({ connections: 64, slots: 32, director: { mac: sock.mac } });
    const arp = new ArpResponder({ balancer, vips: ["10.220.0.100"], io: sock });
    const director = new Director({ balancer, io: [sock], pass: arp.hook, neighbours: arp });
    try {
      const KEY: ServiceKey = { kind: "address", protocol: "udp", address: "10.220.0.100", port: 53 };
      balancer.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false });
      balancer.addDestination(KEY, { address: "10.220.0.2", port: 53, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
      const frame = (ip: Uint8Array) => {
        const f = new Uint8Array(14 + ip.length);
        f.set(Uint8Array.from(sock.mac.split(":").map((x) => parseInt(x, 16))), 0);
        f[12] = 0x08;
        f.set(ip, 14);
        return f;
      };
      const query = frame(udp4("10.220.0.9", 5353, "10.220.0.100", 53, new Uint8Array(8)));
      const before = balancer.processPacket(query, LinkType.Ethernet, 0);
      assert.ok(before.flags & PacketFlags.NeedsNeighbour, "no MAC for the real server yet");
      const loop = director.start();
      arp.resolve("10.220.0.2", 4);
      assert.ok(await until(() => arp.learned.has("10.220.0.2"), 3000), "the probe's answer was learnt");
      assert.equal(arp.learned.get("10.220.0.2"), peerMac);
      const after = balancer.processPacket(frame(udp4("10.220.0.9", 5354, "10.220.0.100", 53, new Uint8Array(8))), LinkType.Ethernet, 1);
      assert.equal(after.flags & PacketFlags.NeedsNeighbour, 0);
      assert.equal([...after.packet.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":"), peerMac);
      // The peer's kernel asks for the VIP when a socket there sends to it.
      const send = "const d=require('dgram').createSocket('udp4');d.send(Buffer.from('q'),53,'10.220.0.100',()=>d.close())";
      await lab.exec(p, "node", ["-e", send]);
      let neigh = "";
      const resolved = await until(() => (neigh = lab.ip(p, "neigh", "show", "10.220.0.100")).includes(`lladdr ${sock.mac}`), 3000, 50);
      assert.ok(resolved, `peer neighbour entry: ${neigh}`);
      assert.ok(arp.stats.answered >= 1);
      await director.stop();
      await loop;
    } finally {
      await director.stop();
      sock.close();
    }
  });
});

test("AF_PACKET with PACKET_VNET_HDR: a TSO sender's 64 KB frames pass a user-space bridge whole (iperf3 through it), without offloads they cannot", {
  skip: skipUnless("root", "ip", "iperf3"),
}, async () => {
  for (const offload of [true, false]) {
    await withLab(async (lab) => {
      const c = lab.ns("c");
      const d = lab.ns("d");
      const s = lab.ns("s");
      for (const ns of [c, d, s]) lab.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
      lab.veth(c, "c0", "10.230.0.2/24", d, "d0", null);
      lab.veth(s, "s0", "10.230.0.3/24", d, "d1", null);
      const sockets = ["d0", "d1"].map((name) => AfPacketSocket.open({ interface: name, netns: d, offload, promiscuous: true }));
      const core = new PacketCore({ slotCount: 128 });
      const indices = [...Array(128).keys()];
      let running = true;
      let sendErrors = 0;
      // The bridge: every frame from one side goes out of the other, unchanged (header included).
      const pump = (async () => {
        while (running) {
          let moved = 0;
          for (const [from, to] of [
            [sockets[0], sockets[1]],
            [sockets[1], sockets[0]],
          ]) {
            const n = from.receive(core.slots, 0, 128);
            if (n > 0) sendErrors += n - to.send(core.slots, indices, n);
            moved += n;
          }
          await new Promise((r) => (moved > 0 ? setImmediate(r) : setTimeout(r, 1)));
        }
      })();
      try {
        const server = await lab.start(s, "iperf3", ["-s", "-1", "--forceflush"], "-----------------------------------------------------------");
        let bytes = 0;
        try {
          const out = await lab.exec(c, "iperf3", ["-c", "10.230.0.3", "-t", "2", "-J", "--connect-timeout", "3000"], 20_000);
          bytes = (JSON.parse(out) as { end: { sum_received?: { bytes: number } } }).end.sum_received?.bytes ?? 0;
        } catch {
          bytes = 0; // no connection, or none of the data came through
        }
        server.child.kill();
        const rx = sockets[0].gso;
        if (offload) {
          assert.ok(rx.received > 0, `GSO frames read (${JSON.stringify(rx)})`);
          assert.ok(rx.receivedBytes / rx.received > 3000, "larger than the MTU");
          assert.ok(sockets[1].gso.sent > 0, "and sent whole");
          assert.equal(sendErrors, 0, "the kernel took every frame we wrote");
          assert.ok(bytes > 10_000_000, `iperf3 moved ${bytes} bytes`);
        } else {
          assert.ok(
            sockets[0].stats.sendErrors + sockets[1].stats.sendErrors > 0 || bytes < 1_000_000,
            "without the header, frames larger than the MTU are refused",
          );
        }
      } finally {
        running = false;
        await pump;
        for (const x of sockets) x.close();
      }
    });
  }
});

test("AF_PACKET with qdiscBypass (PACKET_QDISC_BYPASS): a batch still reaches the peer, and skips the packet taps a qdisc path feeds", {
  skip,
}, async () => {
  await withLab(async (lab) => {
    const { a, p, peerMac } = vethPair(lab, PEER);
    // Linux 6.x, net/core/dev.c: __dev_direct_xmit hands the frame to the driver without
    // dev_queue_xmit_nit, so a tap (a packet socket that sees outgoing frames) never sees it.
    const bypass = AfPacketSocket.open({ interface: "a0", netns: a, qdiscBypass: true });
    const plain = AfPacketSocket.open({ interface: "a0", netns: a });
    const tap = AfPacketSocket.open({ interface: "a0", netns: a, ignoreOutgoing: false });
    try {
      const listener = await lab.start(p, "node", ["-e", UDP_LISTEN, "10.220.0.2", "9999"]);
      const core = new PacketCore({ slotCount: 16 });
      const slots = core.slots;
      const mac = (m: string) => Uint8Array.from(m.split(":").map((x) => parseInt(x, 16)));
      const fill = (from: string, tag: string) => {
        for (let i = 0; i < 5; i++) {
          const ip = udp4("10.220.0.1", 4000 + i, "10.220.0.2", 9999, new TextEncoder().encode(`${tag}${i}`));
          const frame = new Uint8Array(14 + ip.length);
          frame.set(mac(peerMac), 0);
          frame.set(mac(from), 6);
          frame[12] = 0x08;
          frame.set(ip, 14);
          slots.write(i, frame, LinkType.Ethernet);
        }
      };
      const tapped = () => {
        const n = tap.receive(slots, 0, 16, 50);
        let count = 0;
        for (let i = 0; i < n; i++) if (slots.view(i)[12] === 0x08 && slots.view(i)[14 + 9] === 17) count++;
        return count;
      };
      fill(bypass.mac, "b");
      assert.equal(bypass.send(slots, [0, 1, 2, 3, 4]), 5);
      assert.ok(await until(() => listener.lines.length >= 5, 3000), `peer got ${listener.lines.length} of 5 past the qdisc`);
      assert.equal(tapped(), 0, "the tap saw none of the bypassing frames");
      fill(plain.mac, "q");
      assert.equal(plain.send(slots, [0, 1, 2, 3, 4]), 5);
      assert.ok(await until(() => listener.lines.length >= 10, 3000), `peer got ${listener.lines.length} of 10`);
      assert.equal(tapped(), 5, "the tap sees the frames sent through the qdisc (so it can tell)");
    } finally {
      for (const s of [bypass, plain, tap]) s.close();
    }
  });
});
