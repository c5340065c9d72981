// Finds external judges (tshark, scapy, ip, curl ...). In CI a missing tool is a failure;
// elsewhere the test is skipped with the reason printed, never silently.

import { execFileSync } from "node:child_process";

export const IN_CI = process.env.CI === "true";

const cache = new Map<string, string | null>();

/** Why a tool is unusable, or null when it is there. */
export function missingTool(name: string): string | null {
  if (cache.has(name)) return cache.get(name)!;
  let why: string | null = null;
  try {
    if (name === "scapy") {
      execFileSync("/usr/bin/python3", ["-c", "import scapy.all"], { stdio: "ignore" });
    } else if (name === "root") {
      if (process.getuid?.() !== 0) why = "not running as root";
    } else if (name === "linux") {
      if (process.platform !== "linux") why = `not Linux (${process.platform})`;
    } else {
      execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    }
  } catch {
    why = name === "scapy" ? "scapy is not installed for /usr/bin/python3 (apt-get install python3-scapy)" : `${name} is not installed`;
  }
  cache.set(name, why);
  return why;
}

/**
 * Returns a `skip` value for node:test: false when every tool is present; otherwise the
 * reason (printed by the runner). Under CI=true a missing tool throws instead.
 */
export function skipUnless(...tools: string[]): false | string {
  const reasons = tools.map(missingTool).filter((r): r is string => r !== null);
  if (reasons.length === 0) return false;
  const reason = `SKIPPED: ${reasons.join("; ")}`;
  if (IN_CI) throw new Error(`required tool missing in CI: ${reasons.join("; ")}`);
  console.warn(reason);
  return reason;
}
