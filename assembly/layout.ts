// The memory map of the data plane. Regions are carved once at start-up (lvsInit) with the
// stub runtime's bump allocator; nothing allocates afterwards, so memory never grows after
// the host has taken its views. See docs/design.md, "Memory map".

/** Bytes kept free in front of every packet so an outer header is prepended in place. */
export const HEADROOM: u32 = 128;
/** Bytes per packet descriptor. */
export const DESC_SIZE: u32 = 32;
// Descriptor fields (u32, little-endian), offsets within a descriptor.
export const DESC_OFFSET: u32 = 0; // packet start within its slot (host sets HEADROOM)
export const DESC_LENGTH: u32 = 4; // packet length in bytes
export const DESC_LINK: u32 = 8; // LINK_RAW_IP or LINK_ETHERNET
export const DESC_MARK: u32 = 12; // firewall mark the host attaches
export const DESC_VERDICT: u32 = 16; // VERDICT_* (set by the data plane)
export const DESC_REASON: u32 = 20; // REASON_* when dropped
export const DESC_ACTION: u32 = 24; // in: action index (applyActions); out: destination index
export const DESC_AUX: u32 = 28; // spare for the datapath (egress, next hop)

/**
 * Bytes per slot of the offload region: a virtio_net_hdr (10 bytes, little-endian, the
 * layout TUN's IFF_VNET_HDR reads and writes) and 6 private bytes. See assembly/net/offload.ts.
 */
export const OFFLOAD_SIZE: u32 = 16;

/** Bytes of the host -> wasm argument block (addresses and other wide arguments). */
export const PARAMS_SIZE: u32 = 256;
/** Bytes of the wasm -> host parse-info block (see publishParseInfo). */
export const INFO_SIZE: u32 = 64;

export let slotCount: u32 = 0;
/** Bytes per slot: HEADROOM + capacity, rounded up to 64. */
export let slotStride: u32 = 0;
/** Largest packet a slot holds after the headroom. */
export let slotCapacity: u32 = 0;
export let slotsBase: usize = 0;
export let descBase: usize = 0;
export let paramsBase: usize = 0;
export let infoBase: usize = 0;
export let offloadBase: usize = 0;

export const INIT_OK: u32 = 0;
export const INIT_ALREADY: u32 = 1;
export const INIT_BAD_ARGS: u32 = 2;

/** Carves the packet regions. Call once, before the host takes memory views. */
export function initPacketRegions(count: u32, capacity: u32): u32 {
  if (slotsBase != 0) return INIT_ALREADY;
  if (count == 0 || count > 65536 || capacity < 128 || capacity > 262144) return INIT_BAD_ARGS;
  slotCount = count;
  slotCapacity = capacity;
  slotStride = (HEADROOM + capacity + 63) & ~63;
  paramsBase = heap.alloc(PARAMS_SIZE);
  infoBase = heap.alloc(INFO_SIZE);
  descBase = heap.alloc(<usize>count * DESC_SIZE);
  offloadBase = heap.alloc(<usize>count * OFFLOAD_SIZE);
  memory.fill(offloadBase, 0, <usize>count * OFFLOAD_SIZE);
  slotsBase = heap.alloc(<usize>count * slotStride + 64);
  slotsBase = (slotsBase + 63) & ~<usize>63;
  memory.fill(descBase, 0, <usize>count * DESC_SIZE);
  return INIT_OK;
}

@inline export function slotPtr(i: u32): usize {
  return slotsBase + <usize>i * slotStride;
}
@inline export function descPtr(i: u32): usize {
  return descBase + <usize>i * DESC_SIZE;
}
@inline export function offloadPtr(i: u32): usize {
  return offloadBase + <usize>i * OFFLOAD_SIZE;
}
@inline export function descGet(i: u32, field: u32): u32 {
  return load<u32>(descPtr(i) + field);
}
@inline export function descSet(i: u32, field: u32, v: u32): void {
  store<u32>(descPtr(i) + field, v);
}
