// lvsd without devices or privileges: the rule diff a reload applies, a daemon over an
// in-memory adapter whose flow survives a reload that edits, removes and adds services and
// destinations, a refused reload that changes nothing, the control socket (commands, a
// garbage request), a clean stop, and the command line. The daemon in namespaces with real
// traffic is test/e2e-nat.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRules } from "../src/admin/rules.js";
import { sendCommand } from "../src/admin/control-client.js";
import { MemoryPacketIO } from "../src/io/packet-io.js";
import { Lvsd } from "../src/runtime/lvsd.js";
import { parseLvsdArgs } from "../src/runtime/lvsd-options.js";
import { diffRules } from "../src/runtime/rule-diff.js";
import { buildPacket } from "../src/testing/packets.js";
import { until } from "./support/io-lab.js";

const CLI = new URL("../src/runtime/lvsd-cli.ts", import.meta.url).pathname;
const dst = (p: Uint8Array) => [...p.subarray(16, 20)].join(".");

test("diffRules: removals, then edits, then additions, each as the ipvsadm line that does it", () => {
  const current = parseRules(
    [
      "-A -t 10.0.0.1:80 -s rr",
      "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1",
      "-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1",
      "-A -u 10.0.0.1:53 -s rr",
      "-A -t 10.0.0.2:80 -s wlc",
    ].join("\n"),
  );
  const wanted = parseRules(
    [
      "-A -t 10.0.0.1:80 -s wlc",
      "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 3",
      "-a -t 10.0.0.1:80 -r 10.1.0.3:80 -m -w 1",
      "-A -t 10.0.0.2:80 -s wlc",
      "-A -t 10.0.0.3:443 -s rr -p 60",
      "-a -t 10.0.0.3:443 -r 10.1.0.1:443 -m -w 1",
    ].join("\n"),
  );
  assert.deepEqual(
    diffRules(current, wanted).map((c) => c.line),
    [
      "-D -u 10.0.0.1:53",
      "-d -t 10.0.0.1:80 -r 10.1.0.2:80",
      "-E -t 10.0.0.1:80 -s wlc",
      "-e -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 3",
      "-a -t 10.0.0.1:80 -r 10.1.0.3:80 -m -w 1",
      "-A -t 10.0.0.3:443 -s rr -p 60",
      "-a -t 10.0.0.3:443 -r 10.1.0.1:443 -m -w 1",
    ],
  );
  assert.deepEqual(diffRules(wanted, wanted), [], "no difference, no change");
});

