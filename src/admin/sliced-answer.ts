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
import { formatListingInSlices, formatSaveInSlices } from "./format.js";
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
    if (cmd.kind === "list" && cmd.show === "services" && !cmd.service) {
      const snapshot = await ctx.balancer.listingInSlices(options.slicer(), json || cmd.format.stats || cmd.format.rate);
      if (json) return ok(`${await toJsonInSlices({ tableSize: snapshot.tableSize }, "services", snapshot.services, options.slicer())}\n`);
      return ok(await formatListingInSlices(snapshot, cmd.format, ctx.format ?? {}, options.slicer()));
    }
    if (cmd.kind === "save") {
      const rules = await ctx.balancer.rulesInSlices(options.slicer());
      if (json) return ok(`${await toJsonInSlices({}, "services", rules.services, options.slicer())}\n`);
      return ok(await formatSaveInSlices(rules.services, { ...ctx.format, numeric: cmd.numeric }, options.slicer()));
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    options.log?.(`lvsadm ${argv.join(" ")}: internal error: ${message}`);
    return { stdout: "", stderr: `lvsd: internal error: ${message}\n`, exitCode: 2 };
  }
  if (READ_ONLY.has(cmd.kind)) return answer(ctx, request, options.log);
  return options.lock.run(() => answer(ctx, request, options.log));
}

const ok = (stdout: string): CommandResult => ({ stdout, stderr: "", exitCode: 0 });

/** -R: read and checked whole in slices, then applied in slices; a refusal changes nothing. */
async function restoreInSlices(ctx: ExecutionContext, argv: readonly string[], stdin: string, options: SlicedAnswerOptions): Promise<CommandResult> {
  const slicer = options.slicer();
  let result: CommandResult;
  try {
    const { ruleSet, clears } = await readRulesInSlices(stdin, slicer);
    const b = ctx.balancer;
    const tx = clears
      ? await RuleTransaction.prepareInSlices(b, await diffRunning(b, ruleSet, slicer), slicer)
      : await RuleTransaction.restoreInSlices(b, ruleSet, slicer);
    await tx.applyInSlices(slicer);
    result = ok("");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    result = { stdout: "", stderr: `${e.message}\n`, exitCode: 255 };
  }
  options.log?.(`lvsadm ${argv.join(" ")}: ${result.exitCode === 0 ? "ok" : result.stderr.trim()}`);
  return result;
}
