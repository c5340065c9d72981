// Classic libpcap file format constants (https://www.tcpdump.org/manual/pcap-savefile.html
// and pcap-linktype). Only the classic format, not pcapng.

export const PCAP_MAGIC_MICROS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOS = 0xa1b23c4d;
export const PCAP_GLOBAL_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;

/** Link-layer header types this library reads and writes. */
export const PcapLinkType = {
  /** LINKTYPE_ETHERNET */
  Ethernet: 1,
  /** LINKTYPE_RAW: a bare IPv4 or IPv6 packet. */
  Raw: 101,
  /** LINKTYPE_IPV4 (read only; treated as Raw) */
  Ipv4: 228,
  /** LINKTYPE_IPV6 (read only; treated as Raw) */
  Ipv6: 229,
} as const;
export type PcapLinkType = (typeof PcapLinkType)[keyof typeof PcapLinkType];

/** One captured frame. */
export interface PcapRecord {
  /** Capture time in nanoseconds since the Unix epoch. */
  readonly timestampNs: bigint;
  /** The captured bytes (may be shorter than originalLength when the capture was snapped). */
  readonly data: Uint8Array;
  /** Length of the frame on the wire. */
  readonly originalLength: number;
}

export class PcapFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PcapFormatError";
  }
}
