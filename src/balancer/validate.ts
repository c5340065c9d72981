// Validation and normalisation of service and destination configuration, done whole before
// the data plane is touched: a rejected call changes nothing and names the field, what was
// wrong and what would be right.

import { encodeAddress } from "../core/actions.js";
import { formatAddress } from "../sched/flow.js";
import { ConfigError, type DestinationConfig, type Persistence, type ServiceConfig, type ServiceKey } from "../config/types.js";

/** ipvsadm's MAX_TIMEOUT: 31 days, in seconds. */
export const MAX_PERSISTENCE_TIMEOUT = 86400 * 31;
const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
export const PROTOCOL_NUMBER = { tcp: 6, udp: 17, sctp: 132 } as const;

function integer(value: unknown, field: string, lo: number, hi: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < lo || value > hi) {
    throw new ConfigError(`${field}: ${JSON.stringify(value)} is not an integer in ${lo}..${hi}`);
  }
  return value;
}

/** The address in canonical text, with its family and bytes. */
export function canonicalAddress(text: unknown, field: string): { text: string; family: 4 | 6; bytes: Uint8Array } {
  if (typeof text !== "string") throw new ConfigError(`${field}: expected an IPv4 or IPv6 address, got ${JSON.stringify(text)}`);
  try {
    const { family, bytes } = encodeAddress(text, field);
    const known = canonicalCache.get(text);
    if (known) return { text: known.text, family, bytes };
    const canonical = { text: formatAddress(bytes, family), family };
    if (canonicalCache.size >= CANONICAL_CACHE_SIZE) canonicalCache.clear();
    canonicalCache.set(text, canonical);
    return { ...canonical, bytes };
  } catch {
    throw new ConfigError(`${field}: "${text}" is not an IPv4 or IPv6 address (host names are not resolved)`);
  }
}

/** canonicalAddress without the bytes (no copy made): what normalising a configuration needs. */
export function canonicalText(text: unknown, field: string): { text: string; family: 4 | 6 } {
  const known = typeof text === "string" ? canonicalCache.get(text) : undefined;
  return known ?? canonicalAddress(text, field);
}

/**
 * Addresses already made canonical (a large restore repeats the same few thousand); bounded.
 * Text and family only: a Uint8Array per entry (an ArrayBuffer each) made the cache a tenth
 * of a 50,000-service data plane's heap, and the few callers that need the bytes parse again.
 */
const canonicalCache = new Map<string, { readonly text: string; readonly family: 4 | 6 }>();
const CANONICAL_CACHE_SIZE = 1 << 17;

/** A service key with its address canonical; throws ConfigError. */
export function normaliseServiceKey(key: ServiceKey): ServiceKey {
  if (key === null || typeof key !== "object") throw new ConfigError('key: expected { kind: "address", ... } or { kind: "fwmark", ... }');
  if (key.kind === "address") {
    if (!PROTOCOLS.includes(key.protocol)) {
      throw new ConfigError(`key.protocol: ${JSON.stringify(key.protocol)} is not one of tcp, udp, sctp`);
    }
    const { text } = canonicalText(key.address, "key.address");
    return { kind: "address", protocol: key.protocol, address: text, port: integer(key.port, "key.port", 0, 65535) };
  }
  if (key.kind === "fwmark") {
    if (key.family !== 4 && key.family !== 6) throw new ConfigError(`key.family: ${JSON.stringify(key.family)} is not 4 or 6`);
    return { kind: "fwmark", fwmark: integer(key.fwmark, "key.fwmark", 1, 0xffffffff), family: key.family };
  }
  throw new ConfigError(`key.kind: ${JSON.stringify((key as { kind: unknown }).kind)} is not "address" or "fwmark"`);
}

/** A stable text form of a service key, for maps and messages ("TCP 10.0.0.1:80", "FWM 1"). */
export function serviceKeyText(key: ServiceKey): string {
  if (key.kind === "fwmark") return `FWM ${key.fwmark}${key.family === 6 ? " IPv6" : ""}`;
  const host = key.address.includes(":") ? `[${key.address}]` : key.address;
  // join() makes one flat string: a template makes a tree of them, which a table of 50,000 keeps.
  return [key.protocol.toUpperCase(), " ", host, ":", key.port].join("");
}

export function familyOfKey(key: ServiceKey): 4 | 6 {
  return key.kind === "fwmark" ? key.family : key.address.includes(":") ? 6 : 4;
}

/** Prefix length of a persistence netmask (IPv4 dotted, contiguous; or a prefix length). */
export function persistencePrefix(persistence: Persistence, family: 4 | 6): number {
  const mask = persistence.netmask;
  if (family === 6) {
    const prefix = typeof mask === "number" ? mask : Number(mask);
    return integer(prefix, "persistence netmask (-M)", 1, 128);
  }
  if (typeof mask === "number") return integer(mask, "persistence netmask (-M)", 0, 32);
  const { family: f, bytes } = canonicalAddress(mask, "persistence netmask (-M)");
  if (f !== 4) throw new ConfigError(`persistence netmask (-M) "${mask}" is not an IPv4 netmask`);
  const value = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  const prefix = 32 - Math.log2((~value >>> 0) + 1);
  if (!Number.isInteger(prefix)) throw new ConfigError(`persistence netmask (-M) "${mask}" is not a contiguous netmask like 255.255.255.0`);
  return prefix;
}

