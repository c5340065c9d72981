// Acceptance of the namespace lab (src/lab, docs/lab.md): every topology builds and carries
// traffic the way its mode needs, DR's VIP on lo is never answered in ARP/ND, and a lab
// that dies half-built (an exception, SIGTERM, SIGKILL, an uncaught exception) leaves no
// namespace behind.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createLab,
  curl,
  httpUrl,
  listLabNamespaces,
  cleanupStaleLabs,
  ping,
  startHttpServer,
  startUdpEcho,
  udpRequest,
  whoHas,
  labSkip,
  type Lab,
} from "./support/netns.js";

const SKIP = { skip: labSkip("curl") };
const SKIP_SCAPY = { skip: labSkip("curl", "scapy") };

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LAB_MODULE = pathToFileURL(fileURLToPath(new URL("../src/lab/index.ts", import.meta.url))).href;

const ofPid = (pid: number) => listLabNamespaces().filter((ns) => ns.startsWith(`lvsw-${pid}-`));

async function sysctl(lab: Lab, host: Parameters<Lab["exec"]>[0], key: string): Promise<string> {
  return (await lab.exec(host, "cat", [`/proc/sys/${key.replace(/\./g, "/")}`])).stdout.trim();
}

/** Makes the director's kernel play a DR/TUN balancer for one RS: the VIP stays local (it
 * still answers ARP), but client TCP/UDP to it is routed, unchanged, to the real server's MAC. */
async function kernelForwardsVipTo(lab: Lab, rip: string): Promise<void> {
  const vip = lab.vip!.v4;
  for (const args of [
    ["rule", "add", "pref", "100", "lookup", "local"],
    ["rule", "del", "pref", "0"],
    ["rule", "add", "pref", "10", "iif", "eth0", "to", `${vip}/32`, "ipproto", "tcp", "lookup", "100"],
    ["rule", "add", "pref", "11", "iif", "eth0", "to", `${vip}/32`, "ipproto", "udp", "lookup", "100"],
    ["route", "add", `${vip}/32`, "via", rip, "dev", "eth1", "table", "100"],
  ])
    await lab.exec("director", "ip", args);
}

/** True once `pid` is gone (or a zombie waiting for its reaper). */
async function waitGone(pid: number, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let state: string | null = null;
    try {
      state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0] ?? null;
    } catch {
      return true;
    }
    if (state === "Z") return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("router lab: the client reaches both real servers through a plain kernel router (IPv4 and IPv6)", SKIP, async () => {
  const lab = await createLab({ mode: "router", realServers: 2, ipv6: true });
  try {
    assert.equal(lab.vip, null);
    assert.equal(lab.target.v4, lab.realServers[0]!.eth0.ipv4);
    assert.match(lab.id, new RegExp(`^lvsw-${process.pid}-\\d+$`));
    assert.equal(new Set([...lab.hosts.values()].map((h) => h.ns)).size, lab.hosts.size);
    assert.deepEqual(
      lab.realServers.map((r) => [r.label, r.eth0.ipv4, r.eth0.ipv6]),
      [
        ["RS1", "192.168.10.11", "fd00:10::11"],
        ["RS2", "192.168.10.12", "fd00:10::12"],
      ],
    );
    // The MACs the lab reports are the ones the kernel has.
    const link = JSON.parse((await lab.exec("rs2", "ip", ["-j", "link", "show", "eth0"])).stdout) as Array<{ address: string }>;
    assert.equal(link[0]!.address, lab.realServers[1]!.eth0.mac);
    assert.equal(await sysctl(lab, "director", "net.ipv4.ip_forward"), "1");
    assert.equal(await sysctl(lab, "client", "net.ipv4.ip_local_port_range").then((s) => s.split(/\s+/).join(" ")), "1024 65535");
    assert.equal(await sysctl(lab, "client", "net.ipv4.tcp_tw_reuse"), "1");

    await Promise.all(lab.realServers.map((rs) => startHttpServer(lab, rs.name, { bigMiB: 4 })));
    await startUdpEcho(lab, "rs2");
    for (const rs of lab.realServers) {
      assert.equal((await ping(lab, "client", rs.eth0.ipv4)).received, 1, `ping ${rs.eth0.ipv4}`);
      assert.equal((await ping(lab, "client", rs.eth0.ipv6!)).received, 1, `ping ${rs.eth0.ipv6}`);
      for (const addr of [rs.eth0.ipv4, rs.eth0.ipv6!]) {
        const r = await curl(lab, "client", httpUrl(addr));
        assert.deepEqual([r.status, r.body], [200, `${rs.label}\n`], addr);
      }
    }
    // Nobody holds this address: the ping must come back empty (the check can fail).
    assert.equal((await ping(lab, "client", "192.168.10.99", { timeoutMs: 300 })).received, 0);
    const big = await curl(lab, "client", httpUrl("192.168.10.11", 80, "/big"), { discardBody: true });
    assert.deepEqual([big.status, big.sizeDownload], [200, 4 * 1024 * 1024]);
    assert.equal((await udpRequest(lab, "client", "192.168.10.12", 7)).reply, "RS2\n");
  } finally {
    await lab.destroy();
  }
  assert.deepEqual(ofPid(process.pid), []);
});

