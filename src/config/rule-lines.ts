// Where each service and destination of a parsed rules file came from, so that an error
// found later (while a restore or a reload is checked against the running director) still
// names its line. Kept beside the objects, not in them: a RuleSet stays plain data.

const lines = new WeakMap<object, number>();

/** Records that `item` (a ServiceConfig or DestinationConfig) was read from line `line` (1-based). */
export function setRuleLine(item: object, line: number): void {
  lines.set(item, line);
}

/** The line `item` was read from, if it came from a rules text. */
export function ruleLineOf(item: object): number | undefined {
  return lines.get(item);
}

/** `line N: message` when the item came from a rules text, else the message as it is. */
export function atRuleLine(item: object, message: string): string {
  const line = lines.get(item);
  return line === undefined || message.startsWith("line ") ? message : `line ${line}: ${message}`;
}
