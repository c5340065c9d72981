// lvsd --workers 2 end to end (root, namespaces): two data-plane workers, each with its own
// Balancer and its own queue of the adapter (a multi-queue TUN device; AF_PACKET sockets in
// a fanout group), over LVS-NAT. Proves what docs/daemon.md, "Threads", promises:
//
// (a) a flow and its replies are handled by one worker: every held connection is in
//     exactly one worker's table, and it keeps answering after 4 s idle, longer than the
//     kernel keeps a TUN flow-steering entry (TUN_FLOW_EXPIRE, 3 s in
//     drivers/net/tun.c; tested on Linux 6.18), so that its next packets may reach either queue; packets that
//     reach the other worker are handed to the owner (hand-off counters > 0);
// (b) the statistics add up: -Ln --stats (totals over the workers) count exactly the
//     packets tshark saw leave the client for the service and reach it back;
// (c) configuration changes during traffic (-a / -e / -d, a SIGHUP reload) lose no
//     established connection: concurrent downloads all arrive byte for byte (sha256).
//
// Mutants that must fail (a): the owner hashed on the whole 5-tuple (a reply's tuple is
// not the request's, so replies go to a worker without the entry), or no hand-off (a
// packet at the wrong queue after the steering entry expired finds no entry).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sendCommand } from "../src/admin/control-client.js";
import { lvsadmRaw, startLvsd, waitFor, type RunningLvsd } from "../src/demo/support.js";
import type { WorkerReport } from "../src/runtime/lvsd-worker.js";
import { createLab, curl, httpUrl, labSkip, type Lab, type LabProcess } from "./support/netns.js";
import { slowDownload } from "./support/slow-download.js";
import { startFileServer } from "./support/file-server.js";

const skip = labSkip("curl", "tshark");
const FILE_MIB = 24;
const HELD = 16;

/**
 * Holds `n` keep-alive HTTP connections. The first request on each is /push: the server
 * answers its label at once and a last line 4.5 s later, so that after an idle pause the
 * real server speaks first. Prints "conn I round R LABEL port P" per answer and "conn I
 * late"; SIGUSR2 asks again (GET /) on every connection.
 */
const HOLDER = `
const net = require("node:net");
const [host, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let round = 0, open = 0;
const socks = [];
for (let i = 0; i < n; i++) {
  const s = net.connect({ host, port });
  let buf = "";
  s.on("data", (d) => {
    buf += d;
    const late = buf.indexOf("late\\n");
    if (late >= 0) { console.log("conn " + i + " late"); buf = buf.slice(late + 5); }
    const m = /\\r\\n\\r\\n(RS\\d+)\\n/.exec(buf);
    if (!m) return;
    buf = buf.slice(m.index + m[0].length);
    console.log("conn " + i + " round " + round + " " + m[1] + " port " + s.localPort);
    if (round === 0 && ++open === n) console.log("holding " + n);
  });
  s.on("error", (e) => console.log("conn " + i + " error " + e.code));
  s.write("GET /push HTTP/1.1\\r\\nHost: vip\\r\\n\\r\\n");
  socks.push(s);
}
process.on("SIGUSR2", () => { round++; for (const s of socks) s.write("GET / HTTP/1.1\\r\\nHost: vip\\r\\n\\r\\n"); });
`;

/** Answers its label; on /push, the label at once and "late" 4.5 s later (one body, its length known). */
const LABEL_SERVER = `
const [label, host] = process.argv.slice(1);
const s = require("node:http").createServer((q, r) => {
  if (q.url !== "/push") return r.end(label + "\\n");
  r.writeHead(200, { "content-length": label.length + 6 });
  r.write(label + "\\n");
  setTimeout(() => r.end("late\\n"), 4500);
});
s.keepAliveTimeout = 60000;
s.listen(80, host, () => console.log("listening"));
`;

const esc = (s: string) => s.replace(/[.]/g, "\\.");