test("nat lab: VIP on the director, real servers route back through it, ICMP redirects off", SKIP, async () => {
  const lab = await createLab({ mode: "nat", realServers: 2, backup: true });
  try {
    assert.deepEqual(lab.vip, { v4: "10.0.0.100", v6: null });
    const routes = (await lab.exec("rs1", "ip", ["route", "show", "default"])).stdout;
    assert.match(routes, /default via 192\.168\.10\.1 dev eth0/);
    assert.equal(await sysctl(lab, "director", "net.ipv4.ip_forward"), "1");
    assert.equal(await sysctl(lab, "director", "net.ipv4.conf.eth0.send_redirects"), "0");
    assert.equal(await sysctl(lab, "director", "net.ipv4.conf.all.send_redirects"), "0");
    assert.equal((await ping(lab, "client", lab.vip!.v4)).received, 1, "the director answers for the VIP");
    // The backup director sits on both segments.
    assert.equal((await ping(lab, "client", lab.backup!.front.ipv4)).received, 1);
    assert.equal((await ping(lab, "rs2", lab.backup!.back.ipv4)).received, 1);
    await startHttpServer(lab, "rs2", { impl: "node" });
    assert.equal((await curl(lab, "client", httpUrl("192.168.10.12"))).body, "RS2\n");
  } finally {
    await lab.destroy();
  }
});

test("nat lab without the VIP on the director: the client sends VIP frames to the director's MAC", SKIP, async () => {
  const lab = await createLab({ mode: "nat", realServers: 1, vipOnDirector: false });
  try {
    const addrs = (await lab.exec("director", "ip", ["-br", "addr", "show", "eth0"])).stdout;
    assert.doesNotMatch(addrs, /10\.0\.0\.100/);
    const neigh = (await lab.exec("client", "ip", ["neigh", "show", "10.0.0.100"])).stdout;
    assert.match(neigh, new RegExp(`lladdr ${lab.director.front.mac} PERMANENT`));
  } finally {
    await lab.destroy();
  }
});

