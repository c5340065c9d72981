// Datapath switches (the sysctls IPVS users know) and the shared scratch records.

import { ACTION_SIZE } from "../forward/action";
import { FK_SIZE } from "../sched/table";

/** Drop connections whose destination was removed, on their next packet (expire_nodest_conn). */
export let expireNodestConn: bool = false;
/** A quiesced (weight 0) destination's persistence templates stop pinning (expire_quiescent_template). */
export let expireQuiescentTemplate: bool = false;
/**
 * conn_reuse_mode: bit 0, a SYN on a TIME_WAIT connection starts a new one, rescheduled;
 * bit 1 also on a FIN_WAIT connection of DR / TUN (no replies seen). Kernel default 1.
 */
export let connReuseMode: u32 = 1;
/** sloppy_tcp: any TCP packet but RST may create a connection, not only a SYN. */
export let sloppyTcp: bool = false;
/** sloppy_sctp: any SCTP packet but ABORT may create a connection, not only INIT. */
export let sloppySctp: bool = false;
/** schedule_icmp: an ICMP error about no known connection is scheduled as a new flow. */
export let scheduleIcmp: bool = false;

export function setSwitches(nodest: u32, quiescent: u32, reuse: u32): void {
  expireNodestConn = nodest != 0;
  expireQuiescentTemplate = quiescent != 0;
  connReuseMode = reuse;
}

export function setSloppy(tcp: bool, sctp: bool): void {
  sloppyTcp = tcp;
  sloppySctp = sctp;
}
export function setScheduleIcmp(on: bool): void {
  scheduleIcmp = on;
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
