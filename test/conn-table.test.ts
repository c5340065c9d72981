// The connection table and IPVS's TCP state machine, through the wasm exports.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PacketCore, encodeAddress } from "../src/index.js";

type Fn = (...args: number[]) => number;

function makeCore(capacity: number) {
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048, actionCount: 4 });
  const raw = core.wasm as unknown as Record<string, Fn>;
  // wasm returns u32 as a signed i32; read every result as unsigned.
  const w: Record<string, Fn> = {};
  for (const [name, fn] of Object.entries(raw)) {
    if (typeof fn === "function") w[name] = (...a: number[]) => fn(...a) >>> 0;
  }
  assert.equal(w.connInit(capacity, 0x1234), 0);
  const params = w.regionParams();
  const setAddrs = (c: string, v: string, d: string) => {
    const mem = core.slots.bytes;
    mem.set(encodeAddress(c, "c").bytes, params);
    mem.set(encodeAddress(v, "v").bytes, params + 16);
    mem.set(encodeAddress(d, "d").bytes, params + 32);
  };
  return { core, w, setAddrs };
}

const NONE = 0xffffffff;
// State numbers as the kernel's enum.
const S = { NO: 0, ES: 1, SS: 2, SR: 3, FW: 4, TW: 5, CL: 6, CW: 7, LA: 8, LI: 9, SA: 10 } as const;
const SYN = 0x02,
  ACK = 0x10,
  RST = 0x04,
  SYNACK = 0x12,
  FINACK = 0x11;
const IN = 0,
  OUT = 1,
  IN_ONLY = 2;

test("a NAT connection walks the kernel's states: SYN, SYN-ACK, ACK, FIN both ways", () => {
  const { w } = makeCore(16);
  const walk: Array<[number, number, number]> = [
    [IN, SYN, S.SR], // client SYN: the kernel says SYN_RECV on the director
    [OUT, SYNACK, S.SR], // server SYN-ACK (syn wins over ack)
    [IN, ACK, S.ES],
    [IN, ACK, S.ES],
    [OUT, FINACK, S.FW], // server closes first
    [IN, FINACK, S.TW],
    [IN, ACK, S.TW],
  ];
  let state: number = S.NO;
  for (const [dir, flags, expected] of walk) {
    state = w.tcpTransition(dir, flags, state);
    assert.equal(state, expected, `dir ${dir} flags 0x${flags.toString(16)}`);
  }
});

test("DR / TUN use INPUT-ONLY: a client FIN from ESTABLISHED goes to FIN_WAIT, not CLOSE_WAIT", () => {
  const { w } = makeCore(4);
  assert.equal(w.tcpTransition(IN_ONLY, FINACK, S.ES), S.FW);
  assert.equal(w.tcpTransition(IN, FINACK, S.ES), S.CW);
  assert.equal(w.tcpTransition(IN_ONLY, FINACK, S.FW), S.FW);
  assert.equal(w.tcpTransition(IN_ONLY, RST, S.SA), S.CL);
  assert.equal(w.tcpTransition(IN, RST, S.SA), S.SR);
  // Linux 6.x: an ack from NONE is ESTABLISHED (what lets sloppy_tcp pick up a flow mid-stream)
  assert.equal(w.tcpTransition(IN, ACK, S.NO), S.ES, "an ACK from NONE establishes");
  assert.equal(w.tcpTransition(IN_ONLY, ACK, S.NO), S.ES);
  assert.equal(w.tcpTransition(IN, 0, S.ES), S.CL, "no flag at all: CLOSE");
  assert.equal(w.tcpTransition(IN, RST | SYN, S.ES), S.CL, "rst counts first");
});

