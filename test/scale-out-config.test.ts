// The pieces of ECMP scale-out that need no lab: which VIPs are servable (what lvsd
// --announce keeps a route for), lvsd's --announce flags, lvsadm drain's words, and the BIRD
// configurations docs/scale-out.md shows (the same text the lab runs, and BIRD parses it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Balancer } from "../src/balancer/balancer.js";
import { servableAddresses } from "../src/runtime/announcer.js";
import { drainStatusLine, isDrainRequest, runDrainRequest } from "../src/runtime/drain-command.js";
import { drainMain } from "../src/admin/drain-client.js";
import { parseLvsdArgs } from "../src/runtime/lvsd-options.js";
import { directorBirdConfig, routerBirdConfig } from "../src/lab/bird.js";
import { skipUnless } from "./support/tools.js";

const tcp = (address: string, port = 80) => ({ kind: "address", protocol: "tcp", address, port }) as const;
const dest = (address: string, weight: number) => ({ address, port: 80, method: "route", weight, upperThreshold: 0, lowerThreshold: 0 }) as const;

test("servable VIPs: a service with a destination of weight > 0; quiesced, empty and fwmark services are not", () => {
  const b = new Balancer({ connections: 64 });
  b.addService({ key: tcp("10.100.0.1"), scheduler: "mh", schedulerFlags: [], onePacket: false });
  b.addService({ key: tcp("10.100.0.2"), scheduler: "mh", schedulerFlags: [], onePacket: false });
  b.addService({ key: tcp("10.100.0.3"), scheduler: "mh", schedulerFlags: [], onePacket: false });
  b.addService({ key: tcp("10.100.0.3", 443), scheduler: "mh", schedulerFlags: [], onePacket: false });
  b.addService({ key: { kind: "fwmark", family: 4, fwmark: 7 }, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(tcp("10.100.0.1"), dest("192.168.10.11", 1));
  b.addDestination(tcp("10.100.0.2"), dest("192.168.10.11", 0));
  b.addDestination(tcp("10.100.0.3", 443), dest("192.168.10.12", 3));
  b.addDestination({ kind: "fwmark", family: 4, fwmark: 7 }, dest("192.168.10.13", 1));
  assert.deepEqual([...servableAddresses(b)].sort(), ["10.100.0.1", "10.100.0.3"], "port 80 of .3 has none, but its port 443 does");

  const before = b.configVersion;
  b.editDestination(tcp("10.100.0.1"), dest("192.168.10.11", 0));
  assert.ok(b.configVersion > before, "an edit moves the configuration version (what the announcer polls)");
  assert.deepEqual([...servableAddresses(b)].sort(), ["10.100.0.3"], "quiescing the last destination withdraws the VIP");
  b.deleteDestination(tcp("10.100.0.3", 443), { address: "192.168.10.12", port: 80 });
  assert.deepEqual([...servableAddresses(b)], [], "removing it too");
});

test("lvsd --announce flags: defaults, values, and one-line refusals", () => {
  const base = ["--af-packet", "eth0"];
  const parsed = (args: string[]) => {
    const r = parseLvsdArgs([...base, ...args]);
    assert.equal(r.help, false);
    return r.help === false ? r.announce : undefined;
  };
  assert.equal(parsed([]), undefined, "off unless asked");
  assert.deepEqual(parsed(["--announce"]), {});
  assert.deepEqual(parsed(["--announce", "--announce-table", "99", "--announce-protocol", "77", "--announce-device", "anc0"]), {
    table: 99,
    protocol: 77,
    device: "anc0",
  });
  assert.throws(() => parseLvsdArgs([...base, "--announce-table", "99"]), /need --announce/);
  assert.throws(() => parseLvsdArgs([...base, "--announce", "--announce-table", "254"]), /--announce-table 254: expected an integer in 1\.\.252/);
  assert.throws(() => parseLvsdArgs([...base, "--announce", "--announce-protocol", "0"]), /expected an integer in 1\.\.252/);
});

test("drain verbs: recognised, refused without --announce, described in one line", async () => {
  assert.equal(isDrainRequest(["drain"]), true);
  assert.equal(isDrainRequest(["undrain"]), true);
  assert.equal(isDrainRequest(["-Ln"]), false);
  const refused = await runDrainRequest(null, ["drain"], false);
  assert.equal(refused.exitCode, 2);
  assert.equal(refused.stderr, "lvsd: drain: lvsd announces nothing (start it with --announce)\n");
  assert.equal(
    drainStatusLine({ draining: true, announced: [], quietMs: 2345, connections: 12 }),
    "draining: announcing nothing; last packet forwarded 2.3 s ago; 12 connection entries",
  );
  assert.equal(
    drainStatusLine({ draining: false, announced: ["10.100.0.1", "10.100.0.2"], quietMs: 0, connections: 0 }),
    "announcing 10.100.0.1, 10.100.0.2; last packet forwarded 0.0 s ago; 0 connection entries",
  );
  assert.match(drainStatusLine({ draining: false, announced: [], quietMs: 0, connections: 0 }), /^announcing nothing \(no VIP has a destination/);
});

test("lvsadm drain: bad words are refused before anything is sent", async () => {
  const errors: string[] = [];
  const io = { out: () => assert.fail("nothing printed"), err: (t: string) => errors.push(t) };
  // The socket does not exist: reaching it would be a different error.
  for (const args of [
    ["drain", "--bogus"],
    ["undrain", "--wait"],
    ["drain", "--status", "--wait"],
  ]) {
    assert.equal(await drainMain("/nonexistent/lvsd.sock", args, io), 2, args.join(" "));
  }
  assert.equal(errors.length, 3);
  for (const e of errors) assert.match(e, /^usage: lvsadm drain/);
  await assert.rejects(drainMain("/nonexistent/lvsd.sock", ["drain", "--idle", "-1"], io), /--idle needs a positive number of seconds/);
});

const LAB_ROUTER = routerBirdConfig({
  routerId: "192.168.10.1",
  localAs: 65000,
  neighbours: [1, 2, 3].map((i) => ({ name: `d${i}`, address: `192.168.10.${100 + i}`, as: 65001 })),
});
const LAB_DIRECTOR = directorBirdConfig({ routerId: "192.168.10.101", localAs: 65001, routerAddress: "192.168.10.1", routerAs: 65000 });

test("docs/scale-out.md shows the BIRD configurations the lab runs, verbatim", () => {
  const doc = readFileSync(new URL("../docs/scale-out.md", import.meta.url), "utf8");
  const blocks = [...doc.matchAll(/```\n(# [^\n]*\n[\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.includes(LAB_DIRECTOR), "the director's configuration");
  assert.ok(blocks.includes(LAB_ROUTER), "the router's configuration");
  assert.match(LAB_DIRECTOR, /krt_source = 201;/, "the filter takes lvsd's protocol number");
  assert.match(LAB_DIRECTOR, /kernel table 201;/, "from lvsd's table");
  assert.match(LAB_ROUTER, /merge paths on;/, "the router merges equal paths into one ECMP route");
});

test("BIRD 2 parses both configurations", { skip: skipUnless("bird") }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bird-parse-"));
  try {
    for (const [name, text] of [
      ["router", LAB_ROUTER],
      ["director", LAB_DIRECTOR],
    ]) {
      const file = join(dir, `${name}.conf`);
      writeFileSync(file, text);
      execFileSync("bird", ["-p", "-c", file], { stdio: "pipe" });
    }
    writeFileSync(join(dir, "broken.conf"), LAB_DIRECTOR.replace("protocol bgp fabric", "protocol bgp router"));
    assert.throws(() => execFileSync("bird", ["-p", "-c", join(dir, "broken.conf")], { stdio: "pipe" }), /syntax error/, "the judge can fail");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
