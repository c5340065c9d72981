// lvsd --io-uring end to end (root, namespaces): LVS-NAT over a TUN device whose packets
// lvsd moves through io_uring (src/io/tun-uring.ts), with one worker and with two (each
// worker wraps its own queue of the multi-queue device). Proves:
//
// (a) the walkthrough's four curls answer from the VIP (with one worker in the kernel's
//     order RS2, RS1, RS2, RS1: rr, newest first), and a random file arrives byte for byte
//     (sha256);
// (b) the ring carries the packets: after a burst of UDP packets (batches larger than
//     SMALL_BATCH, which go through the ring), every worker's counters line says
//     "io_uring enters N" with N > 0; the GSO counters still count the download's
//     super-packets through the wrapper (tunDeviceOf);
// (c) a kernel that refuses io_uring (here: a seccomp filter failing io_uring_setup with
//     EPERM, as `sysctl kernel.io_uring_disabled=2` would for the whole host) gets one line
//     and exit status 1, with no TUN device and no control socket left behind.
//
// Mutants that must fail: lvsd ignoring ioUring (no "io_uring enters" part, (b)); a wrapper
// that always takes the plain read / write path (enters stay 0, (b)); the GSO counters read
// only from a bare TunDevice (super-packets in 0, (b)); the io_uring probe dropped (the
// device is created before the ring fails, or the error is not lvsd's one line, (c)).
// Tested on Linux 6.18.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lvsadmRaw, startLvsd, waitFor, type RunningLvsd } from "../src/demo/support.js";
import { LVSD_CLI, TSX_LOADER } from "../src/demo/support.js";
import { TunDevice } from "../src/io/tun.js";
import { UringTunDevice } from "../src/io/tun-uring.js";
import { startTunDirector } from "../src/runtime/tun-director.js";
import { createLab, curl, httpUrl, labSkip, type Lab, type LabProcess } from "./support/netns.js";

const skip = labSkip("curl");
const FILE_MIB = 16;

/** Answers its label on port 80, serves `file` on port 8000. */
const SERVER = `
const [label, host, file] = process.argv.slice(1);
const http = require("node:http"), fs = require("node:fs");
let up = 0;
const ready = () => { if (++up === 2) console.log("listening"); };
http.createServer((q, r) => r.end(label + "\\n")).listen(80, host, ready);
http.createServer((q, r) => {
  r.writeHead(200, { "content-length": fs.statSync(file).size });
  fs.createReadStream(file).pipe(r);
}).listen(8000, host, ready);
`;

/** A burst of UDP datagrams to VIP:PORT from 64 source ports (so that both queues of a multi-queue device get some). */
const BURST = `
import socket, sys
vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
for i in range(n):
    socks[i % 64].sendto(b"burst", (vip, port))
print("sent %d" % n)
`;

