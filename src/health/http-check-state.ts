// HTTP_GET / SSL_GET's own state, keepalived's check_http.c epilog: one url is asked per
// attempt, in turn.
//
// - Up: each success moves to the next url, delay_loop later; a failure is asked again on
//   the same url `retry` times, delay_before_retry apart, and the (retry + 1)th failure in a
//   row takes the checker down and remembers the failed url.
// - Down: the failed url is asked every max(delay_before_retry, delay_loop); when it
//   answers, every url is checked again from the first, one per delay_loop, and the checker
//   is up once all have passed (so one url needs two successes to come back).
// - fast_recovery removes the delay_loop between those checks while the checker is not up
//   (and before its first result).
// - Before the first result the retry counter is full: one failure takes it down.
import type { CheckOutcome } from "./check-state.js";
import type { CheckTimers } from "./spec.js";

export class HttpCheckState {
  up: boolean;
  hasRun = false;
  /** The url the next attempt asks. */
  url = 0;
  private failedUrl: number | null = null;
  private retryIt: number;
  private failuresInRow = 0;

  constructor(
    private readonly timers: Pick<CheckTimers, "delayLoop" | "retry" | "delayBeforeRetry" | "alpha">,
    private readonly urls: number,
    private readonly fastRecovery = false,
  ) {
    this.up = !timers.alpha;
    this.retryIt = timers.retry;
  }

  record(ok: boolean): CheckOutcome {
    const t = this.timers;
    let transition: CheckOutcome["transition"] = null;
    let retrying = 0;
    this.failuresInRow = ok ? 0 : this.failuresInRow + 1;
    if (ok) {
      this.retryIt = 0;
      const next = this.url + 1 < this.urls ? this.url + 1 : null;
      if (next === null && this.failedUrl === null) {
        // Every url passed.
        if (!this.up) transition = "up";
        this.up = true;
        this.hasRun = true;
        this.url = 0;
      } else if (this.failedUrl !== null) {
        // The failed url answers again: check them all from the first.
        this.failedUrl = null;
        this.url = 0;
      } else {
        this.url = next ?? 0;
      }
    } else if (this.up || !this.hasRun) {
      this.hasRun = true;
      this.retryIt++;
      if (this.retryIt > t.retry) {
        if (this.up) transition = "down";
        this.up = false;
        this.failedUrl = this.url;
      } else retrying = this.retryIt;
    }
    let delay: number;
    if (ok) {
      delay = t.delayLoop;
      if (!this.hasRun) this.retryIt = t.retry;
    } else delay = this.failedUrl !== null ? Math.max(t.delayBeforeRetry, t.delayLoop) : t.delayBeforeRetry;
    if (this.fastRecovery && (!this.hasRun || (!this.up && this.failedUrl === null))) delay = 0;
    return { delay, transition, retrying, failuresInRow: this.failuresInRow };
  }
}
