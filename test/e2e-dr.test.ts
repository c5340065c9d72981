// LVS-DR end to end in the namespace lab, through the real daemon: lvsd in the director
// namespace over AF_PACKET on eth0 (clients) and eth1 (--server-side: ARP only, frames
// leave by it with eth1's MAC), the VIP hidden from the director's kernel (--isolate-vip),
// configured with the real lvsadm CLI. The real servers hold the VIP on lo and answer the
// client directly. Checked: four curls alternate RS2/RS1 (rr, newest first), the replies never reach the
// balancer (OutPkts 0, and the bytes it saw are a small fraction of a 24 MiB download), the
// download arrives whole, the forwarded frames carry eth1's MAC, and the tc filter is
// removed when lvsd stops.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createLab, curl, httpUrl, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { disableTxChecksumOffload } from "../src/runtime/ethernet.js";
import { lvsadmRaw, lvsdCounters, serviceStats, startLvsd, waitForLvsdLog, type RunningLvsd } from "../src/demo/support.js";

const skip = labSkip("curl", "tc", "sha256sum", "tcpdump");
const BIG_MIB = 24;

test("DR through lvsd (AF_PACKET, --server-side, --isolate-vip) and lvsadm: rr RS2/RS1 (newest first), replies bypass the director, a 24 MiB download arrives whole", {
  skip,
  timeout: 90_000,
}, async () => {
  let lab: Lab | undefined;
  let lvsd: RunningLvsd | undefined;
  try {
    lab = await createLab({ mode: "dr", realServers: 2 });
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers;
    await Promise.all([startHttpServer(lab, "rs1", { bigMiB: BIG_MIB }), startHttpServer(lab, "rs2", { bigMiB: BIG_MIB })]);
    disableTxChecksumOffload(lab.ns("client"), "eth0");
    lvsd = await startLvsd(lab, ["--af-packet", "eth0", "--af-packet", "eth1", "--server-side", "eth1", "--isolate-vip", vip]);
    const socket = lvsd.socket;
    const lvsadm = async (args: string[]) => {
      const r = await lvsadmRaw(socket, args);
      assert.equal(r.code, 0, `lvsadm ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    const tc = await lab.exec("director", "tc", ["filter", "show", "dev", "eth0", "ingress"]);
    assert.match(tc.stdout, /direct-action/, "the VIP isolation filter is installed");

    await lvsadm(["-A", "-t", `${vip}:80`, "-s", "rr"]);
    for (const rs of [rs1, rs2]) await lvsadm(["-a", "-t", `${vip}:80`, "-r", `${rs.eth0.ipv4}:80`, "-g", "-w", "1"]);
    assert.match(await lvsadm(["-Ln"]), new RegExp(`-> ${rs1.eth0.ipv4.replace(/\./g, "\\.")}:80\\s+Route\\s+1`));
    // lvsd probes new real servers by ARP on the server side: wait until both are known.
    for (const rs of [rs1, rs2]) await waitForLvsdLog(lvsd, new RegExp(`neighbour ${rs.eth0.ipv4.replace(/\./g, "\\.")} is at ${rs.eth0.mac} \\(eth1\\)`));

    // The frames the director sends the real servers carry eth1's MAC (not eth0's).
    const capture = lab.spawn("rs1", "tcpdump", ["-l", "-e", "-n", "-c", "1", "-i", "eth0", "tcp", "dst", "port", "80"]);
    const bodies: string[] = [];
    try {
      await capture.waitForOutput(/listening on/, 10_000);
      for (let i = 0; i < 4; i++) bodies.push((await curl(lab, "client", httpUrl(vip))).body.trim());
      const frame = await capture.waitForOutput(/^\S+ ([0-9a-f:]{17}) > ([0-9a-f:]{17})/m, 5000);
      assert.equal(frame[1], lab.director.back.mac, "source MAC is the outgoing interface's (eth1)");
    } finally {
      await capture.stop();
    }
    assert.deepEqual(bodies, ["RS2", "RS1", "RS2", "RS1"]);

    // The download: 24 MiB of zeros from whichever RS is next, checked by digest on the client.
    const digest = await lab.exec("client", "sh", ["-c", `curl -sS --noproxy '*' --max-time 40 ${httpUrl(vip, 80, "/big")} | sha256sum`], {
      timeoutMs: 45_000,
    });
    const expected = createHash("sha256")
      .update(Buffer.alloc(BIG_MIB << 20))
      .digest("hex");
    assert.equal(digest.stdout.split(" ")[0], expected, "the download is complete and intact");

    const stats = serviceStats(await lvsadm(["-Ln", "--stats", "--exact"]));
    assert.equal(stats.conns, 5);
    assert.ok(stats.inpkts > 0, "client packets went through the balancer");
    assert.equal(stats.outpkts, 0, "no reply packet went through the balancer");
    assert.ok(stats.inbytes < (BIG_MIB << 20) / 8, `the balancer saw ${stats.inbytes} bytes (client to VIP only), not the download`);
    const counters = await lvsdCounters(lvsd);
    const m = /forwarded (\d+),.*send failures (\d+)/.exec(counters);
    assert.ok(m, counters);
    assert.ok(Number(m[1]) >= stats.inpkts, `every client packet was forwarded: ${counters}`);
    assert.equal(Number(m[2]), 0, counters);

    assert.equal(await lvsd.stop(), 0, "lvsd exits 0 on SIGTERM");
    const after = await lab.exec("director", "tc", ["filter", "show", "dev", "eth0", "ingress"]);
    assert.equal(after.stdout.trim(), "", "the VIP isolation is removed with lvsd");
  } finally {
    if (lvsd && !lvsd.process.hasExited) await lvsd.stop().catch(() => null);
    await lab?.destroy();
  }
});
