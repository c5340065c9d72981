// The table the health checker wants, as ipvsadm save lines, and the lvsadm commands that
// turn the table it last applied into it: removals first, then edits, then additions
// (each an argument vector, the same a person would type after `lvsadm`).
import type { DestinationConfig, ServiceConfig } from "../config/types.js";
import { formatSave } from "../admin/format.js";
import { splitRulesLine } from "../admin/rules.js";
import { serviceKeyText } from "../balancer/validate.js";

/** One service and the destinations it should have, by save line. */
export interface TableEntry {
  readonly service: ServiceConfig;
  readonly destinations: readonly DestinationConfig[];
}

/** The applied (or wanted) table: service key text -> its lines. */
export interface TableLines {
  readonly services: Map<string, { line: string; dests: Map<string, string> }>;
}

const destKey = (d: Pick<DestinationConfig, "address" | "port">) => `${d.address}|${d.port}`;

export function tableLines(entries: readonly TableEntry[]): TableLines {
  const services = new Map<string, { line: string; dests: Map<string, string> }>();
  for (const e of entries) {
    const lines = formatSave([{ service: e.service, destinations: e.destinations }], { numeric: true })
      .trimEnd()
      .split("\n");
    const dests = new Map<string, string>();
    e.destinations.forEach((d, i) => dests.set(destKey(d), lines[i + 1]));
    services.set(serviceKeyText(e.service.key), { line: lines[0], dests });
  }
  return { services };
}

export const emptyTable = (): TableLines => ({ services: new Map() });

/** "-A -t 10.0.0.1:80 -s rr" -> ["-t", "10.0.0.1:80"] (and "-6" for an IPv6 fwmark). */
function keyWords(serviceLine: string): string[] {
  const words = splitRulesLine(serviceLine).slice(1);
  const end = words.findIndex((w) => w.startsWith("-") && w !== "-t" && w !== "-u" && w !== "--sctp-service" && w !== "-f" && w !== "-6");
  return end < 0 ? words : words.slice(0, end);
}

/** "-a -t VIP -r RS:80 -m -w 1" -> ["-r", "RS:80"]. */
function destWords(destLine: string): string[] {
  const words = splitRulesLine(destLine);
  const at = words.indexOf("-r");
  return words.slice(at, at + 2);
}

export interface TableCommand {
  readonly argv: readonly string[];
  /** What the command does to `next` when it succeeds (so a failure leaves `applied` true to the table). */
  readonly commit: (applied: TableLines) => void;
}

/** The commands from `applied` to `wanted`. */
export function tableCommands(applied: TableLines, wanted: TableLines): TableCommand[] {
  const removals: TableCommand[] = [];
  const edits: TableCommand[] = [];
  const additions: TableCommand[] = [];
  for (const [key, have] of applied.services) {
    const want = wanted.services.get(key);
    if (!want) {
      removals.push({ argv: ["-D", ...keyWords(have.line)], commit: (a) => a.services.delete(key) });
      continue;
    }
    for (const [dk, line] of have.dests) {
      if (!want.dests.has(dk))
        removals.push({ argv: ["-d", ...keyWords(have.line), ...destWords(line)], commit: (a) => a.services.get(key)?.dests.delete(dk) });
    }
  }
  for (const [key, want] of wanted.services) {
    const have = applied.services.get(key);
    if (!have) {
      additions.push({ argv: splitRulesLine(want.line), commit: (a) => a.services.set(key, { line: want.line, dests: new Map() }) });
    } else if (have.line !== want.line) {
      edits.push({
        argv: ["-E", ...splitRulesLine(want.line).slice(1)],
        commit: (a) => {
          const entry = a.services.get(key);
          if (entry) entry.line = want.line;
        },
      });
    }
    for (const [dk, line] of want.dests) {
      const old = have?.dests.get(dk);
      if (old === line) continue;
      const cmd = old === undefined ? "-a" : "-e";
      const target = old === undefined ? additions : edits;
      target.push({ argv: [cmd, ...splitRulesLine(line).slice(1)], commit: (a) => a.services.get(key)?.dests.set(dk, line) });
    }
  }
  return [...removals, ...edits, ...additions];
}
