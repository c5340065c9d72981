// One checker's up/down state and retry counter, with keepalived's rules (check_tcp.c's
// epilog; the other checkers follow the same counting):
//
// - A checker starts up, or down with alpha. Its first failure takes it down at once ("one
//   failure is enough initially"): the retry counter starts full.
// - An up checker that fails is asked again `retry` times, `delay_before_retry` apart; the
//   (retry + 1)th failure in a row takes it down. A success resets the counter.
// - After a success, or a failure that decided, the next check is `delay_loop` later.
//
// So a server that stops answering is declared down at most delay_loop + connect_timeout x
// (retry + 1) + delay_before_retry x retry after it stopped (spec.ts, worstDetectionMs).
import type { CheckTimers } from "./spec.js";

export interface CheckOutcome {
  /** Milliseconds until the next attempt. */
  readonly delay: number;
  /** Set when this result changed the checker's state. */
  readonly transition: "up" | "down" | null;
  /** Failures in a row so far, when this failure did not decide (a retry follows). */
  readonly retrying: number;
  /** Failed attempts in a row, this one included (0 after a success). */
  readonly failuresInRow: number;
}

export class CheckState {
  up: boolean;
  hasRun = false;
  private retryIt: number;
  private failuresInRow = 0;

  constructor(private readonly timers: Pick<CheckTimers, "delayLoop" | "retry" | "delayBeforeRetry" | "alpha">) {
    this.up = !timers.alpha;
    this.retryIt = timers.retry;
  }

  /** Feeds one attempt's result; says when to try next and whether the state changed. */
  record(ok: boolean): CheckOutcome {
    const t = this.timers;
    let transition: CheckOutcome["transition"] = null;
    let delay: number;
    let retrying = 0;
    this.failuresInRow = ok ? 0 : this.failuresInRow + 1;
    if (ok || this.retryIt >= t.retry) {
      delay = t.delayLoop;
      this.retryIt = 0;
      if (ok && !this.up) transition = "up";
      else if (!ok && this.up) transition = "down";
      if (transition) this.up = transition === "up";
    } else {
      delay = t.delayBeforeRetry;
      this.retryIt++;
      retrying = this.retryIt;
    }
    this.hasRun = true;
    return { delay, transition, retrying, failuresInRow: this.failuresInRow };
  }
}
