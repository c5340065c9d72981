// In a bench:system child (nat-director.ts): SIGWINCH starts a V8 CPU profile of this process
// (node:inspector, in process), the next SIGWINCH stops it, writes it next to the others in
// LVS_PROFILE_DIR and prints "@@profile@@<path>". run.ts --profile sends the signals around
// each measurement, so every measurement gets a profile of its own (node --cpu-prof would give
// one profile for the whole process). SIGWINCH: Node keeps SIGUSR1 for its debugger, the
// child has no terminal, and bench children already answer SIGUSR2 with their counters.

import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join } from "node:path";

export function profileOnSignal(): void {
  const dir = process.env.LVS_PROFILE_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  let session: Session | undefined;
  let n = 0;
  let busy = Promise.resolve();
  process.on("SIGWINCH", () => {
    busy = busy.then(async () => {
      if (!session) {
        session = new Session();
        session.connect();
        await session.post("Profiler.enable");
        await session.post("Profiler.setSamplingInterval", { interval: 250 });
        await session.post("Profiler.start");
        process.stdout.write("@@profiling@@\n");
        return;
      }
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      session = undefined;
      const path = join(dir, `${process.pid}-${++n}.cpuprofile`);
      writeFileSync(path, JSON.stringify(profile));
      process.stdout.write(`@@profile@@${path}\n`);
    });
  });
}