/** Checks a whole service configuration; returns it normalised. */
export function normaliseService(config: ServiceConfig): ServiceConfig {
  if (config === null || typeof config !== "object") throw new ConfigError("service: expected an object");
  const key = normaliseServiceKey(config.key);
  if (typeof config.scheduler !== "string" || config.scheduler.length === 0) {
    throw new ConfigError(`scheduler: expected a scheduler name such as rr, wlc or mh, got ${JSON.stringify(config.scheduler)}`);
  }
  const flags = config.schedulerFlags ?? [];
  if (!Array.isArray(flags) || flags.some((f) => typeof f !== "string")) throw new ConfigError("schedulerFlags: expected a list of flag names");
  let persistence: Persistence | undefined;
  if (config.persistence !== undefined) {
    const timeout = integer(config.persistence.timeout, "persistence.timeout", 1, MAX_PERSISTENCE_TIMEOUT);
    const family = familyOfKey(key);
    persistencePrefix(config.persistence, family);
    persistence = { timeout, netmask: config.persistence.netmask ?? (family === 4 ? "255.255.255.255" : 128) };
  }
  if (config.onePacket !== undefined && typeof config.onePacket !== "boolean") throw new ConfigError("onePacket: expected true or false");
  if (config.proxyProtocol !== undefined && config.proxyProtocol !== "v2") {
    throw new ConfigError(`proxyProtocol: ${JSON.stringify(config.proxyProtocol)} is not "v2" (or leave it out)`);
  }
  if (config.proxyProtocol !== undefined && !(key.kind === "address" && key.protocol === "tcp")) {
    throw new ConfigError("proxyProtocol: the PROXY protocol header goes into TCP streams: a -t service only");
  }
  // A port-0 address service takes every port, so only a persistence template can say which
  // real server a client's other ports go to (ipvsadm refuses it the same way).
  if (key.kind === "address" && key.port === 0 && !persistence) {
    throw new ConfigError("key.port: 0 (every port) needs persistence, as in ipvsadm's -p; give it persistence: { timeout, netmask }");
  }
  return {
    key,
    scheduler: config.scheduler,
    schedulerFlags: [...flags],
    onePacket: config.onePacket ?? false,
    ...(persistence ? { persistence } : {}),
    ...(config.persistenceEngine ? { persistenceEngine: config.persistenceEngine } : {}),
    ...(config.proxyProtocol ? { proxyProtocol: config.proxyProtocol } : {}),
  };
}

/** Checks a whole destination configuration against its service's family; returns it normalised. */
export function normaliseDestination(config: DestinationConfig, serviceFamily: 4 | 6): DestinationConfig {
  if (config === null || typeof config !== "object") throw new ConfigError("destination: expected an object");
  const { text, family } = canonicalText(config.address, "destination.address");
  const method = config.method ?? "route";
  if (method !== "masq" && method !== "route" && method !== "tunnel" && method !== "fullnat") {
    throw new ConfigError(`destination.method: ${JSON.stringify(method)} is not one of masq (-m), route (-g), tunnel (-i), fullnat (--fullnat)`);
  }
  if (family !== serviceFamily && method !== "tunnel") {
    throw new ConfigError(`destination.address: an IPv${family} real server needs the tunnel method under an IPv${serviceFamily} service`);
  }
  const out: DestinationConfig = {
    address: text,
    port: integer(config.port ?? 0, "destination.port", 0, 65535),
    method,
    weight: integer(config.weight ?? 1, "destination.weight", 0, 65535),
    upperThreshold: integer(config.upperThreshold ?? 0, "destination.upperThreshold", 0, 2 ** 31 - 1),
    lowerThreshold: integer(config.lowerThreshold ?? 0, "destination.lowerThreshold", 0, 2 ** 31 - 1),
  };
  if (method !== "tunnel") {
    if (config.tunnel !== undefined) throw new ConfigError("destination.tunnel: tunnel options need method tunnel (-i)");
    return out;
  }
  const tunnel = config.tunnel ?? { type: "ipip", checksum: "nocsum" };
  if (!["ipip", "gue", "gre"].includes(tunnel.type))
    throw new ConfigError(`destination.tunnel.type: ${JSON.stringify(tunnel.type)} is not one of ipip, gue, gre`);
  const checksum = tunnel.checksum ?? "nocsum";
  if (!["nocsum", "csum", "remcsum"].includes(checksum))
    throw new ConfigError(`destination.tunnel.checksum: ${JSON.stringify(checksum)} is not one of nocsum, csum, remcsum`);
  if (tunnel.type === "ipip" && checksum !== "nocsum") throw new ConfigError("destination.tunnel.checksum: ipip has no checksum option (only gue and gre)");
  if (tunnel.type === "gre" && checksum === "remcsum") throw new ConfigError("destination.tunnel.checksum: remcsum applies to gue only");
  if (tunnel.type === "gue") {
    const port = integer(tunnel.port, "destination.tunnel.port", 1, 65535);
    return { ...out, tunnel: { type: "gue", port, checksum } };
  }
  if (tunnel.port !== undefined) throw new ConfigError("destination.tunnel.port: only gue takes a port");
  return { ...out, tunnel: { type: tunnel.type, checksum } };
}
