// Datapath switches (the sysctls IPVS users know) and the shared scratch records.

import { ACTION_SIZE } from "../forward/action";
import { FK_SIZE } from "../sched/table";

/** Drop connections whose destination was removed, on their next packet (expire_nodest_conn). */
export let expireNodestConn: bool = false;
/** A quiesced (weight 0) destination's persistence templates stop pinning (expire_quiescent_template). */
export let expireQuiescentTemplate: bool = false;
/** A SYN on a TIME_WAIT connection starts a new one, rescheduled (conn_reuse_mode 1). */
export let connReuse: bool = true;

export function setSwitches(nodest: u32, quiescent: u32, reuse: u32): void {
  expireNodestConn = nodest != 0;
  expireQuiescentTemplate = quiescent != 0;
  connReuse = reuse != 0;
}

/** Scratch: a flow key for the scheduler, an action record, and a masked client address. */
export let flowKey: usize = 0;
export let scratchAction: usize = 0;
export let scratchAddr: usize = 0;

export function initScratch(): void {
  if (flowKey != 0) return;
  flowKey = heap.alloc(FK_SIZE);
  scratchAction = heap.alloc(ACTION_SIZE);
  scratchAddr = heap.alloc(32);
}
