// The LVS-DR walkthrough (direct routing, ipvsadm -g), end to end in network namespaces: a
// client, a director tapping its interfaces with AF_PACKET sockets, two real servers that
// hold the VIP on lo (arp_ignore / arp_announce, as the LVS-HOWTO says) and answer "RS1" and
// "RS2". The director rewrites only the MACs; the real servers answer the client directly.
//
// The balancer runs in this process (src/runtime/dr-director.ts) and is configured in
// ipvsadm's syntax through the same command executor lvsd runs for lvsadm (each command is
// printed as the lvsadm line it is). Everything is torn down at the end, also on failure.

import { createLab, startHttpServer, type Lab } from "../lab/index.js";
import { disableTxChecksumOffload, startDrDirector, type DrDirector } from "../runtime/dr-director.js";
import { tcBytecode, tcDropIpv4Destinations } from "../runtime/socket-filter.js";
import { printOutput, section, shell, type DemoLog, fourRequests } from "./support.js";

export async function run(log: DemoLog): Promise<void> {
  log("lvs-wasm walkthrough: LVS-DR (direct routing): the director forwards, the real servers answer");
  section(log, "1. The network: one namespace per host");
  const lab: Lab = await createLab({ mode: "dr", realServers: 2 });
  let dr: DrDirector | undefined;
  try {
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    log(`client    ${lab.client.eth0.ipv4.padEnd(15)} default via ${lab.client.gateway4}`);
    log(`director  ${lab.director.front.ipv4.padEnd(15)} eth0 ${lab.director.front.mac}, client side`);
    log(`          ${lab.director.back.ipv4.padEnd(15)} eth1 ${lab.director.back.mac}, real-server side`);
    for (const rs of [rs1, rs2]) log(`${rs.name.padEnd(9)} ${rs.eth0.ipv4.padEnd(15)} eth0 ${rs.eth0.mac}; VIP ${vip}/32 on lo, arp_ignore=1 arp_announce=2`);
    log(`VIP       ${vip}`);
    log(`(namespaces ${lab.id}-*)`);
    await shell(lab, "rs1", log, "ip", ["-br", "addr", "show", "dev", "lo"]);

    section(log, "2. Real servers: a web server on each, listening on the VIP too");
    await Promise.all([startHttpServer(lab, rs1.name), startHttpServer(lab, rs2.name)]);

    section(log, "3. The director: AF_PACKET on eth0 (client side) and eth1 (server side)");
    log("Its kernel must not answer what we take: a tc ingress filter drops VIP packets after the AF_PACKET tap:");
    log(`[director]# tc qdisc replace dev eth0 clsact`);
    log(`[director]# tc filter replace dev eth0 ingress pref 49 handle 1 protocol ip bpf bytecode '${tcBytecode(tcDropIpv4Destinations([vip]))}' direct-action`);
    log("   (cls_bpf, classic BPF: ld [30]; jeq VIP -> TC_ACT_SHOT; else TC_ACT_UNSPEC)");
    // The lab's client is a local socket on a veth: its frames carry a partial checksum that a
    // real NIC would have completed; relayed unchanged, the real server would drop them.
    log("[client]# ethtool -K eth0 tx off    (done with the ethtool ioctl: veth frames relayed unchanged need whole checksums)");
    disableTxChecksumOffload(lab.ns("client"), "eth0");
    dr = await startDrDirector({ netns: lab.ns("director"), clientInterface: "eth0", serverInterface: "eth1", vips: [vip] });
    log(`director loop running: eth0 taps the client side, eth1 sends (and reads ARP only); source MAC ${dr.server.mac}`);
    await shell(lab, "director", log, "tc", ["filter", "show", "dev", "eth0", "ingress"]);

    section(log, "4. The virtual service, in ipvsadm's words (-g: gatewaying, direct routing)");
    const ipvsadm = (line: string): string => {
      log(`[director]# lvsadm ${line}`);
      const r = dr!.ipvsadm(line);
      if (r.stdout) printOutput(log, r.stdout);
      if (r.exitCode !== 0) throw new Error(`lvsadm ${line}: ${r.stderr.trim()}`);
      return r.stdout;
    };
    ipvsadm(`-A -t ${vip}:80 -s rr`);
    for (const rs of [rs1, rs2]) ipvsadm(`-a -t ${vip}:80 -r ${rs.eth0.ipv4}:80 -g -w 1`);
    ipvsadm("-Ln");
    await dr.resolveNeighbours([rs1.eth0.ipv4, rs2.eth0.ipv4]);
    log(`real servers' MACs learnt by ARP on eth1: ${[...dr.arp.learned].map(([ip, mac]) => `${ip} is at ${mac}`).join(", ")}`);

    await fourRequests(lab, vip, log);

    section(log, "6. The replies bypassed the balancer");
    ipvsadm("-Ln --stats");
    const s = dr.director.stats;
    const stats = dr.balancer.listing().services[0].stats!;
    log(`director loop: received ${s.received} frames (eth0 ${dr.client.stats.received}, eth1 ${dr.server.stats.received} ARP), forwarded ${s.forwarded}, dropped ${s.dropped}`);
    log(`OutPkts ${stats.outpkts}: in DR the balancer never sees a real server's reply (they go RS -> its gateway's kernel -> client).`);
    if (stats.outpkts !== 0n) throw new Error(`OutPkts ${stats.outpkts}: replies went through the balancer`);
  } finally {
    await dr?.stop();
    await lab.destroy();
    log("");
    log(`director stopped; lab ${lab.id} removed`);
  }
}
