// Whole-table listings (-L of every service, -S; text or --json) with the data plane on
// worker threads: the worker reads the table a slice at a time and posts each slice's rows
// as it goes; lvsd's main thread collects them and does the sorting and joining
// (src/admin/format.ts, formatRendered*InSlices). So the packet loop waits for no sort of
// 50,000 keys, no 15 MB string and no 15 MB message, only for short slices.
//
// One worker prints each service itself (a string is cheap to post; a listing entry of
// nested objects costs ten times more to clone than to read). Several workers send their
// entries as data instead, for the main thread to add up their counters first.
//
//   main thread                               worker thread
//   { kind: "table", TableRead } ──────────►  eachServiceSnapshot() / eachServiceRules()
//   rows collected  ◄─── { kind: "rows" } ──  a few messages per slice
//   sort, join      ◄─── { kind: "answer" } ─ the connection table's size

import type { Balancer } from "../../balancer/balancer.js";
import type { Slicer } from "../../balancer/slices.js";
import type { ServiceSnapshot } from "../../balancer/snapshots.js";
import type { ListFormat } from "../../admin/command.js";
import { formatRenderedListingInSlices, formatRenderedSaveInSlices, listingRenderer, saveRenderer, type RenderedService } from "../../admin/format.js";
import { joinJsonList, jsonListItem } from "../../admin/json-output.js";
import { formatTableInSlices, type TableQuery } from "../../admin/sliced-answer.js";
import { mergeListings } from "./merge.js";

/** What the main thread asks a worker to read, and how the worker prints each service (structured-clonable). */
export type TableRead =
  | { readonly read: "listing"; readonly counters: boolean; readonly print: { readonly list: ListFormat } | "json" | "data" }
  | { readonly read: "rules"; readonly print: { readonly numeric: boolean } | "json" };

/** The worker's part of `query`: printed rows, or data rows when `workers` > 1 must be added up. */
export function tableRead(query: TableQuery, workers: number): TableRead {
  if (query.read === "rules") return { read: "rules", print: query.json ? "json" : { numeric: query.cmd.numeric } };
  const print = workers > 1 ? "data" : query.json ? "json" : { list: query.cmd.format };
  return { read: "listing", counters: query.counters, print };
}

/** Rows posted in one message at most, so that one clone stays short. */
export const ROWS_PER_MESSAGE = 64;

/** A service of the table as the request asks it printed: a RenderedService, a JSON list item, or the data itself. */
function rowMaker(request: TableRead): (entry: never) => unknown {
  if (request.read === "rules") {
    return request.print === "json" ? jsonListItem : saveRenderer({ numeric: request.print.numeric });
  }
  if (request.print === "data") return (s: ServiceSnapshot) => s;
  return request.print === "json" ? jsonListItem : listingRenderer(request.print.list);
}

/**
 * Worker side: reads every service in slices and hands `send` the rows made since the last
 * call (at ROWS_PER_MESSAGE rows, at every pause, and at the end); resolves with the
 * connection table's size (the listing's "size=").
 */
export async function sendTableRows(balancer: Balancer, request: TableRead, send: (rows: readonly unknown[]) => void, slicer: Slicer): Promise<number> {
  const entries: Iterable<unknown> = request.read === "rules" ? balancer.eachServiceRules() : balancer.eachServiceSnapshot(request.counters);
  const make = rowMaker(request) as (entry: unknown) => unknown;
  let chunk: unknown[] = [];
  for (const entry of entries) {
    chunk.push(make(entry));
    const due = (chunk.length & 7) === 0 && slicer.due();
    if (chunk.length >= ROWS_PER_MESSAGE || due) {
      send(chunk);
      chunk = [];
    }
    if (due) await slicer.pauseNow();
  }
  send(chunk);
  slicer.finish();
  return balancer.connectionCapacity;
}

/** One worker's answer, collected on the main thread. */
export interface WorkerTable {
  readonly tableSize: number;
  readonly rows: readonly unknown[];
}

/**
 * Main side: the answer's text from the workers' rows (every worker's for a listing, whose
 * counters are added up; worker 0's for rules, which every worker holds alike), in slices.
 */
export async function printTable(query: TableQuery, request: TableRead, each: readonly WorkerTable[], slicer: Slicer): Promise<string> {
  const [first] = each;
  if (request.read === "rules") {
    if (request.print === "json") return `${joinJsonList({}, "services", first.rows as string[])}\n`;
    return formatRenderedSaveInSlices(first.rows as RenderedService[], slicer);
  }
  if (request.print === "data") {
    const listing = mergeListings(each.map((w) => ({ tableSize: w.tableSize, services: w.rows as ServiceSnapshot[] })));
    return formatTableInSlices(query, { listing }, {}, slicer);
  }
  if (request.print === "json") return `${joinJsonList({ tableSize: first.tableSize }, "services", first.rows as string[])}\n`;
  return formatRenderedListingInSlices({ tableSize: first.tableSize }, first.rows as RenderedService[], request.print.list, slicer);
}
