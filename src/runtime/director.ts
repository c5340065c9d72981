// The director loop: receive a batch from an adapter into the packet slots, run the
// datapath over it, send forwards and replies out of the right adapter, count drops by
// reason, hand passes to the host, and tick the balancer's timers. One loop per Balancer
// (one data-plane instance); see docs/io.md for workers and flow symmetry.
//
// The loop never blocks the JavaScript thread: while every adapter is idle it waits in
// poll(2) on libuv's thread pool (koffi async call), so timers, child processes and the
// control plane keep running beside it.

import { DESC_SIZE, DROP_REASON_NAMES, LinkType, Offload, OFFLOAD_SIZE, VNET_F_NEEDS_CSUM, Verdict } from "../core/abi.js";
import { PacketFlags, type Balancer } from "../balancer/balancer.js";
import { encodeAddress } from "../core/actions.js";
import { pollReadable } from "../io/libc.js";
import type { PacketIO } from "../io/packet-io.js";
import type { PacketSlots } from "../core/packet-slots.js";

/** What to do with a packet the data plane passed to the host (not for a virtual service). */
export type PassDecision = "forward" | "drop" | "consumed";
export type PassHook = (packet: Uint8Array, from: PacketIO, slot: number) => PassDecision | void;

/** A next hop the datapath has no MAC for (Ethernet adapters). */
export interface NeighbourResolver {
  /** Start resolving `address` (the packet that needed it is dropped; the sender retransmits). */
  resolve(address: string, family: 4 | 6, from: PacketIO): void;
}

export interface DirectorRoute {
  /** "10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0" ... */
  readonly prefix: string;
  /** The adapter (or its index in `io`) that packets to this prefix leave by. */
  readonly io: PacketIO | number;
}

/**
 * Several directors (lvsd --workers N), each with its own Balancer and its own queue of the
 * same adapters: what one of them needs to pass packets of flows it does not own to their
 * owner, and to take the ones passed to it (src/runtime/workers/worker-mesh.ts).
 */
export interface FlowHandOff {
  /** How many workers, and which one this director is (0-based). */
  readonly workers: number;
  readonly self: number;
  /** Polled beside the adapters: readable when another worker handed packets over or a commit is due. */
  readonly wakeFd: number;
  /** Copies slot `slot` (received from adapter index `from`) to worker `owner`; false when its ring is full. */
  give(owner: number, slots: PacketSlots, slot: number, from: number): boolean;
  /** After a batch's give() calls: wakes the owners that sleep. */
  afterGiving(): void;
  /** Moves packets handed to this worker into slots [first, first + max); the adapter indexes go to `adapters`. */
  take(slots: PacketSlots, first: number, max: number, adapters: Uint8Array): number;
  /** Between two batches: applies what the other threads committed (configuration). */
  between(): void;
  /** Before sleeping in poll (true: returns false when there is work and the loop must not sleep) and after (false). */
  sleeping(on: boolean): boolean;
}

export interface DirectorOptions {
  readonly balancer: Balancer;
  /** The adapters; every one is received from. */
  readonly io: readonly PacketIO[];
  /**
   * Where forwarded packets leave, by destination address (longest prefix wins). A packet
   * no route matches leaves by the adapter it came in on: right for a TUN device (the
   * kernel routes what we write) and for a one-armed AF_PACKET director.
   */
  readonly routes?: readonly DirectorRoute[];
  /**
   * Largest batch per receive. Default: every slot of the balancer. When an adapter carries
   * offloads, a quarter of the slots (at most 64) stays free for the segments of
   * super-packets that must be cut, and the batch is at most the rest (see docs/io.md,
   * "Where a super-packet is cut").
   */
  readonly batch?: number;
  /** Balancer timers (expiry, rate estimator, collectors) every tickMs. Default 200. */
  readonly tickMs?: number;
  /** Longest idle wait in poll(2), which bounds how long stop() takes. Default 50. */
  readonly pollMs?: number;
  /**
   * Packets that are not for a service: "drop" (default), "forward" (send them unchanged as
   * a router would; never with a TUN device whose routes lead back into it), or a hook.
   */
  readonly pass?: "drop" | "forward" | PassHook;
  readonly neighbours?: NeighbourResolver;
  /** Milliseconds, monotonic. Default performance.now(). */
  readonly clock?: () => number;
  /** One of several workers: packets of flows another worker owns go to it (lvsd --workers). */
  readonly handOff?: FlowHandOff;
}

