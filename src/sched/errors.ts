// One error type for scheduler configuration: a one-line message naming the field, what was
// given and what is allowed. Thrown before anything is applied.

export class SchedulerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SchedulerConfigError";
  }
}

/** Error codes returned by the wasm scheduler ABI (assembly/sched/scheduler.ts). */
export const SchedCode = {
  NoServiceSlot: -1,
  UnknownScheduler: -2,
  MaglevSize: -3,
  NoMaglevTable: -4,
  TooManyDestinations: -5,
  NoDestinationSlot: -6,
  BadFamily: -7,
  BadWeight: -8,
  BadService: -9,
  DuplicateDestination: -10,
  BadDestination: -11,
  NotInitialised: -12,
  BadPort: -13,
} as const;

const MESSAGES: Record<number, string> = {
  [-1]: "no free service slot: the service table is full (lvsd --max-services N; maxServices in the library)",
  [-2]: "scheduler: unknown scheduler id",
  [-3]: "maglevSize: must be a prime no larger than maglevMaxSize",
  [-4]: "no free Maglev table: every mh table is in use (maglevTables in the library)",
  [-5]: "too many destinations for this service (lvsd --destinations-per-service N; an mh service holds at most its table size M)",
  [-6]: "no free destination slot: the destination table is full (lvsd --max-destinations N; maxDestinations in the library)",
  [-7]: "address: family must be 4 or 6",
  [-8]: "weight: must be an integer in 0..65535",
  [-9]: "service: no such service",
  [-10]: "destination: this address and port are already in the service",
  [-11]: "destination: no such destination",
  [-12]: "the scheduler tables are not initialised",
  [-13]: "port: must be an integer in 0..65535",
};

/** Throws a SchedulerConfigError for a negative wasm result; returns it otherwise. */
export function checkCode(code: number, context: string): number {
  if (code >= 0) return code;
  throw new SchedulerConfigError(`${context}: ${MESSAGES[code] ?? `error ${code}`}`);
}
