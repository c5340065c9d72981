// lvsd with 1 and with 2 data-plane workers (lvsd --workers N), side by side in one run:
// the real lvsd program over a TUN device in a NAT lab (client, director, two real
// servers), wrk with 64 keep-alive connections and iperf3 with 4 parallel streams through
// it. Rounds are interleaved (1, 2, 2, 1, 1, 2, ...) so that a busy machine weighs on both;
// the report gives each round, the medians and the ratio of the medians, and the share of
// packets that took a hand-off ring (from lvsd's counters line).
//
//   node --import tsx bench/system/workers.ts [--rounds N] [--seconds S]
//
// Root, iproute2, wrk, iperf3 and nginx (the lab's HTTP server). The iperf3 service has one
// real server and no persistence, so that its data connections spread over the workers by
// their client ports as any other flows do (with -p every connection of one client belongs
// to one worker).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, httpUrl, iperf3, startHttpServer, startIperf3Server, wrk } from "../../src/lab/index.js";
import { startLvsd, waitFor } from "../../src/demo/support.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg("--rounds", 3);
const SECONDS = arg("--seconds", 4);

interface Round {
  workers: number;
  requestsPerSec: number;
  iperfGbps: number;
  received: number;
  handedOff: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false });
const dir = mkdtempSync(join(tmpdir(), "bench-workers-"));
try {
  const VIP = lab.vip!.v4;
  const [RS1, RS2] = lab.realServers.map((r) => r.eth0.ipv4);
  await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2"), startIperf3Server(lab, "rs1")]);
  const rules = join(dir, "rules");
  writeFileSync(
    rules,
    [
      `-A -t ${VIP}:80 -s rr`,
      `-a -t ${VIP}:80 -r ${RS1}:80 -m`,
      `-a -t ${VIP}:80 -r ${RS2}:80 -m`,
      `-A -t ${VIP}:5201 -s rr`,
      `-a -t ${VIP}:5201 -r ${RS1}:5201 -m`,
      "",
    ].join("\n"),
  );
  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const workers of r % 2 === 0 ? [1, 2] : [2, 1]) {
      const lvsd = await startLvsd(lab, ["--tun", "lvs0", "--rules", rules, "--no-huge-pages", "--workers", String(workers)], { timeoutMs: 60_000 });
      try {
        await lab.exec("director", "ip", ["route", "replace", `${VIP}/32`, "dev", "lvs0"]);
        await lab.exec("director", "ip", ["route", "replace", "default", "dev", "lvs0", "table", "100"]);
        await lab.exec("director", "ip", ["rule", "del", "iif", "eth1", "lookup", "100"]).catch(() => null);
        await lab.exec("director", "ip", ["rule", "add", "iif", "eth1", "lookup", "100"]);
        const w = await wrk(lab, "client", httpUrl(VIP), { durationS: SECONDS, connections: 64, threads: 2 });
        const i = await iperf3(lab, "client", VIP, { durationS: SECONDS, parallel: 4 });
        // The counters lines (one per worker): packets received and handed to another worker.
        const mark = lvsd.log().length;
        process.kill(lvsd.process.pid, "SIGUSR1");
        await waitFor(
          "the counters",
          () =>
            (
              lvsd
                .log()
                .slice(mark)
                .match(/packets received/g) ?? []
            ).length === workers,
          10_000,
        );
        const lines = lvsd.log().slice(mark);
        const sum = (re: RegExp) => [...lines.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
        const round: Round = {
          workers,
          requestsPerSec: w.requestsPerSec,
          iperfGbps: i.bitsPerSecond / 1e9,
          received: sum(/packets received (\d+)/g),
          handedOff: sum(/hand-offs out (\d+)/g),
        };
        rounds.push(round);
        console.log(
          `round ${r + 1}, ${workers} worker${workers > 1 ? "s" : ""}: wrk -c64 ${Math.round(round.requestsPerSec)} req/s (errors ${JSON.stringify(w.errors)}), ` +
            `iperf3 -P 4 ${round.iperfGbps.toFixed(2)} Gbit/s, hand-offs ${round.handedOff} of ${round.received} packets`,
        );
      } finally {
        await lvsd.stop();
      }
    }
  }
  const of = (n: number) => rounds.filter((x) => x.workers === n);
  const rps = [1, 2].map((n) => median(of(n).map((x) => x.requestsPerSec)));
  const gbps = [1, 2].map((n) => median(of(n).map((x) => x.iperfGbps)));
  const share =
    of(2).reduce((n, x) => n + x.handedOff, 0) /
    Math.max(
      1,
      of(2).reduce((n, x) => n + x.received, 0),
    );
  console.log(`medians over ${ROUNDS} rounds of ${SECONDS} s:`);
  console.log(`| | 1 worker | 2 workers | ratio |\n|---|---:|---:|---:|`);
  console.log(`| wrk -c64 keep-alive, requests/s | ${Math.round(rps[0])} | ${Math.round(rps[1])} | ${(rps[1] / rps[0]).toFixed(2)}x |`);
  console.log(`| iperf3 -P 4, Gbit/s | ${gbps[0].toFixed(2)} | ${gbps[1].toFixed(2)} | ${(gbps[1] / gbps[0]).toFixed(2)}x |`);
  console.log(`hand-offs with 2 workers: ${(share * 100).toFixed(2)}% of the packets received`);
} finally {
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
