// The soak (issue 17): traffic through the real lvsd (NAT, TUN device) in a namespace lab
// while its configuration churns. Held keep-alive connections ask every 200 ms and a new
// short connection is made every 100 ms; every 100 ms a destination is added, edited or
// removed over the control socket, and every second the rules file is rewritten and lvsd
// gets SIGHUP. Counts what was lost, checks that the counters add up and samples lvsd's
// RSS. test/soak.test.ts runs it for 30 s; `npm run soak` for 10 minutes.

import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { sendCommand } from "../../src/admin/control-client.js";
import { startLvsd } from "../../src/demo/support.js";
import { createLab, startHttpServer, type Lab } from "./netns.js";

export interface SoakFigures {
  readonly seconds: number;
  readonly held: number;
  /** Answers the held connections got, and how many of them were lost (error, close, or no answer). */
  readonly heldAnswers: number;
  readonly heldLost: number;
  readonly shortMade: number;
  readonly shortFailed: number;
  readonly churnCommands: number;
  /** Churn commands refused because a reload had just undone what they expected (ENOENT / EEXIST). */
  readonly churnRefused: number;
  readonly reloads: number;
  /** Per service: does the sum over its destinations equal the service's counters? */
  readonly statsMismatches: readonly string[];
  /** lvsd's RSS in KiB: after warm-up, highest, last. */
  readonly rssKiB: { readonly first: number; readonly max: number; readonly last: number };
}

/** Keep-alive holders plus a stream of short connections; prints counters on SIGTERM. */
const CLIENT = `
const net = require("node:net");
const [host, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let answers = 0, lost = 0, made = 0, failed = 0;
const req = "GET / HTTP/1.1\\r\\nHost: vip\\r\\n\\r\\n";
const held = [];
for (let i = 0; i < n; i++) {
  const s = net.connect({ host, port });
  const c = { s, waiting: 0, dead: false, since: 0 };
  s.setEncoding("utf8");
  let buf = "";
  s.on("data", (d) => { buf += d; while (/\\r\\n\\r\\nRS\\d+\\n/.test(buf)) { buf = buf.replace(/^[\\s\\S]*?\\r\\n\\r\\nRS\\d+\\n/, ""); answers++; c.waiting = 0; } });
  const die = () => { if (!c.dead) { c.dead = true; lost++; } };
  s.on("error", die); s.on("close", die);
  held.push(c);
}
setInterval(() => {
  const now = Date.now();
  for (const c of held) {
    if (c.dead) continue;
    if (c.waiting && now - c.since > 5000) { c.dead = true; lost++; c.s.destroy(); continue; }
    if (!c.waiting) { c.waiting = 1; c.since = now; c.s.write(req); }
  }
}, 200);
setInterval(() => {
  made++;
  const s = net.connect({ host, port });
  let ok = false;
  s.setTimeout(5000, () => s.destroy());
  s.on("data", (d) => { if (/RS\\d+/.test(d)) ok = true; });
  s.on("error", () => {});
  s.on("close", () => { if (!ok) failed++; });
  s.write("GET / HTTP/1.1\\r\\nHost: vip\\r\\nConnection: close\\r\\n\\r\\n");
}, 100);
setTimeout(() => console.log("holding " + n), 1000);
process.on("SIGTERM", () => { console.log(JSON.stringify({ answers, lost, made, failed })); process.exit(0); });
`;

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

