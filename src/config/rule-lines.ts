// Where each service and destination of a parsed rules file came from, so that an error
// found later (while a restore or a reload is checked against the running director) still
// names its line. A non-enumerable symbol property: a RuleSet stays plain data to JSON,
// structured clone and deep equality, and 250,000 lines cost no weak-map entries (which
// made the garbage collector a third of a large restore).

const LINE = Symbol("rules line");

/** Records that `item` (a ServiceConfig or DestinationConfig) was read from line `line` (1-based). */
export function setRuleLine(item: object, line: number): void {
  Object.defineProperty(item, LINE, { value: line, enumerable: false, writable: true, configurable: true });
}

/** The line `item` was read from, if it came from a rules text. */
export function ruleLineOf(item: object): number | undefined {
  return (item as { [LINE]?: number })[LINE];
}

/** `line N: message` when the item came from a rules text, else the message as it is. */
export function atRuleLine(item: object, message: string): string {
  const line = ruleLineOf(item);
  return line === undefined || message.startsWith("line ") ? message : `line ${line}: ${message}`;
}
