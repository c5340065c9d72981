// Connection sync (IPVS's sync daemon): the kernel's wire format, the master's sender, the
// backup's receiver, and the daemons that put them on multicast sockets. See docs/sync.md.
export * from "./wire.js";
export { toSyncConnection, fromSyncConnection } from "./convert.js";
export { SyncReceiver } from "./receiver.js";
export type { SyncReceiverOptions, SyncReceiverStats } from "./receiver.js";
export { SyncSender, DEFAULT_MAXLEN, DEFAULT_QLEN_MAX } from "./sender.js";
export type { SyncSenderOptions, SyncSenderStats } from "./sender.js";
