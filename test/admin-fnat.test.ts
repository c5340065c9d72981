// lvsadm's full-NAT words, in DPVS's ipvsadm syntax: --fullnat on -a / -e, the local address
// commands (-P / --add-laddr, -Q / --del-laddr, -G / --get-laddr with -z LIP), FullNat in
// -L, -S / -R round trips of the pool, --json, the lvsd reload diff, and bad input refused
// with one line and nothing applied.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer } from "../src/index.js";
import { parseCommand } from "../src/admin/command.js";
import { executeCommand } from "../src/admin/execute.js";
import { parseRules, formatRules } from "../src/admin/rules.js";
import { diffRules } from "../src/runtime/rule-diff.js";
import { changeLines, countChanges, diffRunning } from "../src/admin/rule-changes.js";
import { RuleTransaction } from "../src/balancer/rule-transaction.js";
import { NO_SLICES } from "../src/balancer/slices.js";

function lvsadm(b: Balancer, line: string, options: { json?: boolean } = {}) {
  let cmd: ReturnType<typeof parseCommand>;
  try {
    cmd = parseCommand(line.split(" "));
  } catch (e) {
    return { stdout: "", stderr: (e as Error).message, exitCode: 2 };
  }
  return executeCommand({ balancer: b, now: () => 0 }, cmd, "", options);
}

function configured(): Balancer {
  const b = new Balancer();
  for (const line of [
    "-A -t 10.0.0.100:80 -s rr",
    "-a -t 10.0.0.100:80 -r 10.1.0.5:8080 --fullnat",
    "-a -t 10.0.0.100:80 -r 10.1.0.6:8080 -m",
    "-P -t 10.0.0.100:80 -z 10.1.0.250",
    "--add-laddr -t 10.0.0.100:80 --laddr 10.1.0.251",
    "-A -u [2001:db8::10]:53 -s mh",
    "-a -u [2001:db8::10]:53 -r [2001:db8::5]:53 --fullnat -w 3",
    "-P -u [2001:db8::10]:53 -z [2001:db8::fa]",
  ]) {
    const r = lvsadm(b, line);
    assert.equal(r.exitCode, 0, `${line}: ${r.stderr}`);
  }
  return b;
}

test("--fullnat makes a full-NAT destination; -Ln shows it as FullNat (DPVS's word); -P / --add-laddr fill the service's pool", () => {
  const b = configured();
  const key = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 } as const;
  assert.deepEqual(
    b.service(key).destinations.map((d) => [d.config.address, d.config.method]),
    [
      ["10.1.0.6", "masq"],
      ["10.1.0.5", "fullnat"],
    ],
  );
  const listing = lvsadm(b, "-Ln").stdout;
  assert.match(listing, /-> 10\.1\.0\.5:8080 {16}FullNat 1 /);
  assert.match(listing, /-> 10\.1\.0\.6:8080 {16}Masq {4}1 /);
  assert.match(listing, /-> \[2001:db8::5\]:53 {13}FullNat 3 /);
  assert.deepEqual(
    b.localAddresses(key).map((l) => l.address),
    ["10.1.0.250", "10.1.0.251"],
  );
});

test("-G lists every service's local addresses (or one service's), with their connections; --json gives the same as data", () => {
  const b = configured();
  const all = lvsadm(b, "-G -n").stdout.split("\n").filter(Boolean);
  assert.equal(all.length, 4, all.join("\n"));
  assert.match(all[0], /^VIP:VPORT +LIP +CONNS +EXHAUSTED$/);
  assert.match(all[1], /^TCP {2}10\.0\.0\.100:80 +10\.1\.0\.250 +0 +0$/);
  assert.match(all[3], /^UDP {2}\[2001:db8::10\]:53 +2001:db8::fa +0 +0$/);
  const one = lvsadm(b, "-G -u [2001:db8::10]:53").stdout.split("\n").filter(Boolean);
  assert.equal(one.length, 2);
  const json = JSON.parse(lvsadm(b, "-G -t 10.0.0.100:80", { json: true }).stdout);
  assert.deepEqual(json.localAddresses[0].addresses, [
    { address: "10.1.0.250", connections: 0, exhausted: 0 },
    { address: "10.1.0.251", connections: 0, exhausted: 0 },
  ]);
  assert.equal(lvsadm(b, "-G -t 10.0.0.100:81").stderr, "No such service\n");
});