for (const adapter of ["tun", "af-packet"] as const) {
  describe(`lvsd --workers 2 over ${adapter === "tun" ? "a multi-queue TUN device" : "AF_PACKET (fanout group)"}, NAT`, { skip }, () => {
    let lab: Lab;
    let lvsd: RunningLvsd;
    let VIP: string;
    let RS1: string;
    let RS2: string;
    let CLIENT: string;
    let rules: string;
    let expected: string;
    const servers: LabProcess[] = [];

    const lvsadm = async (args: string[]) => {
      const r = await lvsadmRaw(lvsd.socket, args);
      assert.equal(r.code, 0, `lvsadm ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    const report = async (): Promise<WorkerReport[]> => JSON.parse((await sendCommand(lvsd.socket, ["workers"])).stdout).workers;

    before(async () => {
      lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false });
      VIP = lab.vip!.v4;
      [RS1, RS2] = lab.realServers.map((r) => r.eth0.ipv4);
      CLIENT = lab.client.eth0.ipv4;
      const dir = mkdtempSync(join(tmpdir(), "workers-"));
      lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
      const data = randomBytes(FILE_MIB << 20);
      writeFileSync(join(dir, "random.bin"), data);
      expected = createHash("sha256").update(data).digest("hex");
      for (const [i, rs] of ["rs1", "rs2"].entries()) {
        const address = [RS1, RS2][i];
        // Port 80 answers its label (for the held connections), 8000 serves the file.
        const label = lab.spawn(rs as "rs1", process.execPath, ["-e", LABEL_SERVER, rs.toUpperCase(), address]);
        const [file] = await Promise.all([
          startFileServer(lab, rs as "rs1", join(dir, "random.bin"), address, 8000),
          label.waitForOutput(/^listening$/m, 10_000),
        ]);
        servers.push(label, file);
      }
      rules = join(dir, "rules");
      writeFileSync(
        rules,
        [
          `-A -t ${VIP}:80 -s rr`,
          `-a -t ${VIP}:80 -r ${RS1}:80 -m`,
          `-a -t ${VIP}:80 -r ${RS2}:80 -m`,
          `-A -t ${VIP}:8000 -s wrr`,
          `-a -t ${VIP}:8000 -r ${RS1}:8000 -m`,
          "",
        ].join("\n"),
      );
      if (adapter === "tun") {
        lvsd = await startLvsd(lab, ["--tun", "lvs0", "--rules", rules, "--workers", "2", "--metrics", "127.0.0.1:9101"]);
        await lab.exec("director", "ip", ["route", "add", `${VIP}/32`, "dev", "lvs0"]);
        await lab.exec("director", "ip", ["route", "add", "default", "dev", "lvs0", "table", "100"]);
        await lab.exec("director", "ip", ["rule", "add", "iif", "eth1", "lookup", "100"]);
      } else {
        await lab.exec("director", "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
        await lab.exec("client", "ip", ["neigh", "del", VIP, "dev", "eth0"]).catch(() => null);
        lvsd = await startLvsd(lab, [
          ...["--af-packet", "eth0", "--af-packet", "eth1", "--route", "10.0.0.0/24=eth0", "--route", "192.168.10.0/24=eth1"],
          ...["--isolate-vip", VIP, "--rules", rules, "--workers", "2"],
        ]);
        // Both workers know both real servers' MACs before traffic (a worker that learns one
        // tells the other): no first packet waits for a retransmission.
        await waitFor(
          "both workers to know the real servers",
          () => [RS1, RS2].every((a) => (lvsd.log().match(new RegExp(`worker \\d: neighbour ${esc(a)} is at`, "g")) ?? []).length >= 1),
          10_000,
        );
      }
      assert.match(lvsd.log(), /data plane on 2 worker threads/);
    });

    after(async () => {
      await lvsd?.stop();
      for (const s of servers) await s.stop();
      await lab?.destroy();
    });

    test("(a) a flow and its replies stay with one worker, also after 4 s idle (hand-offs through the rings)", async () => {
      const holder = lab.spawn("client", process.execPath, ["-e", HOLDER, VIP, "80", String(HELD)]);
      try {
        await holder.waitForOutput(new RegExp(`holding ${HELD}`), 20_000);
        const ports = [...holder.output().matchAll(/^conn \d+ round 0 RS\d port (\d+)$/gm)].map((m) => Number(m[1]));
        assert.equal(ports.length, HELD);
        // Idle past the TUN flow-steering entries' expiry; then the real servers speak first
        // (their packets reach whichever queue the kernel's hash picks), then the client.
        await holder.waitForOutput(new RegExp(`(conn \\d+ late\\n[\\s\\S]*){${HELD}}`), 15_000);
        process.kill(holder.pid, "SIGUSR2");
        await holder.waitForOutput(new RegExp(`(conn \\d+ round 1 RS\\d port \\d+\\n[\\s\\S]*){${HELD}}`), 15_000);
        assert.doesNotMatch(holder.output(), /error/, "no connection broke");
        const workers = await report();
        assert.equal(workers.length, 2);
        for (const port of ports) {
          const holders = workers.filter((w) => w.connections.some((c) => c.client.address === CLIENT && c.client.port === port));
          assert.equal(holders.length, 1, `client port ${port}: in ${holders.length} workers' tables`);
          const entry = holders[0].connections.find((c) => c.client.port === port)!;
          // Two requests and their ACKs at least: both rounds' client packets reached the owner.
          assert.ok(entry.inPackets >= 4, `client port ${port}: ${entry.inPackets} client packets counted by its owner`);
          assert.equal(entry.state, "ESTABLISHED");
        }
        const owners = new Set(ports.map((p) => workers.findIndex((w) => w.connections.some((c) => c.client.port === p))));
        assert.equal(owners.size, 2, "the flows are spread over both workers");
        const handedOff = workers.reduce((n, w) => n + w.datapath.handedOff, 0);
        const takenOver = workers.reduce((n, w) => n + w.datapath.takenOver, 0);
        assert.ok(handedOff > 0, "some packets reached the worker that does not own them and were handed over");
        assert.equal(takenOver, handedOff, "every packet handed over was taken by its owner");
        for (const w of workers) assert.equal(w.datapath.drops["handoff-full"] ?? 0, 0);
        if (adapter === "tun") {
          // The metrics count the hand-offs per worker too (scraped after the report: at least as many).
          const text = (await lab.exec("director", "curl", ["-s", "http://127.0.0.1:9101/metrics"])).stdout;
          const out = [...text.matchAll(/^lvs_wasm_datapath_handoffs_total\{worker="(\d)",direction="out"\} (\d+)$/gm)];
          assert.deepEqual(
            out.map((m) => m[1]),
            ["0", "1"],
          );
          assert.ok(out.reduce((n, m) => n + Number(m[2]), 0) >= handedOff, text);
        }
      } finally {
        await holder.stop();
      }
    });

    test("(b) -Ln --stats over both workers counts exactly the packets tshark saw between the client and the service", async () => {
      // A service of its own: no packet of the other tests' connections is counted.
      await lvsadm(["-A", "-t", `${VIP}:85`, "-s", "rr"]);
      await lvsadm(["-a", "-t", `${VIP}:85`, "-r", `${RS1}:80`, "-m"]);
      await lvsadm(["-a", "-t", `${VIP}:85`, "-r", `${RS2}:80`, "-m"]);
      // tshark prints one line per packet; a probe to port 86 (no service: lvsd counts nothing)
      // shows when it captures, and a second one that it has printed every packet before it.
      const capture = lab.spawn("client", "tshark", [
        ...["-l", "-i", "eth0", "-f", `tcp and host ${VIP} and (port 85 or port 86)`],
        ...["-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.dstport"],
      ]);
      const probes = () =>
        capture
          .output()
          .split("\n")
          .filter((l) => / 86$|\t86$/.test(l)).length;
      const probe = async () => {
        const seen = probes();
        await waitFor(
          "tshark to print a probe",
          async () => {
            await lab.exec("client", "curl", ["-s", "--max-time", "0.2", httpUrl(VIP, 86)]).catch(() => null);
            return probes() > seen;
          },
          20_000,
        );
      };
      await probe();
      const requests = 20;
      for (let i = 0; i < requests; i++) assert.equal((await curl(lab, "client", httpUrl(VIP, 85))).status, 200);
      await probe();
      await capture.stop("SIGINT");
      const lines = capture
        .output()
        .split("\n")
        .map((l) => l.trim().split(/\s+/));
      const sent = lines.filter(([src, , dport]) => src === CLIENT && dport === "85").length;
      const received = lines.filter(([src, sport]) => src === VIP && sport === "85").length;
      const stats = await lvsadm(["-Ln", "--stats", "-t", `${VIP}:85`]);
      const m = new RegExp(`TCP  ${esc(VIP)}:85 +(\\d+) +(\\d+) +(\\d+)`).exec(stats);
      assert.ok(m, stats);
      assert.deepEqual(
        { conns: Number(m[1]), inpkts: Number(m[2]), outpkts: Number(m[3]) },
        { conns: requests, inpkts: sent, outpkts: received },
        `lvsadm -Ln --stats:\n${stats}`,
      );
      // --json and --rate are the same totals.
      const json = JSON.parse(await lvsadm(["-Ln", "--json", "-t", `${VIP}:85`]));
      const total = json.services[0].stats;
      assert.deepEqual([Number(total.conns), Number(total.inpkts), Number(total.outpkts)], [requests, sent, received]);
      assert.match(await lvsadm(["-Ln", "--rate", "-t", `${VIP}:85`]), new RegExp(`TCP  ${esc(VIP)}:85 +\\d+ +\\d+ +\\d+`));
      const workers = await report();
      assert.ok(
        workers.every((w) => w.datapath.forwarded > 0),
        "both workers forwarded",
      );
    });

    test("(c) -a / -e / -d and a SIGHUP reload during four downloads: every download arrives byte for byte", async () => {
      // Paced reads (support/slow-download.ts): curl --limit-rate does not always hold back.
      const downloads = Array.from({ length: 4 }, () =>
        slowDownload(lab, "client", { host: VIP, port: 8000, path: "/random.bin", rate: 6 << 20, timeoutMs: 50_000 }),
      );
      await waitFor(
        "four downloads established",
        async () => (await lvsadm(["-Lnc"])).split("\n").filter((l) => l.includes(`${VIP}:8000`) && l.includes("ESTABLISHED")).length === 4,
        10_000,
      );
      await lvsadm(["-a", "-t", `${VIP}:8000`, "-r", `${RS2}:8000`, "-m", "-w", "2"]);
      await lvsadm(["-e", "-t", `${VIP}:8000`, "-r", `${RS1}:8000`, "-m", "-w", "3"]);
      await lvsadm(["-A", "-t", `${VIP}:81`, "-s", "lc"]);
      await lvsadm(["-a", "-t", `${VIP}:81`, "-r", `${RS2}:80`, "-m"]);
      await lvsadm(["-d", "-t", `${VIP}:8000`, "-r", `${RS2}:8000`]);
      // A command every worker refuses: ipvsadm's words once, nothing changed anywhere.
      const refused = await lvsadmRaw(lvsd.socket, ["-a", "-t", `${VIP}:99`, "-r", `${RS1}:80`, "-m"]);
      assert.deepEqual([refused.code, refused.stderr.trim()], [255, "Service not defined"]);
      writeFileSync(
        rules,
        [
          `-A -t ${VIP}:80 -s wlc`,
          `-a -t ${VIP}:80 -r ${RS1}:80 -m`,
          `-a -t ${VIP}:80 -r ${RS2}:80 -m`,
          `-A -t ${VIP}:8000 -s wrr`,
          `-a -t ${VIP}:8000 -r ${RS1}:8000 -m -w 3`,
          "",
        ].join("\n"),
      );
      const mark = lvsd.log().length;
      process.kill(lvsd.process.pid, "SIGHUP");
      await waitFor(
        "both workers reloaded",
        () =>
          (
            lvsd
              .log()
              .slice(mark)
              .match(/worker \d: reload .*: services \+0 -\d+ ~1/g) ?? []
          ).length === 2,
        10_000,
      );
      const results = await Promise.all(downloads);
      for (const r of results) assert.equal(r.stdout.split(" ")[0], expected, `a download (exit ${r.code}): ${r.stderr}`);
      // The configuration is the same in both workers, and lvsadm shows it once.
      const listing = await lvsadm(["-Ln"]);
      assert.match(listing, new RegExp(`TCP  ${esc(VIP)}:80 wlc`));
      assert.doesNotMatch(listing, new RegExp(`${esc(VIP)}:81`));
    });
  });
}
