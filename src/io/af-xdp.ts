// An AF_XDP socket on one queue of one interface as a PacketIO: whole Ethernet frames
// (LinkType.Ethernet) that an XDP program redirects to rings in memory we share with the
// kernel, so a packet costs no system call on receive and no sk_buff before it reaches us.
// libxdp (libxdp.ts) registers the UMEM, maps the rings, and loads and attaches its default
// redirect program; the ring operations are ours (xsk-ring.ts).
//
// Where the frames live (the UMEM), docs/io.md "AF_XDP sockets":
// - "wasm" (tried first): the UMEM is the wasm memory's packet slot area itself. The kernel
//   receives into a pool of 4 KiB frames carved from the last slots (`poolFirst` onwards,
//   which the director then leaves alone: `slotLimit`), and each frame is moved into the
//   slot the director asked for with one copyWithin inside the wasm memory (a native
//   memmove, no JavaScript loop, nothing leaves the wasm memory). Frames are sent straight
//   from the slots: a TX descriptor points at the packet where the datapath rewrote it.
// - "separate": a UMEM of its own (mmap), for when the kernel refuses to register the wasm
//   memory; frames are copied in and out with a typed-array set.
//
// The chunks are "unaligned" (XDP_UMEM_UNALIGNED_CHUNK_FLAG) so that a TX descriptor may
// point anywhere in a slot. The socket is bound in copy mode (XDP_COPY: veth and most
// drivers have no zero-copy AF_XDP, and it keeps the slots ours once send() returns, see
// send()). XDP_USE_NEED_WAKEUP: the TX ring is kicked with sendto only when the kernel asks.
//
// The program takes every frame of the queue: the director's own kernel no longer sees
// anything that arrives on the interface (not even ARP replies). See docs/io.md.

import { HEADROOM, LinkType } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import { check, interfaceIndex, interfaceMac, IoError, libc, MSG_DONTWAIT, pollOne } from "./libc.js";
import { libxdp } from "./libxdp.js";
import { withNetns } from "./netns.js";
import { emptyIoStats, type PacketIO, SlotWords } from "./packet-io.js";
import { XskConsumer, XskProducer } from "./xsk-ring.js";

/** Bytes of a UMEM frame (chunk): one page. */
export const XDP_FRAME_SIZE = 4096;
/** Bytes the kernel keeps in front of a received frame (XDP_PACKET_HEADROOM). */
const XDP_PACKET_HEADROOM = 256;
/** Largest frame received into a 4 KiB chunk. */
export const XDP_MAX_FRAME = XDP_FRAME_SIZE - XDP_PACKET_HEADROOM;
const PAGE = 4096;

// include/uapi/linux/if_xdp.h and if_link.h
const XDP_COPY = 1 << 1;
const XDP_USE_NEED_WAKEUP = 1 << 3;
const XDP_UMEM_UNALIGNED_CHUNK_FLAG = 1 << 0;
const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;
const SOL_XDP = 283;
const XDP_STATISTICS = 7;
const PROT_READ_WRITE = 3;
const MAP_PRIVATE_ANONYMOUS = 0x22;
const EAGAIN = 11;
const EBUSY = 16;
const ENOBUFS = 105;
/** How long attach() keeps trying while the queue is busy (a socket closed just before). */
const BUSY_RETRY_MS = 1000;
/** How long send() waits for the kernel to take a batch off the TX ring. */
const TX_DRAIN_MS = 200;

export interface AfXdpOptions {
  readonly interface: string;
  /** Open the socket inside this network namespace (/run/netns/NAME). */
  readonly netns?: string;
  /** The queue to bind to. Default 0; one socket per queue. */
  readonly queue?: number;
  /** "native" (XDP in the driver; veth has it, the default) or "generic" (XDP on the sk_buff, any driver, slower). */
  readonly mode?: "native" | "generic";
  /** Frames in the receive pool (a power of two, 64..16384). Default 1024. */
  readonly frames?: number;
  /** "auto" (default): the wasm memory, else a separate UMEM; or force one. */
  readonly umem?: "auto" | "wasm" | "separate";
}

