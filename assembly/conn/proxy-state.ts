// The one thing a PROXY-protocol connection needs besides its record: the client's first
// data sequence number (ISN + 1), where the header goes and from which the two sequence
// spaces differ. A side array of 4 bytes per record, carved at start-up and read only for
// connections flagged F_PROXY, so the 96-byte record keeps its layout (116 bytes per flow
// with the indexes).

let base: usize = 0;
let count: u32 = 0;

/** Carves the array for `capacity` records. Once; false if already carved or capacity is 0. */
export function initProxyState(capacity: u32): bool {
  if (base != 0 || capacity == 0) return false;
  count = capacity;
  base = heap.alloc(<usize>capacity * 4);
  memory.fill(base, 0, <usize>capacity * 4);
  return true;
}

@inline export function proxyIsn1(i: u32): u32 {
  return load<u32>(base + (<usize>i << 2));
}

@inline export function setProxyIsn1(i: u32, v: u32): void {
  if (i < count) store<u32>(base + (<usize>i << 2), v);
}