/** Runs the command after it with io_uring_setup failing EPERM (a seccomp filter, as a locked-down container has). */
const NO_IO_URING = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
IO_URING_SETUP = 425  # the same number on every architecture (new system calls share one table)
prog = b"".join([
    struct.pack("HBBI", 0x20, 0, 0, 0),                      # ld [nr]
    struct.pack("HBBI", 0x15, 0, 1, IO_URING_SETUP),         # jeq io_uring_setup
    struct.pack("HBBI", 0x06, 0, 0, 0x00050000 | 1),          # ret ERRNO(EPERM)
    struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000),              # ret ALLOW
])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0, os.strerror(ctypes.get_errno())  # PR_SET_SECCOMP, FILTER
os.execv(sys.argv[1], sys.argv[1:])
`;

/** SIGUSR1, then the counters lines (one per worker). */
async function counterLines(lvsd: RunningLvsd, workers: number): Promise<string[]> {
  const from = lvsd.log().length;
  process.kill(lvsd.process.pid, "SIGUSR1");
  let lines: string[] = [];
  await waitFor(
    "lvsd's counters lines",
    () => {
      lines = [
        ...lvsd
          .log()
          .slice(from)
          .matchAll(/^lvsd: (?:worker \d+: )?(packets received .*)$/gm),
      ].map((m) => m[1]);
      return lines.length >= workers;
    },
    5000,
  );
  return lines;
}

for (const workers of [1, 2]) {
  describe(`lvsd --io-uring --workers ${workers}, NAT over TUN`, { skip }, () => {
    let lab: Lab;
    let lvsd: RunningLvsd;
    let VIP: string;
    let RS1: string;
    let RS2: string;
    let expected: string;
    let dir: string;
    const servers: LabProcess[] = [];

    const lvsadm = async (args: string[]) => {
      const r = await lvsadmRaw(lvsd.socket, args);
      assert.equal(r.code, 0, `lvsadm ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };

    before(async () => {
      lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false });
      VIP = lab.vip!.v4;
      [RS1, RS2] = lab.realServers.map((r) => r.eth0.ipv4);
      dir = mkdtempSync(join(tmpdir(), "lvsd-io-uring-"));
      lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
      const data = randomBytes(FILE_MIB << 20);
      writeFileSync(join(dir, "random.bin"), data);
      expected = createHash("sha256").update(data).digest("hex");
      for (const [i, rs] of (["rs1", "rs2"] as const).entries()) {
        const server = lab.spawn(rs, process.execPath, ["-e", SERVER, rs.toUpperCase(), [RS1, RS2][i], join(dir, "random.bin")]);
        servers.push(server);
        await server.waitForOutput(/^listening$/m, 10_000);
      }
      lvsd = await startLvsd(lab, ["--tun", "lvs0", "--io-uring", "--workers", String(workers)]);
      await lab.exec("director", "ip", ["route", "add", `${VIP}/32`, "dev", "lvs0"]);
      await lab.exec("director", "ip", ["route", "add", "default", "dev", "lvs0", "table", "100"]);
      await lab.exec("director", "ip", ["rule", "add", "iif", "eth1", "lookup", "100"]);
    });

    after(async () => {
      await lvsd?.stop();
      for (const s of servers) await s.stop();
      await lab?.destroy();
    });

    test("the adapter line names io_uring and keeps the offloads", () => {
      const lines = lvsd.log().match(/^lvsd: (?:worker \d+: )?adapter tun lvs0 .*$/gm) ?? [];
      assert.equal(lines.length, workers, lvsd.log());
      for (const l of lines) assert.match(l, /; offloads: virtio-net header, csum tso4 tso6.*; io_uring$/);
    });

    test("(a) four curls answer from the VIP; a random file arrives byte for byte (sha256)", async () => {
      await lvsadm(["-A", "-t", `${VIP}:80`, "-s", "rr"]);
      await lvsadm(["-a", "-t", `${VIP}:80`, "-r", `${RS1}:80`, "-m"]);
      await lvsadm(["-a", "-t", `${VIP}:80`, "-r", `${RS2}:80`, "-m"]);
      const answers = [];
      for (let i = 0; i < 4; i++) {
        const r = await curl(lab, "client", httpUrl(VIP), { timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.equal(r.remote, `${VIP}:80`, "the reply came from the VIP");
        answers.push(r.body.trim());
      }
      // One worker: the kernel's rr order. Two: each worker schedules its own flows, so the
      // order depends on which queue each connection's hash picks.
      if (workers === 1) assert.deepEqual(answers, ["RS2", "RS1", "RS2", "RS1"]);
      else for (const a of answers) assert.ok(a === "RS1" || a === "RS2", a);
      await lvsadm(["-A", "-t", `${VIP}:8000`, "-s", "rr"]);
      await lvsadm(["-a", "-t", `${VIP}:8000`, "-r", `${RS1}:8000`, "-m"]);
      const r = await lab.exec("client", "bash", ["-o", "pipefail", "-c", `curl -sS --max-time 30 ${httpUrl(VIP, 8000, "/random.bin")} | sha256sum`], {
        timeoutMs: 40_000,
      });
      assert.equal(r.stdout.split(" ")[0], expected);
      const lines = await counterLines(lvsd, workers);
      const superIn = lines.reduce((n, l) => n + Number(/super-packets in (\d+)/.exec(l)?.[1] ?? 0), 0);
      assert.ok(superIn > 0, `the download came as GSO super-packets, counted through the wrapper: ${lines.join(" | ")}`);
    });

    test("(b) a burst goes through the ring: every worker's counters line shows io_uring enters > 0", async () => {
      // A UDP service (nobody listens: the real server answers ICMP port unreachable, a related packet).
      await lvsadm(["-A", "-u", `${VIP}:9`, "-s", "rr"]);
      await lvsadm(["-a", "-u", `${VIP}:9`, "-r", `${RS1}:9`, "-m"]);
      let lines: string[] = [];
      await waitFor(
        "io_uring enters on every worker",
        async () => {
          const sent = await lab.exec("client", "/usr/bin/python3", ["-c", BURST, VIP, "9", "4000"]);
          assert.equal(sent.stdout.trim(), "sent 4000");
          lines = await counterLines(lvsd, workers);
          return lines.length === workers && lines.every((l) => Number(/io_uring enters (\d+)/.exec(l)?.[1] ?? 0) > 0);
        },
        30_000,
      ).catch((e: Error) => assert.fail(`${e.message}: ${lines.join(" | ")}`));
      for (const l of lines) assert.match(l, /io_uring enters \d+, plain batches \d+; /);
    });

    test("(c) a kernel that refuses io_uring: one line, exit 1, no device and no socket left", async () => {
      const socket = join(dir, "refused.sock");
      const proc = lab.spawn("director", "/usr/bin/python3", [
        "-c",
        NO_IO_URING,
        process.execPath,
        "--import",
        TSX_LOADER,
        LVSD_CLI,
        ...["--tun", "lvsnoring", "--io-uring", "--workers", String(workers), "--socket", socket],
      ]);
      const { code } = await proc.exited;
      assert.equal(code, 1, proc.output());
      const errors = proc.output().match(/^lvsd: cannot start: .*$/gm) ?? [];
      assert.equal(errors.length, 1, proc.output());
      assert.match(errors[0], /io_uring_setup failed \(EPERM\): io_uring is disabled \(sysctl kernel\.io_uring_disabled\) or not permitted/);
      assert.doesNotMatch(proc.output(), /adapter tun|ready/, "nothing started");
      const links = (await lab.exec("director", "ip", ["-o", "link", "show"])).stdout;
      assert.doesNotMatch(links, /lvsnoring/, "no TUN device was created");
      assert.equal(existsSync(socket), false, "no control socket");
    });

    // In-process, not lvsd: one run (in the one-worker suite) covers it.
    if (workers !== 1) return;
    test("startTunDirector({ ioUring }): io_uring moves the packets, `device` is the TunDevice behind it", async () => {
      const d = await startTunDirector({
        netns: lab.director.ns,
        device: "lvsring",
        vips: ["10.99.0.1"],
        tunnelSource4: lab.director.back.ipv4,
        ioUring: true,
      });
      try {
        const io = d.daemon.io[0];
        assert.ok(io instanceof UringTunDevice, "the adapter is the io_uring one");
        assert.ok(d.device instanceof TunDevice);
        assert.equal(d.device, io.tun);
        assert.match(d.daemon.statsLine(), /super-packets in \d+, out \d+, cut \d+; io_uring enters \d+, plain batches \d+; /);
      } finally {
        await d.stop();
      }
    });
  });
}
