// The HTTP endpoint Prometheus scrapes: GET /metrics answers the text exposition format;
// every other path is 404. It listens only where it is told (lvsd --metrics HOST:PORT).
import { createServer, type Server } from "node:http";
import { isIP } from "node:net";
import { ConfigError } from "../config/types.js";
import type { LvsMetrics } from "./lvs-metrics.js";

export interface MetricsEndpoint {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:9101", "[::1]:9101", "localhost:9101" -> host and port; ConfigError otherwise. */
export function parseMetricsAddress(text: string): MetricsEndpoint {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m ? (m[1] ?? m[2]) : undefined;
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !host || port > 65535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new ConfigError(`--metrics ${text}: expected HOST:PORT, e.g. 127.0.0.1:9101 or [::1]:9101`);
  }
  return { host, port };
}

export interface MetricsServer {
  /** The address it listens on (the port is the real one when 0 was asked). */
  readonly address: MetricsEndpoint;
  close(): Promise<void>;
}

export function serveMetrics(metrics: LvsMetrics, where: MetricsEndpoint, log: (line: string) => void = () => {}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("lvs-wasm: metrics are at /metrics\n");
      return;
    }
    metrics.collect().then(
      (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(req.method === "HEAD" ? undefined : text),
      (e: unknown) => {
        log(`metrics: scrape failed: ${e instanceof Error ? e.message : String(e)}`);
        res.writeHead(500, { "content-type": "text/plain" }).end("scrape failed\n");
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(where.port, where.host, () => {
      server.off("error", reject);
      const a = server.address();
      const port = a && typeof a === "object" ? a.port : where.port;
      resolve({
        address: { host: where.host, port },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
