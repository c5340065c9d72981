// The LVS-DR walkthrough (direct routing, ipvsadm -g), end to end in network namespaces: a
// client, a director running lvsd over AF_PACKET sockets on its two interfaces, two real
// servers that hold the VIP on lo (arp_ignore / arp_announce, as the LVS-HOWTO says) and
// answer "RS1" and "RS2". The director rewrites only the MACs; the real servers answer the
// client directly. The virtual service is configured with the real lvsadm CLI.
// Everything is torn down at the end, also on failure (the lab's teardown, docs/lab.md).

import { createLab, startHttpServer, type Lab } from "../lab/index.js";
import { disableTxChecksumOffload } from "../runtime/ethernet.js";
import {
  fourRequests,
  lvsadm,
  lvsdCounters,
  printOutput,
  section,
  serviceStats,
  shell,
  startLvsd,
  waitForLvsdLog,
  type DemoLog,
  type RunningLvsd,
} from "./support.js";

export async function run(log: DemoLog): Promise<void> {
  log("lvs-wasm walkthrough: LVS-DR (direct routing): the director forwards, the real servers answer");
  section(log, "1. The network: one namespace per host");
  const lab: Lab = await createLab({ mode: "dr", realServers: 2 });
  let daemon: RunningLvsd | undefined;
  try {
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    log(`client    ${lab.client.eth0.ipv4.padEnd(15)} default via ${lab.client.gateway4}`);
    log(`director  ${lab.director.front.ipv4.padEnd(15)} eth0 ${lab.director.front.mac}, client side`);
    log(
      `          ${lab.director.back.ipv4.padEnd(15)} eth1 ${lab.director.back.mac}, real-server side; VIP ${vip} on eth1 too (as a kernel-IPVS director has it)`,
    );
    for (const rs of [rs1, rs2]) log(`${rs.name.padEnd(9)} ${rs.eth0.ipv4.padEnd(15)} eth0 ${rs.eth0.mac}; VIP ${vip}/32 on lo, arp_ignore=1 arp_announce=2`);
    log(`VIP       ${vip}`);
    log(`(namespaces ${lab.id}-*)`);
    await shell(lab, "rs1", log, "ip", ["-br", "addr", "show", "dev", "lo"]);

    section(log, "2. Real servers: a web server on each, listening on the VIP too");
    await Promise.all([startHttpServer(lab, rs1.name), startHttpServer(lab, rs2.name)]);

    section(log, "3. The director: lvsd over AF_PACKET on eth0 (clients) and eth1 (real servers)");
    // The lab's client is a local socket on a veth: its frames carry a partial checksum that a
    // real NIC would have completed; relayed unchanged, the real server would drop them.
    log("[client]# ethtool -K eth0 tx off    (lab only, done with the ethtool ioctl: veth frames relayed unchanged need whole checksums)");
    disableTxChecksumOffload(lab.ns("client"), "eth0");
    log("--server-side eth1: that socket reads ARP and IPv6 ND only and forwarded frames leave by it;");
    log(`--isolate-vip ${vip}: the director's kernel owns the VIP and would answer the SYN with a RST,`);
    log("so a tc ingress filter on eth0 drops VIP packets after the AF_PACKET tap has seen them.");
    daemon = await startLvsd(lab, ["--af-packet", "eth0", "--af-packet", "eth1", "--server-side", "eth1", "--isolate-vip", vip], { log });
    printOutput(log, daemon.log().trim(), "   ");
    await shell(lab, "director", log, "tc", ["filter", "show", "dev", "eth0", "ingress"]);
    log("   (cls_bpf, classic BPF: ld [30]; jeq VIP -> TC_ACT_SHOT; else TC_ACT_UNSPEC)");
    const ready = daemon.log().length;

    section(log, "4. The virtual service, in ipvsadm's words (-g: gatewaying, direct routing)");
    const socket = daemon.socket;
    log(`(lvsadm reaches lvsd through LVS_WASM_SOCKET=${socket})`);
    await lvsadm(socket, log, ["-A", "-t", `${vip}:80`, "-s", "rr"]);
    for (const rs of [rs1, rs2]) await lvsadm(socket, log, ["-a", "-t", `${vip}:80`, "-r", `${rs.eth0.ipv4}:80`, "-g", "-w", "1"]);
    await lvsadm(socket, log, ["-Ln"]);
    log("lvsd asks the real servers' MACs by ARP on eth1 as soon as they are added:");
    for (const rs of [rs1, rs2]) {
      const m = await waitForLvsdLog(daemon, new RegExp(`^lvsd: (neighbour ${rs.eth0.ipv4.replace(/\./g, "\\.")} is at .*)$`, "m"), ready);
      log(`   ${m[1]}`);
    }

    await fourRequests(lab, vip, log);

    section(log, "6. The replies bypassed the balancer");
    const listing = await lvsadm(socket, log, ["-Ln", "--stats", "--exact"]);
    log(`[director]# kill -USR1 $(pidof lvsd)`);
    log(`   lvsd: ${await lvsdCounters(daemon)}`);
    const stats = serviceStats(listing.stdout);
    log(`OutPkts ${stats.outpkts}: in DR the balancer never sees a real server's reply (they go RS -> its gateway's kernel -> client).`);
    if (stats.outpkts !== 0) throw new Error(`OutPkts ${stats.outpkts}: replies went through the balancer`);

    section(log, "7. Stopping lvsd (SIGTERM): the tc filter goes with it");
    const before = daemon.log().length;
    const code = await daemon.stop();
    printOutput(log, daemon.log().slice(before).trim(), "   ");
    if (code !== 0) throw new Error(`lvsd exited with status ${String(code)}`);
    await shell(lab, "director", log, "tc", ["filter", "show", "dev", "eth0", "ingress"]);
    log("   (nothing: the clsact qdisc was removed)");
  } finally {
    if (daemon && !daemon.process.hasExited) await daemon.stop().catch(() => null);
    await lab.destroy();
    log("");
    log(`lab ${lab.id} removed`);
  }
}
