// The stall watchdog of bench:system: while a measurement runs, a progress counter (packets
// the client and the real servers received: traffic that made it through the system under
// test) is sampled every few hundred milliseconds; a stretch of `windowMs` (2 s) without
// growth is a stall, reported once per stretch with a snapshot of lvsd's counters and the
// kernel's taken at that moment (see run.ts). The detection is pure (StallDetector) so that
// a unit test can feed it a stalled series without any timing (test/bench-watchdog.test.ts).

/** A stretch without progress. Times in milliseconds, as the samples give them. */
export interface Stall {
  /** When the counter last grew. */
  readonly since: number;
  /** The sample at which the stall was detected (since + windowMs or later). */
  readonly detectedAt: number;
  /** The counter's value during the stretch. */
  readonly value: number;
}

/**
 * Fed one sample at a time; push() returns a Stall the first time the counter has not grown
 * for `windowMs`, then nothing until it grows again. A counter that goes down (a reset, a
 * restarted process) counts as a change, not as a stall.
 */
export class StallDetector {
  private lastValue: number | undefined;
  private lastChange = 0;
  private reported = false;

  constructor(readonly windowMs = 2000) {
    if (!(windowMs > 0)) throw new RangeError(`stall window ${windowMs} ms must be positive`);
  }

  push(t: number, value: number): Stall | null {
    if (this.lastValue === undefined || value !== this.lastValue) {
      this.lastValue = value;
      this.lastChange = t;
      this.reported = false;
      return null;
    }
    if (!this.reported && t - this.lastChange >= this.windowMs) {
      this.reported = true;
      return { since: this.lastChange, detectedAt: t, value };
    }
    return null;
  }
}

/** Every stall in a whole series of [time ms, value] samples. */
export function findStalls(samples: ReadonlyArray<readonly [number, number]>, windowMs = 2000): Stall[] {
  const d = new StallDetector(windowMs);
  const out: Stall[] = [];
  for (const [t, v] of samples) {
    const s = d.push(t, v);
    if (s) out.push(s);
  }
  return out;
}

/**
 * Runs beside a measurement: samples `progress()` every `intervalMs` and awaits
 * `onStall(stall)` (the snapshot) for each stall. stop() ends it and returns the stalls.
 * A failing progress read is skipped (the next one decides).
 */
export class StallWatchdog {
  private readonly detector: StallDetector;
  private readonly stalls: Stall[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly progress: () => Promise<number>,
    private readonly onStall: (stall: Stall) => Promise<void>,
    private readonly options: { intervalMs?: number; windowMs?: number; clock?: () => number } = {},
  ) {
    this.detector = new StallDetector(options.windowMs ?? 2000);
  }

  start(): this {
    const clock = this.options.clock ?? (() => performance.now());
    const interval = this.options.intervalMs ?? 250;
    this.loop = (async () => {
      while (!this.stopped) {
        let value: number | undefined;
        try {
          value = await this.progress();
        } catch {
          value = undefined;
        }
        if (this.stopped) break;
        if (value !== undefined) {
          const stall = this.detector.push(clock(), value);
          if (stall) {
            this.stalls.push(stall);
            await this.onStall(stall).catch(() => undefined);
          }
        }
        await new Promise<void>((r) => setTimeout(r, interval));
      }
    })();
    return this;
  }

  async stop(): Promise<Stall[]> {
    this.stopped = true;
    await this.loop;
    return this.stalls;
  }
}
