// Packets built by scapy, an implementation we did not write. Each entry is a Python
// expression over scapy.all (e.g. "IP(dst='10.0.0.2')/TCP(dport=80)"); checksums are
// filled in by scapy when it serialises.

import { execFileSync } from "node:child_process";

/** Builds each scapy expression and returns its bytes, in order. */
export function scapyBuild(expressions: readonly string[]): Uint8Array[] {
  if (expressions.length === 0) return [];
  const program = [
    "import sys, json, logging",
    "logging.getLogger('scapy.runtime').setLevel(logging.ERROR)",
    "from scapy.all import *",
    "from scapy.layers.inet6 import *",
    "exprs = json.loads(sys.stdin.read())",
    "for e in exprs:",
    "    print(bytes(eval(e)).hex())",
  ].join("\n");
  const out = execFileSync("/usr/bin/python3", ["-c", program], {
    input: JSON.stringify(expressions),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const lines = out
    .trim()
    .split("\n")
    .filter((l) => /^[0-9a-f]*$/.test(l));
  if (lines.length !== expressions.length) {
    throw new Error(`scapy returned ${lines.length} packets for ${expressions.length} expressions:\n${out.slice(0, 2000)}`);
  }
  return lines.map((hex) => Uint8Array.from(Buffer.from(hex, "hex")));
}

/** Runs a Python program under scapy with a JSON argument and returns its parsed JSON output. */
export function scapyRun<T>(program: string, input: unknown): T {
  const out = execFileSync("/usr/bin/python3", ["-c", program], {
    input: JSON.stringify(input),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(out) as T;
}
