// Large restores and reloads applied in slices beside the packet loop (issue 17): the data
// plane forwards between the slices, a refusal found anywhere (a bad line near the end)
// leaves the table as it was at every moment, a failure while applying rolls back, a
// reload of a large file with one changed line applies one change, and a listing asked
// during a restore answers. No timing is asserted: progress is seen through the packet
// adapter, which notes how many services were configured each time it was read.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import type { PacketSlots } from "../src/core/packet-slots.js";
import { Lvsd } from "../src/runtime/lvsd.js";
import { Balancer } from "../src/balancer/balancer.js";
import { RuleTransaction } from "../src/balancer/rule-transaction.js";
import { parseRules } from "../src/admin/rules.js";
import { formatSave } from "../src/admin/format.js";
import { answer } from "../src/admin/control-server.js";
import { toJson } from "../src/admin/json-output.js";
import { buildPacket } from "../src/testing/packets.js";
import { bigRules } from "./support/lvsd-proc.js";
import { until } from "./support/io-lab.js";

/**
 * An adapter that always has one SYN to deliver (to the service on 10.255.0.1:80, which
 * every test keeps), and notes the configuration the packet loop saw on each read.
 */
class BusyIO extends MemoryPacketIO {
  readonly seen: number[] = [];
  private sport = 1024;
  constructor(private readonly servicesNow: () => number) {
    super("busy0");
  }
  override receive(slots: PacketSlots, first: number, max: number): number {
    this.seen.push(this.servicesNow());
    this.sport = this.sport >= 65000 ? 1024 : this.sport + 1;
    this.inject(buildPacket({ protocol: "tcp", src: "172.16.0.1", dst: "10.255.0.1", sport: this.sport, dport: 80, flags: "S" }));
    return super.receive(slots, first, max);
  }
}

const KEPT = "-A -t 10.255.0.1:80 -s rr\n-a -t 10.255.0.1:80 -r 192.168.200.1:80 -m -w 1\n";

async function daemonWith(rulesFile?: string) {
  let daemon: Lvsd | undefined;
  const io = new BusyIO(() => daemon?.balancer.serviceCount ?? 0);
  const lines: string[] = [];
  daemon = await Lvsd.start({
    io: [io],
    socketPath: false,
    vipCheck: false,
    rulesFile,
    balancer: { connections: 1 << 16, slots: 16, maxServices: 8192, maxDestinations: 32768 },
    log: (l) => lines.push(l),
  });
  return { daemon, io, lines };
}

test("a restore applied in slices: the data plane forwards between slices, and sees the services arrive", async () => {
  const { daemon, io } = await daemonWith();
  try {
    assert.equal((await daemon.command({ argv: ["-R"], stdin: KEPT })).exitCode, 0);
    const sentBefore = io.sent.length;
    const seenFrom = io.seen.length;
    const result = await daemon.command({ argv: ["-R"], stdin: bigRules(6000, 4) });
    assert.deepEqual(result, { stdout: "", stderr: "", exitCode: 0 });
    assert.equal(daemon.balancer.serviceCount, 6001);
    const during = io.seen.slice(seenFrom);
    const partial = new Set(during.filter((n) => n > 1 && n < 6001));
    assert.ok(partial.size >= 2, `the packet loop ran while the restore was half applied (saw ${[...new Set(during)].join(", ")})`);
    assert.ok(io.sent.length > sentBefore, "packets to the kept service were forwarded during the restore");
  } finally {
    await daemon.stop();
  }
});

