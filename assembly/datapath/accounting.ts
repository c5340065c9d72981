// Binding connections to destinations and letting them go, with the counters the
// schedulers read (ActiveConn, InActConn, PersistConn), templates' control counts, events,
// and the destination overload transitions that follow.

import {
  connPtr, connCold, removeConn, C_FLAGS, C_DEST, C_SERVICE, CC_TEMPLATE, CC_NCONTROL, C_STATE,
  F_TEMPLATE, F_INACTIVE, NONE,
} from "../conn/conn-table";
import { isActiveState } from "../conn/tcp-states";
import { connBind, connSetActive, destPtr, D_FLAGS, DF_OVERLOAD, CONN_ACTIVE, CONN_INACTIVE, CONN_PERSIST, maxDests } from "../sched/table";
import { destUnbind } from "../sched/service";
import { emit, eventsEnabled, EV_FLOW_EXPIRED, EV_DEST_OVERLOADED, EV_DEST_UNDERLOADED } from "./events";

@inline function overloadedNow(d: u32): bool {
  return (load<u32>(destPtr(d) + D_FLAGS) & DF_OVERLOAD) != 0;
}

/** Counts a new connection (inactive, as every one starts) or template on dest d. */
export function bindConn(i: u32, d: u32, svc: u32): void {
  const before = eventsEnabled && overloadedNow(d);
  const template = (<u32>load<u16>(connPtr(i) + C_FLAGS) & F_TEMPLATE) != 0;
  connBind(d, template ? CONN_PERSIST : CONN_INACTIVE);
  if (eventsEnabled && !before && overloadedNow(d)) emit(EV_DEST_OVERLOADED, i, d, svc);
}

/** Applies a TCP state change to the active / inactive counts (kernel set_tcp_state). */
export function applyStateChange(i: u32, newState: u32): void {
  const c = connPtr(i);
  const flags = <u32>load<u16>(c + C_FLAGS);
  store<u8>(c + C_STATE, <u8>newState);
  const d = load<u32>(c + C_DEST);
  const inactive = (flags & F_INACTIVE) != 0;
  const active = isActiveState(newState);
  if (inactive && active) {
    store<u16>(c + C_FLAGS, <u16>(flags & ~F_INACTIVE));
    connSetActive(d, true);
  } else if (!inactive && !active) {
    store<u16>(c + C_FLAGS, <u16>(flags | F_INACTIVE));
    connSetActive(d, false);
  }
}

/** Removes entry i with its accounting: dest counters, its template's control count, events. */
export function dropConn(i: u32): void {
  const c = connPtr(i);
  const flags = <u32>load<u16>(c + C_FLAGS);
  const d = load<u32>(c + C_DEST);
  const svc = load<u32>(c + C_SERVICE);
  const before = eventsEnabled && d < maxDests && overloadedNow(d);
  if (flags & F_TEMPLATE) {
    destUnbind(d, CONN_PERSIST);
  } else {
    destUnbind(d, (flags & F_INACTIVE) != 0 ? CONN_INACTIVE : CONN_ACTIVE);
    const t = load<u32>(connCold(i) + CC_TEMPLATE);
    if (t != NONE) {
      const tp = connCold(t);
      const n = load<u32>(tp + CC_NCONTROL);
      if (n > 0) store<u32>(tp + CC_NCONTROL, n - 1);
    }
    emit(EV_FLOW_EXPIRED, i, d, svc);
  }
  if (before && !overloadedNow(d)) emit(EV_DEST_UNDERLOADED, i, d, svc);
  removeConn(i);
}
