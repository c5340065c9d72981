// ABI of full NAT's local addresses (assembly/conn/local-addresses.ts): the pool per
// service, the port range, and the counters. Addresses come in at params+0.

import { paramsBase } from "../layout";
import {
  initLocalAddresses, laddrAdd as add, laddrFind as find, laddrRetire, laddrConns, laddrExhausted, setPortRange,
  laddrCapacity, LADDR_NONE,
} from "../conn/local-addresses";
import { fnatExhausted } from "../datapath/fnat-ports";
import { connCapacity } from "../conn/conn-table";
import { initProxyState } from "../conn/proxy-state";
import { setProxyProtocol } from "../datapath/services";

/**
 * Carves room for `capacity` local addresses (all services together), and the PROXY
 * protocol's per-connection state (after connInit). 0, or 1 if refused.
 */
export function fnatInit(capacity: u32): u32 {
  if (connCapacity == 0) return 1;
  return initLocalAddresses(capacity) && initProxyState(connCapacity) ? 0 : 1;
}
/** PROXY protocol v2 for service svc's full-NAT TCP flows: on (1) or off (0). 0, or 1 if refused. */
export function serviceProxyProtocolSet(svc: u32, on: u32): u32 {
  return setProxyProtocol(svc, on) ? 0 : 1;
}
export function laddrTableSize(): u32 {
  return laddrCapacity;
}
/** Adds the address at params+0 to service svc's pool: its entry, or 0xffffffff (full, or there). */
export function laddrAdd(svc: u32, family: u32): u32 {
  return add(svc, family, paramsBase);
}
/** The live entry of service svc for the address at params+0, or 0xffffffff. */
export function laddrFind(svc: u32, family: u32): u32 {
  return find(svc, family, paramsBase);
}
/** Deletes entry i from its pool (its connections keep it until they end). 0, or 1 if unknown. */
export function laddrDelete(i: u32): u32 {
  if (i == LADDR_NONE || i >= laddrCapacity) return 1;
  laddrRetire(i);
  return 0;
}
/** Connections that use entry i. */
export function laddrConnections(i: u32): u32 {
  return laddrConns(i);
}
/** New flows entry i could not take for want of a free port. */
export function laddrExhaustedCount(i: u32): u32 {
  return laddrExhausted(i);
}
/** Full-NAT flows refused since start-up (no local address, or no free port). */
export function fnatExhaustedCount(): u32 {
  return fnatExhausted;
}
/** ip_local_port_range for local addresses. 0, or 1 for a bad range (nothing changed). */
export function fnatPortRange(low: u32, high: u32): u32 {
  return setPortRange(low, high) ? 0 : 1;
}
