// A TUN device as a PacketIO: bare IP packets (IFF_TUN | IFF_NO_PI, LinkType.RawIp), read
// and written straight from packet slots in wasm memory.
//
// TUN has no recvmmsg: receive reads in a loop until EAGAIN or the batch is full (the fd is
// non-blocking; the director polls it).
//
// Offloads (`offload: true`): IFF_VNET_HDR, a 10-byte virtio_net_hdr in front of each
// packet, and TUNSETOFFLOAD (checksum, TSO4/6, USO4/6 where the kernel takes them). The
// kernel then hands us GSO super-packets of up to 64 KB with partial checksums and takes
// them back the same way. Each read and write is a readv / writev of two iovecs: the
// header to and from the slot's offload record, the packet to and from the slot. See
// docs/io.md, "Large frames: the virtio-net header".
//
// Without offloads the kernel segments GSO packets and completes checksums before they
// reach us: nothing arrives larger than the device MTU and every checksum is whole. A large
// MTU (up to 65,535) gives fewer, bigger packets; a slot of 65,600 bytes never truncates one.

import { HEADROOM, LinkType, OFFLOAD_SIZE, VNET_HDR_SIZE } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import {
  check,
  configureInterface,
  IFF_MULTI_QUEUE,
  IFF_NO_PI,
  IFF_TUN,
  IFF_VNET_HDR,
  ifreq,
  intOption,
  IoError,
  IOVEC_SIZE,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  pollOne,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_USO4,
  TUN_F_USO6,
  TUNSETIFF,
  TUNSETOFFLOAD,
  TUNSETVNETHDRSZ,
} from "./libc.js";
import { withNetns } from "./netns.js";
import { emptyIoStats, type PacketIO } from "./packet-io.js";
import { type SlotMemory, slotMemory } from "./slot-memory.js";

const EAGAIN = 11;

export interface TunOptions {
  /** Device name (created if absent; "lvs%d" picks a free number). Default "lvs%d". */
  readonly name?: string;
  /** MTU to set; the default leaves the kernel's (1500). Up to 65,535. */
  readonly mtu?: number;
  /**
   * IFF_MULTI_QUEUE: open the same device again (same name, multiQueue) for one fd per
   * worker; the kernel spreads flows across queues by their hash.
   */
  readonly multiQueue?: boolean;
  /**
   * The device's transmit queue length (txqueuelen), which for TUN is the size of the ring
   * of packets waiting for our reads: the kernel never holds packets back for it, it drops
   * what does not fit (tx_dropped). Default: the kernel's (500). See docs/io.md, "The
   * queue at our door".
   */
  readonly txQueueLength?: number;
  /** Bring the device up (SIOCSIFFLAGS IFF_UP). Default true. */
  readonly up?: boolean;
  /** Create the device inside this network namespace (/run/netns/NAME). */
  readonly netns?: string;
  /**
   * Carry a virtio_net_hdr with each packet and take GSO super-packets and partial
   * checksums (IFF_VNET_HDR + TUNSETOFFLOAD). Default false. Every queue of a multi-queue
   * device must agree.
   */
  readonly offload?: boolean;
}

/** What TUNSETOFFLOAD granted. */
export interface TunOffloads {
  readonly csum: boolean;
  readonly tso4: boolean;
  readonly tso6: boolean;
  /** UDP segmentation offload (Linux 6.2+). */
  readonly uso4: boolean;
  readonly uso6: boolean;
}

const NO_OFFLOADS: TunOffloads = { csum: false, tso4: false, tso6: false, uso4: false, uso6: false };

/** Asks for the offloads, most first; the kernel refuses flags it does not know (EINVAL). */
function setOffloads(fd: number, name: string): TunOffloads {
  const c = libc();
  const tries = [TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM];
  for (const flags of tries) {
    if (c.ioctl(fd, TUNSETOFFLOAD, BigInt(flags)) === 0) {
      return {
        csum: true,
        tso4: (flags & TUN_F_TSO4) !== 0,
        tso6: (flags & TUN_F_TSO6) !== 0,
        uso4: (flags & TUN_F_USO4) !== 0,
        uso6: (flags & TUN_F_USO6) !== 0,
      };
    }
    if (c.errno() !== 22) throw new IoError(c.errno(), `setting the offloads of TUN ${name}`);
  }
  throw new IoError(22, `setting the offloads of TUN ${name}`, "the kernel takes not even TUN_F_CSUM");
}

