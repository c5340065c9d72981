// The sync daemons of one director (ipvsadm --start-daemon / --stop-daemon): a master that
// multicasts the Balancer's connections, and a backup that joins the group and imports
// what it hears; one of each at most, both at once allowed, as the kernel's. Sockets are
// node:dgram UDP multicast with the kernel's defaults: group 224.0.0.81, port 8848, TTL 1,
// sync_maxlen 1472 for a master (1500-byte MTU less IP and UDP headers) and the
// interface's MTU less those headers for a backup. The socket work is here; the protocol
// is in sender.ts and receiver.ts.
//
// Sync is unauthenticated, in the kernel too: a backup accepts only datagrams whose source
// lies in the configured interface's subnets and that carry its syncid (unless 0), and
// counts the rest. It belongs on a dedicated link (docs/sync.md).

import { createSocket, type Socket } from "node:dgram";
import { networkInterfaces } from "node:os";
import { readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import type { Balancer } from "../balancer/balancer.js";
import type { SyncDaemonConfig, SyncRole } from "../admin/command.js";
import { ConfigError } from "../config/types.js";
import { SyncReceiver, type SyncReceiverOptions } from "./receiver.js";
import { SyncSender } from "./sender.js";
import { SYNC_GROUP, SYNC_PORT } from "./wire.js";

const IPV4_UDP_HEADERS = 20 + 8;
const IPV6_UDP_HEADERS = 40 + 8;

/** A running daemon's effective configuration, as `ipvsadm -L --daemon` lists it. */
export interface RunningSyncDaemon extends SyncDaemonConfig {
  readonly syncMaxlen: number;
  readonly mcastGroup: string;
  readonly mcastPort: number;
  readonly mcastTtl: number;
}

export interface SyncDaemonsOptions {
  readonly balancer: Balancer;
  /** The Balancer's millisecond clock. */
  readonly clock: () => number;
  readonly log?: (line: string) => void;
  /** Longest a connection waits in a partly filled message (ms); the kernel's is 2000. */
  readonly flushMs?: number;
  /** A master re-sends every live connection at least this often (ms; 0: the kernel's rules only). */
  readonly refreshMs?: number;
  /** Called after every start or stop (lvsd switches its standby state here). */
  readonly onChange?: (running: readonly RunningSyncDaemon[]) => void;
  /** A backup imports only the connections this accepts (lvsd --workers: the worker's own). */
  readonly accept?: SyncReceiverOptions["accept"];
}

interface Daemon {
  readonly config: RunningSyncDaemon;
  readonly socket: Socket;
  readonly sender?: SyncSender;
  readonly receiver?: SyncReceiver;
  /** Datagrams from outside the interface's subnets (backup). */
  foreign: number;
}

/** The interface's addresses of one family, with their prefixes. */
function interfaceAddresses(name: string, family: 4 | 6): Array<{ address: string; cidr: string | null }> {
  const list = networkInterfaces()[name];
  if (!list) throw new ConfigError(`Unknown mcast interface: ${name}`, "ENODEV");
  return list.filter((a) => (family === 4 ? a.family === "IPv4" : a.family === "IPv6")).map((a) => ({ address: a.address, cidr: a.cidr }));
}

function interfaceMtu(name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/mtu`, "utf8").trim()) || 1500;
  } catch {
    return 1500;
  }
}

/** The kernel's start_sync_thread defaults and clamps. */
export function effectiveConfig(c: SyncDaemonConfig, mtu: number): RunningSyncDaemon {
  const group = c.mcastGroup ?? SYNC_GROUP;
  const hlen = isIP(group) === 6 ? IPV6_UDP_HEADERS : IPV4_UDP_HEADERS;
  const backup = c.role === "backup";
  const devMtu = backup ? Math.min(Math.max(mtu, 1500), 65535) : 1500;
  const min = backup ? 1024 : 1;
  const maxlen = c.syncMaxlen ? Math.min(Math.max(c.syncMaxlen, min), 65535 - hlen) : devMtu - hlen;
  return { ...c, syncMaxlen: maxlen, mcastGroup: group, mcastPort: c.mcastPort || SYNC_PORT, mcastTtl: c.mcastTtl || 1 };
}

export class SyncDaemons {
  private readonly daemons = new Map<SyncRole, Daemon>();
  private readonly log: (line: string) => void;

  constructor(private readonly options: SyncDaemonsOptions) {
    this.log = options.log ?? (() => {});
  }

  /** The running daemons' configurations, master first. */
  list(): RunningSyncDaemon[] {
    return (["master", "backup"] as const).flatMap((r) => {
      const d = this.daemons.get(r);
      return d ? [d.config] : [];
    });
  }

  isRunning(role: SyncRole): boolean {
    return this.daemons.has(role);
  }

  /** Counters of the running daemons, for logs and tests. */
  stats() {
    const m = this.daemons.get("master");
    const b = this.daemons.get("backup");
    return {
      master: m?.sender ? { ...m.sender.stats } : null,
      backup: b?.receiver ? { ...b.receiver.stats, foreign: b.foreign } : null,
    };
  }

  /**
   * Starts a daemon (ipvsadm --start-daemon). Throws ConfigError: EEXIST when one of that
   * role runs, ENODEV for an unknown interface or one without an address of the group's
   * family. The socket opens in the background; a failure there is logged and stops it.
   */
  start(c: SyncDaemonConfig): RunningSyncDaemon {
    if (this.daemons.has(c.role)) throw new ConfigError(`a ${c.role} sync daemon is already running`, "EEXIST");
    const config = effectiveConfig(c, interfaceMtu(c.mcastInterface));
    const family = isIP(config.mcastGroup) === 6 ? 6 : 4;
    const addresses = interfaceAddresses(config.mcastInterface, family);
    if (addresses.length === 0) throw new ConfigError(`mcast interface ${config.mcastInterface} has no IPv${family} address`, "ENODEV");
    const own = addresses[0].address;
    const socket = createSocket({ type: family === 6 ? "udp6" : "udp4", reuseAddr: true });
    const daemon: Daemon = { config, socket, foreign: 0 };
    socket.on("error", (e) => {
      this.log(`sync ${c.role}: socket error: ${e.message}; daemon stopped`);
      this.stop(c.role);
    });
    const iface = family === 6 ? `${own}%${config.mcastInterface}` : own;
    if (c.role === "master") {
      socket.bind({ address: family === 6 ? undefined : own, port: 0 }, () => {
        socket.setMulticastInterface(iface);
        socket.setMulticastTTL(config.mcastTtl);
        socket.setMulticastLoopback(false);
      });
      const sender = new SyncSender(this.options.balancer, {
        syncId: config.syncId,
        maxLength: Math.max(config.syncMaxlen, 80),
        flushMs: this.options.flushMs,
        refreshMs: this.options.refreshMs,
        clock: this.options.clock,
        send: (m, done) => socket.send(m, config.mcastPort, config.mcastGroup, () => done()),
      });
      this.daemons.set("master", { ...daemon, sender });
    } else {
      const subnets = new BlockList();
      for (const a of addresses) {
        if (!a.cidr) continue;
        const [net, len] = a.cidr.split("/");
        subnets.addSubnet(net, Number(len), family === 6 ? "ipv6" : "ipv4");
      }
      const receiver = new SyncReceiver(this.options.balancer, {
        syncId: config.syncId,
        clock: this.options.clock,
        log: this.log,
        accept: this.options.accept,
      });
      const d: Daemon = { ...daemon, receiver };
      socket.on("message", (msg, rinfo) => {
        if (!subnets.check(rinfo.address.replace(/%.*$/, ""), family === 6 ? "ipv6" : "ipv4")) {
          d.foreign++;
          return;
        }
        // The kernel reads at most sync_maxlen bytes; a longer datagram fails its size check.
        receiver.handle(msg.length > config.syncMaxlen ? msg.subarray(0, config.syncMaxlen) : msg);
      });
      socket.bind({ port: config.mcastPort, address: config.mcastGroup, exclusive: false }, () => {
        try {
          socket.addMembership(config.mcastGroup, iface);
        } catch (e) {
          this.log(`sync backup: cannot join ${config.mcastGroup} on ${config.mcastInterface}: ${(e as Error).message}; daemon stopped`);
          this.stop("backup");
        }
      });
      this.daemons.set("backup", d);
    }
    this.log(
      `sync ${c.role} started: mcast=${config.mcastInterface} (${own}), syncid=${config.syncId}, maxlen=${config.syncMaxlen}, group=${config.mcastGroup}, port=${config.mcastPort}, ttl=${config.mcastTtl}`,
    );
    this.options.onChange?.(this.list());
    return config;
  }

  /** Stops the daemon of `role` (ipvsadm --stop-daemon); ESRCH when none runs. */
  stop(role: SyncRole): void {
    const d = this.daemons.get(role);
    if (!d) throw new ConfigError(`no ${role} sync daemon is running`, "ESRCH");
    this.daemons.delete(role);
    d.sender?.close();
    try {
      d.socket.close();
    } catch {
      /* already closed after an error */
    }
    const s = d.sender?.stats ?? d.receiver?.stats;
    this.log(`sync ${role} stopped: ${JSON.stringify(s)}`);
    this.options.onChange?.(this.list());
  }

  /** Stops every daemon. */
  close(): void {
    for (const r of [...this.daemons.keys()]) this.stop(r);
  }
}
