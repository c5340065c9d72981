import assert from "node:assert/strict";
import { Balancer, adviseHugePages, type HugePageAdvice } from "lvs-wasm";

// The advice must reach the kernel before the tables are first touched, hence the hook:
// it runs right after the module is instantiated, before any table is carved.
const advice: HugePageAdvice[] = [];
const balancer = new Balancer({
  connections: 1 << 18,
  prepareMemory: (memory) => {
    advice.push(adviseHugePages(memory));
  },
});
assert.equal(advice.length, 1, "the hook ran once, while the Balancer was built");
const [{ applied, reason }] = advice;
assert.ok(applied || reason, "the kernel took the advice, or we are told why not");
assert.ok(balancer.connectionCapacity >= 1 << 18);
console.log(`${balancer.connectionCapacity} connections on`, applied ? "huge pages" : `4 KiB pages (${reason})`);
