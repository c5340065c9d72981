// Building blocks of an AF_PACKET (Ethernet) director, used by lvsd (lvsd.ts) and by the
// in-process DR director (dr-director.ts). One way of doing each thing:
//
//   EthernetPort     an AF_PACKET (or AF_XDP: openXdpPort) socket whose every sent frame carries the sending
//                    interface's own MAC as its source (the balancer has one director MAC;
//                    a frame leaving eth1 must not carry eth0's)
//   openEthernetPort opens one; `serverSide` attaches the ARP-and-ND-only socket filter (the real
//                    servers' replies cross that interface toward their gateway: none of
//                    the balancer's business, nor worth a wake-up and a copy each)
//   VipArp           ARP and IPv6 neighbour discovery on every port: answers "who has
//                    VIP" (ARP) and neighbour solicitations for the VIPs on the client-side
//                    ports, learns every sender's MAC, probes next hops on the port they
//                    route to (an ARP request, or a neighbour solicitation)
//   isolateVips      the tc ingress drop that hides VIP packets from the director's own
//                    kernel after the AF_PACKET tap has seen them
//   disableTxChecksumOffload   the lab-only veth fix (docs/tun-mode.md)

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { DESC_SIZE } from "../core/abi.js";
import type { PacketSlots } from "../core/packet-slots.js";
import type { Balancer } from "../balancer/balancer.js";
import { AfPacketSocket } from "../io/af-packet.js";
import { AfXdpSocket } from "../io/af-xdp.js";
import { ArpResponder } from "./arp-responder.js";
import { NdResponder } from "./nd-responder.js";
import { encodeAddress } from "../core/actions.js";
import { check, libc, AF_INET, SOCK_DGRAM, SOCK_CLOEXEC, ifreq } from "../io/libc.js";
import { withNetns } from "../io/netns.js";
import type { PacketIO, PacketIOStats } from "../io/packet-io.js";
import type { NeighbourResolver, PassHook } from "./director.js";
import { attachFilter, arpAndNeighbourDiscovery, tcBytecode, tcDropIpv4Destinations, tcDropIpv6Destinations } from "./socket-filter.js";

const run = promisify(execFile);

function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(":").map((x) => parseInt(x, 16)));
}

/** An AF_PACKET or AF_XDP socket that stamps its interface's MAC as the source of every frame it sends. */
export class EthernetPort<Socket extends AfPacketSocket | AfXdpSocket = AfPacketSocket | AfXdpSocket> implements PacketIO {
  readonly linkType: AfPacketSocket["linkType"];
  readonly name: string;
  readonly mac: string;
  private readonly macBytes: Uint8Array;

  constructor(
    readonly socket: Socket,
    readonly serverSide: boolean,
  ) {
    this.linkType = socket.linkType;
    this.name = socket.name;
    this.mac = socket.mac;
    this.macBytes = macBytes(socket.mac);
  }

  /** The socket's fd (an AF_XDP socket has one once attached). */
  get fd(): number {
    return this.socket.fd;
  }

  /** AF_XDP with its UMEM in the wasm memory: the slots from here on are its receive pool. */
  get slotLimit(): number | undefined {
    return this.socket instanceof AfXdpSocket ? this.socket.slotLimit : undefined;
  }

  get stats(): PacketIOStats {
    return this.socket.stats;
  }

  /** The socket carries a virtio_net_hdr per frame (PACKET_VNET_HDR). */
  get offload(): boolean {
    return this.socket.offload;
  }

  receive(slots: PacketSlots, first: number, max: number, timeoutMs?: number): number {
    return this.socket.receive(slots, first, max, timeoutMs);
  }

  send(slots: PacketSlots, indices: ArrayLike<number>, count = indices.length): number {
    const mem = slots.bytes;
    const u32 = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
    for (let i = 0; i < count; i++) {
      const s = indices[i];
      const start = slots.slotAddress(s) + u32[(slots.descBase + s * DESC_SIZE) >>> 2];
      mem.set(this.macBytes, start + 6);
    }
    return this.socket.send(slots, indices, count);
  }

