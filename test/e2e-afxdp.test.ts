// LVS-NAT end to end over AF_XDP, through the real daemon: lvsd in the director namespace
// with an AF_XDP socket on each of its interfaces (--af-xdp eth0 --af-xdp eth1, native XDP
// on veth), configured with the real lvsadm CLI. Every frame that arrives on the director's
// interfaces is lvsd's: it answers the client's ARP for the VIP, finds the real servers by
// its own ARP probes, rewrites both directions and forwards at L2. The director's kernel
// sees none of those frames (not even ARP), so lvsd also answers ARP for the interfaces'
// own addresses: the real servers resolve their gateway (192.168.10.1, fd00:10::1) through
// it. Checked, over IPv4 and then IPv6: four curls answer RS2, RS1, RS2, RS1 (rr, newest
// first), the replies came back through lvsd; the UMEM is the wasm memory, and SIGTERM
// detaches the XDP programs. Also: lvsd's
// one-line refusals (no such interface, no libxdp, --workers 2).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createLab, curl, httpUrl, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { disableTxChecksumOffload } from "../src/runtime/ethernet.js";
import { parseLvsdArgs } from "../src/runtime/lvsd-options.js";
import { LVSD_CLI, TSX_LOADER, lvsadmRaw, lvsdCounters, serviceStats, startLvsd, waitForLvsdLog, type RunningLvsd } from "../src/demo/support.js";
import { IN_CI } from "./support/tools.js";
import { execFileSync } from "node:child_process";
import { IoLab } from "./support/io-lab.js";

function libxdpSkip(): false | string {
  try {
    execFileSync("sh", ["-c", "ldconfig -p | grep -q 'libxdp.so.1 '"], { stdio: "ignore" });
    return false;
  } catch {
    const why = "libxdp.so.1 is not installed (apt-get install libxdp1)";
    if (IN_CI) throw new Error(`required library missing in CI: ${why}`);
    console.warn(`SKIPPED: ${why}`);
    return `SKIPPED: ${why}`;
  }
}

const skip = labSkip("curl") || libxdpSkip();

const xdpOn = async (lab: Lab, ifname: string) => {
  const r = await lab.exec("director", "ip", ["-d", "link", "show", ifname]);
  return /prog\/xdp /.test(r.stdout);
};

