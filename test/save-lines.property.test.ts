// The save-line reader (src/admin/save-lines.ts) against ipvsadm's whole option parser:
// on lines made of canonical and nearly canonical parts (leading zeros, out-of-range
// octets, ports and weights, IPv6, names, other methods and options), whatever it reads
// is exactly what parseCommand reads, and what it declines parseCommand still reads.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCommand } from "../src/admin/command.js";
import { readSaveLine } from "../src/admin/save-lines.js";
import { parseRules } from "../src/admin/rules.js";

const octet = fc.oneof(fc.integer({ min: 0, max: 255 }).map(String), fc.constantFrom("00", "07", "256", "999", "", "1a"));
const ipv4 = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(octet, octet, octet, octet).map((p) => p.join(".")) },
  { weight: 1, arbitrary: fc.constantFrom("1.2.3", "fd00::1", "[fd00::1]", "host.example", "1.2.3.4.5", "0x7f.0.0.1") },
);
const port = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 65535 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom("65536", "080", "", "http", "-1") },
);
const hostPort = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(ipv4, port).map(([a, p]) => `${a}:${p}`) },
  { weight: 1, arbitrary: fc.constantFrom("[fd00::1]:80", "10.0.0.1", "10.0.0.1:80:80") },
);
const protocol = fc.constantFrom("-t", "-u", "-t", "-u", "--sctp-service", "-f", "-T");
const scheduler = fc.constantFrom("rr", "wlc", "mh", "sh", "nosuch", "WLC", "a_b-c", "x".repeat(16), "", "1rr");
const method = fc.constantFrom("-m", "-g", "-m", "-g", "-i", "--masquerading", "-x");
const weight = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 65535 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom("65536", "-1", "007", "", "1.5") },
);

const serviceLine = fc.tuple(fc.constantFrom("-A", "-A", "-E", "-a"), protocol, hostPort, fc.constantFrom("-s", "-s", "-p"), scheduler);
const destinationLine = fc.tuple(
  fc.constantFrom("-a", "-a", "-e", "-A"),
  protocol,
  hostPort,
  fc.constantFrom("-r", "-r", "-R"),
  hostPort,
  method,
  fc.constantFrom("-w", "-w", "-x"),
  weight,
);
// Lines of the two shapes with canonical parts, as ipvsadm -S -n writes them.
const canonicalAddress = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const canonicalPort = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 65535 }).map(String) }, { weight: 1, arbitrary: fc.constant("0") });
const canonicalHostPort = fc.tuple(canonicalAddress, canonicalPort).map(([a, p]) => `${a}:${p}`);
const canonicalService = fc.tuple(
  fc.constant("-A"),
  fc.constantFrom("-t", "-u"),
  canonicalHostPort,
  fc.constant("-s"),
  fc.constantFrom("rr", "wlc", "mh", "a_b-c"),
);
const canonicalDestination = fc.tuple(
  fc.constant("-a"),
  fc.constantFrom("-t", "-u"),
  canonicalHostPort,
  fc.constant("-r"),
  canonicalHostPort,
  fc.constantFrom("-m", "-g"),
  fc.constant("-w"),
  fc.nat(65535).map(String),
);
const anyLine = fc.oneof(
  serviceLine.map((w) => [...w]),
  destinationLine.map((w) => [...w]),
  canonicalService.map((w) => [...w]),
  canonicalDestination.map((w) => [...w]),
);

function generic(words: readonly string[]): unknown {
  try {
    return parseCommand(words, { program: "ipvsadm" });
  } catch (e) {
    return { refused: (e as Error).message };
  }
}

test("what the save-line reader reads, parseCommand reads the same; what it declines goes to parseCommand", () => {
  let read = 0;
  let declined = 0;
  fc.assert(
    fc.property(anyLine, (words) => {
      const fast = readSaveLine(words);
      if (fast === undefined) {
        declined++;
        return;
      }
      read++;
      assert.deepStrictEqual(fast, generic(words), words.join(" "));
    }),
    { numRuns: 5000 },
  );
  assert.ok(read > 500 && declined > 500, `both paths taken (${read} read, ${declined} declined)`);
});

test("a rules text reads the same whether its lines take the save-line reader or not", () => {
  const text = [
    "-A -t 10.0.0.1:80 -s wlc",
    "-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m -w 3",
    "-a -t 10.0.0.1:80 -r 192.168.0.2:8080 -g -w 0",
    "-A -u 10.0.0.1:53 -s rr",
    "-a -u 10.0.0.1:53 -r 192.168.0.1:53 -m -w 1",
    "",
  ].join("\n");
  // The same lines in a spelling only ipvsadm's parser reads (long options, another order).
  const spelled = [
    "-A --tcp-service 10.0.0.1:80 --scheduler wlc",
    "-a -t 10.0.0.1:80 --weight 3 --real-server 192.168.0.1:8080 --masquerading",
    "-a -t 10.0.0.1:80 -r 192.168.0.2:8080 --gatewaying -w 0",
    "--add-service -u 10.0.0.1:53 -s rr",
    "-a -u 10.0.0.1:53 -r 192.168.0.1:53 -m -w 1",
    "",
  ].join("\n");
  assert.deepStrictEqual(parseRules(text), parseRules(spelled));
  assert.throws(
    () => parseRules("-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m -w 65536\n"),
    /^ConfigError: line 2: illegal weight specified$/,
  );
});
