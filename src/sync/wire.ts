// The IPVS connection sync protocol on the wire (net/netfilter/ipvs/ip_vs_sync.c, Linux
// 6.x): version 1 messages, which we send, and versions 0 and 1, which we receive, with the
// kernel's checks. Every multi-byte field is big-endian. Layouts in docs/sync.md.
//
//   v1 message: u8 reserved (0), u8 syncid, u16 size, u8 nr_conns, s8 version (1), u16 spare (0)
//   v1 conn:    u8 type (bit 0: IPv6), u8 protocol, u16 version << 12 | size, u32 flags,
//               u16 state, u16 cport, u16 vport, u16 dport, u32 fwmark, u32 timeout (s),
//               caddr, vaddr, daddr (4 or 16 bytes each), then options <u8 type, u8 len, data>,
//               each conn padded to 4 bytes from the next. Ours, after the kernel's: the
//               full-NAT local address (type OPT_LOCAL_ADDRESS: laddr 4 or 16 bytes, u16 lport)
//   v0 message: u8 nr_conns, u8 syncid, u16 size
//   v0 conn:    u8 reserved, u8 protocol, u16 cport, vport, dport, u32 caddr, vaddr, daddr,
//               u16 flags, u16 state, then 24 bytes of sequence data when flags say so

export const SYNC_GROUP = "224.0.0.81";
export const SYNC_PORT = 8848;
export const SYNC_PROTO_VERSION = 1;
export const MESSAGE_HEADER_BYTES = 8;
export const MESSAGE_V0_HEADER_BYTES = 4;
export const CONN_V4_BYTES = 36;
export const CONN_V6_BYTES = 72;
export const CONN_V0_BYTES = 24;
/** struct ip_vs_sync_conn_options: in_seq and out_seq, three u32 each. */
export const SEQ_OPTION_BYTES = 24;

/** IP_VS_CONN_F_* (include/uapi/linux/ip_vs.h). */
export const ConnFlag = {
  Masq: 0x0000,
  LocalNode: 0x0001,
  Tunnel: 0x0002,
  DirectRoute: 0x0003,
  FwdMask: 0x0007,
  Sync: 0x0020,
  Hashed: 0x0040,
  NoOutput: 0x0080,
  Inactive: 0x0100,
  OutSeq: 0x0200,
  InSeq: 0x0400,
  SeqMask: 0x0600,
  NoCport: 0x0800,
  Template: 0x1000,
  OnePacket: 0x2000,
} as const;
/** The flags a backup accepts (IP_VS_CONN_F_BACKUP_MASK). */
export const BACKUP_FLAG_MASK = ConnFlag.FwdMask | ConnFlag.NoOutput | ConnFlag.Inactive | ConnFlag.SeqMask | ConnFlag.NoCport | ConnFlag.Template;

const OPT_SEQ_DATA = 1;
const OPT_PE_DATA = 2;
const OPT_PE_NAME = 3;
/** An option type with this bit may be skipped when unknown (IPVS_OPT_F_PARAM). */
const OPT_F_PARAM = 1 << 6;
/**
 * lvs-wasm's own option: a full-NAT connection's local address and port. IPVS_OPT_F_PARAM
 * is set, so a kernel backup skips it (ip_vs_proc_sync_conn, Linux 6.x, `default:` case) and
 * creates the connection without it; 0x2c ('l' without the flag bit) is no kernel option.
 */
export const OPT_LOCAL_ADDRESS = OPT_F_PARAM | 0x2c;
const PE_DATA_MAX = 255;
const PE_NAME_MAX = 16;

/** Number of states the kernel knows per protocol (a state at or past it is refused). */
const STATE_COUNT: Record<number, number> = { 6: 11, 17: 3, 132: 13, 50: 1, 51: 1 };

export interface SeqData {
  readonly initSeq: number;
  readonly delta: number;
  readonly previousDelta: number;
}

