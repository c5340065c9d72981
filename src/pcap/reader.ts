// Reads classic pcap files of either byte order and either timestamp resolution.

import { PCAP_GLOBAL_HEADER_BYTES, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_BYTES, PcapFormatError, type PcapRecord } from "./format.js";

export interface PcapFile {
  /** The link type number from the file header (see PcapLinkType). */
  readonly linkType: number;
  readonly snapLength: number;
  /** True when timestamps in the file are nanoseconds. */
  readonly nanosecond: boolean;
  readonly records: PcapRecord[];
}

/** Parses a whole pcap file. Throws PcapFormatError naming what is wrong. */
export function readPcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < PCAP_GLOBAL_HEADER_BYTES) {
    throw new PcapFormatError(`not a pcap file: ${bytes.length} bytes is shorter than the 24-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let little: boolean;
  let nanosecond: boolean;
  const magicLE = view.getUint32(0, true);
  if (magicLE === PCAP_MAGIC_MICROS || magicLE === PCAP_MAGIC_NANOS) {
    little = true;
    nanosecond = magicLE === PCAP_MAGIC_NANOS;
  } else {
    const magicBE = view.getUint32(0, false);
    if (magicBE !== PCAP_MAGIC_MICROS && magicBE !== PCAP_MAGIC_NANOS) {
      throw new PcapFormatError(`not a classic pcap file: magic 0x${magicLE.toString(16)} (pcapng is not supported; convert with editcap -F pcap)`);
    }
    little = false;
    nanosecond = magicBE === PCAP_MAGIC_NANOS;
  }
  const snapLength = view.getUint32(16, little);
  const linkType = view.getUint32(20, little) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let off = PCAP_GLOBAL_HEADER_BYTES;
  while (off < bytes.length) {
    if (off + PCAP_RECORD_HEADER_BYTES > bytes.length) {
      throw new PcapFormatError(`truncated record header at byte ${off}`);
    }
    const sec = view.getUint32(off, little);
    const frac = view.getUint32(off + 4, little);
    const capLen = view.getUint32(off + 8, little);
    const origLen = view.getUint32(off + 12, little);
    off += PCAP_RECORD_HEADER_BYTES;
    if (off + capLen > bytes.length) {
      throw new PcapFormatError(`record ${records.length} claims ${capLen} bytes but the file ends first`);
    }
    const timestampNs = BigInt(sec) * 1_000_000_000n + BigInt(frac) * (nanosecond ? 1n : 1000n);
    records.push({ timestampNs, data: bytes.slice(off, off + capLen), originalLength: origLen });
    off += capLen;
  }
  return { linkType, snapLength, nanosecond, records };
}
