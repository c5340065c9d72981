// Huge pages for the data plane's memory: the advice is given before the connection table
// is carved (Balancer's prepareMemory hook), so the table's pages are huge from the first
// touch. What the kernel allows decides what can be asserted: with THP "madvise" only the
// advised memory gets huge pages; with "always" both do; with "never" the advice must
// decline and say so.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, adviseHugePages, hugePageBytes, transparentHugePageMode, type HugePageAdvice } from "../src/index.js";
import { skipUnless } from "./support/tools.js";

const skip = skipUnless("linux");
const FLOWS = 1 << 20; // ~110 MB of table: many 2 MiB pages' worth

test("huge pages: advised before the tables are carved, the connection table is backed by 2 MiB pages", { skip }, () => {
  const mode = transparentHugePageMode();
  let advice: HugePageAdvice | undefined;
  const advised = new Balancer({
    connections: FLOWS,
    slots: 16,
    slotCapacity: 2048,
    prepareMemory: (m) => {
      advice = adviseHugePages(m);
    },
  });
  const plain = new Balancer({ connections: FLOWS, slots: 16, slotCapacity: 2048 });
  assert.ok(advice, "prepareMemory ran");
  const withAdvice = hugePageBytes(advised.core.wasm.memory);
  const without = hugePageBytes(plain.core.wasm.memory);
  console.log(`# THP mode ${mode}; huge-page bytes with advice ${withAdvice}, without ${without}`);
  if (mode === null || mode === "never") {
    assert.equal(advice.applied, false);
    assert.match(advice.reason ?? "", /huge pages/);
    assert.equal(withAdvice, 0);
    return;
  }
  assert.equal(advice.applied, true, advice.reason);
  assert.ok(withAdvice >= 16 * 2 * 1024 * 1024, `at least 16 huge pages under the table, got ${withAdvice} bytes`);
  if (mode === "madvise") assert.equal(without, 0, "without the advice, 4 KiB pages");
  // The advice changed only the page size: the table works.
  assert.equal(advised.connectionCapacity, FLOWS);
});
