// `lvsadm drain` and `lvsadm undrain`: lvsd's own verbs beside ipvsadm's language. They
// reach lvsd as control requests whose argv starts with the verb, and answer with one line
// (or, with --json, the DrainStatus object) so that `lvsadm drain --wait` can poll.

import type { CommandResult } from "../admin/execute.js";
import type { DrainStatus, RouteAnnouncer } from "./announcer.js";

export const DRAIN_VERBS = ["drain", "undrain"] as const;
export type DrainVerb = (typeof DRAIN_VERBS)[number];

/** True when a control request's argv is one of lvsd's drain verbs. */
export function isDrainRequest(argv: readonly string[]): boolean {
  return (DRAIN_VERBS as readonly string[]).includes(argv[0] ?? "");
}

/** One line a person reads: what is announced, how long since the last forwarded packet. */
export function drainStatusLine(s: DrainStatus): string {
  const what = s.draining
    ? "draining: announcing nothing"
    : s.announced.length === 0
      ? "announcing nothing (no VIP has a destination with weight > 0)"
      : `announcing ${s.announced.join(", ")}`;
  return `${what}; last packet forwarded ${(s.quietMs / 1000).toFixed(1)} s ago; ${s.connections} connection entries`;
}

/**
 * Runs `drain [--status]` or `undrain` against the announcer. Without an announcer (lvsd
 * started without --announce) there is nothing to withdraw: a one-line refusal.
 */
export async function runDrainRequest(announcer: RouteAnnouncer | null, argv: readonly string[], json: boolean): Promise<CommandResult> {
  const [verb, ...rest] = argv;
  const usage = "usage: lvsadm drain [--status | --wait [--idle SECONDS] [--timeout SECONDS]] | lvsadm undrain";
  if (!announcer) {
    return { stdout: "", stderr: `lvsd: ${verb}: lvsd announces nothing (start it with --announce)\n`, exitCode: 2 };
  }
  const statusOnly = verb === "drain" && rest.length === 1 && rest[0] === "--status";
  if (rest.length > 0 && !statusOnly) return { stdout: "", stderr: `lvsd: ${usage}\n`, exitCode: 2 };
  const status = statusOnly ? announcer.status() : verb === "drain" ? await announcer.drain() : await announcer.undrain();
  return { stdout: json ? `${JSON.stringify(status)}\n` : `${drainStatusLine(status)}\n`, stderr: "", exitCode: 0 };
}