/**
 * Per-slot iovec pairs for a read with offloads: [header -> slot's offload record, packet ->
 * slot], and the same table for writes with only the header iovecs filled (each write aims
 * its packet iovec). Shared by TunDevice and UringTunDevice.
 */
export function slotIovecTables(slots: PacketSlots, memory: bigint): { receive: Buffer; send: Buffer } {
  const receive = Buffer.alloc(slots.count * 2 * IOVEC_SIZE);
  const send = Buffer.alloc(slots.count * 2 * IOVEC_SIZE);
  const b = Number(memory);
  for (let s = 0; s < slots.count; s++) {
    const at = s * 2 * IOVEC_SIZE;
    const record = BigInt(b + slots.offloadBase + s * OFFLOAD_SIZE);
    receive.writeBigUInt64LE(record, at);
    receive.writeBigUInt64LE(BigInt(VNET_HDR_SIZE), at + 8);
    receive.writeBigUInt64LE(BigInt(b + slots.slotAddress(s) + HEADROOM), at + 16);
    receive.writeBigUInt64LE(BigInt(slots.capacity), at + 24);
    send.writeBigUInt64LE(record, at);
    send.writeBigUInt64LE(BigInt(VNET_HDR_SIZE), at + 8);
  }
  return { receive, send };
}

/** Per-slot iovec pairs (header -> offload record, packet -> slot) for readv, and one pair for writev. */
class VnetIovecs {
  readonly receive: Buffer;
  readonly send = Buffer.alloc(2 * IOVEC_SIZE);
  private readonly sendWords: Uint32Array;
  readonly receiveBase: bigint;
  readonly sendBase: bigint;
  constructor(
    readonly slots: PacketSlots,
    /** The wasm memory's address these iovecs were built for. */
    readonly memory: bigint,
  ) {
    const c = libc();
    const b = Number(memory);
    this.receive = slotIovecTables(slots, memory).receive;
    this.receiveBase = c.address(this.receive);
    this.sendBase = c.address(this.send);
    this.sendWords = new Uint32Array(this.send.buffer, this.send.byteOffset, 8);
    this.memoryBase = b;
  }
  private readonly memoryBase: number;
  /** Points the send pair at slot s's record and at `length` bytes from `offset` in its slot. */
  aim(s: number, offset: number, length: number): void {
    const w = this.sendWords;
    const rec = this.memoryBase + this.slots.offloadBase + s * OFFLOAD_SIZE;
    const pkt = this.memoryBase + this.slots.slotAddress(s) + offset;
    w[0] = rec >>> 0;
    w[1] = Math.floor(rec / 0x100000000);
    w[2] = VNET_HDR_SIZE;
    w[3] = 0;
    w[4] = pkt >>> 0;
    w[5] = Math.floor(pkt / 0x100000000);
    w[6] = length;
    w[7] = 0;
  }
}

export class TunDevice implements PacketIO {
  readonly linkType = LinkType.RawIp;
  readonly stats = emptyIoStats();
  /** With offload: reads that were GSO super-packets, and their bytes. */
  readonly gso = { received: 0, receivedBytes: 0, sent: 0 };
  private closed = false;
  private iovecs: VnetIovecs | undefined;

  private constructor(
    readonly name: string,
    readonly fd: number,
    readonly netns: string | undefined,
    /** The device carries a virtio_net_hdr with each packet (IFF_VNET_HDR). */
    readonly offload: boolean,
    /** The offloads TUNSETOFFLOAD granted (all false without `offload`). */
    readonly offloads: TunOffloads,
  ) {}