// Transcribed from Linux 6.x net/netfilter/ipvs/ip_vs_proto_tcp.c (tcp_states and
// tcp_states_dos, unchanged through the 6.x series), rows syn fin ack rst per direction,
// columns sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA.
const KERNEL_TABLES: Record<"tcp_states" | "tcp_states_dos", string[]> = {
  tcp_states: [
    // INPUT
    "sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR",
    "sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sTW",
    "sES sES sSS sES sFW sTW sCL sCW sCL sLI sES",
    "sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sSR",
    // OUTPUT
    "sSS sES sSS sSR sSS sSS sSS sSS sSS sLI sSR",
    "sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW",
    "sES sES sSS sES sFW sTW sCL sCW sLA sES sES",
    "sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL",
    // INPUT-ONLY
    "sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR",
    "sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW",
    "sES sES sSS sES sFW sTW sCL sCW sCL sLI sES",
    "sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL",
  ],
  tcp_states_dos: [
    // INPUT
    "sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSA",
    "sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sSA",
    "sES sES sSS sSR sFW sTW sCL sCW sCL sLI sSA",
    "sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL",
    // OUTPUT
    "sSS sES sSS sSA sSS sSS sSS sSS sSS sLI sSA",
    "sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW",
    "sES sES sSS sES sFW sTW sCL sCW sLA sES sES",
    "sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL",
    // INPUT-ONLY
    "sSA sES sES sSR sSA sSA sSA sSA sSA sSA sSA",
    "sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW",
    "sES sES sSS sES sFW sTW sCL sCW sCL sLI sES",
    "sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL",
  ],
};

test("every transition of tcp_states and tcp_states_dos (secure_tcp) is the Linux 6.x kernel's", () => {
  const { w } = makeCore(4);
  const flagOfRow = [SYN, 0x01, ACK, RST]; // syn, fin, ack, rst
  for (const [name, rows] of Object.entries(KERNEL_TABLES)) {
    w.tcpSecureTable(name === "tcp_states_dos" ? 1 : 0);
    rows.forEach((line, r) => {
      const dir = Math.floor(r / 4);
      line.split(" ").forEach((cell, state) => {
        const want = S[cell.slice(1) as keyof typeof S];
        assert.equal(w.tcpTransition(dir, flagOfRow[r % 4], state), want, `${name} dir ${dir} row ${r % 4} from state ${state}`);
      });
    });
  }
  w.tcpSecureTable(0);
});

test("default timeouts are the kernel's and --set changes them", () => {
  const { w } = makeCore(4);
  const expected = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300].map((s) => s * 1000);
  expected.forEach((ms, state) => assert.equal(w.timeoutGet(state), ms, `state ${state}`));
  assert.equal(w.timeoutSet(S.ES, 7200_000), 1);
  assert.equal(w.timeoutGet(S.ES), 7200_000);
  assert.equal(w.timeoutSet(S.ES, 0), 0, "zero is refused (ipvsadm: 0 leaves it unchanged)");
  assert.equal(w.timeoutSet(99, 5), 0);
  w.timeoutsReset();
  assert.equal(w.timeoutGet(S.ES), 900_000);
});

test("lookups by client tuple and by reply tuple find the same entry; templates are apart", () => {
  const { w, setAddrs } = makeCore(8);
  setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
  const i = w.connTestInsert(6, 4, 40000, 80, 8080, 0, 1);
  assert.notEqual(i, NONE);
  assert.equal(w.connTestLookupIn(6, 4, 40000, 80, 0), i);
  assert.equal(w.connTestLookupOut(6, 4, 8080, 40000), i);
  assert.equal(w.connTestLookupIn(17, 4, 40000, 80, 0), NONE, "protocol is part of the key");
  assert.equal(w.connTestLookupIn(6, 4, 40001, 80, 0), NONE);
  assert.equal(w.connTestLookupIn(6, 4, 40000, 80, 1), NONE, "a connection is not a template");
  const t = w.connTestInsert(6, 4, 0, 80, 8080, 2, 0);
  assert.equal(w.connTestLookupIn(6, 4, 0, 80, 1), t);
  assert.equal(w.connTestLookupIn(6, 4, 0, 80, 0), NONE);
  w.connTestRemove(i);
  assert.equal(w.connTestLookupIn(6, 4, 40000, 80, 0), NONE);
  assert.equal(w.connTestLookupOut(6, 4, 8080, 40000), NONE);
  assert.equal(w.connTestLookupIn(6, 4, 0, 80, 1), t, "removing one entry leaves the other");
  setAddrs("2001:db8::1", "2001:db8::10", "2001:db8:1::2");
  const v6 = w.connTestInsert(17, 6, 5353, 53, 53, 0, 1);
  assert.equal(w.connTestLookupIn(17, 6, 5353, 53, 0), v6);
  assert.equal(w.connTestLookupOut(17, 6, 53, 5353), v6);
});

