// Several directors behind an ECMP router, as docs/scale-out.md deploys them: the lab's
// ecmp topology, BIRD 2 on the router and on each director, lvsd --announce on each
// director with the same Maglev service, and the real servers. Used by `npm run demo --
// ecmp` and by test/e2e-ecmp.test.ts. In full NAT ("fnat") every director also owns a local
// address (10.200.<i>.1) that the real servers route to it.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { directorBirdConfig, routerBirdConfig, startBird, type RunningBird } from "../lab/bird.js";
import { startHttpServer, type HostName, type Lab } from "../lab/index.js";
import { startRsAgent, type RsAgent } from "../runtime/rs-agent.js";
import { disableTxChecksumOffload } from "../runtime/ethernet.js";
import { tunHostCommands } from "../runtime/tun-director.js";
import { printOutput, startLvsd, type DemoLog, type RunningLvsd } from "./support.js";

/** How the directors reach the real servers. */
export type EcmpMethod = "dr" | "tun" | "fnat";

/** Director i's full-NAT local address: the real servers route 10.200.<i>.0/24 to it. */
export function ecmpLocalAddress(index: number): string {
  return `10.200.${index}.1`;
}

export const ROUTER_AS = 65000;
export const DIRECTOR_AS = 65001;

export interface EcmpDirector {
  readonly index: number;
  readonly host: HostName;
  readonly lvsd: RunningLvsd;
  readonly bird: RunningBird;
}

export interface EcmpClusterOptions {
  readonly method: EcmpMethod;
  /** Directors started at once (d1 .. dN); the lab may have more hosts to start later. */
  readonly initialDirectors: number;
  /** Size of /big on the real servers (MiB). */
  readonly bigMiB?: number;
  readonly log?: DemoLog;
}

export class EcmpCluster {
  readonly directors = new Map<number, EcmpDirector>();
  router!: RunningBird;
  private readonly agents: RsAgent[] = [];

  private constructor(
    readonly lab: Lab,
    readonly options: EcmpClusterOptions,
  ) {}

  /** The real servers, the router's BIRD, then the first directors; resolves when the router routes over all of them. */
  static async start(lab: Lab, options: EcmpClusterOptions): Promise<EcmpCluster> {
    const cluster = new EcmpCluster(lab, options);
    // The client's frames cross veths with partial checksums: the directors forward them
    // untouched at L2/L3 (DR) and a real server would drop them (docs/lab.md).
    disableTxChecksumOffload(lab.ns("client"), "eth0");
    for (const rs of lab.realServers) {
      await startHttpServer(lab, `rs${rs.index}` as HostName, { bigMiB: options.bigMiB ?? 1 });
      if (options.method === "tun") cluster.agents.push(await startRsAgent({ netns: rs.ns, tunnels: ["ipip"] }));
      // Full NAT: each director's local address is routed to that director (the replies
      // go home to the director that owns the flow, whatever path the router chose).
      if (options.method === "fnat") {
        for (const d of lab.ecmpDirectors) {
          await lab.exec(`rs${rs.index}` as HostName, "ip", ["route", "add", `${ecmpLocalAddress(d.index)}/32`, "via", d.eth0.ipv4]);
        }
      }
    }
    cluster.router = await startBird(
      lab,
      "director",
      routerBirdConfig({
        routerId: lab.director.back.ipv4,
        localAs: ROUTER_AS,
        neighbours: lab.ecmpDirectors.map((d) => ({ name: `d${d.index}`, address: d.eth0.ipv4, as: DIRECTOR_AS })),
      }),
    );
    for (let i = 1; i <= options.initialDirectors; i++) await cluster.startDirector(i);
    await cluster.waitForPaths(options.initialDirectors, 20_000);
    return cluster;
  }

