// LVS-TUN end to end in the namespace lab: client -> director (TUN device; the kernel routes
// the VIP into it, the datapath encapsulates to the real server) -> real server, whose
// kernel has no ipip module here, so the real-server agent (raw sockets + data-plane decap +
// a local TUN device) hands the inner packet to it; the real server holds the VIP on lo and
// answers the client directly. IP-in-IP first (rr RS1/RS2, replies bypass the balancer, a
// 24 MiB download by digest), then the same service as GUE.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createLab, curl, httpUrl, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { startTunDirector, type TunDirector } from "../src/runtime/tun-director.js";
import { startRsAgent, type RsAgent } from "../src/runtime/rs-agent.js";

const skip = labSkip("curl", "sha256sum");
const BIG_MIB = 24;
const GUE_PORT = 6080;

test("TUN (ipip, then GUE) with the real-server agent: rr RS1/RS2, replies bypass the director, a 24 MiB download arrives whole", { skip, timeout: 90_000 }, async () => {
  let lab: Lab | undefined;
  let tun: TunDirector | undefined;
  const agents: RsAgent[] = [];
  try {
    lab = await createLab({ mode: "tun", realServers: 2, vipOnDirector: false });
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    await Promise.all([startHttpServer(lab, "rs1", { bigMiB: BIG_MIB }), startHttpServer(lab, "rs2", { bigMiB: BIG_MIB })]);
    for (const rs of [rs1, rs2]) agents.push(await startRsAgent({ netns: rs.ns, tunnels: ["ipip", "gue"], guePort: GUE_PORT }));
    tun = await startTunDirector({ netns: lab.ns("director"), vips: [vip], tunnelSource4: lab.director.back.ipv4 });
    const configure = (lines: string[]) => {
      for (const line of lines) {
        const r: { exitCode: number; stderr: string } = tun!.ipvsadm(line);
        assert.equal(r.exitCode, 0, `${line}: ${r.stderr}`);
      }
    };
    configure([`-A -t ${vip}:80 -s rr`, ...[rs1, rs2].map((rs) => `-a -t ${vip}:80 -r ${rs.eth0.ipv4}:80 -i -w 1`)]);
    assert.match(tun.ipvsadm("-Ln").stdout, /Tunnel\s+1/);

    const fourCurls = async () => {
      const bodies: string[] = [];
      for (let i = 0; i < 4; i++) bodies.push((await curl(lab!, "client", httpUrl(vip))).body.trim());
      return bodies;
    };
    assert.deepEqual(await fourCurls(), ["RS1", "RS2", "RS1", "RS2"], "ipip");

    const digest = await lab.exec("client", "sh", ["-c", `curl -sS --noproxy '*' --max-time 40 ${httpUrl(vip, 80, "/big")} | sha256sum`], { timeoutMs: 45_000 });
    const expected = createHash("sha256").update(Buffer.alloc(BIG_MIB << 20)).digest("hex");
    assert.equal(digest.stdout.split(" ")[0], expected, "the download is complete and intact");

    const stats = tun.balancer.listing().services[0].stats!;
    assert.equal(stats.conns, 5n);
    assert.equal(stats.outpkts, 0n, "no reply packet went through the balancer");
    assert.ok(stats.inbytes < BigInt((BIG_MIB << 20) / 8), `the balancer saw ${stats.inbytes} bytes (client to VIP only), not the download`);
    // The client's last ACK or FIN may still be between the balancer and an agent: let the
    // counts settle (bounded) before comparing them.
    const decapsulated = () => BigInt(agents[0].stats.decapsulated + agents[1].stats.decapsulated);
    const inpkts = () => tun!.balancer.listing().services[0].stats!.inpkts;
    for (let waited = 0; decapsulated() !== inpkts() && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.equal(decapsulated(), inpkts(), "every packet the balancer tunnelled was decapsulated by an agent");
    for (const a of agents) assert.equal(a.stats.dropped, 0, JSON.stringify(a.stats.drops));
    assert.deepEqual(tun.director.stats.drops, {});

    // The same service as GUE (ipvsadm --tun-type gue --tun-port 6080).
    const before = agents.map((a) => a.sockets.find((s) => s.name.startsWith("gue"))!.stats.received);
    configure(["-C", `-A -t ${vip}:80 -s rr`, ...[rs1, rs2].map((rs) => `-a -t ${vip}:80 -r ${rs.eth0.ipv4}:80 -i -w 1 --tun-type gue --tun-port ${GUE_PORT}`)]);
    assert.match(tun.ipvsadm("-Ln").stdout, /Tunnel/);
    assert.deepEqual(await fourCurls(), ["RS1", "RS2", "RS1", "RS2"], "gue");
    agents.forEach((a, i) => assert.ok(a.sockets.find((s) => s.name.startsWith("gue"))!.stats.received > before[i], `RS${i + 1} received GUE`));
    assert.equal(tun.balancer.listing().services[0].stats!.outpkts, 0n);
  } finally {
    await tun?.stop();
    for (const a of agents) await a.stop();
    await lab?.destroy();
  }
});
