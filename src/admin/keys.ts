// Identity of services and real servers, as the kernel looks them up: a service by protocol,
// address and port or by firewall mark and family; a real server by address and port.
import type { ServiceKey } from "../config/types.js";
import { parseAddress } from "./inet.js";

function canonical(address: string): string {
  return parseAddress(address)?.text ?? address;
}

export function sameServiceKey(a: ServiceKey, b: ServiceKey): boolean {
  if (a.kind === "fwmark" || b.kind === "fwmark") {
    return a.kind === "fwmark" && b.kind === "fwmark" && a.fwmark === b.fwmark && a.family === b.family;
  }
  return a.protocol === b.protocol && a.port === b.port && canonical(a.address) === canonical(b.address);
}

export function sameDestination(a: { address: string; port: number }, b: { address: string; port: number }): boolean {
  return a.port === b.port && canonical(a.address) === canonical(b.address);
}

/** The entry for a service key in any list of things that carry a ServiceConfig. */
export function findByServiceKey<T>(items: readonly T[], key: ServiceKey, configOf: (item: T) => { key: ServiceKey }): T | undefined {
  return items.find((item) => sameServiceKey(configOf(item).key, key));
}
