// The NAT inbound rewrite (IPv4 + TCP) in plain TypeScript over a DataView: the yardstick
// the wasm data plane is measured against in bench/rewrite.bench.ts.
//
// It does the same work as the wasm path for such a packet: the checks the wasm parser
// makes before it trusts the headers (version, IHL, total length, header checksum,
// fragment offset, TCP data offset), then destination address and port rewritten with
// RFC 1624 incremental updates of the IPv4 header checksum and of the TCP checksum
// (whose pseudo-header covers the address). No allocation; the packet is patched in place.

/** One's-complement delta of a 16-bit word changing from oldw to neww (RFC 1624 eqn. 3). */
function delta16(oldw: number, neww: number): number {
  return (~oldw & 0xffff) + neww;
}

/** ~(~HC + delta), folded: the new value of a checksum field. */
function applyDelta(csum: number, delta: number): number {
  let s = (~csum & 0xffff) + delta;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export const NAT_OK = 0;
export const NAT_MALFORMED = 1;
export const NAT_NOT_TCP = 2;

/**
 * Rewrites the IPv4/TCP packet at [off, off+len) of view to destination newAddr:newPort
 * (newAddr as a big-endian u32; newPort 0 keeps the port). Returns NAT_OK, or why not.
 */
export function natDnatIPv4Tcp(view: DataView, off: number, len: number, newAddr: number, newPort: number): number {
  if (len < 20) return NAT_MALFORMED;
  const vihl = view.getUint8(off);
  if (vihl >> 4 !== 4) return NAT_MALFORMED;
  const ihl = (vihl & 0x0f) << 2;
  if (ihl < 20 || ihl > len) return NAT_MALFORMED;
  const total = view.getUint16(off + 2);
  if (total < ihl || total > len) return NAT_MALFORMED;
  // Header checksum verification, as the parser does before trusting any field.
  let sum = 0;
  for (let i = 0; i < ihl; i += 2) sum += view.getUint16(off + i);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  if (sum !== 0xffff) return NAT_MALFORMED;
  if (view.getUint8(off + 9) !== 6) return NAT_NOT_TCP;
  const later = (view.getUint16(off + 6) & 0x1fff) !== 0;

  const oldHi = view.getUint16(off + 16);
  const oldLo = view.getUint16(off + 18);
  const newHi = newAddr >>> 16;
  const newLo = newAddr & 0xffff;
  const addrDelta = delta16(oldHi, newHi) + delta16(oldLo, newLo);

  if (!later) {
    const l4 = off + ihl;
    const l4len = total - ihl;
    if (l4len < 20) return NAT_MALFORMED;
    const doff = (view.getUint8(l4 + 12) >> 4) << 2;
    if (doff < 20 || doff > l4len) return NAT_MALFORMED;
    let d = addrDelta;
    if (newPort !== 0) {
      d += delta16(view.getUint16(l4 + 2), newPort);
      view.setUint16(l4 + 2, newPort);
    }
    view.setUint16(l4 + 16, applyDelta(view.getUint16(l4 + 16), d));
  }
  view.setUint16(off + 16, newHi);
  view.setUint16(off + 18, newLo);
  view.setUint16(off + 10, applyDelta(view.getUint16(off + 10), addrDelta));
  return NAT_OK;
}
