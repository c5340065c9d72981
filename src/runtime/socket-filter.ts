// Classic BPF socket filters (SO_ATTACH_FILTER) for the DR director and the real-server
// agent: they keep a socket from queueing packets nobody will read (an AF_PACKET socket that
// only needs ARP, a raw socket held only so that the kernel does not answer a protocol), and
// they are checked by the kernel before a packet is copied, so the cost of a filtered packet
// is a few instructions instead of a wake-up and a copy into JavaScript.
//
// A program is a list of [code, jt, jf, k] instructions (struct sock_filter, 8 bytes each).

import { encodeAddress } from "../core/actions.js";
import { check, libc, SOL_SOCKET } from "../io/libc.js";

export type BpfInstruction = readonly [code: number, jt: number, jf: number, k: number];

const SO_ATTACH_FILTER = 26;

// Opcodes used below (linux/filter.h).
const LD_H_ABS = 0x28; // ldh [k]
const LD_W_ABS = 0x20; // ld [k]
const LD_B_ABS = 0x30; // ldb [k]
const LDX_MSH = 0xb1; // ldxb 4*([k]&0xf)
const LD_H_IND = 0x48; // ldh [x + k]
const JEQ_K = 0x15; // jeq #k, jt, jf
const RET_K = 0x06; // ret #k
const AND_K = 0x54; // and #k

const ACCEPT = 0x40000; // whole packet (up to 256 KiB)

