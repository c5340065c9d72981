// The ipvsadm language layer: parse argument vectors and rules files, print ipvsadm's output.
export { parseCommand, SCHEDULER_NAME } from "./command.js";
export type {
  LvsCommand,
  ListFormat,
  ListSubject,
  Timeouts,
  SyncRole,
  SyncDaemonConfig,
  DestinationRef,
  ParseCommandOptions,
} from "./command.js";
export { CommandError } from "./errors.js";
export type { CommandErrorKind } from "./errors.js";
export {
  formatListing,
  formatListingInSlices,
  formatServiceListing,
  formatSave,
  formatSaveInSlices,
  formatConnections,
  formatTimeouts,
  formatDaemons,
  largeNumber,
  DEFAULT_LIST_FORMAT,
  listingRenderer,
  saveRenderer,
  formatRenderedListingInSlices,
  formatRenderedSaveInSlices,
} from "./format.js";
export type {
  ListingSnapshot,
  ServiceSnapshot,
  DestinationSnapshot,
  TrafficCounters,
  TrafficRates,
  ConnectionSnapshot,
  ConnectionEndpoint,
  SyncDaemonSnapshot,
  FormatOptions,
  SaveOptions,
  RenderedService,
} from "./format.js";
export { parseRules, parseRulesInSlices, readRulesInSlices, formatRules, splitRulesLine, ruleLine } from "./rules.js";
export type { RulesOptions, FormatRulesOptions } from "./rules.js";
export { sameServiceKey, sameDestination, findByServiceKey } from "./keys.js";
export { compareServices, compareDestinations } from "./sort.js";
export { portNamesFromText, systemPortNamesDb, NO_PORT_NAMES } from "./services-db.js";
export type { PortNames, ServiceProtocol } from "./services-db.js";
export { formatUsage, formatVersion } from "./usage.js";
export { executeCommand } from "./execute.js";
export type { CommandResult, ExecutionContext } from "./execute.js";
export { replay } from "./replay.js";
export type { ReplayOptions, ReplayResult } from "./replay.js";
export { serveControl, serveControlWith, answer as answerControlRequest } from "./control-server.js";
export type { ControlServer, ControlHandler } from "./control-server.js";
export { sendCommand, defaultSocketPath } from "./control-client.js";
