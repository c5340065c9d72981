// The shape every scheduler has, as in the kernel's struct ip_vs_scheduler: a name, the
// ipvsadm -b flag names it accepts, schedule() for a new flow, and optional hooks for
// service set-up, tear-down and destination changes. One file per scheduler exports one of
// these; registry.ts lists them.

/** Returns the chosen destination id, or -1 for none. key points at a flow key (table.ts). */
export type ScheduleFn = (svc: u32, key: usize) => i32;
/** Called once when a service takes this scheduler; returns 0 or a negative E_* code. */
export type InitFn = (svc: u32) => i32;
export type DoneFn = (svc: u32) => void;
/**
 * Called after destination `dest` at list position `pos` was added, removed (the list is
 * already compacted, as the kernel's list is already unlinked) or edited.
 */
export type ChangeFn = (svc: u32, kind: u32, pos: u32, dest: u32) => void;

export type TickFn = (svc: u32, now: u32) => void;

export const CHANGE_ADD: u32 = 0;
export const CHANGE_DEL: u32 = 1;
/** Weight or thresholds edited; last non-zero weight unchanged. */
export const CHANGE_UPD: u32 = 2;
/** Edited, and the last non-zero weight changed (Maglev rebuilds only then). */
export const CHANGE_UPD_LAST_WEIGHT: u32 = 3;

export class Scheduler {
  constructor(
    public name: string,
    /** Comma-separated -b flag names in bit order (flag 1, flag 2, flag 3); "" = flag-1..3. */
    public flagNames: string,
    public schedule: ScheduleFn,
    public init: InitFn = noInit,
    public done: DoneFn = noDone,
    public changed: ChangeFn = noChange,
    /** Periodic work (the lblc/lblcr collectors), run by schedTick(now). */
    public tick: TickFn = noTick,
  ) {}
}

export function noInit(svc: u32): i32 {
  return 0;
}
export function noDone(svc: u32): void {}
export function noChange(svc: u32, kind: u32, pos: u32, dest: u32): void {}
export function noTick(svc: u32, now: u32): void {}

// Error codes shared by the scheduler ABI (negative results).
export const E_NO_SERVICE_SLOT: i32 = -1;
export const E_UNKNOWN_SCHEDULER: i32 = -2;
export const E_MH_SIZE: i32 = -3;
export const E_NO_MH_TABLE: i32 = -4;
export const E_TOO_MANY_DESTS: i32 = -5;
export const E_NO_DEST_SLOT: i32 = -6;
export const E_BAD_FAMILY: i32 = -7;
export const E_BAD_WEIGHT: i32 = -8;
export const E_BAD_SERVICE: i32 = -9;
export const E_DUPLICATE_DEST: i32 = -10;
export const E_BAD_DEST: i32 = -11;
export const E_NOT_INITIALISED: i32 = -12;
export const E_BAD_PORT: i32 = -13;
