// Rules files: what `ipvsadm -S [-n]` writes and `ipvsadm -R` reads. Each line is one
// ipvsadm argument vector, split on blanks as ipvsadm's config_stream_read splits it (no
// quoting). The whole text is validated before anything is returned, as if restored into an
// empty table (ipvsadm-restore clears first): the first bad line names itself.
import { ConfigError } from "../config/types.js";
import { ruleLineOf, setRuleLine } from "../config/rule-lines.js";
import type { DestinationConfig, RuleSet, ServiceConfig, ServiceWithDestinations } from "../config/types.js";
import { parseCommand } from "./command.js";
import { readSaveLine } from "./save-lines.js";
import { CommandError } from "./errors.js";
import { formatSave } from "./format.js";
import { parseAddress } from "./inet.js";
import type { PortNames } from "./services-db.js";
import type { Slicer } from "../balancer/slices.js";

/** config_stream_read reads words of at most this many characters. */
const MAX_WORD_LENGTH = 4096;
/** Blanks that separate words on a line (a C "%[^ \t\n\r]" scan). */
const BLANKS = /[ \t\r]+/;

export interface RulesOptions {
  /** Port names for "host:http" (and for formatRules without numeric); default /etc/services. */
  readonly portNames?: PortNames;
}

/**
 * The words of one rules line: split on spaces, tabs and CRs; "ipvsadm" (or "lvsadm") words
 * dropped as ipvsadm drops them; a word starting with '#' starts a comment.
 */
export function splitRulesLine(line: string): string[] {
  const words: string[] = [];
  for (const word of line.split(BLANKS)) {
    if (word.length === 0) continue;
    if (word.startsWith("#")) break;
    if (word === "ipvsadm" || word === "lvsadm") continue;
    for (let start = 0; start < word.length; start += MAX_WORD_LENGTH) words.push(word.slice(start, start + MAX_WORD_LENGTH));
  }
  return words;
}

/** The 1-based line of the rules text that set this service or destination (parseRules output only). */
export function ruleLine(entry: ServiceConfig | DestinationConfig): number | undefined {
  return ruleLineOf(entry);
}

interface MutableService {
  service: ServiceConfig;
  /** By canonical "address|port", in file order (a Map keeps it). */
  destinations: Map<string, DestinationConfig>;
  /** Full NAT's local addresses (-P ... -z), canonical, in file order. */
  localAddresses: Set<string>;
}

/**
 * The services of a rules text by canonical key, in file order: every line is one map
 * lookup, so a 250,000-line file parses in linear time (a list search made it quadratic).
 */
type ServiceMap = Map<string, MutableService>;

function canonical(address: string): string {
  return parseAddress(address)?.text ?? address;
}
function serviceId(key: ServiceConfig["key"]): string {
  return key.kind === "fwmark" ? `fwmark|${key.family}|${key.fwmark}` : `${key.protocol}|${canonical(key.address)}|${key.port}`;
}
function destinationId(dest: { address: string; port: number }): string {
  return `${canonical(dest.address)}|${dest.port}`;
}

/** Parses and validates a whole rules text; throws ConfigError("line N: ...") at the first bad line. */
export function parseRules(text: string, options: RulesOptions = {}): RuleSet {
  const reader = new RulesReader(text, options);
  while (reader.next()) {
    // one line each
  }
  return reader.result();
}

/**
 * parseRules in slices (slices.ts): a 250,000-line restore read on the thread that
 * forwards pauses every couple of milliseconds, so packets and signals go on. The same
 * result and the same errors as parseRules.
 */
export async function parseRulesInSlices(text: string, slicer: Slicer, options: RulesOptions = {}): Promise<RuleSet> {
  return (await readRulesInSlices(text, slicer, options)).ruleSet;
}

/** parseRulesInSlices, and whether the text clears the table (-C): then it replaces the running rules. */
export async function readRulesInSlices(text: string, slicer: Slicer, options: RulesOptions = {}): Promise<{ ruleSet: RuleSet; clears: boolean }> {
  const reader = new RulesReader(text, options);
  for (let n = 1; reader.next(); n++) {
    if ((n & 63) === 0 && slicer.due()) await slicer.pauseNow();
  }
  const services: ServiceWithDestinations[] = [];
  for (const entry of reader.entries()) {
    services.push(toRules(entry));
    if ((services.length & 255) === 0 && slicer.due()) await slicer.pauseNow();
  }
  return { ruleSet: { services }, clears: reader.clears };
}

function toRules(entry: MutableService): ServiceWithDestinations {
  return {
    service: entry.service,
    destinations: [...entry.destinations.values()],
    ...(entry.localAddresses.size > 0 ? { localAddresses: [...entry.localAddresses] } : {}),
  };
}