/** Counters the kernel keeps for the socket (XDP_STATISTICS). */
export interface XdpKernelStats {
  rxDropped: number;
  rxInvalidDescs: number;
  txInvalidDescs: number;
  rxRingFull: number;
  rxFillRingEmpty: number;
  txRingEmpty: number;
}

interface Attached {
  slots: PacketSlots;
  umem: bigint;
  xsk: bigint;
  fd: number;
  /** Byte offset of the UMEM in the wasm memory ("wasm"), or -1 ("separate"). */
  wasmStart: number;
  /** The UMEM's bytes (a view into the wasm memory, or of the mmap). */
  bytes: Uint8Array;
  mmap: bigint;
  mmapSize: number;
  /** UMEM address of the frame sendFrame() uses; of the first TX staging frame ("separate"). */
  controlFrame: number;
  txFirst: number;
  words: SlotWords;
}

/** Slots the receive pool of `frames` 4 KiB frames (and a control frame) takes at a slot stride. */
export function xdpPoolSlots(stride: number, frames = 1024): number {
  return Math.ceil(((frames + 1) * XDP_FRAME_SIZE + PAGE) / stride);
}

/** The same for a Balancer whose slots hold `slotCapacity` bytes (the Balancer's default 65,600). */
export function xdpPoolSlotsFor(slotCapacity = 65600, frames = 1024): number {
  return xdpPoolSlots((HEADROOM + slotCapacity + 63) & ~63, frames);
}

