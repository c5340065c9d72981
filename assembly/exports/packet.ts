// ABI of the packet layer: start-up, where the regions are, and parse for diagnostics.

import {
  initPacketRegions, slotsBase, slotStride, slotCapacity, slotCount, descBase, paramsBase,
  infoBase, HEADROOM, DESC_SIZE, slotPtr, descGet,
  DESC_OFFSET, DESC_LENGTH, DESC_LINK,
} from "../layout";
import {
  parsePacket, pL3, pFamily, pIpLen, pL4, pProto, pL4Len, pFrag, pSport, pDport,
  pIcmpType, pIcmpCode, pTcpFlags, pSrcAddr, pDstAddr, pEtherTypeOff,
} from "../net/parse";
import { checksum } from "../net/checksum";

/** ABI version; bumped on any incompatible change of layout or exports. */
export function abiVersion(): u32 {
  return 2;
}
export function lvsInit(count: u32, capacity: u32): u32 {
  return initPacketRegions(count, capacity);
}
export function regionSlots(): usize { return slotsBase; }
export function regionDescriptors(): usize { return descBase; }
export function regionParams(): usize { return paramsBase; }
export function regionInfo(): usize { return infoBase; }
export function slotStrideBytes(): u32 { return slotStride; }
export function slotCapacityBytes(): u32 { return slotCapacity; }
export function slotCountTotal(): u32 { return slotCount; }
export function headroomBytes(): u32 { return HEADROOM; }
export function descriptorBytes(): u32 { return DESC_SIZE; }

/**
 * Parses the packet in slot i (as its descriptor describes it) and writes the result to
 * the info block as u32 words: [status, l3, family, ipLen, l4, proto, l4Len, frag, sport,
 * dport, icmpType, icmpCode, tcpFlags, srcAddrOff, dstAddrOff, etherTypeOff]. Returns status.
 */
export function parseSlot(i: u32): u32 {
  if (i >= slotCount) return 0xffffffff;
  const off = descGet(i, DESC_OFFSET);
  const len = descGet(i, DESC_LENGTH);
  if (off > slotStride || len > slotStride - off) return 0xffffffff;
  const status = parsePacket(slotPtr(i) + off, len, descGet(i, DESC_LINK));
  const b = infoBase;
  store<u32>(b, status);
  store<u32>(b + 4, pL3);
  store<u32>(b + 8, pFamily);
  store<u32>(b + 12, pIpLen);
  store<u32>(b + 16, pL4);
  store<u32>(b + 20, pProto);
  store<u32>(b + 24, pL4Len);
  store<u32>(b + 28, pFrag);
  store<u32>(b + 32, pSport);
  store<u32>(b + 36, pDport);
  store<u32>(b + 40, pIcmpType);
  store<u32>(b + 44, pIcmpCode);
  store<u32>(b + 48, pTcpFlags);
  store<u32>(b + 52, pSrcAddr);
  store<u32>(b + 56, pDstAddr);
  store<u32>(b + 60, pEtherTypeOff);
  return status;
}

/** Internet checksum of len bytes at ptr (for host-side tests and tools). */
export function checksumAt(ptr: usize, len: u32): u32 {
  return checksum(ptr, len);
}
