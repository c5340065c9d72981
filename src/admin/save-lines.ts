// The two shapes of line that make up almost all of an `ipvsadm -S -n` file at scale,
// read without ipvsadm's whole option parser:
//
//   -A -t|-u A.B.C.D:PORT -s SCHEDULER
//   -a -t|-u A.B.C.D:PORT -r E.F.G.H:PORT -m|-g -w WEIGHT
//
// with canonical numbers only (no leading zeros, ports 1..65535, weights 0..65535). The
// result is the command parseCommand gives for the same words
// (test/save-lines.property.test.ts checks it); any other line, or any doubt, returns
// undefined and goes to parseCommand. Half the time of a 250,000-line restore was the
// general parser.

import type { DestinationConfig, Protocol, ServiceKey } from "../config/types.js";
import type { LvsCommand } from "./command.js";
import { SCHEDULER_NAME } from "./command.js";

const PROTOCOL: Readonly<Record<string, Protocol>> = { "-t": "tcp", "-u": "udp" };
const METHOD: Readonly<Record<string, DestinationConfig["method"]>> = { "-m": "masq", "-g": "route" };

/** "A.B.C.D:PORT" with canonical parts, as [address, port]; undefined otherwise. */
function hostPort(word: string): [string, number] | undefined {
  const colon = word.indexOf(":");
  if (colon < 7 || colon !== word.lastIndexOf(":")) return undefined;
  const port = canonicalNumber(word, colon + 1, word.length, 65535);
  if (port === undefined || port === 0) return undefined;
  let start = 0;
  for (let part = 0; part < 4; part++) {
    const end = part < 3 ? word.indexOf(".", start) : colon;
    if (end < 0 || end > colon || canonicalNumber(word, start, end, 255) === undefined) return undefined;
    start = end + 1;
  }
  return [word.slice(0, colon), port];
}

/** A decimal of text[start, end) with no sign, no leading zero and at most `max`; undefined otherwise. */
function canonicalNumber(text: string, start: number, end: number, max: number): number | undefined {
  if (end <= start || end - start > 5 || (text.charCodeAt(start) === 48 && end - start > 1)) return undefined;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    value = value * 10 + c;
  }
  return value <= max ? value : undefined;
}

/** The command of a canonical save line, or undefined (then parseCommand reads it). */
export function readSaveLine(words: readonly string[]): LvsCommand | undefined {
  const protocol = PROTOCOL[words[1] ?? ""];
  if (protocol === undefined) return undefined;
  if (words.length === 5 && words[0] === "-A" && words[3] === "-s") {
    const vip = hostPort(words[2]!);
    const scheduler = words[4]!;
    if (!vip || !SCHEDULER_NAME.test(scheduler)) return undefined;
    return {
      kind: "add-service",
      service: { key: { kind: "address", protocol, address: vip[0], port: vip[1] }, scheduler, schedulerFlags: [], onePacket: false },
    };
  }
  if (words.length === 8 && words[0] === "-a" && words[3] === "-r" && words[6] === "-w") {
    const method = METHOD[words[5]!];
    const vip = hostPort(words[2]!);
    const rip = hostPort(words[4]!);
    const weight = canonicalNumber(words[7]!, 0, words[7]!.length, 65535);
    if (!method || !vip || !rip || weight === undefined) return undefined;
    const service: ServiceKey = { kind: "address", protocol, address: vip[0], port: vip[1] };
    // Direct routing cannot change the port: the real server gets the virtual one (as parseCommand).
    const port = method === "route" ? vip[1] : rip[1];
    return { kind: "add-dest", service, destination: { address: rip[0], port, method, weight, upperThreshold: 0, lowerThreshold: 0 } };
  }
  return undefined;
}
