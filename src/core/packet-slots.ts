// The host's view of the packet slots and their descriptors in wasm memory. Adapters
// receive straight into slots, the data plane rewrites in place, adapters send from them.

import { Desc, DESC_SIZE, HEADROOM, OFFLOAD_SIZE, type LinkType, type Verdict, type DropReason } from "./abi.js";
import type { LvsWasmExports } from "./wasm.js";

/** Where a packet ended up after the data plane saw it. */
export interface SlotResult {
  readonly verdict: Verdict;
  readonly reason: DropReason;
  /** The packet bytes as they now stand (a copy). */
  readonly packet: Uint8Array;
}

export class PacketSlots {
  readonly count: number;
  readonly stride: number;
  readonly capacity: number;
  readonly slotsBase: number;
  readonly descBase: number;
  /** The offload records (a virtio_net_hdr per slot; see Offload in abi.ts). */
  readonly offloadBase: number;
  private buffer!: ArrayBuffer;
  private u8!: Uint8Array;
  private u32!: Uint32Array;

  constructor(private readonly wasm: LvsWasmExports) {
    this.count = wasm.slotCountTotal();
    this.stride = wasm.slotStrideBytes();
    this.capacity = wasm.slotCapacityBytes();
    this.slotsBase = wasm.regionSlots();
    this.descBase = wasm.regionDescriptors();
    this.offloadBase = wasm.regionOffload();
    if (this.count === 0) throw new Error("PacketSlots: the data plane has not been initialised (lvsInit)");
    this.refreshViews();
  }

  /** Rebuilds the typed views if the wasm memory was replaced (it never grows after init). */
  refreshViews(): void {
    const buffer = this.wasm.memory.buffer;
    if (buffer === this.buffer) return;
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.u32 = new Uint32Array(buffer);
  }

  /** The whole wasm memory as bytes (valid until refreshViews replaces it). */
  get bytes(): Uint8Array {
    this.refreshViews();
    return this.u8;
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.count) {
      throw new RangeError(`slot ${slot} is out of range: use 0..${this.count - 1}`);
    }
  }

  /** Absolute byte address of slot i. */
  slotAddress(slot: number): number {
    return this.slotsBase + slot * this.stride;
  }

  /** Copies a packet into a slot behind the headroom and resets its descriptor. */
  write(slot: number, packet: Uint8Array, link: LinkType, mark = 0): void {
    this.checkSlot(slot);
    if (packet.length > this.capacity) {
      throw new RangeError(`packet of ${packet.length} bytes exceeds the slot capacity of ${this.capacity}`);
    }
    this.refreshViews();
    this.u8.set(packet, this.slotAddress(slot) + HEADROOM);
    const d = (this.descBase + slot * DESC_SIZE) >>> 2;
    this.u32[d + Desc.Offset / 4] = HEADROOM;
    this.u32[d + Desc.Length / 4] = packet.length;
    this.u32[d + Desc.Link / 4] = link;
    this.u32[d + Desc.Mark / 4] = mark >>> 0;
    this.u32[d + Desc.Verdict / 4] = 0;
    this.u32[d + Desc.Reason / 4] = 0;
    this.u32[d + Desc.Action / 4] = 0;
    this.u32[d + Desc.Aux / 4] = 0;
    this.u8.fill(0, this.offloadBase + slot * OFFLOAD_SIZE, this.offloadBase + (slot + 1) * OFFLOAD_SIZE);
  }

  /** The offload record of a slot (a view, not a copy): virtio_net_hdr fields, see Offload. */
  offloadRecord(slot: number): Uint8Array {
    this.checkSlot(slot);
    this.refreshViews();
    const at = this.offloadBase + slot * OFFLOAD_SIZE;
    return this.u8.subarray(at, at + OFFLOAD_SIZE);
  }

  /** Reads a descriptor field (see Desc). */
  field(slot: number, field: number): number {
    this.checkSlot(slot);
    this.refreshViews();
    return this.u32[(this.descBase + slot * DESC_SIZE + field) >>> 2];
  }

  /** Writes a descriptor field (see Desc). */
  setField(slot: number, field: number, value: number): void {
    this.checkSlot(slot);
    this.refreshViews();
    this.u32[(this.descBase + slot * DESC_SIZE + field) >>> 2] = value >>> 0;
  }

  /** A view (not a copy) of the packet bytes in a slot, as its descriptor says. */
  view(slot: number): Uint8Array {
    this.checkSlot(slot);
    this.refreshViews();
    const off = this.field(slot, Desc.Offset);
    const len = this.field(slot, Desc.Length);
    if (off + len > this.stride) throw new RangeError(`slot ${slot} descriptor is out of bounds`);
    const start = this.slotAddress(slot) + off;
    return this.u8.subarray(start, start + len);
  }

  /** Verdict, reason and a copy of the packet of a slot. */
  result(slot: number): SlotResult {
    return {
      verdict: this.field(slot, Desc.Verdict) as Verdict,
      reason: this.field(slot, Desc.Reason) as DropReason,
      packet: this.view(slot).slice(),
    };
  }
}