  /** Opens (creating if needed) a TUN device, or one more queue of a multi-queue device. */
  static open(options: TunOptions = {}): TunDevice {
    const c = libc();
    const name = options.name ?? "lvs%d";
    if (options.mtu !== undefined && (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65535)) {
      throw new RangeError(`TUN mtu ${options.mtu} is not an integer in 68..65535`);
    }
    const q = options.txQueueLength;
    if (q !== undefined && (!Number.isInteger(q) || q < 1 || q > 1_000_000)) {
      throw new RangeError(`TUN txQueueLength ${q} is not an integer in 1..1000000`);
    }
    return withNetns(options.netns, () => {
      const fd = check(
        c.open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC),
        "opening /dev/net/tun",
        "run as root, and check that /dev/net/tun exists (modprobe tun)",
      );
      try {
        const req = ifreq(name);
        const offload = options.offload === true;
        req.writeInt16LE(IFF_TUN | IFF_NO_PI | (options.multiQueue ? IFF_MULTI_QUEUE : 0) | (offload ? IFF_VNET_HDR : 0), 16);
        const rc = c.ioctl(fd, TUNSETIFF, c.address(req));
        if (rc < 0) {
          const errno = c.errno();
          throw new IoError(
            errno,
            `creating TUN device ${name}`,
            errno === 22
              ? "an existing device of that name differs (TAP, or single-queue vs multi-queue)"
              : errno === 1
                ? "run as root (CAP_NET_ADMIN)"
                : undefined,
          );
        }
        const actual = req.toString("latin1", 0, 16).replace(/\0.*$/s, "");
        let offloads = NO_OFFLOADS;
        if (offload) {
          check(c.ioctl(fd, TUNSETVNETHDRSZ, c.address(intOption(VNET_HDR_SIZE))), `setting the vnet header size of TUN ${actual}`);
          offloads = setOffloads(fd, actual);
        }
        if (options.mtu !== undefined) configureInterface(actual, { mtu: options.mtu });
        if (q !== undefined) configureInterface(actual, { txQueueLength: q });
        if (options.up !== false) configureInterface(actual, { up: true });
        return new TunDevice(actual, fd, options.netns, offload, offloads);
      } catch (e) {
        c.close(fd);
        throw e;
      }
    });
  }

  receive(slots: PacketSlots, first: number, max: number, timeoutMs = 0): number {
    if (this.closed) throw new Error(`TUN ${this.name}: closed`);
    const c = libc();
    const mem = slotMemory(slots);
    const capacity = slots.capacity;
    const end = Math.min(first + max, slots.count);
    let slot = first;
    let waited = timeoutMs <= 0;
    const vnet = this.offload ? this.vnetIovecs(slots, mem) : undefined;
    const bytes = slots.bytes;
    while (slot < end) {
      const rc = vnet ? c.readv(this.fd, vnet.receiveBase + BigInt(slot * 2 * IOVEC_SIZE), 2) : c.read(this.fd, mem.receiveAddress(slot), capacity);
      if (rc < 0) {
        const errno = c.errno();
        if (errno !== EAGAIN) throw new IoError(errno, `reading TUN ${this.name}`);
        if (slot === first && !waited) {
          waited = true;
          if (pollOne(this.fd, timeoutMs)) continue;
        }
        break;
      }
      if (rc === 0) break;
      if (vnet) {
        if (rc <= VNET_HDR_SIZE) continue; // a header alone: nothing to forward
        mem.words.receivedWithOffload(slot, rc - VNET_HDR_SIZE, LinkType.RawIp);
        if (bytes[slots.offloadBase + slot * OFFLOAD_SIZE + 1] !== 0) {
          this.gso.received++;
          this.gso.receivedBytes += rc - VNET_HDR_SIZE;
        }
      } else {
        mem.words.received(slot, rc, LinkType.RawIp);
      }
      slot++;
    }
    const n = slot - first;
    this.stats.received += n;
    return n;
  }

  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    if (this.closed) throw new Error(`TUN ${this.name}: closed`);
    const c = libc();
    const mem = slotMemory(slots);
    let sent = 0;
    const vnet = this.offload ? this.vnetIovecs(slots, mem) : undefined;
    const bytes = vnet ? slots.bytes : undefined;
    for (let i = 0; i < count; i++) {
      const slot = indices[i];
      let rc: number;
      if (vnet) {
        vnet.aim(slot, mem.words.offset(slot), mem.words.length(slot));
        rc = c.writev(this.fd, vnet.sendBase, 2);
        if (rc > 0 && bytes![slots.offloadBase + slot * OFFLOAD_SIZE + 1] !== 0) this.gso.sent++;
      } else {
        rc = c.write(this.fd, mem.packetAddress(slot), mem.words.length(slot));
      }
      if (rc < 0) {
        this.stats.sendErrors++;
        if (c.errno() === EAGAIN) break;
        continue; // EINVAL: a packet the kernel refuses; the others still go
      }
      sent++;
    }
    this.stats.sent += sent;
    return sent;
  }

  private vnetIovecs(slots: PacketSlots, mem: SlotMemory): VnetIovecs {
    if (this.iovecs?.slots !== slots || this.iovecs.memory !== mem.base) this.iovecs = new VnetIovecs(slots, mem.base);
    return this.iovecs;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}