export interface DirectorStats {
  batches: number;
  received: number;
  forwarded: number;
  replied: number;
  passed: number;
  dropped: number;
  /** Packets an adapter did not take (full queue or refused). */
  sendFailures: number;
  /** Forwards dropped because the next hop's MAC was unknown. */
  neighbourMisses: number;
  /** Drops by reason name (DROP_REASON_NAMES, plus "needs-neighbour", "pass", "gso-no-room"). */
  drops: Record<string, number>;
  /** GSO super-packets cut into segments here (a tunnel, or an egress without offloads), and the segments. */
  gsoCut: number;
  gsoSegments: number;
  /** Partial checksums completed here (an egress without offloads). */
  checksumsCompleted: number;
  /** lvsd --workers: packets received here of flows another worker owns, passed to it. */
  handedOff: number;
  /** lvsd --workers: packets another worker received and passed here, their owner. */
  takenOver: number;
}

interface Route {
  family: 4 | 6;
  bytes: Uint8Array;
  length: number;
  target: number;
}

function parsePrefix(prefix: string): { family: 4 | 6; bytes: Uint8Array; length: number } {
  const [addr, lenText] = prefix.split("/");
  let parsed: { family: 4 | 6; bytes: Uint8Array };
  try {
    parsed = encodeAddress(addr, "route");
  } catch {
    throw new RangeError(`route ${prefix}: not an IPv4 or IPv6 prefix`);
  }
  const max = parsed.family === 4 ? 32 : 128;
  const length = lenText === undefined ? max : Number(lenText);
  if (!Number.isInteger(length) || length < 0 || length > max) throw new RangeError(`route ${prefix}: prefix length must be 0..${max}`);
  return { family: parsed.family, bytes: parsed.family === 4 ? parsed.bytes.subarray(0, 4) : parsed.bytes, length };
}

function matches(mem: Uint8Array, at: number, route: Route): boolean {
  let bits = route.length;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((mem[at + i] & mask) !== (route.bytes[i] & mask)) return false;
  }
  return true;
}

/** Offset of the IP header of a packet, or -1 when it is not IP. */
function l3Offset(mem: Uint8Array, start: number, length: number, link: number): number {
  if (link === LinkType.RawIp) return 0;
  let off = 12;
  while (off + 2 <= length) {
    const type = (mem[start + off] << 8) | mem[start + off + 1];
    if (type === 0x8100 || type === 0x88a8) {
      off += 4;
      continue;
    }
    return type === 0x0800 || type === 0x86dd ? off + 2 : -1;
  }
  return -1;
}

function formatIp(mem: Uint8Array, at: number, family: 4 | 6): string {
  if (family === 4) return `${mem[at]}.${mem[at + 1]}.${mem[at + 2]}.${mem[at + 3]}`;
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((mem[at + i] << 8) | mem[at + i + 1]).toString(16));
  return w.join(":");
}

