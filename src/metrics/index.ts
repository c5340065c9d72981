// Prometheus metrics: node_exporter's ipvs names plus lvs-wasm's own (docs/metrics.md).
export { LvsMetrics, serviceLabels } from "./lvs-metrics.js";
export type { LvsMetricsSources } from "./lvs-metrics.js";
export { serveMetrics, parseMetricsAddress } from "./metrics-server.js";
export type { MetricsServer, MetricsEndpoint } from "./metrics-server.js";
export { balancerSnapshot } from "./balancer-snapshot.js";
export type { MetricsSnapshot, HealthSnapshot, DatapathCounters, AdapterCounters } from "./snapshot.js";
