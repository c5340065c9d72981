// Bad input gets one clear line naming the field and what is allowed, and changes nothing;
// destination removal, the trash and the kernel's edit rules.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ServiceTable, SchedulerConfigError } from "../src/index.js";

const t = new ServiceTable({ maxServices: 4, maxDestinations: 8, destinationsPerService: 4, maglevTables: 1 });

const oneLine = (re: RegExp) => (e: unknown) => e instanceof SchedulerConfigError && !e.message.includes("\n") && re.test(e.message);

test("unknown scheduler names list the valid ones", () => {
  assert.throws(
    () => t.createService({ scheduler: "wrrr" }),
    oneLine(/^scheduler: "wrrr" is not a scheduler: use one of rr, wrr, lc, wlc, sed, nq, fo, ovf, twos, sh, dh, lblc, lblcr, mh/),
  );
  assert.throws(() => t.createService({ scheduler: "*host" }), oneLine(/is not a scheduler/));
});

test("flags belong to their scheduler; flag-1..3 are accepted everywhere", () => {
  assert.throws(
    () => t.createService({ scheduler: "rr", flags: ["sh-port"] }),
    oneLine(/flags: "sh-port" is not a flag of scheduler rr: use flag-1, flag-2, flag-3/),
  );
  assert.throws(() => t.createService({ scheduler: "mh", flags: ["sh-fallback"] }), oneLine(/use mh-fallback, mh-port, flag-1/));
  const s = t.createService({ scheduler: "rr", flags: ["flag-2"] });
  t.deleteService(s);
});

test("weights, ports, thresholds and addresses are range-checked before anything changes", () => {
  const s = t.createService({ scheduler: "wrr" });
  const d = t.addDestination(s, { address: "10.0.0.1", weight: 3 });
  assert.throws(() => t.addDestination(s, { address: "10.0.0.2", weight: 65536 }), oneLine(/^weight: 65536 is not an integer in 0\.\.65535/));
  assert.throws(() => t.addDestination(s, { address: "10.0.0.2", weight: -1 }), oneLine(/^weight: -1/));
  assert.throws(() => t.addDestination(s, { address: "10.0.0.2", weight: 1.5 }), oneLine(/^weight: 1.5/));
  assert.throws(() => t.addDestination(s, { address: "10.0.0.2", port: 70000 }), oneLine(/^port: 70000 is not an integer in 0\.\.65535/));
  assert.throws(() => t.addDestination(s, { address: "10.0.0.999" }), oneLine(/^address: "10.0.0.999" is not an IPv4 or IPv6 address/));
  assert.throws(() => t.addDestination(s, { address: "10.0.0.1" }), oneLine(/already in the service/));
  assert.throws(() => t.editDestination(d, { weight: 70000 }), oneLine(/^weight: 70000/));
  assert.throws(() => t.editDestination(d, { upperThreshold: -3 }), oneLine(/^upperThreshold: -3/));
  assert.deepEqual(
    t.destinations(s).map((x) => [x.address, x.weight]),
    [["10.0.0.1", 3]],
  );
  assert.throws(() => t.addDestination(99, { address: "10.0.0.3" }), oneLine(/^service: 99 is not an existing service id/));
  t.deleteService(s);
});

test("capacity limits say which option to raise", () => {
  const s = t.createService({ scheduler: "rr" });
  for (let i = 1; i <= 4; i++) t.addDestination(s, { address: `10.1.0.${i}` });
  assert.throws(() => t.addDestination(s, { address: "10.1.0.5" }), oneLine(/too many destinations/));
  t.deleteService(s);
  const made = [0, 1, 2, 3].map(() => t.createService({ scheduler: "rr" }));
  assert.throws(() => t.createService({ scheduler: "rr" }), oneLine(/the service table is full \(lvsd --max-services N/));
  made.forEach((m) => t.deleteService(m));
});

test("editing: last_weight keeps the latest non-zero weight; raising or clearing the upper threshold clears OVERLOAD", () => {
  const s = t.createService({ scheduler: "wlc" });
  const d = t.addDestination(s, { address: "10.2.0.1", weight: 5, upperThreshold: 2 });
  t.bindConnection(d, "active");
  t.bindConnection(d, "inactive");
  assert.equal(t.destination(d).overloaded, true);
  assert.equal(t.schedule(s, { clientAddress: "1.1.1.1" }), null);
  t.editDestination(d, { weight: 0 });
  assert.deepEqual([t.destination(d).weight, t.destination(d).lastWeight, t.destination(d).overloaded], [0, 5, true]);
  t.editDestination(d, { weight: 4, upperThreshold: 2 }); // same threshold: stays overloaded
  assert.equal(t.destination(d).overloaded, true);
  t.editDestination(d, { upperThreshold: 3 }); // raised: cleared
  assert.equal(t.destination(d).overloaded, false);
  assert.equal(t.schedule(s, { clientAddress: "1.1.1.1" }), d);
  t.unbindConnection(d, "active");
  t.unbindConnection(d, "inactive");
  t.deleteService(s);
});

test("a removed destination with connections stays in the trash, keeps its counters, and is freed with the last one", () => {
  const s = t.createService({ scheduler: "rr" });
  const a = t.addDestination(s, { address: "10.3.0.1" });
  const b = t.addDestination(s, { address: "10.3.0.2" });
  t.bindConnection(a, "active");
  t.removeDestination(a);
  assert.equal(t.destination(a).position, -1);
  assert.equal(t.destination(a).activeConnections, 1);
  assert.deepEqual(t.destinationIds(s), [b]);
  assert.throws(() => t.editDestination(a, { weight: 2 }), oneLine(/was removed/));
  // its record is not reused while a connection refers to it
  const c = t.addDestination(s, { address: "10.3.0.3" });
  assert.notEqual(c, a);
  t.unbindConnection(a, "active");
  assert.throws(() => t.destination(a), oneLine(/is not an existing destination id/));
  t.deleteService(s);
});

test("changing the scheduler (ipvsadm -E) keeps the destinations", () => {
  const s = t.createService({ scheduler: "rr" });
  const ids = [1, 2].map((i) => t.addDestination(s, { address: `10.4.0.${i}`, weight: i }));
  t.editService(s, { scheduler: "mh", maglevSize: 251 });
  assert.equal(t.schedulerOf(s), "mh");
  assert.equal(t.maglevTable(s).filter((x) => x === ids[1]).length > 100, true);
  t.editService(s, { scheduler: "sh", flags: ["sh-port"] });
  assert.equal(t.schedulerOf(s), "sh");
  assert.throws(() => t.maglevTable(s), oneLine(/does not use scheduler mh/));
  assert.deepEqual(t.destinationIds(s), [...ids].reverse()); // newest first, as the kernel's list
  t.deleteService(s);
});

test("IPv6 destinations and flows", () => {
  const s = t.createService({ scheduler: "sh" });
  const a = t.addDestination(s, { address: "2001:db8::1", port: 443 });
  t.addDestination(s, { address: "2001:db8::2", port: 443 });
  assert.equal(t.destination(a).address, "2001:db8::1");
  const d = t.schedule(s, { clientAddress: "2001:db8:ffff::42", clientPort: 5000 });
  assert.ok(d !== null);
  assert.equal(t.schedule(s, { clientAddress: "2001:db8:ffff::42", clientPort: 6000 }), d);
  assert.throws(() => t.schedule(s, { clientAddress: "2001:db8::1", virtualAddress: "10.0.0.1" }), oneLine(/same family/));
  t.deleteService(s);
});
