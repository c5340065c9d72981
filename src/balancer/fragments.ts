// IP fragment tracking, the host side: the Balancer's options (the kernel's ipfrag_time and
// ipfrag_high_thresh roles), their validation, and the counters read from wasm memory.
// The data plane's half is assembly/datapath/fragments.ts; docs/fragments.md explains both.

import { ConfigError } from "../config/types.js";

/** How fragmented datagrams are tracked (BalancerOptions.fragments). */
export interface FragmentOptions {
  /** Datagrams tracked at once; 0 turns tracking off (later fragments are then dropped). Default 1024. */
  readonly datagrams?: number;
  /**
   * Bytes for later fragments that arrive before their first (held until it comes), like
   * the kernel's ipfrag_high_thresh. Carved at start-up, never grown. Default 4 MiB; 0 holds
   * nothing (such fragments are dropped as `fragment-no-room`).
   */
  readonly memory?: number;
  /** Milliseconds a datagram may take to arrive whole, like ipfrag_time. Default 30,000. */
  readonly timeoutMs?: number;
}

/** Fragment counters since start-up (all but the two gauges only grow). */
export interface FragmentStats {
  /** Fragments seen. */
  readonly fragments: number;
  /** Datagrams tracked. */
  readonly datagrams: number;
  /** Datagrams whose every byte was seen. */
  readonly completed: number;
  /** Later fragments held until their first fragment. */
  readonly held: number;
  /** Held fragments sent on after their first. */
  readonly released: number;
  /** Datagrams that ran out of time before every byte was seen. */
  readonly timeouts: number;
  /** Held fragments discarded (their datagram timed out or was killed). */
  readonly heldDropped: number;
  /** Datagrams killed by an overlapping fragment. */
  readonly overlaps: number;
  /** Duplicate fragments dropped. */
  readonly duplicates: number;
  /** Datagrams killed for exceeding 65,535 bytes. */
  readonly tooBig: number;
  /** Datagrams killed for a fragment contradicting their geometry. */
  readonly invalid: number;
  /** Fragments dropped for want of room (table full or held memory full). */
  readonly noRoom: number;
  /** Fragments dropped because their datagram had been killed. */
  readonly failedDrops: number;
  /** Gauge: bytes of held fragments now (in 256-byte blocks). */
  readonly memoryInUse: number;
  /** Gauge: datagrams tracked now. */
  readonly datagramsInUse: number;
}

const FIELDS = [
  "fragments",
  "datagrams",
  "completed",
  "held",
  "released",
  "timeouts",
  "heldDropped",
  "overlaps",
  "duplicates",
  "tooBig",
  "invalid",
  "noRoom",
  "failedDrops",
  "memoryInUse",
  "datagramsInUse",
] as const satisfies readonly (keyof FragmentStats)[];

export const FRAGMENT_DEFAULTS = { datagrams: 1024, memory: 4 * 1024 * 1024, timeoutMs: 30_000 } as const;

/** The options with defaults filled in; a bad value throws a ConfigError naming it. */
export function normaliseFragmentOptions(o: FragmentOptions = {}): Required<FragmentOptions> {
  const out = { ...FRAGMENT_DEFAULTS, ...o };
  const check = (name: keyof FragmentOptions, min: number, max: number) => {
    const v = out[name];
    if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`fragments.${name}: ${v} is not an integer in ${min}..${max}`);
  };
  check("datagrams", 0, 1 << 20);
  check("memory", 0, 1 << 30);
  check("timeoutMs", 1, 3_600_000);
  return out;
}

/** Reads the counters block (u64 each, FIELDS order) at `base` in wasm memory. */
export function readFragmentStats(bytes: Uint8Array, base: number, count: number): FragmentStats {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, number> = {};
  FIELDS.forEach((name, i) => {
    out[name] = i < count ? Number(view.getBigUint64(base + i * 8, true)) : 0;
  });
  return out as unknown as FragmentStats;
}
