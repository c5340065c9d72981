// The Prometheus metrics of a balancer, with prom-client. Two families:
//
// - node_exporter's ipvs collector, same names, types and labels (local_address, local_port,
//   remote_address, remote_port, proto, local_mark), so that dashboards and alerts written
//   for kernel IPVS work unchanged: node_ipvs_connections_total, ..._incoming_packets_total,
//   ..._outgoing_packets_total, ..._incoming_bytes_total, ..._outgoing_bytes_total (the
//   whole balancer), node_ipvs_backend_connections_active / _inactive / node_ipvs_backend_weight.
// - lvs-wasm's own, prefixed lvs_wasm_: per-service and per-destination counters and rate
//   estimates, health state, last transition and check latency, datapath drops by reason,
//   connection table fill, adapter counters. docs/metrics.md lists every one.
//
// Each metric's collect callback reads the snapshot taken once at the start of the scrape
// (LvsMetrics.collect), so one scrape is one consistent picture of the data plane.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ServiceSnapshot, TrafficCounters, TrafficRates } from "../balancer/snapshots.js";
import type { DestinationConfig } from "../config/types.js";
import type { HealthSnapshot, MetricsSnapshot } from "./snapshot.js";

const BACKEND_LABELS = ["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"] as const;
const SERVICE_LABELS = ["local_address", "local_port", "proto", "local_mark"] as const;
const HEALTH_LABELS = ["virtual_server", "remote_address", "remote_port"] as const;

type ServiceLabels = Record<(typeof SERVICE_LABELS)[number], string>;

/** node_exporter's label values for a service (from /proc/net/ip_vs: FWM marks as %08X). */
export function serviceLabels(s: ServiceSnapshot): ServiceLabels {
  const key = s.config.key;
  if (key.kind === "fwmark") return { local_address: "", local_port: "0", proto: "FWM", local_mark: key.fwmark.toString(16).toUpperCase().padStart(8, "0") };
  return { local_address: key.address, local_port: String(key.port), proto: key.protocol.toUpperCase(), local_mark: "" };
}

function backendLabels(s: ServiceSnapshot, d: DestinationConfig): Record<(typeof BACKEND_LABELS)[number], string> {
  return { ...serviceLabels(s), remote_address: d.address, remote_port: String(d.port) };
}

const COUNTERS: ReadonlyArray<readonly [keyof TrafficCounters, string, string]> = [
  ["conns", "connections_total", "connections scheduled"],
  ["inpkts", "incoming_packets_total", "packets from clients"],
  ["outpkts", "outgoing_packets_total", "packets from real servers (NAT replies)"],
  ["inbytes", "incoming_bytes_total", "bytes from clients"],
  ["outbytes", "outgoing_bytes_total", "bytes from real servers (NAT replies)"],
];
const RATES: ReadonlyArray<readonly [keyof TrafficRates, string, string]> = [
  ["cps", "connections_per_second", "connections per second"],
  ["inpps", "incoming_packets_per_second", "incoming packets per second"],
  ["outpps", "outgoing_packets_per_second", "outgoing packets per second"],
  ["inbps", "incoming_bytes_per_second", "incoming bytes per second"],
  ["outbps", "outgoing_bytes_per_second", "outgoing bytes per second"],
];

/** Sets a counter to an absolute value read from the data plane (counters only grow there, or are zeroed by -Z). */
function setCounter<T extends string>(c: Counter<T>, labels: Partial<Record<T, string>>, value: number): void {
  if (value > 0) c.inc(labels, value);
  else c.inc(labels, 0);
}

export interface LvsMetricsSources {
  /** The data plane's counters (may cross a thread). */
  readonly snapshot: () => MetricsSnapshot | Promise<MetricsSnapshot>;
  /** The health checker's state, when one runs. */
  readonly health?: () => HealthSnapshot;
}

export class LvsMetrics {
  readonly registry = new Registry();
  private current: MetricsSnapshot | null = null;
  private health: HealthSnapshot | null = null;
  private readonly checkDuration: Histogram<"check" | "virtual_server" | "remote_address" | "remote_port" | "result">;