/** One connection or template of a sync message, in the kernel's terms. */
export interface SyncConnection {
  readonly family: 4 | 6;
  readonly protocol: number;
  /** IP_VS_CONN_F_* as sent. */
  readonly flags: number;
  /** The kernel's state number for the protocol (TCP 1 = ESTABLISHED; UDP 0 = NORMAL). */
  readonly state: number;
  readonly cport: number;
  readonly vport: number;
  readonly dport: number;
  /** v1 only; 0 from v0. */
  readonly fwmark: number;
  /** Seconds; 0 from v0 (the backup then uses its own timeout for the state). */
  readonly timeout: number;
  /** Addresses, 4 or 16 bytes. */
  readonly caddr: Uint8Array;
  readonly vaddr: Uint8Array;
  readonly daddr: Uint8Array;
  readonly seq?: { readonly in: SeqData; readonly out: SeqData };
  readonly peData?: Uint8Array;
  readonly peName?: string;
  /** Full NAT: the local address (4 or 16 bytes, the connection's family) and port. */
  readonly local?: { readonly address: Uint8Array; readonly port: number };
}

export interface DecodedMessage {
  readonly version: 0 | 1;
  readonly syncId: number;
  /** The connections the kernel would process, in order. */
  readonly connections: readonly SyncConnection[];
  /** Connections skipped one by one (unknown protocol or state, unknown mandatory option). */
  readonly skipped: number;
  /**
   * Why the rest of the message was dropped (the kernel's "Dropping buffer"), or null.
   * Connections before the fault are kept, as the kernel has applied them by then.
   */
  readonly fault: string | null;
}

/** Why a whole message was refused before any connection was read. */
export type MessageRejection = "short" | "bad-size" | "wrong-syncid";

export class SyncMessageRejected extends Error {
  constructor(
    readonly reason: MessageRejection,
    message: string,
  ) {
    super(message);
  }
}

// ------------------------------------------------------------------------- encoding

/** Bytes a connection takes in a v1 message, options included, padding excluded. */
export function connectionBytes(c: SyncConnection): number {
  let len = c.family === 6 ? CONN_V6_BYTES : CONN_V4_BYTES;
  if (c.flags & ConnFlag.SeqMask && c.seq) len += SEQ_OPTION_BYTES + 2;
  if (c.peData && c.peData.length > 0) {
    len += c.peData.length + 2;
    if (c.peName) len += Buffer.byteLength(c.peName) + 2;
  }
  if (c.local) len += 2 + c.local.address.length + 2;
  return len;
}

/**
 * Builds v1 messages as the kernel's ip_vs_sync_conn does: connections appended to the
 * current message, each aligned to 4 bytes, until the next would pass `maxLength` (the
 * sync_maxlen: payload bytes of one datagram); then a new message starts.
 */
export class SyncMessageBuilder {
  private buf: Buffer;
  private used = MESSAGE_HEADER_BYTES;
  private count = 0;

  constructor(
    readonly syncId: number,
    readonly maxLength: number,
  ) {
    if (!Number.isInteger(syncId) || syncId < 0 || syncId > 255) throw new RangeError(`syncid ${syncId}: not in 0..255`);
    if (!Number.isInteger(maxLength) || maxLength < MESSAGE_HEADER_BYTES + CONN_V6_BYTES || maxLength > 65535) {
      throw new RangeError(`sync maxlen ${maxLength}: not in ${MESSAGE_HEADER_BYTES + CONN_V6_BYTES}..65535`);
    }
    this.buf = Buffer.alloc(maxLength);
  }

  get connections(): number {
    return this.count;
  }
  get empty(): boolean {
    return this.count === 0;
  }

  /** Whether `c` fits in the current message (nr_conns is one byte, so 255 at most). */
  fits(c: SyncConnection): boolean {
    const pad = (4 - this.used) & 3;
    return this.count < 255 && this.used + pad + connectionBytes(c) <= this.maxLength;
  }

  /** Appends `c`; false (nothing written) when it does not fit: take() the message first. */
  add(c: SyncConnection): boolean {
    if (!this.fits(c)) return false;
    const pad = (4 - this.used) & 3;
    this.buf.fill(0, this.used, this.used + pad);
    this.used += pad;
    this.used += writeConnection(this.buf, this.used, c);
    this.count++;
    return true;
  }

