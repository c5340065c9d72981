// A minimal io_uring: one submission ring and one completion ring, set up with the raw
// system calls (io_uring_setup / io_uring_enter, 425 / 426 on every Linux architecture) and
// mmap(2), read and written from JavaScript through ArrayBuffers over the shared rings.
// No liburing: its fast paths (io_uring_get_sqe, the prep helpers, the CQ walk) are inline
// functions in its header, which koffi cannot call; the rings are plain memory anyway.
//
// What it is for: many reads or writes per system call on a file that has no batched call of
// its own (a TUN device has no recvmmsg). One enter() submits a whole batch; the kernel runs
// each request in turn and posts its result. See src/io/tun-uring.ts and docs/io.md.
//
// Layouts (include/uapi/linux/io_uring.h, Linux 6.x): struct io_uring_params is 120 bytes,
// its io_sqring_offsets at 40 and io_cqring_offsets at 80; an SQE is 64 bytes, a CQE 16.
// The kernel reads the SQ tail and writes the CQ tail with acquire / release ordering; the
// Atomics below give the matching order on the JavaScript side.

import { IoError, libc } from "./libc.js";

const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const IORING_OFF_SQ_RING = 0n;
const IORING_OFF_SQES = 0x10000000n;
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
const IORING_ENTER_GETEVENTS = 1 << 0;
const PROT_READ_WRITE = 0x3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
const PARAMS_SIZE = 120;
const SQE_SIZE = 64;
const CQE_SIZE = 16;
const EINTR = 4;

/** io_uring opcodes used here. */
export const IoUringOp = { Readv: 1, Writev: 2, Read: 22, Write: 23 } as const;

/** The ring could not be set up (old kernel, io_uring disabled by sysctl, seccomp). */
export class IoUringUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IoUringUnavailableError";
  }
}

export class IoUring {
  readonly fd: number;
  /** Submission entries (a power of two). */
  readonly entries: number;
  /** System calls made by enter(), for the benchmarks' per-packet counts. */
  enters = 0;
  private readonly ringSize: number;
  private readonly ringAddress: bigint;
  private readonly sqesAddress: bigint;
  private readonly cqRingSize: number;
  private readonly cqRingAddress: bigint;
  private readonly sqHead: Uint32Array;
  private readonly sqTail: Uint32Array;
  private readonly sqMask: number;
  private readonly cqHead: Uint32Array;
  private readonly cqTail: Uint32Array;
  private readonly cqMask: number;
  private readonly cqes: Int32Array;
  private readonly cqeWords: number;
  private readonly sqes: DataView;
  private readonly sqeBytes: Uint8Array;
  /** rw_flags of every request (RWF_NOWAIT: fail with EAGAIN rather than wait). */
  rwFlags = 8;
  /** SQEs written but not yet submitted. */
  private pending = 0;
  private closed = false;

  constructor(entries = 256) {
    if (!Number.isInteger(entries) || entries < 1 || entries > 4096 || (entries & (entries - 1)) !== 0) {
      throw new RangeError(`io_uring entries ${entries} must be a power of two in 1..4096`);
    }
    const c = libc();
    const params = Buffer.alloc(PARAMS_SIZE);
    const fd = c.syscall6(SYS_IO_URING_SETUP, entries, Number(c.address(params)), 0, 0, 0n, 0);
    if (fd < 0) {
      const errno = c.errno();
      throw new IoUringUnavailableError(
        `io_uring_setup failed (${new IoError(errno, "io_uring_setup").code}): ${
          errno === 38
            ? "the kernel has no io_uring"
            : errno === 1
              ? "io_uring is disabled (sysctl kernel.io_uring_disabled) or not permitted"
              : "see io_uring_setup(2)"
        }; use the read / write path instead`,
      );
    }
    this.fd = fd;
    const sqEntries = params.readUInt32LE(0);
    const cqEntries = params.readUInt32LE(4);
    const features = params.readUInt32LE(20);
    const sq = (i: number) => params.readUInt32LE(40 + 4 * i); // head tail ring_mask ring_entries flags dropped array
    const cq = (i: number) => params.readUInt32LE(80 + 4 * i); // head tail ring_mask ring_entries overflow cqes flags
    this.entries = sqEntries;
    const sqRingSize = sq(6) + sqEntries * 4;
    const cqRingSize = cq(5) + cqEntries * CQE_SIZE;
    const single = (features & IORING_FEAT_SINGLE_MMAP) !== 0;
    this.ringSize = single ? Math.max(sqRingSize, cqRingSize) : sqRingSize;
    const map = (size: number, offset: bigint, what: string): bigint => {
      const p = c.mmap(0n, size, PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset);
      if (p === 0n || p === 0xffffffffffffffffn || p < 0n) {
        const errno = c.errno();
        c.close(fd);
        throw new IoError(errno, `mapping the io_uring ${what}`);
      }
      return p;
    };
    this.ringAddress = map(this.ringSize, IORING_OFF_SQ_RING, "rings");
    this.cqRingSize = single ? 0 : cqRingSize;
    this.cqRingAddress = single ? this.ringAddress : map(cqRingSize, 0x8000000n, "completion ring");
    this.sqesAddress = map(sqEntries * SQE_SIZE, IORING_OFF_SQES, "submission entries");
    const ring = c.view(this.ringAddress, this.ringSize);
    const cqRing = single ? ring : c.view(this.cqRingAddress, cqRingSize);
    this.sqHead = new Uint32Array(ring, sq(0), 1);
    this.sqTail = new Uint32Array(ring, sq(1), 1);
    this.sqMask = new Uint32Array(ring, sq(2), 1)[0];
    // The indirection array: entry i is SQE i, once and for all.
    const array = new Uint32Array(ring, sq(6), sqEntries);
    for (let i = 0; i < sqEntries; i++) array[i] = i;
    this.cqHead = new Uint32Array(cqRing, cq(0), 1);
    this.cqTail = new Uint32Array(cqRing, cq(1), 1);
    this.cqMask = new Uint32Array(cqRing, cq(2), 1)[0];
    this.cqes = new Int32Array(cqRing, cq(5), cqEntries * (CQE_SIZE / 4));
    this.cqeWords = CQE_SIZE / 4;
    const sqes = c.view(this.sqesAddress, sqEntries * SQE_SIZE);
    this.sqes = new DataView(sqes);
    this.sqeBytes = new Uint8Array(sqes);
  }

