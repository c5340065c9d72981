// Replaces AssemblyScript's default abort, which needs string decoding on the host. The
// data plane never aborts on input (every malformed packet gets a verdict); this fires only
// on a broken invariant in our own code and reports it to the host as integers.
@external("env", "lvsAbort")
declare function lvsAbortHost(line: u32, column: u32): void;

export function hostAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32,
): void {
  lvsAbortHost(lineNumber, columnNumber);
  unreachable();
}
