// Where the NAT-in time goes: builds a copy of the data plane with function names kept
// (bench/out/lvs-names.wasm, same -O3 release options plus --debug), runs NAT-in batches
// for a few seconds under V8's sampling profiler, and prints self time per wasm function.
// Not part of `npm run bench` (not a *.bench.ts): run it when the NAT figure needs a why.
//
//   node --import tsx bench/profile-nat.ts            (LVS_PROFILE_SIZE=1500 for big packets)

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { fileURLToPath } from "node:url";
import { Desc, DROP_REASON_NAMES, LinkType, PacketCore, instantiateWasm } from "../src/index.js";
import { ipv4Tcp } from "./support/packets.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const out = fileURLToPath(new URL("./out/", import.meta.url));
mkdirSync(out, { recursive: true });
execFileSync("npx", ["asc", "assembly/index.ts", "--target", "release", "--debug", "-o", `${out}lvs-names.wasm`], { cwd: root, stdio: "inherit" });
const WebAssemblyModule = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object } }).WebAssembly.Module;
const mod = new WebAssemblyModule(readFileSync(`${out}lvs-names.wasm`));
const core = new PacketCore({ slotCount: 256, slotCapacity: 2048, actionCount: 1 }, instantiateWasm(mod));
const size = Number(process.env.LVS_PROFILE_SIZE ?? 64);
core.setAction(0, { kind: "nat-dnat", address: "10.3.0.3", port: 8080 });
for (let i = 0; i < 256; i++) core.slots.write(i, ipv4Tcp(size, "10.1.0.1", 20000 + i, "10.2.0.2", 80, i), LinkType.RawIp);
core.applyBatch(0, 256);
const v = core.slots.field(0, Desc.Verdict);
if (v !== 1) throw new Error(`NAT did not forward: verdict ${v} reason ${DROP_REASON_NAMES[core.slots.field(0, Desc.Reason)]}`);

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 50 });
await session.post("Profiler.start");
const t0 = performance.now();
let batches = 0;
while (performance.now() - t0 < 3000) {
  for (let k = 0; k < 1000; k++) core.applyBatch(0, 256);
  batches += 1000;
}
const elapsed = performance.now() - t0;
const { profile } = await session.post("Profiler.stop");

const self = new Map<string, number>();
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
let total = 0;
profile.samples!.forEach((id, i) => {
  const n = byId.get(id)!;
  const name = n.callFrame.functionName || n.callFrame.url || "(anonymous)";
  const dt = profile.timeDeltas![i] ?? 0;
  self.set(name, (self.get(name) ?? 0) + dt);
  total += dt;
});
const ns = (elapsed * 1e6) / (batches * 256);
console.log(`NAT in, ${size}-byte IPv4/TCP, batches of 256: ${ns.toFixed(1)} ns/packet under the profiler`);
console.log("self time by function (share of samples):");
for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
  console.log(`  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${((ns * t) / total).toFixed(1).padStart(5)} ns  ${name}`);
}
