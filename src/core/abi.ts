// Constants shared with the wasm module (assembly/verdict.ts, assembly/layout.ts,
// assembly/net/constants.ts). test/abi.test.ts checks they agree with the module.

/** What the data plane decided for a packet. */
export const Verdict = {
  None: 0,
  /** Send out, rewritten, toward the next hop. */
  Forward: 1,
  /** Send back toward the sender (an ICMP error the data plane generated). */
  Reply: 2,
  /** Discard; see the reason. */
  Drop: 3,
  /** Not ours: hand to the host's own stack unchanged. */
  Pass: 4,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** Why a packet was dropped (or passed). Indexes match assembly/verdict.ts. */
export const DropReason = {
  None: 0,
  Truncated: 1,
  BadVersion: 2,
  BadHeaderLength: 3,
  BadTotalLength: 4,
  BadIpChecksum: 5,
  BadL4Header: 6,
  ExtHeaderChain: 7,
  TtlExpired: 8,
  Fragment: 9,
  NoHeadroom: 10,
  Unsupported: 11,
  NotIp: 12,
  BadAction: 13,
  TooBig: 14,
  NoDestination: 15,
  NoFlow: 16,
  TableFull: 17,
  IcmpSuppressed: 18,
  BadL4Checksum: 19,
  FragmentHeld: 20,
  FragmentOverlap: 21,
  FragmentDuplicate: 22,
  FragmentTooBig: 23,
  FragmentInvalid: 24,
  FragmentNoRoom: 25,
  /** The slot's offload record (virtio_net_hdr) does not match the packet. */
  BadOffload: 26,
  /** A full-NAT flow found no local address with a free port (the service's pool is empty or exhausted). */
  LaddrExhausted: 27,
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** Lower-case names of the drop reasons, by code (for reports and logs). */
export const DROP_REASON_NAMES: readonly string[] = [
  "none",
  "truncated",
  "bad-version",
  "bad-header-length",
  "bad-total-length",
  "bad-ip-checksum",
  "bad-l4-header",
  "ext-header-chain",
  "ttl-expired",
  "fragment",
  "no-headroom",
  "unsupported",
  "not-ip",
  "bad-action",
  "too-big",
  "no-destination",
  "no-flow",
  "table-full",
  "icmp-suppressed",
  "bad-l4-checksum",
  "fragment-held",
  "fragment-overlap",
  "fragment-duplicate",
  "fragment-too-big",
  "fragment-invalid",
  "fragment-no-room",
  "bad-offload",
  "laddr-exhausted",
];

/** What the first byte of a packet slot is. */
export const LinkType = {
  /** A bare IPv4 / IPv6 packet (TUN devices, pcap LINKTYPE_RAW). */
  RawIp: 0,
  /** An Ethernet II frame, optionally with 802.1Q / 802.1ad tags. */
  Ethernet: 1,
} as const;
export type LinkType = (typeof LinkType)[keyof typeof LinkType];

/** Descriptor field offsets (bytes) within a 32-byte descriptor. */
export const Desc = {
  Offset: 0,
  Length: 4,
  Link: 8,
  Mark: 12,
  Verdict: 16,
  Reason: 20,
  Action: 24,
  Aux: 28,
} as const;

export const HEADROOM = 128;
export const DESC_SIZE = 32;
export const PARAMS_SIZE = 256;
export const ABI_VERSION = 2;

/**
 * The offload record of each slot (regionOffload() + slot * OFFLOAD_SIZE): a virtio_net_hdr
 * as TUN's IFF_VNET_HDR reads and writes it (little-endian), then private bytes. All zero
 * means what every adapter without offloads gives: a whole packet with complete checksums.
 * See docs/io.md, "Large frames: the virtio-net header".
 */
export const OFFLOAD_SIZE = 16;
/** Bytes of the virtio_net_hdr an adapter reads and writes in front of each packet. */
export const VNET_HDR_SIZE = 10;
export const Offload = {
  /** u8: VNET_F_* */
  Flags: 0,
  /** u8: GSO_* (| GSO_ECN) */
  GsoType: 1,
  /** u16: bytes of headers (a hint from the kernel) */
  HdrLen: 2,
  /** u16: payload bytes per segment */
  GsoSize: 4,
  /** u16: where the device starts summing (the L4 header), from the packet's first byte */
  CsumStart: 6,
  /** u16: where the sum goes, from CsumStart */
  CsumOffset: 8,
  /** u8 (private): 1 = the datapath deferred its action: segment, then apply DESC_ACTION to each segment */
  Deferred: 10,
} as const;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_UDP = 3;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const GSO_ECN = 0x80;