test("-S saves the pool as -P lines that -R restores to the same table; -Q deletes one", () => {
  const b = configured();
  const saved = lvsadm(b, "-Sn").stdout;
  assert.match(saved, /^-a -t 10\.0\.0\.100:80 -r 10\.1\.0\.5:8080 --fullnat -w 1$/m);
  assert.match(saved, /^-P -t 10\.0\.0\.100:80 -z 10\.1\.0\.250\n-P -t 10\.0\.0\.100:80 -z 10\.1\.0\.251$/m);
  assert.match(saved, /^-P -u \[2001:db8::10\]:53 -z 2001:db8::fa$/m);
  const rules = parseRules(saved);
  assert.deepEqual(rules, b.rules());
  const copy = new Balancer();
  copy.applyRules(rules);
  assert.equal(formatRules(copy.rules(), { numeric: true }), saved);

  assert.equal(lvsadm(b, "-Q -t 10.0.0.100:80 -z 10.1.0.250").exitCode, 0);
  assert.doesNotMatch(lvsadm(b, "-Sn").stdout, /10\.1\.0\.250/);
  // In a rules file: a -P for a service not defined, or twice, names its line.
  assert.throws(() => parseRules("-P -t 10.0.0.1:80 -z 10.1.0.1\n"), /: line 1: No such service$/);
  assert.throws(
    () => parseRules("-A -t 10.0.0.1:80 -s rr\n-P -t 10.0.0.1:80 -z 10.1.0.1\n-P -t 10.0.0.1:80 -z 10.1.0.1\n"),
    /line 3: Local address already exists/,
  );
});

test("bad input: one line, nothing applied", () => {
  const b = configured();
  const before = lvsadm(b, "-Sn").stdout;
  const cases: Array<[string, RegExp]> = [
    ["-P -t 10.0.0.100:80", /You need to supply the 'laddr' option for the 'add-laddr' command/],
    ["-P -t 10.0.0.100:80 -z 10.1.0.9:80", /illegal local address specified/],
    ["-P -t 10.0.0.100:80 -z not-an-address", /illegal local address specified/],
    ["-P -t 10.0.0.100:80 -z 2001:db8::1", /Different address family is not allowed for a local address/],
    ["-P -t 10.0.0.100:80 -z 10.1.0.250", /^Local address already exists\n$/],
    ["-P -t 10.0.0.100:81 -z 10.1.0.9", /^No such service\n$/],
    ["-Q -t 10.0.0.100:80 -z 10.1.0.9", /^No such local address\n$/],
    ["-A -t 10.0.0.100:82 -z 10.1.0.9", /Illegal 'laddr' option with the 'add-service' command/],
    ["-P -t 10.0.0.100:80 -z 10.1.0.9 -r 10.1.0.5", /Illegal 'real-server' option with the 'add-laddr' command/],
    ["-a -t 10.0.0.100:80 -r 10.1.0.7:80 --fullnat -m", /multiple 'forwarding-method' options specified/],
    ["-a -f 7 -r 10.1.0.7:80 --fullnat", /needs an address service/],
    ["-e -t 10.0.0.100:80 -r 10.1.0.5:8080 -m", /cannot change to or from fullnat/],
    ["-e -t 10.0.0.100:80 -r 10.1.0.6:8080 --fullnat", /cannot change to or from fullnat/],
  ];
  for (const [line, re] of cases) {
    const r = lvsadm(b, line);
    assert.notEqual(r.exitCode, 0, line);
    assert.match(r.stderr, re, line);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, `${line}: one line`);
  }
  assert.equal(lvsadm(b, "-Sn").stdout, before, "nothing changed");
});