  sendFrame(frame: Uint8Array): boolean {
    frame.set(this.macBytes, 6);
    return this.socket.sendFrame(frame);
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Opens an AF_PACKET socket on `interface`. A server-side port reads ARP and IPv6 neighbour
 * discovery only (a classic BPF socket filter) and gets a larger receive buffer for the
 * bursts of many real servers.
 */
export function openEthernetPort(options: {
  interface: string;
  netns?: string;
  serverSide?: boolean;
  offload?: boolean;
  fanoutGroup?: number;
}): EthernetPort<AfPacketSocket> {
  const socket = AfPacketSocket.open({
    interface: options.interface,
    netns: options.netns,
    offload: options.offload === true,
    // Several workers: one socket each in a fanout group, spread by the symmetric flow hash.
    ...(options.fanoutGroup !== undefined ? { fanout: { group: options.fanoutGroup, mode: "hash" as const } } : {}),
    ...(options.serverSide ? { receiveBuffer: 1 << 20 } : {}),
  });
  try {
    if (options.serverSide) attachFilter(socket.fd, arpAndNeighbourDiscovery(), `AF_PACKET ${options.interface}`);
  } catch (e) {
    socket.close();
    throw e;
  }
  return new EthernetPort(socket, options.serverSide === true);
}

/**
 * Checks libxdp and the interface and returns a port over an AF_XDP socket, not attached
 * yet: call `(port.socket as AfXdpSocket).attach(balancer.slots, poolFirst)` once the
 * balancer exists (the UMEM lives in its memory). The XDP program then takes every frame
 * that arrives on the interface: the director's kernel sees none of them (docs/io.md).
 */
export function openXdpPort(options: { interface: string; netns?: string; mode?: "native" | "generic" }): EthernetPort<AfXdpSocket> {
  return new EthernetPort(AfXdpSocket.open(options), false);
}

/** A route of the director (IPv4 or IPv6): packets to `prefix` leave by `port`. */
export interface PortRoute {
  readonly prefix: string;
  readonly port: EthernetPort;
}

interface ParsedPortRoute {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly length: number;
  readonly port: EthernetPort;
}

function prefixMatches(address: Uint8Array, route: ParsedPortRoute): boolean {
  let bits = route.length;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i] & mask) !== (route.bytes[i] & mask)) return false;
  }
  return true;
}

/**
 * ARP and IPv6 neighbour discovery for the director's ports. Client-side ports answer for
 * the virtual addresses of the running configuration (ARP for the IPv4 ones, neighbour
 * advertisements for the IPv6 ones; re-read when the configuration changes); every port,
 * the server side included, answers for full NAT's local addresses (the real servers'
 * replies are addressed to them). A port whose host kernel sees none of its frames (AF_XDP)
 * also answers for the interface's own addresses (`ownAddresses`), which that kernel no
 * longer can. Every port learns the senders' MACs into the balancer. A next hop
 * is probed on the port it routes to (longest prefix of `routes`), else on the port the
 * packet came in on.
 */
export class VipArp implements NeighbourResolver {
  readonly hook: PassHook;
  private responders = new Map<PacketIO, ArpResponder>();
  private discovery = new Map<PacketIO, NdResponder>();
  private readonly earlier = new Map<string, string>();
  private vipsKey: string | null = null;
  private readonly routes: ParsedPortRoute[];

  constructor(
    private readonly balancer: Balancer,
    private readonly ports: readonly EthernetPort[],
    routes: readonly PortRoute[] = [],
    private readonly ownAddresses: ReadonlyMap<PacketIO, readonly string[]> = new Map(),
  ) {
    this.hook = (packet, from, slot) => this.responder(from)?.hook(packet, from, slot) ?? "drop";
    this.routes = routes
      .map((r) => {
        const [addr, len] = r.prefix.split("/");
        const { family, bytes } = encodeAddress(addr, `route ${r.prefix}`);
        return { family, bytes, length: len === undefined ? (family === 4 ? 32 : 128) : Number(len), port: r.port };
      })
      .sort((a, b) => b.length - a.length);
  }

  /** False on a standby director: ARP and ND for the VIPs are left to the active one. */
  answering = true;

  /**
   * The virtual addresses of the running configuration, IPv4 then IPv6, each sorted, and
   * full NAT's local addresses (`l4`, `l6`) (none while not answering).
   */
  private virtualAddresses(): { v4: string[]; v6: string[]; l4: string[]; l6: string[] } {
    if (!this.answering) return { v4: [], v6: [], l4: [], l6: [] };
    const services = this.balancer.rules().services;
    const all = new Set(services.flatMap((s) => (s.service.key.kind === "address" ? [s.service.key.address] : [])));
    const locals = new Set(services.flatMap((s) => s.localAddresses ?? []));
    const v4 = [...all].filter((a) => !a.includes(":")).sort();
    const v6 = [...all].filter((a) => a.includes(":")).sort();
    const l4 = [...locals].filter((a) => !a.includes(":")).sort();
    const l6 = [...locals].filter((a) => a.includes(":")).sort();
    return { v4, v6, l4, l6 };
  }

  /** The port's own addresses of one family that lvsd answers for (AF_XDP ports). */
  private own(port: PacketIO, family: 4 | 6): string[] {
    return (this.ownAddresses.get(port) ?? []).filter((a) => a.includes(":") === (family === 6));
  }

  /** The IPv4 virtual addresses of the running configuration, sorted. */
  vips(): string[] {
    return this.virtualAddresses().v4;
  }

  /** The IPv6 virtual addresses of the running configuration, sorted. */
  vips6(): string[] {
    return this.virtualAddresses().v6;
  }