  /** The message built so far (null when empty); the builder starts a new one. */
  take(): Buffer | null {
    if (this.count === 0) return null;
    const out = Buffer.from(this.buf.subarray(0, this.used));
    out.writeUInt8(0, 0);
    out.writeUInt8(this.syncId, 1);
    out.writeUInt16BE(this.used, 2);
    out.writeUInt8(this.count, 4);
    out.writeInt8(SYNC_PROTO_VERSION, 5);
    out.writeUInt16BE(0, 6);
    this.used = MESSAGE_HEADER_BYTES;
    this.count = 0;
    return out;
  }
}

function writeSeq(buf: Buffer, at: number, s: SeqData): void {
  buf.writeUInt32BE(s.initSeq >>> 0, at);
  buf.writeUInt32BE(s.delta >>> 0, at + 4);
  buf.writeUInt32BE(s.previousDelta >>> 0, at + 8);
}

function writeConnection(buf: Buffer, at: number, c: SyncConnection): number {
  const len = connectionBytes(c);
  const alen = c.family === 6 ? 16 : 4;
  if (c.caddr.length !== alen || c.vaddr.length !== alen || c.daddr.length !== alen) {
    throw new RangeError(`sync connection: addresses must be ${alen} bytes for IPv${c.family}`);
  }
  if (c.local && (c.local.address.length !== alen || !Number.isInteger(c.local.port) || c.local.port < 1 || c.local.port > 65535)) {
    throw new RangeError(`sync connection: a local address of ${alen} bytes and a port in 1..65535 for IPv${c.family}`);
  }
  buf.writeUInt8(c.family === 6 ? 1 : 0, at);
  buf.writeUInt8(c.protocol, at + 1);
  buf.writeUInt16BE(len & 0x0fff, at + 2); // version 0 in the top 4 bits
  buf.writeUInt32BE((c.flags & ~ConnFlag.Hashed) >>> 0, at + 4);
  buf.writeUInt16BE(c.state, at + 8);
  buf.writeUInt16BE(c.cport, at + 10);
  buf.writeUInt16BE(c.vport, at + 12);
  buf.writeUInt16BE(c.dport, at + 14);
  buf.writeUInt32BE(c.fwmark >>> 0, at + 16);
  buf.writeUInt32BE(c.timeout >>> 0, at + 20);
  buf.set(c.caddr, at + 24);
  buf.set(c.vaddr, at + 24 + alen);
  buf.set(c.daddr, at + 24 + 2 * alen);
  let p = at + 24 + 3 * alen;
  if (c.flags & ConnFlag.SeqMask && c.seq) {
    buf.writeUInt8(OPT_SEQ_DATA, p);
    buf.writeUInt8(SEQ_OPTION_BYTES, p + 1);
    writeSeq(buf, p + 2, c.seq.in);
    writeSeq(buf, p + 14, c.seq.out);
    p += 2 + SEQ_OPTION_BYTES;
  }
  if (c.peData && c.peData.length > 0) {
    buf.writeUInt8(OPT_PE_DATA, p);
    buf.writeUInt8(c.peData.length, p + 1);
    buf.set(c.peData, p + 2);
    p += 2 + c.peData.length;
    if (c.peName) {
      const name = Buffer.from(c.peName);
      buf.writeUInt8(OPT_PE_NAME, p);
      buf.writeUInt8(name.length, p + 1);
      name.copy(buf, p + 2);
      p += 2 + name.length;
    }
  }
  if (c.local) {
    buf.writeUInt8(OPT_LOCAL_ADDRESS, p);
    buf.writeUInt8(alen + 2, p + 1);
    buf.set(c.local.address, p + 2);
    buf.writeUInt16BE(c.local.port, p + 2 + alen);
    p += 4 + alen;
  }
  return len;
}

/** Encodes connections into as few v1 messages of at most `maxLength` bytes as the kernel would. */
export function encodeMessages(connections: readonly SyncConnection[], syncId: number, maxLength: number): Buffer[] {
  const b = new SyncMessageBuilder(syncId, maxLength);
  const out: Buffer[] = [];
  for (const c of connections) {
    if (!b.add(c)) {
      const m = b.take();
      if (m) out.push(m);
      b.add(c);
    }
  }
  const last = b.take();
  if (last) out.push(last);
  return out;
}

// ------------------------------------------------------------------------- decoding

/**
 * Decodes one received datagram as the kernel's ip_vs_process_message does. `syncId` 0
 * accepts every sync id. Throws SyncMessageRejected when the whole message is refused;
 * otherwise returns the connections to apply, and the fault that cut the message short.
 * Never reads outside `buf`.
 */
