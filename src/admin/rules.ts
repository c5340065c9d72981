// Rules files: what `ipvsadm -S [-n]` writes and `ipvsadm -R` reads. Each line is one
// ipvsadm argument vector, split on blanks as ipvsadm's config_stream_read splits it (no
// quoting). The whole text is validated before anything is returned, as if restored into an
// empty table (ipvsadm-restore clears first): the first bad line names itself.
import { ConfigError } from "../config/types.js";
import type { DestinationConfig, RuleSet, ServiceConfig, ServiceWithDestinations } from "../config/types.js";
import { parseCommand } from "./command.js";
import { CommandError } from "./errors.js";
import { formatSave } from "./format.js";
import { sameDestination, sameServiceKey } from "./keys.js";
import type { PortNames } from "./services-db.js";

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

// Which line of the text parseRules read set each service and destination it returns, so
// that a later check (lvsd validating a reload on a scratch Balancer) can name the line.
const sourceLines = new WeakMap<object, number>();

/** The 1-based line of the rules text that set this service or destination (parseRules output only). */
export function ruleLine(entry: ServiceConfig | DestinationConfig): number | undefined {
  return sourceLines.get(entry);
}

interface MutableService {
  service: ServiceConfig;
  destinations: DestinationConfig[];
}

/** Parses and validates a whole rules text; throws ConfigError("line N: ...") at the first bad line. */
export function parseRules(text: string, options: RulesOptions = {}): RuleSet {
  const services: MutableService[] = [];
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    const words = splitRulesLine(line);
    if (words.length === 0) return;
    try {
      applyLine(services, words, options, index + 1);
    } catch (error) {
      const message = error instanceof CommandError || error instanceof ConfigError ? error.message : String(error);
      throw new ConfigError(`line ${index + 1}: ${message}`);
    }
  });
  return {
    services: services.map((entry): ServiceWithDestinations => ({ service: entry.service, destinations: entry.destinations })),
  };
}

function applyLine(services: MutableService[], words: readonly string[], options: RulesOptions, line: number): void {
  let command: ReturnType<typeof parseCommand>;
  try {
    command = parseCommand(words, { program: "ipvsadm", ...(options.portNames ? { portNames: options.portNames } : {}) });
  } catch (error) {
    if (error instanceof CommandError && error.kind === "usage") {
      throw new ConfigError("a rules line must start with a command such as -A or -a");
    }
    throw error;
  }
  const find = (key: ServiceConfig["key"]) => services.find((entry) => sameServiceKey(entry.service.key, key));
  if (command.kind === "add-service" || command.kind === "edit-service") sourceLines.set(command.service, line);
  if (command.kind === "add-dest" || command.kind === "edit-dest") sourceLines.set(command.destination, line);
  switch (command.kind) {
    case "clear":
      services.length = 0;
      return;
    case "add-service":
      if (find(command.service.key)) throw new ConfigError("Service already exists");
      services.push({ service: command.service, destinations: [] });
      return;
    case "edit-service": {
      const entry = find(command.service.key);
      if (!entry) throw new ConfigError("No such service");
      entry.service = command.service;
      return;
    }
    case "delete-service": {
      const entry = find(command.service);
      if (!entry) throw new ConfigError("No such service");
      services.splice(services.indexOf(entry), 1);
      return;
    }
    case "add-dest":
    case "edit-dest": {
      const entry = find(command.service);
      if (!entry) throw new ConfigError("Service not defined");
      checkThresholds(command.destination);
      const at = entry.destinations.findIndex((dest) => sameDestination(dest, command.destination));
      if (command.kind === "add-dest") {
        if (at !== -1) throw new ConfigError("Destination already exists");
        entry.destinations.push(command.destination);
      } else {
        if (at === -1) throw new ConfigError("No such destination");
        entry.destinations[at] = command.destination;
      }
      return;
    }
    case "delete-dest": {
      const entry = find(command.service);
      if (!entry) throw new ConfigError("Service not defined");
      const at = entry.destinations.findIndex((dest) => sameDestination(dest, command.destination));
      if (at === -1) throw new ConfigError("No such destination");
      entry.destinations.splice(at, 1);
      return;
    }
    default:
      throw new ConfigError(`the '${command.kind}' command does not belong in a rules file (only -A -E -D -a -e -d -C do)`);
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
