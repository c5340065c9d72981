// ipvsadm's listing order (libipvs ipvs_cmp_services / ipvs_cmp_dests, glibc's merge sort),
// on the cases the listings tests leave out: IPv6 addresses that differ past their first
// 32 bits, firewall-mark families, ports as the last key, and ties kept in input order.

import { test } from "node:test";
import assert from "node:assert/strict";
import { compareDestinations, compareServices, type ServiceConfig, type ServiceKey } from "../src/index.js";
import { glibcSort } from "../src/admin/sort.js";

const svc = (key: ServiceKey): ServiceConfig => ({ key, scheduler: "wlc", schedulerFlags: [], onePacket: false });
const tcp = (address: string, port = 80): ServiceKey => ({ kind: "address", protocol: "tcp", address, port });
const text = (k: ServiceKey) => (k.kind === "fwmark" ? `FWM ${k.fwmark}/${k.family}` : `${k.protocol} ${k.address}:${k.port}`);
const order = (keys: ServiceKey[]) => glibcSort(keys.map(svc), compareServices).map((s) => text(s.key));

test("services: IPv6 addresses compare word by word, all four; IPv4 before IPv6; fwmark IPv4 before IPv6; port last", () => {
  assert.deepEqual(order([tcp("2001:db8::1:0:0:2"), tcp("2001:db8::1:0:0:1"), tcp("2001:db8::2"), tcp("2001:db8:0:2::1")]), [
    "tcp 2001:db8::2:80",
    "tcp 2001:db8::1:0:0:1:80",
    "tcp 2001:db8::1:0:0:2:80",
    "tcp 2001:db8:0:2::1:80",
  ]);
  assert.deepEqual(order([tcp("2001:db8::1", 443), tcp("2001:db8::1", 80), tcp("10.0.0.1", 443), tcp("10.0.0.1", 80)]), [
    "tcp 10.0.0.1:80",
    "tcp 10.0.0.1:443",
    "tcp 2001:db8::1:80",
    "tcp 2001:db8::1:443",
  ]);
  const fw = (fwmark: number, family: 4 | 6): ServiceKey => ({ kind: "fwmark", fwmark, family });
  assert.deepEqual(order([fw(5, 6), fw(5, 4), fw(4, 6)]), ["FWM 4/6", "FWM 5/4", "FWM 5/6"]);
  assert.ok(compareServices(svc(tcp("2001:db8::1:0:0:1")), svc(tcp("2001:db8::1:0:0:1"))) === 0);
});

test("destinations: the address as wide as the first one's family (all four IPv6 words), then the port", () => {
  const dests = [
    { address: "2001:db8::5", port: 8080 },
    { address: "2001:db8::5", port: 80 },
    { address: "2001:db8:0:0:1::5", port: 80 },
    { address: "2001:db8::4", port: 9000 },
  ];
  assert.deepEqual(
    glibcSort(dests, compareDestinations).map((d) => `${d.address}.${d.port}`),
    ["2001:db8::4.9000", "2001:db8::5.80", "2001:db8::5.8080", "2001:db8:0:0:1::5.80"],
  );
  assert.ok(compareDestinations({ address: "10.0.0.1", port: 80 }, { address: "10.0.0.1", port: 81 }) < 0);
  assert.ok(compareDestinations({ address: "10.0.0.1", port: 81 }, { address: "10.0.0.1", port: 80 }) > 0);
  assert.equal(compareDestinations({ address: "10.0.0.1", port: 80 }, { address: "10.0.0.1", port: 80 }), 0);
});

test("glibc's merge sort keeps equal items in input order", () => {
  const items = [3, 1, 2, 1, 3, 2, 1].map((k, i) => ({ k, i }));
  const sorted = glibcSort(items, (a, b) => a.k - b.k);
  assert.deepEqual(
    sorted.map((x) => `${x.k}:${x.i}`),
    ["1:1", "1:3", "1:6", "2:2", "2:5", "3:0", "3:4"],
  );
});
