// HTTP_GET and SSL_GET: keepalived's request ("GET path HTTP/1.x", User-Agent
// KeepAliveClient, Host: virtualhost or address:port), then the status code checked against
// the accepted ranges (default 200-299) and, when a digest is configured, the MD5 of the
// body compared with it. The whole exchange must finish within connect_timeout. The health
// checker hands this one url per attempt, in turn (http-check-state.ts); given several,
// it asks them in order and all must pass.
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { CheckSpec, HttpUrlSpec } from "../spec.js";
import { errorText, type ProbeResult } from "./probe.js";

/** A health page larger than this is a failure (the whole answer is held to hash it). */
const MAX_RESPONSE_BYTES = 16 << 20;

type HttpSpec = Extract<CheckSpec, { type: "HTTP_GET" | "SSL_GET" }>;

/** The request keepalived sends for one url. */
export function httpRequest(spec: HttpSpec, url: HttpUrlSpec): string {
  const vhost = url.virtualhost ?? spec.virtualhost;
  const host = vhost ?? (spec.address.includes(":") ? `[${spec.address}]:${spec.port}` : `${spec.address}:${spec.port}`);
  const minor = spec.httpProtocol === "1.1" ? 1 : 0;
  const close = spec.httpProtocol === "1.0" ? "" : "Connection: close\r\n";
  return `GET ${url.path} HTTP/1.${minor}\r\nUser-Agent: KeepAliveClient\r\n${close}Host: ${host}\r\n\r\n`;
}

interface HttpResponse {
  readonly status: number;
  readonly body: Buffer;
}

/** Splits a complete HTTP/1.x response; undoes chunked transfer coding. Null if malformed. */
export function parseHttpResponse(raw: Buffer): HttpResponse | null {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = raw.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/\d\.\d (\d{3})/.exec(head[0] ?? "");
  if (!m) return null;
  let body = raw.subarray(end + 4);
  if (head.some((h) => /^transfer-encoding:\s*chunked/i.test(h))) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf("\r\n", at);
      if (eol < 0) return null;
      const size = Number.parseInt(body.subarray(at, eol).toString("latin1"), 16);
      if (!Number.isFinite(size)) return null;
      if (size === 0) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status: Number(m[1]), body };
}

function statusAccepted(status: number, ranges: HttpUrlSpec["statusCodes"]): boolean {
  return ranges.some(([lo, hi]) => status >= lo && status <= hi);
}

/** Fetches one url: resolves with the raw response bytes, rejects on error or timeout. */
function fetchRaw(spec: HttpSpec, url: HttpUrlSpec, deadline: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const base = {
      host: spec.address,
      port: spec.port,
      ...(spec.bindto ? { localAddress: spec.bindto } : {}),
      ...(spec.bindPort ? { localPort: spec.bindPort } : {}),
    };
    const servername = spec.enableSni ? (url.virtualhost ?? spec.virtualhost) : undefined;
    const socket: Socket = spec.type === "SSL_GET" ? tlsConnect({ ...base, rejectUnauthorized: false, ...(servername ? { servername } : {}) }) : connect(base);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(() => finish(new Error(`no complete answer within the connect_timeout`)), Math.max(0, deadline - Date.now()));
    socket.once(spec.type === "SSL_GET" ? "secureConnect" : "connect", () => socket.write(httpRequest(spec, url)));
    let size = 0;
    socket.on("data", (d: Buffer) => {
      size += d.length;
      if (size > MAX_RESPONSE_BYTES) finish(new Error(`answer larger than ${MAX_RESPONSE_BYTES >> 20} MiB`));
      else chunks.push(d);
    });
    socket.once("end", () => finish(null));
    socket.once("error", (e) => finish(e));
  });
}

export async function httpProbe(spec: HttpSpec): Promise<ProbeResult> {
  const deadline = Date.now() + spec.connectTimeout;
  for (const url of spec.urls) {
    let raw: Buffer;
    try {
      raw = await fetchRaw(spec, url, deadline);
    } catch (e) {
      return { ok: false, detail: `${url.path}: ${errorText(e)}` };
    }
    const response = parseHttpResponse(raw);
    if (!response) return { ok: false, detail: `${url.path}: malformed HTTP response` };
    if (!statusAccepted(response.status, url.statusCodes)) return { ok: false, detail: `${url.path}: status ${response.status}` };
    if (url.digest) {
      const digest = createHash("md5").update(response.body).digest("hex");
      if (digest !== url.digest.toLowerCase()) return { ok: false, detail: `${url.path}: digest ${digest}, expected ${url.digest.toLowerCase()}` };
    }
  }
  return { ok: true, detail: spec.urls.length === 1 ? `${spec.urls[0].path}: ok` : `${spec.urls.length} urls ok` };
}
