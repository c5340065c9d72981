// `npm run demo -- ecmp`: several directors behind an ECMP router, as docs/scale-out.md
// builds it. Three directors run lvsd --announce and BIRD 2; the router (BIRD 2 too) has one
// multipath route for the VIP; four real servers answer with their names. A client curls
// the VIP, one director is killed (SIGKILL to lvsd and BIRD), and the curls keep answering:
// every director picks the same real server for a flow (Maglev), and the router drops the
// dead one when its BGP hold timer runs out. Everything is torn down at the end.

import { createLab, curl, httpUrl, type Lab } from "../lab/index.js";
import { EcmpCluster } from "./ecmp-cluster.js";
import { lvsadmRaw, printOutput, section, serviceStats, shell, type DemoLog } from "./support.js";

/** Connections each running director has scheduled so far (lvsadm -Ln --stats --exact). */
async function perDirector(cluster: EcmpCluster, log: DemoLog): Promise<void> {
  const parts: string[] = [];
  for (const [i, d] of [...cluster.directors].sort((a, b) => a[0] - b[0])) {
    const listing = await lvsadmRaw(d.lvsd.socket, ["-Ln", "--stats", "--exact"]);
    parts.push(`d${i} ${serviceStats(listing.stdout).conns}`);
  }
  log(`connections scheduled per director so far: ${parts.join(", ")}`);
}

/** Curls the VIP `count` times (new connections each) and prints who answered. */
async function curls(lab: Lab, log: DemoLog, count: number): Promise<void> {
  const answers: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await curl(lab, "client", httpUrl(lab.vip!.v4), { timeoutMs: 10_000 });
    answers.push(`${r.body.trim()} (from ${r.local})`);
  }
  log(`[client]$ curl http://${lab.vip!.v4}/  x${count}`);
  printOutput(log, answers.join("\n"));
}

export async function run(log: DemoLog): Promise<void> {
  log("lvs-wasm walkthrough: scale-out behind ECMP, announced by BIRD over BGP");
  section(log, "1. The network: a router, three directors, four real servers");
  const lab = await createLab({ mode: "ecmp", realServers: 4, ecmpDirectors: 3 });
  let cluster: EcmpCluster | undefined;
  try {
    log(`client    ${lab.client.eth0.ipv4.padEnd(15)} default via the router ${lab.director.front.ipv4}`);
    log(`router    ${lab.director.front.ipv4} / ${lab.director.back.ipv4}: BIRD 2, BGP with every director, merge paths on`);
    for (const d of lab.ecmpDirectors) log(`d${d.index}        ${d.eth0.ipv4.padEnd(15)} lvsd --af-packet eth0 --announce; BIRD 2 announces what lvsd keeps`);
    for (const rs of lab.realServers) log(`${rs.name.padEnd(9)} ${rs.eth0.ipv4.padEnd(15)} VIP on lo; answers "${rs.label}"`);
    log(`VIP       ${lab.vip!.v4} (on no segment: the router reaches it through the directors)`);
    log(`(namespaces ${lab.id}-*)`);

    section(log, "2. Each director: the same Maglev rules; lvsd announces the VIP once they are applied and settled");
    cluster = await EcmpCluster.start(lab, { method: "dr", initialDirectors: 3, log });
    await shell(lab, "d1", log, "ip", ["route", "show", "table", "201"]);
    await shell(lab, "director", log, "ip", ["route", "show", `${lab.vip!.v4}/32`]);

    section(log, "3. New connections spread over the directors and the real servers");
    await curls(lab, log, 6);
    await perDirector(cluster, log);

    section(log, "4. Director d2 dies (its link goes dark, then SIGKILL to its lvsd and BIRD)");
    await cluster.killDirector(2);
    const ms = await cluster.waitForPaths(2, 10_000, (p) => !p.includes(lab.ecmpDirectors[1].eth0.ipv4));
    log(`the router dropped d2 after ${Math.round(ms)} ms (BGP hold time 3 s)`);
    await shell(lab, "director", log, "ip", ["route", "show", `${lab.vip!.v4}/32`]);
    await curls(lab, log, 6);
    await perDirector(cluster, log);
    log("every curl answered: the surviving directors pick the same real servers (Maglev), and pick up moved flows (sloppy_tcp)");
  } finally {
    await cluster?.stop();
    await lab.destroy();
    log("");
    log("lab torn down");
  }
}