  /** BIRD and lvsd on director i, the service configured with lvsadm; it announces itself once ready. */
  async startDirector(index: number): Promise<EcmpDirector> {
    const lab = this.lab;
    const d = lab.ecmpDirectors.find((x) => x.index === index);
    if (!d) throw new RangeError(`the lab has no director d${index}`);
    const host = `d${index}` as HostName;
    const vip = lab.vip!.v4;
    const bird = await startBird(
      lab,
      host,
      directorBirdConfig({ routerId: d.eth0.ipv4, localAs: DIRECTOR_AS, routerAddress: lab.director.back.ipv4, routerAs: ROUTER_AS }),
    );
    let adapter: string[];
    if (this.options.method === "tun") {
      // The kernel routes the VIP into lvsd's TUN device; lvsd encapsulates to the real servers.
      lab.sysctl(host, "net.ipv4.ip_forward", 1);
      adapter = ["--tun", "lvs0", "--tunnel-source4", d.eth0.ipv4];
    } else if (this.options.method === "fnat") {
      // The kernel routes the VIP and this director's local address into lvsd's TUN device.
      lab.sysctl(host, "net.ipv4.ip_forward", 1);
      adapter = ["--tun", "lvs0"];
    } else {
      // One arm: frames for the VIP arrive on eth0 and leave by it to a real server's MAC.
      adapter = ["--af-packet", "eth0"];
    }
    // The whole configuration at start, from one rules file (the same on every director):
    // lvsd applies it before it announces anything.
    const flag = { tun: "-i", dr: "-g", fnat: "--fullnat" }[this.options.method];
    const rules = [
      `-A -t ${vip}:80 -s mh -b mh-port`,
      ...lab.realServers.map((rs) => `-a -t ${vip}:80 -r ${rs.eth0.ipv4}:80 ${flag} -w 1`),
      ...(this.options.method === "fnat" ? [`-P -t ${vip}:80 -z ${ecmpLocalAddress(index)}`] : []),
    ].join("\n");
    const dir = mkdtempSync(join(tmpdir(), `ecmp-d${index}-`));
    lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
    const rulesFile = join(dir, "rules");
    writeFileSync(rulesFile, `${rules}\n`);
    if (index === 1)
      printOutput(this.options.log ?? (() => {}), `rules (every director${this.options.method === "fnat" ? ", each its own -z" : ""}):\n${rules}`);
    const lvsd = await startLvsd(lab, [...adapter, "--rules", rulesFile, "--announce", "--sysctl", "sloppy_tcp=1"], { host, log: this.options.log });
    if (this.options.method === "tun") for (const [cmd, ...args] of tunHostCommands("lvs0", [vip])) await lab.exec(host, cmd, args);
    if (this.options.method === "fnat") {
      for (const [cmd, ...args] of tunHostCommands("lvs0", [vip, ecmpLocalAddress(index)])) await lab.exec(host, cmd, args);
    }
    const director = { index, host, lvsd, bird };
    this.directors.set(index, director);
    return director;
  }

  /** Stops the real servers' decapsulation agents (TUN); the lab's teardown does the rest. */
  async stop(): Promise<void> {
    await Promise.all(this.agents.splice(0).map((a) => a.stop().catch(() => {})));
  }

  /**
   * A director dies. "machine": its link goes dark first (as a dead machine sends nothing,
   * not even the FIN that would close its BGP session), then SIGKILL to lvsd and BIRD; the
   * router notices when its hold timer runs out. "process": SIGKILL alone; the kernel then
   * closes the BGP session and deletes lvsd's anchor, and the router learns at once.
   */
  async killDirector(index: number, how: "machine" | "process" = "machine"): Promise<void> {
    const d = this.directors.get(index);
    if (!d) throw new RangeError(`director d${index} is not running`);
    if (how === "machine") await this.lab.exec("lan", "ip", ["link", "set", `d${index}-eth0`, "down"]);
    await Promise.all([d.lvsd.process.stop("SIGKILL"), d.bird.kill()]);
    this.directors.delete(index);
  }

  /** The router's next hops for the VIP now. */
  async routerPaths(): Promise<string[]> {
    const r = await this.lab.exec("director", "ip", ["-4", "route", "show", `${this.lab.vip!.v4}/32`]);
    return [...r.stdout.matchAll(/via (\S+)/g)].map((m) => m[1]).sort();
  }

  /** Waits until the router's route has exactly `count` next hops; returns how long it took (ms). */
  async waitForPaths(count: number, timeoutMs: number, predicate: (paths: string[]) => boolean = () => true): Promise<number> {
    const started = performance.now();
    for (;;) {
      const paths = await this.routerPaths();
      if (paths.length === count && predicate(paths)) return performance.now() - started;
      if (performance.now() - started > timeoutMs) {
        throw new Error(`the router has ${paths.length} paths for the VIP (${paths.join(", ") || "none"}), expected ${count} within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