test("NAT through lvsd over AF_XDP (--af-xdp eth0 --af-xdp eth1), IPv4 and IPv6: ARP / ND by lvsd, rr RS2/RS1/RS2/RS1, replies back through it, programs detached on SIGTERM", {
  skip,
  timeout: 120_000,
}, async () => {
  let lab: Lab | undefined;
  let lvsd: RunningLvsd | undefined;
  try {
    lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false, ipv6: true });
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2")]);
    // Whole checksums on the frames lvsd rewrites (docs/io.md: no virtio-net header on AF_XDP).
    for (const ns of [lab.ns("client"), rs1.ns, rs2.ns]) disableTxChecksumOffload(ns, "eth0");
    // The client finds the VIP, and the real servers their gateway, by ARP answered by lvsd.
    await lab.exec("client", "ip", ["neigh", "del", vip, "dev", "eth0"]).catch(() => null);
    await lab.exec("client", "ip", ["-6", "neigh", "del", lab.vip!.v6!, "dev", "eth0"]).catch(() => null);
    for (const rs of [rs1, rs2]) {
      await lab.exec(rs.name, "ip", ["neigh", "flush", "dev", "eth0"]);
      await lab.exec(rs.name, "ip", ["-6", "neigh", "flush", "dev", "eth0"]);
    }
    lvsd = await startLvsd(lab, [
      ...["--af-xdp", "eth0", "--af-xdp", "eth1"],
      ...["--route", "10.0.0.0/24=eth0", "--route", "fd00::/64=eth0", "--route", "192.168.10.0/24=eth1", "--route", "fd00:10::/64=eth1"],
    ]);
    assert.match(lvsd.log(), /af-xdp eth0: XDP program attached; UMEM in the wasm memory/);
    assert.match(lvsd.log(), /af-xdp eth1: XDP program attached; UMEM in the wasm memory/);
    assert.match(lvsd.log(), /af-xdp eth1: answering ARP \/ ND for its own addresses 192\.168\.10\.1\b/);
    assert.ok((await xdpOn(lab, "eth0")) && (await xdpOn(lab, "eth1")), "native XDP programs on both interfaces");
    const lvsadm = async (args: string[]) => {
      const r = await lvsadmRaw(lvsd!.socket, args);
      assert.equal(r.code, 0, `lvsadm ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    await lvsadm(["-A", "-t", `${vip}:80`, "-s", "rr"]);
    for (const rs of [rs1, rs2]) await lvsadm(["-a", "-t", `${vip}:80`, "-r", `${rs.eth0.ipv4}:80`, "-m", "-w", "1"]);
    for (const rs of [rs1, rs2]) await waitForLvsdLog(lvsd, new RegExp(`neighbour ${rs.eth0.ipv4.replace(/\./g, "\\.")} is at ${rs.eth0.mac} \\(eth1\\)`));

    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await curl(lab, "client", httpUrl(vip), { timeoutMs: 10_000 });
      assert.equal(r.status, 200, `request ${i + 1}`);
      bodies.push(r.body.trim());
    }
    assert.deepEqual(bodies, ["RS2", "RS1", "RS2", "RS1"]);
    const neigh = await lab.exec("client", "ip", ["neigh", "show", vip, "dev", "eth0"]);
    assert.match(neigh.stdout, new RegExp(`lladdr ${lab.director.front.mac}`), "the client's kernel took lvsd's ARP answer for the VIP");
    for (const rs of [rs1, rs2]) {
      const gw = await lab.exec(rs.name, "ip", ["neigh", "show", lab.director.back.ipv4, "dev", "eth0"]);
      assert.match(gw.stdout, new RegExp(`lladdr ${lab.director.back.mac}`), `${rs.name} resolved its gateway by lvsd's ARP answer`);
      assert.doesNotMatch(gw.stdout, /PERMANENT/);
    }

    // IPv6: neighbour discovery for the VIP, the real servers and their gateway, all by lvsd.
    const vip6 = lab.vip!.v6!;
    await lvsadm(["-A", "-t", `[${vip6}]:80`, "-s", "rr"]);
    for (const rs of [rs1, rs2]) await lvsadm(["-a", "-t", `[${vip6}]:80`, "-r", `[${rs.eth0.ipv6}]:80`, "-m", "-w", "1"]);
    for (const rs of [rs1, rs2]) await waitForLvsdLog(lvsd, new RegExp(`neighbour ${rs.eth0.ipv6!.replace(/\./g, "\\.")} is at ${rs.eth0.mac} \\(eth1\\)`));
    const bodies6: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await curl(lab, "client", httpUrl(vip6), { timeoutMs: 10_000 });
      assert.equal(r.status, 200, `IPv6 request ${i + 1}`);
      bodies6.push(r.body.trim());
    }
    assert.deepEqual(bodies6, ["RS2", "RS1", "RS2", "RS1"], "IPv6");
    for (const rs of [rs1, rs2]) {
      const gw = await lab.exec(rs.name, "ip", ["-6", "neigh", "show", lab.director.back.ipv6!, "dev", "eth0"]);
      assert.match(gw.stdout, new RegExp(`lladdr ${lab.director.back.mac}`), `${rs.name} resolved its IPv6 gateway by lvsd's neighbour advertisement`);
    }

    const stats = serviceStats(await lvsadm(["-Ln", "-t", `${vip}:80`, "--stats", "--exact"]));
    assert.equal(stats.conns, 4);
    assert.ok(stats.inpkts >= 4 * 3, `client packets went through lvsd (${stats.inpkts})`);
    assert.ok(stats.outpkts >= 4 * 2, `NAT: the replies came back through lvsd (${stats.outpkts})`);
    const counters = await lvsdCounters(lvsd);
    const m = /send failures (\d+);.* af-xdp drops (\d+) \(pool empty \d+\), tx kicks (\d+);/.exec(counters);
    assert.ok(m, counters);
    assert.equal(Number(m[1]), 0, counters);
    assert.equal(Number(m[2]), 0, `no frame dropped at the sockets: ${counters}`);
    assert.ok(Number(m[3]) > 0, `the TX ring was kicked: ${counters}`);

    assert.equal(await lvsd.stop(), 0, "lvsd exits 0 on SIGTERM");
    assert.ok(!(await xdpOn(lab, "eth0")) && !(await xdpOn(lab, "eth1")), "SIGTERM detached both XDP programs");
  } finally {
    if (lvsd && !lvsd.process.hasExited) await lvsd.stop().catch(() => null);
    await lab?.destroy();
  }
});

