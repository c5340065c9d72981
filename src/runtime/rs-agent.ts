// The real-server agent for LVS-TUN on a host whose kernel has no ipip / fou / gre module:
// it receives the tunnelled packets, strips the outer headers with the data plane
// (PacketCore, action "decap", a batch per call) and writes the inner packets into a local
// TUN device. The kernel then receives them as if they had arrived on that device: packets
// from the client to the VIP, which the host holds on lo, and it answers the client directly.
//
// Receiving: one raw IPv4 socket per tunnel protocol (IPPROTO_IPIP 4, IPPROTO_GRE 47; for
// GUE a raw IPPROTO_UDP socket filtered to the GUE port). A raw socket gets the whole IP
// packet, outer header included, after the kernel has checked and reassembled it, and only
// packets addressed to this host. Holding the protocol also keeps the kernel from answering
// each packet with ICMP protocol-unreachable, which it does for a protocol nobody takes. For
// GUE a UDP socket is bound to the port as well (with a drop-everything filter), so that the
// kernel does not answer port-unreachable either.
//
// Host set-up the agent does itself: the TUN device (up, rp_filter 0: the decapsulated
// packets come from clients the routing table would reach by another interface). The VIP on
// lo with arp_ignore=1 / arp_announce=2 is the administrator's (as for every LVS real server).

import { writeFileSync } from "node:fs";
import { DESC_SIZE, DROP_REASON_NAMES, LinkType, Verdict } from "../core/abi.js";
import { PacketCore } from "../core/packet-core.js";
import type { PacketSlots } from "../core/packet-slots.js";
import {
  AF_INET,
  check,
  IoError,
  IOVEC_SIZE,
  libc,
  MMSGHDR_SIZE,
  MSG_DONTWAIT,
  MSG_TRUNC,
  MSGHDR,
  pollReadable,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_SOCKET,
  setIntOption,
} from "../io/libc.js";
import { withNetns } from "../io/netns.js";
import { emptyIoStats, type PacketIO } from "../io/packet-io.js";
import { slotMemory } from "../io/slot-memory.js";
import { TunDevice } from "../io/tun.js";
import { attachFilter, DROP_ALL, rawUdpToPort } from "./socket-filter.js";

const EAGAIN = 11;
const IPPROTO_IPIP = 4;
const IPPROTO_UDP = 17;
const IPPROTO_GRE = 47;
const IPPROTO_IPV6 = 41;
const AF_INET6 = 10;

export type AgentTunnel = "ipip" | "gre" | "gue";

/**
 * A raw IP socket of one protocol as a (receive-only) PacketIO (LinkType.RawIp), read with
 * recvmmsg straight into packet slots. IPv4: whole packets, outer header included. IPv6
 * (`family: 6`): the kernel strips the IPv6 header, so what arrives is the payload, for a
 * tunnel protocol the inner packet itself (`innerOnly`).
 */
export class RawIpSocket implements PacketIO {
  readonly linkType = LinkType.RawIp;
  readonly stats = emptyIoStats();
  private vectors: { slots: PacketSlots; base: bigint; msgs: Buffer; addr: bigint } | undefined;
  private closed = false;

  private constructor(
    readonly name: string,
    readonly fd: number,
    /** True for IPv6 sockets: each packet read is the payload, without the IPv6 header. */
    readonly innerOnly = false,
  ) {}

