// What a director's time went to during one measurement of bench:system --profile: a V8 CPU
// profile of its main thread (bench/system/profile-child.ts) cut into kinds of work, and the
// system calls `perf trace -s` counted for the whole process. Pure: data in, figures out.

/** The parts of a .cpuprofile used here. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples?: number[];
  timeDeltas?: number[];
}

/** Milliseconds of the main thread by kind of work, and the heaviest functions. */
export interface ProfileSummary {
  totalMs: number;
  /** Waiting: the event loop idle (the director waits in poll(2) on libuv's thread pool). */
  idleMs: number;
  gcMs: number;
  /** Inside the wasm data plane (balancer.process and what it calls). */
  wasmMs: number;
  /** Native functions called from JavaScript: koffi's system-call wrappers, V8 builtins. */
  nativeMs: number;
  /** JavaScript by source room (io adapters, director loop, balancer, node internals, other). */
  js: Record<string, number>;
  /** V8's "(program)": the engine itself, outside any JavaScript or wasm frame. */
  programMs: number;
  top: Array<{ name: string; kind: string; ms: number }>;
}

function kindOf(frame: { functionName: string; url: string }): string {
  const { functionName: f, url } = frame;
  if (f === "(idle)") return "idle";
  if (f === "(garbage collector)") return "gc";
  if (f === "(program)" || f === "(root)") return "program";
  if (url.startsWith("wasm://")) return "wasm";
  if (url === "") return "native";
  if (url.startsWith("node:")) return "js: node internals";
  if (url.includes("/src/io/")) return "js: io adapters";
  if (url.includes("/src/runtime/")) return "js: director loop";
  if (url.includes("/src/balancer/") || url.includes("/src/core/")) return "js: balancer and core";
  return "js: other";
}

export function summariseProfile(profile: CpuProfile, topN = 8): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byKind = new Map<string, number>();
  const byFunction = new Map<string, { kind: string; us: number }>();
  let total = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    if (!node) continue;
    // A sample's time is the gap to the next sample (V8's timeDeltas are to the previous one).
    const dt = Math.max(0, deltas[i + 1] ?? 0);
    const kind = kindOf(node.callFrame);
    byKind.set(kind, (byKind.get(kind) ?? 0) + dt);
    const name = `${node.callFrame.functionName || "(anonymous)"}${node.callFrame.url && !node.callFrame.url.startsWith("wasm://") ? ` ${node.callFrame.url.replace(/^.*\/(src|bench|node_modules)\//, "$1/")}` : ""}`;
    const f = byFunction.get(name) ?? { kind, us: 0 };
    f.us += dt;
    byFunction.set(name, f);
    total += dt;
  }
  const ms = (k: string) => (byKind.get(k) ?? 0) / 1000;
  const js: Record<string, number> = {};
  for (const [k, v] of byKind) if (k.startsWith("js: ")) js[k.slice(4)] = v / 1000;
  return {
    totalMs: total / 1000,
    idleMs: ms("idle"),
    gcMs: ms("gc"),
    wasmMs: ms("wasm"),
    nativeMs: ms("native"),
    programMs: ms("program"),
    js,
    top: [...byFunction]
      .filter(([, f]) => f.kind !== "idle")
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, topN)
      .map(([name, f]) => ({ name, kind: f.kind, ms: f.us / 1000 })),
  };
}

/** The system calls counted for one measurement: name -> calls ("all": every system call). */
export type SyscallSummary = Record<string, number>;

/** The system calls bench:system --profile counts (perf stat on syscall tracepoints: cheap, in-kernel counters). */
export const COUNTED_SYSCALLS = [
  "read",
  "write",
  "readv",
  "writev",
  "io_uring_enter",
  "poll",
  "ppoll",
  "epoll_pwait",
  "futex",
  "recvmmsg",
  "sendmmsg",
] as const;

/** The perf stat events for COUNTED_SYSCALLS and the total. */
export function perfStatEvents(): string {
  return ["raw_syscalls:sys_enter", ...COUNTED_SYSCALLS.map((n) => `syscalls:sys_enter_${n}`)].join(",");
}

/** `perf stat -x,` output (count,unit,event,...) into counts by system call name. */
export function parsePerfStat(text: string): SyscallSummary {
  const out: SyscallSummary = {};
  for (const line of text.split("\n")) {
    const [count, , event] = line.split(",");
    if (!event) continue;
    const n = Number(count);
    const calls = Number.isFinite(n) ? n : 0; // "<not counted>": none
    if (event === "raw_syscalls:sys_enter") out.all = calls;
    else if (event.startsWith("syscalls:sys_enter_")) out[event.slice("syscalls:sys_enter_".length)] = calls;
  }
  return out;
}

/** Where the director's CPU samples fell (`perf record`), in percent, by kind of work. */
export interface PerfBreakdown {
  /** Every kernel symbol together. */
  kernel: number;
  /** Routing, the bridge and its netfilter hooks, veth, device queueing, the softirq loop. */
  forwarding: number;
  /** TCP / UDP of the far side, run in our softirq (acks, lookups, congestion control). */
  transport: number;
  /** The TUN device and the user copies in and out of it. */
  tun: number;
  /** sk_buff allocation and freeing. */
  skb: number;
  /** Context switches, wake-ups, the lock releases that re-enable interrupts. */
  switches: number;
  /** Our JavaScript and wasm (V8's JIT code). */
  jit: number;
  /** V8 and libuv (node), libc, koffi. */
  runtime: number;
}

const KERNEL_KINDS: Array<[keyof PerfBreakdown, RegExp]> = [
  ["transport", /^(tcp_|__tcp|inet_|__inet|bbr_|udp_|__udp|cubic)/],
  ["tun", /^(tun_|_copy_(to|from)_iter|__check_object_size|__virt_addr_valid|copy_(to|from)_user|rw_verify_area)/],
  [
    "forwarding",
    /(fib|ip_route|ip_forward|ip_finish|ip_rcv|ip_output|ip_local|validate_source|nf_|br_|veth|dev_queue|dev_hard|netif|net_rx|neigh|process_backlog|__dev_)/,
  ],
  ["skb", /(slab|kmem_cache|skb|kfree|kmalloc|page_frag|alloc_pages)/],
  ["switches", /(finish_task_switch|spin_unlock|schedule|futex|try_to_wake_up|__wake_up|ttwu|pick_next|dequeue_task|enqueue_task)/],
];

/** `perf report --no-children --sort dso,symbol --stdio` into a PerfBreakdown (percent of samples). */
export function parsePerfReport(text: string): PerfBreakdown {
  const out: PerfBreakdown = { kernel: 0, forwarding: 0, transport: 0, tun: 0, skb: 0, switches: 0, jit: 0, runtime: 0 };
  for (const line of text.split("\n")) {
    const m = /^\s+([\d.]+)%\s+(\[JIT\] tid \d+|\S+)\s+\[([k.])\]\s+(\S+)/.exec(line);
    if (!m) continue;
    const share = Number(m[1]);
    const dso = m[2]!;
    const symbol = m[4]!;
    if (m[3] === "k") {
      out.kernel += share;
      const kind = KERNEL_KINDS.find(([, re]) => re.test(symbol));
      if (kind) out[kind[0]] += share;
    } else if (dso.startsWith("[JIT]")) {
      out.jit += share;
    } else {
      out.runtime += share;
    }
  }
  for (const k of Object.keys(out) as Array<keyof PerfBreakdown>) out[k] = Math.round(out[k] * 10) / 10;
  return out;
}
