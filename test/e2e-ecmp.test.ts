// Scale-out behind ECMP (docs/scale-out.md), end to end in the namespace lab: a client, a
// Linux router running BIRD 2 with one multipath route for the VIP, directors each running
// lvsd --announce with BIRD, and four real servers. Every director has the same Maglev
// service (mh, mh-port) and sloppy_tcp, so a flow that the router moves to another director
// mid-stream is picked up there and sent to the same real server.
//
// While 200 slow downloads (checksummed) and a stream of short connections run: director d2
// dies (its link goes dark, then SIGKILL to its lvsd and its BIRD), then d4 joins, then d1 is drained with
// `lvsadm drain --wait`. Reported per forwarding method: downloads broken out of 200, how
// long the router kept sending to the dead director, short connections that failed, and the
// spread of new connections over the real servers before and after.
//
// In full NAT ("fnat") each director sources its flows from its own local address, which the
// real servers route back to it: a flow lives on its director, so the dead director's flows
// break (and so does any flow the router moves when a director joins); the run reports how
// many, and checks that the others survive. The drain step is left out in full NAT: a drained
// director's flows would move, and break, for the same reason (docs/scale-out.md).

import { test } from "node:test";
import { execFile, execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { EcmpCluster, type EcmpMethod } from "../src/demo/ecmp-cluster.js";
import { lvsadmRaw, TSX_LOADER } from "../src/demo/support.js";
import { createLab, FLOW_CLIENT, httpUrl, labSkip, type Lab } from "./support/netns.js";

const skip = labSkip("bird", "birdc", "tc");
const LONG = 200;
const BYTES = 1 << 20;
const RATE = 32 * 1024; // bytes/s per download: about 32 s each
const SHORT_MS = 100;
const SECONDS = 34;

interface FlowReport {
  readonly longOk: number;
  readonly longBroken: readonly string[];
  readonly shorts: ReadonlyArray<{ readonly at: number; readonly body: string }>;
}

function parseFlows(output: string): FlowReport {
  const longOk = [...output.matchAll(/^long \d+ \d+ ok$/gm)].length;
  const longBroken = [...output.matchAll(/^long (\d+) \d+ broken (.*)$/gm)].map((m) => `${m[1]}:${m[2]}`);
  const shorts = [...output.matchAll(/^short (\d+) (.*)$/gm)].map((m) => ({ at: Number(m[1]), body: m[2] }));
  return { longOk, longBroken, shorts };
}

/** Real server label -> count, for the short connections that started in [from, to). */
function spread(r: FlowReport, from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of r.shorts) if (s.at >= from && s.at < to) counts[s.body] = (counts[s.body] ?? 0) + 1;
  return counts;
}