  /** Free submission entries. */
  get space(): number {
    return this.entries - (this.sqTail[0] - Atomics.load(this.sqHead, 0)) - this.pending;
  }

  /**
   * Queues one request (not yet submitted): `op` on `fd` with buffer `address` (a Number) / `length`
   * (for readv / writev: the iovec array and its count), at file offset 0, tagged
   * `userData` (a 32-bit number, returned with its completion). Returns false when the
   * submission ring is full.
   */
  queue(op: number, fd: number, address: number, length: number, userData: number): boolean {
    if (this.space <= 0) return false;
    const index = (this.sqTail[0] + this.pending) & this.sqMask;
    const at = index * SQE_SIZE;
    this.sqeBytes.fill(0, at, at + SQE_SIZE);
    const v = this.sqes;
    v.setUint8(at, op);
    v.setInt32(at + 4, fd, true);
    // A user-space address fits in 53 bits: two words, no BigInt made per request.
    v.setUint32(at + 16, address >>> 0, true);
    v.setUint32(at + 20, Math.floor(address / 0x100000000), true);
    v.setUint32(at + 24, length, true);
    v.setUint32(at + 28, this.rwFlags, true);
    v.setUint32(at + 32, userData >>> 0, true);
    this.pending++;
    return true;
  }

  /**
   * Publishes the queued requests and makes one io_uring_enter: submits them and, with
   * `waitFor` > 0, waits until that many completions are posted. Returns how many were
   * submitted.
   */
  enter(waitFor = 0): number {
    if (this.closed) throw new Error("io_uring: closed");
    const submit = this.pending;
    if (submit > 0) {
      Atomics.store(this.sqTail, 0, (this.sqTail[0] + submit) >>> 0);
      this.pending = 0;
    }
    if (submit === 0 && waitFor === 0) return 0;
    const c = libc();
    for (;;) {
      this.enters++;
      const rc = c.syscall6(SYS_IO_URING_ENTER, this.fd, submit, waitFor, waitFor > 0 ? IORING_ENTER_GETEVENTS : 0, 0n, 0);
      if (rc >= 0) return rc;
      const errno = c.errno();
      if (errno !== EINTR) throw new IoError(errno, "io_uring_enter");
    }
  }

  /** Completions posted and not yet consumed. */
  get ready(): number {
    return (Atomics.load(this.cqTail, 0) - this.cqHead[0]) >>> 0;
  }

  /**
   * Consumes every posted completion, storing each result (bytes, or -errno) at
   * results[userData] (userData must be an index into `results`). Returns how many there
   * were. No callback, no allocation: this runs once per batch.
   */
  reapInto(results: Int32Array): number {
    const tail = Atomics.load(this.cqTail, 0);
    let head = this.cqHead[0];
    let n = 0;
    const w = this.cqeWords;
    const cqes = this.cqes;
    while (head !== tail) {
      const at = (head & this.cqMask) * w;
      // struct io_uring_cqe: user_data u64 (low word first), res i32, flags u32.
      results[cqes[at] >>> 0] = cqes[at + 2];
      head = (head + 1) >>> 0;
      n++;
    }
    Atomics.store(this.cqHead, 0, head);
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const c = libc();
    c.munmap(this.sqesAddress, this.entries * SQE_SIZE);
    if (this.cqRingSize > 0) c.munmap(this.cqRingAddress, this.cqRingSize);
    c.munmap(this.ringAddress, this.ringSize);
    c.close(this.fd);
  }
}
