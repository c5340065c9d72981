// Known answers worked out from the kernel's rules (net/netfilter/ipvs/ip_vs_*.c), with an
// independent TypeScript reference of hash_32 and hsiphash for sh, dh and mh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ServiceTable } from "../src/index.js";
import { hash32, ipv4ToInt, mhOffsetSkip, maglevFill, sipHash } from "./support/kernel-hash.js";

const table = new ServiceTable({ maxServices: 16, maxDestinations: 2048, destinationsPerService: 1024, maglevTables: 4 });

// The kernel links a new destination at the head of its list (list_add_rcu in
// __ip_vs_update_dest), so the helper adds the last letter first: the list then reads A, B,
// C... from the head. With `added: true` it adds A, B, C... in that order (list C, B, A).
function service(
  scheduler: string,
  weights: number[],
  extra: { flags?: string[]; maglevSize?: number; maglevOrder?: "list" | "sorted" } = {},
  edit = false,
  added = false,
) {
  const s = table.createService(edit ? { scheduler: "wlc" } : { scheduler, ...extra });
  const ids: number[] = new Array(weights.length);
  const order = weights.map((_, i) => i);
  for (const i of added ? order : order.reverse()) ids[i] = table.addDestination(s, { address: `10.0.0.${i + 1}`, port: 80, weight: weights[i] });
  if (edit) table.editService(s, { scheduler, ...extra });
  return { s, ids };
}
const letters = (ids: number[], picks: (number | null)[]) => picks.map((p) => (p === null ? "-" : "ABCDEFGH"[ids.indexOf(p)])).join("");
const pick = (s: number, n: number, flow = { clientAddress: "192.0.2.9" }) => Array.from({ length: n }, () => table.schedule(s, flow));

test("wrr 4,3,2 set up before the scheduler (ipvsadm -E): A A B A B C A B C, repeating", () => {
  const { s, ids } = service("wrr", [4, 3, 2], {}, true);
  assert.equal(letters(ids, pick(s, 18)), "AABABCABC".repeat(2));
  table.deleteService(s);
});

test("wrr 4,3,2 added one by one: the kernel's dest_changed leaves cw = 1, so one pass A B C comes first", () => {
  // the last added (A) is at the head: list A B C; add C(2): di 2, mw 1, cw 0 -> 1;
  // add B(3), A(4): di 1, mw 4, cw stays 1
  const { s, ids } = service("wrr", [4, 3, 2]);
  assert.equal(letters(ids, pick(s, 21)), `ABC${"AABABCABC".repeat(2)}`);
  table.deleteService(s);
});

test("wrr 4,3,2 added A, B, C in that order: the list is C B A (newest first), so C leads each pass", () => {
  // add A(4): di 4, mw 1, cw 0 -> 1; add B(3), C(2): cw stays 1. Pass at cw 1: C B A; then
  // cw 4: A; cw 3: B A; cw 2: C B A; cw 1: C B A
  const { s, ids } = service("wrr", [4, 3, 2], {}, false, true);
  assert.equal(letters(ids, pick(s, 21)), `CBA${"ABACBACBA".repeat(2)}`);
  table.deleteService(s);
});

test("rr over RS1 then RS2 added (the classic walkthrough) answers RS2, RS1, RS2, RS1", () => {
  const { s, ids } = service("rr", [1, 1], {}, false, true);
  assert.equal(letters(ids, pick(s, 4)), "BABA");
  // a third added now goes to the head, before the last pick (A): the cycle continues B, then C
  const c = table.addDestination(s, { address: "10.0.0.3", port: 80, weight: 1 });
  assert.equal(letters([...ids, c], pick(s, 6)), "CBACBA");
  table.deleteService(s);
});

test("wrr with gcd 2 (weights 4, 2): cycle A A B; weight 0 and overloaded are skipped", () => {
  const { s, ids } = service("wrr", [4, 2, 0], {}, true);
  assert.equal(letters(ids, pick(s, 6)), "AABAAB");
  table.setLoad(ids[0], { overloaded: true });
  assert.equal(letters(ids, pick(s, 3)), "BBB");
  table.setLoad(ids[1], { overloaded: true });
  assert.equal(letters(ids, pick(s, 2)), "--");
  table.deleteService(s);
});

