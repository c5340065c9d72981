// A TUN device read and written through io_uring: a batch of reads in one system call, and
// a batch of writes in another, instead of one read(2) / write(2) per packet (TUN has no
// recvmmsg / sendmmsg). Same PacketIO contract, same slots, same virtio-net header handling
// as TunDevice, which opens the device; this class only moves its packets.
//
// Receive queues `want` reads (one per free slot, each into the slot behind the headroom),
// enters once and waits for them all: on a non-blocking TUN fd each read either takes one
// queued packet or fails at once with EAGAIN. `want` adapts: it doubles while every read
// finds a packet and falls back toward twice the last count when the queue runs dry, so an
// idle device does not cost 256 failed reads a wake-up. A packet that lands after an
// earlier read of the same batch failed leaves a hole; it is moved down (a copy, rare) so
// that the batch stays contiguous, as PacketIO promises.
//
// Send queues one write per packet and enters once. Batches of up to `smallBatch` packets
// (default 8) go by plain read / write instead (see SMALL_BATCH). See docs/io.md ("TUN
// through io_uring") and docs/benchmarks/packet-path.md for what it buys.

import { HEADROOM, LinkType, OFFLOAD_SIZE, VNET_HDR_SIZE } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import { IOVEC_SIZE, libc, pollOne } from "./libc.js";
import { emptyIoStats, type PacketIO } from "./packet-io.js";
import { slotMemory, type SlotMemory } from "./slot-memory.js";
import { slotIovecTables, TunDevice } from "./tun.js";
import { IoUring, IoUringOp } from "./uring.js";

const EAGAIN = 11;
/**
 * Batches of at most this many packets go through plain read / write: a ring round (the
 * reads that find nothing included) costs more than a few system calls. Measured: with the
 * ring for every batch, request / response traffic (wrk keep-alive, 32 connections, 1-3
 * packets a wake-up) ran at a third of the plain rate; docs/benchmarks/packet-path.md.
 */
export const SMALL_BATCH = 8;
/** The fewest reads a ring round queues. */
const MIN_RING_BATCH = 8;

export interface UringTunOptions {
  /** Submission ring size, a power of two at least the largest batch. Default 512. */
  readonly entries?: number;
  /** Batches up to this many packets use plain read / write (SMALL_BATCH); 0: the ring always. */
  readonly smallBatch?: number;
}

/** Per-slot iovec pairs for readv / writev with offloads: [record, packet] each. */
class SlotIovecs {
  readonly receive: Buffer;
  readonly send: Buffer;
  /** Addresses of the two iovec arrays, as Numbers (user-space addresses fit in 53 bits). */
  readonly receiveAt: number;
  readonly sendAt: number;
  private readonly sendWords: Uint32Array;
  constructor(
    readonly slots: PacketSlots,
    readonly memory: bigint,
  ) {
    const c = libc();
    ({ receive: this.receive, send: this.send } = slotIovecTables(slots, memory));
    this.memoryAt = Number(memory);
    this.receiveAt = Number(c.address(this.receive));
    this.sendAt = Number(c.address(this.send));
    this.sendWords = new Uint32Array(this.send.buffer, this.send.byteOffset, this.send.byteLength >>> 2);
  }
  /** The wasm memory's address as a Number, converted once (aim() runs per packet). */
  private readonly memoryAt: number;
  /** Points slot s's packet iovec at `length` bytes from `offset` in its slot. */
  aim(s: number, offset: number, length: number): void {
    const pkt = this.memoryAt + this.slots.slotAddress(s) + offset;
    const w = (s * 2 * IOVEC_SIZE + IOVEC_SIZE) >>> 2;
    this.sendWords[w] = pkt >>> 0;
    this.sendWords[w + 1] = Math.floor(pkt / 0x100000000);
    this.sendWords[w + 2] = length;
    this.sendWords[w + 3] = 0;
  }
}

