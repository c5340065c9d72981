// The kernel's scheduler hashes: hash_32 (golden-ratio multiply, include/linux/hash.h), the
// address fold of ip_vs_sh/dh/lblc/mh (IPv6: XOR of the four 32-bit words), and hsiphash
// as built on 64-bit kernels (SipHash-1-3 over a 4-byte message, truncated to 32 bits).

/** hash_32(val, bits): val * GOLDEN_RATIO_32 (mod 2^32), top `bits` bits. */
@inline export function hash32(val: u32, bits: u32): u32 {
  return (val * 0x61c88647) >>> (32 - bits);
}

/** ntohl of the address folded to 32 bits (IPv4: the address; IPv6: XOR of its words). */
@inline export function foldAddr(p: usize, family: u32): u32 {
  let w = load<u32>(p);
  if (family == 6) w ^= load<u32>(p + 4) ^ load<u32>(p + 8) ^ load<u32>(p + 12);
  return bswap<u32>(w);
}

// SipHash initial state ("somepseudorandomlygeneratedbytes").
const SIP_V0: u64 = 0x736f6d6570736575;
const SIP_V1: u64 = 0x646f72616e646f6d;
const SIP_V2: u64 = 0x6c7967656e657261;
const SIP_V3: u64 = 0x7465646279746573;

/**
 * hsiphash(&v, 4, key) on a 64-bit kernel, for a key whose two words are both k (ip_vs_mh
 * uses key = {2654435761, 2654435761} for h1 and {2654446892, 2654446892} for h2).
 */
export function hsiphash4(v: u32, k: u64): u32 {
  let v0 = SIP_V0 ^ k;
  let v1 = SIP_V1 ^ k;
  let v2 = SIP_V2 ^ k;
  let v3 = SIP_V3 ^ k;
  const b: u64 = (<u64>4 << 56) | <u64>v;
  v3 ^= b;
  // one compression round, then v0 ^= b, v2 ^= 0xff and three finalisation rounds
  for (let r = 0; r < 4; r++) {
    if (r == 1) {
      v0 ^= b;
      v2 ^= 0xff;
    }
    v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
    v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
  }
  return <u32>(v0 ^ v1 ^ v2 ^ v3);
}

export const MH_KEY1: u64 = 2654435761;
export const MH_KEY2: u64 = 2654446892;
