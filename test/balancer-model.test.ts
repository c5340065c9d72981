// Model-based test: random sequences of configuration changes, packets and clock steps
// drive the Balancer and a plain TypeScript model of IPVS side by side; their observable
// state (verdicts, chosen servers, connection states and expiry, counters) never differs.
// The model is written from the kernel's rules (Linux 6.x ip_vs_proto_tcp.c: tcp_states and
// tcp_state_active_table; wlc over the newest-first destination list), not from our
// AssemblyScript.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, LinkType, Verdict, type ServiceKey } from "../src/index.js";
import { buildPacket, referencePick } from "../src/testing/index.js";

const VIP = "10.10.0.100";
const CLIENT = "10.0.0.1";
const POOL = ["192.168.10.1", "192.168.10.2", "192.168.10.3", "192.168.10.4"];
const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: VIP, port: 80 };

// ---- the model ----------------------------------------------------------------------

type S = "NONE" | "ESTABLISHED" | "SYN_SENT" | "SYN_RECV" | "FIN_WAIT" | "TIME_WAIT" | "CLOSE" | "CLOSE_WAIT" | "LAST_ACK" | "LISTEN" | "SYNACK";
const ORDER: S[] = ["NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK"];
const row = (s: string) =>
  s.split(" ").map(
    (x) =>
      ({
        NO: "NONE",
        ES: "ESTABLISHED",
        SS: "SYN_SENT",
        SR: "SYN_RECV",
        FW: "FIN_WAIT",
        TW: "TIME_WAIT",
        CL: "CLOSE",
        CW: "CLOSE_WAIT",
        LA: "LAST_ACK",
        LI: "LISTEN",
        SA: "SYNACK",
      })[x] as S,
  );
// Linux 6.x net/netfilter/ipvs/ip_vs_proto_tcp.c, tcp_states[], columns sNO .. sSA
const TABLE = {
  input: {
    syn: row("SR ES ES SR SR SR SR SR SR SR SR"),
    fin: row("CL CW SS TW TW TW CL CW LA LI TW"),
    ack: row("ES ES SS ES FW TW CL CW CL LI ES"),
    rst: row("CL CL CL SR CL CL CL CL LA LI SR"),
  },
  output: {
    syn: row("SS ES SS SR SS SS SS SS SS LI SR"),
    fin: row("TW FW SS TW FW TW CL TW LA LI TW"),
    ack: row("ES ES SS ES FW TW CL CW LA ES ES"),
    rst: row("CL CL SS CL CL TW CL CL CL CL CL"),
  },
};
const TIMEOUT: Record<S, number> = {
  NONE: 2,
  ESTABLISHED: 900,
  SYN_SENT: 120,
  SYN_RECV: 60,
  FIN_WAIT: 120,
  TIME_WAIT: 120,
  CLOSE: 10,
  CLOSE_WAIT: 60,
  LAST_ACK: 30,
  LISTEN: 120,
  SYNACK: 120,
};