export class Director {
  readonly balancer: Balancer;
  readonly io: readonly PacketIO[];
  readonly stats: DirectorStats = {
    batches: 0,
    received: 0,
    forwarded: 0,
    replied: 0,
    passed: 0,
    dropped: 0,
    sendFailures: 0,
    neighbourMisses: 0,
    drops: {},
    gsoCut: 0,
    gsoSegments: 0,
    checksumsCompleted: 0,
    handedOff: 0,
    takenOver: 0,
  };
  private readonly batch: number;
  private readonly tickMs: number;
  private readonly pollMs: number;
  private readonly clock: () => number;
  private readonly routes: Route[];
  private readonly pass: "drop" | "forward" | PassHook;
  private readonly neighbours: NeighbourResolver | undefined;
  private readonly outIndex: Int32Array[];
  private readonly outCount: Int32Array;
  /** Some adapter carries offload records: forwards are checked before they leave. */
  private readonly offloadAware: boolean;
  /** Slots [batch, usable) hold the segments of a super-packet being cut. */
  private readonly reserveFirst: number;
  /** Slots [0, usable) are the director's; the rest belong to adapters (PacketIO.slotLimit). */
  private readonly usable: number;
  private readonly handOff: FlowHandOff | undefined;
  /** Slots of this batch given to another worker (skipped when the verdicts are read). */
  private readonly handed: Uint8Array;
  /** For packets taken from other workers: the adapter index each came in on. */
  private readonly takenFrom: Uint8Array;
  private lastTick = -Infinity;
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(options: DirectorOptions) {
    if (options.io.length === 0) throw new RangeError("Director: give at least one PacketIO in `io`");
    this.balancer = options.balancer;
    this.io = [...options.io];
    const slots = this.balancer.slots.count;
    // Slots an adapter keeps for itself (AF_XDP's receive pool) are above every limit here.
    this.usable = Math.min(slots, ...this.io.map((io) => io.slotLimit ?? slots));
    if (this.usable < 1) throw new RangeError("Director: the adapters' slot limits leave no slot for the director");
    this.offloadAware = this.io.some((io) => io.offload === true);
    const asked = options.batch ?? this.usable;
    if (!Number.isInteger(asked) || asked < 1 || asked > slots) {
      throw new RangeError(`Director batch ${asked} must be an integer in 1..${slots} (the balancer's slots)`);
    }
    // With offloads, some slots stay free for the segments of super-packets that must be cut.
    const reserve = this.offloadAware && this.usable > 1 ? Math.min(64, Math.max(1, this.usable >> 2)) : 0;
    this.batch = Math.min(asked, this.usable - reserve);
    this.reserveFirst = this.batch;
    // Held IP fragments released after a batch must not land where segments are cut, nor in an adapter's slots.
    if (reserve > 0) this.balancer.limitFragmentRelease(this.reserveFirst);
    else if (this.usable < slots) this.balancer.limitFragmentRelease(this.usable);
    this.tickMs = options.tickMs ?? 200;
    this.pollMs = options.pollMs ?? 50;
    this.clock = options.clock ?? (() => performance.now());
    this.pass = options.pass ?? "drop";
    this.neighbours = options.neighbours;
    this.routes = (options.routes ?? [])
      .map((r) => {
        const target = typeof r.io === "number" ? r.io : this.io.indexOf(r.io);
        if (!Number.isInteger(target) || target < 0 || target >= this.io.length) {
          throw new RangeError(`route ${r.prefix}: its adapter is not one of the director's io`);
        }
        return { ...parsePrefix(r.prefix), target };
      })
      .sort((a, b) => b.length - a.length);
    // Sized by slots, not batch: held IP fragments released after a batch fill the rest.
    this.outIndex = this.io.map(() => new Int32Array(slots));
    this.outCount = new Int32Array(this.io.length);
    this.handOff = options.handOff && options.handOff.workers > 1 ? options.handOff : undefined;
    this.handed = new Uint8Array(this.handOff ? slots : 0);
    this.takenFrom = new Uint8Array(this.handOff ? slots : 0);
  }

  private drop(reason: string): void {
    this.stats.dropped++;
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
  }

  /** The adapter a packet in slot `slot` leaves by: a route by destination, else `from`. */
  private routeOf(mem: Uint8Array, start: number, length: number, link: number, from: number): number {
    if (this.routes.length === 0) return from;
    const l3 = l3Offset(mem, start, length, link);
    if (l3 < 0 || l3 + 20 > length) return from;
    const version = mem[start + l3] >> 4;
    const family = version === 4 ? 4 : version === 6 && l3 + 40 <= length ? 6 : 0;
    if (family === 0) return from;
    const at = start + l3 + (family === 4 ? 16 : 24);
    for (const r of this.routes) if (r.family === family && matches(mem, at, r)) return r.target;
    return from;
  }

