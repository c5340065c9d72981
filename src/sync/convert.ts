// Between the Balancer's sync records (our terms: state numbers, F_* flags, forwarding
// method names, milliseconds) and the kernel's sync connections (IP_VS_CONN_F_* flags,
// per-protocol state numbers, seconds).

import type { ForwardMethod } from "../config/types.js";
import type { SyncRecord, SyncRecordBytes } from "../balancer/sync-records.js";
import { encodeAddress } from "../core/actions.js";
import { formatAddress } from "../sched/flow.js";
import { ConnFlag, type SyncConnection } from "./wire.js";

const TCP = 6;
const TCP_STATE_COUNT = 11;

const FWD_FLAGS: Record<ForwardMethod, number> = {
  masq: ConnFlag.Masq,
  route: ConnFlag.DirectRoute | ConnFlag.NoOutput,
  tunnel: ConnFlag.Tunnel | ConnFlag.NoOutput,
  // The kernel has no full NAT: its nearest is masq. A full-NAT connection also carries its
  // local address in our own option (wire.ts); a template names a destination only.
  fullnat: ConnFlag.Masq,
};

/**
 * The kernel's view of one of our records. TCP states are the kernel's numbers already;
 * the other protocols have one state, which the kernel numbers 0. Templates carry the
 * destination's flags and INACTIVE, as the kernel's do (ip_vs_bind_dest).
 */
export function toSyncConnection(r: SyncRecord & { readonly bytes?: SyncRecordBytes }): SyncConnection {
  let flags = FWD_FLAGS[r.method];
  if (r.template) flags |= ConnFlag.Template | ConnFlag.Inactive;
  else if (r.inactive) flags |= ConnFlag.Inactive;
  const state = r.template || r.protocol !== TCP ? 0 : r.state;
  return {
    family: r.family,
    protocol: r.protocol,
    flags,
    state,
    cport: r.client.port,
    vport: r.virtual.port,
    dport: r.destination.port,
    fwmark: r.fwmark >>> 0,
    timeout: Math.floor(r.timeoutMs / 1000),
    // A record read from the data plane's ring carries its addresses as bytes already.
    caddr: r.bytes?.client ?? addressBytes(r.client.address, r.family),
    vaddr: r.bytes?.virtual ?? addressBytes(r.virtual.address, r.family),
    daddr: r.bytes?.destination ?? addressBytes(r.destination.address, r.family),
    ...localOf(r),
  };
}

function localOf(r: SyncRecord & { readonly bytes?: SyncRecordBytes }): Pick<SyncConnection, "local"> {
  if (r.template) return {};
  if (r.bytes?.local) return { local: r.bytes.local };
  if (r.local) return { local: { address: addressBytes(r.local.address, r.family), port: r.local.port } };
  return {};
}

function addressBytes(text: string, family: 4 | 6): Uint8Array {
  const { bytes } = encodeAddress(text, "address");
  return family === 4 ? bytes.subarray(0, 4) : bytes;
}

/** A received connection as a record to import; null for one we cannot represent. */
export function fromSyncConnection(c: SyncConnection): SyncRecord | null {
  const template = (c.flags & ConnFlag.Template) !== 0;
  if (!template && c.protocol === TCP && c.state >= TCP_STATE_COUNT) return null;
  const fwd = c.flags & ConnFlag.FwdMask;
  const method: ForwardMethod = fwd === ConnFlag.DirectRoute ? "route" : fwd === ConnFlag.Tunnel ? "tunnel" : c.local ? "fullnat" : "masq";
  const addr = (b: Uint8Array) => formatAddress(b, c.family);
  return {
    protocol: c.protocol,
    family: c.family,
    client: { address: addr(c.caddr), port: c.cport },
    virtual: { address: addr(c.vaddr), port: c.vport },
    destination: { address: addr(c.daddr), port: c.dport },
    state: template || c.protocol !== TCP ? 0 : c.state,
    template,
    inactive: (c.flags & ConnFlag.Inactive) !== 0,
    method,
    fwmark: c.fwmark >>> 0,
    // 0 (v0 messages): the backup's own timeout for the state (or 3 min for a template).
    timeoutMs: Math.min(c.timeout, 2_147_483) * 1000,
    ...(c.local && !template ? { local: { address: addr(c.local.address), port: c.local.port } } : {}),
  };
}
