// The GSO case every TUN adapter test runs (read / write and io_uring alike): client c,
// director d with the TUN device lvs0 in it, server s1; a NAT Director over the device; an
// iperf3 upload, then a download (-R). Checks what holds for any adapter: bytes arrived,
// super-packets went in and out, the kernel took every one we wrote, nothing dropped.
// The adapter's own checks run through `before` and `after`, while the device is open.

import assert from "node:assert/strict";
import { Balancer, type ServiceKey } from "../../src/index.js";
import type { PacketIO, PacketIOStats } from "../../src/io/packet-io.js";
import { Director } from "../../src/runtime/director.js";
import type { IoLab } from "./io-lab.js";

/** What the case reads of a TUN adapter with offloads. */
export interface GsoTun extends PacketIO {
  readonly offload: boolean;
  readonly gso: { readonly received: number; readonly sent: number; readonly receivedBytes: number };
  readonly stats: PacketIOStats;
  close(): void;
}

export interface GsoNatChecks<T extends GsoTun> {
  /** Before any traffic (e.g. the offloads the kernel granted). */
  readonly before?: (tun: T) => void;
  /** After both transfers, the director stopped, the device still open. */
  readonly after?: (tun: T, director: Director) => void;
}

/** Runs the case on 10.`net`.x.x addresses with the device `open` makes in the director's namespace. */
export async function iperfThroughTunNat<T extends GsoTun>(lab: IoLab, net: number, open: (netns: string) => T, checks: GsoNatChecks<T> = {}): Promise<void> {
  const p = `10.${net}`;
  const VIP = `${p}.9.1`;
  const c = lab.ns("c");
  const d = lab.ns("d");
  const s1 = lab.ns("s1");
  lab.sysctl(d, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv6.conf.all.disable_ipv6=1");
  lab.veth(c, "c0", `${p}.1.2/24`, d, "d0", `${p}.1.1/24`);
  lab.veth(s1, "s0", `${p}.2.2/24`, d, "d1", `${p}.2.1/24`);
  lab.ip(c, "route", "add", "default", "via", `${p}.1.1`);
  lab.ip(s1, "route", "add", "default", "via", `${p}.2.1`);
  const tun = open(d);
  const b = new Balancer({ connections: 1024, slots: 256 });
  const director = new Director({ balancer: b, io: [tun] });
  try {
    assert.equal(tun.offload, true);
    checks.before?.(tun);
    lab.sysctl(d, "net.ipv4.conf.lvs0.rp_filter=0");
    lab.ip(d, "route", "add", `${VIP}/32`, "dev", "lvs0");
    lab.ip(d, "route", "add", "default", "dev", "lvs0", "table", "100");
    lab.ip(d, "rule", "add", "iif", "d1", "lookup", "100");
    const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 5201 };
    b.addService({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false, persistence: { timeout: 60, netmask: "255.255.255.255" } });
    b.addDestination(KEY, { address: `${p}.2.2`, port: 5201, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    const loop = director.start();
    for (const reverse of [false, true]) {
      // --forceflush: the banner line reaches us at once (iperf3 buffers a pipe otherwise).
      const server = await lab.start(s1, "iperf3", ["-s", "-1", "--forceflush"], "-----------------------------------------------------------");
      const before = { in: tun.gso.received, out: tun.gso.sent };
      const out = await lab.exec(c, "iperf3", ["-c", VIP, "-t", "2", "-J", ...(reverse ? ["-R"] : [])], 30_000);
      const bytes = (JSON.parse(out) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
      assert.ok(bytes > 0, `iperf3 ${reverse ? "-R" : ""}: bytes arrived`);
      assert.ok(tun.gso.received - before.in > 0 && tun.gso.sent - before.out > 0, `super-packets in and out ${JSON.stringify(tun.gso)}`);
      server.child.kill();
    }
    await director.stop();
    await loop;
    assert.equal(tun.stats.sendErrors, 0, "the kernel took every super-packet we wrote");
    assert.equal(director.stats.sendFailures, 0);
    assert.equal(director.stats.dropped, 0, JSON.stringify(director.stats.drops));
    checks.after?.(tun, director);
  } finally {
    await director.stop();
    tun.close();
  }
}
