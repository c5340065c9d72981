// Configuration checks of the Balancer (src/balancer/validate.ts), field by field: each bad
// value is refused with a ConfigError naming the field, at the edge of what is allowed, and
// the value just inside the edge is accepted; normalised forms come back from rules().

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, ConfigError, type DestinationConfig, type ServiceConfig, type ServiceKey } from "../src/index.js";
import { canonicalAddress, normaliseServiceKey, persistencePrefix, serviceKeyText } from "../src/balancer/validate.js";

const KEY: ServiceKey = { kind: "address", protocol: "tcp", address: "192.0.2.1", port: 80 };
const service = (over: Partial<ServiceConfig> = {}): ServiceConfig => ({ key: KEY, scheduler: "rr", schedulerFlags: [], onePacket: false, ...over });
const dest = (over: Record<string, unknown> = {}) =>
  ({ address: "10.0.0.1", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...over }) as DestinationConfig;

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `a ConfigError, not ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

test("service keys: protocol, address, port 0..65535, fwmark 1..2^32-1 and family 4 or 6, kind", () => {
  refused(() => normaliseServiceKey({ ...KEY, protocol: "icmp" as "tcp" }), /^key\.protocol: "icmp" is not one of tcp, udp, sctp$/);
  refused(
    () => normaliseServiceKey({ ...KEY, address: "example.com" }),
    /^key\.address: "example\.com" is not an IPv4 or IPv6 address \(host names are not resolved\)$/,
  );
  refused(() => normaliseServiceKey({ ...KEY, address: 7 as unknown as string }), /^key\.address: expected an IPv4 or IPv6 address, got 7$/);
  refused(() => normaliseServiceKey({ ...KEY, port: 65536 }), /^key\.port: 65536 is not an integer in 0\.\.65535$/);
  refused(() => normaliseServiceKey({ ...KEY, port: -1 }), /^key\.port: -1 is not an integer in 0\.\.65535$/);
  refused(() => normaliseServiceKey({ ...KEY, port: 80.5 }), /^key\.port: 80\.5 is not an integer/);
  assert.deepEqual(normaliseServiceKey({ ...KEY, port: 65535 }), { ...KEY, port: 65535 });
  assert.deepEqual(normaliseServiceKey({ ...KEY, address: "2001:DB8:0::1" }), { ...KEY, address: "2001:db8::1" });
  refused(() => normaliseServiceKey({ kind: "fwmark", fwmark: 0, family: 4 }), /^key\.fwmark: 0 is not an integer in 1\.\.4294967295$/);
  refused(() => normaliseServiceKey({ kind: "fwmark", fwmark: 2 ** 32, family: 4 }), /^key\.fwmark: 4294967296 /);
  refused(() => normaliseServiceKey({ kind: "fwmark", fwmark: 1, family: 5 as 4 }), /^key\.family: 5 is not 4 or 6$/);
  assert.deepEqual(normaliseServiceKey({ kind: "fwmark", fwmark: 2 ** 32 - 1, family: 6 }), { kind: "fwmark", fwmark: 2 ** 32 - 1, family: 6 });
  refused(() => normaliseServiceKey({ kind: "nat" } as unknown as ServiceKey), /^key\.kind: "nat" is not "address" or "fwmark"$/);
  refused(() => normaliseServiceKey(null as unknown as ServiceKey), /^key: expected/);
  assert.equal(serviceKeyText({ kind: "fwmark", fwmark: 5, family: 6 }), "FWM 5 IPv6");
  assert.equal(serviceKeyText({ kind: "fwmark", fwmark: 5, family: 4 }), "FWM 5");
  assert.equal(serviceKeyText(KEY), "TCP 192.0.2.1:80");
  assert.equal(serviceKeyText({ ...KEY, protocol: "udp", address: "2001:db8::1" }), "UDP [2001:db8::1]:80");
});

test("persistence: timeout 1..31 days, IPv4 contiguous netmask or prefix 0..32, IPv6 prefix 1..128", () => {
  assert.equal(persistencePrefix({ timeout: 1, netmask: "255.255.255.0" }, 4), 24);
  assert.equal(persistencePrefix({ timeout: 1, netmask: "0.0.0.0" }, 4), 0);
  assert.equal(persistencePrefix({ timeout: 1, netmask: 32 }, 4), 32);
  refused(() => persistencePrefix({ timeout: 1, netmask: 33 }, 4), /^persistence netmask \(-M\): 33 is not an integer in 0\.\.32$/);
  refused(() => persistencePrefix({ timeout: 1, netmask: "255.0.255.0" }, 4), /^persistence netmask \(-M\) "255\.0\.255\.0" is not a contiguous netmask/);
  refused(() => persistencePrefix({ timeout: 1, netmask: "ffff::" }, 4), /^persistence netmask \(-M\) "ffff::" is not an IPv4 netmask$/);
  assert.equal(persistencePrefix({ timeout: 1, netmask: 128 }, 6), 128);
  assert.equal(persistencePrefix({ timeout: 1, netmask: "64" }, 6), 64);
  refused(() => persistencePrefix({ timeout: 1, netmask: 0 }, 6), /^persistence netmask \(-M\): 0 is not an integer in 1\.\.128$/);
  refused(() => persistencePrefix({ timeout: 1, netmask: 129 }, 6), /^persistence netmask \(-M\): 129 /);

  const b = new Balancer({ connections: 64 });
  refused(() => b.addService(service({ persistence: { timeout: 0, netmask: 32 } })), /^persistence\.timeout: 0 is not an integer in 1\.\.2678400$/);
  refused(() => b.addService(service({ persistence: { timeout: 86400 * 31 + 1, netmask: 32 } })), /^persistence\.timeout: 2678401 /);
  b.addService(service({ persistence: { timeout: 86400 * 31, netmask: "255.255.255.0" } }));
  assert.deepEqual(b.rules().services[0].service.persistence, { timeout: 86400 * 31, netmask: "255.255.255.0" });
});

test("services: scheduler name, flag list, one-packet flag; the normalised form is what rules() returns", () => {
  const b = new Balancer({ connections: 64 });
  refused(() => b.addService(service({ scheduler: "" })), /^scheduler: expected a scheduler name such as rr, wlc or mh, got ""$/);
  refused(() => b.addService(service({ schedulerFlags: "flag-1" as unknown as string[] })), /^schedulerFlags: expected a list of flag names$/);
  refused(() => b.addService(service({ schedulerFlags: [1 as unknown as string] })), /^schedulerFlags: expected a list of flag names$/);
  refused(() => b.addService(service({ onePacket: "yes" as unknown as boolean })), /^onePacket: expected true or false$/);
  refused(() => b.addService(null as unknown as ServiceConfig), /^service: expected an object$/);
  assert.equal(b.rules().services.length, 0, "nothing added by a refused call");
  b.addService({ key: KEY, scheduler: "sh", schedulerFlags: ["sh-port"] } as unknown as ServiceConfig); // onePacket left out: false
  assert.deepEqual(b.rules().services[0].service, { key: KEY, scheduler: "sh", schedulerFlags: ["sh-port"], onePacket: false });
});

test("destinations: address and family, method, port, weight, thresholds, tunnel options", () => {
  const b = new Balancer({ connections: 64, director: { tunnelSource4: "192.0.2.254", tunnelSource6: "2001:db8::fe" } });
  b.addService(service());
  const add = (over: Record<string, unknown>) => b.addDestination(KEY, dest(over));
  refused(() => add({ method: "nat" }), /^destination\.method: "nat" is not one of masq \(-m\), route \(-g\), tunnel \(-i\), fullnat \(--fullnat\)$/);
  refused(() => add({ address: "2001:db8::5" }), /^destination\.address: an IPv6 real server needs the tunnel method under an IPv4 service$/);
  refused(() => add({ port: 65536 }), /^destination\.port: 65536 is not an integer in 0\.\.65535$/);
  refused(() => add({ weight: 65536 }), /^destination\.weight: 65536 is not an integer in 0\.\.65535$/);
  refused(() => add({ weight: -1 }), /^destination\.weight: -1 /);
  refused(() => add({ upperThreshold: 2 ** 31 }), /^destination\.upperThreshold: 2147483648 is not an integer in 0\.\.2147483647$/);
  refused(() => add({ lowerThreshold: -1 }), /^destination\.lowerThreshold: -1 /);
  refused(() => add({ tunnel: { type: "ipip" } }), /^destination\.tunnel: tunnel options need method tunnel \(-i\)$/);
  refused(() => add({ method: "tunnel", tunnel: { type: "vxlan" } }), /^destination\.tunnel\.type: "vxlan" is not one of ipip, gue, gre$/);
  refused(
    () => add({ method: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "sum" } }),
    /^destination\.tunnel\.checksum: "sum" is not one of nocsum, csum, remcsum$/,
  );
  refused(() => add({ method: "tunnel", tunnel: { type: "ipip", checksum: "csum" } }), /^destination\.tunnel\.checksum: ipip has no checksum option/);
  refused(() => add({ method: "tunnel", tunnel: { type: "gre", checksum: "remcsum" } }), /^destination\.tunnel\.checksum: remcsum applies to gue only$/);
  refused(() => add({ method: "tunnel", tunnel: { type: "gue", port: 0 } }), /^destination\.tunnel\.port: 0 is not an integer in 1\.\.65535$/);
  refused(() => add({ method: "tunnel", tunnel: { type: "gre", port: 1 } }), /^destination\.tunnel\.port: only gue takes a port$/);
  refused(() => b.addDestination(KEY, null as unknown as DestinationConfig), /^destination: expected an object$/);
  assert.equal(b.rules().services[0].destinations.length, 0, "nothing added by a refused call");

  add({ address: "10.0.0.2", port: 65535, weight: 65535, upperThreshold: 2 ** 31 - 1, lowerThreshold: 0 });
  add({ address: "2001:db8::6", method: "tunnel" });
  add({ address: "10.0.0.3", method: "tunnel", tunnel: { type: "gue", port: 65535, checksum: "remcsum" } });
  add({ address: "10.0.0.4", method: "tunnel", tunnel: { type: "gre", checksum: "csum" } });
  b.addDestination(KEY, { address: "10.0.0.5" } as DestinationConfig);
  // by address: the listing's order is the kernel's list order, not what this test checks
  const got = [...b.rules().services[0].destinations].sort((x, y) => x.address.localeCompare(y.address));
  assert.deepEqual(
    got.map((d) => [d.address, d.port, d.method, d.weight, d.upperThreshold, d.lowerThreshold, d.tunnel]),
    [
      ["10.0.0.2", 65535, "masq", 65535, 2 ** 31 - 1, 0, undefined],
      ["10.0.0.3", 80, "tunnel", 1, 0, 0, { type: "gue", port: 65535, checksum: "remcsum" }],
      ["10.0.0.4", 80, "tunnel", 1, 0, 0, { type: "gre", checksum: "csum" }],
      ["10.0.0.5", 0, "route", 1, 0, 0, undefined],
      ["2001:db8::6", 80, "tunnel", 1, 0, 0, { type: "ipip", checksum: "nocsum" }],
    ],
  );
  const v4 = canonicalAddress("10.0.0.1", "x");
  assert.deepEqual([v4.text, v4.family, [...v4.bytes.subarray(0, 4)]], ["10.0.0.1", 4, [10, 0, 0, 1]]);
});