test("a full table refuses new entries and keeps every existing one", () => {
  const { w, setAddrs } = makeCore(64);
  setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
  const made: number[] = [];
  for (let port = 1; port <= 64; port++) made.push(w.connTestInsert(6, 4, port, 80, 80, 0, 1));
  assert.equal(new Set(made).size, 64);
  assert.equal(w.connTableUsed(), 64);
  for (let port = 1000; port < 1100; port++) assert.equal(w.connTestInsert(6, 4, port, 80, 80, 0, 1), NONE);
  for (let port = 1; port <= 64; port++) assert.equal(w.connTestLookupIn(6, 4, port, 80, 0), made[port - 1]);
  w.connTestRemove(made[10]);
  assert.notEqual(w.connTestInsert(6, 4, 5000, 80, 80, 0, 1), NONE, "a freed entry is reused");
});

test("expiry compares wrap-safe across the 32-bit millisecond clock", () => {
  const { w, setAddrs } = makeCore(4);
  setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
  const i = w.connTestInsert(6, 4, 1, 80, 80, 0, 0);
  const nearWrap = 0xffffff00;
  w.connTestTouch(i, nearWrap, 1000);
  assert.equal(w.connIsExpired(i, nearWrap + 500), 0);
  assert.equal(w.connIsExpired(i, (nearWrap + 999) >>> 0), 0);
  assert.equal(w.connIsExpired(i, (nearWrap + 1000) >>> 0), 1);
  assert.equal(w.connRemainingMs(i, (nearWrap + 400) >>> 0), 600);
});

test("model check: random inserts and removes agree with a Map", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 40 }), fc.constantFrom(6, 17)), { maxLength: 300 }), (ops) => {
      const { w, setAddrs } = makeCore(32);
      setAddrs("10.9.8.7", "192.168.0.10", "172.16.0.2");
      const model = new Map<string, number>();
      for (const [add, port, proto] of ops) {
        const key = `${proto}/${port}`;
        if (add && !model.has(key)) {
          const i = w.connTestInsert(proto, 4, port, 80, 80, 0, 1);
          if (model.size >= 32) assert.equal(i, NONE);
          else model.set(key, i);
        } else if (!add && model.has(key)) {
          w.connTestRemove(model.get(key)!);
          model.delete(key);
        }
        assert.equal(w.connTableUsed(), model.size);
      }
      for (let port = 1; port <= 40; port++) {
        for (const proto of [6, 17]) {
          const got = w.connTestLookupIn(proto, 4, port, 80, 0);
          const want = model.get(`${proto}/${port}`) ?? NONE;
          assert.equal(got, want);
          assert.equal(w.connTestLookupOut(proto, 4, 80, port), want);
        }
      }
    }),
    { numRuns: 150 },
  );
});

test("an entry with its indexes takes at most 128 bytes", () => {
  const { w } = makeCore(1 << 16);
  assert.ok(w.connTableBytesPerEntry() <= 128, `${w.connTableBytesPerEntry()} bytes per entry`);
});

// The open-addressed indexes: runs that wrap past the end of the position array, removal
// from the middle of a long run (backward shift, no tombstones), and templates re-keyed in
// place. A tiny table (16 positions per side for capacity 8) makes runs and wrap-around
// common, and thousands of remove / insert rounds would expose a gap left in a run or a
// probe sequence that degrades.
test("churn in a tiny table: every live key stays findable on both sides, removed ones never", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 60 })), { minLength: 50, maxLength: 400 }), (ops) => {
      const { w, setAddrs } = makeCore(8);
      setAddrs("10.1.2.3", "192.168.0.10", "172.16.0.2");
      const live = new Map<number, number>(); // cport -> record
      for (const [victim, port] of ops) {
        if (live.size === 8) {
          const [p, i] = [...live][victim % live.size];
          w.connTestRemove(i);
          live.delete(p);
          assert.equal(w.connTestLookupIn(6, 4, p, 80, 0), NONE, "removed key is gone");
          assert.equal(w.connTestLookupOut(6, 4, 8080, p), NONE);
        }
        if (!live.has(port)) {
          const i = w.connTestInsert(6, 4, port, 80, 8080, 0, 1);
          assert.notEqual(i, NONE);
          live.set(port, i);
        }
        for (const [p, i] of live) {
          assert.equal(w.connTestLookupIn(6, 4, p, 80, 0), i, `client side ${p}`);
          assert.equal(w.connTestLookupOut(6, 4, 8080, p), i, `reply side ${p}`);
        }
      }
    }),
    { numRuns: 60 },
  );
});