test("rr: circular from the last pick, skipping weight 0; removing the last pick resumes after its predecessor", () => {
  const { s, ids } = service("rr", [1, 0, 1, 1]);
  assert.equal(letters(ids, pick(s, 6)), "ACDACD");
  table.removeDestination(ids[2]); // list A B D, last pick was D
  assert.equal(letters(ids, pick(s, 1)), "A");
  assert.equal(letters(ids, pick(s, 1)), "D");
  table.removeDestination(ids[3]); // last pick D removed: pointer moves to B (its predecessor)
  assert.equal(letters(ids, pick(s, 2)), "AA");
  table.deleteService(s);
});

test("lc, wlc, sed, nq, fo, ovf on one loaded list follow their kernel formulas", () => {
  // A: w1 a3 i0 | B: w3 a5 i10 | C: w2 a4 i1 | D: w0 a0
  const loads = [
    [1, 3, 0],
    [3, 5, 10],
    [2, 4, 1],
    [0, 0, 0],
  ];
  const expect: Record<string, string> = {
    lc: "A", // overhead 768 < 1025 < 1290 (D quiesced)
    wlc: "B", // overhead / weight: 768, 1290/3 = 430, 1025/2 = 512.5
    sed: "B", // (3+1)/1 = 4, 6/3 = 2, 5/2 = 2.5
    nq: "B", // nobody idle (D is quiesced), so sed
    fo: "B", // highest weight
    ovf: "-", // A: 3 > 1, B: 5 > 3, C: 4 > 2 -> all overflowing
  };
  for (const [name, want] of Object.entries(expect)) {
    const { s, ids } = service(
      name,
      loads.map((l) => l[0]),
    );
    loads.forEach((l, i) => table.setLoad(ids[i], { active: l[1], inactive: l[2] }));
    assert.equal(letters(ids, pick(s, 1)), want, name);
    table.deleteService(s);
  }
});

test("nq sends to the first idle server even when another is lighter by sed", () => {
  const { s, ids } = service("nq", [1, 100, 1]);
  [
    [2, 0],
    [5, 0],
    [0, 9],
  ].forEach(([a, i], k) => table.setLoad(ids[k], { active: a, inactive: i }));
  assert.equal(letters(ids, pick(s, 1)), "C");
  table.deleteService(s);
});

test("sh: 256 buckets filled by weight, key hash_32(ntohl(saddr) [+ sport], 8), as an independent hash_32 computes", () => {
  const weights = [3, 1, 2];
  const { s, ids } = service("sh", weights);
  const buckets: number[] = [];
  for (let p = 0, c = 0; buckets.length < 256; ) {
    buckets.push(p);
    if (++c >= weights[p]) {
      c = 0;
      p = (p + 1) % weights.length;
    }
  }
  for (let i = 0; i < 500; i++) {
    const client = `172.${i % 7}.${(i * 37) % 256}.${(i * 101) % 256}`;
    const port = 1000 + i * 13;
    const want = buckets[hash32(ipv4ToInt(client), 8)];
    assert.equal(table.schedule(s, { clientAddress: client, clientPort: port }), ids[want], client);
  }
  table.editService(s, { scheduler: "sh", flags: ["sh-port"] });
  for (let i = 0; i < 500; i++) {
    const client = `172.16.${i % 256}.${(i * 7) % 256}`;
    const port = 1000 + i * 13;
    const want = buckets[hash32((ipv4ToInt(client) + port) >>> 0, 8)];
    assert.equal(table.schedule(s, { clientAddress: client, clientPort: port, protocol: "udp" }), ids[want]);
    // ICMP has no ports: sh-port hashes port 0
    const icmp = buckets[hash32(ipv4ToInt(client), 8)];
    assert.equal(table.schedule(s, { clientAddress: client, clientPort: port, protocol: 1 }), ids[icmp]);
  }
  table.deleteService(s);
});

