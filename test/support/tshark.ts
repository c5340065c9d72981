// Wireshark's dissectors as the judge of headers we wrote: frames go through a pcap file
// into tshark with checksum validation on, and come back as one JSON tree per frame.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writePcap } from "../../src/pcap/writer.js";

const GUE_LUA = new URL("./gue.lua", import.meta.url).pathname;

/** One dissected frame: layer name -> flattened fields ("tcp.checksum.status" -> "1"). */
export interface DissectedFrame {
  /** frame.protocols, e.g. "eth:ethertype:ip:tcp". */
  readonly protocols: string;
  /** Every field tshark printed, flattened; repeated fields (outer/inner) keep all values. */
  readonly fields: Map<string, string[]>;
  /** Expert-info messages (malformed, bad checksum ...). */
  readonly expert: string[];
}

export interface TsharkOptions {
  /** UDP port to dissect as GUE (default 6080). */
  readonly guePort?: number;
  /** Extra "decode as" rules, e.g. "udp.port==8848,ipvs" (tshark -d). */
  readonly decodeAs?: readonly string[];
  /** Reassemble IPv4 / IPv6 fragments (ip.defragment, ipv6.defragment), as a receiver would. */
  readonly defragment?: boolean;
  /** Extra preferences ("tcp.try_heuristic_first:TRUE" lets the PROXY protocol dissector see a lone segment). */
  readonly preferences?: readonly string[];
}

function flatten(node: unknown, out: Map<string, string[]>, expert: string[]): void {
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === "_ws.expert.message" && typeof value === "string") expert.push(value);
    if (typeof value === "string") {
      const list = out.get(key) ?? [];
      list.push(value);
      out.set(key, list);
    } else if (Array.isArray(value)) {
      for (const v of value) {
        if (typeof v === "string") {
          const list = out.get(key) ?? [];
          list.push(v);
          out.set(key, list);
        } else flatten(v, out, expert);
      }
    } else {
      flatten(value, out, expert);
    }
  }
}

let prefs: string | undefined;
/** True when this tshark knows the preference (tshark -G defaultprefs lists it). */
function tsharkHasPref(name: string): boolean {
  prefs ??= execFileSync("tshark", ["-G", "defaultprefs"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, stdio: ["ignore", "pipe", "ignore"] });
  return prefs.includes(`#${name}:`);
}

/** Dissects frames (of one pcap link type) with checksum validation on. */
export function tsharkDissect(linkType: number, frames: readonly Uint8Array[], options: TsharkOptions = {}): DissectedFrame[] {
  const dir = mkdtempSync(join(tmpdir(), "lvs-tshark-"));
  try {
    const file = join(dir, "frames.pcap");
    writeFileSync(file, writePcap(linkType, frames));
    const out = execFileSync(
      "tshark",
      [
        "-n",
        "-r",
        file,
        "-T",
        "json",
        "--no-duplicate-keys",
        "-X",
        `lua_script:${GUE_LUA}`,
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        // Wireshark < 4.2 has no such preference (and rejects the run); its GRE dissector
        // verifies a present checksum anyway.
        ...(tsharkHasPref("gre.check_checksum") ? ["-o", "gre.check_checksum:TRUE"] : []),
        ...(options.decodeAs ?? []).flatMap((rule) => ["-d", rule]),
        ...(options.defragment ? ["-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE"] : []),
        ...(options.preferences ?? []).flatMap((p) => ["-o", p]),
      ],
      {
        encoding: "utf8",
        maxBuffer: 512 * 1024 * 1024,
        env: { ...process.env, LVS_GUE_PORT: String(options.guePort ?? 6080) },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const packets = JSON.parse(out) as Array<{ _source: { layers: Record<string, unknown> } }>;
    return packets.map((p) => {
      const fields = new Map<string, string[]>();
      const expert: string[] = [];
      flatten(p._source.layers, fields, expert);
      return { protocols: fields.get("frame.protocols")?.[0] ?? "", fields, expert };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Every checksum tshark verified in the frame, as [field, status] pairs. Status "1" is
 * good, "0" bad, "2" unverified (tshark could not check it, e.g. a truncated quote).
 */
export function checksumStatuses(frame: DissectedFrame): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (const [key, values] of frame.fields) {
    if (key.endsWith("checksum.status")) for (const v of values) result.push([key, v]);
  }
  return result;
}

/** Throws with a readable report unless every verified checksum is good and nothing is malformed. */
export function assertFrameValid(frame: DissectedFrame, label: string): void {
  const bad = checksumStatuses(frame).filter(([, s]) => s === "0");
  const malformed = frame.expert.filter((m) => /malformed|bad checksum|incorrect|invalid/i.test(m));
  if (bad.length > 0 || malformed.length > 0 || frame.protocols.includes("_ws.malformed")) {
    throw new Error(`${label}: tshark rejects the frame (${frame.protocols}): ${JSON.stringify({ badChecksums: bad, expert: frame.expert })}`);
  }
}
