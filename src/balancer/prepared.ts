// Services and destinations checked before they are written, and what a RuleTransaction
// needs of a Balancer (kept apart so that rule-transaction.ts does not import balancer.ts,
// which uses it).

import type { DestinationConfig, ServiceConfig, ServiceKey } from "../config/types.js";
import type { DestinationArguments, ServiceArguments } from "../sched/service-table.js";

/** A service checked by Balancer.prepareService(), ready to be written. */
export interface PreparedService {
  readonly config: ServiceConfig;
  /** serviceKeyText of its key. */
  readonly keyText: string;
  readonly prefix: number;
  readonly scheduler: ServiceArguments;
}

/** A destination checked by Balancer.prepareDestination(), ready to be written. */
export interface PreparedDestination {
  readonly config: DestinationConfig;
  /** "address|port", canonical. */
  readonly id: string;
  readonly record: Uint8Array;
  readonly scheduler: DestinationArguments;
}

/** The Balancer as a RuleTransaction checks and changes it. */
export interface RuleTarget {
  readonly scheduler: { readonly destinationRecordsUsed: number; readonly maglevTables: number };
  readonly serviceCount: number;
  readonly maglevServiceCount: number;
  prepareKeyText(key: ServiceKey): string;
  hasServiceText(keyText: string): boolean;
  destinationCount(keyText: string): number;
  serviceConfig(key: ServiceKey): ServiceConfig;
  destinationConfig(key: ServiceKey, ref: { address: string; port: number }): DestinationConfig;
  destinationConfigs(key: ServiceKey): DestinationConfig[];
  prepareService(config: ServiceConfig): PreparedService;
  prepareDestination(service: ServiceConfig, config: DestinationConfig): PreparedDestination;
  addPreparedService(p: PreparedService): void;
  addPreparedDestination(service: ServiceKey | PreparedService, p: PreparedDestination): number;
  checkRoom(services: number, destinations: number, perService?: number): void;
  addService(config: ServiceConfig): void;
  editService(config: ServiceConfig): void;
  deleteService(key: ServiceKey): void;
  addDestination(key: ServiceKey, config: DestinationConfig): number;
  editDestination(key: ServiceKey, config: DestinationConfig): void;
  deleteDestination(key: ServiceKey, ref: { address: string; port: number }): void;
  /** Checks a full-NAT local address for a service (family, syntax); returns its canonical text. */
  prepareLocalAddress(service: ServiceConfig, address: string): string;
  addLocalAddress(key: ServiceKey, address: string): void;
  deleteLocalAddress(key: ServiceKey, address: string): void;
  localAddresses(key: ServiceKey): readonly { readonly address: string }[];
}
