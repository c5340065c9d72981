// LVS-DR end to end in the namespace lab: client -> director (AF_PACKET, MAC rewrite only)
// -> real server, which holds the VIP on lo and answers the client directly. Checked: four
// curls alternate RS1/RS2 (rr), the replies never reach the balancer (OutPkts 0, and the
// bytes it saw are a small fraction of a 24 MiB download), and the download arrives whole.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createLab, curl, httpUrl, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { disableTxChecksumOffload, startDrDirector, type DrDirector } from "../src/runtime/dr-director.js";

const skip = labSkip("curl", "tc", "sha256sum");
const BIG_MIB = 24;

test("DR over AF_PACKET: rr alternates RS1/RS2, replies bypass the director, a 24 MiB download arrives whole", { skip, timeout: 90_000 }, async () => {
  let lab: Lab | undefined;
  let dr: DrDirector | undefined;
  try {
    lab = await createLab({ mode: "dr", realServers: 2 });
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    await Promise.all([startHttpServer(lab, "rs1", { bigMiB: BIG_MIB }), startHttpServer(lab, "rs2", { bigMiB: BIG_MIB })]);
    disableTxChecksumOffload(lab.ns("client"), "eth0");
    dr = await startDrDirector({ netns: lab.ns("director"), clientInterface: "eth0", serverInterface: "eth1", vips: [vip] });

    for (const line of [`-A -t ${vip}:80 -s rr`, `-a -t ${vip}:80 -r ${rs1.eth0.ipv4}:80 -g -w 1`, `-a -t ${vip}:80 -r ${rs2.eth0.ipv4}:80 -g -w 1`]) {
      const r: { exitCode: number; stderr: string } = dr.ipvsadm(line);
      assert.equal(r.exitCode, 0, `${line}: ${r.stderr}`);
    }
    const listing = dr.ipvsadm("-Ln");
    assert.match(listing.stdout, new RegExp(`-> ${rs1.eth0.ipv4.replace(/\./g, "\\.")}:80\\s+Route\\s+1`));
    await dr.resolveNeighbours([rs1.eth0.ipv4, rs2.eth0.ipv4]);

    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) bodies.push((await curl(lab, "client", httpUrl(vip))).body.trim());
    assert.deepEqual(bodies, ["RS1", "RS2", "RS1", "RS2"]);

    // The download: 24 MiB of zeros from whichever RS is next, checked by digest on the client.
    const digest = await lab.exec("client", "sh", ["-c", `curl -sS --noproxy '*' --max-time 40 ${httpUrl(vip, 80, "/big")} | sha256sum`], { timeoutMs: 45_000 });
    const expected = createHash("sha256").update(Buffer.alloc(BIG_MIB << 20)).digest("hex");
    assert.equal(digest.stdout.split(" ")[0], expected, "the download is complete and intact");

    const stats = dr.balancer.listing().services[0].stats!;
    assert.equal(stats.conns, 5n);
    assert.ok(stats.inpkts > 0n, "client packets went through the balancer");
    assert.equal(stats.outpkts, 0n, "no reply packet went through the balancer");
    assert.ok(stats.inbytes < BigInt((BIG_MIB << 20) / 8), `the balancer saw ${stats.inbytes} bytes (client to VIP only), not the download`);
    assert.equal(dr.director.stats.received, dr.client.stats.received + dr.server.stats.received);
    assert.ok(dr.director.stats.forwarded >= Number(stats.inpkts), "every client packet was forwarded");
    assert.equal(dr.director.stats.sendFailures, 0);
    const listed = dr.ipvsadm("-Ln --stats").stdout;
    assert.match(listed, /OutPkts/);
  } finally {
    await dr?.stop();
    await lab?.destroy();
  }
});