// tcp_state_active_table: pre-established states count as active too.
const ACTIVE = new Set<S>(["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);

function next(dir: "input" | "output", flags: string, state: S): S {
  const key = flags.includes("R") ? "rst" : flags.includes("S") ? "syn" : flags.includes("F") ? "fin" : flags.includes("A") ? "ack" : null;
  if (!key) return "CLOSE";
  return TABLE[dir][key][ORDER.indexOf(state)];
}

interface MDest {
  address: string;
  weight: number;
  active: number;
  inactive: number;
  listed: boolean;
}
interface MConn {
  dest: MDest;
  state: S;
  expires: number;
}

class Model {
  now = 0;
  dests: MDest[] = [];
  conns = new Map<number, MConn>();
  stats = { conns: 0, inpkts: 0, outpkts: 0 };

  private setState(c: MConn, s: S) {
    const wasActive = ACTIVE.has(c.state);
    const isActive = ACTIVE.has(s);
    if (wasActive && !isActive) {
      c.dest.active--;
      c.dest.inactive++;
    }
    if (!wasActive && isActive) {
      c.dest.active++;
      c.dest.inactive--;
    }
    c.state = s;
    c.expires = this.now + TIMEOUT[s] * 1000;
  }
  private drop(port: number) {
    const c = this.conns.get(port)!;
    if (ACTIVE.has(c.state)) c.dest.active--;
    else c.dest.inactive--;
    this.conns.delete(port);
  }
  private expired(c: MConn) {
    return this.now >= c.expires;
  }
  client(port: number, flags: string): { verdict: number; dest: string | null } {
    let c = this.conns.get(port);
    if (c && this.expired(c)) {
      this.drop(port);
      c = undefined;
    }
    if (c && flags.includes("S") && c.state === "TIME_WAIT") {
      this.drop(port);
      c = undefined;
    }
    if (c) {
      this.setState(c, next("input", flags, c.state));
      this.stats.inpkts++;
      return { verdict: Verdict.Forward, dest: c.dest.address };
    }
    if (!flags.includes("S") || flags.includes("R")) return { verdict: Verdict.Pass, dest: null };
    const listed = this.dests.filter((d) => d.listed);
    const i = referencePick(
      "wlc",
      listed.map((d) => ({ address: d.address, weight: d.weight, activeConnections: d.active, inactiveConnections: d.inactive })),
    );
    if (i < 0) return { verdict: Verdict.Reply, dest: null };
    const dest = listed[i];
    const conn: MConn = { dest, state: "NONE", expires: 0 };
    dest.inactive++;
    this.conns.set(port, conn);
    this.stats.conns++;
    this.setState(conn, next("input", flags, "NONE"));
    this.stats.inpkts++;
    return { verdict: Verdict.Forward, dest: dest.address };
  }
  server(port: number, from: string, flags: string): { verdict: number; dest: string | null } {
    const c = this.conns.get(port);
    if (!c || c.dest.address !== from) return { verdict: Verdict.Pass, dest: null };
    if (this.expired(c)) {
      this.drop(port);
      return { verdict: Verdict.Pass, dest: null };
    }
    this.setState(c, next("output", flags, c.state));
    this.stats.outpkts++;
    return { verdict: Verdict.Forward, dest: c.dest.address };
  }
  step(ms: number) {
    this.now += ms;
    for (const [port, c] of [...this.conns]) if (this.expired(c)) this.drop(port);
  }
}

// ---- the system under test, and the comparison ---------------------------------------

interface Real {
  b: Balancer;
  idOf: Map<number, string>;
}

function observe(m: Model, r: Real) {
  const conns = r.b
    .connections(m.now)
    .map((c) => [c.client.port, c.state, c.destination.address, c.expires])
    .sort((a, b) => (a[0] as number) - (b[0] as number));
  const model = [...m.conns]
    .map(([p, c]) => [p, c.state, c.dest.address, Math.ceil((c.expires - m.now) / 1000)])
    .sort((a, b) => (a[0] as number) - (b[0] as number));
  assert.deepEqual(conns, model, "connections (port, state, server, seconds left)");
  const listing = r.b.listing().services[0];
  assert.deepEqual(
    listing.destinations.map((d) => [d.config.address, d.config.weight, d.activeConns, d.inactConns]),
    m.dests.filter((d) => d.listed).map((d) => [d.address, d.weight, d.active, d.inactive]),
    "destinations (address, weight, ActiveConn, InActConn)",
  );
  assert.deepEqual(
    [listing.stats!.conns, listing.stats!.inpkts, listing.stats!.outpkts],
    [BigInt(m.stats.conns), BigInt(m.stats.inpkts), BigInt(m.stats.outpkts)],
    "service counters",
  );
}

type Cmd = fc.Command<Model, Real>;

class AddDest implements Cmd {
  constructor(
    readonly address: string,
    readonly weight: number,
  ) {}
  check(m: Readonly<Model>) {
    return !m.dests.some((d) => d.listed && d.address === this.address);
  }
  run(m: Model, r: Real) {
    r.b.addDestination(KEY, { address: this.address, port: 80, method: "masq", weight: this.weight, upperThreshold: 0, lowerThreshold: 0 });
    m.dests.unshift({ address: this.address, weight: this.weight, active: 0, inactive: 0, listed: true }); // newest first
    observe(m, r);
  }
  toString() {
    return `add ${this.address} w${this.weight}`;
  }
}
class RemoveDest implements Cmd {
  constructor(readonly address: string) {}
  check(m: Readonly<Model>) {
    return m.dests.some((d) => d.listed && d.address === this.address);
  }
  run(m: Model, r: Real) {
    r.b.deleteDestination(KEY, { address: this.address, port: 80 });
    const d = m.dests.find((x) => x.listed && x.address === this.address)!;
    d.listed = false; // its connections live on (the kernel's trash)
    observe(m, r);
  }
  toString() {
    return `remove ${this.address}`;
  }
}
class Reweight implements Cmd {
  constructor(
    readonly address: string,
    readonly weight: number,
  ) {}
  check(m: Readonly<Model>) {
    return m.dests.some((d) => d.listed && d.address === this.address);
  }
  run(m: Model, r: Real) {
    r.b.editDestination(KEY, { address: this.address, port: 80, method: "masq", weight: this.weight, upperThreshold: 0, lowerThreshold: 0 });
    m.dests.find((x) => x.listed && x.address === this.address)!.weight = this.weight;
    observe(m, r);
  }
  toString() {
    return `weight ${this.address} ${this.weight}`;
  }
}
class ClientPacket implements Cmd {
  constructor(
    readonly port: number,
    readonly flags: string,
  ) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    const pkt = buildPacket({ protocol: "tcp", src: CLIENT, dst: VIP, sport: this.port, dport: 80, flags: this.flags });
    const got = r.b.processPacket(pkt, LinkType.RawIp, m.now);
    const want = m.client(this.port, this.flags);
    assert.equal(got.verdict, want.verdict, `verdict of client ${this.flags} from port ${this.port}`);
    if (want.dest) assert.equal([...got.packet.subarray(16, 20)].join("."), want.dest, "chosen real server");
    observe(m, r);
  }
  toString() {
    return `client ${this.port} ${this.flags}`;
  }
}
class ServerPacket implements Cmd {
  /** from: a pool address, or null for "the server this client's connection went to". */
  constructor(
    readonly port: number,
    readonly from: string | null,
    readonly flags: string,
  ) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    const from = this.from ?? m.conns.get(this.port)?.dest.address ?? POOL[0];
    const pkt = buildPacket({ protocol: "tcp", src: from, dst: CLIENT, sport: 80, dport: this.port, flags: this.flags });
    const got = r.b.processPacket(pkt, LinkType.RawIp, m.now);
    const want = m.server(this.port, from, this.flags);
    assert.equal(got.verdict, want.verdict, `verdict of server ${this.flags} to port ${this.port}`);
    if (want.dest) assert.equal([...got.packet.subarray(12, 16)].join("."), VIP, "the reply leaves from the VIP");
    observe(m, r);
  }
  toString() {
    return `server ${this.from ?? "(its own)"} -> ${this.port} ${this.flags}`;
  }
}
class Step implements Cmd {
  constructor(readonly ms: number) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    m.step(this.ms);
    r.b.expireAll(m.now);
    observe(m, r);
  }
  toString() {
    return `step ${this.ms} ms`;
  }
}

