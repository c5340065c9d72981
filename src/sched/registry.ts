// Schedulers written in TypeScript, registered by name. The registry is process-wide, so
// every ServiceTable (and the Balancer and lvsadm above it) resolves a custom name the way
// it resolves a built-in one. A custom scheduler is called only for new flows.

import type { FlowKey } from "./flow.js";
import { SchedulerConfigError } from "./errors.js";

/** A destination as a scheduler sees it (counters and flags as of this call). */
export interface DestinationState {
  /** Stable id: what schedule() returns and the connection table keeps. */
  readonly id: number;
  /** Index in the service's list (the kernel's list order: newest first). */
  readonly position: number;
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  /** 0..65535; 0 = quiesced (no new connections). */
  readonly weight: number;
  /** The last non-zero weight (what Maglev builds from). */
  readonly lastWeight: number;
  readonly activeConnections: number;
  readonly inactiveConnections: number;
  readonly persistentConnections: number;
  readonly upperThreshold: number;
  readonly lowerThreshold: number;
  /** Set by the kernel's threshold rule; most schedulers skip overloaded destinations. */
  readonly overloaded: boolean;
}

/** What a custom scheduler receives for one new flow. */
export interface ScheduleContext {
  readonly service: number;
  /** The service's -b flags, by name ("flag-1", ... or the scheduler's own names). */
  readonly flags: readonly string[];
  /** The destinations in list order (newest first, as the kernel's list). */
  readonly destinations: readonly DestinationState[];
  readonly flow: Required<FlowKey>;
  /** Host time in ms as last given to setNow()/tick(). */
  readonly now: number;
}

/**
 * Returns the index (into ctx.destinations) of the chosen destination, or -1 for none.
 * Must not throw for ordinary input: an exception propagates out of schedule().
 */
export type CustomSchedulerFn = (ctx: ScheduleContext) => number;

export interface CustomSchedulerOptions {
  /** -b flag names in bit order (flag 1, 2, 3). Default: none beyond flag-1..flag-3. */
  readonly flagNames?: readonly string[];
}

export interface CustomScheduler {
  readonly name: string;
  readonly handle: number;
  readonly schedule: CustomSchedulerFn;
  readonly flagNames: readonly string[];
}

/** The kernel's scheduler names (the data plane's registry may add more). */
export const KERNEL_SCHEDULERS = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "sh", "dh", "lblc", "lblcr", "mh"] as const;

const byName = new Map<string, CustomScheduler>();
const byHandle = new Map<number, CustomScheduler>();
let nextHandle = 1;

const NAME = /^[a-z][a-z0-9_-]{0,15}$/;

/** Registers a TypeScript scheduler under `name` (usable as `-s name`, like a built-in). */
export function registerScheduler(name: string, schedule: CustomSchedulerFn, options: CustomSchedulerOptions = {}): CustomScheduler {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new SchedulerConfigError(`scheduler name: ${JSON.stringify(name)} must match ${NAME.source} (like ipvsadm's names)`);
  }
  if ((KERNEL_SCHEDULERS as readonly string[]).includes(name)) {
    throw new SchedulerConfigError(`scheduler name: "${name}" is a built-in scheduler; pick another name`);
  }
  if (byName.has(name)) throw new SchedulerConfigError(`scheduler name: "${name}" is already registered; unregisterScheduler() it first`);
  if (typeof schedule !== "function") throw new SchedulerConfigError(`scheduler "${name}": schedule must be a function (ctx) => index`);
  const flagNames = options.flagNames ?? [];
  if (flagNames.length > 3 || flagNames.some((f) => !/^[a-z][a-z0-9-]*$/.test(f))) {
    throw new SchedulerConfigError(`scheduler "${name}": flagNames takes up to 3 lower-case names, got ${JSON.stringify(flagNames)}`);
  }
  const entry: CustomScheduler = { name, handle: nextHandle++, schedule, flagNames: [...flagNames] };
  byName.set(name, entry);
  byHandle.set(entry.handle, entry);
  return entry;
}

/** Removes a registration; services still using it then get no destination. */
export function unregisterScheduler(name: string): boolean {
  const entry = byName.get(name);
  if (!entry) return false;
  byName.delete(name);
  byHandle.delete(entry.handle);
  return true;
}

export function customScheduler(name: string): CustomScheduler | undefined {
  return byName.get(name);
}
export function customSchedulerByHandle(handle: number): CustomScheduler | undefined {
  return byHandle.get(handle);
}
export function customSchedulerNames(): string[] {
  return [...byName.keys()];
}