/** Attaches a classic BPF program to a socket. */
export function attachFilter(fd: number, program: readonly BpfInstruction[], what: string): void {
  if (program.length === 0 || program.length > 4096) throw new RangeError(`${what}: a filter has 1..4096 instructions`);
  const c = libc();
  const code = Buffer.alloc(program.length * 8);
  program.forEach(([op, jt, jf, k], i) => {
    code.writeUInt16LE(op, i * 8);
    code.writeUInt8(jt, i * 8 + 2);
    code.writeUInt8(jf, i * 8 + 3);
    code.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  const fprog = Buffer.alloc(16); // struct sock_fprog { u16 len; (pad) ; struct sock_filter *filter; }
  fprog.writeUInt16LE(program.length, 0);
  fprog.writeBigUInt64LE(c.address(code), 8);
  check(c.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, c.address(fprog), 16), `${what}: attaching a socket filter`);
}

/** Accepts nothing: a socket held only so that the kernel finds a receiver. */
export const DROP_ALL: readonly BpfInstruction[] = [[RET_K, 0, 0, 0]];

/** Ethernet frames of one EtherType (0x0806 ARP) addressed to this host or broadcast. */
export function etherTypeOnly(etherType: number): BpfInstruction[] {
  return [
    [LD_H_ABS, 0, 0, 12],
    [JEQ_K, 0, 1, etherType],
    [RET_K, 0, 0, ACCEPT],
    [RET_K, 0, 0, 0],
  ];
}

/**
 * ARP frames, and IPv6 neighbour solicitations and advertisements (ICMPv6 135 / 136 right
 * after the IPv6 header, as ND is sent): what a DR director's server-side port reads.
 */
export function arpAndNeighbourDiscovery(): BpfInstruction[] {
  return [
    [LD_H_ABS, 0, 0, 12], // EtherType
    [JEQ_K, 6, 0, 0x0806], // ARP: accept
    [JEQ_K, 0, 6, 0x86dd], // not IPv6: reject
    [LD_B_ABS, 0, 0, 14 + 6], // next header
    [JEQ_K, 0, 4, 58], // not ICMPv6: reject
    [LD_B_ABS, 0, 0, 14 + 40], // ICMPv6 type
    [JEQ_K, 1, 0, 135], // neighbour solicitation
    [JEQ_K, 0, 1, 136], // neighbour advertisement
    [RET_K, 0, 0, ACCEPT],
    [RET_K, 0, 0, 0],
  ];
}

/**
 * For a raw IPv4 socket of protocol UDP (offsets from the IP header): datagrams to `port`
 * only, first fragments or whole datagrams.
 */
export function rawUdpToPort(port: number): BpfInstruction[] {
  return [
    [LD_H_ABS, 0, 0, 6], // flags + fragment offset
    [AND_K, 0, 0, 0x1fff],
    [JEQ_K, 0, 4, 0], // a later fragment: no UDP header here
    [LDX_MSH, 0, 0, 0], // x = IP header length
    [LD_H_IND, 0, 0, 2], // UDP destination port
    [JEQ_K, 0, 1, port],
    [RET_K, 0, 0, ACCEPT],
    [RET_K, 0, 0, 0],
  ];
}

/**
 * A tc ingress program (cls_bpf direct-action, for a `protocol ip` filter on an untagged
 * Ethernet device: cls_bpf pushes the MAC header back at ingress, so offsets count from the
 * Ethernet header): TC_ACT_SHOT for IPv4 packets to one of `addresses`, TC_ACT_UNSPEC (carry
 * on) for everything else.
 */
export function tcDropIpv4Destinations(addresses: readonly string[]): BpfInstruction[] {
  const n = addresses.length;
  if (n === 0 || n > 200) throw new RangeError("tcDropIpv4Destinations: 1..200 addresses");
  const prog: BpfInstruction[] = [[LD_W_ABS, 0, 0, 14 + 16]];
  addresses.forEach((a, i) => prog.push([JEQ_K, n - i, 0, ipv4Number(a)])); // hit: jump to the drop
  prog.push([RET_K, 0, 0, 0xffffffff]); // TC_ACT_UNSPEC
  prog.push([RET_K, 0, 0, 2]); // TC_ACT_SHOT
  return prog;
}

/**
 * The IPv6 counterpart of tcDropIpv4Destinations, for a `protocol ipv6` filter:
 * TC_ACT_SHOT for IPv6 packets to one of `addresses`, TC_ACT_UNSPEC for the rest.
 */
export function tcDropIpv6Destinations(addresses: readonly string[]): BpfInstruction[] {
  const n = addresses.length;
  if (n === 0 || n > 32) throw new RangeError("tcDropIpv6Destinations: 1..32 addresses");
  const prog: BpfInstruction[] = [];
  addresses.forEach((a, i) => {
    const words = ipv6Words(a);
    // Eight instructions per address: a mismatch jumps to the next address's block.
    for (let w = 0; w < 4; w++) {
      prog.push([LD_W_ABS, 0, 0, 14 + 24 + 4 * w]);
      if (w < 3) prog.push([JEQ_K, 0, 6 - 2 * w, words[w]]);
      else prog.push([JEQ_K, 8 * (n - i) - 7, 0, words[w]]); // all four equal: jump to the drop
    }
  });
  prog.push([RET_K, 0, 0, 0xffffffff]); // TC_ACT_UNSPEC
  prog.push([RET_K, 0, 0, 2]); // TC_ACT_SHOT
  return prog;
}

/** "fd00::100" as four host-order 32-bit numbers. */
export function ipv6Words(text: string): [number, number, number, number] {
  const { family, bytes } = encodeAddress(text, "IPv6 address");
  if (family !== 6) throw new RangeError(`"${text}" is not an IPv6 address`);
  const word = (i: number) => ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
  return [word(0), word(4), word(8), word(12)];
}

/** The program as tc's `bpf bytecode` argument: "count,code jt jf k,...". */
export function tcBytecode(program: readonly BpfInstruction[]): string {
  return [String(program.length), ...program.map(([c, jt, jf, k]) => `${c} ${jt} ${jf} ${k >>> 0}`)].join(",");
}

/** "10.0.0.1" as a host-order number (what BPF loads compare against). */
export function ipv4Number(text: string): number {
  const p = text.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new RangeError(`"${text}" is not an IPv4 address`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
