// Transparent huge pages for the data plane's memory. At a million flows the connection
// table is ~110 MB: with 4 KiB pages nearly every lookup also misses the TLB, and on a VM
// each miss is a two-dimensional page walk. madvise(MADV_HUGEPAGE) asks the kernel to back
// the region with 2 MiB pages as it is first touched, which is why it must run before the
// tables are carved (Balancer's `prepareMemory` hook), not after. Best effort: with THP
// "never", without koffi, or off Linux it changes nothing and says why.

import { readFileSync } from "node:fs";
import type { WasmMemory } from "../core/wasm.js";
import { libc } from "./libc.js";

const MADV_HUGEPAGE = 14;
const HUGE_PAGE = 2 * 1024 * 1024;
/**
 * How far past the memory's start to advise: the whole 32-bit space. V8 reserves at least
 * that for a wasm32 memory (the pages past its current size are mapped inaccessible), so
 * the advice covers what later growth makes accessible; the kernel applies advice to
 * every mapped range and reports ENOMEM only for gaps, which is not a failure here.
 */
const ADVISE_SPAN = 4 * 1024 * 1024 * 1024;
const ENOMEM = 12;

export interface HugePageAdvice {
  /** Whether the kernel took the advice. */
  readonly applied: boolean;
  /** Why not, when it was not (one line). */
  readonly reason?: string;
}

/** The system's THP mode (always, madvise, never), or null where there is none. */
export function transparentHugePageMode(): string | null {
  try {
    const text = readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
    return /\[(\w+)\]/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Advises huge pages for a wasm memory. Pass it as `prepareMemory` to `new Balancer` so
 * that it runs before the connection table is allocated. Never throws.
 */
export function adviseHugePages(memory: WasmMemory): HugePageAdvice {
  const mode = transparentHugePageMode();
  if (mode === null) return { applied: false, reason: "this system has no transparent huge pages" };
  if (mode === "never") return { applied: false, reason: "transparent huge pages are off (never)" };
  try {
    const c = libc();
    const start = c.address(memory.buffer);
    // madvise wants a page-aligned start; round up to the first 2 MiB boundary inside.
    const aligned = (start + BigInt(HUGE_PAGE - 1)) & ~BigInt(HUGE_PAGE - 1);
    const span = ADVISE_SPAN - Number(aligned - start);
    if (c.madvise(aligned, span, MADV_HUGEPAGE) !== 0 && c.errno() !== ENOMEM) {
      return { applied: false, reason: `madvise(MADV_HUGEPAGE) failed: errno ${c.errno()}` };
    }
    return { applied: true };
  } catch (e) {
    return { applied: false, reason: (e as Error).message };
  }
}

/** Bytes of the mapping containing `memory` that are backed by huge pages (smaps). */
export function hugePageBytes(memory: WasmMemory): number {
  const start = libc().address(memory.buffer);
  let inRange = false;
  let total = 0;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      const lo = BigInt(`0x${range[1]}`);
      const hi = BigInt(`0x${range[2]}`);
      inRange = start + BigInt(memory.buffer.byteLength) > lo && start < hi;
    } else if (inRange && line.startsWith("AnonHugePages:")) {
      total += Number(/(\d+)/.exec(line)![1]) * 1024;
    }
  }
  return total;
}
