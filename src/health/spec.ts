// What the health checker is told to do: virtual services, their real servers, and the
// checks on each, with keepalived 2.2's options and defaults (keepalived.conf(5)). The
// keepalived.conf reader produces these; the TypeScript API takes them directly.
// Times are milliseconds (keepalived.conf's seconds are converted by the reader).
import type { DestinationConfig, ServiceConfig } from "../config/types.js";

/** Options every checker has (keepalived's "generic connection options" and timers). */
export interface CheckTimers {
  /** Time between checks (delay_loop). keepalived's default 60 s. */
  readonly delayLoop: number;
  /** Connection / request timeout (connect_timeout). Default 5 s. */
  readonly connectTimeout: number;
  /** Extra checks of an alive server before it is declared down (retry). Default 1; MISC_CHECK 0; DNS_CHECK 3. */
  readonly retry: number;
  /** Delay between those extra checks (delay_before_retry). Default 1 s; HTTP_GET / SSL_GET 3 s; DNS_CHECK delay_loop. */
  readonly delayBeforeRetry: number;
  /** The first check waits a random time up to this (warmup). Default delay_loop; 0 disables. */
  readonly warmup: number;
  /** The server starts down until this check's first success (alpha). Default false. */
  readonly alpha: boolean;
}

/** Where a network check connects (connect_ip, connect_port, bindto, bind_port). */
export interface CheckTarget {
  readonly address: string;
  readonly port: number;
  readonly bindto?: string;
  readonly bindPort?: number;
}

export interface HttpUrlSpec {
  readonly path: string;
  /** MD5 of the body, 32 hex digits (keepalived's genhash). */
  readonly digest?: string;
  /** Accepted status codes; default 200..299. */
  readonly statusCodes: ReadonlyArray<readonly [number, number]>;
  readonly virtualhost?: string;
}

export type CheckSpec =
  | ({ readonly type: "TCP_CHECK" } & CheckTimers & CheckTarget)
  | ({
      readonly type: "HTTP_GET" | "SSL_GET";
      readonly urls: readonly HttpUrlSpec[];
      /** Host header when a url has none (checker, real server or virtual server virtualhost). */
      readonly virtualhost?: string;
      /** HTTP/1.0 (default), 1.0C (1.0 + Connection: close) or 1.1. */
      readonly httpProtocol: "1.0" | "1.0C" | "1.1";
      /** SSL_GET: send SNI (enable_sni). */
      readonly enableSni?: boolean;
      /** Check the urls back to back, without delay_loop between them, while not up (fast_recovery). */
      readonly fastRecovery?: boolean;
    } & CheckTimers &
      CheckTarget)
  | ({
      readonly type: "MISC_CHECK";
      /** The program and its arguments (misc_path, split as keepalived splits it). */
      readonly command: readonly string[];
      /** Kill the program after this long (misc_timeout); default delay_loop. */
      readonly timeout: number;
      /** Exit status 2..255 sets the weight to status - 2 (misc_dynamic). */
      readonly dynamic: boolean;
    } & CheckTimers)
  | ({
      readonly type: "DNS_CHECK";
      /** Query type (A, NS, CNAME, SOA, MX, TXT, AAAA); default SOA. */
      readonly queryType: string;
      /** Name to ask for; default ".". */
      readonly name: string;
    } & CheckTimers &
      CheckTarget);

export type CheckType = CheckSpec["type"];

export interface RealServerSpec {
  /** The destination as the Balancer takes it; its weight is the configured (initial) weight. */
  readonly destination: DestinationConfig;
  readonly checks: readonly CheckSpec[];
  /** A failed server stays in the table at weight 0 (connections drain) instead of being removed. */
  readonly inhibitOnFailure: boolean;
  /** Programs run (without a shell) when the server goes up / down (notify_up, notify_down). */
  readonly notifyUp?: readonly string[];
  readonly notifyDown?: readonly string[];
  /** keepalived.conf line of the real_server block, for messages. */
  readonly source?: string;
}

export interface SorryServerSpec {
  readonly destination: DestinationConfig;
  /** sorry_server_inhibit: kept in the table at weight 0 while quorum holds. */
  readonly inhibit: boolean;
}

export interface VirtualServerSpec {
  /**
   * The virtual services: one for `virtual_server IP PORT` or `fwmark N`, one per member for
   * `virtual_server group NAME`; they share the real servers and their checks.
   */
  readonly services: readonly ServiceConfig[];
  readonly realServers: readonly RealServerSpec[];
  /** Minimum total weight of live real servers (quorum); default 1. */
  readonly quorum: number;
  /** Flap dampener around the quorum (hysteresis); default 0. */
  readonly hysteresis: number;
  readonly sorryServer?: SorryServerSpec;
  /** Programs run when quorum is gained / lost (quorum_up, quorum_down). */
  readonly quorumUp?: readonly string[];
  readonly quorumDown?: readonly string[];
  /** keepalived.conf line of the virtual_server block, for messages. */
  readonly source?: string;
}

/** Everything the health checker runs. */
export interface HealthConfig {
  readonly virtualServers: readonly VirtualServerSpec[];
}

/** keepalived's defaults for a checker of `type` given its timers so far. */
export const KEEPALIVED_DEFAULTS = {
  delayLoop: 60_000,
  connectTimeout: 5_000,
  retry: { TCP_CHECK: 1, HTTP_GET: 1, SSL_GET: 1, MISC_CHECK: 0, DNS_CHECK: 3 } satisfies Record<CheckType, number>,
  delayBeforeRetry: { TCP_CHECK: 1_000, HTTP_GET: 3_000, SSL_GET: 3_000, MISC_CHECK: 1_000 } as Partial<Record<CheckType, number>>,
  statusCodes: [[200, 299]] as ReadonlyArray<readonly [number, number]>,
  persistenceTimeout: 360,
  scheduler: "wlc",
} as const;

/**
 * The longest time from a server failing (refusing, or not answering, every attempt) to the
 * checker declaring it down: the wait for the next check, every attempt timing out, and
 * the delays between them. keepalived's bound, which the acceptance test asserts.
 */
export function worstDetectionMs(t: Pick<CheckTimers, "delayLoop" | "connectTimeout" | "retry" | "delayBeforeRetry">): number {
  return t.delayLoop + t.connectTimeout * (t.retry + 1) + t.delayBeforeRetry * t.retry;
}
