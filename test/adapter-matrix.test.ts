// Every forwarding method over every adapter, through the real lvsd and lvsadm: NAT (-m),
// DR (-g) and TUN (-i), each over a TUN device and over AF_PACKET, IPv4 and IPv6: twelve
// combinations in one namespace lab (docs/daemon.md, "What works over which adapter").
//
// One lab serves all of them: the "tun" topology with IPv6 (client on the front segment,
// VIP 10.0.0.100 / fd00::100 routed to the director but owned by nobody's kernel; two real
// servers on the back segment holding the VIP on lo, as DR and TUN need, which NAT does not
// mind), nginx (or node:http) on each real server, and the real-server agent for TUN
// (this kernel has no ipip module; the agent takes IPv4 and IPv6 tunnels). The cases run in
// order in three groups, one lvsd each:
//
//   TUN device      lvsd --tun lvs0 with tunnel sources: NAT (the VIP routed into the device,
//                   the real servers' replies by a policy rule), TUN (the VIP routed in, no
//                   rule); DR is refused, at lvsadm time and at start from a rules file
//   AF_PACKET, NAT  two ports, --route per segment, the VIPs hidden from the director's
//                   kernel (--isolate-vip) and its forwarding off (the replies are lvsd's)
//   AF_PACKET, DR and TUN   --server-side eth1, --isolate-vip; the kernel forwards the
//                   real servers' direct replies
//
// On AF_PACKET the client's permanent neighbour entries for the VIP are removed and the
// director's neighbour tables flushed first, so the client finds the VIP by ARP and IPv6
// neighbour discovery answered by lvsd, and lvsd finds the real servers by its own ARP and
// neighbour solicitations. Each case: four curls from the client, answered from the VIP by
// both real servers twice (rr; which one answers first is the scheduler's business, not
// this test's), and the service's counters (connections; replies through the director for
// NAT only).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, curl, httpUrl, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { sendCommand } from "../src/admin/control-client.js";
import { disableTxChecksumOffload } from "../src/runtime/ethernet.js";
import { startRsAgent, type RsAgent } from "../src/runtime/rs-agent.js";
import { LVSD_CLI, TSX_LOADER, lvsadmRaw, serviceStats, startLvsd, waitForLvsdLog, type RunningLvsd } from "../src/demo/support.js";

const skip = labSkip("curl", "tc");

type Family = 4 | 6;
const FAMILIES: readonly Family[] = [4, 6];
const RESULTS: string[] = [];

let lab: Lab;
let lvsd: RunningLvsd | undefined;
const agents: RsAgent[] = [];
let vip: Record<Family, string>;
let rs: Record<Family, [string, string]>;
let director: Record<Family, string>;

const bracket = (address: string, port: number) => (address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`);

/**
 * An lvsadm command over lvsd's control socket (what the lvsadm CLI sends; the CLI itself
 * is run where its own output matters, the refusals): one node start less per command.
 */
async function lvsadm(args: string[]): Promise<string> {
  const r = await sendCommand(lvsd!.socket, args);
  assert.equal(r.exitCode, 0, `lvsadm ${args.join(" ")}: exit ${r.exitCode}, ${r.stderr.trim()}`);
  return r.stdout;
}

/** -A VIP:80 rr, then both real servers with `method` (-m, -g, -i). */
async function configure(family: Family, method: string): Promise<void> {
  const service = bracket(vip[family], 80);
  await lvsadm(["-A", "-t", service, "-s", "rr"]);
  for (const address of rs[family]) await lvsadm(["-a", "-t", service, "-r", bracket(address, 80), method, "-w", "1"]);
}

/**
 * Four curls to the VIP: each answered 200 from the VIP, both real servers twice (rr over
 * two, whichever starts), and the service saw four connections. Returns the counters.
 */
async function fourCurls(family: Family, label: string) {
  const answers: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await curl(lab, "client", httpUrl(vip[family]), { timeoutMs: 8000 });
    assert.equal(r.status, 200, `${label}: request ${i + 1}`);
    assert.equal(r.remote, bracket(vip[family], 80), `${label}: the answer came from the VIP`);
    answers.push(r.body.trim());
  }
  assert.deepEqual([...answers].sort(), ["RS1", "RS1", "RS2", "RS2"], `${label}: rr over both real servers, got ${answers.join(", ")}`);
  const stats = serviceStats(await lvsadm(["-Ln", "-t", bracket(vip[family], 80), "--stats", "--exact"]));
  assert.equal(stats.conns, 4, `${label}: four connections scheduled`);
  assert.ok(stats.inpkts >= 4 * 3, `${label}: the client's packets went through lvsd (${stats.inpkts})`);
  RESULTS.push(`${label}: works (${answers.join(" ")})`);
  return stats;
}

