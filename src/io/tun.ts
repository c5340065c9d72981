// A TUN device as a PacketIO: bare IP packets (IFF_TUN | IFF_NO_PI, LinkType.RawIp), read
// and written straight from packet slots in wasm memory.
//
// TUN has no recvmmsg: receive reads in a loop until EAGAIN or the batch is full (the fd is
// non-blocking; the director polls it). Without IFF_VNET_HDR the device offers no offloads,
// so the kernel segments GSO packets and completes checksums before they reach us: nothing
// arrives larger than the device MTU and every checksum is whole. A large MTU (up to 65,535)
// gives fewer, bigger packets; a slot of 65,600 bytes never truncates one. See docs/io.md.

import { LinkType } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import {
  check,
  configureInterface,
  IFF_MULTI_QUEUE,
  IFF_NO_PI,
  IFF_TUN,
  ifreq,
  IoError,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  pollOne,
  TUNSETIFF,
} from "./libc.js";
import { withNetns } from "./netns.js";
import { emptyIoStats, type PacketIO } from "./packet-io.js";
import { slotMemory } from "./slot-memory.js";

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
  /** Bring the device up (SIOCSIFFLAGS IFF_UP). Default true. */
  readonly up?: boolean;
  /** Create the device inside this network namespace (/run/netns/NAME). */
  readonly netns?: string;
}

export class TunDevice implements PacketIO {
  readonly linkType = LinkType.RawIp;
  readonly stats = emptyIoStats();
  private closed = false;

  private constructor(
    readonly name: string,
    readonly fd: number,
    readonly netns: string | undefined,
  ) {}

  /** Opens (creating if needed) a TUN device, or one more queue of a multi-queue device. */
  static open(options: TunOptions = {}): TunDevice {
    const c = libc();
    const name = options.name ?? "lvs%d";
    if (options.mtu !== undefined && (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65535)) {
      throw new RangeError(`TUN mtu ${options.mtu} is not an integer in 68..65535`);
    }
    return withNetns(options.netns, () => {
      const fd = check(
        c.open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC),
        "opening /dev/net/tun",
        "run as root, and check that /dev/net/tun exists (modprobe tun)",
      );
      try {
        const req = ifreq(name);
        req.writeInt16LE(IFF_TUN | IFF_NO_PI | (options.multiQueue ? IFF_MULTI_QUEUE : 0), 16);
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
        if (options.mtu !== undefined) configureInterface(actual, { mtu: options.mtu });
        if (options.up !== false) configureInterface(actual, { up: true });
        return new TunDevice(actual, fd, options.netns);
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
    while (slot < end) {
      const rc = c.read(this.fd, mem.receiveAddress(slot), capacity);
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
      mem.words.received(slot, rc, LinkType.RawIp);
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
    for (let i = 0; i < count; i++) {
      const slot = indices[i];
      const rc = c.write(this.fd, mem.packetAddress(slot), mem.words.length(slot));
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}