/** Reads a rules text one line at a time (no split of the whole text: that alone took tens of ms). */
class RulesReader {
  private readonly services: ServiceMap = new Map();
  /** A -C line was read. */
  clears = false;
  private at = 0;
  private line = 0;

  constructor(
    private readonly text: string,
    private readonly options: RulesOptions,
  ) {}

  /** Reads the next line; false at the end of the text. */
  next(): boolean {
    if (this.at > this.text.length) return false;
    let end = this.text.indexOf("\n", this.at);
    if (end === -1) end = this.text.length;
    const line = this.text.slice(this.at, end);
    this.at = end + 1;
    this.line++;
    const words = splitRulesLine(line);
    if (words.length === 0) return true;
    try {
      if (applyLine(this.services, words, this.options, this.line) === "clear") this.clears = true;
    } catch (error) {
      const message = error instanceof CommandError || error instanceof ConfigError ? error.message : String(error);
      throw new ConfigError(`line ${this.line}: ${message}`);
    }
    return true;
  }

  result(): RuleSet {
    return { services: [...this.services.values()].map(toRules) };
  }

  /** The services read so far, in file order. */
  entries(): IterableIterator<MutableService> {
    return this.services.values();
  }
}

function applyLine(services: ServiceMap, words: readonly string[], options: RulesOptions, line: number): "clear" | undefined {
  let command: ReturnType<typeof parseCommand> | undefined = readSaveLine(words);
  try {
    command ??= parseCommand(words, { program: "ipvsadm", ...(options.portNames ? { portNames: options.portNames } : {}) });
  } catch (error) {
    if (error instanceof CommandError && error.kind === "usage") {
      throw new ConfigError("a rules line must start with a command such as -A or -a");
    }
    throw error;
  }
  switch (command.kind) {
    case "clear":
      services.clear();
      return "clear";
    case "add-service":
      if (services.get(serviceId(command.service.key))) throw new ConfigError("Service already exists");
      setRuleLine(command.service, line);
      services.set(serviceId(command.service.key), { service: command.service, destinations: new Map(), localAddresses: new Set() });
      return;
    case "edit-service": {
      const entry = services.get(serviceId(command.service.key));
      if (!entry) throw new ConfigError("No such service");
      setRuleLine(command.service, line);
      entry.service = command.service;
      return;
    }
    case "delete-service": {
      const entry = services.get(serviceId(command.service));
      if (!entry) throw new ConfigError("No such service");
      services.delete(serviceId(command.service));
      return;
    }
    case "add-dest":
    case "edit-dest": {
      const entry = services.get(serviceId(command.service));
      if (!entry) throw new ConfigError("Service not defined");
      checkThresholds(command.destination);
      const id = destinationId(command.destination);
      const exists = entry.destinations.has(id);
      if (command.kind === "add-dest" && exists) throw new ConfigError("Destination already exists");
      if (command.kind === "edit-dest" && !exists) throw new ConfigError("No such destination");
      setRuleLine(command.destination, line);
      entry.destinations.set(id, command.destination);
      return;
    }
    case "delete-dest": {
      const entry = services.get(serviceId(command.service));
      if (!entry) throw new ConfigError("Service not defined");
      if (!entry.destinations.delete(destinationId(command.destination))) throw new ConfigError("No such destination");
      return;
    }
    case "add-laddr":
    case "del-laddr": {
      const entry = services.get(serviceId(command.service));
      if (!entry) throw new ConfigError("No such service");
      const address = canonical(command.address);
      if (command.kind === "add-laddr") {
        if (entry.localAddresses.has(address)) throw new ConfigError("Local address already exists");
        entry.localAddresses.add(address);
      } else if (!entry.localAddresses.delete(address)) throw new ConfigError("No such local address");
      return;
    }
    default:
      throw new ConfigError(`the '${command.kind}' command does not belong in a rules file (only -A -E -D -a -e -d -C -P -Q do)`);
  }
}

/** The kernel refuses a lower threshold above the upper one (ERANGE), as ipvsadm -R reports it. */
function checkThresholds(dest: DestinationConfig): void {
  if (dest.lowerThreshold > dest.upperThreshold) throw new ConfigError("Numerical result out of range");
}

export interface FormatRulesOptions extends RulesOptions {
  /** -S -n: numeric ports; otherwise named from /etc/services as ipvsadm -S does. */
  readonly numeric?: boolean;
}

/** The save text (`ipvsadm -S [-n]`) for a rule set. */
export function formatRules(ruleSet: RuleSet, options: FormatRulesOptions = {}): string {
  return formatSave(ruleSet.services, options);
}
