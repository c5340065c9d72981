// A reload as ipvsadm lines: the difference between the running rule set and the wanted
// one, ordered removals, edits, additions, each change applying itself to a Balancer.
import type { Balancer } from "../balancer/balancer.js";
import { normaliseServiceKey, serviceKeyText } from "../balancer/validate.js";
import type { DestinationConfig, RuleSet, ServiceConfig, ServiceWithDestinations } from "../config/types.js";
import { formatSave } from "../admin/format.js";
import type { ChangeCounts } from "../admin/rule-changes.js";
/** One configuration step of a reload, as the ipvsadm line that does it. */
export interface RuleChange {
  readonly op: "-A" | "-E" | "-D" | "-a" | "-e" | "-d" | "-P" | "-Q";
  readonly line: string;
  readonly apply: (balancer: Balancer) => void;
}

/** What a reload did: the counts lvsd logs (rule-changes.ts), failures, and the lines applied. */
export interface ReloadSummary extends ChangeCounts {
  /** Changes that failed while being applied (after validation passed: should stay 0). */
  readonly failed: number;
  readonly changes: readonly string[];
}

// ---------------------------------------------------------------------------- rule diff

const keyText = (s: ServiceConfig) => serviceKeyText(normaliseServiceKey(s.key));
const destId = (d: DestinationConfig) => `${d.address}|${d.port}`;

/** The ipvsadm save line of a service alone ("-A -t 10.0.0.1:80 -s rr"). */
function serviceLine(service: ServiceConfig): string {
  return formatSave([{ service, destinations: [] }], { numeric: true }).trimEnd();
}

/** The ipvsadm save line of one destination ("-a -t ... -r ... -m -w 1"). */
function destinationLine(service: ServiceConfig, dest: DestinationConfig): string {
  const text = formatSave([{ service, destinations: [dest] }], { numeric: true })
    .trimEnd()
    .split("\n");
  return text[text.length - 1];
}

/** The key part of a service line ("-t 10.0.0.1:80"). */
function keyWords(service: ServiceConfig): string {
  return serviceLine(service).split(" ").slice(1, 3).join(" ");
}

/** The "-r address:port" part of a destination line. */
function destWords(service: ServiceConfig, dest: DestinationConfig): string {
  const words = destinationLine(service, dest).split(" ");
  const at = words.indexOf("-r");
  return words.slice(at, at + 2).join(" ");
}

/**
 * The changes that turn `current` into `wanted`, in an order that never needs more room
 * than either: removals first, then edits, then additions. Services and destinations are
 * compared by their ipvsadm save lines, so "edited" means "saves differently".
 */
export function diffRules(current: RuleSet, wanted: RuleSet): RuleChange[] {
  const removals: RuleChange[] = [];
  const edits: RuleChange[] = [];
  const additions: RuleChange[] = [];
  const now = new Map(current.services.map((s) => [keyText(s.service), s] as const));
  const next = new Map(wanted.services.map((s) => [keyText(s.service), s] as const));
  for (const [k, s] of now) {
    if (next.has(k)) continue;
    const key = s.service.key;
    removals.push({ op: "-D", line: `-D ${keyWords(s.service)}`, apply: (b) => b.deleteService(key) });
  }
  for (const [k, w] of next) {
    const c = now.get(k);
    if (!c) {
      additions.push(...addWhole(w));
      continue;
    }
    const key = w.service.key;
    if (serviceLine(c.service) !== serviceLine(w.service)) {
      const line = serviceLine(w.service).replace(/^-A/, "-E");
      edits.push({ op: "-E", line, apply: (b) => b.editService(w.service) });
    }
    const have = new Map(c.destinations.map((d) => [destId(d), d] as const));
    const want = new Map(w.destinations.map((d) => [destId(d), d] as const));
    for (const [id, d] of have) {
      if (want.has(id)) continue;
      removals.push({ op: "-d", line: `-d ${keyWords(c.service)} ${destWords(c.service, d)}`, apply: (b) => b.deleteDestination(key, d) });
    }
    for (const [id, d] of want) {
      const old = have.get(id);
      if (!old) {
        additions.push({ op: "-a", line: destinationLine(w.service, d), apply: (b) => void b.addDestination(key, d) });
      } else if ((old.method === "fullnat") !== (d.method === "fullnat")) {
        // No edit turns a destination into or out of full NAT (its connections own local ports): replace it.
        removals.push({ op: "-d", line: `-d ${keyWords(c.service)} ${destWords(c.service, old)}`, apply: (b) => b.deleteDestination(key, old) });
        additions.push({ op: "-a", line: destinationLine(w.service, d), apply: (b) => void b.addDestination(key, d) });
      } else if (destinationLine(w.service, old) !== destinationLine(w.service, d)) {
        edits.push({ op: "-e", line: destinationLine(w.service, d).replace(/^-a/, "-e"), apply: (b) => b.editDestination(key, d) });
      }
    }
    const laddrsNow = new Set(c.localAddresses ?? []);
    const laddrsWanted = new Set(w.localAddresses ?? []);
    for (const a of laddrsNow) {
      if (!laddrsWanted.has(a)) removals.push({ op: "-Q", line: `-Q ${keyWords(c.service)} -z ${a}`, apply: (b) => b.deleteLocalAddress(key, a) });
    }
    for (const a of laddrsWanted) {
      if (!laddrsNow.has(a)) additions.push({ op: "-P", line: `-P ${keyWords(w.service)} -z ${a}`, apply: (b) => b.addLocalAddress(key, a) });
    }
  }
  return [...removals, ...edits, ...additions];
}

function addWhole(s: ServiceWithDestinations): RuleChange[] {
  const key = s.service.key;
  return [
    { op: "-A", line: serviceLine(s.service), apply: (b) => b.addService(s.service) },
    ...s.destinations.map((d): RuleChange => ({ op: "-a", line: destinationLine(s.service, d), apply: (b) => void b.addDestination(key, d) })),
    ...(s.localAddresses ?? []).map((a): RuleChange => ({ op: "-P", line: `-P ${keyWords(s.service)} -z ${a}`, apply: (b) => b.addLocalAddress(key, a) })),
  ];
}