  private responder(from: PacketIO): ArpResponder | undefined {
    const { v4, v6, l4, l6 } = this.virtualAddresses();
    const key = `${v4.join(",")}/${v6.join(",")}/${l4.join(",")}/${l6.join(",")}`;
    if (key !== this.vipsKey) {
      this.vipsKey = key;
      for (const [a, m] of this.learned()) this.earlier.set(a, m);
      this.discovery = new Map(
        this.ports.map(
          (p) => [p, new NdResponder({ balancer: this.balancer, vips: [...(p.serverSide ? l6 : [...v6, ...l6]), ...this.own(p, 6)], io: p })] as const,
        ),
      );
      this.responders = new Map(
        this.ports.map(
          (p) =>
            [
              p,
              new ArpResponder({
                balancer: this.balancer,
                vips: [...(p.serverSide ? l4 : [...v4, ...l4]), ...this.own(p, 4)],
                io: p,
                next: this.discovery.get(p)!.hook,
              }),
            ] as const,
        ),
      );
    }
    return this.responders.get(from);
  }

  /** Every address learnt from ARP or neighbour discovery so far, with its MAC. */
  learned(): Map<string, string> {
    const all = new Map(this.earlier);
    for (const r of this.responders.values()) for (const [a, m] of r.learned) all.set(a, m);
    for (const r of this.discovery.values()) for (const [a, m] of r.learned) all.set(a, m);
    return all;
  }

  /** The port `address` (IPv4 or IPv6) routes to, or undefined (no route). */
  portFor(address: string): EthernetPort | undefined {
    const { family, bytes } = encodeAddress(address, "next hop");
    return this.routes.find((r) => r.family === family && prefixMatches(bytes, r))?.port;
  }

  resolve(address: string, family: 4 | 6, from: PacketIO): void {
    const port = this.portFor(address) ?? from;
    this.responder(port);
    if (family === 4) this.responders.get(port)?.resolve(address, 4);
    else this.discovery.get(port)?.resolve(address, 6);
  }
}

/** Runs `ip netns exec NS cmd ...` (or cmd directly without a namespace). */
async function inNetns(netns: string | undefined, cmd: string, args: readonly string[]): Promise<string> {
  const [file, argv] = netns ? ["ip", ["netns", "exec", netns, cmd, ...args]] : [cmd, [...args]];
  const { stdout } = await run(file, argv, { timeout: 10_000 });
  return stdout;
}

/** The IPv4 and IPv6 addresses of `device` (`ip -j addr show dev DEVICE`, link-local included). */
export async function interfaceAddresses(netns: string | undefined, device: string): Promise<string[]> {
  const out = await inNetns(netns, "ip", ["-j", "addr", "show", "dev", device]);
  const [link] = JSON.parse(out) as Array<{ addr_info?: Array<{ local?: string }> }>;
  return (link?.addr_info ?? []).flatMap((a) => (a.local ? [a.local] : []));
}

/** The tc commands isolateVips runs, as an operator would type them (IPv4 and IPv6 addresses). */
export function isolateVipsCommands(device: string, vips: readonly string[]): string[][] {
  const v4 = vips.filter((v) => !v.includes(":"));
  const v6 = vips.filter((v) => v.includes(":"));
  const filter = (pref: string, protocol: string, bytecode: string) => [
    "tc",
    "filter",
    "replace",
    "dev",
    device,
    "ingress",
    "pref",
    pref,
    "handle",
    "1",
    "protocol",
    protocol,
    "bpf",
    "bytecode",
    bytecode,
    "direct-action",
  ];
  return [
    ["tc", "qdisc", "replace", "dev", device, "clsact"],
    ...(v4.length > 0 ? [filter("49", "ip", tcBytecode(tcDropIpv4Destinations(v4)))] : []),
    ...(v6.length > 0 ? [filter("50", "ipv6", tcBytecode(tcDropIpv6Destinations(v6)))] : []),
  ];
}

/**
 * Installs (or replaces) tc clsact ingress filters on `device` that drop IPv4 and IPv6
 * packets to `vips` after the AF_PACKET taps have seen them. Returns the undo (`tc qdisc del dev
 * DEVICE clsact`).
 */
export async function isolateVips(netns: string | undefined, device: string, vips: readonly string[]): Promise<() => Promise<void>> {
  for (const [cmd, ...args] of isolateVipsCommands(device, vips)) await inNetns(netns, cmd, args);
  return async () => {
    await inNetns(netns, "tc", ["qdisc", "del", "dev", device, "clsact"]).catch(() => "");
  };
}

/**
 * Turns off transmit checksum offload (and with it TSO/GSO) on a veth, via the ethtool ioctl
 * (no ethtool binary needed). Lab clients need it when an AF_PACKET director relays their
 * frames unchanged: a local socket's frames cross a veth with a partial checksum that a real
 * NIC would have completed, and the real server would drop them.
 */
export function disableTxChecksumOffload(netns: string | undefined, device: string): void {
  const c = libc();
  withNetns(netns, () => {
    const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "opening a socket for SIOCETHTOOL");
    try {
      const value = Buffer.alloc(8);
      value.writeUInt32LE(0x17, 0); // ETHTOOL_STXCSUM
      value.writeUInt32LE(0, 4);
      const req = ifreq(device);
      req.writeBigUInt64LE(c.address(value), 16);
      check(c.ioctl(fd, 0x8946 /* SIOCETHTOOL */, c.address(req)), `turning off tx checksum offload on ${device}`);
    } finally {
      c.close(fd);
    }
  });
}
