// Errors in the operator's words (issue 17): a reload or restore that the running director
// refuses names the rules line and the lvsd flag to change; a configuration larger than
// the tables names the flag that sizes them; nothing is half applied.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Lvsd } from "../src/runtime/lvsd.js";
import { Balancer } from "../src/balancer/balancer.js";
import { parseRules } from "../src/admin/rules.js";
import { parseLvsdArgs } from "../src/runtime/lvsd-options.js";

test("a reload refused by the running director names the rules line and the lvsd flag", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ops-errors-"));
  const rules = join(dir, "rules");
  const lines: string[] = [];
  writeFileSync(rules, "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m\n");
  const daemon = await Lvsd.start({
    rulesFile: rules,
    socketPath: false,
    vipCheck: false,
    io: [new MemoryPacketIO("mem0")],
    balancer: { connections: 64, slots: 4, maxServices: 2, maxDestinations: 8 },
    log: (l) => lines.push(l),
  });
  try {
    const before = daemon.balancer.rules();
    // Line 4 tunnels (-i) without a tunnel source: the parser accepts it, the director cannot.
    writeFileSync(rules, "-A -t 10.0.0.100:80 -s rr\n# a comment\n-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m\n-a -t 10.0.0.100:80 -r 192.168.10.12:80 -i\n");
    assert.equal(await daemon.reload(), null);
    assert.match(
      lines.at(-1) ?? "",
      /^reload .* refused, configuration unchanged: line 4: destination 192\.168\.10\.12: tunnelling \(-i\) needs the outer source address: start lvsd with --tunnel-source4 ADDR/,
    );
    // Three services where --max-services is 2.
    writeFileSync(rules, ["-A -t 10.0.0.1:80", "-A -t 10.0.0.2:80", "-A -t 10.0.0.3:80", ""].join("\n"));
    assert.equal(await daemon.reload(), null);
    assert.match(lines.at(-1) ?? "", /refused, configuration unchanged: 3 services do not fit: the table holds 2 \(lvsd --max-services N/);
    assert.deepEqual(daemon.balancer.rules(), before, "nothing changed");
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a restore names the line of the service or destination the balancer refuses, and applies nothing", () => {
  const b = new Balancer({ connections: 64, slots: 4, maxServices: 8, maxDestinations: 8 });
  b.applyRules(parseRules("-A -t 10.0.0.1:80 -s rr\n"));
  const text = ["-A -u 10.0.0.9:53 -s rr", "-a -u 10.0.0.9:53 -r 192.168.1.1:53 -m", "", "-A -t 10.0.0.1:80 -s wlc", ""].join("\n");
  assert.throws(() => b.applyRules(parseRules(text)), { name: "ConfigError", message: "line 4: Service already exists: TCP 10.0.0.1:80" });
  assert.equal(b.rules().services.length, 1, "the UDP service of line 1 was not added");
  const many = Array.from({ length: 9 }, (_, i) => `-a -t 10.0.0.1:80 -r 192.168.1.${i + 1}:80 -m`).join("\n");
  assert.throws(
    () => b.applyRules(parseRules(`-A -t 10.0.0.2:80\n${many}`.replace(/10\.0\.0\.1/g, "10.0.0.2"))),
    /9 destinations do not fit: the table holds 8 \(lvsd --max-destinations N/,
  );
});

test("lvsd's table and control flags: parsed, bounded, and refused in one line", () => {
  const o = parseLvsdArgs([
    "--tun",
    "t",
    "--max-services",
    "100000",
    "--max-destinations",
    "400000",
    "--destinations-per-service",
    "5000",
    "--control-idle-ms",
    "500",
    "--control-connections",
    "8",
  ]);
  assert.ok(!o.help);
  assert.deepEqual(
    [o.balancer, o.control],
    [
      { maxServices: 100000, maxDestinations: 400000, destinationsPerService: 5000 },
      { idleTimeoutMs: 500, maxConnections: 8 },
    ],
  );
  for (const [argv, message] of [
    [["--tun", "t", "--max-services", "0"], /^--max-services 0: expected an integer in 1\.\.1048576$/],
    [["--tun", "t", "--max-destinations", "2000000"], /^--max-destinations 2000000: expected an integer in 1\.\.1048575$/],
    [["--tun", "t", "--max-destinations", "10", "--destinations-per-service", "11"], /^--destinations-per-service 11: more than --max-destinations 10$/],
    [["--tun", "t", "--socket", `/tmp/${"s".repeat(120)}`], /^control socket \/tmp\/s+: 125 bytes, longer than the 107/],
  ] as const) {
    assert.throws(() => parseLvsdArgs(argv), { name: "ConfigError", message }, argv.join(" "));
  }
});
