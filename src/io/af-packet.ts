// An AF_PACKET raw socket bound to one interface as a PacketIO: whole Ethernet frames
// (LinkType.Ethernet), received with recvmmsg straight into packet slots and sent with
// sendmmsg straight from them (iovecs point into wasm memory: no copy).
//
// The socket taps the interface; it does not take packets away from the kernel. How the
// director's own stack is kept from answering them too (tc / nftables ingress drop, or no
// address) is in docs/io.md.
//
// Notes on what arrives:
// - VLAN tags: where the driver strips them (rx-vlan offload), the tag is in the packet's
//   auxdata, not in the frame; this adapter does not reinsert it (untagged links only).
// - Checksums: frames from a NIC carry complete checksums. Frames a local socket sent over a
//   veth may carry a partial one (checksum offload); the datapath's incremental updates keep
//   a complete checksum correct, not a partial one. Test peers use scapy, which completes it.
// - GRO: a NIC with GRO on may hand up aggregated frames larger than the MTU; slots take up
//   to 65,600 bytes, so they arrive whole, but the director cannot send them out again
//   larger than the MTU (EMSGSIZE, counted in sendErrors): turn GRO off on a director, or
//   open the socket with `offload` (PACKET_VNET_HDR): each frame then comes with a
//   virtio_net_hdr (into the slot's offload record, a second iovec), GSO frames and partial
//   checksums pass whole, and the kernel cuts them on the way out if the egress needs it.

import { LinkType, OFFLOAD_SIZE, VNET_HDR_SIZE } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import {
  AF_PACKET,
  check,
  ETH_P_ALL,
  getIntOption,
  interfaceIndex,
  interfaceMac,
  IoError,
  IOVEC_SIZE,
  libc,
  MMSGHDR_SIZE,
  MSG_DONTWAIT,
  MSG_TRUNC,
  MSGHDR,
  PACKET_ADD_MEMBERSHIP,
  PACKET_FANOUT,
  PACKET_FANOUT_CPU,
  PACKET_FANOUT_FLAG_DEFRAG,
  PACKET_FANOUT_FLAG_IGNORE_OUTGOING,
  PACKET_FANOUT_HASH,
  PACKET_FANOUT_LB,
  PACKET_IGNORE_OUTGOING,
  PACKET_MR_PROMISC,
  PACKET_VNET_HDR,
  pollOne,
  PACKET_QDISC_BYPASS,
  setIntOption,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  sockaddrLl,
  SOCKADDR_LL_SIZE,
  SOL_PACKET,
  SOL_SOCKET,
} from "./libc.js";
import { withNetns } from "./netns.js";
import { emptyIoStats, type PacketIO } from "./packet-io.js";
import { slotMemory, type SlotMemory } from "./slot-memory.js";

const EAGAIN = 11;

export interface AfPacketFanout {
  /** Fanout group id (0..65535), the same for every socket of one director. */
  readonly group: number;
  /**
   * "hash" (default): by the kernel's flow hash, which is symmetric (both directions of one
   * 5-tuple land on one socket); "lb": round robin; "cpu": by receiving CPU.
   */
  readonly mode?: "hash" | "lb" | "cpu";
  /** Reassemble IP fragments before hashing (PACKET_FANOUT_FLAG_DEFRAG). Default true for hash. */
  readonly defrag?: boolean;
}

export interface AfPacketOptions {
  /** The interface to bind to. */
  readonly interface: string;
  /** Open the socket inside this network namespace (/run/netns/NAME). */
  readonly netns?: string;
  /** Receive buffer in bytes (SO_RCVBUFFORCE, else SO_RCVBUF). Default 8 MiB: bursts of thousands of frames. */
  readonly receiveBuffer?: number;
  /** Send buffer in bytes. Default 4 MiB. */
  readonly sendBuffer?: number;
  /** PACKET_IGNORE_OUTGOING: do not read back what this host sends. Default true. */
  readonly ignoreOutgoing?: boolean;
  /** Put the interface in promiscuous mode while the socket is open (DR directors sharing a MAC do not need it). */
  readonly promiscuous?: boolean;
  readonly fanout?: AfPacketFanout;
  /**
   * PACKET_VNET_HDR: a virtio_net_hdr with every frame, so GSO frames (a local TSO sender
   * on a veth, GRO on a NIC) and partial checksums pass whole. Default false.
   */
  readonly offload?: boolean;
  /**
   * PACKET_QDISC_BYPASS: frames we send go straight to the device's driver, past the qdisc
   * (no queueing discipline, no tc egress, no packet taps on the way out). Default false;
   * what it buys is in docs/benchmarks/packet-path.md.
   */
  readonly qdiscBypass?: boolean;
}