test("dr lab: real servers hold the VIP on lo and never answer ARP or ND for it; DR forwarding works", SKIP_SCAPY, async () => {
  const lab = await createLab({ mode: "dr", realServers: 2, ipv6: true });
  try {
    assert.deepEqual(lab.vip, { v4: "192.168.10.100", v6: "fd00:10::100" });
    for (const rs of lab.realServers) {
      assert.equal(rs.vipOnLo, true);
      assert.match((await lab.exec(rs.name, "ip", ["-br", "addr", "show", "lo"])).stdout, /192\.168\.10\.100\/32 .*fd00:10::100\/128/);
      assert.equal(await sysctl(lab, rs.name, "net.ipv4.conf.all.arp_ignore"), "1");
      assert.equal(await sysctl(lab, rs.name, "net.ipv4.conf.all.arp_announce"), "2");
    }
    const [vip, vip6, rip1, rip2] = ["192.168.10.100", "fd00:10::100", "192.168.10.11", "192.168.10.12"];
    const seen = await whoHas(lab, "director", "eth1", [vip, vip6, rip1, rip2], 400);
    assert.deepEqual(seen[vip], [], "no real server answers ARP for the VIP");
    assert.deepEqual(seen[vip6], [], "no real server answers ND for the VIP");
    assert.deepEqual(seen[rip1], [lab.realServers[0]!.eth0.mac], "RS1 answers ARP for its own address");
    assert.deepEqual(seen[rip2], [lab.realServers[1]!.eth0.mac]);
    // The probe can see a misconfigured real server: RS2 without arp_ignore answers.
    lab.sysctl("rs2", "net.ipv4.conf.all.arp_ignore", 0);
    lab.sysctl("rs2", "net.ipv4.conf.eth0.arp_ignore", 0);
    assert.deepEqual((await whoHas(lab, "director", "eth1", [vip], 400))[vip], [lab.realServers[1]!.eth0.mac]);

    // Direct replies from the VIP pass the director (their gateway) though it owns the VIP too.
    const rx = lab.spawn("client", "/usr/bin/python3", [
      "-u",
      "-c",
      "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('10.0.0.2',9999));print('ready')\nprint(s.recvfrom(64))",
    ]);
    await rx.waitForOutput(/ready/);
    await lab.exec("rs1", "/usr/bin/python3", [
      "-c",
      `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('${vip}',0));s.sendto(b'direct',('10.0.0.2',9999))`,
    ]);
    await rx.waitForOutput(/b'direct', \('192\.168\.10\.100'/, 3000);

    // The kernel as a DR balancer: client -> VIP goes to RS1's MAC, RS1 answers from the VIP.
    await startHttpServer(lab, "rs1");
    await startUdpEcho(lab, "rs1");
    await kernelForwardsVipTo(lab, rip1);
    const r = await curl(lab, "client", httpUrl(vip), { timeoutMs: 3000 });
    assert.deepEqual([r.status, r.body, r.remote], [200, "RS1\n", `${vip}:80`]);
    assert.deepEqual(await udpRequest(lab, "client", vip, 7), { reply: "RS1\n", from: vip, port: 7 });
  } finally {
    await lab.destroy();
  }
});

test("tun lab: real servers accept packets to the VIP (VIP on lo, rp_filter off) and reply from it", SKIP, async () => {
  const lab = await createLab({ mode: "tun", realServers: 2 });
  try {
    assert.deepEqual(lab.vip, { v4: "10.0.0.100", v6: null });
    for (const rs of lab.realServers) {
      assert.equal(await sysctl(lab, rs.name, "net.ipv4.conf.all.rp_filter"), "0");
      assert.equal(await sysctl(lab, rs.name, "net.ipv4.conf.default.rp_filter"), "0");
      assert.equal(await sysctl(lab, rs.name, "net.ipv4.conf.eth0.rp_filter"), "0");
      assert.match((await lab.exec(rs.name, "ip", ["-br", "addr", "show", "lo"])).stdout, /10\.0\.0\.100\/32/);
    }
    assert.equal(await sysctl(lab, "director", "net.ipv4.conf.all.accept_local"), "1");
    await startHttpServer(lab, "rs2");
    await startUdpEcho(lab, "rs2");
    await kernelForwardsVipTo(lab, "192.168.10.12");
    const r = await curl(lab, "client", httpUrl(lab.vip!.v4), { timeoutMs: 3000 });
    assert.deepEqual([r.status, r.body], [200, "RS2\n"]);
    assert.deepEqual(await udpRequest(lab, "client", lab.vip!.v4, 7), { reply: "RS2\n", from: lab.vip!.v4, port: 7 });
  } finally {
    await lab.destroy();
  }
});

test("destroy kills the lab's processes, is idempotent, and the lab refuses work afterwards", SKIP, async () => {
  const lab = await createLab({ mode: "router", realServers: 1 });
  const sleeper = lab.spawn("rs1", "sleep", ["300"]);
  // A process started with exec that outlives it is found by the namespace sweep.
  await lab.exec("rs1", "sh", ["-c", "sleep 300 >/dev/null 2>&1 &"]);
  const pids = execFileSync("ip", ["netns", "pids", lab.ns("rs1")], { encoding: "utf8" })
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  assert.ok(pids.length >= 2, `expected two sleeps in rs1, got ${pids.join(",")}`);
  await lab.destroy();
  await lab.destroy();
  lab.destroySync();
  assert.equal(lab.destroyed, true);
  assert.ok(sleeper.hasExited);
  for (const pid of pids) assert.ok(await waitGone(pid), `pid ${pid} still alive`);
  assert.throws(() => lab.spawn("rs1", "true"), /destroyed/);
  await assert.rejects(lab.exec("rs1", "true"), /destroyed/);
  assert.deepEqual(ofPid(process.pid), []);
});

test("a build that throws half-way removes everything it made", SKIP, async () => {
  const steps: string[] = [];
  await assert.rejects(
    createLab({
      mode: "dr",
      realServers: 2,
      backup: true,
      onStep(step) {
        steps.push(step);
        if (step === "links:rs1") {
          assert.ok(ofPid(process.pid).length >= 5, "namespaces exist before the fault");
          throw new Error("injected fault");
        }
      },
    }),
    /injected fault/,
  );
  assert.ok(steps.includes("links:backup"), steps.join(" "));
  assert.deepEqual(ofPid(process.pid), []);
  await assert.rejects(createLab({ mode: "nat", realServers: 0 }), /realServers must be an integer in 1\.\.50/);
  await assert.rejects(createLab({ mode: "lvs" as "nat" }), /mode must be/);
  assert.deepEqual(ofPid(process.pid), []);
});

/** Starts a child that builds a lab and parks at `links:rs1` (or throws there). */
function childLab(behaviour: "park" | "throw") {
  const code = `
    import { createLab } from ${JSON.stringify(LAB_MODULE)};
    const lab = await createLab({ mode: "nat", realServers: 2, backup: true, onStep: async (step) => {
      if (step !== "links:rs1") return;
      console.log("MIDBUILD");
      ${behaviour === "throw" ? `setTimeout(() => { throw new Error("child crashes mid-build"); }, 10);` : ""}
      await new Promise((r) => setTimeout(r, 60_000));
    } });
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
  const midBuild = new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes("MIDBUILD")) {
        clearInterval(t);
        resolve();
      }
    }, 10);
    void exited.then(() => {
      clearInterval(t);
      if (!out.includes("MIDBUILD")) reject(new Error(`child exited before mid-build:\n${out}`));
    });
  });
  return { child, exited, midBuild, output: () => out };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`${signal} to a process building a lab: its handler removes every namespace`, SKIP, async () => {
    const c = childLab("park");
    try {
      await c.midBuild;
      assert.ok(ofPid(c.child.pid!).length >= 4, `namespaces mid-build: ${ofPid(c.child.pid!).join(" ")}`);
      c.child.kill(signal);
      const how = await c.exited;
      assert.equal(how.signal, signal, `the child dies of ${signal} as it would without the lab:\n${c.output()}`);
      assert.deepEqual(ofPid(c.child.pid!), []);
    } finally {
      c.child.kill("SIGKILL");
      cleanupStaleLabs();
    }
  });
}

test("an uncaught exception in a process building a lab removes its namespaces", SKIP, async () => {
  const c = childLab("throw");
  try {
    await c.midBuild;
    const how = await c.exited;
    assert.notEqual(how.code, 0);
    assert.match(c.output(), /child crashes mid-build/);
    assert.deepEqual(ofPid(c.child.pid!), []);
  } finally {
    c.child.kill("SIGKILL");
    cleanupStaleLabs();
  }
});

test("SIGKILL mid-build leaves namespaces that cleanupStaleLabs (run by every createLab) removes", SKIP, async () => {
  const c = childLab("park");
  try {
    await c.midBuild;
    c.child.kill("SIGKILL");
    await c.exited;
    const left = ofPid(c.child.pid!);
    assert.ok(left.length >= 4, `SIGKILL cannot be handled: namespaces stay (${left.join(" ")})`);
    // A live run's labs are not touched: build one and check it survives the clean-up.
    const mine = await createLab({ mode: "router", realServers: 1 }); // calls cleanupStaleLabs itself
    try {
      assert.deepEqual(ofPid(c.child.pid!), []);
      assert.equal(cleanupStaleLabs().length, 0);
      assert.ok(ofPid(process.pid).length > 0);
      assert.equal((await ping(mine, "client", "192.168.10.11")).received, 1);
    } finally {
      await mine.destroy();
    }
  } finally {
    c.child.kill("SIGKILL");
    cleanupStaleLabs();
  }
});
