// The VIP announcement of a director behind ECMP: lvsd keeps one kernel route per virtual
// address that it is ready to serve, and a routing daemon (BIRD 2, docs/scale-out.md)
// learns those routes and announces them by BGP. lvsd never speaks BGP itself.
//
// Why it is safe when lvsd dies: every route points into an anchor TUN device that only
// this process holds open. When the process ends, however it ends (SIGKILL, OOM, a crash),
// the kernel closes the descriptor, deletes the non-persistent device, and with it every
// route through it; BIRD sees the routes vanish on netlink and withdraws them at once. No
// clean-up code has to run.
//
// The routes live in a table of their own (default 201) that no routing rule consults, so
// they announce without steering any packet on this host; their protocol number (default
// 201) lets BIRD's filter pick exactly them (`krt_source = 201`).
//
// A VIP is announced while some service on it has a destination with weight > 0, and the
// director is not drained. Announcing waits until the configuration has been still for a
// settle time (default 1 s): a director configured one lvsadm command at a time would
// otherwise draw traffic while it knew only its first real server, and a consistent
// scheduler (Maglev) would send moved flows to the wrong one. Withdrawing never waits. Draining withdraws every route and keeps forwarding whatever
// still arrives; the director is idle once nothing has been forwarded for the idle window.

import { execFile } from "node:child_process";
import type { Balancer } from "../balancer/balancer.js";
import { TunDevice } from "../io/tun.js";

export interface AnnouncerOptions {
  readonly balancer: Balancer;
  /** Network namespace of the routes and the anchor device (lvsd's --netns). */
  readonly netns?: string;
  /** Anchor device name; default "lvs-announce". */
  readonly device?: string;
  /** Kernel routing table of the announced routes; default 201. */
  readonly table?: number;
  /** Kernel route protocol number, for the routing daemon's filter; default 201. */
  readonly protocol?: number;
  /** How often the configuration is compared (ms); default 200. */
  readonly pollMs?: number;
  /** Announce only after the configuration has not changed for this long (ms); default 1000. */
  readonly settleMs?: number;
  readonly log: (line: string) => void;
  /** Packets forwarded so far (the director's counter): drain idleness is measured on it. */
  readonly forwarded: () => number;
  /** Connection entries for the drain status; default the balancer's (several workers: the sum). */
  readonly connections?: () => number;
  /** Milliseconds, monotonic. */
  readonly clock: () => number;
}

export const ANNOUNCE_DEFAULTS = { device: "lvs-announce", table: 201, protocol: 201, pollMs: 200, settleMs: 1000 } as const;

/** What `lvsadm drain` reports. */
export interface DrainStatus {
  readonly draining: boolean;
  /** Announced now (empty while draining). */
  readonly announced: readonly string[];
  /** Milliseconds since the last forwarded packet (since the drain began, at most). */
  readonly quietMs: number;
  readonly connections: number;
}

/** The virtual addresses that a configuration is ready to serve: a live destination each. */
export function servableAddresses(balancer: Balancer): Set<string> {
  const ready = new Set<string>();
  for (const s of balancer.rules().services) {
    const key = s.service.key;
    if (key.kind !== "address") continue; // a fwmark service has no address to announce
    if (s.destinations.some((d) => d.weight > 0)) ready.add(key.address);
  }
  return ready;
}

