// The control socket's answers on a thread that also forwards packets (lvsd's data-plane
// worker): the commands whose work grows with the configuration run in slices
// (../balancer/slices.ts), so the packet loop, the signals and other requests go on
// between them, and configuration changes run one at a time.
//
//   -R         read, checked whole, then applied in slices (RuleTransaction): all or
//              nothing. A text with -C replaces the running configuration, and only what
//              differs is touched (rule-changes.ts).
//   -L, -S     the whole table (text or --json), read and formatted in slices (a listing
//              during a restore shows the services applied so far).
//   changes    (-A -E -D -a -e -d -C -Z --set, sysctls, daemons) wait for a running restore
//              to end, then run as answer() runs them.
//   the rest   answered at once, as answer() answers them.

import { ConfigError } from "../config/types.js";
import { RuleTransaction } from "../balancer/rule-transaction.js";
import type { Slicer } from "../balancer/slices.js";
import { parseCommand, type LvsCommand } from "./command.js";
import { answer } from "./control-server.js";
import type { CommandResult, ExecutionContext } from "./execute.js";
import { formatListingInSlices, formatSaveInSlices, type FormatOptions } from "./format.js";
import type { ListingSnapshot } from "../balancer/snapshots.js";
import type { RuleSet } from "../config/types.js";
import { toJsonInSlices } from "./json-output.js";
import { diffRunning } from "./rule-changes.js";
import { readRulesInSlices } from "./rules.js";
import { SYSCTL_SUBCOMMAND } from "./sysctl-command.js";

/** Runs configuration changes one after the other (a restore holds it across its slices). */
export class ConfigLock {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once every change queued before it has ended. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => {});
    return result;
  }
}

export interface SlicedAnswerOptions {
  /** A new slicer for each long command. */
  readonly slicer: () => Slicer;
  /** Configuration changes, one at a time. */
  readonly lock: ConfigLock;
  readonly log?: (line: string) => void;
}

const READ_ONLY: ReadonlySet<LvsCommand["kind"]> = new Set(["list", "save", "help", "version"]);

