// Persistence (ipvsadm -p): the kernel's ip_vs_sched_persist. A template keyed
// <protocol, client network, 0, VIP, vport> pins new connections of that client network to
// one destination while it lives; fwmark services key it <IPPROTO_IP, net, 0, fwmark, 0>
// and port-zero services <protocol, net, 0, VIP, 0>. FTP's port 21 keys vport 0 too.

import {
  lookupIn, insertConn, connPtr, connCold, touchConn, invalidateTemplate, connExpired, NONE,
  C_DEST, C_SERVICE, CC_NCONTROL, C_TIMEOUT, F_TEMPLATE,
} from "../conn/conn-table";
import { destPtr, D_FLAGS, D_WEIGHT, DF_AVAILABLE, D_SERVICE, D_PORT, D_ADDR } from "../sched/table";
import { scheduleFlow } from "../sched/service";
import { servicePort, serviceFwmark, servicePersistMs, maskClient } from "./services";
import { expireQuiescentTemplate, flowKey, scratchAddr } from "./config";
import { bindConn } from "./accounting";

const FTP_PORT: u32 = 21;

/** Template chosen or made for this packet: its index, and the destination it pins. */
export let templateIndex: u32 = NONE;
export let templateDest: i32 = -1;

/** The kernel's ip_vs_check_template: the template's destination must still take flows. */
function templateValid(t: u32): bool {
  const d = load<u32>(connPtr(t) + C_DEST);
  const p = destPtr(d);
  if (load<u32>(p + D_SERVICE) == NONE) return false;
  const flags = load<u32>(p + D_FLAGS);
  if ((flags & DF_AVAILABLE) == 0) return false;
  if (expireQuiescentTemplate && load<i32>(p + D_WEIGHT) == 0) return false;
  return true;
}

/**
 * Finds or creates the template for a new flow of persistent service svc. Sets
 * templateIndex and templateDest; returns false with templateDest -1 when no destination
 * is available, or false with templateDest -2 when the table is full.
 */
export function persistSchedule(
  svc: u32, proto: u32, family: u32, caddr: usize, vaddr: usize, vport: u32, now: u32,
): bool {
  templateIndex = NONE;
  templateDest = -1;
  const svcPort = servicePort(svc);
  const fwmark = serviceFwmark(svc);
  let tProto = proto;
  let tVaddr = vaddr;
  let tVport: u32 = 0;
  if (vport == svcPort && fwmark == 0) {
    if (svcPort != FTP_PORT) tVport = vport;
  } else if (fwmark != 0) {
    tProto = 0;
    // The fwmark, big-endian, stands in for the address.
    memory.fill(scratchAddr + 16, 0, 16);
    store<u32>(scratchAddr + 16, bswap<u32>(fwmark));
    tVaddr = scratchAddr + 16;
  }
  maskClient(svc, family, caddr, scratchAddr);
  const timeout = servicePersistMs(svc);
  let t = lookupIn(tProto, family, scratchAddr, 0, tVaddr, tVport, true);
  if (t != NONE && !templateValid(t)) {
    invalidateTemplate(t);
    t = NONE;
  }
  if (t != NONE) {
    templateIndex = t;
    templateDest = <i32>load<u32>(connPtr(t) + C_DEST);
    touchConn(t, now, timeout);
    return true;
  }
  const d = scheduleFlow(svc, flowKey);
  if (d < 0) return false;
  const p = destPtr(<u32>d);
  const dport: u32 = vport == svcPort && fwmark == 0 && svcPort != FTP_PORT ? <u32>load<u16>(p + D_PORT) : 0;
  const ti = insertConn(tProto, family, scratchAddr, 0, tVaddr, tVport, p + D_ADDR, dport, F_TEMPLATE, false);
  if (ti == NONE) {
    templateDest = -2;
    return false;
  }
  const c = connPtr(ti);
  store<u32>(c + C_DEST, <u32>d);
  store<u32>(c + C_SERVICE, svc);
  store<u32>(connCold(ti) + CC_NCONTROL, 0);
  touchConn(ti, now, timeout);
  bindConn(ti, <u32>d, svc);
  templateIndex = ti;
  templateDest = d;
  return true;
}

/** A template past its time but still controlling connections lives on (expire_later). */
export function templateOutlives(t: u32, now: u32): bool {
  const c = connPtr(t);
  if (load<u32>(connCold(t) + CC_NCONTROL) == 0) return false;
  if (connExpired(t, now)) touchConn(t, now, load<u32>(c + C_TIMEOUT));
  return true;
}
