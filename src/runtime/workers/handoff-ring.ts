// The hand-off ring between two of lvsd's data-plane workers: a lock-free single-producer
// single-consumer ring of packets in a SharedArrayBuffer. A worker that receives a packet
// of a flow another worker owns copies it in (with its offload record, link type, mark and
// the adapter it came in on); the owner copies it out into its own packet slots between
// two batches and processes it as if it had received it. One ring per ordered pair of
// workers, so every ring has one writer and one reader, and the only synchronisation is
// two counters published with Atomics (see docs/io.md, "Workers and flow symmetry").
//
// Layout: 128 bytes of control (the producer's head at byte 0, the consumer's tail at byte
// 64, on separate cache lines), then `capacity` bytes of records. Head and tail count bytes
// since the start, modulo 2^32; a record never wraps: when it does not fit before the end,
// a wrap marker fills the rest of the line and the record starts again at 0.

import { DESC_SIZE, HEADROOM, OFFLOAD_SIZE, VNET_HDR_SIZE } from "../../core/abi.js";
import type { PacketSlots } from "../../core/packet-slots.js";

const CONTROL_BYTES = 128;
const HEAD = 0;
const TAIL = 16;
/** Record header: length, link, adapter index, mark (u32 each), then the offload record. */
const RECORD_HEADER = 16 + OFFLOAD_SIZE;
const WRAP = 0xffffffff;

/** Bytes a ring of `capacity` record bytes takes (capacity: a power of two). */
export function ringBytes(capacity: number): number {
  return CONTROL_BYTES + capacity;
}

export class HandoffRing {
  private readonly control: Int32Array;
  private readonly data: Uint8Array;
  private readonly words: Uint32Array;
  private readonly capacity: number;
  private readonly mask: number;
  /** The producer's own copy of the head, and the consumer's of the tail. */
  private head: number;
  private tail: number;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.capacity = buffer.byteLength - CONTROL_BYTES;
    if (this.capacity <= 0 || (this.capacity & (this.capacity - 1)) !== 0) {
      throw new RangeError(`hand-off ring: ${this.capacity} record bytes is not a power of two`);
    }
    this.mask = this.capacity - 1;
    this.control = new Int32Array(buffer, 0, CONTROL_BYTES / 4);
    this.data = new Uint8Array(buffer, CONTROL_BYTES, this.capacity);
    this.words = new Uint32Array(buffer, CONTROL_BYTES, this.capacity / 4);
    this.head = Atomics.load(this.control, HEAD) >>> 0;
    this.tail = Atomics.load(this.control, TAIL) >>> 0;
  }

  /** 32-bit words over the wasm memory, kept while its buffer stays the same (no allocation per packet). */
  private wordsOf(mem: Uint8Array): Uint32Array {
    if (this.memoryWords?.buffer !== mem.buffer) this.memoryWords = new Uint32Array(mem.buffer, 0, mem.buffer.byteLength >>> 2);
    return this.memoryWords;
  }
  private memoryWords: Uint32Array | undefined;

  static create(capacity: number): HandoffRing {
    return new HandoffRing(new SharedArrayBuffer(ringBytes(capacity)));
  }

  /** True when the consumer has nothing to read. */
  get empty(): boolean {
    return Atomics.load(this.control, HEAD) >>> 0 === Atomics.load(this.control, TAIL) >>> 0;
  }

  /**
   * Producer: copies the packet in slot `slot` (and its offload record) in. False when the
   * ring has no room (the packet is then the caller's to drop).
   */
  push(slots: PacketSlots, slot: number, adapter: number): boolean {
    const mem = slots.bytes;
    const u32 = this.wordsOf(mem);
    const d = (slots.descBase + slot * DESC_SIZE) >>> 2;
    const offset = u32[d];
    const length = u32[d + 1];
    const need = (RECORD_HEADER + length + 7) & ~7;
    if (need > this.capacity) return false;
    const tail = Atomics.load(this.control, TAIL) >>> 0;
    let head = this.head;
    let at = head & this.mask;
    const free = this.capacity - ((head - tail) >>> 0);
    const toEnd = this.capacity - at;
    if (toEnd < need) {
      if (free < toEnd + need) return false;
      this.words[at >>> 2] = WRAP;
      head = (head + toEnd) >>> 0;
      at = 0;
    } else if (free < need) {
      return false;
    }
    const w = at >>> 2;
    this.words[w] = length;
    this.words[w + 1] = u32[d + 2];
    this.words[w + 2] = adapter;
    this.words[w + 3] = u32[d + 3];
    const rec = slots.offloadBase + slot * OFFLOAD_SIZE;
    for (let k = 0; k < VNET_HDR_SIZE; k++) this.data[at + 16 + k] = mem[rec + k]; // 10 bytes: no view to allocate
    const start = slots.slotAddress(slot) + offset;
    this.data.set(mem.subarray(start, start + length), at + RECORD_HEADER);
    this.head = (head + need) >>> 0;
    Atomics.store(this.control, HEAD, this.head | 0);
    return true;
  }

  /**
   * Consumer: moves up to `max` packets into slots [first, first + max) (packet at the
   * headroom, descriptor reset as an adapter's receive does, offload record restored) and
   * records the adapter each came in on in `adapters`. Returns how many.
   */
  take(slots: PacketSlots, first: number, max: number, adapters: Uint8Array): number {
    const head = Atomics.load(this.control, HEAD) >>> 0;
    let tail = this.tail;
    if (tail === head) return 0;
    const mem = slots.bytes;
    const u32 = this.wordsOf(mem);
    let n = 0;
    while (tail !== head && n < max) {
      const at = tail & this.mask;
      const w = at >>> 2;
      if (this.words[w] === WRAP) {
        tail = (tail + this.capacity - at) >>> 0;
        continue;
      }
      const length = this.words[w];
      const slot = first + n;
      const copy = Math.min(length, slots.capacity);
      const d = (slots.descBase + slot * DESC_SIZE) >>> 2;
      u32[d] = HEADROOM;
      u32[d + 1] = copy;
      u32[d + 2] = this.words[w + 1];
      u32[d + 3] = this.words[w + 3];
      u32[d + 4] = 0;
      u32[d + 5] = 0;
      u32[d + 6] = 0;
      u32[d + 7] = 0;
      adapters[slot] = this.words[w + 2];
      const rec = slots.offloadBase + slot * OFFLOAD_SIZE;
      for (let k = 0; k < VNET_HDR_SIZE; k++) mem[rec + k] = this.data[at + 16 + k];
      for (let k = VNET_HDR_SIZE; k < OFFLOAD_SIZE; k++) mem[rec + k] = 0;
      const dst = slots.slotAddress(slot) + HEADROOM;
      mem.set(this.data.subarray(at + RECORD_HEADER, at + RECORD_HEADER + copy), dst);
      tail = (tail + ((RECORD_HEADER + length + 7) & ~7)) >>> 0;
      n++;
    }
    this.tail = tail;
    Atomics.store(this.control, TAIL, tail | 0);
    return n;
  }
}
