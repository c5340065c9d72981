// Expiry: a sweep over the connection table, a bounded number of entries per call, that
// removes entries past their time (with their accounting). Templates that still control
// connections live on, as the kernel's expire_later. Lookups also expire what they find
// stale, so a slow sweep never lets a dead flow carry traffic.

import { connCapacity, connInUse, connExpired, connPtr, C_FLAGS, C_DEST, F_TEMPLATE, F_IN_USE } from "../conn/conn-table";
import { templateOutlives } from "./persist";
import { dropConn } from "./accounting";

let cursor: u32 = 0;

/** Examines up to `budget` entries from where the last call stopped; returns how many expired. */
export function expireSweep(now: u32, budget: u32): u32 {
  if (connCapacity == 0) return 0;
  if (budget > connCapacity) budget = connCapacity;
  let expired: u32 = 0;
  for (let k: u32 = 0; k < budget; k++) {
    const i = cursor;
    cursor = cursor + 1 < connCapacity ? cursor + 1 : 0;
    if (!connInUse(i) || !connExpired(i, now)) continue;
    if ((<u32>load<u16>(connPtr(i) + C_FLAGS) & F_TEMPLATE) != 0 && templateOutlives(i, now)) continue;
    dropConn(i);
    expired++;
  }
  return expired;
}

/** Removes every connection and template of destination d (expire_nodest_conn on removal). */
export function dropDestConnections(d: u32): u32 {
  let dropped: u32 = 0;
  // Connections first, so their templates' control counts reach zero before the templates go.
  for (let pass = 0; pass < 2; pass++) {
    for (let i: u32 = 0; i < connCapacity; i++) {
      const c = connPtr(i);
      const flags = <u32>load<u16>(c + C_FLAGS);
      if ((flags & F_IN_USE) == 0 || load<u32>(c + C_DEST) != d) continue;
      if (((flags & F_TEMPLATE) != 0) != (pass == 1)) continue;
      dropConn(i);
      dropped++;
    }
  }
  return dropped;
}