test("lvsd over an in-memory adapter: a reload edits, removes and adds without dropping the open flow; a bad file changes nothing; the socket answers and survives garbage; stop closes everything", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lvsd-test-"));
  const rules = join(dir, "rules");
  const socket = join(dir, "run", "lvsd.sock");
  const lines: string[] = [];
  const io = new MemoryPacketIO("mem0");
  writeFileSync(
    rules,
    [
      "# the classic example",
      "-A -t 10.0.0.100:80 -s rr",
      "-a -t 10.0.0.100:80 -r 192.168.10.12:80 -m -w 1",
      "-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m -w 1",
      "-A -u 10.0.0.100:53 -s rr",
      "",
    ].join("\n"),
  );
  const daemon = await Lvsd.start({ rulesFile: rules, socketPath: socket, io: [io], balancer: { connections: 1024, slots: 16 }, log: (l) => lines.push(l) });
  try {
    assert.ok(lines.includes("apply -A -t 10.0.0.100:80 -s rr"), lines.join("\n"));
    assert.ok(
      lines.some((l) => /^rules .*: services \+2 -0 ~0, destinations \+2 -0 ~0$/.test(l)),
      lines.join("\n"),
    );

    // A flow: the SYN goes to RS1 (rr: added last, so at the head of the kernel's list).
    const syn = buildPacket({ protocol: "tcp", src: "10.0.0.2", dst: "10.0.0.100", sport: 40000, dport: 80, flags: "S" });
    io.inject(syn);
    assert.ok(await until(() => io.sent.length === 1, 2000), "the SYN was forwarded");
    assert.equal(dst(io.sent[0]), "192.168.10.11");
    const entries = daemon.balancer.connectionCount;

    // Reload: scheduler edited, RS1's weight edited, RS2 removed, RS3 added, the UDP
    // service removed, a new service added.
    writeFileSync(
      rules,
      [
        "-A -t 10.0.0.100:80 -s wlc",
        "-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m -w 5",
        "-a -t 10.0.0.100:80 -r 192.168.10.13:80 -m -w 1",
        "-A -t 10.0.0.100:443 -s rr",
        "-a -t 10.0.0.100:443 -r 192.168.10.11:443 -m -w 1",
        "",
      ].join("\n"),
    );
    const summary = await daemon.reload();
    assert.ok(summary);
    assert.deepEqual(
      [
        summary.servicesAdded,
        summary.servicesRemoved,
        summary.servicesEdited,
        summary.destinationsAdded,
        summary.destinationsRemoved,
        summary.destinationsEdited,
        summary.failed,
      ],
      [1, 1, 1, 2, 1, 1, 0],
    );
    assert.ok(
      lines.some((l) => /^reload .*: services \+1 -1 ~1, destinations \+2 -1 ~1; \d+ connection entries kept$/.test(l)),
      lines.join("\n"),
    );
    assert.equal(daemon.balancer.connectionCount, entries, "the connection table was not touched");
    const listing = await sendCommand(socket, ["-S", "-n"]);
    assert.equal(
      listing.stdout,
      [
        "-A -t 10.0.0.100:80 -s wlc",
        "-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m -w 5",
        "-a -t 10.0.0.100:80 -r 192.168.10.13:80 -m -w 1",
        "-A -t 10.0.0.100:443 -s rr",
        "-a -t 10.0.0.100:443 -r 192.168.10.11:443 -m -w 1",
        "",
      ].join("\n"),
    );

    // The open flow keeps its real server: its next packet follows the connection entry.
    io.inject(buildPacket({ protocol: "tcp", src: "10.0.0.2", dst: "10.0.0.100", sport: 40000, dport: 80, flags: "A" }));
    assert.ok(await until(() => io.sent.length === 2, 2000), "the ACK was forwarded");
    assert.equal(dst(io.sent[1]), "192.168.10.11");

    // A file that does not validate changes nothing and says why.
    writeFileSync(rules, "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m -w 99999\n");
    assert.equal(await daemon.reload(), null);
    assert.ok(
      lines.some((l) => /^reload .* refused, configuration unchanged: line 2: illegal weight specified$/.test(l)),
      lines.join("\n"),
    );
    assert.equal((await sendCommand(socket, ["-S", "-n"])).stdout, listing.stdout);
    // A scheduler the balancer does not know: refused by the validation, not half applied.
    writeFileSync(rules, "# a comment\n-A -t 10.0.0.100:80 -s nosuch\n");
    assert.equal(await daemon.reload(), null);
    assert.match(lines.at(-1)!, /^reload .* refused, configuration unchanged: line 2: .*nosuch/, "the refusal names the line");
    assert.equal((await sendCommand(socket, ["-S", "-n"])).stdout, listing.stdout);

    // The control socket: a refused command answers ipvsadm's words, a garbage request an
    // error, and the daemon goes on.
    const dup = await sendCommand(socket, ["-A", "-t", "10.0.0.100:80", "-s", "rr"]);
    assert.deepEqual([dup.exitCode, dup.stderr], [255, "Service already exists\n"]);
    assert.ok(lines.includes("lvsadm -A -t 10.0.0.100:80 -s rr: Service already exists"), lines.join("\n"));
    const garbage: string = await new Promise((resolve, reject) => {
      const s = createConnection(socket);
      let data = "";
      s.on("connect", () => s.end("{not json"));
      s.on("data", (d) => (data += d));
      s.on("end", () => resolve(data));
      s.on("error", reject);
    });
    assert.match(JSON.parse(garbage).stderr as string, /^lvsd: bad request/);
    assert.equal((await sendCommand(socket, ["-Ln"])).exitCode, 0);
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(existsSync(socket), false, "the socket is removed");
  assert.throws(() => io.receive(daemon.balancer.slots, 0, 1), /closed/, "the adapter is closed");
  assert.match(lines[lines.length - 1], /^packets received 2, forwarded 2, .*dropped 0.*; connections \d+$/);
});

