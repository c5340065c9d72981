// ABI of the connection table and the TCP state machine (start-up, inspection, tests).
// The datapath drives the table internally; these exports let the host list connections,
// change timeouts (ipvsadm --set) and test the table in isolation.

import {
  initConnTable, connBase, connCapacity, connUsed, connBytesPerEntry, lookupIn, lookupOut,
  insertConn, insertConnHashed, tupleHash, flushDeferred, removeConn, touchConn, connExpired,
  connRemaining, connInUse, CONN_SIZE, F_TEMPLATE,
} from "../conn/conn-table";
import {
  tcpNextState, setStateTimeout, stateTimeout, resetTimeouts, useSecureTcpTable, secureTcpTableInForce,
} from "../conn/tcp-states";
import { paramsBase } from "../layout";

export function connInit(capacity: u32, seed: u32): u32 {
  return initConnTable(capacity, seed) ? 0 : 1;
}
export function regionConns(): usize { return connBase; }
export function connRecordBytes(): u32 { return CONN_SIZE; }
export function connTableCapacity(): u32 { return connCapacity; }
export function connTableUsed(): u32 { return connUsed; }
export function connTableBytesPerEntry(): u32 { return connBytesPerEntry(); }
export function connIsInUse(i: u32): u32 { return i < connCapacity && connInUse(i) ? 1 : 0; }
export function connIsExpired(i: u32, now: u32): u32 { return connExpired(i, now) ? 1 : 0; }
export function connRemainingMs(i: u32, now: u32): u32 { return connRemaining(i, now); }

export function tcpTransition(direction: u32, tcpFlags: u32, state: u32): u32 {
  return tcpNextState(direction, tcpFlags, state);
}
/** 1: transitions follow tcp_states_dos (secure_tcp in force), 0: tcp_states. */
export function tcpSecureTable(on: u32): void { useSecureTcpTable(on != 0); }
export function tcpSecureTableInForce(): u32 { return secureTcpTableInForce() ? 1 : 0; }
export function timeoutSet(state: u32, ms: u32): u32 { return setStateTimeout(state, ms) ? 1 : 0; }
export function timeoutGet(state: u32): u32 { return stateTimeout(state); }
export function timeoutsReset(): void { resetTimeouts(); }

// Test hooks: addresses come from the params block: caddr at +0, vaddr at +16, daddr at +32.
/** indexReplies: 0 no reply-side entry, 1 entered at once, 2 queued as the datapath does. */
export function connTestInsert(proto: u32, family: u32, cport: u32, vport: u32, dport: u32, flags: u32, indexReplies: u32): u32 {
  if (indexReplies == 2) {
    const h = tupleHash(proto, family, paramsBase, cport, paramsBase + 16, vport, (flags & F_TEMPLATE) != 0);
    return insertConnHashed(h, proto, family, paramsBase, cport, paramsBase + 16, vport, paramsBase + 32, dport, flags, true, true);
  }
  return insertConn(proto, family, paramsBase, cport, paramsBase + 16, vport, paramsBase + 32, dport, flags, indexReplies != 0);
}
/** Enters the queued reply-side entries (the datapath does this after every chunk). */
export function connTestFlushDeferred(): void { flushDeferred(); }
export function connTestLookupIn(proto: u32, family: u32, cport: u32, vport: u32, template: u32): u32 {
  return lookupIn(proto, family, paramsBase, cport, paramsBase + 16, vport, template != 0);
}
export function connTestLookupOut(proto: u32, family: u32, dport: u32, cport: u32): u32 {
  return lookupOut(proto, family, paramsBase + 32, dport, paramsBase, cport);
}
export function connTestRemove(i: u32): void { removeConn(i); }
export function connTestTouch(i: u32, now: u32, timeoutMs: u32): void { touchConn(i, now, timeoutMs); }
