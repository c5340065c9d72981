// Applies action records to a batch of slots: parse, dispatch on the action kind, set the
// verdict and reason in each descriptor. The primitives live one per file (nat, dr,
// tunnel, decap, icmp-*); this file only routes.

import {
  slotCount, slotStride, slotPtr, descPtr, DESC_SIZE, DESC_OFFSET, DESC_LENGTH, DESC_LINK,
  DESC_ACTION, DESC_VERDICT, DESC_REASON,
} from "../layout";
import { parsePacketInline } from "../net/parse";
import { offloadCheck, offloadClear } from "../net/offload";
import {
  VERDICT_DROP, VERDICT_PASS, VERDICT_REPLY, REASON_NONE, REASON_NOT_IP, REASON_BAD_ACTION,
  REASON_TRUNCATED,
} from "../verdict";
import {
  actionCount, actionsBase, ACTION_SIZE, outcome, A_KIND, ACTION_NAT_DNAT, ACTION_NAT_SNAT, ACTION_DR,
  ACTION_TUNNEL, ACTION_DECAP, ACTION_ICMP_NAT_IN, ACTION_ICMP_NAT_OUT,
  ACTION_PORT_UNREACHABLE, ACTION_FNAT,
} from "./action";
import { natRewrite } from "./nat";
import { fnatRewrite } from "./fnat";
import { drForward } from "./dr";
import { tunnelEncap } from "./tunnel";
import { tunnelDecap } from "./decap";
import { icmpNatIn, icmpNatOut } from "./icmp-nat";
import { icmpPortUnreachable } from "./icmp-generate";

/** Applies one action record to slot i whose packet is already parsed. */
export function applyParsed(i: u32, pkt: usize, rec: usize): u32 {
  return applyParsedInline(i, pkt, rec);
}

@inline function applyParsedInline(i: u32, pkt: usize, rec: usize): u32 {
  const kind = <u32>load<u8>(rec + A_KIND);
  // natDnat / natSnat, inlined.
  if (kind == ACTION_NAT_DNAT) return natRewrite(i, pkt, rec, true);
  if (kind == ACTION_NAT_SNAT) return natRewrite(i, pkt, rec, false);
  if (kind == ACTION_DR) return drForward(i, pkt, rec);
  if (kind == ACTION_TUNNEL) return tunnelEncap(i, pkt, rec);
  if (kind == ACTION_DECAP) return tunnelDecap(i, pkt, rec);
  if (kind == ACTION_ICMP_NAT_IN) return icmpNatIn(i, pkt, rec);
  if (kind == ACTION_ICMP_NAT_OUT) return icmpNatOut(i, pkt, rec);
  if (kind == ACTION_PORT_UNREACHABLE) return icmpPortUnreachable(i, pkt, rec);
  if (kind == ACTION_FNAT) return fnatRewrite(i, pkt, rec);
  return outcome(VERDICT_DROP, REASON_BAD_ACTION);
}

/**
 * For each slot in [first, first + count): parse, apply the action named by the
 * descriptor's action field, record verdict and reason. Returns how many were processed.
 */
export function applyActions(first: u32, count: u32): u32 {
  if (first >= slotCount) return 0;
  if (count > slotCount - first) count = slotCount - first;
  // The region geometry, read once: globals are memory to the engine, and the calls in
  // the loop would make it read them again on every packet.
  const stride = slotStride;
  const actions = actionCount;
  const actBase = actionsBase;
  let d = descPtr(first);
  let slot = slotPtr(first);
  for (let i = first; i < first + count; i++, d += DESC_SIZE, slot += <usize>stride) {
    const off = load<u32>(d, DESC_OFFSET);
    const len = load<u32>(d, DESC_LENGTH);
    let result: u32;
    if (off > stride || len > stride - off) {
      result = outcome(VERDICT_DROP, REASON_TRUNCATED);
    } else {
      const pkt = slot + off;
      const status = parsePacketInline(pkt, len, load<u32>(d, DESC_LINK));
      const a = load<u32>(d, DESC_ACTION);
      const bad = status == REASON_NONE ? offloadCheck(i) : REASON_NONE;
      if (status == REASON_NOT_IP) result = outcome(VERDICT_PASS, REASON_NOT_IP);
      else if (status != REASON_NONE) result = outcome(VERDICT_DROP, status);
      else if (bad != REASON_NONE) result = outcome(VERDICT_DROP, bad);
      else if (a >= actions) result = outcome(VERDICT_DROP, REASON_BAD_ACTION);
      else result = applyParsedInline(i, pkt, actBase + <usize>a * ACTION_SIZE);
    }
    if ((result & 0xff) == VERDICT_REPLY) offloadClear(i);
    store<u32>(d, result & 0xff, DESC_VERDICT);
    store<u32>(d, result >> 8, DESC_REASON);
  }
  return count;
}
