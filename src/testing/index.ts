// lvs-wasm/testing: a kit for testing schedulers, built-in or custom. fast-check arbitraries
// for destination sets and flow keys, a runner that returns the distribution of picks,
// fairness assertions, and a reference model of the stateless schedulers.
export type { DestinationSpec } from "./destinations.js";
export { weightsOf } from "./destinations.js";
export {
  addressArb,
  schedulerArb,
  destinationSetArb,
  activeDestinationSetArb,
  flowKeyArb,
} from "./arbitraries.js";
export type { DestinationSetConstraints, FlowKeyConstraints } from "./arbitraries.js";
export { runScheduler, maglevTable, defaultFlows, withService, testingTable } from "./run.js";
export type { RunOptions, Distribution } from "./run.js";
export {
  FairnessError,
  assertProportional,
  assertWrrCycles,
  assertMaglevBalance,
  assertMaglevDisruption,
  maglevDisruption,
  maglevCounts,
} from "./fairness.js";
export type { MaglevDisruption } from "./fairness.js";
export { referencePick, schedulerCost, overhead } from "./oracle.js";
export type { StatelessScheduler } from "./oracle.js";
export { buildPacket, withEthernet } from "./packets.js";
export type { PacketSpec, EthernetSpec } from "./packets.js";
