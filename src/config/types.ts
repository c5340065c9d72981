// The configuration model: virtual services and their real servers, as ipvsadm knows them.
// Rules files, lvsadm and the Balancer all speak this model.

export type Protocol = "tcp" | "udp" | "sctp";
export type AddressFamily = 4 | 6;

/** How packets reach a real server: ipvsadm -m, -g, -i, and full NAT (DPVS's -b / --fullnat, lvsadm --fullnat). */
export type ForwardMethod = "masq" | "route" | "tunnel" | "fullnat";

export type TunnelType = "ipip" | "gue" | "gre";
/** --tun-nocsum (default), --tun-csum, --tun-remcsum. */
export type TunnelChecksum = "nocsum" | "csum" | "remcsum";

/** A virtual service is named by protocol + address + port, or by a firewall mark. */
export type ServiceKey =
  | { readonly kind: "address"; readonly protocol: Protocol; readonly address: string; readonly port: number }
  | { readonly kind: "fwmark"; readonly fwmark: number; readonly family: AddressFamily };

export interface Persistence {
  /** Seconds a client stays pinned after its last connection (ipvsadm -p, default 300). */
  readonly timeout: number;
  /**
   * Client network granularity: an IPv4 netmask ("255.255.255.0") or an IPv6 prefix
   * length (ipvsadm -M). Default /32 or /128.
   */
  readonly netmask: string | number;
}

export interface ServiceConfig {
  readonly key: ServiceKey;
  /** Scheduler name: a built-in (rr, wrr, lc, wlc, ...) or a registered custom one. */
  readonly scheduler: string;
  /** Scheduler flags (ipvsadm -b): sh-fallback, sh-port, mh-fallback, mh-port, flag-1..3. */
  readonly schedulerFlags: readonly string[];
  readonly persistence?: Persistence;
  /** One-packet scheduling (ipvsadm -o): every UDP datagram scheduled on its own. */
  readonly onePacket: boolean;
  /** Persistence engine (ipvsadm --pe), kept for round trips. */
  readonly persistenceEngine?: string;
  /**
   * PROXY protocol header for the service's full-NAT TCP flows (DPVS's --proxy-protocol):
   * "v2" puts the client's and the virtual address in front of the client's byte stream.
   */
  readonly proxyProtocol?: "v2";
}

export interface TunnelOptions {
  readonly type: TunnelType;
  /** GUE destination port (--tun-port), required for gue. */
  readonly port?: number;
  readonly checksum: TunnelChecksum;
}

export interface DestinationConfig {
  readonly address: string;
  readonly port: number;
  readonly method: ForwardMethod;
  /** 0..65535; 0 quiesces: no new connections, existing ones continue. */
  readonly weight: number;
  /** Upper connection threshold (-x), 0 = none. */
  readonly upperThreshold: number;
  /** Lower connection threshold (-y), 0 = kernel default rule. */
  readonly lowerThreshold: number;
  readonly tunnel?: TunnelOptions;
}

export interface ServiceWithDestinations {
  readonly service: ServiceConfig;
  readonly destinations: readonly DestinationConfig[];
  /** Full NAT's local addresses of the service (DPVS laddr, lvsadm --add-laddr), in the order added. */
  readonly localAddresses?: readonly string[];
}

/** A whole configuration, services in the order they were added. */
export interface RuleSet {
  readonly services: readonly ServiceWithDestinations[];
}

/**
 * The kernel's refusal behind a configuration error, where IPVS has one: ESRCH no such
 * service, EEXIST already exists, ENOENT no such destination / scheduler not found.
 * lvsadm turns it into ipvsadm's exact words for the operation.
 */
export type ConfigErrorCode = "ESRCH" | "EEXIST" | "ENOENT" | "ENODEV";

/** A configuration error: which field, what was wrong, what would be right. */
export class ConfigError extends Error {
  readonly code?: ConfigErrorCode;
  constructor(message: string, code?: ConfigErrorCode) {
    super(message);
    this.name = "ConfigError";
    if (code) this.code = code;
  }
}
