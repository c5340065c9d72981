// What a reload (SIGHUP) or a replacing restore (-R of a text with -C) changes: the
// difference between the running configuration and the wanted one, as data for a
// RuleTransaction, computed in slices. Only what differs becomes a change: a 50,000-service
// reload with one edited line applies one change. "Differs" means "saves differently"
// (ipvsadm -S): fields are compared first, and only when they differ are the save lines.

import type { Balancer } from "../balancer/balancer.js";
import type { RuleChangeSpec } from "../balancer/rule-transaction.js";
import type { Slicer } from "../balancer/slices.js";
import { canonicalText } from "../balancer/validate.js";
import type { DestinationConfig, RuleSet, ServiceConfig, ServiceWithDestinations } from "../config/types.js";
import { formatSave } from "./format.js";

/** Counts of a change list, as lvsd logs them. */
export interface ChangeCounts {
  readonly servicesAdded: number;
  readonly servicesRemoved: number;
  readonly servicesEdited: number;
  readonly destinationsAdded: number;
  readonly destinationsRemoved: number;
  readonly destinationsEdited: number;
  /** Full NAT's local addresses added (-P) and deleted (-Q). */
  readonly localAddressesAdded: number;
  readonly localAddressesRemoved: number;
}

const destId = (d: DestinationConfig) => `${canonicalText(d.address, "destination.address").text}|${d.port}`;

/**
 * The changes that turn the running configuration of `b` into `wanted`: per service, its
 * removed destinations, then its edit, its edited destinations, its added ones; services
 * gone are removed, new ones added whole. Pauses between slices of `slicer`.
 */
export async function diffRunning(b: Balancer, wanted: RuleSet, slicer: Slicer): Promise<RuleChangeSpec[]> {
  const specs: RuleChangeSpec[] = [];
  const want = new Map<string, ServiceWithDestinations>();
  let n = 0;
  const pause = async () => {
    if ((++n & 63) === 0 && slicer.due()) await slicer.pauseNow();
  };
  for (const s of wanted.services) {
    want.set(b.prepareKeyText(s.service.key), s);
    await pause();
  }
  for (const k of b.serviceKeyTexts()) {
    if (!want.has(k)) specs.push({ op: "-D", service: b.serviceRulesByText(k)!.service });
    await pause();
  }
  for (const [k, w] of want) {
    await pause();
    const current = b.serviceRulesByText(k);
    if (!current) {
      specs.push({ op: "-A", service: w.service, destinations: w.destinations, localAddresses: w.localAddresses });
      continue;
    }
    const have = new Map(current.destinations.map((d) => [destId(d), d] as const));
    const wantDests = new Map(w.destinations.map((d) => [destId(d), d] as const));
    // No edit turns a destination into or out of full NAT (its connections own local ports): it is replaced.
    const replaced = (id: string, d: DestinationConfig) => {
      const old = have.get(id);
      return old !== undefined && (old.method === "fullnat") !== (d.method === "fullnat");
    };
    for (const [id, d] of have) {
      const w2 = wantDests.get(id);
      if (!w2 || replaced(id, w2)) specs.push({ op: "-d", service: current.service, destination: d });
    }
    const laddrsNow = new Set(current.localAddresses ?? []);
    const laddrsWanted = new Set(w.localAddresses ?? []);
    for (const a of laddrsNow) if (!laddrsWanted.has(a)) specs.push({ op: "-Q", service: current.service, address: a });
    if (!sameService(current.service, w.service)) specs.push({ op: "-E", service: w.service });
    for (const [id, d] of wantDests) {
      const old = have.get(id);
      if (!old || replaced(id, d)) specs.push({ op: "-a", service: w.service, destination: d });
      else if (!sameDestination(w.service, old, d)) specs.push({ op: "-e", service: w.service, destination: d });
    }
    for (const a of laddrsWanted) if (!laddrsNow.has(a)) specs.push({ op: "-P", service: w.service, address: a });
  }
  return specs;
}