export class UringTunDevice implements PacketIO {
  readonly linkType = LinkType.RawIp;
  readonly stats = emptyIoStats();
  readonly name: string;
  readonly fd: number;
  readonly offload: boolean;
  readonly ring: IoUring;
  /** Holes moved down to keep a batch contiguous (a packet arrived after a read of the batch failed). */
  holesFilled = 0;
  /** Reads that failed with an error other than EAGAIN (the packet, if any, is lost). */
  readErrors = 0;
  private want: number;
  private readonly smallBatch: number;
  /** Batches moved with plain read / write (too small for the ring to pay). */
  plainReceives = 0;
  plainSends = 0;
  private iovecs: SlotIovecs | undefined;
  private readonly results: Int32Array;
  private readonly lengths: Int32Array;
  private closed = false;

  /** Moves `tun`'s packets through a new io_uring; close() closes both. */
  constructor(
    readonly tun: TunDevice,
    options: UringTunOptions = {},
  ) {
    this.name = tun.name;
    this.fd = tun.fd;
    this.offload = tun.offload;
    this.smallBatch = options.smallBatch ?? SMALL_BATCH;
    if (!Number.isInteger(this.smallBatch) || this.smallBatch < 0) throw new RangeError(`smallBatch ${this.smallBatch} must be a non-negative integer`);
    this.ring = new IoUring(options.entries ?? 512);
    this.want = Math.max(this.smallBatch, MIN_RING_BATCH);
    this.results = new Int32Array(this.ring.entries);
    this.lengths = new Int32Array(this.ring.entries);
  }

  /** The kernel's GSO counters live on the device. */
  get gso(): TunDevice["gso"] {
    return this.tun.gso;
  }

  private slotIovecs(slots: PacketSlots, mem: SlotMemory): SlotIovecs {
    if (this.iovecs?.slots !== slots || this.iovecs.memory !== mem.base) this.iovecs = new SlotIovecs(slots, mem.base);
    return this.iovecs;
  }

  receive(slots: PacketSlots, first: number, max: number, timeoutMs = 0): number {
    if (this.closed) throw new Error(`TUN ${this.name}: closed`);
    const end = Math.min(first + max, slots.count, first + this.ring.entries);
    let n = this.collect(slots, first, end);
    if (n === 0 && timeoutMs > 0) {
      // The PacketIO contract: wait up to timeoutMs for the first packet, then try again.
      if (pollOne(this.fd, timeoutMs)) n = this.collect(slots, first, end);
    }
    this.stats.received += n;
    return n;
  }

