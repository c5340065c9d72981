// The classic LVS topologies, each host a network namespace (see docs/lab.md).
//
//   client ──(front segment: br0)── director ──(back segment: br1)── rs1, rs2, ...
//                                 └ backup ┘ (optional, on both segments)
//
// The ecmp mode (docs/scale-out.md) turns the director into a plain ECMP router and adds
// one-armed directors d1..dN on the back segment, beside the real servers:
//
//   client ──(br0)── router ──(br1)── d1, d2, ... (directors)   rs1, rs2, ... (VIP on lo)
//
// Both segments are bridges inside one more namespace, `lan` (the switch). Every host owns
// plain veth ports (eth0, and eth1 on directors), a backup director joins both segments
// without rewiring anything, and a capture in `lan` sees every frame on the wire.
// Addresses are private / documentation ranges and exist only inside these namespaces.

import { LabCommandError, run, runSync, spawnTracked, type ExecOptions, type ExecResult, type LabProcess } from "./shell.js";
import { cleanupStaleLabs, deleteNamespacesSync, nextLabId, registerLab, unregisterLab, type Teardown } from "./registry.js";

export type LabMode = "nat" | "dr" | "tun" | "router" | "ecmp";
export type HostName = "client" | "director" | "backup" | "lan" | `rs${number}` | `d${number}`;
export type Segment = "front" | "back";

export interface LabOptions {
  /**
   * nat, dr, tun: a director with a VIP; router: the director is a plain kernel router;
   * ecmp: the director is an ECMP router and `ecmpDirectors` one-armed directors sit on the
   * back segment (the VIP is routed to them; it is on no segment).
   */
  mode: LabMode;
  /** ecmp: how many directors (d1 .. dN, 1 .. 8). Default 3. */
  ecmpDirectors?: number;
  /** Number of real servers (1 .. 50). Default 2. */
  realServers?: number;
  /** Also give every interface an IPv6 address (fd00::/64 front, fd00:10::/64 back). */
  ipv6?: boolean;
  /** Add a backup director on both segments (no VIP, same kernel settings as the director). */
  backup?: boolean;
  /**
   * Whether the director's kernel holds the VIP (nat/tun: on eth0, dr: on eth1). Default
   * true, which is what HAProxy needs. With false the lab only makes sure that packets to
   * the VIP reach the director's front MAC (a permanent neighbour entry on the client).
   */
  vipOnDirector?: boolean;
  /**
   * Called with the name of each build step before it runs; throwing aborts the build (the
   * lab is then torn down and the error rethrown). For progress output and fault tests.
   */
  onStep?: (step: string) => void | Promise<void>;
}

export interface LabInterface {
  /** Interface name inside its host: eth0 (front for directors, the only one elsewhere), eth1. */
  readonly name: string;
  readonly host: HostName;
  readonly segment: Segment;
  readonly mac: string;
  readonly ipv4: string;
  readonly prefix4: number;
  readonly ipv6: string | null;
  readonly prefix6: number;
  /** Its peer, a port of the segment's bridge in the `lan` namespace. */
  readonly bridgePort: string;
}

export interface LabHost {
  readonly name: HostName;
  readonly role: "client" | "director" | "backup" | "rs" | "lan" | "ecmp-director";
  /** The namespace: `lvsw-<pid>-<n>-<name>`. */
  readonly ns: string;
  readonly interfaces: readonly LabInterface[];
  /** Default route, or null (lan). */
  readonly gateway4: string | null;
  readonly gateway6: string | null;
}

export interface ClientHost extends LabHost {
  readonly eth0: LabInterface;
}

export interface DirectorHost extends LabHost {
  /** eth0, on the client segment. */
  readonly front: LabInterface;
  /** eth1, on the real-server segment. */
  readonly back: LabInterface;
}

