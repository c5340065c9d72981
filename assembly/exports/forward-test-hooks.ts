// Test hooks for the checksum primitives the forwarding paths rely on. Integer-only, like
// every export; tests call them to compare against a reference written in TypeScript.

import { csumReplace16, csumReplace32 } from "../net/checksum";
import { csumDeltaBytes, csumApplyDelta } from "../net/l4-checksum";

export function testCsumReplace16(csum: u32, oldw: u32, neww: u32): u32 {
  return csumReplace16(csum, oldw, neww);
}
export function testCsumReplace32(csum: u32, oldv: u32, newv: u32): u32 {
  return csumReplace32(csum, oldv, newv);
}
/** The checksum after the n bytes at oldp became those at newp (delta form, as NAT uses it). */
export function testCsumReplaceDelta(csum: u32, oldp: usize, newp: usize, n: u32): u32 {
  return csumApplyDelta(csum, csumDeltaBytes(oldp, newp, n));
}
