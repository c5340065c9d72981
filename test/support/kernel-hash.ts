// Independent reference of the kernel's scheduler hashes, written from their definitions
// (include/linux/hash.h, lib/siphash.c, the SipHash paper) with BigInt and plain numbers,
// to judge the wasm implementation. Shares no code with assembly/.

const M64 = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M64;

/** SipHash-c-d over `msg` with a 128-bit key (k0, k1 little-endian words). */
export function sipHash(msg: Uint8Array, k0: bigint, k1: bigint, c: number, d: number): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M64;
    v1 = rotl(v1, 13n);
    v1 ^= v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M64;
    v3 = rotl(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & M64;
    v3 = rotl(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & M64;
    v1 = rotl(v1, 17n);
    v1 ^= v2;
    v2 = rotl(v2, 32n);
  };
  const full = msg.length - (msg.length % 8);
  const word = (at: number, len: number) => {
    let m = 0n;
    for (let i = len - 1; i >= 0; i--) m = (m << 8n) | BigInt(msg[at + i]);
    return m;
  };
  for (let at = 0; at < full; at += 8) {
    const m = word(at, 8);
    v3 ^= m;
    for (let i = 0; i < c; i++) round();
    v0 ^= m;
  }
  const b = (BigInt(msg.length & 255) << 56n) | word(full, msg.length - full);
  v3 ^= b;
  for (let i = 0; i < c; i++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let i = 0; i < d; i++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

/** hsiphash(&v, 4, {k, k}) on a 64-bit kernel: SipHash-1-3, low 32 bits. */
export function hsiphash32(v: number, k: number): number {
  const msg = new Uint8Array(4);
  new DataView(msg.buffer).setUint32(0, v >>> 0, true);
  return Number(sipHash(msg, BigInt(k), BigInt(k), 1, 3) & 0xffffffffn);
}

export const MH_KEY1 = 2654435761;
export const MH_KEY2 = 2654446892;

/** hash_32(val, bits) = (val * 0x61C88647 mod 2^32) >> (32 - bits). */
export function hash32(val: number, bits: number): number {
  return Math.imul(val >>> 0, 0x61c88647) >>> (32 - bits);
}

/** ntohl(addr) for IPv4 text. */
export function ipv4ToInt(a: string): number {
  return a.split(".").reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
}

/** The eight 16-bit groups of IPv6 text ("::" expanded; no embedded IPv4). */
export function ipv6Groups(a: string): number[] {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head ? head.split(":").map((g) => Number.parseInt(g, 16)) : [];
  const t = tail ? tail.split(":").map((g) => Number.parseInt(g, 16)) : [];
  return tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/**
 * The address fold of ip_vs_sh/dh/lblc (Linux 6.x, ip_vs_sh_hashkey): IPv4 ntohl(addr);
 * IPv6 ntohl of the XOR of its four 32-bit words.
 */
export function foldAddress(a: string): number {
  if (!a.includes(":")) return ipv4ToInt(a);
  const g = ipv6Groups(a);
  let x = 0;
  for (let w = 0; w < 4; w++) x ^= ((g[2 * w] << 16) | g[2 * w + 1]) >>> 0;
  return x >>> 0;
}

/** Maglev offset and skip of a destination, as ip_vs_mh_permutate computes them. */
export function mhOffsetSkip(address: string, port: number, m: number): [number, number] {
  const key = (ipv4ToInt(address) + port) >>> 0;
  return [hsiphash32(key, MH_KEY1) % m, (hsiphash32(key, MH_KEY2) % (m - 1)) + 1];
}

/** Maglev fill (paper 3.4 / ip_vs_mh_populate): round-robin, `turns` slots per round. */
export function maglevFill(m: number, setups: readonly { offset: number; skip: number; turns: number }[]): number[] {
  const table = new Array<number>(m).fill(-1);
  if (!setups.some((s) => s.turns > 0)) return table;
  const next = setups.map((s) => s.offset);
  let filled = 0;
  for (;;) {
    for (let k = 0; k < setups.length; k++) {
      for (let t = 0; t < setups[k].turns; t++) {
        let c = next[k];
        while (table[c] !== -1) c = (c + setups[k].skip) % m;
        next[k] = c;
        table[c] = k;
        if (++filled === m) return table;
      }
    }
  }
}
