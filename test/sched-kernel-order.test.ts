// Destination order, against a reference model transcribed from the kernel's C (Linux 6.x,
// net/netfilter/ipvs/ip_vs_ctl.c and ip_vs_{rr,wrr,lc,wlc,sed,nq,fo,ovf,sh,dh,mh,lblc,
// lblcr}.c), not from our AssemblyScript. The model keeps svc->destinations as an array,
// head first: __ip_vs_update_dest() links a new destination with list_add_rcu (at the head)
// and then calls the scheduler's add_dest; an edit calls upd_dest, a removal unlinks and
// calls del_dest. Random sequences of adds, edits, removals, load changes and new flows run
// on the wasm ServiceTable and on the model; every decision must be the same.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, ServiceTable, executeCommand, parseCommand, type FlowKey } from "../src/index.js";
import { hash32, ipv4ToInt, mhOffsetSkip, maglevFill } from "./support/kernel-hash.js";

interface KDest {
  readonly addr: string;
  weight: number;
  lastWeight: number;
  active: number;
  inactive: number;
  overloaded: boolean;
}
interface Flow {
  readonly client: string;
  readonly vaddr: string;
}
/** One scheduler's C, over the list (head first). */
interface KSched {
  add(list: KDest[], d: KDest): void;
  upd(list: KDest[], d: KDest): void;
  /** `at` is where d was in the list before list_del_rcu. */
  del(list: KDest[], d: KDest, at: number): void;
  schedule(list: KDest[], flow: Flow): KDest | null;
}

const overhead = (d: KDest) => (d.active << 8) + d.inactive; // ip_vs_dest_conn_overhead
const none = () => {};

// ip_vs_rr.c: sched_data is the last pick's list node (initially the head).
function rr(): KSched {
  let last: KDest | null = null; // null = &svc->destinations
  return {
    add: none,
    upd: none,
    del(list, d, at) {
      // ip_vs_rr_del_dest: p->next->prev, the removed node's predecessor (or the head)
      if (last === d) last = at > 0 ? list[at - 1] : null;
    },
    schedule(list) {
      // list_for_each_entry_continue from the last pick to the end, then (second pass,
      // only if it did not start at the head) from the head up to and including it
      const start = last ? list.indexOf(last) + 1 : 0;
      for (let k = 0; k < list.length; k++) {
        const d = list[(start + k) % list.length];
        if (!d.overloaded && d.weight > 0) return (last = d);
      }
      return null;
    },
  };
}

// ip_vs_wrr.c: mark {cl, cw, mw, di}; every add/del/upd runs ip_vs_wrr_dest_changed.
function wrr(): KSched {
  let cl: KDest | null = null;
  let cw = 0;
  let mw = 0;
  let di = 1;
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const changed = (list: KDest[]) => {
    cl = null;
    di = list.reduce((g, d) => (d.weight > 0 ? (g > 0 ? gcd(d.weight, g) : d.weight) : g), 0) || 1;
    mw = list.reduce((m, d) => Math.max(m, d.weight), 0) - (di - 1);
    if (cw > mw || !cw) cw = mw;
    else if (di > 1) cw = Math.trunc(cw / di) * di + 1;
  };
  return {
    add: changed,
    upd: changed,
    del: changed,
    schedule(list) {
      let dest = cl;
      if (mw === 0) return null;
      const last = dest;
      let stop: KDest | null | undefined;
      let lastPass = false;
      let restarted = false;
      for (;;) {
        for (let i = dest ? list.indexOf(dest) + 1 : 0; i < list.length; i++) {
          const d = list[i];
          if (!d.overloaded && d.weight >= cw) return (cl = d);
          if (d === stop) {
            cl = d;
            return null;
          }
        }
        dest = null; // the walk ended on the head
        cw -= di;
        if (cw <= 0) {
          cw = mw;
          if (lastPass || last === null) {
            cl = null;
            return null;
          }
          restarted = true;
        }
        lastPass = cw <= di;
        if (lastPass && restarted && last !== null) stop = last;
      }
    },
  };
}

/** A stateless scheduler: one walk of the list per flow. */
const stateless = (pick: (list: KDest[]) => KDest | null): KSched => ({ add: none, upd: none, del: none, schedule: pick });

// ip_vs_lc.c
const lc = () =>
  stateless((list) => {
    let least: KDest | null = null;
    let loh = 0;
    for (const d of list) {
      if (d.overloaded || d.weight === 0) continue;
      const doh = overhead(d);
      if (!least || doh < loh) [least, loh] = [d, doh];
    }
    return least;
  });

