// ipvsadm's listing order: libipvs's ipvs_cmp_services / ipvs_cmp_dests, whose differences of
// unsigned 32-bit fields wrap into a signed int (so 10.0.0.1 sorts after 200.0.0.1), applied
// with glibc's qsort, a top-down merge sort: a non-transitive order still comes out the same.
import type { DestinationConfig, ServiceConfig } from "../config/types.js";
import { parseAddress } from "./inet.js";

const AF_INET = 2;
const AF_INET6 = 10;
const PROTOCOL_NUMBER = { tcp: 6, udp: 17, sctp: 132 } as const;

type Words = readonly [number, number, number, number];

interface ServiceSortKey {
  readonly fwmark: number;
  readonly af: number;
  readonly protocol: number;
  readonly words: Words;
  readonly port: number;
}

const ZERO_WORDS: Words = [0, 0, 0, 0];

/** Sort keys of the services being sorted: a merge sort compares each one log2(n) times. */
const sortKeys = new WeakMap<ServiceConfig, ServiceSortKey>();

function serviceSortKey(service: ServiceConfig): ServiceSortKey {
  let known = sortKeys.get(service);
  if (!known) {
    known = computeSortKey(service);
    sortKeys.set(service, known);
  }
  return known;
}

function computeSortKey(service: Pick<ServiceConfig, "key">): ServiceSortKey {
  const key = service.key;
  if (key.kind === "fwmark") {
    // ipvsadm adds fwmark services as TCP with a zero address and port.
    return { fwmark: key.fwmark, af: key.family === 6 ? AF_INET6 : AF_INET, protocol: 6, words: ZERO_WORDS, port: 0 };
  }
  const parsed = parseAddress(key.address);
  return {
    fwmark: 0,
    af: parsed?.family === 6 ? AF_INET6 : AF_INET,
    protocol: PROTOCOL_NUMBER[key.protocol],
    words: parsed?.words32 ?? ZERO_WORDS,
    port: key.port,
  };
}

/** (int)(a - b) for two unsigned 32-bit values, as C computes it. */
function wrappedDifference(a: number, b: number): number {
  return (a - b) | 0;
}

function compareWords(af: number, a: Words, b: Words): number {
  if (af !== AF_INET6) return wrappedDifference(a[0], b[0]);
  let r = 0;
  for (let i = 0; r === 0 && i < 4; i++) r = wrappedDifference(a[i]!, b[i]!);
  return r;
}

/** ipvs_cmp_services(): fwmark, family, protocol, address, port. */
export function compareServices(a: ServiceConfig, b: ServiceConfig): number {
  return compareSortKeys(serviceSortKey(a), serviceSortKey(b));
}

function compareSortKeys(x: ServiceSortKey, y: ServiceSortKey): number {
  let r = wrappedDifference(x.fwmark, y.fwmark);
  if (r !== 0) return r;
  r = x.af - y.af;
  if (r !== 0) return r;
  r = x.protocol - y.protocol;
  if (r !== 0) return r;
  r = compareWords(x.af, x.words, y.words);
  if (r !== 0) return r;
  return x.port - y.port;
}

/** ipvs_cmp_dests(): address (as wide as the first one's family), then port. */
export function compareDestinations(a: Pick<DestinationConfig, "address" | "port">, b: Pick<DestinationConfig, "address" | "port">): number {
  const x = parseAddress(a.address);
  const y = parseAddress(b.address);
  const r = compareWords(x?.family === 6 ? AF_INET6 : AF_INET, x?.words32 ?? ZERO_WORDS, y?.words32 ?? ZERO_WORDS);
  if (r !== 0) return r;
  return a.port - b.port;
}

/**
 * Services in ipvsadm's order (compareServices), each one's key computed once: what a
 * listing of 50,000 services sorts (a key looked up per comparison was a tenth of it).
 */
export function sortServices<T>(items: readonly T[], configOf: (item: T) => ServiceConfig): T[] {
  const keyed = items.map((item) => ({ item, key: computeSortKey(configOf(item)) }));
  const sorted = glibcSort(keyed, (a, b) => compareSortKeys(a.key, b.key));
  return sorted.map((k) => k.item);
}

/**
 * sortServices in slices: yields now and then (between merges, and inside long ones) so
 * that a caller can pause there; the same merge tree, so the same order, as glibcSort.
 */
export function* sortServicesInSteps<T>(items: readonly T[], configOf: (item: T) => Pick<ServiceConfig, "key">): Generator<void, T[]> {
  const keyed: Array<{ item: T; key: ServiceSortKey }> = [];
  for (let i = 0; i < items.length; i++) {
    keyed.push({ item: items[i]!, key: computeSortKey(configOf(items[i]!)) });
    if ((i & 1023) === 1023) yield;
  }
  const compare = (a: { key: ServiceSortKey }, b: { key: ServiceSortKey }) => compareSortKeys(a.key, b.key);
  if (keyed.length > 1) yield* mergeSortInSteps(keyed, 0, keyed.length, compare, new Array(keyed.length));
  return keyed.map((k) => k.item);
}

/** Below this many items a part is sorted in one go (well under a millisecond). */
const STEP_ITEMS = 2048;

function* mergeSortInSteps<T>(items: T[], start: number, count: number, compare: (a: T, b: T) => number, scratch: T[]): Generator<void> {
  if (count <= STEP_ITEMS) {
    mergeSort(items, start, count, compare, scratch);
    yield;
    return;
  }
  const leftCount = Math.floor(count / 2);
  yield* mergeSortInSteps(items, start, leftCount, compare, scratch);
  yield* mergeSortInSteps(items, start + leftCount, count - leftCount, compare, scratch);
  let n = 0;
  let i = start;
  let j = start + leftCount;
  const leftEnd = start + leftCount;
  const rightEnd = start + count;
  while (i < leftEnd && j < rightEnd) {
    if (compare(items[i]!, items[j]!) <= 0) scratch[n++] = items[i++]!;
    else scratch[n++] = items[j++]!;
    if ((n & 4095) === 0) yield;
  }
  while (i < leftEnd) scratch[n++] = items[i++]!;
  while (j < rightEnd) scratch[n++] = items[j++]!;
  for (let k = 0; k < n; k++) items[start + k] = scratch[k]!;
}

/** glibc's msort: split in halves (the first one smaller), merge taking the left on ties. */
export function glibcSort<T>(items: readonly T[], compare: (a: T, b: T) => number): T[] {
  const out = items.slice();
  if (out.length > 1) mergeSort(out, 0, out.length, compare, new Array<T>(out.length));
  return out;
}

/** One merge buffer for the whole sort (`scratch`), as long as the items. */
function mergeSort<T>(items: T[], start: number, count: number, compare: (a: T, b: T) => number, scratch: T[]): void {
  if (count <= 1) return;
  const leftCount = Math.floor(count / 2);
  const rightCount = count - leftCount;
  mergeSort(items, start, leftCount, compare, scratch);
  mergeSort(items, start + leftCount, rightCount, compare, scratch);
  let n = 0;
  let i = start;
  let j = start + leftCount;
  const leftEnd = start + leftCount;
  const rightEnd = start + count;
  while (i < leftEnd && j < rightEnd) {
    if (compare(items[i]!, items[j]!) <= 0) scratch[n++] = items[i++]!;
    else scratch[n++] = items[j++]!;
  }
  while (i < leftEnd) scratch[n++] = items[i++]!;
  while (j < rightEnd) scratch[n++] = items[j++]!;
  for (let k = 0; k < n; k++) items[start + k] = scratch[k]!;
}
