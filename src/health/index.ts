// Health checks with keepalived's semantics, and the keepalived.conf reader.
export { HealthChecker } from "./health-checker.js";
export type {
  HealthCheckerOptions,
  HealthCommandTarget,
  HealthEvent,
  HealthReloadSummary,
  CheckStatus,
  RealServerStatus,
  VirtualServerStatus,
} from "./health-checker.js";
export { KEEPALIVED_DEFAULTS, worstDetectionMs } from "./spec.js";
export type { CheckSpec, CheckTarget, CheckTimers, CheckType, HealthConfig, HttpUrlSpec, RealServerSpec, SorryServerSpec, VirtualServerSpec } from "./spec.js";
export { CheckState } from "./check-state.js";
export { HttpCheckState } from "./http-check-state.js";
export type { CheckOutcome } from "./check-state.js";
export { runProbe } from "./checks/index.js";
export type { ProbeResult } from "./checks/index.js";
export { readKeepalivedConf } from "./keepalived-conf/read.js";
export type { KeepalivedConf } from "./keepalived-conf/read.js";
export { KeepalivedConfError, formatDiagnostic } from "./keepalived-conf/diagnostics.js";
export type { Diagnostic } from "./keepalived-conf/diagnostics.js";
