// Output that is never cut short. Node writes to a pipe asynchronously once the pipe's
// 64 KiB buffer is full, and process.exit() drops whatever is still queued: `lvsadm -Sn |
// wc -c` used to stop at 65,536 bytes with exit status 0. Every command line program here
// writes through writeAll() and leaves through exitWhenDrained(). A reader that goes away
// (`lvsadm -Sn | head`) ends the program quietly, as ipvsadm ends by SIGPIPE: no message,
// status 141 (128 + SIGPIPE), what a shell reports for ipvsadm.

/** Exit status of a program whose reader closed the pipe (the shell's 128 + SIGPIPE). */
export const BROKEN_PIPE_STATUS = 141;

let guarded = false;

/**
 * Makes EPIPE on stdout or stderr end the process quietly with BROKEN_PIPE_STATUS instead
 * of an "Unhandled 'error' event" stack trace. A daemon passes `{ exit: false }`: it keeps
 * forwarding when whoever read its log goes away. Idempotent.
 */
export function quietOnBrokenPipe(options: { exit?: boolean } = {}): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") throw e;
      if (options.exit !== false) process.exit(BROKEN_PIPE_STATUS);
    });
  }
}

/** Writes `text` and resolves once the stream has handed all of it to the kernel. */
export function writeAll(stream: NodeJS.WritableStream, text: string | Uint8Array): Promise<void> {
  if (text.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}

/** Waits until stdout and stderr have drained, then exits with `code`. */
export async function exitWhenDrained(code: number): Promise<never> {
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

/** Resolves when everything written before now has left the stream's queue. */
function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => stream.write("", () => resolve()));
}

/** Reads all of stdin (a pipe, a file or a terminal) as UTF-8. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
