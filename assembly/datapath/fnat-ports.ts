// Choosing a full-NAT flow's local address and port. The reply-side index is the record
// of what is in use: a (LIP, lport) pair is free toward RIP:rport exactly when no
// connection answers the reply tuple RIP:rport -> LIP:lport (NAT connections included,
// should a client ever use a local address). Each local address hands out ports from a
// cursor that walks its range (ip_local_port_range's role), and the service's addresses
// take new flows in turn. A bounded number of ports is tried per address, so a new flow
// costs a bounded number of lookups even when a pool is nearly full: a refused flow is
// dropped as `laddr-exhausted` and counted on each address tried.

import { lookupOut, NONE } from "../conn/conn-table";
import {
  laddrCapacity, laddrUsable, laddrPtr, laddrNextPort, laddrCountExhausted, portLow, portHigh, LADDR_NONE,
} from "../conn/local-addresses";

/** Ports tried per local address before the next address is asked. */
const TRIES_PER_ADDRESS: u32 = 64;

/** The choice of the last successful fnatChoose. */
export let chosenLaddr: u32 = LADDR_NONE;
export let chosenPort: u32 = 0;
/** Flows refused since start-up for want of a local address and port. */
export let fnatExhausted: u32 = 0;
/** Where the next search over the address table starts: the pools' round robin. */
let turn: u32 = 0;

/**
 * Picks a local address of service svc (family) and a port on it that no connection uses
 * toward rip:rport for proto. False when the service has no usable local address or every
 * address tried had no free port among those tried.
 */
export function fnatChoose(svc: u32, proto: u32, family: u32, rip: usize, rport: u32): bool {
  const n = laddrCapacity;
  if (n == 0) {
    fnatExhausted++;
    return false;
  }
  const span = portHigh - portLow + 1;
  const tries = span < TRIES_PER_ADDRESS ? span : TRIES_PER_ADDRESS;
  const start = turn < n ? turn : 0;
  for (let k: u32 = 0; k < n; k++) {
    const i = start + k < n ? start + k : start + k - n;
    if (!laddrUsable(i, svc, family)) continue;
    const lip = laddrPtr(i);
    for (let t: u32 = 0; t < tries; t++) {
      const port = laddrNextPort(i);
      if (lookupOut(proto, family, rip, rport, lip, port) == NONE) {
        chosenLaddr = i;
        chosenPort = port;
        turn = i + 1 < n ? i + 1 : 0;
        return true;
      }
    }
    laddrCountExhausted(i);
  }
  fnatExhausted++;
  return false;
}