export class RouteAnnouncer {
  private readonly anchor: TunDevice;
  private readonly table: number;
  private readonly protocol: number;
  private readonly installed = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private seenVersion: number;
  private lastChangeAt: number;
  /** Servable addresses not announced yet because the configuration is still settling. */
  private waiting = false;
  private draining = false;
  private lastForwarded = 0;
  private lastForwardAt: number;
  private pending: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly options: AnnouncerOptions) {
    this.table = options.table ?? ANNOUNCE_DEFAULTS.table;
    this.protocol = options.protocol ?? ANNOUNCE_DEFAULTS.protocol;
    this.anchor = TunDevice.open({ name: options.device ?? ANNOUNCE_DEFAULTS.device, netns: options.netns });
    this.lastForwardAt = options.clock();
    this.seenVersion = options.balancer.configVersion;
    this.lastChangeAt = options.clock();
  }

  /** Opens the anchor device, announces what is servable now, and follows every change. */
  static async start(options: AnnouncerOptions): Promise<RouteAnnouncer> {
    for (const [name, value] of [
      ["table", options.table],
      ["protocol", options.protocol],
    ] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > 252)) {
        throw new RangeError(`announce ${name} ${value}: an integer in 1..252 (253-255 are the kernel's default, main and local)`);
      }
    }
    const announcer = new RouteAnnouncer(options);
    options.log(
      `announce: routes for servable VIPs in table ${announcer.table} proto ${announcer.protocol} via ${announcer.anchor.name}` +
        " (gone with this process, however it ends)",
    );
    await announcer.reconcile();
    announcer.timer = setInterval(() => announcer.poll(), options.pollMs ?? ANNOUNCE_DEFAULTS.pollMs);
    announcer.timer.unref();
    return announcer;
  }

  /** The addresses announced now. */
  get announced(): readonly string[] {
    return [...this.installed].sort();
  }

  /** Withdraws every route and keeps forwarding; `undrain()` announces again. */
  async drain(): Promise<DrainStatus> {
    if (!this.draining) {
      this.draining = true;
      this.lastForwarded = this.options.forwarded();
      this.lastForwardAt = this.options.clock();
      this.options.log("drain: every announcement withdrawn; flows that still arrive are served");
    }
    await this.reconcile();
    return this.status();
  }

  async undrain(): Promise<DrainStatus> {
    if (this.draining) {
      this.draining = false;
      this.options.log("undrain: announcing again");
    }
    await this.reconcile();
    return this.status();
  }

  status(): DrainStatus {
    this.sampleForwarding();
    return {
      draining: this.draining,
      announced: this.announced,
      quietMs: Math.max(0, Math.round(this.options.clock() - this.lastForwardAt)),
      connections: this.options.connections ? this.options.connections() : this.options.balancer.connectionCount,
    };
  }

  /** Withdraws the routes (by closing the anchor: the kernel deletes them). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.anchor.close();
    this.installed.clear();
  }

  private sampleForwarding(): void {
    const forwarded = this.options.forwarded();
    if (forwarded !== this.lastForwarded) {
      this.lastForwarded = forwarded;
      this.lastForwardAt = this.options.clock();
    }
  }

  private poll(): void {
    this.sampleForwarding();
    const version = this.options.balancer.configVersion;
    if (version !== this.seenVersion) {
      this.seenVersion = version;
      this.lastChangeAt = this.options.clock();
      void this.reconcile();
    } else if (this.waiting && this.settled()) {
      void this.reconcile();
    }
  }

  private settled(): boolean {
    return this.options.clock() - this.lastChangeAt >= (this.options.settleMs ?? ANNOUNCE_DEFAULTS.settleMs);
  }

  /** Brings the kernel's routes in line with what should be announced; one run at a time. */
  reconcile(): Promise<void> {
    this.pending = this.pending
      .then(() => this.reconcileNow())
      .catch((e: unknown) => {
        this.options.log(`announce: ${e instanceof Error ? e.message : String(e)}`);
      });
    return this.pending;
  }

  private async reconcileNow(): Promise<void> {
    if (this.closed) return;
    const wanted = this.draining ? new Set<string>() : servableAddresses(this.options.balancer);
    const missing = [...wanted].filter((a) => !this.installed.has(a));
    const add = this.settled() ? missing : [];
    this.waiting = add.length < missing.length;
    const remove = [...this.installed].filter((a) => !wanted.has(a));
    if (add.length === 0 && remove.length === 0) return;
    const route = (a: string) => `${a}/${a.includes(":") ? 128 : 32} dev ${this.anchor.name} table ${this.table} proto ${this.protocol}`;
    const lines = [...add.map((a) => `route replace ${route(a)}`), ...remove.map((a) => `route del ${route(a)}`)];
    await ipBatch(this.options.netns, lines);
    for (const a of add) this.installed.add(a);
    for (const a of remove) this.installed.delete(a);
    for (const a of add) this.options.log(`announce ${a}: a destination is ready`);
    for (const a of remove) this.options.log(`withdraw ${a}: ${this.draining ? "draining" : "no destination with weight > 0"}`);
  }
}

/** `ip [-n NETNS] -force -batch -`: one process for any number of route changes. */
function ipBatch(netns: string | undefined, lines: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [...(netns ? ["-n", netns] : []), "-force", "-batch", "-"];
    const child = execFile("ip", args, { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`ip route: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
    child.stdin?.end(`${lines.join("\n")}\n`);
  });
}