// The datapath queues a new NAT flow's reply-side entry and enters the queue after each
// chunk. Whatever happens in between (lookups of the queued key or of others, removals of
// queued or entered records, flushes at any point), both sides must answer as if every
// entry had been entered at once.
test("queued reply-side entries: lookups, removals and flushes at any point agree with entering at once", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.boolean()), { minLength: 30, maxLength: 300 }), (ops) => {
      const { w, setAddrs } = makeCore(8);
      setAddrs("10.1.2.3", "192.168.0.10", "172.16.0.2");
      const live = new Map<number, number>(); // cport -> record
      for (const [op, port, deferred] of ops) {
        if (op === 0) w.connTestFlushDeferred();
        else if (op <= 3 && live.size > 0) {
          const [p, i] = [...live][port % live.size];
          w.connTestRemove(i);
          live.delete(p);
          assert.equal(w.connTestLookupOut(6, 4, 8080, p), NONE, "a removed key is gone from the reply side");
          assert.equal(w.connTestLookupIn(6, 4, p, 80, 0), NONE);
        } else if (!live.has(port) && live.size < 8) {
          const i = w.connTestInsert(6, 4, port, 80, 8080, 0, deferred ? 2 : 1);
          assert.notEqual(i, NONE);
          live.set(port, i);
        }
        // Probe one key only (a lookup of a queued key flushes the queue, so probing all
        // of them each round would leave nothing queued for long).
        if (live.size > 0) {
          const [p, i] = [...live][port % live.size];
          assert.equal(w.connTestLookupOut(6, 4, 8080, p), i, `reply side ${p}`);
        }
        assert.equal(w.connTestLookupOut(6, 4, 8080, 1000 + port), NONE, "an absent key");
      }
      w.connTestFlushDeferred();
      for (const [p, i] of live) {
        assert.equal(w.connTestLookupIn(6, 4, p, 80, 0), i, `client side ${p}`);
        assert.equal(w.connTestLookupOut(6, 4, 8080, p), i, `reply side ${p}`);
      }
      for (const [, i] of live) w.connTestRemove(i);
      assert.equal(w.connTableUsed(), 0);
    }),
    { numRuns: 100 },
  );
});

test("a full tiny table with IPv6 and IPv4 keys side by side; emptying it leaves nothing behind", () => {
  const { w, setAddrs } = makeCore(8);
  const made: Array<[number, number, number]> = [];
  for (let k = 0; k < 8; k++) {
    const family = k % 2 ? 6 : 4;
    if (family === 6) setAddrs("2001:db8::1", "2001:db8::10", "2001:db8:1::2");
    else setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
    made.push([family, 100 + k, w.connTestInsert(17, family, 100 + k, 53, 53, 0, 1)]);
  }
  assert.equal(w.connTestInsert(17, 4, 999, 53, 53, 0, 1), NONE);
  for (const [family, port, i] of made) {
    if (family === 6) setAddrs("2001:db8::1", "2001:db8::10", "2001:db8:1::2");
    else setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
    assert.equal(w.connTestLookupIn(17, family, port, 53, 0), i);
    assert.equal(w.connTestLookupOut(17, family, 53, port), i);
    // The same ports in the other family are another key.
    assert.equal(w.connTestLookupIn(17, family === 4 ? 6 : 4, port, 53, 0), NONE);
  }
  for (const [, , i] of made) w.connTestRemove(i);
  assert.equal(w.connTableUsed(), 0);
  setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
  for (let k = 0; k < 8; k++) assert.notEqual(w.connTestInsert(17, 4, 500 + k, 53, 53, 0, 1), NONE, "all 8 records free again");
});

test("removing an entry twice, or a free one, changes nothing", () => {
  const { w, setAddrs } = makeCore(4);
  setAddrs("10.0.0.1", "192.168.0.10", "172.16.0.2");
  const a = w.connTestInsert(6, 4, 1, 80, 80, 0, 1);
  const b = w.connTestInsert(6, 4, 2, 80, 80, 0, 1);
  w.connTestRemove(a);
  w.connTestRemove(a);
  w.connTestRemove(3);
  assert.equal(w.connTableUsed(), 1);
  assert.equal(w.connTestLookupIn(6, 4, 2, 80, 0), b);
  assert.equal(w.connTestLookupOut(6, 4, 80, 2), b);
});