export function decodeMessage(buf: Uint8Array, syncId = 0): DecodedMessage {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < MESSAGE_V0_HEADER_BYTES) throw new SyncMessageRejected("short", `message of ${b.length} bytes: shorter than a header`);
  const size = b.readUInt16BE(2);
  if (size !== b.length) throw new SyncMessageRejected("bad-size", `message size field ${size} but ${b.length} bytes received`);
  const id = b.readUInt8(1);
  if (syncId !== 0 && id !== syncId) throw new SyncMessageRejected("wrong-syncid", `syncid ${id}, expected ${syncId}`);
  if (b.length >= MESSAGE_HEADER_BYTES && b.readInt8(5) === SYNC_PROTO_VERSION && b.readUInt8(0) === 0 && b.readUInt16BE(6) === 0) {
    return decodeV1(b, id);
  }
  return decodeV0(b, id);
}

function validState(protocol: number, flags: number, state: number): boolean {
  if (flags & ConnFlag.Template) return true; // the kernel only logs an odd template state
  const n = STATE_COUNT[protocol];
  return n !== undefined && state < n;
}

function decodeV1(b: Buffer, syncId: number): DecodedMessage {
  const connections: SyncConnection[] = [];
  let skipped = 0;
  const count = b.readUInt8(4);
  let next = MESSAGE_HEADER_BYTES;
  const done = (fault: string | null): DecodedMessage => ({ version: 1, syncId, connections, skipped, fault });
  for (let i = 0; i < count; i++) {
    const p = next;
    if (p + CONN_V4_BYTES > b.length) return done(`connection ${i}: truncated (needs ${CONN_V4_BYTES} bytes at ${p}, message has ${b.length})`);
    const verSize = b.readUInt16BE(p + 2);
    const size = verSize & 0x0fff;
    const end = p + size;
    if (end > b.length) return done(`connection ${i}: size ${size} runs past the message`);
    if (verSize >> 12 !== 0) return done(`connection ${i}: unknown version ${verSize >> 12}`);
    const r = decodeConnV1(b, p, end);
    if (typeof r === "string") return done(`connection ${i}: ${r}`);
    if (r === null) skipped++;
    else connections.push(r);
    next = p + ((size + 3) & ~3);
  }
  return done(null);
}