  private nextHop(mem: Uint8Array, start: number, length: number, link: number, destination: number, flags: number): [string, 4 | 6] | null {
    if (!(flags & PacketFlags.TowardClient) && destination !== 0xffffffff) {
      try {
        const a = this.balancer.scheduler.destination(destination).address;
        return [a, a.includes(":") ? 6 : 4];
      } catch {
        // a destination removed meanwhile: fall back to the packet's destination
      }
    }
    const l3 = l3Offset(mem, start, length, link);
    if (l3 < 0) return null;
    const family = mem[start + l3] >> 4 === 6 ? 6 : 4;
    return [formatIp(mem, start + l3 + (family === 4 ? 16 : 24), family), family];
  }

  /**
   * Receives one batch from adapter `index` (without waiting), processes and sends it.
   * Returns the number of packets received.
   */
  step(index: number): number {
    const from = this.io[index];
    const b = this.balancer;
    const slots = b.slots;
    const n = from.receive(slots, 0, this.batch, 0);
    if (n === 0) return 0;
    const now = this.clock();
    if (this.standby) return this.standbyStep(from, n, now);
    this.stats.received += n;
    if (this.handOff && this.giveAway(n, index) === n) {
      // All given away: nothing to process here (and no mark may outlive this batch).
      this.handed.fill(0, 0, n);
      this.stats.batches++;
      this.maybeTick(now);
      return n;
    }
    this.processSlots(n, index, null, now);
    return n;
  }

  /**
   * Gives the packets of slots [0, n) that another worker owns to it (wasm packetOwner:
   * the client endpoint's hash), and marks them to be skipped here. Returns how many.
   */
  private giveAway(n: number, index: number): number {
    const h = this.handOff!;
    const slots = this.balancer.slots;
    const owner = (this.balancer.core.wasm as unknown as { packetOwner(slot: number, workers: number): number }).packetOwner;
    const mem = slots.bytes;
    const u32 = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
    let given = 0;
    for (let s = 0; s < n; s++) {
      const o = owner(s, h.workers);
      if (o < 0 || o === h.self) continue;
      if (h.give(o, slots, s, index)) this.stats.handedOff++;
      else this.drop("handoff-full");
      this.handed[s] = 1;
      u32[((slots.descBase + s * DESC_SIZE) >>> 2) + 1] = 0; // an empty packet: the datapath leaves it alone
      given++;
    }
    if (given > 0) h.afterGiving();
    return given;
  }

  /** Processes the packets other workers handed to this one (their owner). Returns how many. */
  private takeOver(): number {
    const h = this.handOff!;
    const n = h.take(this.balancer.slots, 0, this.batch, this.takenFrom);
    if (n === 0) return 0;
    const now = this.clock();
    this.stats.takenOver += n;
    if (this.standby) {
      for (let s = 0; s < n; s++) this.drop("standby");
      return n;
    }
    this.processSlots(n, this.takenFrom[0], this.takenFrom, now);
    return n;
  }