test("reload diff: local addresses added and removed as -P / -Q, a method change to or from fullnat as -d then -a", () => {
  const b = configured();
  const wanted = parseRules(
    [
      "-A -t 10.0.0.100:80 -s rr",
      "-a -t 10.0.0.100:80 -r 10.1.0.5:8080 --fullnat -w 1",
      "-a -t 10.0.0.100:80 -r 10.1.0.6:8080 --fullnat -w 1",
      "-P -t 10.0.0.100:80 -z 10.1.0.251",
      "-P -t 10.0.0.100:80 -z 10.1.0.252",
      "-A -u [2001:db8::10]:53 -s mh",
      "-a -u [2001:db8::10]:53 -r [2001:db8::5]:53 --fullnat -w 3",
      "-P -u [2001:db8::10]:53 -z 2001:db8::fa",
    ].join("\n"),
  );
  const changes = diffRules(b.rules(), wanted);
  assert.deepEqual(
    changes.map((c) => c.line),
    [
      "-d -t 10.0.0.100:80 -r 10.1.0.6:8080",
      "-Q -t 10.0.0.100:80 -z 10.1.0.250",
      "-a -t 10.0.0.100:80 -r 10.1.0.6:8080 --fullnat -w 1",
      "-P -t 10.0.0.100:80 -z 10.1.0.252",
    ],
  );
  for (const c of changes) c.apply(b);
  assert.deepEqual(b.rules(), wanted);
  assert.deepEqual(diffRules(b.rules(), wanted), [], "applied: nothing left to change");
});

test("lvsd --local-addresses and --local-port-range size full NAT's pool; bad values are one-line errors", async () => {
  const { parseLvsdArgs } = await import("../src/runtime/lvsd-options.js");
  const parsed = parseLvsdArgs(["--tun", "lvs0", "--local-addresses", "16", "--local-port-range", "40000-40100"]);
  assert.ok(!parsed.help);
  assert.equal(parsed.balancer?.localAddresses, 16);
  assert.deepEqual(parsed.balancer?.localPortRange, [40000, 40100]);
  for (const [args, re] of [
    [["--local-port-range", "5000-4000"], /^--local-port-range 5000-4000: expected LOW-HIGH/],
    [["--local-port-range", "80"], /^--local-port-range 80: expected LOW-HIGH/],
    [["--local-addresses", "70000"], /^--local-addresses 70000: expected an integer in 1\.\.65535$/],
  ] as const) {
    assert.throws(
      () => parseLvsdArgs(["--tun", "lvs0", ...args]),
      (e: Error) => re.test(e.message),
    );
  }
  // The Balancer takes them: a range of one port holds one flow per real server and port.
  const b = new Balancer(parsed.balancer);
  const key = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 } as const;
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  for (let i = 0; i < 16; i++) b.addLocalAddress(key, `10.1.0.${i + 1}`);
  assert.throws(() => b.addLocalAddress(key, "10.1.0.99"), /table of 16 local addresses is full \(lvsd --local-addresses N/);
});