test("sh-fallback probes bucket (offset + 2 * ihash) & 255, the kernel's rotation", () => {
  const weights = [1, 1, 1, 1];
  const { s, ids } = service("sh", weights, { flags: ["sh-fallback"] });
  table.setLoad(ids[1], { overloaded: true });
  for (let i = 0; i < 300; i++) {
    const client = `198.51.${i % 256}.${(i * 29) % 256}`;
    const ih = hash32(ipv4ToInt(client), 8);
    let want = ih % 4;
    if (want === 1) {
      for (let off = 0; off < 256; off++) {
        const b = (((off + ih) & 255) + ih) & 255;
        if (b % 4 !== 1) {
          want = b % 4;
          break;
        }
      }
    }
    assert.equal(table.schedule(s, { clientAddress: client }), ids[want], client);
  }
  table.deleteService(s);
});

test("dh: one destination per bucket in rotation, key hash_32(ntohl(daddr), 8); weight ignored but 0 gives none", () => {
  const { s, ids } = service("dh", [5, 1, 1]);
  table.editDestination(ids[2], { weight: 0 });
  for (let i = 0; i < 400; i++) {
    const vip = `203.0.${i % 256}.${(i * 53) % 256}`;
    const want = hash32(ipv4ToInt(vip), 8) % 3;
    const got = table.schedule(s, { clientAddress: "192.0.2.1", virtualAddress: vip });
    assert.equal(got, want === 2 ? null : ids[want], vip);
  }
  table.deleteService(s);
});

test("the SipHash reference reproduces the published SipHash-2-4 vectors", () => {
  const k0 = 0x0706050403020100n;
  const k1 = 0x0f0e0d0c0b0a0908n;
  assert.equal(sipHash(new Uint8Array(0), k0, k1, 2, 4), 0x726fdb47dd0e0e31n);
  assert.equal(
    sipHash(
      Uint8Array.from({ length: 15 }, (_, i) => i),
      k0,
      k1,
      2,
      4,
    ),
    0xa129ca6149be45e5n,
  );
});

test("mh: the table equals a reference built from the kernel's hsiphash offsets and skips (list order, M = 251 and 4093)", () => {
  for (const m of [251, 4093]) {
    const weights = [1, 2, 3, 1, 5, 0, 4];
    const { s, ids } = service("mh", weights, { maglevSize: m, maglevOrder: "list" });
    const g = 1;
    const mw = Math.max(...weights);
    const rshift = Math.max(0, 32 - Math.clz32(mw / g) - 6);
    const setups = weights.map((w, i) => {
      const [offset, skip] = mhOffsetSkip(`10.0.0.${i + 1}`, 80, m);
      return { offset, skip, turns: (w / g) >> rshift || (w !== 0 ? 1 : 0) };
    });
    const want = maglevFill(m, setups).map((k) => ids[k]);
    assert.deepEqual(Array.from(table.maglevTable(s)), want, `M = ${m}`);
    // lookups: hsiphash(ntohl(saddr)) % M
    for (let i = 0; i < 200; i++) {
      const c = `100.64.${i}.${(i * 7) % 256}`;
      const slot = mhOffsetSkip(c, 0, m)[0];
      assert.equal(table.schedule(s, { clientAddress: c }), want[slot]);
    }
    table.deleteService(s);
  }
});

test("mh: large weights are scaled by gcd and rshift = fls(max/gcd) - 6", () => {
  const weights = [1000, 3000, 65535];
  const { s, ids } = service("mh", weights, { maglevSize: 251, maglevOrder: "list" });
  // Worked by hand from ip_vs_mh_shift_weight (Linux 6.x): gcd 5 gives 200, 600, 13107;
  // fls(13107) = 14, so rshift = 14 - 6 = 8 and the turns are 200 >> 8 = 0 (at least 1),
  // 600 >> 8 = 2, 13107 >> 8 = 51. Without the gcd it would be rshift 10: turns 1, 2, 63.
  const turns = [1, 2, 51];
  const setups = turns.map((t, i) => {
    const [offset, skip] = mhOffsetSkip(`10.0.0.${i + 1}`, 80, 251);
    return { offset, skip, turns: t };
  });
  const want = maglevFill(251, setups).map((k) => ids[k]);
  assert.deepEqual(Array.from(table.maglevTable(s)), want);
  const slots = want.reduce((c, id) => c.set(id, (c.get(id) ?? 0) + 1), new Map<number, number>());
  assert.ok(slots.get(ids[2])! > 200, "the heaviest takes most of the 251 slots");
  table.deleteService(s);
});
