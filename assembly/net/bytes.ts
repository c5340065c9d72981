// Network-byte-order loads and stores over raw wasm memory. Packet fields read as numbers
// go through these so the endianness rule lives in one place. The exception is checksum
// arithmetic on hot paths (parse.ts, nat.ts, tunnel.ts, checksum.ts): there words are
// loaded, summed and stored in native (little-endian) order on purpose, since a one's-
// complement sum does not depend on byte order when every word is read and written the
// same way (RFC 1071 section 2(B)); only constants from elsewhere (a port in an action
// record) are swapped into that order.

@inline export function rd8(p: usize): u32 {
  return <u32>load<u8>(p);
}
@inline export function rd16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}
@inline export function rd32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}
@inline export function wr8(p: usize, v: u32): void {
  store<u8>(p, <u8>v);
}
@inline export function wr16(p: usize, v: u32): void {
  store<u16>(p, bswap<u16>(<u16>v));
}
@inline export function wr32(p: usize, v: u32): void {
  store<u32>(p, bswap<u32>(v));
}
/** Copies 16 bytes (an IPv6 address) from src to dst. */
@inline export function copy16(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst + 8, load<u64>(src + 8));
}
/** Copies 6 bytes (a MAC address). */
@inline export function copy6(dst: usize, src: usize): void {
  store<u32>(dst, load<u32>(src));
  store<u16>(dst + 4, load<u16>(src + 4));
}
/** True when the 16 bytes at a and b are equal. */
@inline export function eq16(a: usize, b: usize): bool {
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}