  /**
   * Runs slots [0, n) through the datapath and sends the verdicts. `index`: the adapter they
   * came in on (`adapter`), or with `fromOf`, per slot (packets taken over from other workers).
   */
  private processSlots(n: number, adapter: number, fromOf: Uint8Array | null, now: number): void {
    const b = this.balancer;
    const slots = b.slots;
    const filled = b.process(n, Math.floor(now)); // n, plus released IP fragments
    const st = this.stats;
    st.batches++;
    const handed = this.handOff ? this.handed : null;
    const mem = slots.bytes;
    const u32 = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
    const outIndex = this.outIndex;
    const outCount = this.outCount;
    const fallback = adapter;
    for (let s = 0; s < filled; s++) {
      if (handed !== null && s < n && handed[s] === 1) {
        handed[s] = 0; // given to its owner
        continue;
      }
      const index = fromOf !== null && s < n ? fromOf[s] : fallback;
      const from = this.io[index];
      const d = (slots.descBase + s * DESC_SIZE) >>> 2;
      const verdict = u32[d + 4];
      const start = slots.slotAddress(s) + u32[d];
      const length = u32[d + 1];
      const link = u32[d + 2];
      if (verdict === Verdict.Forward) {
        const flags = u32[d + 7];
        if (flags & PacketFlags.NeedsNeighbour) {
          st.neighbourMisses++;
          this.drop("needs-neighbour");
          const hop = this.nextHop(mem, start, length, link, u32[d + 6], flags);
          if (hop && this.neighbours) this.neighbours.resolve(hop[0], hop[1], from);
          continue;
        }
        const to = this.routeOf(mem, start, length, link, index);
        st.forwarded++;
        if (this.offloadAware && this.mustCut(mem, s, to)) {
          this.cut(s, index, to);
          continue;
        }
        outIndex[to][outCount[to]++] = s;
      } else if (verdict === Verdict.Reply) {
        outIndex[index][outCount[index]++] = s;
        st.replied++;
      } else if (verdict === Verdict.Pass) {
        st.passed++;
        let decision: PassDecision | void = "drop";
        if (this.pass === "forward") decision = "forward";
        else if (typeof this.pass === "function") decision = this.pass(mem.subarray(start, start + length), from, s);
        if (decision === "forward") {
          const to = this.routeOf(mem, start, length, link, index);
          outIndex[to][outCount[to]++] = s;
        } else if (decision !== "consumed") {
          this.drop("pass");
        }
      } else {
        this.drop(DROP_REASON_NAMES[u32[d + 5]] ?? `reason-${u32[d + 5]}`);
      }
    }
    this.flush();
    this.maybeTick(now);
  }

  /**
   * A backup director (a keepalived pair's standby): while true, no IP packet is processed
   * or forwarded (dropped as "standby"); the rest (ARP) still goes to the pass hook.
   * Connections synced from the master wait in the table, and forwarding resumes the
   * moment this turns false. Timers keep running, so synced entries expire on time.
   */
  standby = false;

  private standbyStep(from: PacketIO, n: number, now: number): number {
    const slots = this.balancer.slots;
    const mem = slots.bytes;
    const u32 = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
    this.stats.batches++;
    this.stats.received += n;
    for (let s = 0; s < n; s++) {
      const d = (slots.descBase + s * DESC_SIZE) >>> 2;
      const start = slots.slotAddress(s) + u32[d];
      const length = u32[d + 1];
      if (l3Offset(mem, start, length, u32[d + 2]) >= 0 || typeof this.pass !== "function") {
        this.drop("standby");
        continue;
      }
      this.stats.passed++;
      const decision = this.pass(mem.subarray(start, start + length), from, s);
      if (decision === "forward") from.send(slots, [s], 1);
      else if (decision !== "consumed") this.drop("pass");
    }
    this.maybeTick(now);
    return n;
  }

  /** Sends what is queued per adapter. */
  private flush(): void {
    const slots = this.balancer.slots;
    for (let a = 0; a < this.io.length; a++) {
      const count = this.outCount[a];
      if (count === 0) continue;
      const sent = this.io[a].send(slots, this.outIndex[a], count);
      this.stats.sendFailures += count - sent;
      this.outCount[a] = 0;
    }
  }

  /**
   * A forward must be completed or cut here: the datapath deferred its action (a tunnel),
   * or it carries a partial checksum or is a super-packet and its egress takes no offloads.
   */
  private mustCut(mem: Uint8Array, s: number, to: number): boolean {
    const rec = this.balancer.slots.offloadBase + s * OFFLOAD_SIZE;
    if (mem[rec + Offload.Deferred] !== 0) return true;
    if (mem[rec + Offload.GsoType] === 0 && (mem[rec + Offload.Flags] & VNET_F_NEEDS_CSUM) === 0) return false;
    return this.io[to].offload !== true;
  }

