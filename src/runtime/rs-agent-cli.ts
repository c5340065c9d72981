#!/usr/bin/env node
// lvs-rs-agent: the LVS-TUN real-server agent (src/runtime/rs-agent.ts) as a command. Runs
// on a real server whose kernel has no ipip / fou / gre module: decapsulates what the
// director tunnels to it and hands the inner packets to the kernel through a TUN device.
// See docs/tun-mode.md.

import { startRsAgent, type AgentTunnel } from "./rs-agent.js";
import { exitWhenDrained, quietOnBrokenPipe, writeAll } from "../admin/stdio.js";

const USAGE = `Usage: lvs-rs-agent [--tun-type ipip|gre|gue]... [--tun-port PORT] [--ipv6] [--device NAME] [--netns NAME]
The LVS-TUN real-server agent for kernels without the ipip / fou / gre modules: receives
the director's tunnelled packets (raw sockets), decapsulates them with the lvs-wasm data
plane and writes the inner packets into TUN device NAME (default lvsrs0, rp_filter 0).
Hold the VIP on lo with arp_ignore=1 and arp_announce=2 as for any LVS real server.

  --tun-type T    accept ipip (default), gre or gue; repeat or separate with commas
  --tun-port PORT the GUE port (the director's --tun-port), required with gue
  --ipv6          also take IPv6 ipip tunnels (ip6ip6, 4in6: raw IPv6 sockets)
  --device NAME   the TUN device (default lvsrs0)
  --netns NAME    run inside network namespace NAME
  -h, --help      this text

Signals: SIGUSR1 prints the counters, SIGTERM / SIGINT stop (exit 0).
`;

const log = (line: string) => process.stderr.write(`lvs-rs-agent: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const tunnels: AgentTunnel[] = [];
  let port: number | undefined;
  let device: string | undefined;
  let netns: string | undefined;
  let ipv6 = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith("--") && argv[i].includes("=") ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new Error(`${flag} needs a value (see --help)`);
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        await writeAll(process.stdout, USAGE);
        return 0;
      case "--tun-type":
        for (const t of value().split(",")) {
          if (t !== "ipip" && t !== "gre" && t !== "gue") throw new Error(`--tun-type ${t}: use ipip, gre or gue`);
          tunnels.push(t);
        }
        break;
      case "--tun-port":
        port = Number(value());
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--tun-port must be 1..65535`);
        break;
      case "--ipv6":
        ipv6 = true;
        break;
      case "--device":
        device = value();
        break;
      case "--netns":
        netns = value();
        break;
      default:
        throw new Error(`unknown argument ${flag} (see --help)`);
    }
  }
  const agent = await startRsAgent({ tunnels: tunnels.length ? tunnels : ["ipip"], guePort: port, device, netns, ipv6 });
  log(
    `decapsulating ${(tunnels.length ? tunnels : ["ipip"]).join(", ")}${ipv6 ? " (IPv4 and IPv6)" : ""}${port ? ` (GUE port ${port})` : ""} into ${agent.device.name}`,
  );
  log("ready");
  const counters = () => {
    const s = agent.stats;
    return (
      `received ${s.received}, decapsulated ${s.decapsulated}, passed ${s.passed}, dropped ${s.dropped}` +
      `${Object.keys(s.drops).length ? ` ${JSON.stringify(s.drops)}` : ""}, write failures ${s.writeFailures}`
    );
  };
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      log(`stopping (${why}): ${counters()}`);
      void agent.stop().then(() => resolve(code));
    };
    process.on("SIGUSR1", () => log(counters()));
    process.on("SIGTERM", () => stop("SIGTERM", 0));
    process.on("SIGINT", () => stop("SIGINT", 0));
    agent.running.catch((e: unknown) => {
      log(`receive loop failed: ${e instanceof Error ? e.message : String(e)}`);
      stop("failure", 1);
    });
  });
}

quietOnBrokenPipe();
main(process.argv.slice(2)).then(
  (code) => exitWhenDrained(code),
  (e: unknown) => {
    log(e instanceof Error ? e.message : String(e));
    void exitWhenDrained(1);
  },
);