  static open(protocol: number, options: { netns?: string; receiveBuffer?: number; name?: string; family?: 4 | 6 } = {}): RawIpSocket {
    const c = libc();
    const v6 = options.family === 6;
    return withNetns(options.netns, () => {
      const fd = check(
        c.socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol),
        `opening a raw socket for IP protocol ${protocol}`,
        "run as root (CAP_NET_RAW)",
      );
      try {
        const size = options.receiveBuffer ?? 4 << 20;
        if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, c.address(Buffer.from(Int32Array.of(size).buffer)), 4) < 0) {
          setIntOption(fd, SOL_SOCKET, SO_RCVBUF, size, "setting SO_RCVBUF");
        }
        return new RawIpSocket(options.name ?? `raw-ip${v6 ? "6" : ""}-${protocol}`, fd, v6);
      } catch (e) {
        c.close(fd);
        throw e;
      }
    });
  }

  receive(slots: PacketSlots, first: number, max: number): number {
    if (this.closed) throw new Error(`${this.name}: closed`);
    const c = libc();
    const mem = slotMemory(slots);
    const base = mem.receiveAddress(0);
    if (!this.vectors || this.vectors.slots !== slots || this.vectors.base !== base) {
      const n = slots.count;
      const msgs = Buffer.alloc(n * MMSGHDR_SIZE);
      const iov = Buffer.alloc(n * IOVEC_SIZE);
      const iovAddr = c.address(iov);
      for (let i = 0; i < n; i++) {
        iov.writeBigUInt64LE(mem.receiveAddress(i), i * IOVEC_SIZE);
        iov.writeBigUInt64LE(BigInt(slots.capacity), i * IOVEC_SIZE + 8);
        msgs.writeBigUInt64LE(iovAddr + BigInt(i * IOVEC_SIZE), i * MMSGHDR_SIZE + MSGHDR.iov);
        msgs.writeBigUInt64LE(1n, i * MMSGHDR_SIZE + MSGHDR.iovlen);
      }
      // Keep iov alive with the vectors: the kernel reads it on every call.
      this.vectors = Object.assign({ slots, base, msgs, addr: c.address(msgs) }, { iov });
    }
    const v = this.vectors;
    const count = Math.min(max, slots.count - first);
    if (count <= 0) return 0;
    const rc = c.recvmmsg(this.fd, v.addr + BigInt(first * MMSGHDR_SIZE), count, MSG_DONTWAIT, 0n);
    if (rc < 0) {
      const errno = c.errno();
      if (errno === EAGAIN) return 0;
      throw new IoError(errno, `receiving on ${this.name}`);
    }
    for (let i = 0; i < rc; i++) {
      const at = (first + i) * MMSGHDR_SIZE;
      let length = v.msgs.readUInt32LE(at + MSGHDR.len);
      if (v.msgs.readInt32LE(at + MSGHDR.flags) & MSG_TRUNC || length > slots.capacity) {
        this.stats.truncated++;
        length = Math.min(length, slots.capacity);
      }
      mem.words.received(first + i, length, LinkType.RawIp);
    }
    this.stats.received += rc;
    return rc;
  }

  send(): number {
    throw new Error(`${this.name}: receive-only`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}

export interface RsAgentOptions {
  /** Run inside this network namespace (sockets and device are created there). */
  readonly netns?: string;
  /** Encapsulations to accept. Default ["ipip"]. */
  readonly tunnels?: readonly AgentTunnel[];
  /** UDP port of GUE (ipvsadm --tun-port). Required with "gue". */
  readonly guePort?: number;
  /** The TUN device the inner packets are written to. Default "lvsrs0". */
  readonly device?: string;
  /** Packets per batch (slots of the data plane). Default 64. */
  readonly batch?: number;
  /**
   * Also take IPv6 tunnels of type ipip (an outer IPv6 header before an IPv6 or IPv4
   * packet: raw IPv6 sockets for protocols 41 and 4, which the kernel hands the inner
   * packet). Default false.
   */
  readonly ipv6?: boolean;
}

export interface RsAgentStats {
  received: number;
  decapsulated: number;
  /** Not a tunnel packet we handle (left to the kernel, which has it too). */
  passed: number;
  dropped: number;
  /** Inner packets the TUN device did not take. */
  writeFailures: number;
  drops: Record<string, number>;
}

export interface RsAgent {
  readonly device: TunDevice;
  readonly stats: RsAgentStats;
  readonly sockets: readonly RawIpSocket[];
  /** Receives and decapsulates one batch from every socket (without waiting); returns packets received. */
  runOnce(): number;
  /** Settles when the loop ends: after stop(), or rejected when a socket failed. */
  readonly running: Promise<void>;
  stop(): Promise<void>;
}

function sysctlInNetns(netns: string | undefined, key: string, value: string): void {
  withNetns(netns, () => writeFileSync(`/proc/sys/${key.replace(/\./g, "/")}`, value));
}

/** Creates the device, opens the sockets and starts the receive loop. */
export async function startRsAgent(options: RsAgentOptions = {}): Promise<RsAgent> {
  const tunnels = [...new Set(options.tunnels ?? ["ipip"])];
  if (tunnels.length === 0) throw new RangeError("rs-agent: give at least one tunnel type (ipip, gre, gue)");
  for (const t of tunnels) if (!["ipip", "gre", "gue"].includes(t)) throw new RangeError(`rs-agent: unknown tunnel type "${t}" (ipip, gre, gue)`);
  const guePort = options.guePort;
  if (tunnels.includes("gue") && (guePort === undefined || !Number.isInteger(guePort) || guePort < 1 || guePort > 65535)) {
    throw new RangeError("rs-agent: gue needs guePort (1..65535), the --tun-port of the director's -a line");
  }
  const batch = options.batch ?? 64;
  const netns = options.netns;
  const c = libc();
  const closers: Array<() => void> = [];
  try {
    const device = TunDevice.open({ name: options.device ?? "lvsrs0", netns });
    closers.push(() => device.close());
    sysctlInNetns(netns, `net.ipv4.conf.${device.name}.rp_filter`, "0");
    const sockets: RawIpSocket[] = [];
    const open = (proto: number, name: string, family: 4 | 6 = 4) => {
      const s = RawIpSocket.open(proto, { netns, name, family });
      closers.push(() => s.close());
      sockets.push(s);
      return s;
    };
    if (tunnels.includes("ipip")) open(IPPROTO_IPIP, "ipip");
    if (tunnels.includes("ipip") && options.ipv6) {
      open(IPPROTO_IPV6, "ip6ip6", 6);
      open(IPPROTO_IPIP, "ip4ip6", 6);
    }
    if (tunnels.includes("gre")) open(IPPROTO_GRE, "gre");
    if (tunnels.includes("gue")) {
      const raw = open(IPPROTO_UDP, `gue:${guePort}`);
      attachFilter(raw.fd, rawUdpToPort(guePort!), "GUE raw socket");
      // The port's owner, so that the kernel does not answer port-unreachable; it queues nothing.
      const holder = withNetns(netns, () => {
        const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), "opening the GUE port's UDP socket");
        try {
          attachFilter(fd, DROP_ALL, "GUE UDP socket");
          const sin = Buffer.alloc(16);
          sin.writeUInt16LE(AF_INET, 0);
          sin.writeUInt16BE(guePort!, 2);
          check(c.bind(fd, c.address(sin), 16), `binding UDP port ${guePort}`, "another program owns the port (a kernel fou/GUE receiver?)");
          return fd;
        } catch (e) {
          c.close(fd);
          throw e;
        }
      });
      closers.push(() => c.close(holder));
    }

    const core = new PacketCore({ slotCount: batch, actionCount: 1 });
    core.setAction(0, { kind: "decap", ...(guePort !== undefined ? { port: guePort } : {}) });
    const slots = core.slots;
    const stats: RsAgentStats = { received: 0, decapsulated: 0, passed: 0, dropped: 0, writeFailures: 0, drops: {} };
    const out = new Int32Array(batch);

    const step = (socket: RawIpSocket): number => {
      const n = socket.receive(slots, 0, batch);
      if (n === 0) return 0;
      stats.received += n;
      const u32 = new Uint32Array(slots.bytes.buffer, slots.bytes.byteOffset, slots.bytes.byteLength >>> 2);
      let k = 0;
      if (socket.innerOnly) {
        // The kernel has stripped the outer IPv6 header: forward what is an IP packet.
        for (let s = 0; s < n; s++) {
          const d = (slots.descBase + s * DESC_SIZE) >>> 2;
          const version = u32[d + 1] > 0 ? slots.bytes[slots.slotAddress(s) + u32[d]] >> 4 : 0;
          if (version === 4 || version === 6) {
            out[k++] = s;
          } else {
            stats.dropped++;
            stats.drops["not-ip"] = (stats.drops["not-ip"] ?? 0) + 1;
          }
        }
      } else {
        // Every descriptor's action is 0 after receive: the decap record.
        core.applyBatch(0, n);
      }
      for (let s = 0; s < n && !socket.innerOnly; s++) {
        const d = (slots.descBase + s * DESC_SIZE) >>> 2;
        const verdict = u32[d + 4];
        if (verdict === Verdict.Forward) out[k++] = s;
        else if (verdict === Verdict.Pass) stats.passed++;
        else {
          stats.dropped++;
          const name = DROP_REASON_NAMES[u32[d + 5]] ?? `reason-${u32[d + 5]}`;
          stats.drops[name] = (stats.drops[name] ?? 0) + 1;
        }
      }
      if (k > 0) {
        const sent = device.send(slots, out, k);
        stats.decapsulated += k;
        stats.writeFailures += k - sent;
      }
      return n;
    };
    const runOnce = () => sockets.reduce((sum, s) => sum + step(s), 0);

    let stopping = false;
    const fds = sockets.map((s) => s.fd);
    const loop = (async () => {
      while (!stopping) {
        if (runOnce() > 0) {
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        await pollReadable(fds, 50);
      }
    })();
    loop.catch(() => {}); // reported through `running`; never an unhandled rejection
    let stopped = false;
    return {
      device,
      stats,
      sockets,
      runOnce,
      running: loop,
      async stop() {
        if (stopped) return;
        stopped = true;
        stopping = true;
        await loop.catch(() => {});
        for (const fn of closers.splice(0).reverse()) fn();
      },
    };
  } catch (e) {
    for (const fn of closers.reverse()) {
      try {
        fn();
      } catch {
        /* keep closing */
      }
    }
    throw e;
  }
}