test("a restore with a bad line near the end changes nothing at any moment, and says which line in one line", async () => {
  const { daemon, io, lines } = await daemonWith();
  try {
    assert.equal((await daemon.command({ argv: ["-R"], stdin: KEPT })).exitCode, 0);
    const good = bigRules(5000, 4).trimEnd().split("\n");
    for (const [bad, line, error] of [
      // The parser refuses it (read in slices).
      ["-a -t 10.0.19.131:80 -r 192.168.9.9:8080 -m -w 99999", good.length - 3, /^line 24998: illegal weight specified\n$/],
      // The parser takes it, the director cannot (checked in slices): a tunnel without a source.
      [
        "-a -t 10.0.19.131:80 -r 192.168.9.9:8080 -i -w 1",
        good.length - 3,
        /^line 24998: destination 192\.168\.9\.9: tunnelling \(-i\) needs the outer source address: start lvsd with --tunnel-source4 ADDR/,
      ],
    ] as const) {
      const text = [...good.slice(0, line), bad, ...good.slice(line)].join("\n");
      const seenFrom = io.seen.length;
      const r = await daemon.command({ argv: ["-R"], stdin: text });
      assert.equal(r.exitCode, 255);
      assert.match(r.stderr, error);
      assert.equal(r.stderr.split("\n").length, 2, "one line");
      assert.equal(daemon.balancer.serviceCount, 1, "nothing applied");
      const during = io.seen.slice(seenFrom);
      assert.ok(during.length > 1, "the packet loop ran while the restore was read and checked");
      assert.deepEqual([...new Set(during)], [1], "the table never changed while it was checked");
    }
    assert.ok(
      lines.some((l) => /^lvsadm -R: line 24998: illegal weight specified$/.test(l)),
      "the refusal is logged",
    );
  } finally {
    await daemon.stop();
  }
});

test("a listing asked during a restore answers (between the restore's slices), and changes wait for the restore", async () => {
  const { daemon } = await daemonWith();
  try {
    const restore = Promise.resolve(daemon.command({ argv: ["-R"], stdin: bigRules(6000, 4) }));
    const order: string[] = [];
    void restore.then(() => order.push("restore"));
    const add = Promise.resolve(daemon.command({ argv: ["-A", "-t", "10.254.0.1:80", "-s", "rr"] }));
    void add.then(() => order.push("add"));
    const listing = await daemon.command({ argv: ["-Ln"] });
    order.push("listing");
    assert.equal(listing.exitCode, 0);
    assert.match(listing.stdout, /^IP Virtual Server version/);
    await Promise.all([restore, add]);
    assert.deepEqual(order, ["listing", "restore", "add"], "the listing did not wait; the -A waited for the restore");
    assert.equal(daemon.balancer.serviceCount, 6001);
  } finally {
    await daemon.stop();
  }
});

test("a failure while applying rolls back what was applied: the configuration is the old one again", () => {
  const b = new Balancer({ connections: 64, slots: 4, maxServices: 64, maxDestinations: 256 });
  b.applyRules(
    parseRules("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m -w 1\n-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m -w 1\n-A -u 10.0.0.2:53 -s wlc\n"),
  );
  const before = b.rules();
  const saved = formatSave(before.services, { numeric: true });
  const wanted = [
    { op: "-D", service: before.services[1].service },
    { op: "-d", service: before.services[0].service, destination: before.services[0].destinations[0] },
    { op: "-E", service: { ...before.services[0].service, scheduler: "wlc" } },
    { op: "-e", service: before.services[0].service, destination: { ...before.services[0].destinations[1], weight: 7 } },
    { op: "-A", service: { ...before.services[0].service, key: { kind: "address", protocol: "tcp", address: "10.0.0.3", port: 80 } }, destinations: [] },
    { op: "-A", service: { ...before.services[0].service, key: { kind: "address", protocol: "tcp", address: "10.0.0.4", port: 80 } }, destinations: [] },
  ] as const;
  const tx = RuleTransaction.prepare(b, wanted);
  // The tables refuse the last service (as they would a destination record still held by connections).
  let added = 0;
  const real = b.addPreparedService.bind(b);
  b.addPreparedService = (p) => {
    if (++added === 2) throw new Error("the tables are full");
    real(p);
  };
  assert.throws(() => tx.applyNow(), /the tables are full/);
  // Compared as ipvsadm -Sn saves them: a service or destination put back comes last in the order added.
  assert.equal(formatSave(b.rules().services, { numeric: true }), saved, "services, destinations, weights and schedulers as they were");
  assert.deepEqual(tx.counts["-A"], 0);
});