export class AfXdpSocket implements PacketIO {
  readonly linkType = LinkType.Ethernet;
  readonly stats = emptyIoStats();
  /** The interface's MAC address. */
  readonly mac: string;
  readonly ifindex: number;
  readonly queue: number;
  readonly offload = false;
  /** Frames in the receive pool. */
  readonly frames: number;
  /** Where the UMEM is: "wasm" (the slot area) or "separate" (copies); undefined before attach(). */
  umemPlacement: "wasm" | "separate" | undefined;
  /** Why the wasm memory could not be the UMEM (when it fell back). */
  fallbackReason: string | undefined;
  /** Slots [slotLimit, count) are this adapter's receive pool (the director stays below). */
  slotLimit: number | undefined;
  /** Kicks of the TX ring (sendto), made only when the kernel set XDP_RING_NEED_WAKEUP. */
  readonly kicks = { tx: 0 };
  private fill = new XskProducer(8);
  private comp = new XskConsumer(8);
  private rx = new XskConsumer(16);
  private tx = new XskProducer(16);
  private a: Attached | undefined;
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly options: AfXdpOptions,
    ifindex: number,
    mac: string,
  ) {
    this.ifindex = ifindex;
    this.mac = mac;
    this.queue = options.queue ?? 0;
    this.frames = options.frames ?? 1024;
  }

  /**
   * Checks that libxdp loads and the interface exists, and reads its MAC; nothing is attached
   * until attach(). Throws one clear line when either is missing.
   */
  static open(options: AfXdpOptions): AfXdpSocket {
    const frames = options.frames ?? 1024;
    if (!Number.isInteger(frames) || frames < 64 || frames > 16384 || (frames & (frames - 1)) !== 0) {
      throw new RangeError(`AF_XDP frames ${frames}: a power of two in 64..16384`);
    }
    const queue = options.queue ?? 0;
    if (!Number.isInteger(queue) || queue < 0) throw new RangeError(`AF_XDP queue ${queue} is not a queue number`);
    libxdp();
    return withNetns(options.netns, () => new AfXdpSocket(options.interface, options, interfaceIndex(options.interface), interfaceMac(options.interface)));
  }

  /** The socket's fd (polls readable when frames wait in the RX ring); -1 before attach(). */
  get fd(): number {
    return this.a?.fd ?? -1;
  }

  /**
   * Registers the UMEM and creates the socket, which attaches libxdp's program to the
   * interface. `poolFirst`: the first slot of the receive pool (xdpPoolSlots() slots up to
   * slots.count); the director must use only slots below it (slotLimit says so).
   */
  attach(slots: PacketSlots, poolFirst = slots.count - xdpPoolSlots(slots.stride, this.frames)): void {
    if (this.closed) throw new Error(`AF_XDP ${this.name}: closed`);
    if (this.a) throw new Error(`AF_XDP ${this.name}: attached already`);
    const want = this.options.umem ?? "auto";
    let wasmError: Error | undefined;
    if (want !== "separate") {
      try {
        this.a = this.createRetrying(slots, poolFirst, "wasm");
      } catch (e) {
        if (want === "wasm" || !(e instanceof IoError) || !isUmemRefusal(e)) throw e;
        wasmError = e;
      }
    }
    if (!this.a) this.a = this.createRetrying(slots, poolFirst, "separate");
    this.umemPlacement = this.a.wasmStart >= 0 ? "wasm" : "separate";
    this.fallbackReason = wasmError?.message;
    this.slotLimit = this.a.wasmStart >= 0 ? poolFirst : undefined;
  }

  /**
   * create(), again while the queue is busy for up to BUSY_RETRY_MS: the kernel frees the
   * queue of a socket closed just before (this process's, or an lvsd that just exited) from
   * a workqueue (xp_release_deferred), so a socket opened right after may find it taken.
   */
  private createRetrying(slots: PacketSlots, poolFirst: number, placement: "wasm" | "separate"): Attached {
    const deadline = performance.now() + BUSY_RETRY_MS;
    for (;;) {
      try {
        return this.create(slots, poolFirst, placement);
      } catch (e) {
        if (!(e instanceof IoError) || e.code !== "EBUSY" || !/creating the socket/.test(e.message) || performance.now() > deadline) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }

  private create(slots: PacketSlots, poolFirst: number, placement: "wasm" | "separate"): Attached {
    const c = libc();
    const x = libxdp();
    const frames = this.frames;
    let area: bigint;
    let size: number;
    let wasmStart = -1;
    let bytes: Uint8Array;
    let mmap = 0n;
    let mmapSize = 0;
    let rxFirst: number;
    let controlFrame: number;
    let txFirst = 0;
    if (placement === "wasm") {
      if (!Number.isInteger(poolFirst) || poolFirst < 1 || poolFirst >= slots.count) {
        throw new RangeError(`AF_XDP ${this.name}: pool slot ${poolFirst} is not in 1..${slots.count - 1}`);
      }
      const memory = slots.bytes;
      const base = c.address(memory.buffer as ArrayBuffer);
      // Page-aligned start at or below the slot area; the kernel requires it.
      const misalign = Number(base % BigInt(PAGE));
      wasmStart = Math.floor((slots.slotsBase + misalign) / PAGE) * PAGE - misalign;
      if (wasmStart < 0) wasmStart += PAGE;
      const end = Math.min(memory.byteLength, Math.ceil((slots.slotAddress(slots.count) + misalign) / PAGE) * PAGE - misalign);
      size = end - wasmStart;
      area = base + BigInt(wasmStart);
      bytes = memory.subarray(wasmStart, end);
      const poolAt = Math.ceil((slots.slotAddress(poolFirst) + misalign) / PAGE) * PAGE - misalign - wasmStart;
      if (poolAt + (frames + 1) * XDP_FRAME_SIZE > size) {
        throw new RangeError(
          `AF_XDP ${this.name}: slots ${poolFirst}..${slots.count - 1} cannot hold ${frames} frames of 4 KiB (give the balancer ${xdpPoolSlots(slots.stride, frames)} more slots)`,
        );
      }
      rxFirst = poolAt;
      controlFrame = poolAt + frames * XDP_FRAME_SIZE;
    } else {
      // RX frames, a TX staging frame per TX ring entry, and the control frame.
      size = (frames + frames + 1) * XDP_FRAME_SIZE;
      mmap = c.mmap(0n, size, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0n);
      if (mmap === 0xffffffffffffffffn || mmap === -1n || mmap === 0n) throw new IoError(c.errno(), `AF_XDP ${this.name}: mapping a UMEM of ${size} bytes`);
      mmapSize = size;
      area = mmap;
      bytes = new Uint8Array(c.view(mmap, size));
      rxFirst = 0;
      txFirst = frames * XDP_FRAME_SIZE;
      controlFrame = 2 * frames * XDP_FRAME_SIZE;
    }
    this.fill = new XskProducer(8);
    this.comp = new XskConsumer(8);
    this.rx = new XskConsumer(16);
    this.tx = new XskProducer(16);
    const umemOut = Buffer.alloc(8);
    const umemConfig = Buffer.alloc(32); // struct xsk_umem_config (20 bytes used), the rest zero
    umemConfig.writeUInt32LE(frames, 0); // fill_size
    umemConfig.writeUInt32LE(frames, 4); // comp_size
    umemConfig.writeUInt32LE(XDP_FRAME_SIZE, 8); // frame_size
    umemConfig.writeUInt32LE(0, 12); // frame_headroom
    umemConfig.writeUInt32LE(XDP_UMEM_UNALIGNED_CHUNK_FLAG, 16);
    const unmap = () => {
      if (mmap !== 0n) c.munmap(mmap, mmapSize);
    };
    // In the namespace too: libxdp opens the UMEM's socket here, and the first socket on the
    // UMEM is that one (bound later by interface index, which names a device per namespace).
    const rc = withNetns(this.options.netns, () =>
      x.umemCreate(c.address(umemOut), area, BigInt(size), this.fill.address, this.comp.address, c.address(umemConfig)),
    );
    if (rc < 0) {
      unmap();
      throw new IoError(-rc, `AF_XDP ${this.name}: registering a UMEM of ${size} bytes in the ${placement === "wasm" ? "wasm memory" : "mapped memory"}`);
    }
    const umem = umemOut.readBigUInt64LE(0);
    const xskOut = Buffer.alloc(8);
    const sockConfig = Buffer.alloc(32); // struct xsk_socket_config, the rest zero
    sockConfig.writeUInt32LE(frames, 0); // rx_size
    sockConfig.writeUInt32LE(frames, 4); // tx_size
    sockConfig.writeUInt32LE(0, 8); // libbpf_flags: 0 = libxdp loads its default program
    sockConfig.writeUInt32LE(this.options.mode === "generic" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, 12);
    sockConfig.writeUInt16LE(XDP_COPY | XDP_USE_NEED_WAKEUP, 16);
    const src = withNetns(this.options.netns, () =>
      x.socketCreate(c.address(xskOut), this.name, this.queue, umem, this.rx.address, this.tx.address, c.address(sockConfig)),
    );
    if (src < 0) {
      x.umemDelete(umem);
      unmap();
      throw new IoError(
        -src,
        `AF_XDP ${this.name}: creating the socket on queue ${this.queue} and attaching the XDP program (${this.options.mode ?? "native"} mode)`,
        xdpHint(-src),
      );
    }
    const xsk = xskOut.readBigUInt64LE(0);
    for (const ring of [this.fill, this.comp, this.rx, this.tx]) ring.map();
    // Every receive frame to the kernel.
    const { count, index } = this.fill.reserve(frames);
    for (let i = 0; i < count; i++) setAddress(this.fill.entries, (index + i) & this.fill.mask, rxFirst + i * XDP_FRAME_SIZE);
    this.fill.submit();
    return { slots, umem, xsk, fd: x.socketFd(xsk), wasmStart, bytes, mmap, mmapSize, controlFrame, txFirst, words: new SlotWords(slots) };
  }

  private attached(slots: PacketSlots): Attached {
    if (this.closed) throw new Error(`AF_XDP ${this.name}: closed`);
    const a = this.a;
    if (!a) throw new Error(`AF_XDP ${this.name}: not attached (call attach(slots) first)`);
    if (a.slots !== slots) throw new Error(`AF_XDP ${this.name}: attached to other packet slots`);
    if (a.wasmStart >= 0 && a.bytes.buffer !== slots.bytes.buffer) throw new Error(`AF_XDP ${this.name}: the wasm memory was replaced (it must never grow)`);
    return a;
  }

  receive(slots: PacketSlots, first: number, max: number, timeoutMs = 0): number {
    const a = this.attached(slots);
    const limit = this.slotLimit ?? slots.count;
    const want = Math.min(max, limit - first);
    if (want <= 0) return 0;
    let { count, index } = this.rx.peek(want);
    if (count === 0) {
      // A driver that waits to be woken for the fill ring gets it from poll(2) (never so in copy mode).
      if (timeoutMs <= 0 && this.fill.needsWakeup()) pollOne(a.fd, 0);
      if (timeoutMs <= 0 || !pollOne(a.fd, timeoutMs)) return 0;
      ({ count, index } = this.rx.peek(want));
      if (count === 0) return 0;
    }
    const memory = slots.bytes;
    const words = a.words;
    words.refresh();
    const rxRing = this.rx.entries;
    const rxMask = this.rx.mask;
    const fill = this.fill.reserve(count); // never short: the fill ring has room for every frame
    const fillRing = this.fill.entries;
    const capacity = slots.capacity;
    for (let i = 0; i < count; i++) {
      const d = ((index + i) & rxMask) << 2;
      const lo = rxRing[d];
      const hi = rxRing[d + 1];
      // Unaligned chunks: the frame's address in the low 48 bits, the data's offset in it above.
      const frame = lo + (hi & 0xffff) * 0x100000000;
      const at = frame + (hi >>> 16);
      let length = rxRing[d + 2];
      if (length > capacity) {
        this.stats.truncated++;
        length = capacity;
      }
      const slot = first + i;
      const to = slots.slotAddress(slot) + HEADROOM;
      if (a.wasmStart >= 0) memory.copyWithin(to, a.wasmStart + at, a.wasmStart + at + length);
      else memory.set(a.bytes.subarray(at, at + length), to);
      words.received(slot, length, LinkType.Ethernet);
      setAddress(fillRing, (fill.index + i) & this.fill.mask, frame);
    }
    this.rx.release();
    this.fill.submit();
    this.stats.received += count;
    return count;
  }

  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    const a = this.attached(slots);
    if (count === 0) return 0;
    const words = a.words;
    words.refresh();
    const { count: room, index } = this.tx.reserve(count);
    const ring = this.tx.entries;
    const mask = this.tx.mask;
    const memory = slots.bytes;
    let queued = 0;
    for (let i = 0; i < room; i++) {
      const s = indices[i];
      const length = words.length(s);
      if (length < 14 || length > XDP_FRAME_SIZE) {
        this.stats.sendErrors++; // a frame larger than a UMEM chunk (MTU over 4 KiB) or empty
        continue;
      }
      const start = slots.slotAddress(s) + words.offset(s);
      let address: number;
      if (a.wasmStart >= 0) {
        address = start - a.wasmStart;
      } else {
        address = a.txFirst + ((index + queued) & mask) * XDP_FRAME_SIZE;
        a.bytes.set(memory.subarray(start, start + length), address);
      }
      const d = ((index + queued) & mask) << 2;
      setAddress(ring, (index + queued) & mask, address, 4);
      ring[d + 2] = length;
      ring[d + 3] = 0;
      queued++;
    }
    // Give back what was reserved for the frames skipped above.
    this.tx.unreserve(room - queued);
    this.stats.sendErrors += count - room; // the TX ring was full
    if (queued === 0) return 0;
    this.tx.submit();
    const taken = this.drainTx(a);
    this.stats.sent += queued - taken;
    this.stats.sendErrors += taken;
    return queued - taken;
  }

  /**
   * Kicks the kernel until it has taken every TX descriptor off the ring, and empties the
   * completion ring. In copy mode the kernel copies each frame into an sk_buff as it takes
   * it, so once this returns the slots are ours again (the director reuses them for the next
   * batch). Returns how many descriptors are still on the ring after TX_DRAIN_MS (a link
   * that is down): counted as failures.
   */
  private drainTx(a: Attached): number {
    const c = libc();
    let deadline = 0;
    for (;;) {
      if (this.tx.needsWakeup()) {
        this.kicks.tx++;
        if (c.sendto(a.fd, 0n, 0, MSG_DONTWAIT, 0n, 0) < 0) {
          const errno = c.errno();
          if (errno !== EAGAIN && errno !== EBUSY && errno !== ENOBUFS) {
            this.drainCompletions();
            return this.tx.pending();
          }
        }
      }
      this.drainCompletions();
      const pending = this.tx.pending();
      if (pending === 0) return 0;
      const now = performance.now();
      if (deadline === 0) deadline = now + TX_DRAIN_MS;
      else if (now > deadline) return pending;
    }
  }

  private drainCompletions(): void {
    const { count } = this.comp.peek(0xffffffff);
    if (count > 0) this.comp.release();
  }

  /**
   * Sends one frame from a JavaScript buffer (a copy into the control frame; for ARP and
   * neighbour discovery, not for the data path). Returns false when the kernel refused it.
   */
  sendFrame(frame: Uint8Array): boolean {
    const a = this.a;
    if (this.closed || !a) throw new Error(`AF_XDP ${this.name}: ${this.closed ? "closed" : "not attached"}`);
    if (frame.length < 14 || frame.length > XDP_FRAME_SIZE) {
      this.stats.sendErrors++;
      return false;
    }
    const { count, index } = this.tx.reserve(1);
    if (count === 0) {
      this.stats.sendErrors++;
      return false;
    }
    a.bytes.set(frame, a.controlFrame);
    const mask = this.tx.mask;
    setAddress(this.tx.entries, index & mask, a.controlFrame, 4);
    this.tx.entries[((index & mask) << 2) + 2] = frame.length;
    this.tx.entries[((index & mask) << 2) + 3] = 0;
    this.tx.submit();
    const ok = this.drainTx(a) === 0;
    if (ok) this.stats.sent++;
    else this.stats.sendErrors++;
    return ok;
  }

  /** The kernel's counters for this socket (getsockopt XDP_STATISTICS). */
  kernelStats(): XdpKernelStats {
    const a = this.a;
    if (!a) throw new Error(`AF_XDP ${this.name}: not attached`);
    const c = libc();
    const value = Buffer.alloc(48);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(48, 0);
    check(c.getsockopt(a.fd, SOL_XDP, XDP_STATISTICS, c.address(value), c.address(len)), `AF_XDP ${this.name}: reading XDP_STATISTICS`);
    const n = (i: number) => Number(value.readBigUInt64LE(i * 8));
    return { rxDropped: n(0), rxInvalidDescs: n(1), txInvalidDescs: n(2), rxRingFull: n(3), rxFillRingEmpty: n(4), txRingEmpty: n(5) };
  }

  /** Deletes the socket (libxdp detaches its program with the interface's last socket) and the UMEM. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const a = this.a;
    if (!a) return;
    const x = libxdp();
    // In the socket's namespace: libxdp detaches its program by interface index.
    withNetns(this.options.netns, () => x.socketDelete(a.xsk));
    x.umemDelete(a.umem);
    if (a.mmap !== 0n) libc().munmap(a.mmap, a.mmapSize);
  }
}

/** Writes a u64 UMEM address (below 4 GiB: wasm32 and our mmap) into entry `entry` of `words`. */
function setAddress(words: Uint32Array, entry: number, address: number, wordsPerEntry = 2): void {
  const at = entry * wordsPerEntry;
  words[at] = address >>> 0;
  words[at + 1] = Math.floor(address / 0x100000000);
}

/** The kernel refused to register this memory as a UMEM (then a separate one may do). */
function isUmemRefusal(e: IoError): boolean {
  return /registering a UMEM/.test(e.message);
}

function xdpHint(errno: number): string | undefined {
  switch (errno) {
    case 95: // EOPNOTSUPP
      return "the driver has no native XDP: try generic mode";
    case 16: // EBUSY
      return "another XDP program or AF_XDP socket holds this queue";
    case 19: // ENODEV
      return "no such interface in this network namespace";
    case 1: // EPERM
      return "needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW)";
    case 22: // EINVAL
      return "the queue does not exist, or the MTU is too large for XDP";
    default:
      return undefined;
  }
}
