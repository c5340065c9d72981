// The master's side of connection sync, without the socket: the connections the data
// plane queues (Balancer.onSync) are encoded into v1 messages as the kernel's
// ip_vs_sync_conn does, and handed to `send` when a message is full, or when its oldest
// connection has waited flushMs (the kernel's IPVS_SYNC_FLUSH_TIME, 2 s, checked every
// second). At most qlenMax messages may wait for the socket (sync_qlen_max); past that
// they are dropped and counted, as the kernel does.

import { totalmem } from "node:os";
import type { Balancer } from "../balancer/balancer.js";
import type { SyncRecord } from "../balancer/sync-records.js";
import { toSyncConnection } from "./convert.js";
import { SyncMessageBuilder } from "./wire.js";

export interface SyncSenderOptions {
  readonly syncId: number;
  /** Largest message payload in bytes (sync_maxlen; the kernel's default is 1500 - 28). */
  readonly maxLength?: number;
  /** Longest a queued connection waits before its message goes out partly filled (ms). */
  readonly flushMs?: number;
  /** Messages waiting for the socket before new ones are dropped (sync_qlen_max). */
  readonly qlenMax?: number;
  /**
   * Re-send every live connection at least this often (ms; 0, the default, is the kernel's
   * behaviour: a connection is sent only when its packets qualify). See docs/sync.md.
   */
  readonly refreshMs?: number;
  /** Millisecond clock. */
  readonly clock: () => number;
  /** Sends one message; call done() once the socket has taken it. */
  readonly send: (message: Buffer, done: () => void) => void;
}

export interface SyncSenderStats {
  connections: number;
  messages: number;
  /** Snapshots the data plane could not queue (its ring was full between two drains). */
  lostInRing: number;
  /** Messages dropped because qlenMax were already waiting. */
  droppedQueueFull: number;
}

/** The kernel's default sync_qlen_max: 1/32 of the memory pages. */
export const DEFAULT_QLEN_MAX = Math.max(1, Math.floor(totalmem() / 4096 / 32));
export const DEFAULT_MAXLEN = 1500 - 20 - 8;
export const FLUSH_MS = 2000;

export class SyncSender {
  readonly stats: SyncSenderStats = { connections: 0, messages: 0, lostInRing: 0, droppedQueueFull: 0 };
  private readonly builder: SyncMessageBuilder;
  private firstUse = 0;
  private waiting = 0;
  private readonly stopListening: () => void;
  private readonly timer: NodeJS.Timeout;

  constructor(
    balancer: Balancer,
    private readonly options: SyncSenderOptions,
  ) {
    this.builder = new SyncMessageBuilder(options.syncId, options.maxLength ?? DEFAULT_MAXLEN);
    this.stopListening = balancer.onSync((records, lost) => this.queue(records, lost));
    const flushMs = options.flushMs ?? FLUSH_MS;
    this.timer = setInterval(() => this.poll(), Math.max(10, Math.min(1000, flushMs / 2)));
    this.timer.unref();
    const refresh = options.refreshMs ?? 0;
    if (refresh > 0) {
      // A quarter of the table per quarter period: every entry within refreshMs.
      const budget = Math.ceil(balancer.connectionCapacity / 4);
      this.refreshTimer = setInterval(() => balancer.refreshSync(Math.floor(options.clock()), refresh, budget), Math.max(50, refresh / 4));
      this.refreshTimer.unref();
    }
  }
  private refreshTimer: NodeJS.Timeout | undefined;

  private queue(records: readonly SyncRecord[], lost: number): void {
    this.stats.lostInRing += lost;
    for (const r of records) {
      const c = toSyncConnection(r);
      if (this.builder.empty) this.firstUse = this.options.clock();
      if (!this.builder.add(c)) {
        this.emit();
        this.firstUse = this.options.clock();
        this.builder.add(c);
      }
      this.stats.connections++;
    }
  }

  /** Sends the message being built if its first connection has waited flushMs (a timer calls this). */
  poll(): void {
    if (!this.builder.empty && this.options.clock() - this.firstUse >= (this.options.flushMs ?? FLUSH_MS)) this.emit();
  }

  /** Sends the message being built now (tests, and a master stepping down). */
  flush(): void {
    if (!this.builder.empty) this.emit();
  }

  private emit(): void {
    const m = this.builder.take();
    if (!m) return;
    if (this.waiting >= (this.options.qlenMax ?? DEFAULT_QLEN_MAX)) {
      this.stats.droppedQueueFull++;
      return;
    }
    this.waiting++;
    this.stats.messages++;
    this.options.send(m, () => {
      this.waiting--;
    });
  }

  /** Stops listening; the message being built is dropped, as the kernel's is. */
  close(): void {
    clearInterval(this.timer);
    clearInterval(this.refreshTimer);
    this.stopListening();
  }
}