test("lvsd command line: adapters, options, and one-line refusals", () => {
  assert.deepEqual(parseLvsdArgs(["--tun", "lvs0", "--netns", "d", "--rules", "/etc/lvs", "--socket=/tmp/s", "--mtu", "9000"]), {
    help: false,
    adapters: [{ kind: "tun", name: "lvs0", netns: "d", mtu: 9000 }],
    routes: [],
    rulesFile: "/etc/lvs",
    socketPath: "/tmp/s",
  });
  assert.deepEqual(parseLvsdArgs(["--af-packet", "eth0", "--af-packet", "eth1", "--route", "192.168.10.0/24=eth1", "--connections", "4096"]), {
    help: false,
    adapters: [
      { kind: "af-packet", interface: "eth0" },
      { kind: "af-packet", interface: "eth1" },
    ],
    routes: [{ prefix: "192.168.10.0/24", adapter: "eth1" }],
    balancer: { connections: 4096 },
  });
  assert.deepEqual(
    parseLvsdArgs(["--af-packet", "eth0", "--af-packet", "eth1", "--server-side", "eth1", "--isolate-vip", "192.168.10.100", "--isolate-vip=192.168.10.101"]),
    {
      help: false,
      adapters: [
        { kind: "af-packet", interface: "eth0" },
        { kind: "af-packet", interface: "eth1" },
      ],
      routes: [],
      serverSide: "eth1",
      isolateVips: ["192.168.10.100", "192.168.10.101"],
    },
  );
  assert.deepEqual(
    parseLvsdArgs(["--tun", "lvs0", "--tunnel-source4", "192.168.10.1", "--tunnel-source6", "fd00:10::1", "--tunnel-mtu", "1480", "--connections", "8"]),
    {
      help: false,
      adapters: [{ kind: "tun", name: "lvs0" }],
      routes: [],
      balancer: { connections: 8, director: { tunnelSource4: "192.168.10.1", tunnelSource6: "fd00:10::1", tunnelMtu: 1480 } },
    },
  );
  assert.deepEqual(parseLvsdArgs(["--tun", "lvs0", "--no-huge-pages"]), {
    help: false,
    adapters: [{ kind: "tun", name: "lvs0" }],
    routes: [],
    hugePages: false,
  });
  assert.deepEqual(parseLvsdArgs(["--tun", "lvs0", "--no-offload", "--txqueuelen", "1000"]), {
    help: false,
    adapters: [{ kind: "tun", name: "lvs0", offload: false, txQueueLength: 1000 }],
    routes: [],
  });
  assert.deepEqual(parseLvsdArgs(["--af-packet", "eth0", "--no-offload"]), {
    help: false,
    adapters: [{ kind: "af-packet", interface: "eth0", offload: false }],
    routes: [],
  });
  assert.deepEqual(parseLvsdArgs(["--tun", "lvs0", "--io-uring"]), {
    help: false,
    adapters: [{ kind: "tun", name: "lvs0", ioUring: true }],
    routes: [],
  });
  assert.deepEqual(parseLvsdArgs(["--tun", "x", "-h"]), { help: true });
  for (const [argv, message] of [
    [[], /an adapter is needed: --tun NAME or --af-packet IF/],
    [["--tun"], /^--tun needs a value/],
    [["--tun", "a", "--af-packet", "b"], /exclude each other/],
    [["--tun", "a", "--mtu", "20"], /^--mtu 20: expected an integer in 68\.\.65535$/],
    [["--tun", "a", "--route", "1.2.3.0/24=a"], /--route applies to --af-packet only/],
    [["--af-packet", "a", "--route", "1.2.3.0/24"], /expected PREFIX=IF/],
    [["--tun", "a", "--bogus"], /^unknown option --bogus \(see lvsd --help\)$/],
    [["--af-packet", "a", "--txqueuelen", "9"], /^--txqueuelen applies to --tun only$/],
    [["--af-packet", "a", "--io-uring"], /^--io-uring applies to --tun only \(AF_PACKET sockets have recvmmsg \/ sendmmsg already\)$/],
    [["--tun", "a", "--txqueuelen", "0"], /^--txqueuelen 0: expected an integer in 1\.\.1000000$/],
    [["--af-packet", "a", "--af-packet", "b", "--server-side", "c"], /^--server-side c: not one of the --af-packet interfaces$/],
    [["--af-packet", "a", "--server-side", "a"], /needs a second --af-packet interface/],
    [["--tun", "a", "--isolate-vip", "10.0.0.1"], /--isolate-vip applies to --af-packet only/],
    [["--af-packet", "a", "--isolate-vip", "10.0.0"], /^--isolate-vip 10\.0\.0: expected an IPv4 or IPv6 address$/],
    [["--tun", "a", "--tunnel-source4", "fd00::1"], /^--tunnel-source4 fd00::1: expected an IPv4 address$/],
    [["--tun", "a", "--tunnel-source6", "10.0.0.1"], /expected an IPv6 address/],
    [["--tun", "a", "--tunnel-mtu", "1400"], /--tunnel-mtu needs --tunnel-source4 or --tunnel-source6/],
    [["--tun", "a", "--tunnel-source4", "10.0.0.1", "--tunnel-mtu", "40"], /^--tunnel-mtu 40: expected an integer in 68\.\.65535$/],
  ] as const) {
    assert.throws(() => parseLvsdArgs(argv), { name: "ConfigError", message }, argv.join(" "));
  }
});

