// What the Balancer reports about itself: listings (services, destinations, counters,
// rates), connections and timeouts. The Balancer owns these types; the ipvsadm language
// (src/admin) formats them, and re-exports them for its callers.
import type { DestinationConfig, Protocol, ServiceConfig } from "../config/types.js";

export interface TrafficCounters {
  readonly conns: bigint;
  readonly inpkts: bigint;
  readonly outpkts: bigint;
  readonly inbytes: bigint;
  readonly outbytes: bigint;
}

/** Per-second estimates (the kernel's rate estimator), as whole numbers. */
export interface TrafficRates {
  readonly cps: bigint;
  readonly inpps: bigint;
  readonly outpps: bigint;
  readonly inbps: bigint;
  readonly outbps: bigint;
}

export interface DestinationSnapshot {
  readonly config: DestinationConfig;
  readonly activeConns: number;
  readonly inactConns: number;
  readonly persistConns: number;
  readonly stats?: TrafficCounters;
  readonly rates?: TrafficRates;
  /** The real server is this host: ipvsadm shows "Local" (and saves it as -g). */
  readonly local?: boolean;
}

export interface ServiceSnapshot {
  readonly config: ServiceConfig;
  readonly stats?: TrafficCounters;
  readonly rates?: TrafficRates;
  /** In the kernel's list order, newest first (what --nosort prints). */
  readonly destinations: readonly DestinationSnapshot[];
}

export interface ListingSnapshot {
  /** IPVS version shown in the header; default "1.2.1". */
  readonly version?: string;
  /** Connection table size shown as (size=N). */
  readonly tableSize: number;
  /** In the table's own order (what --nosort prints). */
  readonly services: readonly ServiceSnapshot[];
}

export interface ConnectionEndpoint {
  readonly address: string;
  readonly port: number;
}

/** One line of /proc/net/ip_vs_conn. */
export interface ConnectionSnapshot {
  /** "ip" for the templates of firewall-mark services. */
  readonly protocol: Protocol | "ip";
  readonly client: ConnectionEndpoint;
  readonly virtual: ConnectionEndpoint;
  readonly destination: ConnectionEndpoint;
  /** The kernel's state name: ESTABLISHED, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, UDP, NONE... */
  readonly state: string;
  /** Seconds until expiry. */
  readonly expires: number;
  /** Persistence engine name and data, shown with --persistent-conn. */
  readonly persistenceEngine?: { readonly name: string; readonly data: string };
}

/** --set tcp tcpfin udp, in seconds; 0 leaves that timeout unchanged (kernel rule). */
export interface Timeouts {
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}