test("lvsd --af-xdp refusals: one line each (no such interface, no libxdp, a device without native XDP; --workers 2 at parse time)", {
  skip,
  timeout: 60_000,
}, async () => {
  assert.throws(
    () => parseLvsdArgs(["--af-xdp", "eth0", "--workers", "2"]),
    /^ConfigError: --af-xdp runs one worker \(one socket on queue 0\): --workers 2 is not supported with it$/,
  );
  assert.throws(() => parseLvsdArgs(["--tun", "lvs0", "--af-xdp", "eth0"]), /--tun and --af-xdp exclude each other/);
  assert.throws(() => parseLvsdArgs(["--af-xdp", "eth0", "--af-packet", "eth0"]), /an interface is named twice/);
  const parsed = parseLvsdArgs(["--af-xdp", "eth0", "--af-packet", "eth1", "--server-side", "eth1"]);
  assert.ok(!parsed.help);
  assert.deepEqual(parsed.adapters, [
    { kind: "af-xdp", interface: "eth0" },
    { kind: "af-packet", interface: "eth1" },
  ]);
  assert.equal(parsed.workers, 1, "one worker unless told otherwise");

  const lab = new IoLab();
  try {
    const ns = lab.ns("d");
    lab.veth(ns, "v0", null, ns, "v1", null);
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ["--import", TSX_LOADER, LVSD_CLI, "--netns", ns, ...args, "--workers", "1", "--socket", `/tmp/lvsd-xdp-${process.pid}.sock`],
          { env: { ...process.env, ...env }, timeout: 30_000 },
          (error, _stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr }),
        );
      });
    const cannot = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("lvsd: cannot start"));
    const [missing, noLib, lo] = await Promise.all([
      run(["--af-xdp", "nope0"]),
      run(["--af-xdp", "v0"], { LVS_WASM_LIBXDP: "/nonexistent/libxdp.so.1" }),
      run(["--af-xdp", "lo"]),
    ]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.deepEqual(cannot(missing.stderr), ["lvsd: cannot start: ENODEV looking up interface nope0: no such interface in this network namespace"]);
    assert.equal(noLib.code, 1, noLib.stderr);
    assert.equal(cannot(noLib.stderr).length, 1, noLib.stderr);
    assert.match(
      cannot(noLib.stderr)[0],
      /^lvsd: cannot start: AF_XDP needs libxdp: \/nonexistent\/libxdp\.so\.1 could not be loaded \(apt-get install libxdp1\)/,
    );
    assert.equal(lo.code, 1, lo.stderr);
    assert.deepEqual(cannot(lo.stderr), [
      "lvsd: cannot start: ENOTSUP AF_XDP lo: creating the socket on queue 0 and attaching the XDP program (native mode): the driver has no native XDP: try generic mode",
    ]);
    assert.doesNotMatch(lab.ip(ns, "-d", "link", "show"), /prog\/xdp/, "nothing stays attached");
  } finally {
    lab.destroy();
  }
});