// ip_vs_wlc.c and ip_vs_sed.c: the first usable destination, then strictly better ones.
function weightedLeast(list: KDest[], cost: (d: KDest) => number): KDest | null {
  let i = list.findIndex((d) => !d.overloaded && d.weight > 0);
  if (i < 0) return null;
  let least = list[i];
  let loh = cost(least);
  for (i++; i < list.length; i++) {
    const d = list[i];
    if (d.overloaded) continue;
    const doh = cost(d);
    if (loh * d.weight > doh * least.weight) [least, loh] = [d, doh];
  }
  return least;
}
const wlc = () => stateless((list) => weightedLeast(list, overhead));
const sed = () => stateless((list) => weightedLeast(list, (d) => d.active + 1));

// ip_vs_nq.c: the first idle destination in the list, else the sed rule.
const nq = () =>
  stateless((list) => {
    let least: KDest | null = null;
    let loh = 0;
    for (const d of list) {
      if (d.overloaded || !d.weight) continue;
      const doh = d.active + 1;
      if (d.active === 0) return d;
      if (!least || loh * d.weight > doh * least.weight) [least, loh] = [d, doh];
    }
    return least;
  });

// ip_vs_fo.c
const fo = () =>
  stateless((list) => {
    let h: KDest | null = null;
    let hw = 0;
    for (const d of list) if (!d.overloaded && d.weight > hw) [h, hw] = [d, d.weight];
    return h;
  });

// ip_vs_ovf.c
const ovf = () =>
  stateless((list) => {
    let h: KDest | null = null;
    for (const d of list) {
      if (d.overloaded || d.active > d.weight || d.weight === 0) continue;
      if (!h || d.weight > h.weight) h = d;
    }
    return h;
  });

// ip_vs_sh.c (reassign on add, del and upd) and ip_vs_dh.c (on add and del only): 256
// buckets filled walking the list from the head, sh giving each destination `weight`
// consecutive buckets, dh one.
function bucketed(weighted: boolean, key: (f: Flow) => number, onUpdate: boolean): KSched {
  let buckets: (KDest | null)[] = new Array(256).fill(null);
  const reassign = (list: KDest[]) => {
    buckets = new Array(256).fill(null);
    if (!list.length) return;
    let p = 0;
    let count = 0;
    for (let i = 0; i < 256; i++) {
      const d = list[p];
      buckets[i] = d;
      if (!weighted || ++count >= d.weight) {
        count = 0;
        p = (p + 1) % list.length;
      }
    }
  };
  return {
    add: reassign,
    del: reassign,
    upd: onUpdate ? reassign : none,
    schedule(_list, flow) {
      const d = buckets[hash32(key(flow), 8)];
      return !d || d.weight <= 0 || d.overloaded ? null : d;
    },
  };
}
const sh = () => bucketed(true, (f) => ipv4ToInt(f.client), true);
const dh = () => bucketed(false, (f) => ipv4ToInt(f.vaddr), false);

// ip_vs_mh.c: ip_vs_mh_permutate and ip_vs_mh_populate walk svc->destinations from the
// head; the table is rebuilt on add, del and upd.
const M = 251;
function mh(): KSched {
  let table: (KDest | null)[] = new Array(M).fill(null);
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const fls = (x: number) => 32 - Math.clz32(x);
  const reassign = (list: KDest[]) => {
    const g = list.reduce((acc, d) => (d.lastWeight > 0 ? (acc > 0 ? gcd(d.lastWeight, acc) : d.lastWeight) : acc), 0);
    if (g < 1) {
      table = new Array(M).fill(null);
      return;
    }
    const mw = list.reduce((m, d) => Math.max(m, d.lastWeight), 0);
    const rshift = Math.max(0, fls(Math.trunc(mw / g)) - 6);
    const setups = list.map((d) => {
      const [offset, skip] = mhOffsetSkip(d.addr, 80, M);
      return { offset, skip, turns: Math.trunc(d.lastWeight / g) >> rshift || (d.lastWeight !== 0 ? 1 : 0) };
    });
    table = maglevFill(M, setups).map((k) => (k < 0 ? null : list[k]));
  };
  return {
    add: reassign,
    del: reassign,
    upd: reassign,
    schedule(_list, flow) {
      const d = table[mhOffsetSkip(flow.client, 0, M)[0]];
      return !d || d.weight <= 0 || d.overloaded ? null : d;
    },
  };
}

