// The backup's side of connection sync, without the socket: each received datagram is
// decoded with the kernel's checks (wire.ts) and its connections imported into the
// Balancer (the kernel's ip_vs_proc_conn). Nothing a sender can put in a datagram throws
// or half-applies a connection; everything refused is counted.

import type { Balancer } from "../balancer/balancer.js";
import type { SyncImportResult, SyncRecord } from "../balancer/sync-records.js";
import { fromSyncConnection } from "./convert.js";
import { decodeMessage, SyncMessageRejected, type MessageRejection } from "./wire.js";

export interface SyncReceiverStats {
  /** Datagrams handed to the receiver. */
  messages: number;
  /** Whole messages refused: too short, size field not the datagram's, another syncid. */
  rejected: Record<MessageRejection, number>;
  /** Messages cut short by a malformed connection (the connections before it were applied). */
  truncated: number;
  /** Connections skipped one by one (unknown protocol, state or mandatory option). */
  skipped: number;
  /** Connections applied, by outcome. */
  imported: Record<SyncImportResult, number>;
}

export interface SyncReceiverOptions {
  /** Accept only this syncid; 0 (the default) accepts every one, as the kernel does. */
  readonly syncId?: number;
  /** Millisecond clock of the Balancer (the one its process() calls use). */
  readonly clock: () => number;
  /** One line per refused message (rate-limit it yourself if the link is hostile). */
  readonly log?: (line: string) => void;
  /** Imports only the connections this accepts (lvsd --workers: those this worker owns). Default: all. */
  readonly accept?: (record: SyncRecord) => boolean;
}

export class SyncReceiver {
  readonly stats: SyncReceiverStats = {
    messages: 0,
    rejected: { short: 0, "bad-size": 0, "wrong-syncid": 0 },
    truncated: 0,
    skipped: 0,
    imported: { created: 0, updated: 0, stale: 0, "no-destination": 0, "table-full": 0, "no-local-address": 0, "local-port-in-use": 0 },
  };

  constructor(
    private readonly balancer: Balancer,
    private readonly options: SyncReceiverOptions,
  ) {}

  /** Decodes one datagram and applies its connections. Never throws. */
  handle(datagram: Uint8Array): void {
    this.stats.messages++;
    let decoded: ReturnType<typeof decodeMessage>;
    try {
      decoded = decodeMessage(datagram, this.options.syncId ?? 0);
    } catch (e) {
      if (e instanceof SyncMessageRejected) {
        this.stats.rejected[e.reason]++;
        this.options.log?.(`sync message refused: ${e.message}`);
        return;
      }
      throw e;
    }
    if (decoded.fault) {
      this.stats.truncated++;
      this.options.log?.(`sync message cut short: ${decoded.fault}`);
    }
    this.stats.skipped += decoded.skipped;
    const now = Math.floor(this.options.clock());
    for (const c of decoded.connections) {
      const record = fromSyncConnection(c);
      if (!record) {
        this.stats.skipped++;
        continue;
      }
      if (this.options.accept && !this.options.accept(record)) continue; // another worker's
      this.stats.imported[this.balancer.importConnection(record, now)]++;
    }
  }
}
