// What the keepalived.conf reader says about a file: warnings (a keyword lvs-wasm reads but
// does not apply, and that changes no traffic) and errors (anything that would change
// traffic and cannot be applied, or a value that is wrong). A file with an error is
// refused whole: nothing of it is applied.

export interface Diagnostic {
  readonly severity: "warning" | "error";
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** "file:line: message", the form every diagnostic is printed in. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}: ${d.severity}: ${d.message}`;
}

/** A keepalived.conf that cannot be applied; the message names file and line. */
export class KeepalivedConfError extends Error {
  /** Every diagnostic of the file, warnings included. */
  readonly diagnostics: readonly Diagnostic[];
  constructor(message: string, diagnostics: readonly Diagnostic[] = []) {
    super(message);
    this.name = "KeepalivedConfError";
    this.diagnostics = diagnostics;
  }
}