export interface RealServerHost extends LabHost {
  /** 1-based. */
  readonly index: number;
  /** What its servers answer: "RS1", "RS2", ... */
  readonly label: string;
  readonly eth0: LabInterface;
  /** True in dr and tun: the VIP is on lo and the host does not answer ARP for it. */
  readonly vipOnLo: boolean;
}

/** ecmp: a one-armed director on the back segment, d1 .. dN. */
export interface EcmpDirectorHost extends LabHost {
  /** 1-based. */
  readonly index: number;
  /** eth0, on the back segment (the router and the real servers are there too). */
  readonly eth0: LabInterface;
}

export interface SegmentInfo {
  /** Bridge name inside the lan namespace. */
  readonly bridge: string;
  readonly subnet4: string;
  readonly subnet6: string | null;
}

export interface AddressPair {
  readonly v4: string;
  readonly v6: string | null;
}

export interface Lab {
  /** `lvsw-<pid>-<n>`; every namespace of the lab starts with it. */
  readonly id: string;
  readonly mode: LabMode;
  readonly ipv6: boolean;
  readonly client: ClientHost;
  readonly director: DirectorHost;
  readonly backup: DirectorHost | null;
  readonly realServers: readonly RealServerHost[];
  /** ecmp: the directors behind the router (`director` is the router then); empty otherwise. */
  readonly ecmpDirectors: readonly EcmpDirectorHost[];
  /** The switch: bridges br0 (front) and br1 (back). */
  readonly lan: LabHost;
  readonly segments: { readonly front: SegmentInfo; readonly back: SegmentInfo };
  /** The virtual IP (null in the router lab). nat/tun: on the front segment; dr: on the back. */
  readonly vip: AddressPair | null;
  readonly vipOnDirector: boolean;
  /** Where a client connects: the VIP, or RS1's address in the router lab. */
  readonly target: AddressPair;
  /** Every host by name. */
  readonly hosts: ReadonlyMap<HostName, LabHost>;
  readonly destroyed: boolean;

