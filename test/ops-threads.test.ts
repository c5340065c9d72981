// lvsd with its data plane on worker threads (LvsdHost), issue 17: the main thread parses
// restores and reloads and prints whole-table listings; the workers check, apply and read
// in slices. What crosses the thread boundary must arrive whole and in order: listings
// byte for byte as lvsd in one thread prints them, a refusal found by a worker names its
// line and changes nothing at any moment, a listing during a reload sees every service
// either as it was or as it becomes, and a change sent while a restore is still being
// parsed applies after it. Needs no root (an in-memory adapter).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LvsdHost } from "../src/runtime/lvsd-worker.js";
import { Lvsd } from "../src/runtime/lvsd.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { bigRules } from "./support/lvsd-proc.js";

const WORKER = new URL("./support/lvsd-memory-worker.ts", import.meta.url);

async function withHost(workers: number, rulesFile: string | undefined, fn: (host: LvsdHost, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const host = await LvsdHost.start(WORKER, { adapters: [], workers, socketPath: false, vipCheck: false, rulesFile }, (l) => log.push(l));
  try {
    await fn(host, log);
  } finally {
    await host.stop();
  }
}

async function withReference(fn: (daemon: Lvsd) => Promise<void>): Promise<void> {
  const daemon = await Lvsd.start({ io: [new MemoryPacketIO("ref0")], socketPath: false, vipCheck: false, log: () => {} });
  try {
    await fn(daemon);
  } finally {
    await daemon.stop();
  }
}

/** Services in no sorted order (the sort happens on the main thread), of several kinds. */
const MIXED = [
  "-A -t 10.9.0.9:80 -s wlc",
  "-a -t 10.9.0.9:80 -r 192.168.0.3:8080 -m -w 3",
  "-a -t 10.9.0.9:80 -r 192.168.0.1:8080 -m -w 1",
  "-A -u 10.9.0.2:53 -s rr -p 300",
  "-a -u 10.9.0.2:53 -r 192.168.1.1:53 -m -w 2",
  "-A -t [2001:db8::1]:443 -s sh",
  "-a -t [2001:db8::1]:443 -r [2001:db8:1::2]:443 -m -w 1 -x 100 -y 50",
  "-A -f 7 -s lc",
  "-a -f 7 -r 192.168.2.2:0 -m -w 5",
  "-A -t 10.9.0.1:22 -s wrr",
  "",
].join("\n");

/** `bigRules` with its services in reverse order: more than a message and a chunk of rows. */
function reversedRules(services: number, per: number): string {
  const blocks = bigRules(services, per)
    .trimEnd()
    .split(/\n(?=-A )/);
  return `${blocks.reverse().join("\n")}\n`;
}

const LISTINGS: ReadonlyArray<{ argv: string[]; json?: boolean }> = [
  { argv: ["-Ln"] },
  { argv: ["-L"] },
  { argv: ["-Ln", "--stats"] },
  { argv: ["-Ln", "--rate"] },
  { argv: ["-Ln", "--exact", "--thresholds"] },
  { argv: ["-Ln", "--nosort"] },
  { argv: ["-Sn"] },
  { argv: ["-S"] },
  { argv: ["-Ln"], json: true },
  { argv: ["-Sn"], json: true },
];

test("whole-table listings read on the worker and printed on the main thread are byte for byte lvsd's in one thread", async () => {
  const text = MIXED + reversedRules(700, 3);
  await withReference(async (reference) => {
    const ref = await reference.command({ argv: ["-R"], stdin: text });
    assert.equal(ref.exitCode, 0, ref.stderr);
    await withHost(1, undefined, async (host) => {
      const restored = await host.command({ argv: ["-R"], stdin: text });
      assert.equal(restored.exitCode, 0, restored.stderr);
      for (const request of LISTINGS) {
        const want = await reference.command(request);
        const got = await host.command(request);
        assert.equal(got.exitCode, 0, got.stderr);
        assert.ok(got.stdout.length > 10_000, `${request.argv.join(" ")}: the whole table`);
        assert.equal(got.stdout, want.stdout, `${request.argv.join(" ")}${request.json ? " --json" : ""}`);
      }
    });
  });
});

test("two workers: -Sn is one worker's rules, -Ln the sum over both, in the same order and bytes", async () => {
  const text = MIXED + reversedRules(300, 2);
  await withReference(async (reference) => {
    const ref = await reference.command({ argv: ["-R"], stdin: text });
    assert.equal(ref.exitCode, 0, ref.stderr);
    await withHost(2, undefined, async (host) => {
      assert.equal((await host.command({ argv: ["-R"], stdin: text })).exitCode, 0);
      assert.equal((await host.command({ argv: ["-Sn"] })).stdout, (await reference.command({ argv: ["-Sn"] })).stdout);
      const [head, ...body] = (await host.command({ argv: ["-Ln"] })).stdout.split("\n");
      const [refHead, ...refBody] = (await reference.command({ argv: ["-Ln"] })).stdout.split("\n");
      assert.equal(body.join("\n"), refBody.join("\n"));
      // The connection tables of both workers: twice one daemon's.
      const size = (h: string) => Number(/size=(\d+)/.exec(h)?.[1]);
      assert.equal(size(head), 2 * size(refHead));
    });
  });
});

test("a restore that a worker refuses names its line and changes nothing, seen by every listing while it runs", async () => {
  await withHost(1, undefined, async (host, log) => {
    assert.equal((await host.command({ argv: ["-R"], stdin: MIXED })).exitCode, 0);
    const before = (await host.command({ argv: ["-Sn"] })).stdout;
    // Parses (so the main thread passes it on), but the worker's tables refuse its last line.
    const big = bigRules(3000, 3).replace(/-t 10\./g, "-t 11.");
    const lines = big.trimEnd().split("\n");
    const text = `${big}-a -t 11.0.0.0:80 -r 192.168.9.9:8080 -i -w 1\n`;
    const restore = host.command({ argv: ["-R"], stdin: text });
    let done = false;
    void restore.then(() => (done = true));
    let listings = 0;
    while (!done) {
      assert.equal((await host.command({ argv: ["-Sn"] })).stdout, before, "a listing during the refused restore");
      listings++;
    }
    const r = await restore;
    assert.equal(r.exitCode, 255);
    assert.match(r.stderr, new RegExp(`^line ${lines.length + 1}: destination 192\\.168\\.9\\.9: tunnelling \\(-i\\) needs the outer source address`));
    assert.equal(r.stderr.split("\n").length, 2, "one line");
    assert.ok(listings > 0);
    assert.equal((await host.command({ argv: ["-Sn"] })).stdout, before);
    assert.ok(log.some((l) => l.startsWith(`lvsadm -R: line ${lines.length + 1}: `)));
  });
});

test("-R of a text with -C, parsed on the main thread, replaces the configuration in every worker by difference", async () => {
  for (const workers of [1, 2]) {
    await withHost(workers, undefined, async (host, log) => {
      assert.equal((await host.command({ argv: ["-R"], stdin: MIXED + bigRules(200, 2) })).exitCode, 0);
      const wanted = `-C\n${bigRules(150, 3)}`;
      const r = await host.command({ argv: ["-R"], stdin: wanted });
      assert.equal(r.exitCode, 0, r.stderr);
      await withReference(async (reference) => {
        assert.equal((await reference.command({ argv: ["-R"], stdin: wanted })).exitCode, 0);
        assert.equal((await host.command({ argv: ["-Sn"] })).stdout, (await reference.command({ argv: ["-Sn"] })).stdout, `${workers} worker(s)`);
      });
      // Every worker holds it: the merged listing has each service once, with its three servers.
      const listing = (await host.command({ argv: ["-Ln"] })).stdout;
      assert.equal(listing.split("\n").filter((l) => l.startsWith("TCP")).length, 150);
      assert.equal(listing.split("\n").filter((l) => l.includes("-> 192.168.")).length, 450);
      assert.ok(log.some((l) => /lvsadm -R: ok$/.test(l)));
    });
  }
});

test("a restore the main thread cannot parse is refused there in the worker's words, with its line", async () => {
  await withHost(1, undefined, async (host, log) => {
    const text = `${bigRules(50, 2)}-a -t 10.0.0.1:80 -r 192.168.7.7:80 -m -w -3\n`;
    const line = text.trimEnd().split("\n").length;
    const r = await host.command({ argv: ["-R"], stdin: text });
    assert.deepEqual(r, { stdout: "", stderr: `line ${line}: illegal weight specified\n`, exitCode: 255 });
    assert.ok(log.includes(`lvsadm -R: line ${line}: illegal weight specified`));
    assert.equal((await host.command({ argv: ["-Sn"] })).stdout, "");
  });
});

test("a change sent while a restore is still being parsed on the main thread applies after it", async () => {
  await withHost(1, undefined, async (host) => {
    const restore = host.command({ argv: ["-R"], stdin: bigRules(4000, 3) });
    // Needs the restore's last service: refused ("Service not defined") if it overtook the restore.
    const add = host.command({ argv: ["-a", "-t", "10.0.15.159:80", "-r", "192.168.50.50:80", "-m"] });
    const [r, a] = await Promise.all([restore, add]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(a.exitCode, 0, a.stderr);
    assert.match((await host.command({ argv: ["-Ln", "-t", "10.0.15.159:80"] })).stdout, /192\.168\.50\.50:80/);
  });
});

test("a reload (parsed on the main thread) and listings interleaved: each service listed whole, as it was or as it becomes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ops-threads-"));
  try {
    const file = join(dir, "rules");
    const old = bigRules(3000, 3);
    // Every service changes: weights, and one destination replaced.
    const wanted = old.replace(/-w 1\n/g, "-w 4\n").replace(/-r 192\.168\.0\.3:8080/g, "-r 192.168.0.9:8080");
    writeFileSync(file, old);
    await withHost(1, file, async (host, log) => {
      assert.notEqual(await host.reload(), null, log.join("\n"));
      const blocks = (text: string) => text.split(/(?=^-A )/m);
      const oldBlocks = new Set(blocks((await host.command({ argv: ["-Sn"] })).stdout));
      assert.equal(oldBlocks.size, 3000);
      writeFileSync(file, wanted);
      const reload = host.reload();
      let done = false;
      void reload.then(() => (done = true));
      let mixed = false;
      let listings = 0;
      const seen: string[][] = [];
      while (!done) {
        seen.push(blocks((await host.command({ argv: ["-Sn"] })).stdout));
        listings++;
      }
      const summary = await reload;
      assert.ok(summary, log.join("\n"));
      assert.equal(summary.servicesAdded + summary.servicesRemoved + summary.servicesEdited, 0);
      assert.equal(summary.destinationsEdited, 3000 * 2);
      assert.equal(summary.destinationsAdded, 3000);
      assert.equal(summary.destinationsRemoved, 3000);
      const after = (await host.command({ argv: ["-Sn"] })).stdout;
      const newBlocks = new Set(blocks(after));
      for (const listing of seen) {
        assert.equal(listing.length, 3000, "every service in every listing");
        for (const b of listing) assert.ok(oldBlocks.has(b) || newBlocks.has(b), `a service half changed:\n${b}`);
        if (listing.some((b) => oldBlocks.has(b)) && listing.some((b) => newBlocks.has(b) && !oldBlocks.has(b))) mixed = true;
      }
      assert.ok(listings > 0);
      await withReference(async (reference) => {
        assert.equal((await reference.command({ argv: ["-R"], stdin: wanted })).exitCode, 0);
        assert.equal(after, (await reference.command({ argv: ["-Sn"] })).stdout, "the file, applied");
      });
      // Not asserted (timing), but worth knowing when it fails: did a listing land mid-reload?
      if (!mixed) console.log(`# no listing of ${listings} fell in the middle of the reload`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a reload whose file does not parse is refused on the main thread with its line; the worker's table is unchanged", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ops-threads-"));
  try {
    const file = join(dir, "rules");
    writeFileSync(file, MIXED);
    await withHost(1, file, async (host, log) => {
      assert.notEqual(await host.reload(), null);
      const before = (await host.command({ argv: ["-Sn"] })).stdout;
      writeFileSync(file, `${MIXED}-a -t 10.9.0.9:80 -r 192.168.0.4:8080 -m -w nosuch\n`);
      assert.equal(await host.reload(), null);
      assert.match(log.at(-1) ?? "", new RegExp(`^reload ${file} refused, configuration unchanged: line 11: `));
      assert.equal((await host.command({ argv: ["-Sn"] })).stdout, before);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