async function sysctl(host: "director", pairs: Array<[string, number]>): Promise<void> {
  await lab.exec(host, "sysctl", ["-qw", ...pairs.map(([k, v]) => `${k}=${v}`)]);
}

async function stopLvsd(): Promise<void> {
  if (lvsd && !lvsd.process.hasExited) assert.equal(await lvsd.stop(), 0, "lvsd exits 0 on SIGTERM");
  lvsd = undefined;
}

describe("every forwarding method over every adapter (lvsd, lvsadm, curl; IPv4 and IPv6)", { skip, timeout: 240_000 }, () => {
  before(async () => {
    lab = await createLab({ mode: "tun", realServers: 2, ipv6: true, vipOnDirector: false });
    vip = { 4: lab.vip!.v4, 6: lab.vip!.v6! };
    const [rs1, rs2] = lab.realServers;
    rs = { 4: [rs1.eth0.ipv4, rs2.eth0.ipv4], 6: [rs1.eth0.ipv6!, rs2.eth0.ipv6!] };
    director = { 4: lab.director.back.ipv4, 6: lab.director.back.ipv6! };
    await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2")]);
    for (const r of [rs1, rs2]) agents.push(await startRsAgent({ netns: r.ns, tunnels: ["ipip"], ipv6: true }));
    // Frames relayed unchanged over AF_PACKET must carry whole checksums (docs/io.md).
    for (const [host, ns] of [
      ["client", lab.ns("client")],
      ["rs1", rs1.ns],
      ["rs2", rs2.ns],
    ] as const) {
      void host;
      disableTxChecksumOffload(ns, "eth0");
    }
  });

  after(async () => {
    if (RESULTS.length > 0) console.log(`adapter matrix:\n  ${RESULTS.join("\n  ")}`);
    if (lvsd && !lvsd.process.hasExited) await lvsd.stop().catch(() => null);
    for (const a of agents) await a.stop();
    await lab?.destroy();
  });

  describe("over a TUN device", () => {
    before(async () => {
      lvsd = await startLvsd(lab, ["--tun", "lvs0", "--tunnel-source4", director[4], "--tunnel-source6", director[6], "--tunnel-mtu", "1500"]);
      await sysctl("director", [["net.ipv4.conf.lvs0.rp_filter", 0]]);
      await lab.exec("director", "ip", ["-4", "route", "replace", `${vip[4]}/32`, "dev", "lvs0"]);
      await lab.exec("director", "ip", ["-6", "route", "replace", `${vip[6]}/128`, "dev", "lvs0"]);
    });
    after(stopLvsd);

    for (const family of FAMILIES) {
      test(`NAT over a TUN device, IPv${family}: the real servers' replies routed back into the device`, async () => {
        const f = `-${family}`;
        await lab.exec("director", "ip", [f, "route", "replace", "default", "dev", "lvs0", "table", "100"]);
        await lab.exec("director", "ip", [f, "rule", "add", "iif", "eth1", "lookup", "100"]);
        try {
          await configure(family, "-m");
          const stats = await fourCurls(family, `NAT / TUN device / IPv${family}`);
          assert.ok(stats.outpkts > 0, "NAT: the replies came back through lvsd");
        } finally {
          await lab.exec("director", "ip", [f, "rule", "del", "iif", "eth1", "lookup", "100"]);
          await lvsadm(["-C"]);
        }
      });
    }

    for (const family of FAMILIES) {
      test(`DR over a TUN device, IPv${family}: refused by lvsadm with one line naming why`, async () => {
        try {
          await lvsadm(["-A", "-t", bracket(vip[family], 80), "-s", "rr"]);
          const r = await lvsadmRaw(lvsd!.socket, ["-a", "-t", bracket(vip[family], 80), "-r", bracket(rs[family][0], 80), "-g"]);
          assert.notEqual(r.code, 0, "lvsadm -a ... -g fails");
          assert.match(
            r.stderr,
            /^destination \S+: direct routing \(-g\) needs an Ethernet adapter \(lvsd --af-packet\): a TUN device carries no MAC addresses[^\n]*\n$/,
          );
          assert.doesNotMatch(await lvsadm(["-Ln"]), /Route/, "no DR destination was added");
          RESULTS.push(`DR / TUN device / IPv${family}: refused (${r.stderr.trim()})`);
        } finally {
          await lvsadm(["-C"]);
        }
      });
    }

    test("DR over a TUN device: lvsd refuses to start from a rules file with a -g destination, in one line, exit 1", async () => {
      const dir = mkdtempSync(join(tmpdir(), "matrix-"));
      lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
      const rules = join(dir, "rules");
      writeFileSync(rules, `-A -t ${bracket(vip[6], 80)} -s rr\n-a -t ${bracket(vip[6], 80)} -r ${bracket(rs[6][0], 80)} -g -w 1\n`);
      const proc = lab.spawn("director", process.execPath, [
        "--import",
        TSX_LOADER,
        LVSD_CLI,
        "--workers",
        "1",
        "--tun",
        "lvs9",
        "--rules",
        rules,
        "--socket",
        join(dir, "s"),
      ]);
      // Bounded: an lvsd that wrongly starts is killed, and the assertions below say so.
      const timer = setTimeout(() => proc.killSync(), 30_000);
      const { code } = await proc.exited;
      clearTimeout(timer);
      assert.equal(code, 1);
      const lines = proc
        .output()
        .split("\n")
        .filter((l) => l.startsWith("lvsd: cannot start"));
      assert.equal(lines.length, 1, proc.output());
      assert.match(lines[0], /^lvsd: cannot start: line 2: destination fd00:10::11: direct routing \(-g\) needs an Ethernet adapter/);
      assert.doesNotMatch(proc.output(), /lvsd: ready/);
    });

    for (const family of FAMILIES) {
      test(`TUN over a TUN device, IPv${family}: IP-in-IP to the real-server agents, replies bypass lvsd`, async () => {
        const before = agents.map((a) => a.stats.decapsulated);
        try {
          await configure(family, "-i");
          const stats = await fourCurls(family, `TUN / TUN device / IPv${family}`);
          assert.equal(stats.outpkts, 0, "TUN: no reply passed lvsd");
          agents.forEach((a, i) => assert.ok(a.stats.decapsulated > before[i], `RS${i + 1}'s agent decapsulated`));
        } finally {
          await lvsadm(["-C"]);
        }
      });
    }
  });

  describe("over AF_PACKET", () => {
    before(async () => {
      // Nobody's kernel resolves the VIP for the client any more: lvsd's ARP and ND must.
      for (const family of FAMILIES) await lab.exec("client", "ip", [`-${family}`, "neigh", "del", vip[family], "dev", "eth0"]).catch(() => null);
      for (const dev of ["eth0", "eth1"]) await lab.exec("director", "ip", ["neigh", "flush", "dev", dev]);
    });

    describe("NAT", () => {
      before(async () => {
        await sysctl("director", [
          ["net.ipv4.ip_forward", 0],
          ["net.ipv6.conf.all.forwarding", 0],
        ]);
        lvsd = await startLvsd(lab, [
          ...["--af-packet", "eth0", "--af-packet", "eth1"],
          ...["--route", "10.0.0.0/24=eth0", "--route", "fd00::/64=eth0", "--route", "192.168.10.0/24=eth1", "--route", "fd00:10::/64=eth1"],
          ...["--isolate-vip", vip[4], "--isolate-vip", vip[6]],
        ]);
      });
      after(async () => {
        try {
          await stopLvsd();
        } finally {
          await sysctl("director", [
            ["net.ipv4.ip_forward", 1],
            ["net.ipv6.conf.all.forwarding", 1],
          ]);
        }
      });

      for (const family of FAMILIES) {
        test(`NAT over AF_PACKET, IPv${family}: lvsd answers ${family === 4 ? "ARP" : "neighbour discovery"} for the VIP, rewrites both directions`, async () => {
          try {
            await configure(family, "-m");
            const stats = await fourCurls(family, `NAT / AF_PACKET / IPv${family}`);
            assert.ok(stats.outpkts > 0, "NAT: the replies came back through lvsd");
            const neigh = await lab.exec("client", "ip", [`-${family}`, "neigh", "show", vip[family], "dev", "eth0"]);
            assert.match(neigh.stdout, new RegExp(`lladdr ${lab.director.front.mac}`), "the client's kernel took lvsd's answer for the VIP");
            assert.doesNotMatch(neigh.stdout, /PERMANENT/);
          } finally {
            await lvsadm(["-C"]);
          }
        });
      }
    });

    describe("DR and TUN (--server-side eth1)", () => {
      before(async () => {
        lvsd = await startLvsd(lab, [
          ...["--af-packet", "eth0", "--af-packet", "eth1", "--server-side", "eth1"],
          ...["--isolate-vip", vip[4], "--isolate-vip", vip[6]],
          ...["--tunnel-source4", director[4], "--tunnel-source6", director[6], "--tunnel-mtu", "1500"],
        ]);
        const tc = await lab.exec("director", "tc", ["filter", "show", "dev", "eth0", "ingress"]);
        assert.match(tc.stdout, /protocol ip .*\n?[\s\S]*protocol ipv6/, "both VIPs are hidden from the director's kernel");
      });
      after(stopLvsd);

      for (const family of FAMILIES) {
        test(`DR over AF_PACKET, IPv${family}: real servers found by ${family === 4 ? "ARP" : "neighbour solicitation"} on the server side, replies bypass lvsd`, async () => {
          try {
            await configure(family, "-g");
            for (const [i, address] of rs[family].entries()) {
              const mac = lab.realServers[i].eth0.mac;
              await waitForLvsdLog(lvsd!, new RegExp(`neighbour ${address.replace(/[.]/g, "\\.")} is at ${mac} \\(eth1\\)`));
            }
            const stats = await fourCurls(family, `DR / AF_PACKET / IPv${family}`);
            assert.equal(stats.outpkts, 0, "DR: no reply passed lvsd");
          } finally {
            await lvsadm(["-C"]);
          }
        });
      }

      for (const family of FAMILIES) {
        test(`TUN over AF_PACKET, IPv${family}: IP-in-IP frames to the real servers' MACs, replies bypass lvsd`, async () => {
          const before = agents.map((a) => a.stats.decapsulated);
          try {
            await configure(family, "-i");
            const stats = await fourCurls(family, `TUN / AF_PACKET / IPv${family}`);
            assert.equal(stats.outpkts, 0, "TUN: no reply passed lvsd");
            agents.forEach((a, i) => assert.ok(a.stats.decapsulated > before[i], `RS${i + 1}'s agent decapsulated`));
          } finally {
            await lvsadm(["-C"]);
          }
        });
      }
    });
  });
});
