// A lab by hand, for debugging (docs/lab.md):
//
//   node --import tsx src/lab/cli.ts up --mode dr [--rs 2] [--ipv6] [--backup] [--no-vip]
//                                     [--servers] [--haproxy]
//   node --import tsx src/lab/cli.ts list
//   node --import tsx src/lab/cli.ts cleanup [--all]
//
// `up` builds the lab, prints every namespace, interface, address and MAC, and keeps it
// until Ctrl-C (or SIGTERM), which tears it down. Work in it from another terminal with
// `ip netns exec <namespace> <command>`.

import { parseArgs } from "node:util";
import { createLab, type LabMode } from "./topology.js";
import { cleanupStaleLabs, listLabNamespaces } from "./registry.js";
import { startHttpServer, startIperf3Server, startUdpEcho } from "./servers.js";
import { startHaproxy } from "./haproxy.js";

const USAGE = `usage: cli.ts up --mode nat|dr|tun|router [--rs N] [--ipv6] [--backup] [--no-vip] [--servers] [--haproxy]
       cli.ts list
       cli.ts cleanup [--all]`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      mode: { type: "string", default: "nat" },
      rs: { type: "string", default: "2" },
      ipv6: { type: "boolean", default: false },
      backup: { type: "boolean", default: false },
      "no-vip": { type: "boolean", default: false },
      servers: { type: "boolean", default: false },
      haproxy: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  if (command === "list") {
    for (const ns of listLabNamespaces()) console.log(ns);
    return;
  }
  if (command === "cleanup") {
    const removed = cleanupStaleLabs({ all: values.all });
    console.log(removed.length ? `removed: ${removed.join(" ")}` : "nothing to remove");
    return;
  }
  if (command !== "up") throw new Error(`unknown command "${command}"\n${USAGE}`);

  const lab = await createLab({
    mode: values.mode as LabMode,
    realServers: Number(values.rs),
    ipv6: values.ipv6,
    backup: values.backup,
    vipOnDirector: !values["no-vip"],
    onStep: (s) => void process.stderr.write(`  ${s}\n`),
  });
  if (values.servers || values.haproxy) {
    for (const rs of lab.realServers) {
      const http = await startHttpServer(lab, rs.name);
      await startUdpEcho(lab, rs.name);
      await startIperf3Server(lab, rs.name);
      console.log(`${rs.label}: http (${http.impl}) :80 (/ and /big ${http.bigBytes} bytes), udp echo :7, iperf3 :5201`);
    }
  }
  if (values.haproxy) {
    const hp = await startHaproxy(lab);
    console.log(`haproxy on ${hp.address}:${hp.port} (config ${hp.configPath})`);
  }
  console.log(lab.describe());
  console.log("Ctrl-C tears the lab down.");
  await new Promise<void>(() => setInterval(() => undefined, 1 << 30)); // until a signal
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
