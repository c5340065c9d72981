// The LVS-TUN real-server agent for the system benchmark (the kernel here has no ipip
// module): src/runtime/rs-agent.ts in its own process, started by run.ts inside a real
// server's namespace. Prints "ready"; SIGUSR2 prints "@@stats@@{...}"; SIGTERM stops.

import { startRsAgent } from "../../src/runtime/rs-agent.js";

const agent = await startRsAgent({ tunnels: ["ipip"], batch: 256 });
process.on("SIGUSR2", () => process.stdout.write(`@@stats@@${JSON.stringify(agent.stats)}\n`));
const shutdown = () => void agent.stop().finally(() => process.exit(0));
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
agent.running.catch((e: unknown) => {
  console.error(`rs-agent failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
process.stdout.write("ready\n");