  /** Namespace of a host. */
  ns(host: HostName): string;
  /** Runs a command in a host (`ip netns exec`), resolving with its output. */
  exec(host: HostName, cmd: string, args?: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running process in a host; it is killed at teardown at the latest. */
  spawn(host: HostName, cmd: string, args?: readonly string[]): LabProcess;
  /** Sets a sysctl in a host (key with dots, as `sysctl -w`). */
  sysctl(host: HostName, key: string, value: string | number): void;
  /** Registers a synchronous clean-up (temp dirs, ...) to run at teardown. */
  onDestroy(fn: () => void): void;
  /** A human summary: hosts, namespaces, interfaces, addresses, MACs. */
  describe(): string;
  /** Kills every process in the lab and deletes its namespaces. Idempotent. */
  destroy(): Promise<void>;
  /** The same, synchronously (what exit and signal handlers use). */
  destroySync(): void;
}

// ---- addressing plan --------------------------------------------------------------

export const ADDRESSES = {
  front4: "10.0.0.0/24",
  front6: "fd00::/64",
  back4: "192.168.10.0/24",
  back6: "fd00:10::/64",
  client: { v4: "10.0.0.2", v6: "fd00::2" },
  directorFront: { v4: "10.0.0.1", v6: "fd00::1" },
  directorBack: { v4: "192.168.10.1", v6: "fd00:10::1" },
  backupFront: { v4: "10.0.0.3", v6: "fd00::3" },
  backupBack: { v4: "192.168.10.2", v6: "fd00:10::2" },
  /** nat and tun */
  vipFront: { v4: "10.0.0.100", v6: "fd00::100" },
  /** dr: the VIP lives on the real-server segment */
  vipBack: { v4: "192.168.10.100", v6: "fd00:10::100" },
  /** ecmp: on no segment; the router reaches it through the directors */
  vipEcmp: { v4: "10.100.0.100", v6: "fd00:100::100" },
  ecmpDirector: (i: number) => ({ v4: `192.168.10.${100 + i}`, v6: `fd00:10::${100 + i}` }),
  realServer: (i: number) => ({ v4: `192.168.10.${10 + i}`, v6: `fd00:10::${10 + i}` }),
} as const;

const MAX_REAL_SERVERS = 50;
const MAX_ECMP_DIRECTORS = 8;

/** Locally administered MACs: 02:00:00:00:<host>:<interface>. */
function mac(hostByte: number, ifIndex: number): string {
  return `02:00:00:00:${hostByte.toString(16).padStart(2, "0")}:${ifIndex.toString(16).padStart(2, "0")}`;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/** The /proc/sys path of a dotted key (interface names may not contain dots here). */
function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, "/")}`;
}

function writeSysctlsSync(ns: string, settings: ReadonlyArray<readonly [string, string | number]>): void {
  if (settings.length === 0) return;
  const script = settings.map(([k, v]) => `echo '${v}' > ${sysctlPath(k)}`).join(" && ");
  runSync("ip", ["netns", "exec", ns, "sh", "-ec", script]);
}

interface HostPlan {
  name: HostName;
  role: LabHost["role"];
  hostByte: number;
  interfaces: LabInterface[];
  gateway4: string | null;
  gateway6: string | null;
  sysctls: Array<readonly [string, string | number]>;
  loAddresses: string[];
  extraRoutes: string[];
  /** Lines for `ip -batch` after addresses and routes (neighbour entries, ...). */
  extraCommands: string[];
}

class LabImpl implements Lab, Teardown {
  readonly id: string;
  readonly mode: LabMode;
  readonly ipv6: boolean;
  client!: ClientHost;
  director!: DirectorHost;
  backup: DirectorHost | null = null;
  realServers: RealServerHost[] = [];
  ecmpDirectors: EcmpDirectorHost[] = [];
  lan!: LabHost;
  readonly segments: Lab["segments"];
  vip: AddressPair | null = null;
  readonly vipOnDirector: boolean;
  target!: AddressPair;
  readonly hosts = new Map<HostName, LabHost>();
  destroyed = false;

  private readonly namespaces: string[] = [];
  private readonly processes = new Set<LabProcess>();
  private readonly cleanups: Array<() => void> = [];

  constructor(options: LabOptions) {
    this.id = nextLabId();
    this.mode = options.mode;
    this.ipv6 = options.ipv6 ?? false;
    this.vipOnDirector = options.mode === "ecmp" ? false : (options.vipOnDirector ?? true);
    this.segments = {
      front: { bridge: "br0", subnet4: ADDRESSES.front4, subnet6: this.ipv6 ? ADDRESSES.front6 : null },
      back: { bridge: "br1", subnet4: ADDRESSES.back4, subnet6: this.ipv6 ? ADDRESSES.back6 : null },
    };
  }

  ns(host: HostName): string {
    const h = this.hosts.get(host);
    if (!h) throw new Error(`lab ${this.id} has no host "${host}" (hosts: ${[...this.hosts.keys()].join(", ")})`);
    return h.ns;
  }

  async exec(host: HostName, cmd: string, args: readonly string[] = [], options?: ExecOptions): Promise<ExecResult> {
    this.assertLive();
    return run("ip", ["netns", "exec", this.ns(host), cmd, ...args], options);
  }

  spawn(host: HostName, cmd: string, args: readonly string[] = []): LabProcess {
    this.assertLive();
    const p = spawnTracked("ip", ["netns", "exec", this.ns(host), cmd, ...args]);
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  sysctl(host: HostName, key: string, value: string | number): void {
    this.assertLive();
    writeSysctlsSync(this.ns(host), [[key, value]]);
  }

  onDestroy(fn: () => void): void {
    this.cleanups.push(fn);
  }

  describe(): string {
    const lines = [
      `lab ${this.id} mode=${this.mode}${this.ipv6 ? " ipv6" : ""}` +
        (this.vip ? ` vip=${this.vip.v4}${this.vip.v6 ? ` ${this.vip.v6}` : ""}${this.vipOnDirector ? " (on director)" : ""}` : "") +
        ` target=${this.target.v4}`,
    ];
    for (const h of this.hosts.values()) {
      lines.push(`  ${h.name.padEnd(9)} ns=${h.ns}${h.gateway4 ? ` gw=${h.gateway4}` : ""}`);
      for (const i of h.interfaces) {
        lines.push(`    ${i.name} ${i.mac} ${i.ipv4}/${i.prefix4}${i.ipv6 ? ` ${i.ipv6}/${i.prefix6}` : ""} (${i.segment}, lan port ${i.bridgePort})`);
      }
    }
    lines.push(`  run a shell in a host: ip netns exec ${this.ns("client")} bash`);
    return lines.join("\n");
  }

  async destroy(): Promise<void> {
    const waiting = [...this.processes].map((p) => p.exited);
    this.destroySync();
    await Promise.all(waiting);
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      for (const p of this.processes) p.killSync();
      deleteNamespacesSync(this.namespaces);
      for (const fn of this.cleanups.splice(0)) {
        try {
          fn();
        } catch {
          /* a failed clean-up must not keep the rest alive */
        }
      }
    } finally {
      unregisterLab(this);
    }
  }

  private assertLive(): void {
    if (this.destroyed) throw new Error(`lab ${this.id} is destroyed`);
  }

  // ---- building ---------------------------------------------------------------------

  async build(options: LabOptions): Promise<void> {
    const n = options.realServers ?? 2;
    if (!Number.isInteger(n) || n < 1 || n > MAX_REAL_SERVERS) {
      throw new RangeError(`realServers must be an integer in 1..${MAX_REAL_SERVERS}, got ${String(n)}`);
    }
    if (!["nat", "dr", "tun", "router", "ecmp"].includes(options.mode)) {
      throw new RangeError(`mode must be "nat", "dr", "tun", "router" or "ecmp", got ${JSON.stringify(options.mode)}`);
    }
    const d = options.ecmpDirectors ?? 3;
    if (!Number.isInteger(d) || d < 1 || d > MAX_ECMP_DIRECTORS) {
      throw new RangeError(`ecmpDirectors must be an integer in 1..${MAX_ECMP_DIRECTORS}, got ${String(d)}`);
    }
    const step = async (name: string, fn: () => void) => {
      await options.onStep?.(name);
      fn();
      await yieldToEventLoop(); // a signal that arrived during the step is handled here
    };

    const plans = this.plan(n, options);
    const lanNs = `${this.id}-lan`;
    const allNs = [lanNs, ...plans.map((p) => `${this.id}-${p.name}`)];
    // Registered before they exist: a teardown at any point deletes whatever was made.
    this.namespaces.push(...allNs);
    registerLab(this);

    await step("namespaces", () => {
      runSync("ip", ["-batch", "-"], `${allNs.map((ns) => `netns add ${ns}`).join("\n")}\n`);
    });

    await step("lan", () => {
      writeSysctlsSync(lanNs, [
        ["net.ipv6.conf.all.disable_ipv6", 1],
        ["net.ipv6.conf.default.disable_ipv6", 1],
      ]);
      runSync(
        "ip",
        ["-n", lanNs, "-batch", "-"],
        `${[
          "link set lo up",
          "link add br0 type bridge stp_state 0 mcast_snooping 0",
          "link add br1 type bridge stp_state 0 mcast_snooping 0",
          "link set br0 up",
          "link set br1 up",
        ].join("\n")}\n`,
      );
    });

    for (const plan of plans) {
      const ns = `${this.id}-${plan.name}`;
      await step(`sysctl:${plan.name}`, () => writeSysctlsSync(ns, plan.sysctls));
      await step(`links:${plan.name}`, () => {
        const cmds: string[] = ["link set lo up"];
        for (const i of plan.interfaces) {
          cmds.push(`link add ${i.name} type veth peer name ${i.bridgePort} netns ${lanNs}`);
          cmds.push(`link set ${i.name} address ${i.mac}`);
          cmds.push(`addr add ${i.ipv4}/${i.prefix4} dev ${i.name}`);
          if (i.ipv6) cmds.push(`addr add ${i.ipv6}/${i.prefix6} dev ${i.name} nodad`);
          cmds.push(`link set ${i.name} up`);
        }
        for (const a of plan.loAddresses) cmds.push(`addr add ${a} dev lo${a.includes(":") ? " nodad" : ""}`);
        runSync("ip", ["-n", ns, "-batch", "-"], `${cmds.join("\n")}\n`);
        runSync(
          "ip",
          ["-n", lanNs, "-batch", "-"],
          `${plan.interfaces.map((i) => `link set ${i.bridgePort} master ${i.segment === "front" ? "br0" : "br1"} up`).join("\n")}\n`,
        );
        const routes: string[] = [];
        if (plan.gateway4) routes.push(`route add default via ${plan.gateway4}`);
        if (plan.gateway6) routes.push(`route add ::/0 via ${plan.gateway6}`);
        routes.push(...plan.extraRoutes, ...plan.extraCommands);
        if (routes.length > 0) runSync("ip", ["-n", ns, "-batch", "-"], `${routes.join("\n")}\n`);
      });
      this.publish(plan, ns);
    }
    this.hosts.set("lan", (this.lan = { name: "lan", role: "lan", ns: lanNs, interfaces: [], gateway4: null, gateway6: null }));
    await options.onStep?.("done");
  }

  private publish(plan: HostPlan, ns: string): void {
    const base = { name: plan.name, role: plan.role, ns, interfaces: plan.interfaces, gateway4: plan.gateway4, gateway6: plan.gateway6 };
    const byName = (n: string) => plan.interfaces.find((i) => i.name === n)!;
    if (plan.role === "client") {
      this.client = { ...base, eth0: byName("eth0") };
      this.hosts.set(plan.name, this.client);
    } else if (plan.role === "director" || plan.role === "backup") {
      const d: DirectorHost = { ...base, front: byName("eth0"), back: byName("eth1") };
      if (plan.role === "director") this.director = d;
      else this.backup = d;
      this.hosts.set(plan.name, d);
    } else if (plan.role === "ecmp-director") {
      const host: EcmpDirectorHost = { ...base, index: Number(plan.name.slice(1)), eth0: byName("eth0") };
      this.ecmpDirectors.push(host);
      this.hosts.set(plan.name, host);
    } else {
      const index = Number(plan.name.slice(2));
      const rs: RealServerHost = { ...base, index, label: `RS${index}`, eth0: byName("eth0"), vipOnLo: plan.loAddresses.length > 0 };
      this.realServers.push(rs);
      this.hosts.set(plan.name, rs);
    }
  }

  /** Decides every address, route and sysctl before anything is created. */
  private plan(n: number, options: LabOptions): HostPlan[] {
    const v6 = this.ipv6;
    const mode = this.mode;
    const iface = (host: HostName, name: string, segment: Segment, hostByte: number, ifIndex: number, a: { v4: string; v6: string }): LabInterface => ({
      name,
      host,
      segment,
      mac: mac(hostByte, ifIndex),
      ipv4: a.v4,
      prefix4: 24,
      ipv6: v6 ? a.v6 : null,
      prefix6: 64,
      bridgePort: `${host}-${name}`,
    });

    // A host with one interface on the back segment, routed by the director (or, in ecmp,
    // the router): the real servers, and the ecmp directors.
    const backSegmentHost = (
      name: HostName,
      role: HostPlan["role"],
      hostByte: number,
      address: { v4: string; v6: string },
      sysctls: Array<readonly [string, string | number]>,
      loAddresses: string[],
    ): HostPlan => ({
      name,
      role,
      hostByte,
      interfaces: [iface(name, "eth0", "back", hostByte, 0, address)],
      gateway4: ADDRESSES.directorBack.v4,
      gateway6: v6 ? ADDRESSES.directorBack.v6 : null,
      sysctls,
      loAddresses,
      extraRoutes: [],
      extraCommands: [],
    });

    const vip = mode === "router" ? null : mode === "dr" ? ADDRESSES.vipBack : mode === "ecmp" ? ADDRESSES.vipEcmp : ADDRESSES.vipFront;
    this.vip = vip ? { v4: vip.v4, v6: v6 ? vip.v6 : null } : null;
    const rs1 = ADDRESSES.realServer(1);
    this.target = this.vip ?? { v4: rs1.v4, v6: v6 ? rs1.v6 : null };

    // Every host: no IPv6 at all unless asked (quiet captures); no DAD delays when asked.
    const common: Array<readonly [string, string | number]> = v6
      ? [
          ["net.ipv6.conf.all.accept_dad", 0],
          ["net.ipv6.conf.default.accept_dad", 0],
          ["net.ipv6.conf.all.disable_ipv6", 0],
          ["net.ipv6.conf.default.disable_ipv6", 0],
        ]
      : [
          ["net.ipv6.conf.all.disable_ipv6", 1],
          ["net.ipv6.conf.default.disable_ipv6", 1],
        ];

    const plans: HostPlan[] = [];

    // The client: connection-per-request load needs many ports and fast TIME_WAIT reuse.
    const clientPlan: HostPlan = {
      name: "client",
      role: "client",
      hostByte: 0x01,
      interfaces: [iface("client", "eth0", "front", 0x01, 0, ADDRESSES.client)],
      gateway4: ADDRESSES.directorFront.v4,
      gateway6: v6 ? ADDRESSES.directorFront.v6 : null,
      sysctls: [...common, ["net.ipv4.ip_local_port_range", "1024 65535"], ["net.ipv4.tcp_tw_reuse", 1]],
      loAddresses: [],
      extraRoutes: [],
      extraCommands: [],
    };
    if (vip && !this.vipOnDirector && mode !== "dr" && mode !== "ecmp") {
      // The VIP is on the client's own subnet but nobody's kernel owns it: send its frames
      // to the director's front MAC without ARP.
      clientPlan.extraCommands.push(`neigh replace ${vip.v4} lladdr ${mac(0x02, 0)} nud permanent dev eth0`);
      if (v6) clientPlan.extraCommands.push(`neigh replace ${vip.v6} lladdr ${mac(0x02, 0)} nud permanent dev eth0`);
    }
    plans.push(clientPlan);

    // Directors: forward (the router lab, NAT, and the return path of DR/TUN in this
    // topology, where the director is also the real servers' gateway); no ICMP redirects
    // (LVS-NAT HOWTO); rp_filter off and accept_local on, so that DR/TUN replies whose
    // source is the VIP are forwarded although the director owns that address too.
    const directorSysctls: Array<readonly [string, string | number]> = [
      ...common,
      ["net.ipv4.ip_forward", 1],
      ["net.ipv4.conf.all.send_redirects", 0],
      ["net.ipv4.conf.default.send_redirects", 0],
      ["net.ipv4.conf.all.rp_filter", 0],
      ["net.ipv4.conf.default.rp_filter", 0],
      ["net.ipv4.conf.lo.rp_filter", 0],
      ["net.ipv4.conf.all.accept_local", mode === "dr" || mode === "tun" ? 1 : 0],
      ["net.ipv4.ip_local_port_range", "1024 65535"],
      ...(v6 ? [["net.ipv6.conf.all.forwarding", 1] as const] : []),
      // ecmp: the router spreads the VIP's flows over its paths by the 5-tuple, not by
      // addresses alone (one client would otherwise ride one path).
      ...(mode === "ecmp" ? [["net.ipv4.fib_multipath_hash_policy", 1] as const] : []),
      ...(mode === "ecmp" && v6 ? [["net.ipv6.fib_multipath_hash_policy", 1] as const] : []),
    ];
    const directorPlan = (name: "director" | "backup", hostByte: number, front: { v4: string; v6: string }, back: { v4: string; v6: string }): HostPlan => ({
      name,
      role: name,
      hostByte,
      interfaces: [iface(name, "eth0", "front", hostByte, 0, front), iface(name, "eth1", "back", hostByte, 1, back)],
      gateway4: null,
      gateway6: null,
      sysctls: directorSysctls,
      loAddresses: [],
      extraRoutes: [],
      extraCommands: [],
    });
    const director = directorPlan("director", 0x02, ADDRESSES.directorFront, ADDRESSES.directorBack);
    if (vip && this.vipOnDirector && mode !== "ecmp") {
      const dev = mode === "dr" ? "eth1" : "eth0";
      director.extraCommands.push(`addr add ${vip.v4}/32 dev ${dev}`);
      if (v6) director.extraCommands.push(`addr add ${vip.v6}/128 dev ${dev} nodad`);
    }
    plans.push(director);
    if (options.backup) plans.push(directorPlan("backup", 0x03, ADDRESSES.backupFront, ADDRESSES.backupBack));

    // Real servers: default route via the director (NAT needs it; in DR/TUN it is the
    // path of the direct replies). DR/TUN: VIP on lo, never announced nor answered in ARP;
    // TUN: reverse-path filtering off, the decapsulated packets come from the client.
    for (let i = 1; i <= n; i++) {
      const name = `rs${i}` as HostName;
      const sysctls: Array<readonly [string, string | number]> = [...common];
      const loAddresses: string[] = [];
      if (mode === "dr" || mode === "tun" || mode === "ecmp") {
        sysctls.push(
          ["net.ipv4.conf.all.arp_ignore", 1],
          ["net.ipv4.conf.default.arp_ignore", 1],
          ["net.ipv4.conf.all.arp_announce", 2],
          ["net.ipv4.conf.default.arp_announce", 2],
        );
        loAddresses.push(`${vip!.v4}/32`);
        if (v6) loAddresses.push(`${vip!.v6}/128`);
      }
      if (mode === "tun" || mode === "ecmp") {
        sysctls.push(["net.ipv4.conf.all.rp_filter", 0], ["net.ipv4.conf.default.rp_filter", 0], ["net.ipv4.conf.lo.rp_filter", 0]);
      }
      plans.push(backSegmentHost(name, "rs", 0x10 + i, ADDRESSES.realServer(i), sysctls, loAddresses));
    }
    // ecmp: one-armed directors on the back segment. Their kernels do not forward (a packet
    // for the VIP is the balancer's, never the kernel's); a TUN-adapter director turns
    // forwarding on itself. rp_filter off: the router's flows arrive for a VIP they route.
    if (mode === "ecmp") {
      const count = options.ecmpDirectors ?? 3;
      for (let i = 1; i <= count; i++) {
        const sysctls: Array<readonly [string, string | number]> = [
          ...common,
          ["net.ipv4.ip_forward", 0],
          ["net.ipv4.conf.all.rp_filter", 0],
          ["net.ipv4.conf.default.rp_filter", 0],
          ["net.ipv4.conf.all.send_redirects", 0],
        ];
        plans.push(backSegmentHost(`d${i}` as HostName, "ecmp-director", 0x30 + i, ADDRESSES.ecmpDirector(i), sysctls, []));
      }
    }
    return plans;
  }
}

/**
 * Builds a lab. Removes namespaces left by dead runs first. On any failure (including an
 * `onStep` that throws) everything created so far is deleted before the error propagates.
 */
export async function createLab(options: LabOptions): Promise<Lab> {
  cleanupStaleLabs();
  const lab = new LabImpl(options);
  try {
    await lab.build(options);
  } catch (e) {
    lab.destroySync();
    throw e;
  }
  return lab;
}

/** Runs `fn` with a fresh lab and always destroys it afterwards. */
export async function withLab<T>(options: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(options);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}

export { LabCommandError };
