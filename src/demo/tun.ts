// The LVS-TUN walkthrough (IP tunnelling, ipvsadm -i), end to end in network namespaces: a
// client, a director whose kernel routes the VIP into a TUN device where the balancer
// encapsulates each packet (IP-in-IP) to the chosen real server, and two real servers
// answering "RS1" and "RS2" directly to the client. This machine's kernels have no ipip
// module, so each real server runs lvs-rs-agent (src/runtime/rs-agent-cli.ts), which
// decapsulates with the data plane and hands the inner packets to its kernel through a TUN
// device. (With the module: `ip link set tunl0 up; ip addr add VIP/32 dev tunl0`, see
// docs/tun-mode.md.)
//
// The balancer runs in this process (src/runtime/tun-director.ts) and is configured in
// ipvsadm's syntax through the same command executor lvsd runs for lvsadm. Everything is
// torn down at the end, also on failure.

import { fileURLToPath } from "node:url";
import { createLab, startHttpServer, type Lab, type LabProcess } from "../lab/index.js";
import { startTunDirector, type TunDirector } from "../runtime/tun-director.js";
import { printOutput, section, shell, type DemoLog, fourRequests } from "./support.js";

const AGENT_CLI = fileURLToPath(new URL("../runtime/rs-agent-cli.ts", import.meta.url));
const TSX_LOADER = import.meta.resolve("tsx");

export async function run(log: DemoLog): Promise<void> {
  log("lvs-wasm walkthrough: LVS-TUN (IP tunnelling): the director encapsulates, the real servers answer");
  section(log, "1. The network: one namespace per host");
  // vipOnDirector false: the director's kernel routes the VIP into the balancer's TUN device.
  const lab: Lab = await createLab({ mode: "tun", realServers: 2, vipOnDirector: false });
  let tun: TunDirector | undefined;
  const agents: LabProcess[] = [];
  try {
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    log(`client    ${lab.client.eth0.ipv4.padEnd(15)} default via ${lab.client.gateway4}`);
    log(`director  ${lab.director.front.ipv4.padEnd(15)} eth0, client side`);
    log(`          ${lab.director.back.ipv4.padEnd(15)} eth1, real-server side: the tunnels' outer source`);
    for (const rs of [rs1, rs2]) log(`${rs.name.padEnd(9)} ${rs.eth0.ipv4.padEnd(15)} VIP ${vip}/32 on lo, arp_ignore=1 arp_announce=2, rp_filter=0`);
    log(`VIP       ${vip}`);
    log(`(namespaces ${lab.id}-*)`);
    log("[rs1]# ip link add tunl9 type ipip    (is there an ipip module?)");
    const probe = await lab.exec("rs1", "ip", ["link", "add", "tunl9", "type", "ipip"], { allowFailure: true });
    log(probe.code === 0 ? "   yes: the kernel could decapsulate itself (docs/tun-mode.md); the agent is used anyway" : `   ${probe.stderr.trim().split("\n")[0] || "no"}: the kernel cannot decapsulate, so the agent does`);

    section(log, "2. Real servers: a web server and lvs-rs-agent on each");
    await Promise.all([startHttpServer(lab, rs1.name), startHttpServer(lab, rs2.name)]);
    for (const rs of [rs1, rs2]) {
      log(`[${rs.name}]# lvs-rs-agent --tun-type ipip &`);
      const p = lab.spawn(rs.name, process.execPath, ["--import", TSX_LOADER, AGENT_CLI, "--tun-type", "ipip"]);
      agents.push(p);
      await p.waitForOutput(/lvs-rs-agent: ready/, 30_000);
      printOutput(log, p.output().trim());
    }
    await shell(lab, "rs1", log, "ip", ["-br", "addr", "show", "dev", "lvsrs0"]);

    section(log, "3. The director: a TUN device the kernel routes the VIP into");
    tun = await startTunDirector({ netns: lab.ns("director"), vips: [vip], tunnelSource4: lab.director.back.ipv4 });
    log(`[director]# ip route replace ${vip}/32 dev ${tun.device.name}    (done by startTunDirector, with rp_filter=0 on it)`);
    await shell(lab, "director", log, "ip", ["route", "show", `${vip}/32`]);
    log(`tunnel source (director.tunnelSource4): ${lab.director.back.ipv4}`);

    section(log, "4. The virtual service, in ipvsadm's words (-i: tunnelling, --tun-type ipip is the default)");
    const ipvsadm = (line: string): void => {
      log(`[director]# lvsadm ${line}`);
      const r = tun!.ipvsadm(line);
      if (r.stdout) printOutput(log, r.stdout);
      if (r.exitCode !== 0) throw new Error(`lvsadm ${line}: ${r.stderr.trim()}`);
    };
    ipvsadm(`-A -t ${vip}:80 -s rr`);
    for (const rs of [rs1, rs2]) ipvsadm(`-a -t ${vip}:80 -r ${rs.eth0.ipv4}:80 -i -w 1`);
    ipvsadm("-Ln");

    await fourRequests(lab, vip, log);

    section(log, "6. The replies bypassed the balancer");
    ipvsadm("-Ln --stats");
    const s = tun.director.stats;
    log(`director loop: received ${s.received} packets from ${tun.device.name}, encapsulated and sent ${s.forwarded}, dropped ${s.dropped}`);
    for (const [i, p] of agents.entries()) {
      process.kill(p.pid, "SIGUSR1");
      const m = await p.waitForOutput(/lvs-rs-agent: received .*/, 5000);
      log(`[rs${i + 1}] ${m[0]}`);
    }
    const stats = tun.balancer.listing().services[0].stats!;
    log(`OutPkts ${stats.outpkts}: the real servers answered the client directly (RS -> its gateway's kernel -> client).`);
    if (stats.outpkts !== 0n) throw new Error(`OutPkts ${stats.outpkts}: replies went through the balancer`);
  } finally {
    await tun?.stop();
    for (const p of agents) await p.stop().catch(() => {});
    await lab.destroy();
    log("");
    log(`director and agents stopped; lab ${lab.id} removed`);
  }
}