test("lvsd as a program: --help on stdout, a usage error in one line with exit 2", async () => {
  const runCli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", CLI, ...args], (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      });
    });
  const [help, bad] = await Promise.all([runCli(["--help"]), runCli(["--rules", "/nonexistent"])]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: lvsd \(--tun NAME/);
  assert.deepEqual([bad.code, bad.stdout, bad.stderr], [2, "", "lvsd: an adapter is needed: --tun NAME or --af-packet IF (see lvsd --help)\n"]);
});

test("lvsd --sysctl NAME=VALUE reaches the balancer (a mid-stream ACK is balanced with sloppy_tcp), lvsadm sysctl reads and sets them at run time; bad ones are one-line refusals", async () => {
  const parsed = parseLvsdArgs(["--tun", "lvs0", "--sysctl", "sloppy_tcp=1", "--sysctl=net.ipv4.vs.schedule_icmp=1"]);
  assert.ok(!parsed.help);
  assert.deepEqual(parsed.balancer, { sysctls: { sloppy_tcp: 1, schedule_icmp: 1 } });
  assert.throws(() => parseLvsdArgs(["--tun", "lvs0", "--sysctl", "sloppy_tcp=5"]), /^ConfigError: sysctl sloppy_tcp: 5 is not an integer in 0\.\.1$/);
  assert.throws(() => parseLvsdArgs(["--tun", "lvs0", "--sysctl", "bogus=1"]), /sysctl: unknown name "bogus"/);
  assert.throws(() => parseLvsdArgs(["--tun", "lvs0", "--sysctl", "sloppy_tcp"]), /is not NAME=VALUE/);

  const dir = mkdtempSync(join(tmpdir(), "lvsd-sysctl-"));
  const rules = join(dir, "rules");
  writeFileSync(rules, "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.10.11:80 -m -w 1\n");
  const io = new MemoryPacketIO("mem0");
  const socket = join(dir, "lvsd.sock");
  const lines: string[] = [];
  const daemon = await Lvsd.start({
    rulesFile: rules,
    socketPath: socket,
    io: [io],
    balancer: { connections: 64, slots: 4, ...parsed.balancer },
    log: (l) => lines.push(l),
  });
  try {
    assert.equal(daemon.balancer.sysctls().sloppy_tcp, 1);
    io.inject(buildPacket({ protocol: "tcp", src: "10.0.0.1", dst: "10.0.0.100", sport: 40000, dport: 80, flags: "PA" }));
    assert.ok(await until(() => io.sent.length === 1, 2000), "the mid-stream ACK was balanced");

    // lvsadm sysctl over the control socket: list, set (all or nothing), refuse in one line
    const list = await sendCommand(socket, ["sysctl"]);
    assert.equal(list.exitCode, 0);
    assert.match(list.stdout, /^net\.ipv4\.vs\.sloppy_tcp = 1$/m);
    assert.match(list.stdout, /^net\.ipv4\.vs\.amemthresh = 1024$/m);
    const set = await sendCommand(socket, ["sysctl", "sloppy_tcp=0", "secure_tcp=3"]);
    assert.deepEqual([set.exitCode, set.stdout], [0, "net.ipv4.vs.sloppy_tcp = 0\nnet.ipv4.vs.secure_tcp = 3\n"]);
    assert.deepEqual([daemon.balancer.sysctls().sloppy_tcp, daemon.balancer.sysctls().secure_tcp], [0, 3]);
    const bad = await sendCommand(socket, ["sysctl", "sloppy_tcp=1", "drop_packet=9"]);
    assert.deepEqual([bad.exitCode, bad.stderr], [2, "lvsadm: sysctl drop_packet: 9 is not an integer in 0..3\n"]);
    assert.equal(daemon.balancer.sysctls().sloppy_tcp, 0, "nothing of a refused command was set");
    assert.ok(lines.includes("lvsadm sysctl sloppy_tcp=0 secure_tcp=3: ok"), lines.join("\n"));
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
