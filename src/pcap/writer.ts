// Writes classic little-endian pcap files (microsecond or nanosecond timestamps).

import { PCAP_GLOBAL_HEADER_BYTES, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_BYTES, type PcapLinkType } from "./format.js";

export interface PcapWriteOptions {
  /** Write nanosecond timestamps (magic 0xa1b23c4d). Default false: microseconds. */
  readonly nanosecond?: boolean;
  /** Snap length recorded in the header. Default 262144. */
  readonly snapLength?: number;
}

/** A frame to write; timestamp in nanoseconds since the epoch (default 0). */
export interface PcapFrame {
  readonly data: Uint8Array;
  readonly timestampNs?: bigint;
}

/** Serialises frames into one pcap file image. */
export function writePcap(linkType: PcapLinkType | number, frames: Iterable<PcapFrame | Uint8Array>, options: PcapWriteOptions = {}): Uint8Array {
  const nanosecond = options.nanosecond ?? false;
  const list = [...frames].map((f) => (f instanceof Uint8Array ? { data: f } : f));
  const total = PCAP_GLOBAL_HEADER_BYTES + list.reduce((n, f) => n + PCAP_RECORD_HEADER_BYTES + f.data.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, nanosecond ? PCAP_MAGIC_NANOS : PCAP_MAGIC_MICROS, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setInt32(8, 0, true);
  view.setUint32(12, 0, true);
  view.setUint32(16, options.snapLength ?? 262144, true);
  view.setUint32(20, linkType, true);
  let off = PCAP_GLOBAL_HEADER_BYTES;
  for (const frame of list) {
    const ts = frame.timestampNs ?? 0n;
    const sec = ts / 1_000_000_000n;
    const ns = ts % 1_000_000_000n;
    view.setUint32(off, Number(sec), true);
    view.setUint32(off + 4, Number(nanosecond ? ns : ns / 1000n), true);
    view.setUint32(off + 8, frame.data.length, true);
    view.setUint32(off + 12, frame.data.length, true);
    out.set(frame.data, off + PCAP_RECORD_HEADER_BYTES);
    off += PCAP_RECORD_HEADER_BYTES + frame.data.length;
  }
  return out;
}
