// The scheduler API: service/destination tables in wasm and the custom scheduler registry.
export { ServiceTable, KERNEL_MAGLEV_SIZE } from "./service-table.js";
export type {
  ServiceTableOptions,
  ServiceOptions,
  DestinationOptions,
  DestinationEdit,
  ConnectionKind,
  SchedulerInfo,
} from "./service-table.js";
export {
  registerScheduler,
  unregisterScheduler,
  customScheduler,
  customSchedulerNames,
  KERNEL_SCHEDULERS,
} from "./registry.js";
export type {
  CustomSchedulerFn,
  CustomScheduler,
  CustomSchedulerOptions,
  ScheduleContext,
  DestinationState,
} from "./registry.js";
export { SchedulerConfigError } from "./errors.js";
export type { FlowKey, Protocol } from "./flow.js";