  constructor(private readonly sources: LvsMetricsSources) {
    const r = this.registry;
    const self = this;
    const snap = () => self.current;

    // node_exporter's ipvs collector.
    for (const [field, name, what] of COUNTERS) {
      new Counter({
        name: `node_ipvs_${name}`,
        help: `The total number of ${what} (node_exporter ipvs collector name).`,
        registers: [r],
        collect() {
          this.reset();
          const s = snap();
          if (s) setCounter(this, {}, Number(s.totals.stats[field]));
        },
      });
    }
    const backendGauge = (name: string, help: string, value: (d: ServiceSnapshot["destinations"][number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: BACKEND_LABELS,
        registers: [r],
        collect() {
          this.reset();
          const sums = new Map<string, { labels: Record<string, string>; value: number }>();
          for (const s of snap()?.listing.services ?? [])
            for (const d of s.destinations) {
              const labels = backendLabels(s, d.config);
              const key = BACKEND_LABELS.map((l) => labels[l]).join("-");
              const entry = sums.get(key) ?? { labels, value: 0 };
              entry.value += value(d);
              sums.set(key, entry);
            }
          for (const { labels, value: v } of sums.values()) this.set(labels, v);
        },
      });
    backendGauge("node_ipvs_backend_connections_active", "The current active connections by local and remote address.", (d) => d.activeConns);
    backendGauge("node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.", (d) => d.inactConns);
    backendGauge("node_ipvs_backend_weight", "The current backend weight by local and remote address.", (d) => d.config.weight);

    // lvs-wasm: per service and per destination.
    for (const [field, name, what] of COUNTERS) {
      new Counter({
        name: `lvs_wasm_service_${name}`,
        help: `Per virtual service: ${what}.`,
        labelNames: SERVICE_LABELS,
        registers: [r],
        collect() {
          this.reset();
          for (const s of snap()?.listing.services ?? []) if (s.stats) setCounter(this, serviceLabels(s), Number(s.stats[field]));
        },
      });
      new Counter({
        name: `lvs_wasm_backend_${name}`,
        help: `Per real server of a virtual service: ${what}.`,
        labelNames: BACKEND_LABELS,
        registers: [r],
        collect() {
          this.reset();
          for (const s of snap()?.listing.services ?? [])
            for (const d of s.destinations) if (d.stats) setCounter(this, backendLabels(s, d.config), Number(d.stats[field]));
        },
      });
    }
    for (const [field, name, what] of RATES) {
      new Gauge({
        name: `lvs_wasm_service_${name}`,
        help: `Per virtual service: ${what}, the kernel's 2-second rate estimator (ipvsadm --rate).`,
        labelNames: SERVICE_LABELS,
        registers: [r],
        collect() {
          this.reset();
          for (const s of snap()?.listing.services ?? []) if (s.rates) this.set(serviceLabels(s), Number(s.rates[field]));
        },
      });
      new Gauge({
        name: `lvs_wasm_backend_${name}`,
        help: `Per real server: ${what}, the kernel's 2-second rate estimator (ipvsadm --rate).`,
        labelNames: BACKEND_LABELS,
        registers: [r],
        collect() {
          this.reset();
          for (const s of snap()?.listing.services ?? [])
            for (const d of s.destinations) if (d.rates) this.set(backendLabels(s, d.config), Number(d.rates[field]));
        },
      });
    }
    new Gauge({
      name: "lvs_wasm_backend_connections_persistent",
      help: "Persistence templates pointing at the real server (ipvsadm --persistent-conn).",
      labelNames: BACKEND_LABELS,
      registers: [r],
      collect() {
        this.reset();
        for (const s of snap()?.listing.services ?? []) for (const d of s.destinations) this.set(backendLabels(s, d.config), d.persistConns);
      },
    });

    // Connection table and datapath.
    new Gauge({
      name: "lvs_wasm_connection_table_entries",
      help: "Live entries of the connection table (connections and persistence templates).",
      registers: [r],
      collect() {
        const s = snap();
        if (s) this.set(s.connections);
      },
    });
    new Gauge({
      name: "lvs_wasm_connection_table_capacity",
      help: "Size of the connection table (fixed at start, --connections).",
      registers: [r],
      collect() {
        const s = snap();
        if (s) this.set(s.capacity);
      },
    });
    const datapathCounter = (name: string, help: string, field: "received" | "forwarded" | "replied" | "passed" | "sendFailures" | "neighbourMisses") =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          const d = snap()?.datapath;
          if (d) setCounter(this, {}, d[field]);
        },
      });
    datapathCounter("lvs_wasm_datapath_received_packets_total", "Packets the data plane received from the adapters.", "received");
    datapathCounter("lvs_wasm_datapath_forwarded_packets_total", "Packets forwarded to real servers (or NAT replies to clients).", "forwarded");
    datapathCounter("lvs_wasm_datapath_replied_packets_total", "Packets answered by the director itself (ICMP it generated).", "replied");
    datapathCounter("lvs_wasm_datapath_passed_packets_total", "Packets passed to the host (not for a virtual service).", "passed");
    datapathCounter("lvs_wasm_datapath_send_failures_total", "Packets an adapter did not take.", "sendFailures");
    datapathCounter("lvs_wasm_datapath_neighbour_misses_total", "Forwards dropped because the next hop's MAC was unknown.", "neighbourMisses");
    new Counter({
      name: "lvs_wasm_datapath_drops_total",
      help: "Packets dropped by the data plane, by reason.",
      labelNames: ["reason"],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(snap()?.datapath?.drops ?? {})) setCounter(this, { reason }, n);
      },
    });
    new Counter({
      name: "lvs_wasm_datapath_handoffs_total",
      help: "lvsd --workers: packets a worker received for a flow another worker owns and handed to it (out), or took from the others (in).",
      labelNames: ["worker", "direction"],
      registers: [r],
      collect() {
        this.reset();
        for (const [i, w] of (snap()?.workers ?? []).entries()) {
          setCounter(this, { worker: String(i), direction: "out" }, w.handedOff);
          setCounter(this, { worker: String(i), direction: "in" }, w.takenOver);
        }
      },
    });
    const adapterCounter = (name: string, help: string, field: "received" | "sent" | "sendErrors" | "truncated") =>
      new Counter({
        name,
        help,
        labelNames: ["adapter"],
        registers: [r],
        collect() {
          this.reset();
          for (const a of snap()?.adapters ?? []) setCounter(this, { adapter: a.name }, a[field]);
        },
      });
    adapterCounter("lvs_wasm_adapter_received_packets_total", "Packets an adapter received.", "received");
    adapterCounter("lvs_wasm_adapter_sent_packets_total", "Packets an adapter sent.", "sent");
    adapterCounter("lvs_wasm_adapter_send_errors_total", "Send errors of an adapter.", "sendErrors");
    adapterCounter("lvs_wasm_adapter_truncated_packets_total", "Packets larger than a slot, cut short.", "truncated");

    // Health.
    const healthGauge = (name: string, help: string, each: (g: Gauge<string>, h: HealthSnapshot) => void) =>
      new Gauge({
        name,
        help,
        labelNames: name.startsWith("lvs_wasm_health_check_") ? [...HEALTH_LABELS, "check"] : name.includes("real_server") ? HEALTH_LABELS : ["virtual_server"],
        registers: [r],
        collect() {
          this.reset();
          if (self.health) each(this, self.health);
        },
      });
    healthGauge("lvs_wasm_health_real_server_up", "1 while every check of the real server passes (it is in the pool), else 0.", (g, h) => {
      for (const vs of h.virtualServers)
        for (const rs of vs.realServers)
          g.set({ virtual_server: vs.services.join(","), remote_address: rs.address, remote_port: String(rs.port) }, rs.alive ? 1 : 0);
    });
    healthGauge("lvs_wasm_health_real_server_weight", "The weight the real server has while alive (configured, or set by MISC_CHECK misc_dynamic).", (g, h) => {
      for (const vs of h.virtualServers)
        for (const rs of vs.realServers) g.set({ virtual_server: vs.services.join(","), remote_address: rs.address, remote_port: String(rs.port) }, rs.weight);
    });
    healthGauge(
      "lvs_wasm_health_real_server_last_transition_timestamp_seconds",
      "Unix time of the real server's last up/down change (or of start).",
      (g, h) => {
        for (const vs of h.virtualServers)
          for (const rs of vs.realServers)
            g.set({ virtual_server: vs.services.join(","), remote_address: rs.address, remote_port: String(rs.port) }, rs.lastTransition / 1000);
      },
    );
    healthGauge("lvs_wasm_health_check_up", "1 while the check passes, else 0.", (g, h) => {
      for (const vs of h.virtualServers)
        for (const rs of vs.realServers)
          for (const c of rs.checks)
            g.set({ virtual_server: vs.services.join(","), remote_address: rs.address, remote_port: String(rs.port), check: c.type }, c.up ? 1 : 0);
    });
    healthGauge("lvs_wasm_health_quorum_up", "1 while the live real servers' weight meets the quorum, else 0.", (g, h) => {
      for (const vs of h.virtualServers) g.set({ virtual_server: vs.services.join(",") }, vs.quorumUp ? 1 : 0);
    });
    healthGauge("lvs_wasm_health_sorry_server_active", "1 while the sorry server replaces the real servers (quorum lost), else 0.", (g, h) => {
      for (const vs of h.virtualServers) g.set({ virtual_server: vs.services.join(",") }, vs.sorryServerActive ? 1 : 0);
    });
    this.checkDuration = new Histogram({
      name: "lvs_wasm_health_check_duration_seconds",
      help: "Duration of each check attempt (connect, request, program run), by result.",
      labelNames: ["check", "virtual_server", "remote_address", "remote_port", "result"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
  }

  /** Records one check attempt (the health checker's "check" events). */
  observeCheck(e: { check: string; service: string; destination: string; ok: boolean; latencyMs: number }): void {
    const at = e.destination.lastIndexOf(":");
    const address = e.destination.slice(0, at).replace(/^\[|\]$/g, "");
    this.checkDuration.observe(
      { check: e.check, virtual_server: e.service, remote_address: address, remote_port: e.destination.slice(at + 1), result: e.ok ? "success" : "failure" },
      e.latencyMs / 1000,
    );
  }

  /** One scrape: takes the snapshot, then renders every metric from it (Prometheus text format). */
  async collect(): Promise<string> {
    this.current = await this.sources.snapshot();
    this.health = this.sources.health?.() ?? null;
    try {
      return await this.registry.metrics();
    } finally {
      this.current = null;
      this.health = null;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
