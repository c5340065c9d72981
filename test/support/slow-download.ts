// A download that really lasts: tests that must hold a long connection open through a
// failover or a configuration change read it with this, not with `curl --limit-rate`.
// Debian bookworm's curl 7.88.1 does not always hold the rate: on this machine
// `curl --limit-rate 1M` fetched 10 MiB from loopback in 8.0 s once and in 0.39 s the next
// time, so a test's "long" connection sometimes ended before the event it was there for.
// This reader paces its own reads and keeps its receive buffer small, so the server can run
// at most about 64 KiB ahead and the connection carries data until the last byte is read.
//
// It prints "<sha256 hex> <bytes>" and exits 0 when the whole body (its Content-Length)
// arrived; otherwise one line on stderr and a non-zero exit.

import type { ExecResult, HostName, Lab } from "../../src/lab/index.js";

const SLOW_DOWNLOAD_PY = `
import hashlib, socket, sys, time
host, port, path, rate, local = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
v6 = ":" in host
try:
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    if local:
        s.bind(("::" if v6 else "0.0.0.0", local))
    s.settimeout(20)
    s.connect((host, port))
    name = "[%s]" % host if v6 else host
    s.sendall(("GET %s HTTP/1.1\\r\\nHost: %s:%d\\r\\nConnection: close\\r\\n\\r\\n" % (path, name, port)).encode())
    buf = b""
    while b"\\r\\n\\r\\n" not in buf:
        d = s.recv(65536)
        if not d:
            sys.exit("closed before the response headers")
        buf += d
    head, body = buf.split(b"\\r\\n\\r\\n", 1)
    lines = head.decode("latin-1").split("\\r\\n")
    if lines[0].split()[1:2] != ["200"]:
        sys.exit("status line: " + lines[0])
    sizes = [int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")]
    if not sizes:
        sys.exit("no Content-Length")
    length = sizes[0]
    digest, got, start = hashlib.sha256(body), len(body), time.monotonic()
    while got < length:
        d = s.recv(min(16384, length - got))
        if not d:
            break
        digest.update(d)
        got += len(d)
        ahead = got / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    print(digest.hexdigest(), got, flush=True)
    if got != length:
        sys.exit("cut short after %d of %d bytes" % (got, length))
except (OSError, ValueError) as e:
    sys.exit("%s: %s" % (type(e).__name__, e))
`;

export interface SlowDownloadOptions {
  /** Server address (IPv4 or IPv6) and port. */
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** Bytes per second the reader takes. */
  readonly rate: number;
  /** The client port to bind (0: the kernel's choice). */
  readonly localPort?: number;
  readonly timeoutMs?: number;
}

/** Runs the paced reader in `from`; resolves with its result (stdout "<sha256> <bytes>"), failed or not. */
export function slowDownload(lab: Lab, from: HostName, o: SlowDownloadOptions): Promise<ExecResult> {
  return lab.exec(from, "/usr/bin/python3", ["-c", SLOW_DOWNLOAD_PY, o.host, String(o.port), o.path, String(o.rate), String(o.localPort ?? 0)], {
    timeoutMs: o.timeoutMs ?? 70_000,
    allowFailure: true,
  });
}