/** One v1 connection in [p, end): the connection, null to skip it, or a fault dropping the rest. */
function decodeConnV1(b: Buffer, p: number, end: number): SyncConnection | null | string {
  const type = b.readUInt8(p);
  let family: 4 | 6;
  if (type & 1) family = 6;
  else if (type === 0) family = 4;
  else return `unknown type ${type}`;
  const alen = family === 6 ? 16 : 4;
  let q = p + 24 + 3 * alen;
  if (q > end) return `size ${end - p} shorter than an IPv${family} connection`;
  if (q > b.length) return "truncated";
  let seq: SyncConnection["seq"];
  let peData: Uint8Array | undefined;
  let peName: string | undefined;
  let local: SyncConnection["local"];
  let badLocal = false;
  let unknownMandatory = false;
  while (q < end) {
    if (q + 2 > end) return "option header cut short";
    const ptype = b.readUInt8(q);
    const plen = b.readUInt8(q + 1);
    q += 2;
    if (plen === 0 || q + plen > end) return `option ${ptype}: length ${plen} runs past the connection`;
    switch (ptype & ~OPT_F_PARAM) {
      case OPT_SEQ_DATA:
        if (plen !== SEQ_OPTION_BYTES || seq) return "bad or repeated sequence option";
        seq = {
          in: { initSeq: b.readUInt32BE(q), delta: b.readUInt32BE(q + 4), previousDelta: b.readUInt32BE(q + 8) },
          out: { initSeq: b.readUInt32BE(q + 12), delta: b.readUInt32BE(q + 16), previousDelta: b.readUInt32BE(q + 20) },
        };
        break;
      case OPT_PE_DATA:
        if (plen > PE_DATA_MAX || peData) return "bad or repeated persistence engine data";
        peData = Uint8Array.from(b.subarray(q, q + plen));
        break;
      case OPT_PE_NAME:
        if (plen > PE_NAME_MAX || peName !== undefined) return "bad or repeated persistence engine name";
        peName = b.toString("latin1", q, q + plen);
        break;
      default:
        if (ptype === OPT_LOCAL_ADDRESS) {
          // Ours: a wrong length, port 0 or a repeat skips the connection (counted), as a
          // full-NAT flow cannot be made from it; the rest of the message is still read.
          const port = plen === alen + 2 ? b.readUInt16BE(q + alen) : 0;
          if (local || port === 0) badLocal = true;
          else local = { address: Uint8Array.from(b.subarray(q, q + alen)), port };
        } else if (!(ptype & OPT_F_PARAM)) unknownMandatory = true;
    }
    if (unknownMandatory || badLocal) return null;
    q += plen;
  }
  const protocol = b.readUInt8(p + 1);
  const flags = (b.readUInt32BE(p + 4) & BACKUP_FLAG_MASK) | ConnFlag.Sync;
  const state = b.readUInt16BE(p + 8);
  if (!validState(protocol, flags, state)) return null;
  if (peData && peName === undefined) return null; // the kernel: invalid PE parameters
  const a = p + 24;
  return {
    family,
    protocol,
    flags,
    state,
    cport: b.readUInt16BE(p + 10),
    vport: b.readUInt16BE(p + 12),
    dport: b.readUInt16BE(p + 14),
    fwmark: b.readUInt32BE(p + 16),
    timeout: b.readUInt32BE(p + 20),
    caddr: Uint8Array.from(b.subarray(a, a + alen)),
    vaddr: Uint8Array.from(b.subarray(a + alen, a + 2 * alen)),
    daddr: Uint8Array.from(b.subarray(a + 2 * alen, a + 3 * alen)),
    ...(seq ? { seq } : {}),
    ...(peData ? { peData } : {}),
    ...(peName !== undefined ? { peName } : {}),
    ...(local ? { local } : {}),
  };
}

function decodeV0(b: Buffer, syncId: number): DecodedMessage {
  const connections: SyncConnection[] = [];
  let skipped = 0;
  const count = b.readUInt8(0);
  let p = MESSAGE_V0_HEADER_BYTES;
  const done = (fault: string | null): DecodedMessage => ({ version: 0, syncId, connections, skipped, fault });
  for (let i = 0; i < count; i++) {
    if (p + CONN_V0_BYTES > b.length) return done(`connection ${i}: truncated (v0)`);
    const s = p;
    const flags = ((b.readUInt16BE(s + 20) | ConnFlag.Sync) & ~ConnFlag.Hashed) >>> 0;
    let seq: SyncConnection["seq"];
    if (flags & ConnFlag.SeqMask) {
      p += CONN_V0_BYTES + SEQ_OPTION_BYTES;
      if (p > b.length) return done(`connection ${i}: sequence options truncated (v0)`);
      const o = s + CONN_V0_BYTES;
      // v0 copies struct ip_vs_seq raw; its u32s are in the sender's byte order (x86: little).
      seq = {
        in: { initSeq: b.readUInt32LE(o), delta: b.readUInt32LE(o + 4), previousDelta: b.readUInt32LE(o + 8) },
        out: { initSeq: b.readUInt32LE(o + 12), delta: b.readUInt32LE(o + 16), previousDelta: b.readUInt32LE(o + 20) },
      };
    } else {
      p += CONN_V0_BYTES;
    }
    const protocol = b.readUInt8(s + 1);
    const state = b.readUInt16BE(s + 22);
    if (!validState(protocol, flags, state)) {
      skipped++;
      continue;
    }
    connections.push({
      family: 4,
      protocol,
      flags,
      state,
      cport: b.readUInt16BE(s + 2),
      vport: b.readUInt16BE(s + 4),
      dport: b.readUInt16BE(s + 6),
      fwmark: 0,
      timeout: 0,
      caddr: Uint8Array.from(b.subarray(s + 8, s + 12)),
      vaddr: Uint8Array.from(b.subarray(s + 12, s + 16)),
      daddr: Uint8Array.from(b.subarray(s + 16, s + 20)),
      ...(seq ? { seq } : {}),
    });
  }
  return done(null);
}
