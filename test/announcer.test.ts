// lvsd --announce's route keeper in a real namespace: a VIP's route appears once its
// service has a live destination and the configuration has settled, goes at once when the
// last destination is quiesced or the director drains, and vanishes with the anchor device.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer } from "../src/balancer/balancer.js";
import { RouteAnnouncer } from "../src/runtime/announcer.js";
import { createLab, labSkip, type Lab } from "./support/netns.js";

const skip = labSkip();
/** The announcer's settle delay: long enough that polling `ip route` on a loaded machine still tells waiting from not waiting. */
const SETTLE_MS = 1000;
const VIP = "10.100.0.7";
const tcp = { kind: "address", protocol: "tcp", address: VIP, port: 80 } as const;
const rs = (weight: number) => ({ address: "192.168.10.11", port: 80, method: "route", weight, upperThreshold: 0, lowerThreshold: 0 }) as const;

async function table201(lab: Lab): Promise<string> {
  return (await lab.exec("director", "ip", ["route", "show", "table", "201"], { allowFailure: true })).stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

test("announcer: settles before announcing, withdraws at once, drains, and takes its routes with it", { skip, timeout: 60_000 }, async () => {
  const lab = await createLab({ mode: "router", realServers: 1 });
  let announcer: RouteAnnouncer | undefined;
  try {
    const balancer = new Balancer({ connections: 64 });
    let forwarded = 0;
    const logs: string[] = [];
    announcer = await RouteAnnouncer.start({
      balancer,
      netns: lab.ns("director"),
      log: (l) => logs.push(l),
      clock: () => performance.now(),
      forwarded: () => forwarded,
      pollMs: 20,
      settleMs: SETTLE_MS,
    });
    assert.equal(await table201(lab), "", "nothing servable, nothing announced");

    balancer.addService({ key: tcp, scheduler: "mh", schedulerFlags: [], onePacket: false });
    const added = performance.now();
    balancer.addDestination(tcp, rs(1));
    await until("the route", async () => (await table201(lab)).includes(VIP));
    const waited = performance.now() - added;
    assert.ok(waited >= SETTLE_MS, `announced only after the configuration settled: ${Math.round(waited)} ms`);
    assert.match(await table201(lab), new RegExp(`^${VIP.replace(/\./g, "\\.")} dev lvs-announce proto 201 scope link`));
    assert.deepEqual(announcer.announced, [VIP]);

    balancer.editDestination(tcp, rs(0));
    const withdrawMs = await until("the withdrawal", async () => (await table201(lab)) === "");
    assert.ok(withdrawMs < SETTLE_MS, `quiescing the last destination withdraws without waiting: ${Math.round(withdrawMs)} ms`);

    balancer.editDestination(tcp, rs(2));
    await until("the route again", async () => (await table201(lab)).includes(VIP));
    forwarded = 5;
    const draining = await announcer.drain();
    assert.equal(draining.draining, true);
    assert.deepEqual(draining.announced, []);
    assert.equal(await table201(lab), "", "drain withdraws");
    forwarded = 9; // traffic still arrives and is served while draining
    assert.equal(announcer.status().quietMs < 100, true, "a forwarded packet resets the quiet time");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(announcer.status().quietMs >= 250, "quiet once nothing is forwarded");
    const back = await announcer.undrain();
    assert.equal(back.draining, false);
    await until("the route after undrain", async () => (await table201(lab)).includes(VIP));

    announcer.close();
    await until("the anchor's routes to vanish with it", async () => (await table201(lab)) === "");
    const links = await lab.exec("director", "ip", ["link", "show", "lvs-announce"], { allowFailure: true });
    assert.notEqual(links.code, 0, "the anchor device is gone");
    assert.ok(logs.some((l) => l.startsWith(`announce ${VIP}`)) && logs.some((l) => l.startsWith(`withdraw ${VIP}: draining`)), logs.join("\n"));
  } finally {
    announcer?.close();
    await lab.destroy();
  }
});
