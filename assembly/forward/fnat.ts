// Full NAT (DPVS's FNAT, Alibaba LVS's FULLNAT): both ends of the packet rewritten, so
// client -> VIP:vport leaves as LIP:lport -> RIP:rport and the real server's reply
// RIP:rport -> LIP:lport leaves as VIP:vport -> client:cport. It is NAT twice over: the
// destination half, then the source half, each an incremental checksum patch (RFC 1624)
// through nat.ts, so every case NAT handles (IPv4 and IPv6, partial checksums of GSO
// super-packets, UDP without checksum, first and later fragments) is handled the same way.
// ICMP errors about a full-NAT flow are icmp-nat.ts applied twice (datapath/process.ts).

import { A_FAMILY, A_PORT, A_ADDR, A_TUN_SRC, A_SRC_PORT, ACTION_SIZE, ACTION_NAT_SNAT, A_KIND } from "./action";
import { natRewrite } from "./nat";
import { VERDICT_FORWARD } from "../verdict";

/** The source half's record: a plain NAT record carved once. */
const sourceHalf: usize = memory.data(ACTION_SIZE, 16);

/** Destination -> A_ADDR:A_PORT, source -> A_TUN_SRC:A_SRC_PORT (ports 0 keep theirs). */
export function fnatRewrite(slot: u32, pkt: usize, rec: usize): u32 {
  const result = natRewrite(slot, pkt, rec, true);
  if ((result & 0xff) != VERDICT_FORWARD) return result;
  store<u8>(sourceHalf + A_KIND, <u8>ACTION_NAT_SNAT);
  store<u8>(sourceHalf + A_FAMILY, load<u8>(rec + A_FAMILY));
  store<u16>(sourceHalf + A_PORT, load<u16>(rec + A_SRC_PORT));
  memory.copy(sourceHalf + A_ADDR, rec + A_TUN_SRC, 16);
  // sourceHalf never asks for MACs (A_SET_MAC stays 0): the first half applied the record's.
  return natRewrite(slot, pkt, sourceHalf, false);
}
