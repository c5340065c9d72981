// Packet builders for the benchmarks: IPv4/TCP packets of an exact size with every checksum
// filled in, optionally behind an Ethernet header.

function sum16(b: Uint8Array, start: number, end: number, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if ((end - start) & 1) s += b[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Internet checksum of b[start, end) with an initial sum. */
export function checksum(b: Uint8Array, start: number, end: number, init = 0): number {
  return ~sum16(b, start, end, init) & 0xffff;
}

/** True when the IPv4 header and TCP checksum of the packet at b[off..] both verify. */
export function ipv4TcpChecksumsValid(b: Uint8Array, off = 0): boolean {
  const ihl = (b[off] & 15) * 4;
  const total = (b[off + 2] << 8) | b[off + 3];
  if (sum16(b, off, off + ihl) !== 0xffff) return false;
  const pseudo = sum16(b, off + 12, off + 20, 6 + total - ihl);
  return sum16(b, off + ihl, off + total, pseudo) === 0xffff;
}

const ip = (s: string) => s.split(".").map(Number);

/** An IPv4 TCP ACK packet of exactly `size` bytes (>= 40), DF set, checksums filled in. */
export function ipv4Tcp(size: number, src: string, sport: number, dst: string, dport: number, seed = 0): Uint8Array {
  const p = new Uint8Array(size);
  p.set([0x45, 0, size >> 8, size & 0xff, (seed >> 8) & 0xff, seed & 0xff, 0x40, 0, 64, 6, 0, 0, ...ip(src), ...ip(dst)]);
  p.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, 0, 0x10, seed & 0xff, 0, 0, 0x20, 0x01, 0x50, 0x10, 0xff, 0xff], 20);
  for (let i = 40; i < size; i++) p[i] = (i * 7 + seed) & 0xff;
  const c = checksum(p, 20, size, sum16(p, 12, 20, 6 + size - 20));
  p[36] = c >> 8;
  p[37] = c & 0xff;
  const h = checksum(p, 0, 20);
  p[10] = h >> 8;
  p[11] = h & 0xff;
  return p;
}

/** The packet behind an Ethernet II header (EtherType IPv4). */
export function ethernet(packet: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + packet.length);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  f.set(packet, 14);
  return f;
}
