// Absolute addresses of packet slots, for system calls that read or write them in place.
// The wasm memory is an ArrayBuffer whose backing store does not move while it lives (a
// growth replaces the buffer, which refresh() notices), so one koffi.address() per buffer
// gives every slot's address without copying a byte.

import { HEADROOM } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import { libc } from "./libc.js";
import { SlotWords } from "./packet-io.js";

export class SlotMemory {
  readonly words: SlotWords;
  private buffer: ArrayBuffer | undefined;
  private address = 0n;

  constructor(readonly slots: PacketSlots) {
    this.words = new SlotWords(slots);
    this.refresh();
  }

  /** Re-reads the memory's address if the buffer was replaced; true when it changed. */
  refresh(): boolean {
    const buffer = this.slots.bytes.buffer as ArrayBuffer;
    if (buffer === this.buffer) return false;
    this.buffer = buffer;
    this.address = libc().address(buffer);
    this.words.refresh();
    return true;
  }

  /** Address of the wasm memory's first byte (valid until the buffer is replaced). */
  get base(): bigint {
    return this.address;
  }

  /** Address of the first packet byte of slot i when it was received (behind the headroom). */
  receiveAddress(slot: number): bigint {
    return this.address + BigInt(this.slots.slotAddress(slot) + HEADROOM);
  }

  /** Address of slot i's packet as its descriptor now says. */
  packetAddress(slot: number): bigint {
    return this.address + BigInt(this.slots.slotAddress(slot) + this.words.offset(slot));
  }
}

const cache = new WeakMap<PacketSlots, SlotMemory>();

/** The (cached) SlotMemory of a PacketSlots. */
export function slotMemory(slots: PacketSlots): SlotMemory {
  let m = cache.get(slots);
  if (!m) {
    m = new SlotMemory(slots);
    cache.set(slots, m);
  } else {
    m.refresh();
  }
  return m;
}
