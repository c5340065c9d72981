// Flow hash of the parsed (inner) packet: addresses, protocol and ports. Used for the GUE
// UDP source port and the outer IPv6 flow label, so that one flow always maps to the same
// value (no reordering) while different flows spread over ECMP paths and RSS queues.

import { pFamily, pProto, pSport, pDport, pSrcAddr, pDstAddr } from "../net/parse";
import { murmurMix as mixWord, murmurFinal as finalMix } from "../net/murmur";

/** Hash of the flow of the packet at pkt (parse globals must describe it). */
export function innerFlowHash(pkt: usize): u32 {
  let h: u32 = 0x4c56_5331; // arbitrary seed
  const words: u32 = pFamily == 4 ? 1 : 4;
  for (let i: u32 = 0; i < words; i++) {
    h = mixWord(h, load<u32>(pkt + pSrcAddr + (i << 2)));
    h = mixWord(h, load<u32>(pkt + pDstAddr + (i << 2)));
  }
  h = mixWord(h, pProto);
  h = mixWord(h, (pSport << 16) | pDport);
  return finalMix(h ^ (words << 3));
}

/** GUE source port: the flow hash mapped onto 49152..65535 (RFC 6335 dynamic ports). */
@inline export function flowSourcePort(hash: u32): u32 {
  return 49152 + (hash >> 18);
}

/** IPv6 flow label (RFC 6437/6438): 20 bits of the flow hash, never 0 (0 means "unlabelled"). */
@inline export function flowLabel(hash: u32): u32 {
  const l = hash & 0xfffff;
  return l == 0 ? 1 : l;
}
