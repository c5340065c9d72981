// Forwarding actions: what to do to a packet, as a fixed-size record in wasm memory. The
// host (or, later, the datapath from a connection's destination) fills records; one call
// applies them to a batch of slots. Mirrored in src/core/actions.ts.

/** Bytes per action record. */
export const ACTION_SIZE: u32 = 96;

// Field offsets within a record.
export const A_KIND: u32 = 0; // u8, ACTION_*
export const A_FAMILY: u32 = 1; // u8, 4 or 6: family of A_ADDR (and of A_TUN_SRC)
export const A_TUN_TYPE: u32 = 2; // u8, TUN_*
export const A_TUN_FLAGS: u32 = 3; // u8, TUNF_*
export const A_PORT: u32 = 4; // u16 (host order): NAT new port, 0 keeps the port
export const A_TUN_PORT: u32 = 6; // u16: GUE destination port
export const A_MTU: u32 = 8; // u16: egress MTU for encapsulation, 0 = no limit
export const A_SET_MAC: u32 = 10; // u8: 1 = rewrite MACs of Ethernet frames (DR always does)
export const A_SRC_PORT: u32 = 12; // u16 (host order): full NAT new source port, 0 keeps the port
export const A_ADDR: u32 = 16; // 16 bytes: NAT new address / tunnel outer destination (IPv4 in the first 4)
export const A_TUN_SRC: u32 = 32; // 16 bytes: tunnel outer source / ICMP error source / full NAT new source
export const A_DST_MAC: u32 = 48; // 6 bytes
export const A_SRC_MAC: u32 = 54; // 6 bytes

export const ACTION_NONE: u32 = 0;
/** NAT inbound: destination address (and port) rewritten to the real server. */
export const ACTION_NAT_DNAT: u32 = 1;
/** NAT outbound (replies): source address (and port) rewritten to the virtual service. */
export const ACTION_NAT_SNAT: u32 = 2;
/** Direct routing: only MACs change. */
export const ACTION_DR: u32 = 3;
/** Tunnelling: an outer header to A_ADDR from A_TUN_SRC. */
export const ACTION_TUNNEL: u32 = 4;
/** Real-server side: remove ipip / ip6ip6 / GUE / GRE encapsulation. */
export const ACTION_DECAP: u32 = 5;
/** ICMP error toward a real server about a reply it sent (NAT in): embedded source -> A_ADDR:A_PORT, outer destination -> A_ADDR. */
export const ACTION_ICMP_NAT_IN: u32 = 6;
/** ICMP error from a real server about a packet we forwarded (NAT out): embedded destination -> A_ADDR:A_PORT, outer source -> A_ADDR. */
export const ACTION_ICMP_NAT_OUT: u32 = 7;
/** Answer with ICMP port-unreachable (no destination available), sourced from the packet's destination. */
export const ACTION_PORT_UNREACHABLE: u32 = 8;
/**
 * Full NAT (DPVS FNAT): destination -> A_ADDR:A_PORT and source -> A_TUN_SRC:A_SRC_PORT.
 * A destination's record holds the real server; the datapath writes the connection's
 * local address and port into it per packet, as it writes NAT's port.
 */
export const ACTION_FNAT: u32 = 9;
export const ACTION_KIND_COUNT: u32 = 10;

export const TUN_IPIP: u32 = 0; // ipip, ip6ip6, or 4in6 / 6in4 as the families say
export const TUN_GUE: u32 = 1;
export const TUN_GRE: u32 = 2;

export const TUNF_CSUM: u32 = 1; // GUE: UDP checksum; GRE: checksum present
export const TUNF_REMCSUM: u32 = 2; // GUE remote checksum offload

export let actionsBase: usize = 0;
export let actionCount: u32 = 0;

/** Carves the action table. Call once at start-up. */
export function initActionTable(count: u32): bool {
  if (actionsBase != 0 || count == 0 || count > 1 << 20) return false;
  actionCount = count;
  actionsBase = heap.alloc(<usize>count * ACTION_SIZE);
  memory.fill(actionsBase, 0, <usize>count * ACTION_SIZE);
  return true;
}

@inline export function actionPtr(i: u32): usize {
  return actionsBase + <usize>i * ACTION_SIZE;
}

/** Packs a primitive's outcome: verdict in the low byte, reason above it. */
@inline export function outcome(verdict: u32, reason: u32): u32 {
  return verdict | (reason << 8);
}
