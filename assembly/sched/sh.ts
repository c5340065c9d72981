// sh (ip_vs_sh.c): source hashing over 256 buckets. The buckets are filled by cycling the
// list, each destination taking `weight` consecutive buckets (weight 0 still takes one);
// refilled on every destination add, removal or edit. Key: hash_32(ntohs(sport) +
// ntohl(fold(saddr)), 8), sport only with sh-port (TCP, UDP, SCTP), else 0. A bucket whose
// destination has weight <= 0 or is overloaded gives none, unless sh-fallback, which probes
// bucket (offset + 2 * ihash) & 255 for offset 0..255: the kernel adds the original hash to
// the rotated offset, and we keep that quirk to pick what the kernel picks.

import { Scheduler, noDone } from "./scheduler";
import {
  nDests, destAt, weightOf, unavailable, statePtr, svcGet, S_FLAGS, SF_FLAG1, SF_FLAG2,
  FK_CADDR, FK_CPORT, FK_PROTO, FK_FAMILY,
} from "./table";
import { hash32, foldAddr } from "./hash";

export const SH_FALLBACK: u32 = SF_FLAG1;
export const SH_PORT: u32 = SF_FLAG2;

/** Fills 256 buckets: stride 1 (dh) or `weight` consecutive buckets per destination (sh). */
export function fillBuckets(svc: u32, weighted: bool): void {
  const b = statePtr(svc);
  const n = nDests(svc);
  let p: u32 = 0;
  let count: i32 = 0;
  for (let i: u32 = 0; i < 256; i++) {
    if (n == 0) {
      store<i32>(b + (<usize>i << 2), -1);
      continue;
    }
    const d = destAt(svc, p);
    store<i32>(b + (<usize>i << 2), <i32>d);
    count++;
    if (!weighted || count >= weightOf(d)) {
      count = 0;
      if (++p >= n) p = 0;
    }
  }
}

@inline export function l4Ported(proto: u32): bool {
  return proto == 6 || proto == 17 || proto == 132;
}

function shSchedule(svc: u32, key: usize): i32 {
  const flags = svcGet(svc, S_FLAGS);
  const port = (flags & SH_PORT) != 0 && l4Ported(load<u32>(key + FK_PROTO)) ? load<u32>(key + FK_CPORT) & 0xffff : 0;
  const ihash = hash32(port + foldAddr(key + FK_CADDR, load<u32>(key + FK_FAMILY)), 8);
  const b = statePtr(svc);
  const d = load<i32>(b + (<usize>ihash << 2));
  if (d < 0) return -1;
  if (!unavailable(<u32>d)) return d;
  if ((flags & SH_FALLBACK) == 0) return -1;
  for (let off: u32 = 0; off < 256; off++) {
    const h = (((off + ihash) & 255) + ihash) & 255;
    const e = load<i32>(b + (<usize>h << 2));
    if (e < 0) break;
    if (!unavailable(<u32>e)) return e;
  }
  return -1;
}

function shInit(svc: u32): i32 {
  fillBuckets(svc, true);
  return 0;
}
function shChanged(svc: u32, kind: u32, pos: u32, dest: u32): void {
  fillBuckets(svc, true);
}

export const sh = new Scheduler("sh", "sh-fallback,sh-port", shSchedule, shInit, noDone, shChanged);