/** Per PacketSlots: the receive and send message vectors, built once. */
interface Vectors {
  mem: SlotMemory;
  slot0: bigint;
  recv: Buffer;
  recvIov: Buffer;
  recvAddr: bigint;
  send: Buffer;
  sendIov: Buffer;
  sendAddr: bigint;
}

export class AfPacketSocket implements PacketIO {
  readonly linkType = LinkType.Ethernet;
  readonly stats = emptyIoStats();
  /** The interface's MAC address. */
  readonly mac: string;
  readonly ifindex: number;
  /** The receive buffer the kernel granted (bytes; it doubles what was asked). */
  readonly receiveBuffer: number;
  private vectors: Vectors | undefined;
  private vectorSlots: PacketSlots | undefined;
  private closed = false;
  /** With offload: frames received that were GSO super-frames. */
  readonly gso = { received: 0, receivedBytes: 0, sent: 0 };

  private constructor(
    readonly name: string,
    readonly fd: number,
    ifindex: number,
    mac: string,
    rcvbuf: number,
    /** Frames carry a virtio_net_hdr (PACKET_VNET_HDR). */
    readonly offload: boolean,
  ) {
    this.ifindex = ifindex;
    this.mac = mac;
    this.receiveBuffer = rcvbuf;
  }

  static open(options: AfPacketOptions): AfPacketSocket {
    const c = libc();
    const name = options.interface;
    return withNetns(options.netns, () => {
      const ifindex = interfaceIndex(name);
      const mac = interfaceMac(name);
      // Protocol 0 at creation: nothing is queued from other interfaces before bind().
      const fd = check(c.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), "opening an AF_PACKET socket", "run as root (CAP_NET_RAW)");
      try {
        const rcv = options.receiveBuffer ?? 8 << 20;
        if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, c.address(Buffer.from(Int32Array.of(rcv).buffer)), 4) < 0) {
          setIntOption(fd, SOL_SOCKET, SO_RCVBUF, rcv, "setting SO_RCVBUF");
        }
        const snd = options.sendBuffer ?? 4 << 20;
        if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, c.address(Buffer.from(Int32Array.of(snd).buffer)), 4) < 0) {
          setIntOption(fd, SOL_SOCKET, SO_SNDBUF, snd, "setting SO_SNDBUF");
        }
        if (options.ignoreOutgoing !== false) {
          setIntOption(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "setting PACKET_IGNORE_OUTGOING", "needs Linux 4.20 or later");
        }
        if (options.offload) setIntOption(fd, SOL_PACKET, PACKET_VNET_HDR, 1, "setting PACKET_VNET_HDR");
        if (options.qdiscBypass) setIntOption(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "setting PACKET_QDISC_BYPASS", "needs Linux 3.14 or later");
        const addr = sockaddrLl(ETH_P_ALL, ifindex);
        check(c.bind(fd, c.address(addr), SOCKADDR_LL_SIZE), `binding to ${name}`);
        if (options.promiscuous) {
          const mreq = Buffer.alloc(16); // struct packet_mreq
          mreq.writeInt32LE(ifindex, 0);
          mreq.writeUInt16LE(PACKET_MR_PROMISC, 4);
          check(c.setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, c.address(mreq), 16), `promiscuous mode on ${name}`);
        }
        if (options.fanout) {
          const f = options.fanout;
          if (!Number.isInteger(f.group) || f.group < 0 || f.group > 0xffff) throw new RangeError(`fanout group ${f.group} is not in 0..65535`);
          const mode = f.mode ?? "hash";
          const type = mode === "hash" ? PACKET_FANOUT_HASH : mode === "lb" ? PACKET_FANOUT_LB : PACKET_FANOUT_CPU;
          // The group's own hook taps the device: without its flag, every member reads back what this host sends.
          const flags =
            ((f.defrag ?? mode === "hash") ? PACKET_FANOUT_FLAG_DEFRAG : 0) | (options.ignoreOutgoing !== false ? PACKET_FANOUT_FLAG_IGNORE_OUTGOING : 0);
          setIntOption(
            fd,
            SOL_PACKET,
            PACKET_FANOUT,
            f.group | ((type | flags) << 16),
            `joining fanout group ${f.group}`,
            "every socket of a group needs the same mode and flags, on the same interface",
          );
        }
        const granted = getIntOption(fd, SOL_SOCKET, SO_RCVBUF, "reading SO_RCVBUF");
        return new AfPacketSocket(name, fd, ifindex, mac, granted, options.offload === true);
      } catch (e) {
        c.close(fd);
        throw e;
      }
    });
  }

  private vectorsFor(slots: PacketSlots): Vectors {
    const mem = slotMemory(slots);
    // Rebuilt for other slots, or if the wasm memory moved (it never grows after start-up).
    if (this.vectors && this.vectorSlots === slots && this.vectors.slot0 === mem.receiveAddress(0)) return this.vectors;
    const c = libc();
    const n = slots.count;
    // Per message one iovec (the frame), or two with offload (the header to the slot's
    // offload record, then the frame).
    const per = this.offload ? 2 : 1;
    const recv = Buffer.alloc(n * MMSGHDR_SIZE);
    const recvIov = Buffer.alloc(n * per * IOVEC_SIZE);
    const send = Buffer.alloc(n * MMSGHDR_SIZE);
    const sendIov = Buffer.alloc(n * per * IOVEC_SIZE);
    const recvIovAddr = c.address(recvIov);
    const sendIovAddr = c.address(sendIov);
    const recordBase = mem.base + BigInt(slots.offloadBase);
    for (let i = 0; i < n; i++) {
      const at = i * per * IOVEC_SIZE;
      if (this.offload) {
        recvIov.writeBigUInt64LE(recordBase + BigInt(i * OFFLOAD_SIZE), at);
        recvIov.writeBigUInt64LE(BigInt(VNET_HDR_SIZE), at + 8);
      }
      recvIov.writeBigUInt64LE(mem.receiveAddress(i), at + (per - 1) * IOVEC_SIZE);
      recvIov.writeBigUInt64LE(BigInt(slots.capacity), at + (per - 1) * IOVEC_SIZE + 8);
      recv.writeBigUInt64LE(recvIovAddr + BigInt(at), i * MMSGHDR_SIZE + MSGHDR.iov);
      recv.writeBigUInt64LE(BigInt(per), i * MMSGHDR_SIZE + MSGHDR.iovlen);
      send.writeBigUInt64LE(sendIovAddr + BigInt(at), i * MMSGHDR_SIZE + MSGHDR.iov);
      send.writeBigUInt64LE(BigInt(per), i * MMSGHDR_SIZE + MSGHDR.iovlen);
    }
    this.vectors = { mem, slot0: mem.receiveAddress(0), recv, recvIov, recvAddr: c.address(recv), send, sendIov, sendAddr: c.address(send) };
    this.vectorSlots = slots;
    return this.vectors;
  }

  receive(slots: PacketSlots, first: number, max: number, timeoutMs = 0): number {
    if (this.closed) throw new Error(`AF_PACKET ${this.name}: closed`);
    const c = libc();
    const v = this.vectorsFor(slots);
    const count = Math.min(max, slots.count - first);
    if (count <= 0) return 0;
    let rc = c.recvmmsg(this.fd, v.recvAddr + BigInt(first * MMSGHDR_SIZE), count, MSG_DONTWAIT, 0n);
    if (rc < 0) {
      const errno = c.errno();
      if (errno !== EAGAIN) throw new IoError(errno, `receiving on ${this.name}`);
      if (timeoutMs <= 0 || !pollOne(this.fd, timeoutMs)) return 0;
      rc = c.recvmmsg(this.fd, v.recvAddr + BigInt(first * MMSGHDR_SIZE), count, MSG_DONTWAIT, 0n);
      if (rc < 0) {
        const again = c.errno();
        if (again === EAGAIN) return 0;
        throw new IoError(again, `receiving on ${this.name}`);
      }
    }
    const words = v.mem.words;
    const capacity = slots.capacity;
    const bytes = this.offload ? slots.bytes : undefined;
    for (let i = 0; i < rc; i++) {
      const at = (first + i) * MMSGHDR_SIZE;
      let length = v.recv.readUInt32LE(at + MSGHDR.len);
      if (this.offload) {
        // msg_len counts the header too (packet_recvmsg); a frame shorter than it is empty.
        length = Math.max(0, length - VNET_HDR_SIZE);
        if (length > capacity) {
          this.stats.truncated++;
          length = capacity;
        }
        words.receivedWithOffload(first + i, length, LinkType.Ethernet);
        if (bytes![slots.offloadBase + (first + i) * OFFLOAD_SIZE + 1] !== 0) {
          this.gso.received++;
          this.gso.receivedBytes += length;
        }
        continue;
      }
      if (v.recv.readInt32LE(at + MSGHDR.flags) & MSG_TRUNC || length > capacity) {
        this.stats.truncated++;
        length = Math.min(length, capacity);
      }
      words.received(first + i, length, LinkType.Ethernet);
    }
    this.stats.received += rc;
    return rc;
  }

  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    if (this.closed) throw new Error(`AF_PACKET ${this.name}: closed`);
    if (count === 0) return 0;
    const c = libc();
    const v = this.vectorsFor(slots);
    const words = v.mem.words;
    const per = this.offload ? 2 : 1;
    const recordBase = v.mem.base + BigInt(slots.offloadBase);
    const bytes = this.offload ? slots.bytes : undefined;
    for (let i = 0; i < count; i++) {
      const slot = indices[i];
      const at = i * per * IOVEC_SIZE;
      if (this.offload) {
        v.sendIov.writeBigUInt64LE(recordBase + BigInt(slot * OFFLOAD_SIZE), at);
        v.sendIov.writeBigUInt64LE(BigInt(VNET_HDR_SIZE), at + 8);
        if (bytes![slots.offloadBase + slot * OFFLOAD_SIZE + 1] !== 0) this.gso.sent++;
      }
      v.sendIov.writeBigUInt64LE(v.mem.packetAddress(slot), at + (per - 1) * IOVEC_SIZE);
      v.sendIov.writeBigUInt64LE(BigInt(words.length(slot)), at + (per - 1) * IOVEC_SIZE + 8);
    }
    let done = 0;
    let sent = 0;
    while (done < count) {
      const rc = c.sendmmsg(this.fd, v.sendAddr + BigInt(done * MMSGHDR_SIZE), count - done, 0);
      if (rc < 0) {
        const errno = c.errno();
        this.stats.sendErrors++;
        if (errno === EAGAIN || errno === 105 /* ENOBUFS */) break;
        done++; // this one frame was refused (EMSGSIZE ...): skip it, send the rest
        continue;
      }
      if (rc === 0) break;
      done += rc;
      sent += rc;
    }
    this.stats.sent += sent;
    return sent;
  }

  /**
   * Sends one frame from a JavaScript buffer (a copy; for control frames such as ARP, not
   * for the data path). Returns false when the kernel refused it.
   */
  sendFrame(frame: Uint8Array): boolean {
    if (this.closed) throw new Error(`AF_PACKET ${this.name}: closed`);
    const c = libc();
    // With PACKET_VNET_HDR every write starts with a header: an all-zero one (whole frame).
    const copy = this.offload ? Buffer.concat([Buffer.alloc(VNET_HDR_SIZE), frame]) : Buffer.from(frame);
    const ok = c.write(this.fd, c.address(copy), copy.length) === copy.length;
    if (ok) this.stats.sent++;
    else this.stats.sendErrors++;
    return ok;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}