const address = fc.constantFrom(...POOL);
// Weighted toward what makes a connection progress, with the odd flags still in play.
const flags = fc.oneof({ weight: 4, arbitrary: fc.constantFrom("S", "A", "PA", "FA", "SA") }, { weight: 1, arbitrary: fc.constantFrom("R", "RA", "F", "") });
const port = fc.integer({ min: 1, max: 4 });
const commands = [
  fc.tuple(address, fc.integer({ min: 0, max: 3 })).map(([a, w]) => new AddDest(a, w)),
  address.map((a) => new RemoveDest(a)),
  fc.tuple(address, fc.integer({ min: 0, max: 3 })).map(([a, w]) => new Reweight(a, w)),
  fc.tuple(port, flags).map(([p, f]) => new ClientPacket(p, f)),
  fc.tuple(port, flags).map(([p, f]) => new ClientPacket(p, f)),
  fc.tuple(port, fc.option(address, { freq: 4 }), flags).map(([p, a, f]) => new ServerPacket(p, a, f)),
  fc.tuple(port, fc.option(address, { freq: 4 }), flags).map(([p, a, f]) => new ServerPacket(p, a, f)),
  fc.constantFrom(500, 1999, 2000, 10_000, 30_000, 59_999, 60_000, 120_000, 900_000).map((ms) => new Step(ms)),
];

test("the Balancer and a plain model of IPVS agree on every verdict, state, expiry and counter", () => {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 80, size: "max" }), (cmds) => {
      const b = new Balancer({ connections: 256, slots: 2, slotCapacity: 256 });
      b.addService({ key: KEY, scheduler: "wlc", schedulerFlags: [], onePacket: false });
      const model = new Model();
      const real: Real = { b, idOf: new Map() };
      // Every run starts with two real servers of different weight.
      new AddDest(POOL[0], 1).run(model, real);
      new AddDest(POOL[1], 2).run(model, real);
      fc.modelRun(() => ({ model, real }), cmds);
    }),
    { numRuns: 200 },
  );
});
