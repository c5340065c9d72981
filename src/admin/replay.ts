// Offline replay: a rules file in ipvsadm save format, a capture in, the forwarded frames
// out. Every frame goes through the datapath in order with its capture time as `now`, so a
// configuration is tested against real traffic without root and without a network.

import { Balancer, type DirectorAddressing } from "../balancer/balancer.js";
import { Desc, DROP_REASON_NAMES, LinkType, Verdict } from "../core/abi.js";
import { PcapLinkType } from "../pcap/format.js";
import { readPcap } from "../pcap/reader.js";
import { writePcap, type PcapFrame } from "../pcap/writer.js";
import { ConfigError } from "../config/types.js";
import { formatListing } from "./format.js";
import { parseRules } from "./rules.js";
import { DEFAULT_LIST_FORMAT } from "./format.js";

export interface ReplayOptions {
  readonly rules: string;
  readonly capture: Uint8Array;
  /** Next-hop MACs for Ethernet output: IP -> MAC. */
  readonly neighbours?: ReadonlyArray<readonly [string, string]>;
  readonly director?: DirectorAddressing;
  /** Connection table size. Default 65,536. */
  readonly connections?: number;
}

export interface ReplayResult {
  /** The forwarded (and generated ICMP) frames, as a pcap in the input's link type. */
  readonly output: Uint8Array;
  readonly frames: number;
  readonly forwarded: number;
  readonly replied: number;
  readonly passed: number;
  /** Drops by reason name. */
  readonly drops: ReadonlyMap<string, number>;
  /** `lvsadm -Ln --stats` after the replay. */
  readonly stats: string;
  readonly balancer: Balancer;
}

const BATCH = 256;
const TICK_MS = 200;

export function replay(options: ReplayOptions): ReplayResult {
  const pcap = readPcap(options.capture);
  let link: LinkType;
  if (pcap.linkType === PcapLinkType.Ethernet) link = LinkType.Ethernet;
  else if (pcap.linkType === PcapLinkType.Raw || pcap.linkType === PcapLinkType.Ipv4 || pcap.linkType === PcapLinkType.Ipv6) link = LinkType.RawIp;
  else throw new ConfigError(`capture: link type ${pcap.linkType} is not supported (use Ethernet or raw IP captures)`);
  const ruleSet = parseRules(options.rules);
  const balancer = new Balancer({ connections: options.connections ?? 65536, slots: BATCH, director: options.director });
  balancer.applyRules(ruleSet);
  for (const [ip, mac] of options.neighbours ?? []) balancer.setNeighbour(ip, mac);

  const out: PcapFrame[] = [];
  const drops = new Map<string, number>();
  let forwarded = 0,
    replied = 0,
    passed = 0;
  const records = pcap.records;
  let lastTick = -Infinity;
  for (let start = 0; start < records.length; ) {
    // One batch shares one clock reading: frames captured in the same millisecond.
    const ms = Number(records[start].timestampNs / 1_000_000n);
    let end = start;
    while (end < records.length && end - start < BATCH && Number(records[end].timestampNs / 1_000_000n) === ms) {
      const frame = records[end].data;
      if (frame.length > balancer.slots.capacity) throw new ConfigError(`capture: frame ${end + 1} has ${frame.length} bytes, more than a slot holds`);
      balancer.slots.write(end - start, frame, link);
      end++;
    }
    const now = ms >>> 0;
    if (ms - lastTick >= TICK_MS) {
      balancer.tick(now);
      lastTick = ms;
    }
    const filled = balancer.process(end - start, now); // plus released IP fragments
    for (let i = 0; i < filled; i++) {
      const verdict = balancer.slots.field(i, Desc.Verdict);
      if (verdict === Verdict.Forward || verdict === Verdict.Reply) {
        out.push({ data: balancer.slots.view(i).slice(), timestampNs: records[Math.min(start + i, end - 1)].timestampNs });
        if (verdict === Verdict.Forward) forwarded++;
        else replied++;
      } else if (verdict === Verdict.Drop) {
        const name = DROP_REASON_NAMES[balancer.slots.field(i, Desc.Reason)] ?? "unknown";
        drops.set(name, (drops.get(name) ?? 0) + 1);
      } else passed++;
    }
    start = end;
  }
  const stats = formatListing(balancer.listing(), { ...DEFAULT_LIST_FORMAT, numeric: true, stats: true });
  return {
    output: writePcap(pcap.linkType, out, { nanosecond: pcap.nanosecond }),
    frames: records.length,
    forwarded,
    replied,
    passed,
    drops,
    stats,
    balancer,
  };
}