  private collect(slots: PacketSlots, first: number, end: number): number {
    const mem = slotMemory(slots);
    const count = Math.min(end - first, this.want);
    if (count <= 0) return 0;
    if (this.want <= this.smallBatch) {
      // A trickle (request / response): plain reads, one per packet and one that finds the
      // queue empty, cost less than a ring round; switch to the ring once a batch fills.
      const n = this.tun.receive(slots, first, end - first, 0);
      this.plainReceives++;
      this.want = n >= this.smallBatch ? Math.max(MIN_RING_BATCH, 2 * this.smallBatch, n) : this.smallBatch;
      return n;
    }
    const ring = this.ring;
    const vnet = this.offload ? this.slotIovecs(slots, mem) : undefined;
    const base = Number(mem.base);
    for (let i = 0; i < count; i++) {
      const s = first + i;
      if (vnet) ring.queue(IoUringOp.Readv, this.fd, vnet.receiveAt + s * 2 * IOVEC_SIZE, 2, i);
      else ring.queue(IoUringOp.Read, this.fd, base + slots.slotAddress(s) + HEADROOM, slots.capacity, i);
    }
    ring.enter(count);
    const results = this.results;
    ring.reapInto(results);
    const lengths = this.lengths;
    const n = packBatch(slots, first, results, count, vnet !== undefined, lengths);
    // Reads before the first failure kept their slots; every packet after it was moved down.
    let firstFailed = 0;
    while (firstFailed < count && results[firstFailed]! > (vnet ? VNET_HDR_SIZE : 0)) firstFailed++;
    if (firstFailed < n) this.holesFilled += n - firstFailed;
    for (let k = 0; k < n; k++) {
      const to = first + k;
      const len = lengths[k]!;
      if (vnet) {
        mem.words.receivedWithOffload(to, len, LinkType.RawIp);
        if (slots.bytes[slots.offloadBase + to * OFFLOAD_SIZE + 1] !== 0) {
          this.tun.gso.received++;
          this.tun.gso.receivedBytes += len;
        }
      } else {
        mem.words.received(to, len, LinkType.RawIp);
      }
    }
    for (let i = 0; i < count; i++) if (results[i]! < 0 && results[i] !== -EAGAIN) this.readErrors++;
    // Adapt the next batch: grow while every read found a packet, else follow what came.
    const cap = Math.min(this.ring.entries, slots.count);
    this.want = n === count ? Math.min(cap, count * 2) : Math.max(this.smallBatch, MIN_RING_BATCH, Math.min(cap, n * 2));
    return n;
  }

  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    if (this.closed) throw new Error(`TUN ${this.name}: closed`);
    const mem = slotMemory(slots);
    const ring = this.ring;
    const vnet = this.offload ? this.slotIovecs(slots, mem) : undefined;
    if (count < this.smallBatch) {
      // A few packets: plain writes (see collect()).
      const errors = this.tun.stats.sendErrors;
      const sent = this.tun.send(slots, indices, count);
      this.stats.sendErrors += this.tun.stats.sendErrors - errors;
      this.stats.sent += sent;
      this.plainSends++;
      return sent;
    }
    const base = Number(mem.base);
    let sent = 0;
    let gsoSent = 0;
    const bytes = slots.bytes;
    for (let done = 0; done < count; ) {
      const chunk = Math.min(count - done, ring.entries);
      for (let i = 0; i < chunk; i++) {
        const s = indices[done + i];
        const length = mem.words.length(s);
        if (vnet) {
          vnet.aim(s, mem.words.offset(s), length);
          ring.queue(IoUringOp.Writev, this.fd, vnet.sendAt + s * 2 * IOVEC_SIZE, 2, i);
        } else {
          ring.queue(IoUringOp.Write, this.fd, base + slots.slotAddress(s) + mem.words.offset(s), length, i);
        }
      }
      ring.enter(chunk);
      const results = this.results;
      ring.reapInto(results);
      for (let i = 0; i < chunk; i++) {
        if (results[i]! < 0) {
          this.stats.sendErrors++;
          continue;
        }
        sent++;
        if (vnet && bytes[slots.offloadBase + indices[done + i]! * OFFLOAD_SIZE + 1] !== 0) gsoSent++;
      }
      done += chunk;
    }
    this.tun.gso.sent += gsoSent;
    this.stats.sent += sent;
    return sent;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.close();
    this.tun.close();
  }
}

/**
 * Makes a batch of read results contiguous: results[i] is what the read into slot first + i
 * returned (bytes, or -errno). Packets are moved down into the holes left by failed reads
 * (packet bytes behind the headroom and, with `vnet`, the virtio-net header in the offload
 * record), in order; lengths[k] is then the packet length in slot first + k (without the
 * header). Returns the number of packets kept.
 */
export function packBatch(slots: PacketSlots, first: number, results: ArrayLike<number>, count: number, vnet: boolean, lengths: Int32Array): number {
  let n = 0;
  const bytes = slots.bytes;
  for (let i = 0; i < count; i++) {
    let len = results[i]!;
    if (vnet && len > 0) len = len > VNET_HDR_SIZE ? len - VNET_HDR_SIZE : 0;
    if (len <= 0) continue;
    const to = first + n;
    const from = first + i;
    if (to !== from) {
      const src = slots.slotAddress(from) + HEADROOM;
      bytes.copyWithin(slots.slotAddress(to) + HEADROOM, src, src + len);
      if (vnet) {
        const rec = slots.offloadBase;
        bytes.copyWithin(rec + to * OFFLOAD_SIZE, rec + from * OFFLOAD_SIZE, rec + from * OFFLOAD_SIZE + VNET_HDR_SIZE);
      }
    }
    lengths[n] = len;
    n++;
  }
  return n;
}

/**
 * The TunDevice behind `io`: itself, or the device a UringTunDevice moves packets for;
 * undefined for any other adapter. Callers that read TUN-only state (offloads, GSO
 * counters) use it so that both paths report the same.
 */
export function tunDeviceOf(io: PacketIO): TunDevice | undefined {
  if (io instanceof TunDevice) return io;
  if (io instanceof UringTunDevice) return io.tun;
  return undefined;
}
