// Random argument vectors and rules texts: each parses to a command (or rule set) or is
// refused with a one-line message; nothing else is ever thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCommand, parseRules, CommandError, portNamesFromText } from "../src/index.js";
import { ConfigError } from "../src/config/types.js";

const PORT_NAMES = portNamesFromText("http 80/tcp www\nhttps 443/tcp\ndomain 53/udp\n");

const LONG_NAMES = [
  "add-service",
  "edit-service",
  "delete-service",
  "clear",
  "list",
  "zero",
  "add-server",
  "edit-server",
  "delete-server",
  "set",
  "help",
  "version",
  "restore",
  "save",
  "start-daemon",
  "stop-daemon",
  "tcp-service",
  "udp-service",
  "sctp-service",
  "fwmark-service",
  "scheduler",
  "persistent",
  "netmask",
  "real-server",
  "masquerading",
  "ipip",
  "gatewaying",
  "weight",
  "u-threshold",
  "l-threshold",
  "numeric",
  "connection",
  "mcast-interface",
  "syncid",
  "timeout",
  "daemon",
  "stats",
  "rate",
  "thresholds",
  "persistent-conn",
  "nosort",
  "sort",
  "exact",
  "ipv6",
  "ops",
  "pe",
  "sched-flags",
  "mcast-group",
  "mcast-port",
  "mcast-ttl",
  "sync-maxlen",
  "tun-info",
  "tun-type",
  "tun-port",
  "tun-nocsum",
  "tun-csum",
  "tun-remcsum",
];
const SHORT_LETTERS = "AEDCLlZaedhvRStufspMrmigwxynXo6bcq".split("");

const value = fc.oneof(
  fc.constantFrom(
    "10.0.0.1:80",
    "10.0.0.1",
    "[2001:db8::1]:80",
    "2001:db8::1",
    "[::1]:http",
    "10.1:www",
    "0x0a000001:443",
    "1.2.3.4:",
    ":80",
    "[",
    "[]:",
    "[::1",
    "rr",
    "wlc",
    "sh",
    "mh",
    "sh-port,sh-fallback",
    "flag-1,flag-2,flag-3",
    ",,",
    "gue",
    "gre",
    "ipip",
    "master",
    "backup",
    "224.0.0.81",
    "ff02::81",
    "255.255.255.0",
    "64",
    "0",
    "-1",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "300",
    "",
    "-",
    "--",
    "-=",
    "==",
    "host.example",
    "sip",
    "eth0",
  ),
  fc.integer({ min: -5, max: 70000 }).map(String),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }),
);

const word = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SHORT_LETTERS).map((letter) => `-${letter}`) },
  { weight: 3, arbitrary: fc.constantFrom(...LONG_NAMES).map((name) => `--${name}`) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...LONG_NAMES), value).map(([name, v]) => `--${name}=${v}`) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...SHORT_LETTERS), { minLength: 1, maxLength: 4 }).map((letters) => `-${letters.join("")}`) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...SHORT_LETTERS), value).map(([letter, v]) => `-${letter}${v}`) },
  { weight: 5, arbitrary: value },
);

const command = fc.constantFrom("-A", "-E", "-D", "-a", "-e", "-d", "-L", "-Z", "-S", "-C", "--set", "--start-daemon", "--stop-daemon", "-Ln");

// Argument vectors that usually start with a command, so the deep checks get exercised...
const looseArgv = fc.tuple(fc.oneof(command, word), fc.array(word, { maxLength: 10 })).map(([first, rest]) => [first, ...rest]);

// ...and ones shaped like real commands (a service, then option/value pairs), which get further.
const optionWord = fc.oneof(
  fc.constantFrom(...SHORT_LETTERS).map((letter) => `-${letter}`),
  fc.constantFrom(...LONG_NAMES).map((name) => `--${name}`),
);
const shapedArgv = fc
  .tuple(
    command,
    fc.constantFrom("-t", "-u", "-f", "--sctp-service"),
    fc.constantFrom("10.0.0.1:80", "[2001:db8::1]:443", "1", "7", "10.0.0.2:http", "10.0.0.3"),
    fc.array(fc.tuple(optionWord, fc.option(value, { nil: undefined })), { maxLength: 5 }),
  )
  .map(([first, serviceOption, service, pairs]) => [
    first,
    serviceOption,
    service,
    ...pairs.flatMap(([option, v]) => (v === undefined ? [option] : [option, v])),
  ]);

const argv = fc.oneof(looseArgv, shapedArgv);

function checkOutcome(run: () => unknown): void {
  try {
    const result = run() as { kind?: unknown };
    assert.equal(typeof result.kind, "string");
  } catch (error) {
    assert.ok(error instanceof CommandError, `threw ${String(error)}`);
    assert.ok(error.message.length > 0);
    assert.ok(!error.message.includes("\n"), `multi-line message: ${JSON.stringify(error.message)}`);
    assert.ok(!error.message.startsWith("internal error"), error.message);
    assert.ok([2, 255].includes(error.exitCode));
    assert.ok(error.stderr.endsWith("\n"));
  }
}

test("random argument vectors: a command or a one-line CommandError, never anything else", () => {
  fc.assert(
    fc.property(argv, (words) => checkOutcome(() => parseCommand(words, { portNames: PORT_NAMES }))),
    { numRuns: 20000 },
  );
});

test("random rules texts: a rule set or a ConfigError naming its line", () => {
  const line = fc.tuple(argv, fc.constantFrom(" ", "\t", "  ", " \r")).map(([words, blank]) => words.join(blank));
  const text = fc
    .array(fc.oneof(line, fc.constant(""), fc.constant("# comment"), fc.string({ maxLength: 20 })), { maxLength: 6 })
    .map((lines) => lines.join("\n"));
  fc.assert(
    fc.property(text, (rules) => {
      try {
        const result = parseRules(rules, { portNames: PORT_NAMES });
        assert.ok(Array.isArray(result.services));
      } catch (error) {
        assert.ok(error instanceof ConfigError, `threw ${String(error)}`);
        assert.match(error.message, /^line \d+: [^\n]+$/);
      }
    }),
    { numRuns: 3000 },
  );
});
