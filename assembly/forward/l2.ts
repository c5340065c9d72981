// Link-layer output shared by every forwarding method: Ethernet MAC rewrite and the
// EtherType that must follow a change of IP family (4in6 / 6in4 encapsulation, decap).

import { copy6, wr16 } from "../net/bytes";
import { LINK_ETHERNET, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from "../net/constants";
import { A_SET_MAC, A_DST_MAC, A_SRC_MAC } from "./action";

/** Writes the record's MACs into an Ethernet frame when the record asks for it (or `force`). */
@inline export function applyMacRewrite(pkt: usize, link: u32, rec: usize, force: bool): void {
  if (link != LINK_ETHERNET) return;
  if (!force && load<u8>(rec + A_SET_MAC) == 0) return;
  copy6(pkt, rec + A_DST_MAC);
  copy6(pkt + 6, rec + A_SRC_MAC);
}

/** Sets the EtherType at etherTypeOff to announce an IP packet of `family`. */
@inline export function setEtherTypeFor(pkt: usize, etherTypeOff: u32, family: u32): void {
  wr16(pkt + etherTypeOff, family == 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
}
