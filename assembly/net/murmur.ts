// MurmurHash3's 32-bit block mix and finaliser: cheap, no tables, good avalanche. The
// connection table hashes tuples with it (seeded per instance against hash flooding) and
// tunnels derive their flow hash from it (GUE source port, IPv6 flow label).

/** Mixes one 32-bit word into the running hash. */
@inline export function murmurMix(h: u32, k: u32): u32 {
  k *= 0xcc9e2d51;
  k = rotl<u32>(k, 15);
  k *= 0x1b873593;
  h ^= k;
  h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}

/** The finaliser (fmix32). */
@inline export function murmurFinal(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  return h ^ (h >> 16);
}
