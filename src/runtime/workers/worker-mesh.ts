// What lvsd's data-plane workers share (lvsd --workers N): a hand-off ring per ordered pair
// of workers, a wake-up eventfd per worker, and a control block holding the configuration
// epoch and each worker's "asleep in poll" flag. The main thread creates it (meshData) and
// passes it to every worker in its workerData; each worker wraps it in a WorkerMesh, which
// is the Director's FlowHandOff.
//
// Configuration commits: the main thread stages a command in every worker (a message), then
// raises the epoch and wakes them all. Each worker applies what was staged for the new
// epoch between two batches (between()), never in the middle of one, and no worker applies
// a command before every worker holds it. See docs/daemon.md, "Threads".

import type { PacketSlots } from "../../core/packet-slots.js";
import { Wakeup } from "../../io/wakeup.js";
import type { FlowHandOff } from "../director.js";
import { HandoffRing, ringBytes } from "./handoff-ring.js";

/** Record bytes per ring: 64 GSO super-packets, or about 1,400 full-size frames. */
export const DEFAULT_RING_BYTES = 4 << 20;

/** Structured-clonable: crosses to the workers in workerData. */
export interface WorkerMeshData {
  readonly workers: number;
  /**
   * Int32 words: [0] the committed configuration epoch; worker i's line at 16 * (1 + i):
   * +0 asleep, +1 packets forwarded (mod 2^32), +2 connection entries (published by publish()).
   */
  readonly control: SharedArrayBuffer;
  /** rings[from * workers + to] (none where from === to). */
  readonly rings: readonly (SharedArrayBuffer | null)[];
  /** Worker i's wake-up eventfd. */
  readonly wakeFds: readonly number[];
}

const EPOCH = 0;
const asleep = (worker: number) => 16 * (1 + worker);
const forwardedWord = (worker: number) => 16 * (1 + worker) + 1;
const connectionsWord = (worker: number) => 16 * (1 + worker) + 2;

/** Creates what N workers share (on the main thread: the eventfds live as long as the process). */
export function meshData(workers: number, ringCapacity = DEFAULT_RING_BYTES): WorkerMeshData {
  const rings: (SharedArrayBuffer | null)[] = [];
  for (let from = 0; from < workers; from++) {
    for (let to = 0; to < workers; to++) rings.push(from === to ? null : new SharedArrayBuffer(ringBytes(ringCapacity)));
  }
  return {
    workers,
    control: new SharedArrayBuffer(4 * 16 * (workers + 1)),
    rings,
    wakeFds: Array.from({ length: workers }, () => Wakeup.create().fd),
  };
}

/** Raises the epoch to `epoch` and wakes every worker (main thread, after staging). */
export function commitEpoch(data: WorkerMeshData, epoch: number): void {
  Atomics.store(new Int32Array(data.control), EPOCH, epoch);
  for (const fd of data.wakeFds) Wakeup.of(fd).signal();
}

/** Closes the eventfds (main thread, after every worker stopped). */
export function closeMesh(data: WorkerMeshData): void {
  for (const fd of data.wakeFds) Wakeup.of(fd).close();
}

export class WorkerMesh implements FlowHandOff {
  readonly workers: number;
  readonly wakeFd: number;
  private readonly control: Int32Array;
  private readonly outgoing: (HandoffRing | null)[];
  private readonly incoming: HandoffRing[];
  private readonly wakeups: Wakeup[];
  private readonly toWake: Uint8Array;
  private appliedEpoch = 0;
  private nextIncoming = 0;

  /** Applies what was staged for epochs up to `epoch` (between two batches); set by the worker. */
  onCommit: (epoch: number) => void = () => {};

  constructor(
    data: WorkerMeshData,
    readonly self: number,
  ) {
    this.workers = data.workers;
    this.control = new Int32Array(data.control);
    const ring = (from: number, to: number) => {
      const b = data.rings[from * data.workers + to];
      return b ? new HandoffRing(b) : null;
    };
    this.outgoing = Array.from({ length: data.workers }, (_, to) => ring(self, to));
    this.incoming = Array.from({ length: data.workers }, (_, from) => ring(from, self)).filter((r): r is HandoffRing => r !== null);
    this.wakeups = data.wakeFds.map((fd) => Wakeup.of(fd));
    this.wakeFd = data.wakeFds[self];
    this.toWake = new Uint8Array(data.workers);
    this.appliedEpoch = Atomics.load(this.control, EPOCH);
  }

  give(owner: number, slots: PacketSlots, slot: number, from: number): boolean {
    const ring = this.outgoing[owner];
    if (!ring?.push(slots, slot, from)) return false;
    this.toWake[owner] = 1;
    return true;
  }

  afterGiving(): void {
    for (let w = 0; w < this.workers; w++) {
      if (this.toWake[w] === 0) continue;
      this.toWake[w] = 0;
      if (Atomics.load(this.control, asleep(w)) === 1) this.wakeups[w].signal();
    }
  }

  take(slots: PacketSlots, first: number, max: number, adapters: Uint8Array): number {
    let n = 0;
    // Round robin over the senders, so that one busy sender does not starve the others.
    for (let k = 0; k < this.incoming.length && n < max; k++) {
      const ring = this.incoming[(this.nextIncoming + k) % this.incoming.length];
      n += ring.take(slots, first + n, max - n, adapters);
    }
    this.nextIncoming = (this.nextIncoming + 1) % Math.max(1, this.incoming.length);
    return n;
  }

  between(): void {
    const epoch = Atomics.load(this.control, EPOCH);
    if (epoch === this.appliedEpoch) return;
    this.appliedEpoch = epoch;
    this.onCommit(epoch);
  }

  /**
   * Publishes this worker's counters for the others to sum (a timer in each worker calls it):
   * `lvsadm drain --status` and `--wait` judge idleness on every worker's packets, not only
   * on worker 0's, which runs the announcer.
   */
  publish(forwarded: number, connections: number): void {
    Atomics.store(this.control, forwardedWord(this.self), forwarded | 0);
    Atomics.store(this.control, connectionsWord(this.self), connections | 0);
  }

  /** Packets forwarded by every worker, mod 2^32 (for change detection: it moves when any worker forwards). */
  forwardedTotal(): number {
    let sum = 0;
    for (let w = 0; w < this.workers; w++) sum = (sum + Atomics.load(this.control, forwardedWord(w))) | 0;
    return sum >>> 0;
  }

  /** Connection entries over every worker, as last published. */
  connectionsTotal(): number {
    let sum = 0;
    for (let w = 0; w < this.workers; w++) sum += Atomics.load(this.control, connectionsWord(w)) >>> 0;
    return sum;
  }

  /** The epoch this worker has applied. */
  get epoch(): number {
    return this.appliedEpoch;
  }

  sleeping(on: boolean): boolean {
    if (!on) {
      Atomics.store(this.control, asleep(this.self), 0);
      this.wakeups[this.self].drain();
      return true;
    }
    Atomics.store(this.control, asleep(this.self), 1);
    // Set the flag first, then look: a producer that pushed before seeing it is seen here.
    const pending = Atomics.load(this.control, EPOCH) !== this.appliedEpoch || this.incoming.some((r) => !r.empty);
    if (pending) Atomics.store(this.control, asleep(this.self), 0);
    return !pending;
  }
}
