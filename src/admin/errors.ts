// The one error the ipvsadm language layer throws: what ipvsadm would print, and its exit code.

/** Which of ipvsadm's error paths produced the error. */
export type CommandErrorKind =
  /** No command, or a bad first option: ipvsadm prints only its "Try ... -h" line. */
  | "usage"
  /** popt refused a word ("-t: missing argument"). */
  | "option"
  /** ipvsadm's own checks (fail(2, ...)). */
  | "invalid"
  /** What the kernel (here: the rules validator or the Balancer) would refuse. */
  | "kernel";

export class CommandError extends Error {
  /** Exactly what ipvsadm writes to stderr for the same input, newlines included. */
  readonly stderr: string;
  /** ipvsadm's exit status: 2 for fail(), 255 for popt and usage errors, 255 or 1 for kernel refusals. */
  readonly exitCode: number;
  readonly kind: CommandErrorKind;

  constructor(kind: CommandErrorKind, stderr: string, exitCode: number) {
    super(oneLine(stderr));
    this.name = "CommandError";
    this.kind = kind;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/** The message as one line: trailing newlines dropped, inner ones (from odd arguments) escaped. */
function oneLine(text: string): string {
  const trimmed = text.replace(/\n+$/, "");
  const escaped = trimmed.replace(/\r/g, "\\r").replace(/\n/g, "\\n");
  return escaped.length > 0 ? escaped : "invalid command";
}

/** ipvsadm's fail(2, ...): the message and a newline on stderr, exit status 2. */
export function failure(message: string): CommandError {
  return new CommandError("invalid", `${message}\n`, 2);
}

/** ipvsadm's tryhelp_exit(argv[0], -1): exit status 255. */
export function usageFailure(program: string): CommandError {
  return new CommandError("usage", `Try \`${program} -h' or '${program} --help' for more information.\n`, 255);
}

/** A refusal ipvsadm would print from ipvs_strerror() after the kernel said no (main returns -1). */
export function kernelFailure(message: string): CommandError {
  return new CommandError("kernel", `${message}\n`, 255);
}