/** Answers one request ({ argv, stdin, json? }) as answer() does, the long ones in slices; never rejects. */
export async function answerInSlices(ctx: ExecutionContext, request: unknown, options: SlicedAnswerOptions): Promise<CommandResult> {
  const r = request as { argv?: unknown; stdin?: unknown; json?: unknown } | null;
  if (!r || !Array.isArray(r.argv) || r.argv.some((a) => typeof a !== "string")) return answer(ctx, request, options.log);
  const argv = r.argv as string[];
  if (argv[0] === SYSCTL_SUBCOMMAND) return options.lock.run(() => answer(ctx, request, options.log));
  let cmd: LvsCommand;
  try {
    cmd = parseCommand(argv, { program: ctx.program ?? "lvsadm" });
  } catch {
    return answer(ctx, request, options.log); // the same refusal, in the same words
  }
  const json = r.json === true;
  try {
    if (cmd.kind === "restore") {
      const stdin = typeof r.stdin === "string" ? r.stdin : "";
      return await options.lock.run(() => restoreInSlices(ctx, argv, stdin, options));
    }
    const table = tableQuery(cmd, json);
    if (table) {
      const b = ctx.balancer;
      const rows =
        table.read === "rules" ? { rules: await b.rulesInSlices(options.slicer()) } : { listing: await b.listingInSlices(options.slicer(), table.counters) };
      return ok(await formatTableInSlices(table, rows, ctx.format ?? {}, options.slicer()));
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    options.log?.(`lvsadm ${argv.join(" ")}: internal error: ${message}`);
    return { stdout: "", stderr: `lvsd: internal error: ${message}\n`, exitCode: 2 };
  }
  if (READ_ONLY.has(cmd.kind)) return answer(ctx, request, options.log);
  return options.lock.run(() => answer(ctx, request, options.log));
}

/**
 * A command that prints the whole table (-L of every service, -S; text or --json): what it
 * reads (every service's listing, with or without counters, or its rules) and how it prints.
 * Reading and printing are apart so that lvsd reads on the data-plane worker and prints on
 * its main thread (src/runtime/workers/table-rows.ts).
 */
export type TableQuery =
  | { readonly read: "listing"; readonly counters: boolean; readonly cmd: Extract<LvsCommand, { kind: "list" }>; readonly json: boolean }
  | { readonly read: "rules"; readonly cmd: Extract<LvsCommand, { kind: "save" }>; readonly json: boolean };

/** The table query of `cmd`, or null when it is not a whole-table listing or -S. */
export function tableQuery(cmd: LvsCommand, json: boolean): TableQuery | null {
  if (cmd.kind === "list" && cmd.show === "services" && !cmd.service) {
    return { read: "listing", counters: json || cmd.format.stats || cmd.format.rate, cmd, json };
  }
  if (cmd.kind === "save") return { read: "rules", cmd, json };
  return null;
}

/** Prints what a table query read (in slices): the same bytes as answer() gives. */
export async function formatTableInSlices(
  query: TableQuery,
  rows: { readonly listing: ListingSnapshot } | { readonly rules: RuleSet },
  format: FormatOptions,
  slicer: Slicer,
): Promise<string> {
  if ("listing" in rows) {
    if (query.read !== "listing") throw new Error("a listing query read rules");
    const { listing } = rows;
    if (query.json) return `${await toJsonInSlices({ tableSize: listing.tableSize }, "services", listing.services, slicer)}\n`;
    return formatListingInSlices(listing, query.cmd.format, format, slicer);
  }
  if (query.read !== "rules") throw new Error("a rules query read a listing");
  if (query.json) return `${await toJsonInSlices({}, "services", rows.rules.services, slicer)}\n`;
  return formatSaveInSlices(rows.rules.services, { ...format, numeric: query.cmd.numeric }, slicer);
}

const ok = (stdout: string): CommandResult => ({ stdout, stderr: "", exitCode: 0 });

/** -R: read and checked whole in slices, then applied in slices; a refusal changes nothing. */
function restoreInSlices(ctx: ExecutionContext, argv: readonly string[], stdin: string, options: SlicedAnswerOptions): Promise<CommandResult> {
  return restoreRulesInSlices(ctx, argv, (slicer) => readRulesInSlices(stdin, slicer), options);
}

/** What a restore's text says: its rules, and whether it clears the table first (-C). */
export type RestoreRules = Awaited<ReturnType<typeof readRulesInSlices>>;

/**
 * -R of rules that `read` gives (lvsd's main thread parses the text and its data-plane
 * worker reads the result back): checked whole against the tables, then applied in
 * slices, all or nothing; logged as answerInSlices logs a restore. The caller holds the
 * configuration lock.
 */
export async function restoreRulesInSlices(
  ctx: ExecutionContext,
  argv: readonly string[],
  read: (slicer: Slicer) => Promise<RestoreRules>,
  options: Omit<SlicedAnswerOptions, "lock">,
): Promise<CommandResult> {
  const slicer = options.slicer();
  let result: CommandResult;
  try {
    const { ruleSet, clears } = await read(slicer);
    const b = ctx.balancer;
    const tx = clears
      ? await RuleTransaction.prepareInSlices(b, await diffRunning(b, ruleSet, slicer), slicer)
      : await RuleTransaction.restoreInSlices(b, ruleSet, slicer);
    await tx.applyInSlices(slicer);
    result = ok("");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    result = restoreRefused(e);
  }
  options.log?.(restoreLogLine(argv, result));
  return result;
}

/** A restore's answer to a text or a configuration it refuses (nothing changed). */
export function restoreRefused(e: ConfigError): CommandResult {
  return { stdout: "", stderr: `${e.message}\n`, exitCode: 255 };
}

/** The line a restore logs: "lvsadm -R: ok", or its error. */
export function restoreLogLine(argv: readonly string[], result: CommandResult): string {
  return `lvsadm ${argv.join(" ")}: ${result.exitCode === 0 ? "ok" : result.stderr.trim()}`;
}
