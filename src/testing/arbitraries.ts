// fast-check arbitraries for scheduler tests: destination sets (unique addresses, weights,
// loads, thresholds, OVERLOAD flags), flow keys and scheduler names. By default they mix
// IPv4 and IPv6, TCP, UDP and SCTP, and every scheduler: a scheduler that mishandles one of
// them is found without the test having to ask.

import * as fc from "fast-check";
import type { FlowKey } from "../sched/flow.js";
import { KERNEL_SCHEDULERS } from "../sched/registry.js";
import type { DestinationSpec } from "./destinations.js";

export interface DestinationSetConstraints {
  /** Default 1. */
  readonly minDestinations?: number;
  /** Default 8. */
  readonly maxDestinations?: number;
  /** Default 0 (quiesced destinations included). */
  readonly minWeight?: number;
  /** Default 100 (ipvsadm allows up to 65535). */
  readonly maxWeight?: number;
  /** Largest activeconns / inactconns. Default 0 (no load). */
  readonly maxActive?: number;
  readonly maxInactive?: number;
  /** Draw OVERLOAD flags (about 1 in 5 destinations). Default false. */
  readonly overloaded?: boolean;
  /** Draw upper and lower thresholds. Default false. */
  readonly thresholds?: boolean;
  /** 4 or 6. Default: drawn per set (a service's destinations share a family). */
  readonly family?: 4 | 6;
  /** Draw ports in 1..65535 (default: all 80). */
  readonly ports?: boolean;
}

function v4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
function v6(words: readonly number[]): string {
  return words.map((w) => w.toString(16)).join(":");
}

/** An IPv4 or IPv6 address as text; without a family, either (about half each). */
export function addressArb(family?: 4 | 6): fc.Arbitrary<string> {
  if (family === undefined) return fc.oneof(addressArb(4), addressArb(6));
  return family === 4
    ? fc.integer({ min: 0x01000000, max: 0xdfffffff }).map(v4)
    : fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map(v6);
}

/** Every built-in scheduler name (ipvsadm's -s), or those in `only`. */
export function schedulerArb(only: readonly string[] = KERNEL_SCHEDULERS): fc.Arbitrary<string> {
  return fc.constantFrom(...only);
}

/** Sets of destinations with distinct addresses, in list order. */
export function destinationSetArb(c: DestinationSetConstraints = {}): fc.Arbitrary<DestinationSpec[]> {
  const minLength = c.minDestinations ?? 1;
  const maxLength = c.maxDestinations ?? 8;
  if (c.family === undefined) return fc.constantFrom(4 as const, 6 as const).chain((family) => destinationSetArb({ ...c, family }));
  const family = c.family;
  const one = fc.record({
    weight: fc.integer({ min: c.minWeight ?? 0, max: c.maxWeight ?? 100 }),
    activeConnections: fc.integer({ min: 0, max: c.maxActive ?? 0 }),
    inactiveConnections: fc.integer({ min: 0, max: c.maxInactive ?? 0 }),
    overloaded: c.overloaded ? fc.integer({ min: 0, max: 4 }).map((x) => x === 0) : fc.constant(false),
    upperThreshold: c.thresholds ? fc.integer({ min: 0, max: 200 }) : fc.constant(0),
    lowerThreshold: c.thresholds ? fc.integer({ min: 0, max: 200 }) : fc.constant(0),
    port: c.ports ? fc.integer({ min: 1, max: 65535 }) : fc.constant(80),
  });
  return fc
    .uniqueArray(addressArb(family), { minLength, maxLength })
    .chain((addresses) =>
      fc
        .array(one, { minLength: addresses.length, maxLength: addresses.length })
        .map((specs) => specs.map((s, i): DestinationSpec => ({ address: addresses[i], ...s }))),
    );
}

/** Positive weights only: sets where every destination can be picked. */
export function activeDestinationSetArb(c: DestinationSetConstraints = {}): fc.Arbitrary<DestinationSpec[]> {
  return destinationSetArb({ ...c, minWeight: Math.max(1, c.minWeight ?? 1), overloaded: false });
}

export interface FlowKeyConstraints {
  /** 4 or 6. Default: drawn per key (client and virtual address share it). */
  readonly family?: 4 | 6;
  readonly protocol?: "tcp" | "udp" | "sctp";
  /** Fixed virtual address (dh, lblc and lblcr hash it); drawn when absent. */
  readonly virtualAddress?: string;
}

/** Flow keys: client address and port, virtual address and port, protocol. */
export function flowKeyArb(c: FlowKeyConstraints = {}): fc.Arbitrary<FlowKey> {
  if (c.family === undefined && c.virtualAddress === undefined) {
    return fc.constantFrom(4 as const, 6 as const).chain((family) => flowKeyArb({ ...c, family }));
  }
  const family = c.family ?? (c.virtualAddress?.includes(":") ? 6 : 4);
  return fc.record({
    clientAddress: addressArb(family),
    clientPort: fc.integer({ min: 1, max: 65535 }),
    virtualAddress: c.virtualAddress !== undefined ? fc.constant(c.virtualAddress) : addressArb(family),
    virtualPort: fc.integer({ min: 1, max: 65535 }),
    protocol: c.protocol !== undefined ? fc.constant(c.protocol) : fc.constantFrom("tcp" as const, "udp" as const, "sctp" as const),
  });
}
