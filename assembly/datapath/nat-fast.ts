// The established NAT packet's whole rewrite in one step: TTL decrement and destination
// NAT (address and port) for IPv4 TCP / UDP that is not a later fragment, the case
// forward/nat.ts's natRewrite4 handles, with the header checksum patched once for both
// changes (one delta: the TTL word's and the address's) instead of once for each.
// Native (little-endian) byte order throughout, as in natRewrite4: a one's-complement sum
// does not depend on byte order as long as every word is read and written in the same one.
// Same bytes out as decrementTtl + natRewrite (the two folds and the one fold give the
// same value: every input is non-zero, so both land in [1, 0xFFFF] with the same residue).

import { outcome, A_ADDR } from "../forward/action";
import { applyMacRewrite } from "../forward/l2";
import { natPatchL4v4 } from "../forward/nat";
import { fold } from "../net/checksum";
import { VERDICT_FORWARD, VERDICT_DROP, REASON_NONE, REASON_TTL_EXPIRED } from "../verdict";

/**
 * ip: the IPv4 header; l4: the TCP / UDP header (inside the packet, parse has checked);
 * rec: the destination's NAT action record; port: the new destination port (host order, 0
 * keeps it). Returns the outcome (TTL expired: dropped, packet untouched).
 */
@inline export function natDnatTtl4(pkt: usize, ip: usize, l4: usize, rec: usize, port: u32, proto: u32, link: u32): u32 {
  const ttlWord = <u32>load<u16>(ip, 8); // TTL (low byte as loaded) and protocol
  if ((ttlWord & 0xff) <= 1) return outcome(VERDICT_DROP, REASON_TTL_EXPIRED);
  const newTtlWord = ttlWord - 1;
  store<u16>(ip, <u16>newTtlWord, 8);
  const addr = ip + 16;
  const oldA = load<u32>(addr);
  const newA = load<u32>(rec + A_ADDR);
  const addrDelta: u64 = <u64>(~oldA) + <u64>newA;
  natPatchL4v4(l4, true, port, proto, addrDelta);
  store<u32>(addr, newA);
  const h = <u32>load<u16>(ip, 10);
  const ipDelta = addrDelta + <u64>(~ttlWord & 0xffff) + <u64>newTtlWord;
  store<u16>(ip, <u16>~fold(<u64>(~h & 0xffff) + ipDelta), 10);
  applyMacRewrite(pkt, link, rec, false);
  return outcome(VERDICT_FORWARD, REASON_NONE);
}