export async function runSoak(seconds: number, log: (line: string) => void = () => {}): Promise<SoakFigures> {
  const lab: Lab = await createLab({ mode: "nat", realServers: 2, vipOnDirector: false });
  const dir = mkdtempSync(join(tmpdir(), "soak-"));
  try {
    const vip = lab.vip!.v4;
    const [rs1, rs2] = lab.realServers.map((r) => r.eth0.ipv4);
    await Promise.all([startHttpServer(lab, "rs1"), startHttpServer(lab, "rs2")]);
    const rules = join(dir, "rules");
    const base = [`-A -t ${vip}:80 -s wlc`, `-a -t ${vip}:80 -r ${rs1}:80 -m -w 1`, `-a -t ${vip}:80 -r ${rs2}:80 -m -w 1`];
    writeFileSync(rules, `${base.join("\n")}\n`);
    const lvsd = await startLvsd(lab, ["--tun", "lvs0", "--rules", rules, "--no-huge-pages"]);
    await lab.exec("director", "ip", ["route", "add", `${vip}/32`, "dev", "lvs0"]);
    await lab.exec("director", "ip", ["route", "add", "default", "dev", "lvs0", "table", "100"]);
    await lab.exec("director", "ip", ["rule", "add", "iif", "eth1", "lookup", "100"]);
    const held = 32;
    const client = lab.spawn("client", process.execPath, ["-e", CLIENT, vip, "80", String(held)]);
    await client.waitForOutput(/holding/, 30_000);
    const lvsdPid = Number(/lvsd: starting \(pid (\d+)\)/.exec(lvsd.log())?.[1]);
    const rss: number[] = [];
    let churnCommands = 0;
    let churnRefused = 0;
    let reloads = 0;
    const dummy = "192.168.10.250";
    const steps: string[][] = [
      ["-a", "-t", `${vip}:80`, "-r", `${dummy}:80`, "-m", "-w", "0"],
      ["-e", "-t", `${vip}:80`, "-r", `${rs1}:80`, "-m", "-w", "3"],
      ["-e", "-t", `${vip}:80`, "-r", `${dummy}:80`, "-m", "-w", "0", "-x", "10"],
      ["-e", "-t", `${vip}:80`, "-r", `${rs2}:80`, "-m", "-w", "2"],
      ["-d", "-t", `${vip}:80`, "-r", `${dummy}:80`],
    ];
    const end = Date.now() + seconds * 1000;
    const churn = (async () => {
      for (let i = 0; Date.now() < end; i++) {
        const r = await sendCommand(lvsd.socket, steps[i % steps.length]);
        churnCommands++;
        if (r.exitCode !== 0) {
          if (/No such destination|Destination already exists/.test(r.stderr)) churnRefused++;
          else throw new Error(`churn ${steps[i % steps.length].join(" ")}: ${r.stderr.trim()}`);
        }
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const hup = (async () => {
      for (let i = 0; Date.now() < end; i++) {
        // Alternate a second service in and out, with the base one always there.
        const extra = i % 2 === 0 ? [`-A -t ${vip}:81 -s rr`, `-a -t ${vip}:81 -r ${rs1}:80 -m -w 1`] : [];
        writeFileSync(rules, `${[...base, ...extra].join("\n")}\n`);
        process.kill(lvsdPid, "SIGHUP");
        reloads++;
        if (i % 5 === 0 && lvsdPid) rss.push(rssKiB(lvsdPid));
        if (i % 60 === 0) log(`soak: ${Math.round((end - Date.now()) / 1000)} s left, lvsd RSS ${rss.at(-1)} KiB`);
        await new Promise((res) => setTimeout(res, 1000));
      }
    })();
    await Promise.all([churn, hup]);
    rss.push(rssKiB(lvsdPid));
    process.kill(client.pid, "SIGTERM");
    await client.waitForOutput(/"answers"/, 10_000);
    const counts = JSON.parse(/\{"answers".*\}/.exec(client.output())![0]) as { answers: number; lost: number; made: number; failed: number };
    // Let the last packets be counted, then compare each service with its destinations.
    await new Promise((res) => setTimeout(res, 500));
    const listing = JSON.parse((await sendCommand(lvsd.socket, ["-L", "-n", "--stats"], "", 10_000, true)).stdout) as {
      services: Array<{
        config: { key: { address?: string; port?: number } };
        stats: Record<string, string | number>;
        destinations: Array<{ stats: Record<string, string | number> }>;
      }>;
    };
    const mismatches: string[] = [];
    for (const s of listing.services) {
      for (const field of Object.keys(s.stats)) {
        const sum = s.destinations.reduce((n, d) => n + BigInt(d.stats[field]), 0n);
        if (sum !== BigInt(s.stats[field]))
          mismatches.push(`${s.config.key.address}:${s.config.key.port} ${field}: service ${s.stats[field]}, destinations ${sum}`);
      }
    }
    await lvsd.stop();
    return {
      seconds,
      held,
      heldAnswers: counts.answers,
      heldLost: counts.lost,
      shortMade: counts.made,
      shortFailed: counts.failed,
      churnCommands,
      churnRefused,
      reloads,
      statsMismatches: mismatches,
      rssKiB: { first: rss[0] ?? 0, max: Math.max(...rss), last: rss.at(-1) ?? 0 },
    };
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