test("a reload of a 5,000-service file with one changed line applies one change", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ops-slices-"));
  const file = join(dir, "rules");
  const text = KEPT + bigRules(5000, 4);
  writeFileSync(file, text);
  const { daemon, lines } = await daemonWith(file);
  try {
    assert.equal(daemon.balancer.serviceCount, 5001);
    const version = daemon.balancer.configVersion;
    writeFileSync(file, text.replace("-a -t 10.0.19.131:80 -r 192.168.0.2:8080 -m -w 1", "-a -t 10.0.19.131:80 -r 192.168.0.2:8080 -m -w 5"));
    const summary = await daemon.reload();
    assert.ok(summary);
    assert.deepEqual(summary.changes, ["-e -t 10.0.19.131:80 -r 192.168.0.2:8080 -m -w 5"]);
    assert.equal(daemon.balancer.configVersion, version + 1, "one change touched the tables");
    assert.ok(lines.includes("apply -e -t 10.0.19.131:80 -r 192.168.0.2:8080 -m -w 5"), lines.slice(-5).join("\n"));
    assert.match((await daemon.command({ argv: ["-Ln", "-t", "10.0.19.131:80"] })).stdout, /192\.168\.0\.2:8080\s+Masq\s+5\s/);
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("-R of a text that starts with -C replaces the running configuration, touching only what differs", async () => {
  const { daemon } = await daemonWith();
  try {
    const text = KEPT + bigRules(300, 2);
    assert.equal((await daemon.command({ argv: ["-R"], stdin: text })).exitCode, 0);
    const version = daemon.balancer.configVersion;
    // The same configuration, one service dropped (the last: 10.0.1.43) and one weight changed.
    const wanted = `-C\n${text.replace("-a -t 10.0.0.7:80 -r 192.168.0.2:8080 -m -w 1", "-a -t 10.0.0.7:80 -r 192.168.0.2:8080 -m -w 9").replace(/-A -t 10\.0\.1\.43:80 -s wlc\n(-a -t 10\.0\.1\.43:80 .*\n)*/, "")}`;
    const r = await daemon.command({ argv: ["-R"], stdin: wanted });
    assert.deepEqual([r.exitCode, r.stderr], [0, ""]);
    assert.equal(daemon.balancer.configVersion, version + 2, "two changes: the service removed, the weight edited");
    const saved = (await daemon.command({ argv: ["-Sn"] })).stdout;
    assert.doesNotMatch(saved, /10\.0\.1\.43:80/);
    assert.match(saved, /-a -t 10\.0\.0\.7:80 -r 192\.168\.0\.2:8080 -m -w 9\n/);
    assert.equal(daemon.balancer.serviceCount, 300);
  } finally {
    await daemon.stop();
  }
});

test("--json listings and saves in slices are byte for byte the one-step answer; counters past 2^53 stay exact", async () => {
  const { daemon, io } = await daemonWith();
  try {
    assert.equal((await daemon.command({ argv: ["-R"], stdin: KEPT + bigRules(400, 3) })).exitCode, 0);
    // Some traffic, so that counters are not all zero; then the packet loop stops, so that
    // counters and rates stand still between the two readings.
    const sent = io.sent.length;
    assert.ok(await until(() => io.sent.length > sent + 100, 10_000));
    await daemon.director.stop();
    const ctx = { balancer: daemon.balancer, now: () => 0, program: "lvsadm" };
    for (const argv of [["-Ln"], ["-L", "-n", "--stats"], ["-Sn"]]) {
      const sliced = await daemon.command({ argv, json: true });
      const whole = answer(ctx, { argv, json: true });
      assert.equal(sliced.exitCode, 0);
      assert.equal(sliced.stdout, whole.stdout, argv.join(" "));
      assert.ok(JSON.parse(sliced.stdout).services.length === 401);
    }
  } finally {
    await daemon.stop();
  }
  assert.equal(toJson({ big: 2n ** 60n + 1n, small: 7n, list: [0n] }), '{\n  "big": 1152921504606846977,\n  "small": 7,\n  "list": [\n    0\n  ]\n}');
});
