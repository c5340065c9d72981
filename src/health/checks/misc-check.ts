// MISC_CHECK: runs a program (no shell, as keepalived runs misc_path) and judges its exit
// status: 0 succeeds, 1 fails, 2..255 succeed when misc_dynamic is set (the weight then
// becomes status - 2, applied by the health checker) and fail otherwise. A program still
// running after misc_timeout is sent SIGTERM (SIGKILL 2 s later) and counts as a failure.
import { spawn } from "node:child_process";
import type { CheckSpec } from "../spec.js";
import { errorText, type ProbeResult } from "./probe.js";

type MiscSpec = Extract<CheckSpec, { type: "MISC_CHECK" }>;

export function miscProbe(spec: MiscSpec): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const [file, ...args] = spec.command;
    let timedOut = false;
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(term);
      clearTimeout(kill);
      resolve(r);
    };
    const child = spawn(file, args, { stdio: "ignore", detached: true });
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid, "SIGTERM");
      kill = setTimeout(() => signalGroup(child.pid, "SIGKILL"), 2000);
    }, spec.timeout);
    child.once("error", (e) => done({ ok: false, detail: `${file}: ${errorText(e)}` }));
    child.once("exit", (code, signal) => {
      if (timedOut) return done({ ok: false, detail: `${file} timed out after ${spec.timeout} ms` });
      if (code === null) return done({ ok: false, detail: `${file} killed by ${signal}` });
      const ok = code === 0 || (spec.dynamic && code >= 2);
      done({ ok, detail: `${file} exited with status ${code}`, exitStatus: code });
    });
  });
}

/** The program and whatever it started (keepalived kills the process group too). */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}