async function scenario(method: EcmpMethod): Promise<void> {
  let lab: Lab | undefined;
  let cluster: EcmpCluster | undefined;
  try {
    lab = await createLab({ mode: "ecmp", realServers: 4, ecmpDirectors: 4 });
    cluster = await EcmpCluster.start(lab, { method, initialDirectors: 3, bigMiB: BYTES / (1 << 20) });
    const vip = lab.vip!.v4;
    const d = (i: number) => lab!.ecmpDirectors[i - 1].eth0.ipv4;
    assert.deepEqual(await cluster.routerPaths(), [d(1), d(2), d(3)].sort(), "the router spreads the VIP over the three directors");

    const client = lab.spawn("client", process.execPath, [
      "--import",
      TSX_LOADER,
      FLOW_CLIENT.pathname,
      httpUrl(vip, 80, "/big"),
      httpUrl(vip),
      String(LONG),
      String(BYTES),
      String(RATE),
      String(SHORT_MS),
      String(SECONDS),
    ]);
    const started = performance.now();
    const at = () => performance.now() - started;
    const sleepUntil = async (ms: number) => {
      const wait = ms - at();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    };

    // A director dies: the router notices when its BGP hold timer (3 s) runs out.
    await sleepUntil(4000);
    const killedAt = at();
    await cluster.killDirector(2);
    const deadRouteMs = await cluster.waitForPaths(2, 10_000, (p) => !p.includes(d(2)));
    // A new director joins.
    await sleepUntil(9000);
    const joinedAt = at();
    await cluster.startDirector(4);
    await cluster.waitForPaths(3, 20_000, (p) => p.includes(d(4)));
    // A director is drained: its announcement goes, its flows move, it reports idle.
    await sleepUntil(18_000);
    const drainedAt = at();
    if (method !== "fnat") {
      const drain = await lvsadmRaw(cluster.directors.get(1)!.lvsd.socket, ["drain", "--wait", "--idle", "2", "--timeout", "30"]);
      assert.equal(drain.code, 0, `lvsadm drain --wait: ${drain.stderr}`);
      assert.match(drain.stdout, /^draining: announcing nothing/m);
      assert.match(drain.stdout, /^idle: nothing forwarded for \d+\.\d s/m);
      assert.deepEqual(await cluster.routerPaths(), [d(3), d(4)].sort(), "the drained director is no longer a path");
    }

    await client.waitForOutput(/^done$/m, 90_000);
    const flows = parseFlows(client.output());
    const shortFailed = flows.shorts.filter((s) => s.body.startsWith("ERR"));
    const before = spread(flows, 0, killedAt);
    const after = spread(flows, drainedAt + 3000, SECONDS * 1000);
    process.stdout.write(
      `# ecmp ${method}: downloads ${flows.longOk}/${LONG} intact, ${flows.longBroken.length} broken; ` +
        `router stopped using the dead director after ${Math.round(deadRouteMs)} ms; ` +
        `short connections ${flows.shorts.length - shortFailed.length}/${flows.shorts.length} answered; ` +
        `d4 joined at ${Math.round(joinedAt)} ms${method === "fnat" ? "" : `, d1 drained at ${Math.round(drainedAt)} ms`}; ` +
        `spread before ${JSON.stringify(before)}, after ${JSON.stringify(after)}\n`,
    );
    assert.equal(flows.longOk + flows.longBroken.length, LONG, "every download reported");
    if (method === "fnat") {
      // The dead director's flows cannot survive (their replies go to its local address), nor
      // can the flows the router moves between live directors when its path set changes
      // (Linux's hash-threshold multipath remaps some whenever a next hop comes or goes);
      // the flows that stayed on a live director do.
      assert.ok(flows.longBroken.length > 0, "full NAT: the dead director's downloads broke (nothing moves its local address)");
      assert.ok(flows.longOk > 0, `full NAT: the downloads that stayed on a live director survived: ${flows.longOk}/${LONG}`);
    } else {
      assert.deepEqual(flows.longBroken, [], "no download broke while directors died, joined and drained");
    }
    assert.ok(deadRouteMs < 3000 + 1500, `the router dropped the dead director within the hold time (+ margin): ${Math.round(deadRouteMs)} ms`);
    for (const label of ["RS1", "RS2", "RS3", "RS4"]) {
      assert.ok((before[label] ?? 0) > 0, `new connections reached ${label} before the failure: ${JSON.stringify(before)}`);
      assert.ok((after[label] ?? 0) > 0, `new connections reached ${label} at the end: ${JSON.stringify(after)}`);
    }
    // A short connection whose SYN went to the dead director before the router noticed is
    // retried by TCP and answered; none may fail outright.
    assert.deepEqual(
      shortFailed.map((s) => `${s.at}:${s.body}`),
      [],
      "every short connection was answered",
    );
  } finally {
    await cluster?.stop();
    await lab?.destroy();
  }
}

for (const method of ["dr", "tun", "fnat"] as const) {
  test(
    method === "fnat"
      ? "ECMP scale-out (fnat): a director dies, one joins; 200 slow downloads: the dead director's share breaks, the rest survive, new connections keep answering"
      : `ECMP scale-out (${method}): a director dies, one joins, one drains; 200 slow downloads and a stream of new connections lose nothing`,
    {
      skip,
      timeout: 180_000,
    },
    () => scenario(method),
  );
}

test("npm run demo -- ecmp: three directors, one dies, every curl answers, nothing left behind", { skip, timeout: 180_000 }, async () => {
  const walkthrough = new URL("../src/demo/walkthrough.ts", import.meta.url).pathname;
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ["--import", "tsx", walkthrough, "ecmp"], { timeout: 170_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr });
    });
  });
  assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
  const answers = [...r.stdout.matchAll(/^ {3}(RS\d) \(from 10\.0\.0\.2:\d+\)$/gm)].map((m) => m[1]);
  assert.equal(answers.length, 12, `six curls before and six after the failure:\n${r.stdout}`);
  assert.match(r.stdout, /^ {3}\tnexthop via 192\.168\.10\.102 dev eth1 weight 1 $/m, "d2 was a path before");
  const after = r.stdout.slice(r.stdout.indexOf("4. Director d2 dies"));
  assert.doesNotMatch(after, /nexthop via 192\.168\.10\.102/, "and is not after");
  assert.match(after, /^the router dropped d2 after \d+ ms/m);
  assert.match(after, /^connections scheduled per director so far: d1 \d+, d3 \d+$/m);
  const id = /\(namespaces (lvsw-\d+-\d+)-\*\)/.exec(r.stdout)?.[1];
  assert.ok(id, "the demo names its lab");
  assert.doesNotMatch(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(`^${id}-`, "m"));
});
