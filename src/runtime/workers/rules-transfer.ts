// Parsed rules handed from lvsd's main thread to its data-plane worker(s): a 250,000-line
// -R or reload is read and checked line by line on the main thread, and the worker only
// checks it against its tables and applies it (RuleTransaction). The rules travel as
// chunks of ~128 services, each written with v8.serialize into one SharedArrayBuffer:
// posting it costs the worker nothing (several workers share it), and the worker reads
// one chunk at a time between its packet batches instead of a whole table's structured
// clone in one piece. Each service and destination keeps the rules line it came from (a
// symbol property, which a clone drops, so the lines travel beside them).

import { deserialize, serialize } from "node:v8";
import type { Slicer } from "../../balancer/slices.js";
import { ruleLineOf, setRuleLine } from "../../config/rule-lines.js";
import type { ServiceWithDestinations } from "../../config/types.js";

/** Rules written in chunks into shared memory; `ends[i]` is where chunk i ends. */
export interface PackedRules {
  readonly bytes: SharedArrayBuffer;
  readonly ends: readonly number[];
}

/** Services per chunk: reading one back takes well under a millisecond. */
export const SERVICES_PER_CHUNK = 128;

interface Chunk {
  readonly services: readonly ServiceWithDestinations[];
  /** The rules line of each service, then of each of its destinations, in order (0: none). */
  readonly lines: Int32Array;
}

/** Main side: writes `services` in chunks, pausing between slices of `slicer`. */
export async function packRulesInSlices(services: readonly ServiceWithDestinations[], slicer: Slicer): Promise<PackedRules> {
  const parts: Buffer[] = [];
  for (let i = 0; i < services.length; i += SERVICES_PER_CHUNK) {
    const chunk = services.slice(i, i + SERVICES_PER_CHUNK);
    const lines: number[] = [];
    for (const s of chunk) {
      lines.push(ruleLineOf(s.service) ?? 0);
      for (const d of s.destinations) lines.push(ruleLineOf(d) ?? 0);
    }
    parts.push(serialize({ services: chunk, lines: Int32Array.from(lines) } satisfies Chunk));
    if (slicer.due()) await slicer.pauseNow();
  }
  const bytes = new SharedArrayBuffer(parts.reduce((n, p) => n + p.length, 0));
  const view = new Uint8Array(bytes);
  const ends: number[] = [];
  let at = 0;
  for (const p of parts) {
    view.set(p, at);
    at += p.length;
    ends.push(at);
  }
  return { bytes, ends };
}

/** Worker side: reads the chunks back, a slice at a time, with their rules lines. */
export async function unpackRulesInSlices(packed: PackedRules, slicer: Slicer): Promise<ServiceWithDestinations[]> {
  const services: ServiceWithDestinations[] = [];
  let start = 0;
  for (const end of packed.ends) {
    const chunk = deserialize(Buffer.from(packed.bytes, start, end - start)) as Chunk;
    let k = 0;
    for (const s of chunk.services) {
      const line = chunk.lines[k++];
      if (line) setRuleLine(s.service, line);
      for (const d of s.destinations) {
        const dl = chunk.lines[k++];
        if (dl) setRuleLine(d, dl);
      }
      services.push(s);
    }
    start = end;
    if (slicer.due()) await slicer.pauseNow();
  }
  return services;
}