/** How many services and destinations the changes add, remove and edit. */
export function countChanges(specs: readonly RuleChangeSpec[]): ChangeCounts {
  const c = {
    servicesAdded: 0,
    servicesRemoved: 0,
    servicesEdited: 0,
    destinationsAdded: 0,
    destinationsRemoved: 0,
    destinationsEdited: 0,
    localAddressesAdded: 0,
    localAddressesRemoved: 0,
  };
  for (const s of specs) {
    if (s.op === "-A") {
      c.servicesAdded++;
      c.destinationsAdded += s.destinations.length;
      c.localAddressesAdded += s.localAddresses?.length ?? 0;
    } else if (s.op === "-D") c.servicesRemoved++;
    else if (s.op === "-P") c.localAddressesAdded++;
    else if (s.op === "-Q") c.localAddressesRemoved++;
    else if (s.op === "-E") c.servicesEdited++;
    else if (s.op === "-a") c.destinationsAdded++;
    else if (s.op === "-d") c.destinationsRemoved++;
    else c.destinationsEdited++;
  }
  return c;
}

/** The ipvsadm lines of a change ("-A ..." and its "-a ..." lines for a new service). */
export function changeLines(spec: RuleChangeSpec): string[] {
  switch (spec.op) {
    case "-A":
      return formatSave([{ service: spec.service, destinations: spec.destinations, localAddresses: spec.localAddresses }], { numeric: true })
        .trimEnd()
        .split("\n");
    case "-E":
      return [serviceLine(spec.service).replace(/^-A/, "-E")];
    case "-D":
      return [`-D ${keyWords(spec.service)}`];
    case "-a":
      return [destinationLine(spec.service, spec.destination)];
    case "-e":
      return [destinationLine(spec.service, spec.destination).replace(/^-a/, "-e")];
    case "-d": {
      const words = destinationLine(spec.service, spec.destination).split(" ");
      const at = words.indexOf("-r");
      return [`-d ${keyWords(spec.service)} ${words.slice(at, at + 2).join(" ")}`];
    }
    case "-P":
    case "-Q":
      return [`${spec.op} ${keyWords(spec.service)} -z ${spec.address}`];
  }
}

function serviceLine(service: ServiceConfig): string {
  return formatSave([{ service, destinations: [] }], { numeric: true }).trimEnd();
}

function destinationLine(service: ServiceConfig, dest: DestinationConfig): string {
  const text = formatSave([{ service, destinations: [dest] }], { numeric: true })
    .trimEnd()
    .split("\n");
  return text[text.length - 1]!;
}

function keyWords(service: ServiceConfig): string {
  return serviceLine(service).split(" ").slice(1, 3).join(" ");
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function sameService(a: ServiceConfig, b: ServiceConfig): boolean {
  const fieldsEqual =
    a.scheduler === b.scheduler &&
    sameList(a.schedulerFlags ?? [], b.schedulerFlags ?? []) &&
    (a.onePacket ?? false) === (b.onePacket ?? false) &&
    a.persistenceEngine === b.persistenceEngine &&
    a.proxyProtocol === b.proxyProtocol &&
    a.persistence?.timeout === b.persistence?.timeout &&
    a.persistence?.netmask === b.persistence?.netmask;
  return fieldsEqual || serviceLine(a) === serviceLine(b);
}

function sameDestination(service: ServiceConfig, a: DestinationConfig, b: DestinationConfig): boolean {
  const fieldsEqual =
    a.method === b.method &&
    a.weight === b.weight &&
    a.upperThreshold === b.upperThreshold &&
    a.lowerThreshold === b.lowerThreshold &&
    a.tunnel?.type === b.tunnel?.type &&
    a.tunnel?.port === b.tunnel?.port &&
    a.tunnel?.checksum === b.tunnel?.checksum;
  return fieldsEqual || destinationLine(service, a) === destinationLine(service, b);
}
