// One attempt of one check: what every checker returns. The retry and timing policy around
// attempts lives in check-state.ts; a probe only connects, asks and judges.
import type { CheckSpec } from "../spec.js";

export interface ProbeResult {
  readonly ok: boolean;
  /** What was seen, for the transition's log line ("connection refused", "status 404"). */
  readonly detail: string;
  /** MISC_CHECK: the program's exit status (0..255), when it exited. */
  readonly exitStatus?: number;
}

/** Runs one attempt; never rejects (a failure is a result). */
export type Probe = (spec: CheckSpec) => Promise<ProbeResult>;

/** The message of an error from a socket or a child process, short. */
export function errorText(e: unknown): string {
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "string") {
    const code = (e as { code: string }).code;
    const words: Record<string, string> = {
      ECONNREFUSED: "connection refused",
      ECONNRESET: "connection reset",
      EHOSTUNREACH: "host unreachable",
      ENETUNREACH: "network unreachable",
      ETIMEDOUT: "timed out",
      EADDRNOTAVAIL: "bindto address not available",
    };
    return words[code] ?? code;
  }
  return e instanceof Error ? e.message : String(e);
}

/** "10.0.0.1:80" or "[fd00::1]:80". */
export function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