// lblc and lblcr's is_overloaded
const lbOverloaded = (list: KDest[], d: KDest) => d.active > d.weight && list.some((m) => m.active * 2 < m.weight);

// ip_vs_lblc.c: a cache daddr -> dest; a miss or an unusable hit is scheduled by wlc.
function lblc(): KSched {
  const cache = new Map<string, KDest>();
  return {
    add: none,
    upd: none,
    del: none,
    schedule(list, flow) {
      const hit = cache.get(flow.vaddr);
      if (hit && list.includes(hit) && hit.weight > 0 && !lbOverloaded(list, hit)) return hit;
      const d = weightedLeast(list, overhead);
      if (d) cache.set(flow.vaddr, d);
      return d;
    },
  };
}

// ip_vs_lblcr.c: a cache daddr -> set (newest member first); the set's wlc-least available
// member unless lblc-overloaded, else wlc over the service, inserted at the set's head.
// The clock stands still here, so no set ever expires a member.
function lblcr(): KSched {
  const sets = new Map<string, KDest[]>();
  const setMin = (list: KDest[], set: KDest[]) => {
    const available = (d: KDest) => list.includes(d);
    let i = set.findIndex((d) => !d.overloaded && d.weight > 0 && available(d));
    if (i < 0) return null;
    let least = set[i];
    let loh = overhead(least);
    for (i++; i < set.length; i++) {
      const d = set[i];
      if (d.overloaded) continue;
      const doh = overhead(d);
      if (loh * d.weight > doh * least.weight && available(d)) [least, loh] = [d, doh];
    }
    return least;
  };
  return {
    add: none,
    upd: none,
    del: none,
    schedule(list, flow) {
      const set = sets.get(flow.vaddr);
      if (set) {
        const d = setMin(list, set);
        if (d && !lbOverloaded(list, d)) return d;
      }
      const d = weightedLeast(list, overhead);
      if (!d) return null;
      if (!set) sets.set(flow.vaddr, [d]);
      else if (!set.includes(d)) set.unshift(d);
      return d;
    },
  };
}

const MODELS: Record<string, () => KSched> = { rr, wrr, lc, wlc, sed, nq, fo, ovf, sh, dh, mh, lblc, lblcr };

// ---- random operation sequences --------------------------------------------------------

type Op =
  | { k: "add"; w: number }
  | { k: "edit"; i: number; w: number }
  | { k: "del"; i: number }
  | { k: "load"; i: number; a: number; n: number; o: boolean }
  | { k: "pick"; f: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant("add" as const), w: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("edit" as const), i: fc.nat(), w: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("del" as const), i: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("load" as const),
      i: fc.nat(),
      a: fc.integer({ min: 0, max: 3 }),
      n: fc.integer({ min: 0, max: 3 }),
      o: fc.boolean(),
    }),
  },
  { weight: 6, arbitrary: fc.record({ k: fc.constant("pick" as const), f: fc.nat(40) }) },
);

const ADDRESSES = Array.from({ length: 12 }, (_, i) => `10.9.${i}.${(i * 37) % 250}`);
const flowOf = (f: number): Flow => ({ client: `172.16.${f % 7}.${(f * 53) % 256}`, vaddr: `198.51.100.${f % 3}` });

const table = new ServiceTable({ maxServices: 4, maxDestinations: 64, maglevTables: 2, cacheEntries: 256 });

