// Direct routing (ipvsadm -g): the packet is not changed at L3/L4. The real server holds
// the VIP on a non-ARPing interface, so only the frame's MACs steer it there.
// - Ethernet: destination MAC = A_DST_MAC, source MAC = A_SRC_MAC, always (DR without a
//   MAC rewrite would send the frame back to ourselves).
// - Raw IP (TUN device): forwarded unchanged; the host's routing table picks the RS.
// TTL is left to the datapath, as for NAT.

import { outcome } from "./action";
import { applyMacRewrite } from "./l2";
import { descGet, DESC_LINK } from "../layout";
import { VERDICT_FORWARD, REASON_NONE } from "../verdict";

export function drForward(slot: u32, pkt: usize, rec: usize): u32 {
  // parsePacket already checked an Ethernet frame holds its 14-byte header.
  applyMacRewrite(pkt, descGet(slot, DESC_LINK), rec, true);
  return outcome(VERDICT_FORWARD, REASON_NONE);
}
