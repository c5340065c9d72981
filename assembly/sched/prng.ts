// A seedable PRNG for twos (the kernel draws from get_random_u32_below): xorshift64*, with
// Lemire's multiply-and-reject for an unbiased draw below a bound. Seeded by the host so
// tests replay.

let state: u64 = 0x9e3779b97f4a7c15;

export function seed(lo: u32, hi: u32): void {
  state = (<u64>hi << 32) | <u64>lo;
  if (state == 0) state = 0x9e3779b97f4a7c15;
}

@inline function next32(): u32 {
  let x = state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  state = x;
  return <u32>((x * 0x2545f4914f6cdd1d) >> 32);
}

/** Uniform in [0, bound), bound >= 1. */
export function below(bound: u32): u32 {
  let m = <u64>next32() * <u64>bound;
  let low = <u32>m;
  if (low < bound) {
    const t = (<u32>0 - bound) % bound;
    while (low < t) {
      m = <u64>next32() * <u64>bound;
      low = <u32>m;
    }
  }
  return <u32>(m >> 32);
}