/** Runs the ops on the table and on the model; returns the two decision sequences. */
function both(name: string, ops: readonly Op[]): { real: string[]; model: string[]; trace: string[] } {
  const model = MODELS[name]();
  const list: KDest[] = [];
  const ids = new Map<KDest, number>();
  const svc = table.createService(name === "mh" ? { scheduler: name, maglevSize: M, maglevOrder: "list" } : { scheduler: name });
  const real: string[] = [];
  const expected: string[] = [];
  const trace: string[] = [];
  let next = 0;
  try {
    for (const op of ops) {
      if (op.k === "add") {
        if (next >= ADDRESSES.length) continue; // every address once: no revival from the trash
        const d: KDest = { addr: ADDRESSES[next++], weight: op.w, lastWeight: op.w, active: 0, inactive: 0, overloaded: false };
        ids.set(d, table.addDestination(svc, { address: d.addr, port: 80, weight: op.w }));
        list.unshift(d); // list_add_rcu: at the head
        model.add(list, d);
        trace.push(`add ${d.addr} w${op.w}`);
        continue;
      }
      if (op.k === "pick") {
        const f = flowOf(op.f);
        const got = table.schedule(svc, { clientAddress: f.client, clientPort: 1000 + op.f, virtualAddress: f.vaddr, virtualPort: 80 } satisfies FlowKey);
        const want = model.schedule(list, f);
        real.push(got === null ? "-" : ([...ids].find(([, id]) => id === got)?.[0].addr ?? `?${got}`));
        expected.push(want ? want.addr : "-");
        trace.push(`pick ${f.client} -> ${expected[expected.length - 1]}`);
        continue;
      }
      if (!list.length) continue;
      const at = op.i % list.length;
      const d = list[at];
      const id = ids.get(d)!;
      if (op.k === "edit") {
        table.editDestination(id, { weight: op.w });
        d.weight = op.w;
        if (op.w !== 0) d.lastWeight = op.w; // "keep the last_weight with latest non-0 weight"
        d.overloaded = false; // __ip_vs_update_dest: a new u_threshold of 0 clears OVERLOAD
        model.upd(list, d);
        trace.push(`edit ${d.addr} w${op.w}`);
      } else if (op.k === "del") {
        table.setLoad(id, {}); // no connections: the record is freed, not kept in the trash
        table.removeDestination(id);
        list.splice(at, 1);
        ids.delete(d);
        model.del(list, d, at);
        trace.push(`del ${d.addr}`);
      } else {
        table.setLoad(id, { active: op.a, inactive: op.n, overloaded: op.o });
        [d.active, d.inactive, d.overloaded] = [op.a, op.n, op.o];
        trace.push(`load ${d.addr} a${op.a} i${op.n}${op.o ? " overloaded" : ""}`);
      }
    }
  } finally {
    for (const id of ids.values()) table.setLoad(id, {});
    table.deleteService(svc);
  }
  return { real, model: expected, trace };
}

for (const name of Object.keys(MODELS)) {
  test(`${name}: adds, edits, removals and loads give the decisions of the kernel's newest-first list (Linux 6.x model)`, () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 5, maxLength: 60 }), (ops) => {
        const r = both(name, ops);
        assert.deepEqual(r.real, r.model, r.trace.join("\n"));
      }),
      { numRuns: 120 },
    );
  });
}

test("the classic walkthrough order, by the model: rr over RS1 then RS2 added answers RS2, RS1, RS2, RS1", () => {
  const r = both("rr", [{ k: "add", w: 1 }, { k: "add", w: 1 }, ...Array.from({ length: 4 }, (_, f) => ({ k: "pick" as const, f }))]);
  assert.deepEqual(r.model, [ADDRESSES[1], ADDRESSES[0], ADDRESSES[1], ADDRESSES[0]]);
  assert.deepEqual(r.real, r.model);
});

test("lvsadm over a Balancer: -Ln sorts, --nosort prints the kernel's list (newest first), -S sorts; rules() replays the same list", () => {
  const b = new Balancer({ connections: 16 });
  const ctx = { balancer: b, now: () => 0 };
  const run = (argv: string[]) => executeCommand(ctx, parseCommand(argv)).stdout;
  run(["-A", "-t", "10.0.0.100:80", "-s", "rr"]);
  for (const rs of ["192.168.10.11", "192.168.10.13", "192.168.10.12"]) run(["-a", "-t", "10.0.0.100:80", "-r", `${rs}:80`, "-m"]);
  const order = (text: string) => [...text.matchAll(/-> (192\.168\.10\.\d+):80/g)].map((m) => m[1].slice(-2));
  assert.deepEqual(order(run(["-L", "-n"])), ["11", "12", "13"]);
  assert.deepEqual(order(run(["-L", "-n", "--nosort"])), ["12", "13", "11"]);
  assert.deepEqual(
    [...run(["-S", "-n"]).matchAll(/-r 192\.168\.10\.(\d+)/g)].map((m) => m[1]),
    ["11", "12", "13"],
  );
  const copy = new Balancer({ connections: 16 });
  copy.applyRules(b.rules());
  assert.deepEqual(
    copy.listing().services[0].destinations.map((d) => d.config.address),
    b.listing().services[0].destinations.map((d) => d.config.address),
  );
});
