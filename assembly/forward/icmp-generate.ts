// STUB: to be implemented (see docs/design.md, forwarding primitives).
import { outcome } from "./action";
import { VERDICT_DROP, REASON_UNSUPPORTED } from "../verdict";

export function icmpPortUnreachable(slot: u32, pkt: usize, rec: usize): u32 {
  return outcome(VERDICT_DROP, REASON_UNSUPPORTED);
}
