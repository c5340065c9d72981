import { Balancer, adviseHugePages, type HugePageAdvice } from "lvs-wasm";

// The advice must reach the kernel before the tables are first touched, hence the hook:
// it runs right after the module is instantiated, before any table is carved.
let advice: HugePageAdvice = { applied: false };
const balancer = new Balancer({
  connections: 1 << 18,
  prepareMemory: (memory) => {
    advice = adviseHugePages(memory);
  },
});
console.log(
  `${balancer.connectionCapacity} connections on`,
  advice.applied ? "huge pages" : `4 KiB pages (${advice.reason})`,
);
