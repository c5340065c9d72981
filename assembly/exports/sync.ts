// ABI of connection sync (src/sync/): the master's ring of connections to send, and the
// backup's import of one received connection. Addresses come in the params block.

import { paramsBase } from "../layout";
import {
  initSync, setSyncMaster, syncSweep, setSyncParams, syncRing, syncCount, syncDropped, syncClear,
  SYNC_RECORD_SIZE,
} from "../datapath/sync";
import { importConn, importedIndex } from "../datapath/sync-import";

/** Carves the sync ring (`capacity` snapshots) and the per-record sync state; after connInit. */
export function syncInit(capacity: u32): u32 { return initSync(capacity) ? 0 : 1; }
export function syncMasterSet(on: u32): void { setSyncMaster(on != 0); }
/** sync_threshold, sync_period, sync_refresh_period (ms), sync_retries; 0 when accepted. */
export function syncParamsSet(threshold: u32, period: u32, refreshMs: u32, retries: u32): u32 {
  return setSyncParams(threshold, period, refreshMs, retries) ? 0 : 1;
}
export function regionSync(): usize { return syncRing(); }
export function syncRecordBytes(): u32 { return SYNC_RECORD_SIZE; }
export function syncPending(): u32 { return syncCount(); }
export function syncLost(): u32 { return syncDropped(); }
/** The host has read the ring: start over. */
export function syncReset(): void { syncClear(); }

/**
 * Imports one synced connection (caddr at params+0, vaddr at +16, daddr at +32, a full-NAT
 * local address at +48 with `lport`, 0 for none) onto destination `dest` of service `svc`.
 * Returns IMPORT_* (datapath/sync-import.ts).
 */
export function syncImport(
  svc: u32, dest: u32, proto: u32, family: u32, cport: u32, vport: u32, dport: u32,
  flags: u32, state: u32, timeoutMs: u32, fwmark: u32, now: u32, lport: u32,
): u32 {
  return importConn(
    svc, dest, proto, family, paramsBase, cport, paramsBase + 16, vport, paramsBase + 32, dport,
    flags, state, timeoutMs, fwmark, now, paramsBase + 48, lport,
  );
}
/** Record index of the last import's entry, or 0xffffffff. */
export function syncImportedIndex(): u32 { return importedIndex; }
/** Queues live entries not synced for ageMs (the table refresh); at most `budget` looked at. */
export function syncRefresh(now: u32, ageMs: u32, budget: u32): u32 { return syncSweep(now, ageMs, budget); }
