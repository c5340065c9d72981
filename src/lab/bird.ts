// BIRD 2 in the lab: the configurations of docs/scale-out.md, generated, and a running
// `bird` per host with its own control socket. The router runs BGP to every director and
// installs one multipath route for the VIP (`merge paths on`); each director's BIRD learns
// the routes lvsd keeps in table 201 (`lvsd --announce`) and announces them.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HostName, Lab } from "./topology.js";
import type { LabProcess } from "./shell.js";

export interface BgpTimers {
  /** Seconds without a message before a session is declared dead (BGP minimum 3). */
  readonly holdTime: number;
  readonly keepaliveTime: number;
}

/** Short timers: a director that dies silently is dropped within holdTime seconds. */
export const LAB_BGP_TIMERS: BgpTimers = { holdTime: 3, keepaliveTime: 1 };

export interface RouterBirdOptions {
  readonly routerId: string;
  readonly localAs: number;
  readonly neighbours: ReadonlyArray<{ readonly name: string; readonly address: string; readonly as: number }>;
  readonly timers?: BgpTimers;
}

/** The ECMP router: takes the directors' VIP routes and installs them as one multipath route. */
export function routerBirdConfig(o: RouterBirdOptions): string {
  const t = o.timers ?? LAB_BGP_TIMERS;
  return `# ECMP router: BGP from every director, one multipath kernel route per VIP.
router id ${o.routerId};
protocol device { }
protocol kernel {
  ipv4 { import none; export all; };
  merge paths on;            # equal BGP routes from several directors -> one ECMP route
}
template bgp director {
  local ${o.routerId} as ${o.localAs};
  hold time ${t.holdTime}; keepalive time ${t.keepaliveTime}; connect delay time 1; connect retry time 1;
  ipv4 { import all; export none; };
}
${o.neighbours.map((n) => `protocol bgp ${n.name} from director { neighbor ${n.address} as ${n.as}; }`).join("\n")}
`;
}

export interface DirectorBirdOptions {
  readonly routerId: string;
  readonly localAs: number;
  readonly routerAddress: string;
  readonly routerAs: number;
  /** lvsd --announce-table / --announce-protocol (default 201 / 201). */
  readonly table?: number;
  readonly protocol?: number;
  readonly timers?: BgpTimers;
}

/** A director: announce exactly the routes lvsd keeps (table 201, proto 201), nothing else. */
export function directorBirdConfig(o: DirectorBirdOptions): string {
  const t = o.timers ?? LAB_BGP_TIMERS;
  return `# Director: announce the VIP routes that lvsd --announce keeps, while it keeps them.
router id ${o.routerId};
protocol device { }
protocol kernel lvsd_routes {
  kernel table ${o.table ?? 201};
  learn;                     # take routes BIRD did not make: lvsd's
  ipv4 { import where krt_source = ${o.protocol ?? 201}; export none; };
}
protocol bgp fabric {
  local ${o.routerId} as ${o.localAs};
  neighbor ${o.routerAddress} as ${o.routerAs};
  hold time ${t.holdTime}; keepalive time ${t.keepaliveTime}; connect delay time 1; connect retry time 1;
  ipv4 { import none; export all; next hop self; };
}
`;
}

export interface RunningBird {
  readonly host: HostName;
  readonly socket: string;
  readonly process: LabProcess;
  /** `birdc -s SOCKET CMD...` in the host. */
  birdc(...command: string[]): Promise<string>;
  /** SIGKILL, as a dying machine would. */
  kill(): Promise<void>;
}

/** Starts `bird -f` in a host with `config`; its files live in a temp dir removed with the lab. */
export async function startBird(lab: Lab, host: HostName, config: string): Promise<RunningBird> {
  const dir = mkdtempSync(join(tmpdir(), `bird-${host}-`));
  lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, "bird.conf");
  const socket = join(dir, "bird.ctl");
  writeFileSync(conf, config);
  await lab.exec(host, "bird", ["-p", "-c", conf]); // parse only: a broken config fails here, with BIRD's words
  const proc = lab.spawn(host, "bird", ["-f", "-c", conf, "-s", socket, "-P", join(dir, "bird.pid")]);
  const birdc = async (...command: string[]) => (await lab.exec(host, "birdc", ["-s", socket, ...command], { allowFailure: true })).stdout;
  const deadline = Date.now() + 10_000;
  while (!(await birdc("show", "status").catch(() => "")).includes("Daemon is up")) {
    if (proc.hasExited || Date.now() > deadline) throw new Error(`bird in ${host} did not come up: ${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    socket,
    process: proc,
    birdc,
    async kill() {
      await proc.stop("SIGKILL");
    },
  };
}
