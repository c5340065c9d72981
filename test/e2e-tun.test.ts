// LVS-TUN end to end in the namespace lab, through the real daemon: client -> director
// (lvsd --tun lvs0 --tunnel-source4; the kernel routes the VIP into the device, the
// datapath encapsulates to the real server) -> real server, whose kernel has no ipip module
// here, so the real-server agent (raw sockets + data-plane decap + a local TUN device)
// hands the inner packet to it; the real server holds the VIP on lo and answers the client
// directly. Configured with the real lvsadm CLI. IP-in-IP first (rr RS2/RS1 (newest first), replies
// bypass the balancer, a 24 MiB download by digest, decapsulated = InPkts), then the same
// service as GUE.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createLab, curl, httpUrl, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { tunHostCommands } from "../src/runtime/tun-director.js";
import { startRsAgent, type RsAgent } from "../src/runtime/rs-agent.js";
import { lvsadmRaw, lvsdCounters, serviceStats, startLvsd, waitFor, type RunningLvsd } from "../src/demo/support.js";

const skip = labSkip("curl", "sha256sum");
const BIG_MIB = 24;
const GUE_PORT = 6080;

test("TUN through lvsd (--tun, --tunnel-source4) and lvsadm, ipip then GUE, with the real-server agent: rr RS2/RS1 (newest first), replies bypass the director, a 24 MiB download arrives whole", {
  skip,
  timeout: 90_000,
}, async () => {
  let lab: Lab | undefined;
  let lvsd: RunningLvsd | undefined;
  const agents: RsAgent[] = [];
  try {
    lab = await createLab({ mode: "tun", realServers: 2, vipOnDirector: false });
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    await Promise.all([startHttpServer(lab, "rs1", { bigMiB: BIG_MIB }), startHttpServer(lab, "rs2", { bigMiB: BIG_MIB })]);
    for (const rs of [rs1, rs2]) agents.push(await startRsAgent({ netns: rs.ns, tunnels: ["ipip", "gue"], guePort: GUE_PORT }));

    // Before any tunnel source is given, lvsd refuses tunnelled real servers.
    lvsd = await startLvsd(lab, ["--tun", "lvs0"]);
    await lvsadmRaw(lvsd.socket, ["-A", "-t", `${vip}:80`, "-s", "rr"]);
    const refused = await lvsadmRaw(lvsd.socket, ["-a", "-t", `${vip}:80`, "-r", `${rs1.eth0.ipv4}:80`, "-i"]);
    assert.notEqual(refused.code, 0, "-i without --tunnel-source4 is refused");
    assert.equal(await lvsd.stop(), 0);

    lvsd = await startLvsd(lab, ["--tun", "lvs0", "--tunnel-source4", lab.director.back.ipv4, "--tunnel-mtu", "1500"]);
    for (const [cmd, ...args] of tunHostCommands("lvs0", [vip])) await lab.exec("director", cmd, args);
    const socket = lvsd.socket;
    const lvsadm = async (args: string[]) => {
      const r = await lvsadmRaw(socket, args);
      assert.equal(r.code, 0, `lvsadm ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    const configure = async (extra: string[]) => {
      await lvsadm(["-A", "-t", `${vip}:80`, "-s", "rr"]);
      for (const rs of [rs1, rs2]) await lvsadm(["-a", "-t", `${vip}:80`, "-r", `${rs.eth0.ipv4}:80`, "-i", "-w", "1", ...extra]);
    };
    await configure([]);
    assert.match(await lvsadm(["-Ln"]), /Tunnel\s+1/);

    const fourCurls = async () => {
      const bodies: string[] = [];
      for (let i = 0; i < 4; i++) bodies.push((await curl(lab!, "client", httpUrl(vip))).body.trim());
      return bodies;
    };
    assert.deepEqual(await fourCurls(), ["RS2", "RS1", "RS2", "RS1"], "ipip");

    const digest = await lab.exec("client", "sh", ["-c", `curl -sS --noproxy '*' --max-time 40 ${httpUrl(vip, 80, "/big")} | sha256sum`], {
      timeoutMs: 45_000,
    });
    const expected = createHash("sha256")
      .update(Buffer.alloc(BIG_MIB << 20))
      .digest("hex");
    assert.equal(digest.stdout.split(" ")[0], expected, "the download is complete and intact");

    const stats = async () => serviceStats(await lvsadm(["-Ln", "--stats", "--exact"]));
    const s = await stats();
    assert.equal(s.conns, 5);
    assert.equal(s.outpkts, 0, "no reply packet went through the balancer");
    assert.ok(s.inbytes < (BIG_MIB << 20) / 8, `the balancer saw ${s.inbytes} bytes (client to VIP only), not the download`);
    // The client's last ACK or FIN may still be between the balancer and an agent: let the
    // counts settle (bounded) before comparing them.
    const decapsulated = () => agents[0].stats.decapsulated + agents[1].stats.decapsulated;
    let inpkts = s.inpkts;
    await waitFor(
      "decapsulated = InPkts",
      async () => {
        inpkts = (await stats()).inpkts;
        return decapsulated() === inpkts;
      },
      3000,
    ).catch(() => {});
    assert.equal(decapsulated(), inpkts, "every packet the balancer tunnelled was decapsulated by an agent");
    for (const a of agents) assert.equal(a.stats.dropped, 0, JSON.stringify(a.stats.drops));
    assert.match(await lvsdCounters(lvsd), /dropped 0, send failures 0;/);

    // The same service as GUE (ipvsadm --tun-type gue --tun-port 6080).
    const before = agents.map((a) => a.sockets.find((x) => x.name.startsWith("gue"))!.stats.received);
    await lvsadm(["-C"]);
    await configure(["--tun-type", "gue", "--tun-port", String(GUE_PORT)]);
    assert.match(await lvsadm(["-Ln"]), /Tunnel/);
    assert.deepEqual(await fourCurls(), ["RS2", "RS1", "RS2", "RS1"], "gue");
    agents.forEach((a, i) => assert.ok(a.sockets.find((x) => x.name.startsWith("gue"))!.stats.received > before[i], `RS${i + 1} received GUE`));
    assert.equal((await stats()).outpkts, 0);
    assert.equal(await lvsd.stop(), 0, "lvsd exits 0 on SIGTERM");
  } finally {
    if (lvsd && !lvsd.process.hasExited) await lvsd.stop().catch(() => null);
    for (const a of agents) await a.stop();
    await lab?.destroy();
  }
});
