// ABI of the offload records (virtio_net_hdr per slot, assembly/net/offload.ts) and of
// software GSO (assembly/forward/segment.ts), for adapters and the director.

import { offloadBase, OFFLOAD_SIZE, slotCount, slotStride, slotPtr, descGet, DESC_OFFSET, DESC_LENGTH, DESC_LINK } from "../layout";
import { parsePacket } from "../net/parse";
import { offloadCheck, offloadComplete } from "../net/offload";
import { gsoSegment, gsoSegmentCount } from "../forward/segment";
import { REASON_NONE } from "../verdict";

export function regionOffload(): usize { return offloadBase; }
export function offloadRecordBytes(): u32 { return OFFLOAD_SIZE; }

/** Segments slot src's GSO packet is cut into (0: not a valid GSO packet). */
export function gsoSegments(src: u32): u32 {
  return gsoSegmentCount(src);
}

/** Writes segments [first, first + max) of slot src into slots out...; returns how many. */
export function gsoSegmentInto(src: u32, first: u32, out: u32, max: u32): u32 {
  return gsoSegment(src, first, out, max);
}

/**
 * Completes slot i's partial checksum in place (what a device without checksum offload
 * needs). Returns 0 when done or nothing was partial, 1 when the slot's packet or record
 * is not valid (left as it was).
 */
export function offloadCompleteSlot(i: u32): u32 {
  if (i >= slotCount) return 1;
  const off = descGet(i, DESC_OFFSET);
  const len = descGet(i, DESC_LENGTH);
  if (off > slotStride || len > slotStride - off) return 1;
  const pkt = slotPtr(i) + off;
  if (parsePacket(pkt, len, descGet(i, DESC_LINK)) != REASON_NONE) return 1;
  if (offloadCheck(i) != REASON_NONE) return 1;
  offloadComplete(i, pkt);
  return 0;
}
