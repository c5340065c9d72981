// The classic LVS-NAT walkthrough, end to end in network namespaces: a client, a director
// running lvsd over a TUN device, two real servers answering "RS1" and "RS2". The virtual
// service is configured with the real lvsadm CLI in ipvsadm's syntax, four curls from the
// client alternate between the real servers (rr), and the listings show the counters and
// the connection entries. Everything is torn down at the end, also on failure or Ctrl-C
// (the lab's teardown guarantees, docs/lab.md).

import { createLab, curl, httpUrl, startHttpServer, type Lab } from "../lab/index.js";
import { lvsadm, printOutput, section, shell, startLvsd, type DemoLog, type RunningLvsd, fourRequests } from "./support.js";

export async function run(log: DemoLog): Promise<void> {
  log("lvs-wasm walkthrough: LVS-NAT (masquerading), the LVS-HOWTO's first example");
  section(log, "1. The network: one namespace per host");
  // vipOnDirector false: the VIP is routed into lvsd's TUN device, not owned by the kernel.
  const lab: Lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false });
  let daemon: RunningLvsd | undefined;
  try {
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    log(`client    ${lab.client.eth0.ipv4.padEnd(14)} default via ${lab.client.gateway4}`);
    log(`director  ${lab.director.front.ipv4.padEnd(14)} eth0, client side`);
    log(`          ${lab.director.back.ipv4.padEnd(14)} eth1, real-server side (ip_forward=1)`);
    for (const rs of [rs1, rs2])
      log(`${rs.name.padEnd(9)} ${rs.eth0.ipv4.padEnd(14)} default via ${rs.gateway4} (replies must come back through the director)`);
    log(`VIP       ${vip.padEnd(14)} the virtual service's address: the client sends to the director's MAC`);
    log(`(namespaces ${lab.id}-*)`);

    section(log, "2. Real servers: a web server on each");
    await Promise.all([startHttpServer(lab, rs1.name), startHttpServer(lab, rs2.name)]);
    for (const rs of [rs1, rs2]) {
      log(`[director]# curl http://${rs.eth0.ipv4}/`);
      const r = await curl(lab, "director", httpUrl(rs.eth0.ipv4), { timeoutMs: 5000 });
      log(`   ${r.body.trim()}`);
    }

    section(log, "3. The director: lvsd over a TUN device");
    daemon = await startLvsd(lab, ["--tun", "lvs0"], { log });
    printOutput(log, daemon.log().trim(), "   ");
    const ready = daemon.log().length;
    log("Steer the VIP and the real servers' replies into the device:");
    await shell(lab, "director", log, "ip", ["route", "add", `${vip}/32`, "dev", "lvs0"]);
    await shell(lab, "director", log, "ip", ["route", "add", "default", "dev", "lvs0", "table", "100"]);
    await shell(lab, "director", log, "ip", ["rule", "add", "iif", "eth1", "lookup", "100"]);

    section(log, "4. The virtual service, in ipvsadm's words");
    const socket = daemon.socket;
    log(`(lvsadm reaches lvsd through LVS_WASM_SOCKET=${socket})`);
    await lvsadm(socket, log, ["-A", "-t", `${vip}:80`, "-s", "rr"]);
    for (const rs of [rs1, rs2]) await lvsadm(socket, log, ["-a", "-t", `${vip}:80`, "-r", `${rs.eth0.ipv4}:80`, "-m"]);
    await lvsadm(socket, log, ["-Ln"]);

    await fourRequests(lab, vip, log);
    log("Every reply came from the VIP: the director rewrote it.");

    section(log, "6. What the director saw");
    log("lvsd's log since it became ready:");
    printOutput(log, daemon.log().slice(ready).trim(), "   ");
    await lvsadm(socket, log, ["-Ln", "--stats"]);
    await lvsadm(socket, log, ["-Lnc"]);

    section(log, "7. Stopping lvsd (SIGTERM) and tearing the lab down");
    const before = daemon.log().length;
    const code = await daemon.stop();
    printOutput(log, daemon.log().slice(before).trim(), "   ");
    if (code !== 0) throw new Error(`lvsd exited with status ${String(code)}`);
  } finally {
    await lab.destroy();
    log(`lab ${lab.id} removed`);
  }
}
