// lvsd's main-thread services beside the control socket: the health checks of a
// keepalived.conf (--keepalived) and the Prometheus endpoint (--metrics). Both live on the
// main thread, away from the data plane's worker: a check waiting on a dead server or a
// slow scrape never delays a packet. Table changes from the checks take the path lvsadm
// takes (a command relayed to the worker); the metrics ask the worker for one snapshot of
// its counters per scrape.
import type { CommandResult } from "../admin/execute.js";
import { HealthChecker } from "../health/health-checker.js";
import { formatDiagnostic, KeepalivedConfError } from "../health/keepalived-conf/diagnostics.js";
import { readKeepalivedConf, type KeepalivedConf } from "../health/keepalived-conf/read.js";
import { LvsMetrics } from "../metrics/lvs-metrics.js";
import { serveMetrics, type MetricsServer } from "../metrics/metrics-server.js";
import type { MetricsSnapshot } from "../metrics/snapshot.js";

/** What the control plane needs from the data plane (LvsdHost, or anything alike). */
export interface DataPlaneHandle {
  command(request: { argv: readonly string[] }): Promise<CommandResult>;
  metricsSnapshot(): Promise<MetricsSnapshot>;
}

export interface ControlPlaneOptions {
  readonly keepalivedFile?: string;
  readonly metrics?: { readonly host: string; readonly port: number };
  readonly log: (line: string) => void;
}

/** Reads keepalived.conf and logs its warnings; throws KeepalivedConfError (nothing applied). */
export function loadKeepalivedConf(file: string, log: (line: string) => void): KeepalivedConf {
  let conf: KeepalivedConf;
  try {
    conf = readKeepalivedConf(file);
  } catch (e) {
    // Every problem of a refused file, one line each, before the one-line refusal.
    if (e instanceof KeepalivedConfError) for (const d of e.diagnostics) log(`keepalived.conf: ${formatDiagnostic(d)}`);
    throw e;
  }
  for (const d of conf.diagnostics) log(`keepalived.conf: ${formatDiagnostic(d)}`);
  const servers = conf.config.virtualServers.reduce((n, v) => n + v.realServers.length, 0);
  const services = conf.config.virtualServers.reduce((n, v) => n + v.services.length, 0);
  log(`keepalived.conf ${file}: ${services} virtual services, ${servers} real servers, ${conf.diagnostics.length} warnings`);
  return conf;
}

export class ControlPlane {
  private constructor(
    private readonly options: ControlPlaneOptions,
    readonly health: HealthChecker | null,
    private readonly server: MetricsServer | null,
  ) {}

  /**
   * Starts the health checks (the keepalived.conf must have been read: `initial`) and the
   * metrics endpoint. A failure stops what was started and throws.
   */
  static async start(plane: DataPlaneHandle, options: ControlPlaneOptions, initial: KeepalivedConf | null): Promise<ControlPlane> {
    const log = options.log;
    const health = initial ? new HealthChecker({ target: (argv) => plane.command({ argv }), log: (line) => log(`health: ${line}`) }) : null;
    let server: MetricsServer | null = null;
    try {
      if (options.metrics) {
        const metrics = new LvsMetrics({ snapshot: () => plane.metricsSnapshot(), ...(health ? { health: () => ({ virtualServers: health.status() }) } : {}) });
        health?.on((e) => {
          if (e.type === "check") metrics.observeCheck(e);
        });
        server = await serveMetrics(metrics, options.metrics, log);
        log(`metrics on http://${server.address.host.includes(":") ? `[${server.address.host}]` : server.address.host}:${server.address.port}/metrics`);
      }
      if (health && initial) await health.start(initial.config);
    } catch (e) {
      health?.stop();
      await server?.close();
      throw e;
    }
    return new ControlPlane(options, health, server);
  }

  /** SIGHUP: re-reads keepalived.conf; a file with an error changes nothing. */
  async reload(): Promise<void> {
    const file = this.options.keepalivedFile;
    if (!file || !this.health) return;
    try {
      const conf = loadKeepalivedConf(file, this.options.log);
      await this.health.reconfigure(conf.config);
    } catch (e) {
      const message = e instanceof KeepalivedConfError || e instanceof Error ? e.message : String(e);
      this.options.log(`reload ${file} refused, configuration unchanged: ${message}`);
    }
  }

  async stop(): Promise<void> {
    this.health?.stop();
    await this.server?.close();
  }
}
