// PacketIO: what every packet adapter implements. An adapter receives a batch straight into
// packet slots (wasm memory) and sends a batch from them; the director does the rest. TUN
// devices, AF_PACKET sockets and the in-memory pair below are interchangeable, and a faster
// native path can replace koffi without touching the datapath or the director.

import { Desc, DESC_SIZE, HEADROOM, LinkType, OFFLOAD_SIZE, VNET_HDR_SIZE } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";

export interface PacketIO {
  /** A name for logs and statistics (the interface name for device adapters). */
  readonly name: string;
  /** What the first byte of a received packet is, and what send expects. */
  readonly linkType: LinkType;
  /**
   * A file descriptor that polls readable when receive would return packets, or -1 when
   * the adapter has none (the director then checks it every few milliseconds).
   */
  readonly fd: number;
  /**
   * True when the adapter carries a virtio_net_hdr with each packet (TUN with offloads): it
   * fills each received slot's offload record and sends the record in front of the packet,
   * so GSO super-packets and partial checksums pass whole. Absent or false: the adapter
   * zeroes the record on receive, and the director completes or cuts what it sends there.
   */
  readonly offload?: boolean;
  /**
   * Slots [slotLimit, count) belong to the adapter (AF_XDP's receive pool in the wasm
   * memory): the director receives into, cuts segments in and releases fragments to the
   * slots below it only. Absent: every slot is the director's.
   */
  readonly slotLimit?: number;
  /**
   * Receives up to `max` packets into slots [first, first + max) and returns how many.
   * Each received slot's descriptor is reset: offset HEADROOM, length, link type, mark 0,
   * verdict / reason / action / aux 0. Never blocks longer than `timeoutMs` (0: not at all).
   */
  receive(slots: PacketSlots, first: number, max: number, timeoutMs?: number): number;
  /**
   * Sends the packets of slots indices[0 .. count) as their descriptors say (offset, length)
   * and returns how many were handed to the kernel. A full send queue returns fewer; the
   * rest are lost, as on a congested link.
   */
  send(slots: PacketSlots, indices: ArrayLike<number>, count?: number): number;
  close(): void;
}

/** Counters an adapter keeps. */
export interface PacketIOStats {
  received: number;
  sent: number;
  sendErrors: number;
  /** Packets larger than a slot, cut short (never happens with the default 65,600-byte slots). */
  truncated: number;
}

export function emptyIoStats(): PacketIOStats {
  return { received: 0, sent: 0, sendErrors: 0, truncated: 0 };
}

/**
 * Descriptor words of a PacketSlots, for adapters that fill descriptors in bulk. Valid until
 * the wasm memory changes (it never grows after start-up; refresh() checks the identity).
 */
export class SlotWords {
  private buffer: ArrayBuffer | undefined;
  private u32!: Uint32Array;
  constructor(private readonly slots: PacketSlots) {
    this.refresh();
  }
  refresh(): Uint32Array {
    const buffer = this.slots.bytes.buffer as ArrayBuffer;
    if (buffer !== this.buffer) {
      this.buffer = buffer;
      this.u32 = new Uint32Array(buffer);
    }
    return this.u32;
  }
  /** Slot i's descriptor for a packet of `length` bytes behind the headroom, the rest zero. */
  private resetDescriptor(slot: number, length: number, link: LinkType): Uint32Array {
    const u32 = this.u32;
    const d = (this.slots.descBase + slot * DESC_SIZE) >>> 2;
    u32[d] = HEADROOM;
    u32[d + 1] = length;
    u32[d + 2] = link;
    u32[d + 3] = 0;
    u32[d + 4] = 0;
    u32[d + 5] = 0;
    u32[d + 6] = 0;
    u32[d + 7] = 0;
    return u32;
  }
  /** Resets slot i's descriptor for a packet of `length` bytes behind the headroom. */
  received(slot: number, length: number, link: LinkType): void {
    const u32 = this.resetDescriptor(slot, length, link);
    const r = (this.slots.offloadBase + slot * OFFLOAD_SIZE) >>> 2;
    u32[r] = 0;
    u32[r + 1] = 0;
    u32[r + 2] = 0;
  }
  /** Resets slot i's descriptor, keeping the offload record an adapter just read (but its private bytes). */
  receivedWithOffload(slot: number, length: number, link: LinkType): void {
    const u32 = this.resetDescriptor(slot, length, link);
    // Bytes 10..11 of the record: the kernel writes 10; the private Deferred byte is ours.
    const r = (this.slots.offloadBase + slot * OFFLOAD_SIZE + 8) >>> 2;
    u32[r] &= 0xffff;
  }
  offset(slot: number): number {
    return this.u32[(this.slots.descBase + slot * DESC_SIZE + Desc.Offset) >>> 2];
  }
  length(slot: number): number {
    return this.u32[(this.slots.descBase + slot * DESC_SIZE + Desc.Length) >>> 2];
  }
}

/**
 * An in-memory adapter: packets pushed with inject() are received, packets sent are
 * collected in `sent` (copies). For tests, simulations and as the smallest example of a
 * PacketIO. It never blocks. With `{ offload: true }` it behaves like a TUN device opened
 * with offloads: injectWithHeader() gives a packet its virtio_net_hdr, and the header of
 * every packet sent is collected in `sentHeaders`.
 */
export class MemoryPacketIO implements PacketIO {
  readonly fd = -1;
  readonly stats = emptyIoStats();
  readonly sent: Uint8Array[] = [];
  /** With offload: the virtio_net_hdr (VNET_HDR_SIZE bytes) of each packet in `sent`. */
  readonly sentHeaders: Uint8Array[] = [];
  readonly offload: boolean;
  private readonly queue: Array<{ packet: Uint8Array; header?: Uint8Array }> = [];
  private closed = false;

  constructor(
    readonly name: string,
    readonly linkType: LinkType = LinkType.RawIp,
    options: { readonly offload?: boolean } = {},
  ) {
    this.offload = options.offload === true;
  }

  /** Queues packets to be received. */
  inject(...packets: Uint8Array[]): void {
    for (const packet of packets) this.queue.push({ packet });
  }

  /** Queues a packet with its virtio_net_hdr (an adapter with offload only). */
  injectWithHeader(packet: Uint8Array, header: Uint8Array): void {
    if (!this.offload) throw new Error(`${this.name}: injectWithHeader needs { offload: true }`);
    if (header.length !== VNET_HDR_SIZE) throw new RangeError(`a virtio_net_hdr is ${VNET_HDR_SIZE} bytes, not ${header.length}`);
    this.queue.push({ packet, header });
  }

  get pending(): number {
    return this.queue.length;
  }

  receive(slots: PacketSlots, first: number, max: number): number {
    if (this.closed) throw new Error(`${this.name}: closed`);
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const { packet: p, header } = this.queue.shift()!;
      if (p.length > slots.capacity) {
        this.stats.truncated++;
        slots.write(first + n, p.subarray(0, slots.capacity), this.linkType);
      } else {
        slots.write(first + n, p, this.linkType);
      }
      if (header) slots.offloadRecord(first + n).set(header);
      n++;
    }
    this.stats.received += n;
    return n;
  }

  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    if (this.closed) throw new Error(`${this.name}: closed`);
    for (let i = 0; i < count; i++) {
      this.sent.push(slots.view(indices[i]).slice());
      if (this.offload) this.sentHeaders.push(slots.offloadRecord(indices[i]).slice(0, VNET_HDR_SIZE));
    }
    this.stats.sent += count;
    return count;
  }

  close(): void {
    this.closed = true;
  }
}