test("--proxy-protocol v2 on -A / -E: saved by -S, restored by -R, shown by -L, turned off by -E without it; bad input refused", () => {
  const b = configured();
  assert.equal(lvsadm(b, "-A -t 10.0.0.100:443 -s rr --proxy-protocol v2").exitCode, 0);
  const key = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 443 } as const;
  assert.equal(b.service(key).config.proxyProtocol, "v2");
  assert.match(lvsadm(b, "-Sn").stdout, /^-A -t 10\.0\.0\.100:443 -s rr --proxy-protocol v2$/m);
  assert.match(lvsadm(b, "-Ln").stdout, /^TCP {2}10\.0\.0\.100:443 rr proxy-protocol v2$/m);
  const saved = lvsadm(b, "-Sn").stdout;
  assert.equal(parseRules(saved).services.find((x) => x.service.key.kind === "address" && x.service.key.port === 443)?.service.proxyProtocol, "v2");
  assert.equal(formatRules(parseRules(saved), { numeric: true }), saved, "-R reads back what -S wrote");
  assert.equal(lvsadm(b, "-E -t 10.0.0.100:443 -s rr").exitCode, 0);
  assert.equal(b.service(key).config.proxyProtocol, undefined, "-E replaces the whole service, as ipvsadm's");
  for (const [line, re] of [
    ["-A -t 10.0.0.100:444 --proxy-protocol v1", /illegal proxy-protocol specified/],
    ["-a -t 10.0.0.100:80 -r 10.1.0.8:80 --fullnat --proxy-protocol v2", /Illegal 'proxy-protocol' option with the 'add-server' command/],
    ["-A -u 10.0.0.100:53 --proxy-protocol v2", /a -t service only/],
  ] as const) {
    const r = lvsadm(b, line);
    assert.notEqual(r.exitCode, 0, line);
    assert.match(r.stderr, re, line);
  }
});

test("lvsd's reload path (diffRunning, then a RuleTransaction): local addresses as -P / -Q, a method change to or from fullnat as -d then -a, a PROXY protocol change as -E", async () => {
  const b = configured();
  const wantedText = [
    "-A -t 10.0.0.100:80 -s rr --proxy-protocol v2",
    "-a -t 10.0.0.100:80 -r 10.1.0.5:8080 --fullnat -w 1",
    "-a -t 10.0.0.100:80 -r 10.1.0.6:8080 --fullnat -w 1",
    "-P -t 10.0.0.100:80 -z 10.1.0.251",
    "-P -t 10.0.0.100:80 -z 10.1.0.252",
    "-A -u [2001:db8::10]:53 -s mh",
    "-a -u [2001:db8::10]:53 -r [2001:db8::5]:53 --fullnat -w 3",
    "-P -u [2001:db8::10]:53 -z 2001:db8::fa",
  ].join("\n");
  const wanted = parseRules(wantedText);
  const specs = await diffRunning(b, wanted, NO_SLICES());
  assert.deepEqual(specs.flatMap(changeLines), [
    "-d -t 10.0.0.100:80 -r 10.1.0.6:8080",
    "-Q -t 10.0.0.100:80 -z 10.1.0.250",
    "-E -t 10.0.0.100:80 -s rr --proxy-protocol v2",
    "-a -t 10.0.0.100:80 -r 10.1.0.6:8080 --fullnat -w 1",
    "-P -t 10.0.0.100:80 -z 10.1.0.252",
  ]);
  const counts = countChanges(specs);
  assert.equal(counts.localAddressesAdded, 1);
  assert.equal(counts.localAddressesRemoved, 1);
  RuleTransaction.prepare(b, specs).applyNow();
  assert.deepEqual(b.rules(), wanted);
  assert.deepEqual(await diffRunning(b, wanted, NO_SLICES()), [], "applied: nothing left to change");
  // A restore of a service with local addresses into an empty balancer carries them too.
  const fresh = new Balancer();
  RuleTransaction.restore(fresh, wanted).applyNow();
  assert.equal(lvsadm(fresh, "-Sn").stdout, lvsadm(b, "-Sn").stdout);
  // A rule set from the API (the rules reader refuses this one itself) with a local address
  // of the wrong family after a good service: refused before anything is applied.
  const bad = { services: [wanted.services[1]!, { ...wanted.services[0]!, localAddresses: ["10.1.0.251", "2001:db8::1"] }] };
  const empty = new Balancer();
  assert.throws(() => RuleTransaction.restore(empty, bad).applyNow(), /local address 2001:db8::1: an IPv4 service needs IPv4 local addresses/);
  assert.equal(lvsadm(empty, "-Sn").stdout, "", "nothing applied");
});
