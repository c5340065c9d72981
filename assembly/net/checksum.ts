// Internet checksums (RFC 1071) and their incremental update (RFC 1624, eqn. 3:
// HC' = ~(~HC + ~m + m')). Sums are kept unfolded in a u64 and folded once at the end.

import { rd16 } from "./bytes";

/** Adds the bytes [p, p+len) as big-endian 16-bit words to sum (odd tail padded with 0). */
export function sumBytes(p: usize, len: u32, sum: u64): u64 {
  let i: u32 = 0;
  // 8 bytes at a time: four 16-bit words in native order. The one's-complement sum is
  // byte-order independent as long as we swap once at the end (RFC 1071 section 2(B)).
  let acc: u64 = 0;
  while (i + 8 <= len) {
    const w = load<u64>(p + i);
    acc += (w & 0xffffffff) + (w >> 32);
    i += 8;
  }
  while (i + 2 <= len) {
    acc += <u64>load<u16>(p + i);
    i += 2;
  }
  if (i < len) acc += <u64>load<u8>(p + i); // little-endian low byte == big-endian high byte of a padded word
  // Fold acc to 16 bits in native (little-endian) word order, then byte-swap to network order.
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return sum + <u64>bswap<u16>(<u16>acc);
}

/**
 * Folds a wide sum to 16 bits (no complement): 64 -> 32 bits with one end-around carry,
 * then 32 -> 16 by adding the word to itself rotated by 16, whose upper half is then
 * high + low + the carry out of the low half (Linux's generic csum_fold). Same result as
 * folding 16 bits at a time (0 only for a zero sum), with a shorter dependency chain.
 */
@inline export function fold(sum: u64): u32 {
  const lo = <u32>sum;
  let t = lo + <u32>(sum >> 32);
  t += <u32>(t < lo);
  return (t + rotr<u32>(t, 16)) >> 16;
}

/** The checksum field value for a finished sum. */
@inline export function finish(sum: u64): u32 {
  return ~fold(sum) & 0xffff;
}

/**
 * True when the IPv4 header of ihl bytes at p has a valid header checksum (RFC 1071: the
 * one's-complement sum of all its words, checksum included, is 0xFFFF). The common
 * 20-byte header is summed inline as five native-order u32 loads in a u64 (no carries
 * lost), folded once; 0xFFFF reads the same in either byte order (RFC 1071 section 2(B)),
 * so no byte swap is needed. Headers with options take the generic path.
 */
@inline export function ipv4HeaderChecksumOk(p: usize, ihl: u32): bool {
  if (ihl == 20) {
    let s: u64 =
      <u64>load<u32>(p) + <u64>load<u32>(p, 4) + <u64>load<u32>(p, 8) +
      <u64>load<u32>(p, 12) + <u64>load<u32>(p, 16);
    return fold(s) == 0xffff;
  }
  return checksum(p, ihl) == 0;
}

/** Full checksum of [p, p+len). */
export function checksum(p: usize, len: u32): u32 {
  return finish(sumBytes(p, len, 0));
}

/** Pseudo-header sum for TCP/UDP/ICMPv6 over IPv4 (addresses at src, dst). */
export function pseudoSum4(src: usize, dst: usize, proto: u32, l4len: u32): u64 {
  let s = sumBytes(src, 4, 0);
  s = sumBytes(dst, 4, s);
  return s + <u64>proto + <u64>l4len;
}

/** Pseudo-header sum over IPv6 (RFC 8200 section 8.1). */
export function pseudoSum6(src: usize, dst: usize, proto: u32, l4len: u32): u64 {
  let s = sumBytes(src, 16, 0);
  s = sumBytes(dst, 16, s);
  return s + <u64>(l4len >> 16) + <u64>(l4len & 0xffff) + <u64>proto;
}

// ---- RFC 1624 incremental updates. `csum` is the checksum field value as stored. ----

/** New checksum after a 16-bit word changed from oldw to neww. */
@inline export function csumReplace16(csum: u32, oldw: u32, neww: u32): u32 {
  const s: u64 = <u64>(~csum & 0xffff) + <u64>(~oldw & 0xffff) + <u64>(neww & 0xffff);
  return ~fold(s) & 0xffff;
}

/** New checksum after a 32-bit value changed from oldv to newv. */
@inline export function csumReplace32(csum: u32, oldv: u32, newv: u32): u32 {
  const s: u64 =
    <u64>(~csum & 0xffff) +
    <u64>(~oldv & 0xffff) + <u64>((~oldv >> 16) & 0xffff) +
    <u64>(newv & 0xffff) + <u64>(newv >> 16);
  return ~fold(s) & 0xffff;
}

/** New checksum after the n bytes at oldp (n even) were replaced by those at newp. */
export function csumReplaceBytes(csum: u32, oldp: usize, newp: usize, n: u32): u32 {
  let s: u64 = <u64>(~csum & 0xffff);
  for (let i: u32 = 0; i < n; i += 2) {
    s += <u64>(~rd16(oldp + i) & 0xffff) + <u64>rd16(newp + i);
  }
  return ~fold(s) & 0xffff;
}
