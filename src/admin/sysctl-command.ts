// `lvsadm sysctl [NAME=VALUE]...`: reads or sets the IPVS sysctls of a running director
// (not an ipvsadm command: the kernel's are files under /proc/sys/net/ipv4/vs). Without
// arguments it lists every one as `sysctl net.ipv4.vs` would; with assignments it checks
// them all, then sets them all, or none.

import type { Balancer } from "../balancer/balancer.js";
import { parseSysctlAssignment } from "../balancer/sysctls.js";
import { ConfigError } from "../config/types.js";
import type { CommandResult } from "./execute.js";

export const SYSCTL_SUBCOMMAND = "sysctl";

/** Answers `sysctl [NAME=VALUE]...` against a balancer; never throws on bad input. */
export function runSysctlCommand(balancer: Balancer, args: readonly string[]): CommandResult {
  try {
    const assignments = args.map((a) => parseSysctlAssignment(a));
    for (const { name, value } of assignments) balancer.setSysctl(name, value);
    const now = balancer.sysctls() as unknown as Record<string, number>;
    const names = assignments.length > 0 ? assignments.map((a) => a.name) : Object.keys(now);
    return { stdout: names.map((n) => `net.ipv4.vs.${n} = ${now[n]}\n`).join(""), stderr: "", exitCode: 0 };
  } catch (e) {
    if (e instanceof ConfigError) return { stdout: "", stderr: `lvsadm: ${e.message}\n`, exitCode: 2 };
    throw e;
  }
}
