// The IPVS sysctls (net.ipv4.vs.*) that change lvs-wasm's decisions: names, the kernel's
// defaults (Documentation/networking/ipvs-sysctl.rst) and ranges, and the numbers the wasm
// core knows them by. The Balancer sets them (`setSysctl`), lvsd takes them as
// `--sysctl NAME=VALUE`.

import { ConfigError } from "../config/types.js";

export interface IpvsSysctls {
  /** 1: drop a connection whose destination was removed, on its next packet. Default 0. */
  readonly expire_nodest_conn: number;
  /** 1: persistence templates of a quiesced (weight 0) destination stop pinning. Default 0. */
  readonly expire_quiescent_template: number;
  /** Bit 0: a SYN on a TIME_WAIT connection is rescheduled; bit 1: also on a DR / TUN FIN_WAIT one. Default 1. */
  readonly conn_reuse_mode: number;
  /** 1: any TCP packet but RST may create a connection (not only a SYN), in every method. Default 0. */
  readonly sloppy_tcp: number;
  /** 1: any SCTP packet but ABORT may create a connection (not only INIT). Default 0. */
  readonly sloppy_sctp: number;
  /** 1: an ICMP error quoting VIP -> client traffic of no known connection is scheduled. Default 0. */
  readonly schedule_icmp: number;
  /** 0..3: when the secure TCP state table (tcp_states_dos) is used. Default 0. */
  readonly secure_tcp: number;
  /** 0..3: when half-open TCP entries are dropped at random, once a second. Default 0. */
  readonly drop_entry: number;
  /** 0..3: when one new connection in every rate is refused. Default 0. */
  readonly drop_packet: number;
  /** The "short of memory" threshold, in free connection-table entries. Default 1024. */
  readonly amemthresh: number;
  /** drop_packet 3: refuse one new connection in this many. Default 10. */
  readonly am_droprate: number;
}

export type IpvsSysctlName = keyof IpvsSysctls;

interface Spec {
  readonly id: number;
  readonly min: number;
  readonly max: number;
  readonly fallback: number;
}

/** Id in the wasm core, range, and the kernel's default, per sysctl. */
export const IPVS_SYSCTLS: Readonly<Record<IpvsSysctlName, Spec>> = {
  expire_nodest_conn: { id: 0, min: 0, max: 1, fallback: 0 },
  expire_quiescent_template: { id: 1, min: 0, max: 1, fallback: 0 },
  conn_reuse_mode: { id: 2, min: 0, max: 3, fallback: 1 },
  sloppy_tcp: { id: 3, min: 0, max: 1, fallback: 0 },
  sloppy_sctp: { id: 4, min: 0, max: 1, fallback: 0 },
  schedule_icmp: { id: 5, min: 0, max: 1, fallback: 0 },
  secure_tcp: { id: 6, min: 0, max: 3, fallback: 0 },
  drop_entry: { id: 7, min: 0, max: 3, fallback: 0 },
  drop_packet: { id: 8, min: 0, max: 3, fallback: 0 },
  amemthresh: { id: 9, min: 1, max: 0xffffffff, fallback: 1024 },
  am_droprate: { id: 10, min: 1, max: 0xffffffff, fallback: 10 },
};

/** The kernel's defaults. */
export const DEFAULT_SYSCTLS: IpvsSysctls = Object.fromEntries(Object.entries(IPVS_SYSCTLS).map(([name, s]) => [name, s.fallback])) as unknown as IpvsSysctls;

/** Checks a name and value; throws a one-line ConfigError. */
export function checkSysctl(name: string, value: unknown): { name: IpvsSysctlName; id: number; value: number } {
  const spec = (IPVS_SYSCTLS as Record<string, Spec>)[name];
  if (!spec || !Object.hasOwn(IPVS_SYSCTLS, name)) {
    throw new ConfigError(`sysctl: unknown name ${JSON.stringify(name)} (known: ${Object.keys(IPVS_SYSCTLS).join(", ")})`);
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < spec.min || value > spec.max) {
    throw new ConfigError(`sysctl ${name}: ${JSON.stringify(value)} is not an integer in ${spec.min}..${spec.max}`);
  }
  return { name: name as IpvsSysctlName, id: spec.id, value };
}

/** Parses `NAME=VALUE` (lvsd --sysctl); the name may carry the net.ipv4.vs. prefix. */
export function parseSysctlAssignment(text: string): { name: IpvsSysctlName; value: number } {
  const m = /^(?:net\.ipv4\.vs\.)?([a-z_]+)=(\d+)$/.exec(text.trim());
  if (!m) throw new ConfigError(`sysctl: ${JSON.stringify(text)} is not NAME=VALUE (for example sloppy_tcp=1)`);
  const { name, value } = checkSysctl(m[1], Number(m[2]));
  return { name, value };
}
