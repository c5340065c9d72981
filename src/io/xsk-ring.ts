// The four rings of an AF_XDP socket (fill, completion, RX, TX), driven from TypeScript.
//
// libxdp fills in a struct xsk_ring_prod / xsk_ring_cons for each ring when it maps it
// (<xdp/xsk.h>, LP64):
//
//   offset  0  u32  cached_prod      offset 16  u32 *producer   (in the shared mapping)
//   offset  4  u32  cached_cons      offset 24  u32 *consumer   (in the shared mapping)
//   offset  8  u32  mask             offset 32  void *ring      (the entries)
//   offset 12  u32  size             offset 40  u32 *flags      (XDP_RING_NEED_WAKEUP)
//
// We read mask, size and the four pointers once and keep the cached indexes here. The ring
// operations are the inline ones of <xdp/xsk.h> (xsk_ring_prod__reserve / __submit,
// xsk_ring_cons__peek / __release), written again over views of the mapping.
//
// Memory ordering (net/xdp/xsk_queue.h in the kernel): a producer must make its entries
// visible before it publishes the producer index (store-release), and a consumer must read
// the index before the entries it covers (load-acquire); a consumer must finish reading the
// entries before it publishes the consumer index. JavaScript has no plain acquire/release,
// but Atomics.load and Atomics.store on an Int32Array/Uint32Array are sequentially
// consistent, which is stronger than both, and they work on a view of native memory that is
// not a SharedArrayBuffer. So every index the kernel shares is read with Atomics.load and
// written with Atomics.store; the entries themselves are plain typed-array accesses ordered
// by those.

import { libc } from "./libc.js";

/** Bytes of a struct xsk_ring_prod / xsk_ring_cons. */
export const XSK_RING_STRUCT_SIZE = 48;
/** XDP_RING_NEED_WAKEUP (include/uapi/linux/if_xdp.h). */
export const XDP_RING_NEED_WAKEUP = 1;

class XskRing {
  /** The struct libxdp fills in (keep it alive: libxdp keeps its address). */
  readonly struct = Buffer.alloc(XSK_RING_STRUCT_SIZE);
  size = 0;
  mask = 0;
  protected producer!: Uint32Array;
  protected consumer!: Uint32Array;
  private flags!: Uint32Array;
  /** The entries: u64 addresses (fill, completion) or 16-byte descriptors (RX, TX), as u32 words. */
  entries!: Uint32Array;
  protected cachedProd = 0;
  protected cachedCons = 0;

  constructor(private readonly entryBytes: number) {}

  /** The struct's address, for libxdp. */
  get address(): bigint {
    return libc().address(this.struct);
  }

  /** Takes the views once libxdp has mapped the ring. */
  map(): void {
    const c = libc();
    const s = this.struct;
    this.mask = s.readUInt32LE(8);
    this.size = s.readUInt32LE(12);
    if (this.size === 0 || (this.size & (this.size - 1)) !== 0) throw new Error(`AF_XDP: libxdp returned a ring of ${this.size} entries`);
    this.producer = new Uint32Array(c.view(s.readBigUInt64LE(16), 4));
    this.consumer = new Uint32Array(c.view(s.readBigUInt64LE(24), 4));
    this.entries = new Uint32Array(c.view(s.readBigUInt64LE(32), this.size * this.entryBytes));
    this.flags = new Uint32Array(c.view(s.readBigUInt64LE(40), 4));
    this.cachedProd = s.readUInt32LE(0);
    this.cachedCons = s.readUInt32LE(4);
  }

  /** The kernel asks to be woken (sendto for TX, poll / recvfrom for fill). */
  needsWakeup(): boolean {
    return (Atomics.load(this.flags, 0) & XDP_RING_NEED_WAKEUP) !== 0;
  }
}

/** A ring we produce into and the kernel consumes: fill and TX. */
export class XskProducer extends XskRing {
  /**
   * Reserves up to `n` entries; returns how many (0 when the ring is full) and the first
   * index (mask it for the entry). Like xsk_ring_prod__reserve, but takes what there is.
   */
  reserve(n: number): { count: number; index: number } {
    let free = (this.cachedCons - this.cachedProd) >>> 0;
    if (free < n) {
      // cached_cons runs `size` ahead of the kernel's consumer index, as in <xdp/xsk.h>.
      this.cachedCons = (Atomics.load(this.consumer, 0) + this.size) >>> 0;
      free = (this.cachedCons - this.cachedProd) >>> 0;
    }
    const count = Math.min(n, free);
    const index = this.cachedProd;
    this.cachedProd = (this.cachedProd + count) >>> 0;
    return { count, index };
  }

  /** Takes back the last `n` entries reserved and not submitted. */
  unreserve(n: number): void {
    this.cachedProd = (this.cachedProd - n) >>> 0;
  }

  /** Publishes the reserved entries (store-release of the producer index). */
  submit(): void {
    Atomics.store(this.producer, 0, this.cachedProd);
  }

  /** Entries the kernel has not consumed yet. */
  pending(): number {
    return (this.cachedProd - Atomics.load(this.consumer, 0)) >>> 0;
  }
}

/** A ring the kernel produces into and we consume: RX and completion. */
export class XskConsumer extends XskRing {
  /** Entries ready, at most `n` (load-acquire of the producer index); the first is `index`. */
  peek(n: number): { count: number; index: number } {
    let ready = (this.cachedProd - this.cachedCons) >>> 0;
    if (ready === 0) {
      this.cachedProd = Atomics.load(this.producer, 0);
      ready = (this.cachedProd - this.cachedCons) >>> 0;
    }
    const count = Math.min(n, ready);
    const index = this.cachedCons;
    this.cachedCons = (this.cachedCons + count) >>> 0;
    return { count, index };
  }

  /** Hands the peeked entries back to the kernel (store-release of the consumer index). */
  release(): void {
    Atomics.store(this.consumer, 0, this.cachedCons);
  }
}
