// The LVS-TUN walkthrough (IP tunnelling, ipvsadm -i), end to end in network namespaces: a
// client, a director running lvsd over a TUN device the kernel routes the VIP into (the
// balancer encapsulates each packet, IP-in-IP, to the chosen real server), and two real
// servers answering "RS1" and "RS2" directly to the client. This machine's kernels have no
// ipip module, so each real server runs lvs-rs-agent (src/runtime/rs-agent-cli.ts), which
// decapsulates with the data plane and hands the inner packets to its kernel through a TUN
// device. (With the module: `ip link set tunl0 up; ip addr add VIP/32 dev tunl0`, see
// docs/tun-mode.md.) The virtual service is configured with the real lvsadm CLI.
// Everything is torn down at the end, also on failure.

import { fileURLToPath } from "node:url";
import { createLab, startHttpServer, type Lab, type LabProcess } from "../lab/index.js";
import { tunHostCommands } from "../runtime/tun-director.js";
import {
  fourRequests,
  lvsadm,
  lvsdCounters,
  printOutput,
  section,
  serviceStats,
  shell,
  startLvsd,
  TSX_LOADER,
  type DemoLog,
  type RunningLvsd,
} from "./support.js";

const AGENT_CLI = fileURLToPath(new URL("../runtime/rs-agent-cli.ts", import.meta.url));

export async function run(log: DemoLog): Promise<void> {
  log("lvs-wasm walkthrough: LVS-TUN (IP tunnelling): the director encapsulates, the real servers answer");
  section(log, "1. The network: one namespace per host");
  // vipOnDirector false: the director's kernel routes the VIP into the balancer's TUN device.
  const lab: Lab = await createLab({ mode: "tun", realServers: 2, vipOnDirector: false });
  let daemon: RunningLvsd | undefined;
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
    log(
      probe.code === 0
        ? "   yes: the kernel could decapsulate itself (docs/tun-mode.md); the agent is used anyway"
        : `   ${probe.stderr.trim().split("\n")[0] || "no"}: the kernel cannot decapsulate, so the agent does`,
    );

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

    section(log, "3. The director: lvsd over a TUN device the kernel routes the VIP into");
    const source = lab.director.back.ipv4;
    log(`--tunnel-source4 ${source}: the outer source of the tunnels, the director's address on the real servers' segment`);
    daemon = await startLvsd(lab, ["--tun", "lvs0", "--tunnel-source4", source, "--tunnel-mtu", "1500"], { log });
    printOutput(log, daemon.log().trim(), "   ");
    const ready = daemon.log().length;
    log("Route the VIP into the device (routed, not assigned: the kernel never answers it); accept_local because");
    log("the encapsulated packets come back out of the device with a source address the director owns:");
    for (const [cmd, ...args] of tunHostCommands("lvs0", [vip])) await shell(lab, "director", log, cmd, args);
    await shell(lab, "director", log, "ip", ["route", "show", `${vip}/32`]);

    section(log, "4. The virtual service, in ipvsadm's words (-i: tunnelling, --tun-type ipip is the default)");
    const socket = daemon.socket;
    log(`(lvsadm reaches lvsd through LVS_WASM_SOCKET=${socket})`);
    await lvsadm(socket, log, ["-A", "-t", `${vip}:80`, "-s", "rr"]);
    for (const rs of [rs1, rs2]) await lvsadm(socket, log, ["-a", "-t", `${vip}:80`, "-r", `${rs.eth0.ipv4}:80`, "-i", "-w", "1"]);
    await lvsadm(socket, log, ["-Ln"]);

    await fourRequests(lab, vip, log);

    section(log, "6. The replies bypassed the balancer");
    log("lvsd's log since it became ready:");
    printOutput(log, daemon.log().slice(ready).trim(), "   ");
    const listing = await lvsadm(socket, log, ["-Ln", "--stats", "--exact"]);
    log(`[director]# kill -USR1 $(pidof lvsd)`);
    log(`   lvsd: ${await lvsdCounters(daemon)}`);
    for (const [i, p] of agents.entries()) {
      const from = p.output().length;
      process.kill(p.pid, "SIGUSR1");
      let line = "";
      for (const deadline = Date.now() + 5000; !line; await new Promise((r) => setTimeout(r, 20))) {
        line = /lvs-rs-agent: received .*/.exec(p.output().slice(from))?.[0] ?? "";
        if (!line && Date.now() > deadline) throw new Error(`rs${i + 1}'s agent did not log its counters`);
      }
      log(`[rs${i + 1}]# kill -USR1 $(pidof lvs-rs-agent)`);
      log(`   ${line}`);
    }
    const stats = serviceStats(listing.stdout);
    log(`OutPkts ${stats.outpkts}: the real servers answered the client directly (RS -> its gateway's kernel -> client).`);
    if (stats.outpkts !== 0) throw new Error(`OutPkts ${stats.outpkts}: replies went through the balancer`);

    section(log, "7. Stopping lvsd (SIGTERM): the device and its routes go with it");
    const before = daemon.log().length;
    const code = await daemon.stop();
    printOutput(log, daemon.log().slice(before).trim(), "   ");
    if (code !== 0) throw new Error(`lvsd exited with status ${String(code)}`);
  } finally {
    if (daemon && !daemon.process.hasExited) await daemon.stop().catch(() => null);
    for (const p of agents) await p.stop().catch(() => {});
    await lab.destroy();
    log("");
    log(`agents stopped; lab ${lab.id} removed`);
  }
}
