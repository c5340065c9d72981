// What the data plane decides for each packet, and why it drops one. Mirrored in
// src/core/abi.ts; test/abi.test.ts checks the two agree.

export const VERDICT_NONE: u32 = 0;
/** Send out (rewritten) toward the next hop. */
export const VERDICT_FORWARD: u32 = 1;
/** Send back toward the sender (an ICMP error we generated). */
export const VERDICT_REPLY: u32 = 2;
/** Discard; the descriptor's reason field says why. */
export const VERDICT_DROP: u32 = 3;
/** Not ours: hand to the host's own stack unchanged. */
export const VERDICT_PASS: u32 = 4;

export const REASON_NONE: u32 = 0;
export const REASON_TRUNCATED: u32 = 1;
export const REASON_BAD_VERSION: u32 = 2;
export const REASON_BAD_HEADER_LENGTH: u32 = 3;
export const REASON_BAD_TOTAL_LENGTH: u32 = 4;
export const REASON_BAD_IP_CHECKSUM: u32 = 5;
export const REASON_BAD_L4_HEADER: u32 = 6;
export const REASON_EXT_HEADER_CHAIN: u32 = 7;
export const REASON_TTL_EXPIRED: u32 = 8;
export const REASON_FRAGMENT: u32 = 9;
export const REASON_NO_HEADROOM: u32 = 10;
export const REASON_UNSUPPORTED: u32 = 11;
export const REASON_NOT_IP: u32 = 12;
export const REASON_BAD_ACTION: u32 = 13;
export const REASON_TOO_BIG: u32 = 14;
export const REASON_NO_DESTINATION: u32 = 15;
export const REASON_NO_FLOW: u32 = 16;
export const REASON_TABLE_FULL: u32 = 17;
/** An ICMP error we would generate is forbidden (about an ICMP error, a later fragment, a
 * broadcast / multicast / unspecified address: RFC 1122 3.2.2, RFC 4443 2.4(e)). */
export const REASON_ICMP_SUPPRESSED: u32 = 18;
/** A checksum we must verify (tunnel UDP / GRE) is wrong. */
export const REASON_BAD_L4_CHECKSUM: u32 = 19;
/** A later fragment kept until its first fragment arrives (not lost: released later). */
export const REASON_FRAGMENT_HELD: u32 = 20;
/** A fragment overlapping part of its datagram (RFC 5722): the datagram is killed. */
export const REASON_FRAGMENT_OVERLAP: u32 = 21;
/** A fragment wholly inside what its datagram already had: only it is dropped. */
export const REASON_FRAGMENT_DUPLICATE: u32 = 22;
/** A fragment past 65,535 reassembled bytes: the datagram is killed. */
export const REASON_FRAGMENT_TOO_BIG: u32 = 23;
/** A fragment that contradicts its datagram's geometry (empty, past the end, a non-last not
 * a multiple of 8 bytes): the datagram is killed. */
export const REASON_FRAGMENT_INVALID: u32 = 24;
/** No room to track the datagram or hold the fragment (ipfrag_high_thresh's role). */
export const REASON_FRAGMENT_NO_ROOM: u32 = 25;
/** A virtio_net_hdr (offload record) that does not match the packet: GSO type against the
 * protocol, checksum start / offset away from the L4 checksum, GSO without a partial checksum. */
export const REASON_BAD_OFFLOAD: u32 = 26;
/** A full-NAT flow found no local address with a free port (its service's pool is exhausted or empty). */
export const REASON_LADDR_EXHAUSTED: u32 = 27;
export const REASON_COUNT: u32 = 28;