  /**
   * Completes a partial checksum in place, or cuts a super-packet into segments in the
   * reserved slots (after sending what is queued, so a flow's packets keep their order),
   * applies a deferred action to them and sends them.
   */
  private cut(s: number, from: number, to: number): void {
    const b = this.balancer;
    const wasm = b.core.wasm;
    const st = this.stats;
    const mem = b.slots.bytes;
    const rec = b.slots.offloadBase + s * OFFLOAD_SIZE;
    if (mem[rec + Offload.GsoType] === 0) {
      if (wasm.offloadCompleteSlot(s) !== 0) {
        this.drop("bad-offload");
        return;
      }
      st.checksumsCompleted++;
      this.outIndex[to][this.outCount[to]++] = s;
      return;
    }
    const deferred = mem[rec + Offload.Deferred] !== 0;
    const total = wasm.gsoSegments(s);
    if (total === 0) {
      this.drop("bad-offload");
      return;
    }
    const room = this.usable - this.reserveFirst;
    if (room <= 0) {
      this.drop("gso-no-room");
      return;
    }
    this.flush();
    st.gsoCut++;
    st.gsoSegments += total;
    const u32 = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >>> 2);
    for (let done = 0; done < total; ) {
      const k = wasm.gsoSegmentInto(s, done, this.reserveFirst, room);
      if (k === 0) {
        this.drop("bad-offload");
        return;
      }
      done += k;
      if (deferred) wasm.applyActionBatch(this.reserveFirst, k);
      for (let o = this.reserveFirst; o < this.reserveFirst + k; o++) {
        const d = (b.slots.descBase + o * DESC_SIZE) >>> 2;
        const verdict = u32[d + 4];
        if (verdict === Verdict.Forward) {
          const target = deferred ? this.routeOf(mem, b.slots.slotAddress(o) + u32[d], u32[d + 1], u32[d + 2], from) : to;
          this.outIndex[target][this.outCount[target]++] = o;
        } else if (verdict === Verdict.Reply) {
          this.outIndex[from][this.outCount[from]++] = o;
          st.replied++;
        } else {
          this.drop(DROP_REASON_NAMES[u32[d + 5]] ?? `reason-${u32[d + 5]}`);
        }
      }
      this.flush();
    }
  }

  private maybeTick(now: number): void {
    if (now - this.lastTick < this.tickMs) return;
    this.lastTick = now;
    this.balancer.tick(Math.floor(now));
  }

  /** One pass over every adapter; returns the packets received. */
  runOnce(): number {
    let total = 0;
    if (this.handOff) {
      this.handOff.between();
      total += this.takeOver();
    }
    for (let i = 0; i < this.io.length; i++) total += this.step(i);
    return total;
  }

  /** Starts the loop; resolves when stop() has been called and the loop has ended. */
  start(): Promise<void> {
    if (this.running) return this.running;
    this.stopping = false;
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Stops the loop (within pollMs) and waits for it. Adapters stay open: close them yourself. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    const pollable = this.io.map((io, i) => [io.fd, i] as const).filter(([fd]) => fd >= 0);
    const hasUnpollable = pollable.length < this.io.length;
    const fds = pollable.map(([fd]) => fd);
    if (this.handOff) fds.push(this.handOff.wakeFd);
    while (!this.stopping) {
      const got = this.runOnce();
      this.maybeTick(this.clock());
      if (got > 0) {
        // Busy: let the event loop breathe between batches, then go on.
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      if (hasUnpollable || fds.length === 0) {
        await new Promise<void>((r) => setTimeout(r, Math.min(2, this.pollMs)));
      } else if (!this.handOff) {
        await pollReadable(fds, Math.min(this.pollMs, this.tickMs));
      } else if (this.handOff.sleeping(true)) {
        await pollReadable(fds, Math.min(this.pollMs, this.tickMs));
        this.handOff.sleeping(false);
      }
    }
  }
}
