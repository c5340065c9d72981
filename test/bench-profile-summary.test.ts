// bench:system --profile's pure parts (bench/system/profile-summary.ts): a V8 CPU profile cut
// into kinds of work, and perf stat's counts of system calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePerfReport, parsePerfStat, perfStatEvents, summariseProfile, type CpuProfile } from "../bench/system/profile-summary.js";

test("summariseProfile: each sample's time (the gap to the next one) goes to its function's kind", () => {
  const frame = (functionName: string, url = "") => ({ functionName, url });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)") },
      { id: 2, callFrame: frame("(idle)") },
      { id: 3, callFrame: frame("(garbage collector)") },
      { id: 4, callFrame: frame("wasm-function[217]", "wasm://wasm/lvs-1234") },
      { id: 5, callFrame: frame("receive", "file:///work/x/src/io/tun.ts") },
      { id: 6, callFrame: frame("step", "file:///work/x/src/runtime/director.ts") },
      { id: 7, callFrame: frame("syscall") },
      { id: 8, callFrame: frame("processTicksAndRejections", "node:internal/process/task_queues") },
    ],
    // V8's timeDeltas[i] is the time from sample i-1 to sample i: sample i lasts timeDeltas[i + 1].
    samples: [2, 7, 7, 4, 5, 6, 3, 8, 2],
    timeDeltas: [0, 1000, 2000, 3000, 400, 500, 600, 700, 800],
  };
  const s = summariseProfile(profile);
  assert.equal(s.idleMs, 1.0, "the first idle sample lasts until the next (1000 us); the last has no successor");
  assert.equal(s.nativeMs, (2000 + 3000) / 1000);
  assert.equal(s.wasmMs, 0.4);
  assert.deepEqual(s.js, { "io adapters": 0.5, "director loop": 0.6, "node internals": 0.8 });
  assert.equal(s.gcMs, 0.7);
  assert.equal(s.totalMs, (1000 + 2000 + 3000 + 400 + 500 + 600 + 700 + 800) / 1000);
  assert.equal(s.top[0]!.name, "syscall");
  assert.equal(s.top[0]!.kind, "native");
  assert.ok(!s.top.some((f) => f.kind === "idle"), "idle is not a function that costs");
});

test("parsePerfStat: counts by system call, <not counted> as none, the total as `all`", () => {
  const text = [
    "812345,,raw_syscalls:sys_enter,2003456789,100.00,,",
    "400000,,syscalls:sys_enter_readv,2003456789,100.00,,",
    "<not counted>,,syscalls:sys_enter_io_uring_enter,0,100.00,,",
    "399999,,syscalls:sys_enter_writev,2003456789,100.00,,",
    "",
    "# a comment perf may print",
  ].join("\n");
  assert.deepEqual(parsePerfStat(text), { all: 812345, readv: 400000, io_uring_enter: 0, writev: 399999 });
  const events = perfStatEvents().split(",");
  assert.equal(events[0], "raw_syscalls:sys_enter");
  assert.ok(events.includes("syscalls:sys_enter_io_uring_enter") && events.includes("syscalls:sys_enter_writev"));
});

test("parsePerfReport: kernel symbols by kind of work, JIT code and the runtime apart", () => {
  const text = [
    "# Samples: 7K of event 'cpu-clock'",
    "#",
    "    12.00%  [kernel.kallsyms]    [k] finish_task_switch.isra.0",
    "     2.00%  [kernel.kallsyms]    [k] tcp_ack",
    "     1.50%  [kernel.kallsyms]    [k] __inet_lookup_established",
    "     1.25%  [kernel.kallsyms]    [k] tun_get_user",
    "     1.00%  [kernel.kallsyms]    [k] _copy_from_iter",
    "     0.75%  [kernel.kallsyms]    [k] fib_table_lookup",
    "     0.50%  [kernel.kallsyms]    [k] veth_xmit",
    "     0.50%  [kernel.kallsyms]    [k] kmem_cache_free",
    "     0.40%  [kernel.kallsyms]    [k] some_unlisted_function",
    "     3.00%  [JIT] tid 28203      [.] 0x000008d7f3b0f1ab",
    "     2.00%  node                 [.] v8impl::FunctionCallbackWrapper::Invoke",
    "     1.00%  koffi.node           [.] 0x000000000009bb48",
    "",
  ].join("\n");
  assert.deepEqual(parsePerfReport(text), {
    kernel: 19.9,
    forwarding: 1.3,
    transport: 3.5,
    tun: 2.3,
    skb: 0.5,
    switches: 12,
    jit: 3,
    runtime: 3,
  });
});
