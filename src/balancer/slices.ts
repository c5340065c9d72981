// Cooperative slices for long control-plane work (a 200,000-destination restore, a listing
// of 50,000 services) on the thread that also runs the packet loop: the work checks
// due() between small units (a service, a line) and, when its time slice is used up,
// awaits pause(), which lets the event loop run the Director's batches, timers and
// signals before the next slice. See docs/daemon.md, "Large changes in slices".

/** Default length of one slice: long enough to amortise the pause, short enough for packets. */
export const DEFAULT_SLICE_MS = 2;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Slicer {
  private started = performance.now();
  /** Slices ended so far (pauses taken). */
  slices = 0;
  /** The longest slice so far, in ms (the longest the packet loop waited for this work). */
  longestMs = 0;

  /**
   * @param sliceMs how long one slice may run (Infinity: one slice, never pauses)
   * @param pause what ends a slice (default: the next turn of the event loop, setImmediate)
   */
  constructor(
    readonly sliceMs = DEFAULT_SLICE_MS,
    private readonly pause: () => Promise<void> = nextTurn,
  ) {}

  /** True when the current slice has used its time: call pauseNow() before going on. */
  due(): boolean {
    return this.sliceMs !== Infinity && performance.now() - this.started >= this.sliceMs;
  }

  /** Ends the slice: lets the event loop run, then starts the next one. */
  async pauseNow(): Promise<void> {
    this.longestMs = Math.max(this.longestMs, performance.now() - this.started);
    this.slices++;
    await this.pause();
    this.started = performance.now();
  }

  /** Pauses when the slice is used up. */
  async maybePause(): Promise<void> {
    if (this.due()) await this.pauseNow();
  }

  /** Ends the accounting of the last slice (longestMs includes it). */
  finish(): void {
    this.longestMs = Math.max(this.longestMs, performance.now() - this.started);
  }
}

/** One slice for everything: the synchronous library calls (Balancer.applyRules). */
export const NO_SLICES = (): Slicer => new Slicer(Infinity);
