#!/usr/bin/env node
// lvsadm: ipvsadm's command language for lvs-wasm. `lvsadm replay ...` runs offline; every
// other command goes to the running director (lvsd) over its control socket, after being
// parsed here so that usage errors, -h and -v need no director.

import { readFileSync, writeFileSync } from "node:fs";
import { parseCommand } from "./command.js";
import { CommandError } from "./errors.js";
import { replay } from "./replay.js";
import { sendCommand, defaultSocketPath } from "./control-client.js";
import { ConfigError } from "../config/types.js";
import { formatUsage, formatVersion } from "./usage.js";
import { extractJsonFlag } from "./json-output.js";
import { SYSCTL_SUBCOMMAND } from "./sysctl-command.js";
import { drainMain } from "./drain-client.js";
import { exitWhenDrained, quietOnBrokenPipe, readStdin, writeAll } from "./stdio.js";

const REPLAY_HELP = `Usage: lvsadm replay --rules RULES --in IN.pcap --out OUT.pcap [--neigh IP=MAC]...
                     [--director-mac MAC] [--gateway-mac MAC] [--tunnel-source IP]... [--tunnel-mtu N]
Runs every frame of IN.pcap through the datapath configured by RULES (ipvsadm -S format),
with the capture's timestamps as the clock; writes the forwarded frames to OUT.pcap and
prints the -Ln --stats table and the drops by reason.
`;

// ipvsadm's help is reproduced byte for byte; what lvsadm adds to the language follows it.
const LVSADM_EXTRA_HELP = `
lvsadm's own (not in ipvsadm):
  --version      -v                   print the ipvsadm version line lvsadm speaks
  --json                              with -L or -S: the same data as JSON
  lvsadm replay --rules RULES --in IN.pcap --out OUT.pcap [options]
                                      run a rules file against a capture, offline
                                      (lvsadm replay --help for its options)
`;

async function replayMain(args: string[]): Promise<number> {
  const opts: Record<string, string> = {};
  const neighbours: Array<[string, string]> = [];
  const tunnelSources: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new ConfigError(`${a} needs a value`);
      return v;
    };
    if (a === "-h" || a === "--help") {
      await writeAll(process.stdout, REPLAY_HELP);
      return 0;
    } else if (a === "--neigh") {
      const v = value();
      const eq = v.indexOf("=");
      if (eq < 0) throw new ConfigError(`--neigh ${v}: expected IP=MAC`);
      neighbours.push([v.slice(0, eq), v.slice(eq + 1)]);
    } else if (a === "--tunnel-source") tunnelSources.push(value());
    else if (["--rules", "--in", "--out", "--director-mac", "--gateway-mac", "--tunnel-mtu"].includes(a)) opts[a] = value();
    else throw new ConfigError(`replay: unknown option ${a} (see lvsadm replay --help)`);
  }
  for (const need of ["--rules", "--in", "--out"]) if (!opts[need]) throw new ConfigError(`replay: ${need} is required (see lvsadm replay --help)`);
  const mtu = opts["--tunnel-mtu"] === undefined ? undefined : Number(opts["--tunnel-mtu"]);
  const result = replay({
    rules: readFileSync(opts["--rules"], "utf8"),
    capture: readFileSync(opts["--in"]),
    neighbours,
    director: {
      mac: opts["--director-mac"],
      gatewayMac4: opts["--gateway-mac"],
      gatewayMac6: opts["--gateway-mac"],
      tunnelSource4: tunnelSources.find((s) => !s.includes(":")),
      tunnelSource6: tunnelSources.find((s) => s.includes(":")),
      tunnelMtu: mtu,
    },
  });
  writeFileSync(opts["--out"], result.output);
  const drops = [...result.drops].sort((a, b) => b[1] - a[1]);
  await writeAll(
    process.stdout,
    result.stats +
      `\nFrames: ${result.frames}  forwarded: ${result.forwarded}  replied: ${result.replied}  passed to host: ${result.passed}\n` +
      (drops.length === 0 ? "Drops: none\n" : `Drops:\n${drops.map(([r, n]) => `  ${r}: ${n}`).join("\n")}\n`),
  );
  return 0;
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "replay") return await replayMain(args.slice(1));
  if (args[0] === "drain" || args[0] === "undrain") {
    const socket = process.env.LVS_WASM_SOCKET ?? defaultSocketPath();
    return drainMain(socket, args, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  }
  const { argv, json } = extractJsonFlag(args);
  if (argv[0] === SYSCTL_SUBCOMMAND) {
    // not ipvsadm's: the director's IPVS sysctls, read or set over the control socket
    const reply = await sendCommand(process.env.LVS_WASM_SOCKET ?? defaultSocketPath(), argv, "", 10_000, false);
    await Promise.all([writeAll(process.stdout, reply.stdout), writeAll(process.stderr, reply.stderr)]);
    return reply.exitCode;
  }
  let cmd: ReturnType<typeof parseCommand>;
  try {
    cmd = parseCommand(argv, { program: "lvsadm" });
  } catch (e) {
    if (e instanceof CommandError) {
      await writeAll(process.stderr, e.stderr);
      return e.exitCode;
    }
    throw e;
  }
  if (cmd.kind === "help") {
    await writeAll(process.stdout, formatUsage("lvsadm") + LVSADM_EXTRA_HELP);
    return 0;
  }
  if (cmd.kind === "version") {
    await writeAll(process.stdout, formatVersion());
    return 0;
  }
  const stdin = cmd.kind === "restore" ? await readStdin() : "";
  const socket = process.env.LVS_WASM_SOCKET ?? defaultSocketPath();
  const reply = await sendCommand(socket, argv, stdin, CONTROL_TIMEOUT_MS, json);
  // Everything written and drained before the status is returned (a pipe takes 64 KiB
  // at a time; exiting earlier cut listings short).
  await Promise.all([writeAll(process.stdout, reply.stdout), writeAll(process.stderr, reply.stderr)]);
  return reply.exitCode;
}

/** How long lvsadm waits for the director's answer (a 50,000-service restore takes seconds). */
const CONTROL_TIMEOUT_MS = 60_000;

quietOnBrokenPipe();
main(process.argv.slice(2)).then(
  (code) => exitWhenDrained(code),
  async (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    await writeAll(process.stderr, `lvsadm: ${message}\n`);
    await exitWhenDrained(2);
  },
);
