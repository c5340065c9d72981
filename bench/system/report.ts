// docs/benchmarks.md from one run of bench/system/run.ts: the set-up, the table of medians
// with their spread over the rounds, the ratios against HAProxy and the kernel router, the
// bars the project is held to, and what limits the figures. Pure: data in, Markdown out.

import type { PerfBreakdown, ProfileSummary, SyscallSummary } from "./profile-summary.js";

export type SystemId = "router" | "haproxy" | "nat" | "nat-q" | "nat-plain" | "nat-uring" | "dr" | "dr-bypass" | "tun";

/** One round of one system. Latencies in microseconds, rates per second, bits per second. */
export interface RoundValues {
  round: number;
  errors: string[];
  kaRps?: number;
  kaP50?: number;
  kaP90?: number;
  kaP99?: number;
  kaErrors?: number;
  closeRps?: number;
  closeP50?: number;
  closeP90?: number;
  closeP99?: number;
  closeErrors?: number;
  upBps?: number;
  upRetr?: number;
  downBps?: number;
  downRetr?: number;
  udpPps?: number;
  udpSentPps?: number;
  udpLoss?: number;
  /** Packets the kernel dropped at our TUN device's queue during each measurement. */
  kaDrops?: number;
  closeDrops?: number;
  upDrops?: number;
  downDrops?: number;
  udpDrops?: number;
  /** The multi-flow cases: wrk -t2 -c256 keep-alive, iperf3 -P 4 upload. */
  manyKaRps?: number;
  manyKaP99?: number;
  manyKaErrors?: number;
  manyUpBps?: number;
  manyUpRetr?: number;
  /** TIME_WAIT sockets found in the director's kernel before measurements (should be none). */
  timeWait?: number;
  /** Measurements that made no progress for 2 s, with what lvsd and the kernel said then. */
  stalls?: StallRecord[];
  /** --profile: per measurement (case id), where the director's time went. */
  profiles?: Record<string, ProfileRecord>;
}

/** One measurement under --profile: packets the director received, its main thread's profile, its system calls. */
export interface ProfileRecord {
  packets: number;
  wallMs: number;
  /** CPU time of the director process (all threads) during the measurement, from process.cpuUsage(). */
  cpuUserMs: number;
  cpuSystemMs: number;
  profile: ProfileSummary;
  syscalls: SyscallSummary;
  /** `perf record` of the director process: percent of its CPU samples by kind of work (null: perf could not say). */
  perf?: PerfBreakdown | null;
  profilePath: string;
}

/** A stall the watchdog caught (bench/system/watchdog.ts), with the snapshot taken then. */
export interface StallRecord {
  measurement: string;
  stalledForS: number;
  /** Seconds into the measurement. */
  atS: number;
  /** The progress counter (packets the real servers received) during the stall. */
  progress: number;
  timeWaitSockets: number;
  tunDrops: number | undefined;
  lvsd: Record<string, unknown> | null;
  /** `ip -s -j link`, `nstat -asz --json` and /proc/net/snmp in the director. */
  kernel: { links: string; nstat: string; snmp: string };
}

export interface SystemRecord {
  id: SystemId;
  label: string;
  description: string;
  /** "not measured: ..." when the system does not exist yet. */
  unavailable: string | null;
  /** Set-up failure. */
  error: string | null;
  rounds: RoundValues[];
  counters: Record<string, unknown> | null;
}

export interface RunRecord {
  command: string;
  date: string;
  durationS: number;
  node: string;
  kernel: string;
  cpu: string;
  commit: string;
  loadBefore: [number, number, number];
  loadAfter: [number, number, number];
  loadPerRound: Array<[number, number, number]>;
  options: {
    rounds: number;
    wrkS: number;
    iperfS: number;
    udpS: number;
    connections: number;
    cases?: string[];
    manyConnections?: number;
    streams?: number;
  };
  tools: Record<string, string>;
  systems: SystemRecord[];
}

type Key = Exclude<keyof RoundValues, "round" | "errors" | "stalls" | "profiles">;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function values(sys: SystemRecord, key: Key): number[] {
  return sys.rounds.map((r) => r[key]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
}

const group = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const fmtRate = (n: number) => (n >= 100 ? group(Math.round(n)) : group(n, 1));
const fmtGbit = (n: number) => (n / 1e9).toFixed(2);
const fmtMs = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
const fmtRatio = (x: number) => `${x.toFixed(2)}x`;

interface Row {
  label: string;
  keys: Key[];
  fmt: (n: number) => string;
  /** Shown when a system does not carry this traffic. */
  na?: Partial<Record<SystemId, string>>;
}

const ROWS: Row[] = [
  { label: "HTTP keep-alive, req/s", keys: ["kaRps"], fmt: fmtRate },
  { label: "  latency p50 / p90 / p99, ms", keys: ["kaP50", "kaP90", "kaP99"], fmt: fmtMs },
  { label: "HTTP connection per request, req/s", keys: ["closeRps"], fmt: fmtRate },
  { label: "  latency p50 / p90 / p99, ms", keys: ["closeP50", "closeP90", "closeP99"], fmt: fmtMs },
  { label: "iperf3 client -> server, Gbit/s", keys: ["upBps"], fmt: fmtGbit },
  { label: "iperf3 -R server -> client, Gbit/s", keys: ["downBps"], fmt: fmtGbit },
  { label: "  TCP retransmits (up / down)", keys: ["upRetr", "downRetr"], fmt: (n) => group(Math.round(n)) },
  { label: "UDP 64 B received, datagrams/s", keys: ["udpPps"], fmt: fmtRate, na: { haproxy: "n/a (TCP mode)" } },
  { label: "  UDP 64 B sent by the client, datagrams/s", keys: ["udpSentPps"], fmt: fmtRate, na: { haproxy: "n/a" } },
  { label: "HTTP keep-alive, many connections (wrk -t2), req/s", keys: ["manyKaRps"], fmt: fmtRate },
  { label: "  latency p99, ms", keys: ["manyKaP99"], fmt: fmtMs },
  { label: "iperf3 -P (several streams) client -> server, Gbit/s", keys: ["manyUpBps"], fmt: fmtGbit },
];

function cell(sys: SystemRecord, row: Row): string {
  if (sys.unavailable) return "not measured: not available";
  if (sys.error) return "set-up failed";
  if (row.na?.[sys.id]) return row.na[sys.id]!;
  const parts = row.keys.map((k) => values(sys, k));
  if (parts.every((p) => p.length === 0)) return sys.rounds.some((r) => row.keys.some((k) => k in r)) ? "failed" : "not run";
  if (row.keys.length === 1) {
    const v = parts[0]!;
    const spread = v.length > 1 ? ` [${row.fmt(Math.min(...v))}–${row.fmt(Math.max(...v))}]` : "";
    return `**${row.fmt(median(v))}**${spread}`;
  }
  // Several figures in one cell (percentiles): medians, then the spread of the last one.
  const meds = parts.map((v) => (v.length ? row.fmt(median(v)) : "?")).join(" / ");
  const last = parts[parts.length - 1]!;
  return last.length > 1 ? `${meds} [${row.fmt(Math.min(...last))}–${row.fmt(Math.max(...last))}]` : meds;
}

interface Ratio {
  ofMedians: number;
  perRound: number[];
}

function ratio(a: SystemRecord | undefined, b: SystemRecord | undefined, key: Key): Ratio | null {
  if (!a || !b) return null;
  const va = values(a, key);
  const vb = values(b, key);
  if (va.length === 0 || vb.length === 0 || median(vb) === 0) return null;
  const perRound: number[] = [];
  for (const ra of a.rounds) {
    const rb = b.rounds.find((r) => r.round === ra.round);
    const x = ra[key];
    const y = rb?.[key];
    if (typeof x === "number" && typeof y === "number" && y > 0) perRound.push(x / y);
  }
  return { ofMedians: median(va) / median(vb), perRound };
}

const fmtRatioCell = (r: Ratio | null) =>
  r === null
    ? "—"
    : `**${fmtRatio(r.ofMedians)}**${r.perRound.length > 1 ? ` [${fmtRatio(Math.min(...r.perRound))}–${fmtRatio(Math.max(...r.perRound))}]` : ""}`;

function spreadPercent(sys: SystemRecord, key: Key): number | null {
  const v = values(sys, key);
  if (v.length < 2) return null;
  const m = median(v);
  return m > 0 ? ((Math.max(...v) - Math.min(...v)) / m) * 100 : null;
}

export function renderReport(run: RunRecord): string {
  const by = new Map(run.systems.map((s) => [s.id, s] as const));
  const router = by.get("router");
  const haproxy = by.get("haproxy");
  const measured = run.systems.filter((s) => !s.unavailable && !s.error);
  const ours = run.systems.filter((s) => s.id !== "router" && s.id !== "haproxy");
  const o = run.options;
  const out: string[] = [];
  const p = (...lines: string[]) => out.push(...lines);

  p("# System benchmark: lvs-wasm against HAProxy and the kernel router", "");
  p(
    "Written by `npm run bench:system` (`bench/system/run.ts`, root). Per-bench figures of the",
    "data plane alone (no kernel, no network) are in [docs/benchmarks/](benchmarks/); the control",
    "plane at kube-proxy scale (50,000 services: restore, listing, reload, the packet loop's longest",
    "gap meanwhile) in [docs/benchmarks/operations.md](benchmarks/operations.md); one data-plane worker against two",
    "and a model for more cores in [docs/benchmarks/workers.md](benchmarks/workers.md). Where a packet's time goes",
    "(profile, system calls, copies) and what io_uring and qdisc bypass bought: [docs/benchmarks/packet-path.md](benchmarks/packet-path.md).",
    "AF_XDP against AF_PACKET, lvsd NAT side by side: [docs/benchmarks/af-xdp.md](benchmarks/af-xdp.md).",
    "",
    "A subset costs less: `npm run bench:system -- --systems router,haproxy,nat --cases ka,up,many-ka --rounds 2`",
    "(systems: router, haproxy, nat, nat-q, nat-plain, nat-uring, dr, dr-bypass, tun; cases: ka, close, up, down, udp,",
    "many-ka, many-up; `--quick` is 1 round of 2 s; `--profile` adds the per-measurement profile of the NAT directors).",
    "",
  );
  p("## This run", "");
  p(`- command: \`${run.command}\``);
  p(`- date: ${run.date} (${run.durationS} s for the whole run, labs included)`);
  p(`- node ${run.node}, Linux ${run.kernel}, CPU: ${run.cpu}`);
  p(`- commit: ${run.commit}`);
  p(
    `- tools: ${Object.entries(run.tools)
      .map(([k, v]) => `${k}: ${v}`)
      .join("; ")}`,
  );
  p(
    `- load average (1 / 5 / 15 min) before: ${run.loadBefore.join(" / ")}; after: ${run.loadAfter.join(" / ")}; ` +
      `1-min after each round: ${run.loadPerRound.map((l) => l[0]).join(", ")}`,
  );
  p(
    `- ${o.rounds} interleaved rounds (${measured.map((s) => s.label).join(", ")}, then again); per system and round: ` +
      `\`wrk -t1 -c${o.connections} -d${o.wrkS}s\` GET / (a 4-byte body) keep-alive, the same with \`Connection: close\`, ` +
      `\`iperf3 -t ${o.iperfS}\` (one TCP stream) and \`-R\`, \`iperf3 -u -l 64 -b 0 -t ${o.udpS}\`` +
      (o.manyConnections ? `, \`wrk -t2 -c${o.manyConnections} -d${o.wrkS}s\` keep-alive, \`iperf3 -P ${o.streams} -t ${o.iperfS}\`` : "") +
      (o.cases && o.cases.length < 7 ? ` (this run: only ${o.cases.join(", ")})` : "") +
      "; one untimed 1-second wrk warm-up of each kind per system before round 1; a stall watchdog beside every measurement",
    "",
  );

  const maxLoad = Math.max(run.loadBefore[0], run.loadAfter[0], ...run.loadPerRound.map((l) => l[0]));
  const names: Partial<Record<Key, string>> = { kaRps: "keep-alive req/s", closeRps: "connection-per-request req/s", upBps: "upload", downBps: "download" };
  const spreads = measured
    .flatMap((s) => (["kaRps", "closeRps", "upBps", "downBps"] as Key[]).map((k) => ({ what: `${s.label} ${names[k]}`, pct: spreadPercent(s, k) })))
    .filter((x): x is { what: string; pct: number } => x.pct !== null)
    .sort((a, b) => b.pct - a.pct);
  const worstSpread = spreads.length ? spreads[0]!.pct : 0;
  const worstWhat = spreads.length ? ` (${spreads[0]!.what})` : "";
  const typical = spreads.length ? spreads[spreads.length >> 1]!.pct : 0;
  const cores = Number(/x (\d+)$/.exec(run.cpu)?.[1] ?? 0);
  const busy = run.loadBefore[0] >= 1 || worstSpread > 20;
  p(
    busy
      ? `**The figures are noisy.** The machine has ${cores || "few"} cores, and client, director, servers and the kernel's ` +
          "forwarding all share them; other work was running (1-minute load average up to " +
          `${maxLoad.toFixed(2)} during the run, of which the benchmark itself adds about 2). The spread of a rate over the ` +
          `rounds (highest minus lowest, over the median) is ${typical.toFixed(0)} % for the typical figure and up to ` +
          `${worstSpread.toFixed(0)} %${worstWhat}. Read the medians as orders of magnitude and the ratios (taken within the ` +
          "same rounds) as the comparison; a difference of less than about a third between two systems is within the noise."
      : `The machine has ${cores || "few"} cores shared by client, director, servers and the kernel's forwarding: ` +
          "absolute figures are low, the ratios (taken within the same rounds) are the comparison. The widest spread of a rate " +
          `over the rounds is ${worstSpread.toFixed(0)} % of its median${worstWhat}.`,
    "",
  );

  p("## Set-up", "");
  p(
    "Each system gets its own lab (docs/lab.md: client, director, RS1, RS2, each a network namespace, two bridges), all",
    "built before the first measurement and torn down at the end (or on an error or Ctrl-C). The real servers run",
    "nginx-light (`/` answers `RS1\\n`) and `iperf3 -s`.",
    "",
  );
  for (const s of run.systems) {
    p(`- **${s.label}**: ${s.unavailable ?? s.description}${s.error ? ` — **set-up failed**: ${s.error}` : ""}`);
  }
  p("");

  p("## Results", "");
  p(
    "Median over the rounds in bold, [lowest–highest] round after it. Latencies are wrk's percentiles of the same run",
    "(the spread shown is that of p99).",
    "",
  );
  p(`| metric | ${run.systems.map((s) => s.label).join(" | ")} |`);
  p(`|---|${run.systems.map(() => "---:").join("|")}|`);
  for (const row of ROWS) p(`| ${row.label.replace(/^ {2}/, "&nbsp;&nbsp;")} | ${run.systems.map((s) => cell(s, row)).join(" | ")} |`);
  p("");
  const errs = measured.flatMap((s) => {
    const ka = values(s, "kaErrors").reduce((a, b) => a + b, 0);
    const cl = values(s, "closeErrors").reduce((a, b) => a + b, 0);
    const failed = s.rounds.flatMap((r) => r.errors.map((e) => `round ${r.round}: ${e}`));
    return [
      ...(ka + cl > 0
        ? [`${s.label}: wrk reported ${ka} errors keep-alive, ${cl} connection-per-request (connect, read, write, status, timeout together)`]
        : []),
      ...failed.map((f) => `${s.label}: ${f}`),
    ];
  });
  p(errs.length ? "Errors and failed measurements:" : "No wrk errors and no failed measurement in any round.", "");
  for (const e of errs) p(`- ${e}`);
  if (errs.length) p("");
  const stalls = measured.flatMap((s) => s.rounds.flatMap((r) => (r.stalls ?? []).map((st) => ({ s, r, st }))));
  const traps = measured.flatMap((s) => s.rounds.filter((r) => (r.timeWait ?? 0) > 0).map((r) => ({ s, r })));
  if (stalls.length === 0 && traps.length === 0) {
    p("Stall watchdog: no measurement went 2 s without progress, and no TIME_WAIT socket sat in a director's kernel before an lvs-wasm measurement.", "");
  } else {
    p("Stall watchdog (no packet reached the real servers for 2 s; the full snapshot of lvsd's and the kernel's counters is in bench/out/system.json):", "");
    for (const { s, r, st } of stalls) {
      p(
        `- ${s.label}, round ${r.round}, ${st.measurement}: stalled ${st.stalledForS} s at ${st.atS} s; TIME_WAIT sockets in the director ${st.timeWaitSockets}` +
          `${st.tunDrops === undefined ? "" : `; TUN queue drops so far ${group(st.tunDrops)}`}`,
      );
    }
    for (const { s, r } of traps)
      p(`- ${s.label}, round ${r.round}: ${r.timeWait} TIME_WAIT sockets in the director's kernel before its measurements (the early-demux trap)`);
    p("");
  }

  p("## Ratios", "");
  p("Ratio of the medians in bold; [lowest–highest] of the per-round ratios (same round, so the same load) after it.", "");
  const ratioRows: Array<[string, Key]> = [
    ["HTTP keep-alive req/s", "kaRps"],
    ["HTTP connection-per-request req/s", "closeRps"],
    ["bulk client -> server", "upBps"],
    ["bulk server -> client", "downBps"],
    ["UDP 64 B datagrams/s", "udpPps"],
    ["HTTP keep-alive req/s, many connections", "manyKaRps"],
    ["bulk client -> server, several streams", "manyUpBps"],
  ];
  const oursMeasured = ours.filter((s) => !s.unavailable && !s.error);
  if (oursMeasured.length === 0) {
    p("No lvs-wasm director was measured in this run.", "");
  } else {
    p(`| metric | ${oursMeasured.map((s) => `${s.label} / HAProxy | ${s.label} / router`).join(" | ")} |`);
    p(`|---|${oursMeasured.map(() => "---:|---:").join("|")}|`);
    for (const [label, key] of ratioRows) {
      const cells = oursMeasured.map((s) => `${key === "udpPps" ? "n/a" : fmtRatioCell(ratio(s, haproxy, key))} | ${fmtRatioCell(ratio(s, router, key))}`);
      p(`| ${label} | ${cells.join(" | ")} |`);
    }
    p("");
  }

  const before = by.get("nat-plain");
  const afterSystems = [by.get("nat"), by.get("nat-q")].filter((x): x is SystemRecord => !!x && !x.unavailable && !x.error);
  if (before && !before.unavailable && !before.error && afterSystems.length > 0) {
    p("## What offloads and the queue bought (NAT, before and after in the same rounds)", "");
    p(
      `Ratios against **${before.label}** (the NAT director as it was: no virtio-net header, so the kernel cuts every`,
      "super-packet to the 1500-byte MTU before the device, and the kernel's txqueuelen of 500), measured in the same rounds.",
      "",
    );
    p(`| metric | ${afterSystems.map((x) => `${x.label} / before`).join(" | ")} |`, `|---|${afterSystems.map(() => "---:").join("|")}|`);
    for (const [label, key] of [
      ["HTTP keep-alive req/s", "kaRps"],
      ["HTTP connection-per-request req/s", "closeRps"],
      ["bulk client -> server", "upBps"],
      ["bulk server -> client", "downBps"],
      ["UDP 64 B datagrams/s", "udpPps"],
    ] as Array<[string, Key]>) {
      p(`| ${label} | ${afterSystems.map((x) => fmtRatioCell(ratio(x, before, key))).join(" | ")} |`);
    }
    p("");
    const sum = (x: SystemRecord, k: Key) => values(x, k).reduce((a, b) => a + b, 0);
    p(
      "Packets the kernel dropped at the TUN device's queue toward the director, summed over the rounds " +
        "(keep-alive / connection per request / upload / download / UDP), and TCP retransmits of the bulk runs (up / down):",
      "",
    );
    for (const x of [before, ...afterSystems]) {
      p(
        `- ${x.label}: drops ${(["kaDrops", "closeDrops", "upDrops", "downDrops", "udpDrops"] as Key[]).map((k) => group(sum(x, k))).join(" / ")}; ` +
          `retransmits ${group(sum(x, "upRetr"))} / ${group(sum(x, "downRetr"))}`,
      );
    }
    p("");
    p(
      "How to read it: a larger queue alone removes the bulk runs' drops and with them the retransmissions, but not the",
      "limit, which is the director's cost per packet (a system call and an FFI call each way, on a JavaScript thread).",
      "Offloads divide the packets of a bulk flow by about 40 (64 KB per read instead of 1.5 KB), which is what moves",
      "throughput. The UDP runs are a flood of 64-byte datagrams faster than the director reads: they overflow any queue,",
      "by design of the measurement, and offloads do not apply to them.",
      "",
    );
  }

  p("## Against the bars", "");
  if (oursMeasured.length === 0) {
    p("No lvs-wasm director was measured in this run: no comparison.", "");
  } else {
    const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
    const nat = oursMeasured.find((s) => s.id === "nat");
    if (nat) {
      const r0 = (b: SystemRecord | undefined, k: Key) => fmtRatio(ratio(nat, b, k)?.ofMedians ?? NaN);
      const range = (b: SystemRecord | undefined, k: Key) => {
        const pr = ratio(nat, b, k)?.perRound ?? [];
        return pr.length > 1 ? ` (rounds ${fmtRatio(Math.min(...pr))}–${fmtRatio(Math.max(...pr))})` : "";
      };
      const u = values(nat, "udpPps");
      p(
        "In short: lvs-wasm NAT, one JavaScript thread over a TUN device with offloads, against HAProxy: " +
          `${r0(haproxy, "kaRps")} keep-alive${range(haproxy, "kaRps")}, ${r0(haproxy, "closeRps")} connection per request` +
          `${range(haproxy, "closeRps")} (bar 1.2x), bulk ${r0(haproxy, "upBps")} up and ${r0(haproxy, "downBps")} down; against the kernel router: ` +
          `${r0(router, "kaRps")} / ${r0(router, "closeRps")} for requests (bar 0.8x), ${r0(router, "upBps")}${range(router, "upBps")} up and ` +
          `${r0(router, "downBps")}${range(router, "downBps")} down (bar 0.8x). Small UDP datagrams: ` +
          `${u.length ? fmtRate(median(u)) : "?"} per second received (${r0(router, "udpPps")} of the router's; bar 0.9x). ` +
          "The targets are judged one by one below and in the limits that follow." +
          (maxLoad > 2 * Math.max(1, cores)
            ? ` **Caveat:** the 1-minute load average reached ${maxLoad.toFixed(1)} on ${cores || "few"} cores during this run (other ` +
              "work on the machine), so every system, the kernel router included, was starved of CPU and the request rates swing " +
              'from round to round: a "met" on a request rate below is not evidence, only the bulk ratios (each a large, ' +
              "steady effect within a round) are."
            : ""),
        "",
      );
    }
    p(
      "The bars the project will be held to next, from this run's medians (the bulk bar is for NAT; DR and TUN are shown",
      "for comparison: their replies, the bulk of `-R`, do not pass through the balancer):",
      "",
    );
    p(`| bar | ${oursMeasured.map((s) => s.label).join(" | ")} |`, `|---|${oursMeasured.map(() => "---").join("|")}|`);
    const rowOf = (label: string, f: (s: SystemRecord) => string) => p(`| ${label} | ${oursMeasured.map(f).join(" | ")} |`);
    const r = (s: SystemRecord, b: SystemRecord | undefined, k: Key) => ratio(s, b, k)?.ofMedians ?? NaN;
    rowOf("request rates >= 1.2x HAProxy", (s) => {
      const ka = r(s, haproxy, "kaRps"),
        cl = r(s, haproxy, "closeRps");
      return `keep-alive ${fmtRatio(ka)}, per request ${fmtRatio(cl)}: ${verdict(ka >= 1.2 && cl >= 1.2)}`;
    });
    rowOf("request rates >= 0.8x the kernel router", (s) => {
      const ka = r(s, router, "kaRps"),
        cl = r(s, router, "closeRps");
      return `keep-alive ${fmtRatio(ka)}, per request ${fmtRatio(cl)}: ${verdict(ka >= 0.8 && cl >= 0.8)}`;
    });
    rowOf("bulk >= HAProxy (both ways)", (s) => {
      const up = r(s, haproxy, "upBps"),
        dn = r(s, haproxy, "downBps");
      return `up ${fmtRatio(up)}, down ${fmtRatio(dn)}: ${verdict(up >= 1 && dn >= 1)}`;
    });
    rowOf("... with large frames kept whole", (s) => {
      const c = s.counters as {
        gso?: { received?: number; receivedBytes?: number; sent?: number };
        io?: { gso?: { received?: number; receivedBytes?: number; sent?: number } };
        director?: { gsoCut?: number };
      } | null;
      const g = c?.gso ?? c?.io?.gso;
      if (s.id === "dr" && !g?.received) return "no: AF_PACKET frames are at most the 1500-byte MTU (GRO off), the client's TSO is off: **missed**";
      if (!g?.received) return "no: the TUN device has no offloads, the kernel cuts every GSO/GRO frame to the 1500-byte MTU before we see it: **missed**";
      const avg = g.receivedBytes && g.received ? ` of ${group(Math.round(g.receivedBytes / g.received))} bytes on average` : "";
      const cut = c?.director?.gsoCut ? `; ${group(c.director.gsoCut)} cut into segments here (tunnel)` : "";
      const out = g.sent ? `, ${group(g.sent)} out whole` : "";
      return `yes: ${group(g.received)} GSO super-packets in${avg}${out}${cut}: met`;
    });
    rowOf("1,000,000 small UDP datagrams/s", (s) => {
      const v = values(s, "udpPps");
      const m = v.length ? median(v) : NaN;
      return Number.isFinite(m) ? `${fmtRate(m)} received (${(m / 1e4).toFixed(1)} %): ${verdict(m >= 1e6)}` : "not measured";
    });
    p("");
    for (const s of oursMeasured) {
      type Dir = { received?: number; forwarded?: number; sendFailures?: number; drops?: Record<string, number>; batches?: number };
      const c = s.counters as {
        gso?: { received?: number; sent?: number };
        io?: { gso?: { received?: number; sent?: number } };
        director?: Dir;
        connections?: number;
        device?: { txqlen?: number; tx?: Record<string, number> } | null;
        agents?: Array<{ decapsulated?: number; dropped?: number; writeFailures?: number } | null>;
      } | null;
      if (!c?.director) continue;
      const d = c.director;
      const drops =
        Object.entries(d.drops ?? {})
          .map(([k, v]) => `${k} ${group(v)}`)
          .join(", ") || "none";
      const perBatch = d.batches ? (d.received ?? 0) / d.batches : 0;
      const dev = c.device?.tx
        ? `; the kernel dropped ${group(c.device.tx.dropped ?? 0)} packets at the TUN device's queue toward us (txqueuelen ${c.device.txqlen ?? "?"})`
        : "";
      const agents = c.agents?.length
        ? `; decap agents: ${c.agents.map((a, i) => (a ? `RS${i + 1} ${group(a.decapsulated ?? 0)} decapsulated, ${group(a.dropped ?? 0)} dropped, ${group(a.writeFailures ?? 0)} not taken by its device` : `RS${i + 1} no answer`)).join("; ")}`
        : "";
      const g = c.gso ?? c.io?.gso;
      const gso = g?.received ? `; ${group(g.received)} of the packets were GSO super-packets in${g.sent ? `, ${group(g.sent)} out` : ""}` : "";
      p(
        `${s.label} counters over the whole run (warm-up included): ${group(d.received ?? 0)} packets received in ${group(d.batches ?? 0)} batches ` +
          `(${perBatch.toFixed(1)} per batch on average), ${group(d.forwarded ?? 0)} forwarded, ${group(d.sendFailures ?? 0)} not taken by the adapter, ` +
          `drops: ${drops}; ${group(c.connections ?? 0)} connection records live at the end${gso}${dev}${agents}.`,
        "",
      );
    }
  }

  p("## What limits the numbers", "");
  p(
    "- **The kernel's work per packet, charged to our writes.** A TUN device has no recvmmsg/sendmmsg: every packet is",
    "  one `read(2)` into its slot and one `write(2)` out of it, each a koffi call. The profile",
    "  ([docs/benchmarks/packet-path.md](benchmarks/packet-path.md)) puts 85–90 % of the NAT director's CPU in the kernel,",
    "  and most of it is not the cost of entering system calls: a write into a TUN device runs the stack's forwarding",
    "  (routing, bridge, veth, and the far side's TCP) in our thread. JavaScript and wasm are 0.4–0.6 µs of the about",
    "  3 µs a small packet costs; `process()` itself 80–300 ns (docs/benchmarks/datapath.md). io_uring (one system",
    "  call per batch) takes 15–25 % off the CPU per packet when batches are full: 1.2–1.5x end to end on a quiet",
    '  machine, nothing measurable on a loaded one (the "NAT, io_uring" system). Every packet of a NAT flow crosses the',
    "  director's kernel twice (forwarded into the device, then routed again after we write it back), in both directions.",
  );
  p(
    "- **Large frames.** With offloads (`IFF_VNET_HDR` + `TUNSETOFFLOAD`), a bulk TCP flow reaches the director as",
    "  GSO super-packets of up to 64 KB and leaves the same way: one read, one rewrite and one write per 40-odd",
    '  segments (docs/io.md). Without them (the "before" system), the kernel cuts every frame to 1500 bytes first, and',
    "  each of those costs two system calls. The client's and the servers' kernels still segment and reassemble on",
    "  their side of the veths, and the director namespace's kernel routes every super-packet twice (into the device,",
    "  and again after we write it back).",
  );
  p(
    "- **The queue at our door.** A TUN device's queue is a ring of txqueuelen packets that the kernel never holds",
    "  back for (it drops what does not fit, counted as tx_dropped); the qdisc above it never fills. Without offloads",
    "  a TCP burst of a whole window, cut into 1500-byte packets, overflows 500 entries while the director is busy with",
    "  one batch: every drop is a lost segment and a retransmission. Queue drops per measurement are in the per-round",
    "  table below.",
  );
  p(
    "- **One thread on a 2-core machine.** The director is one JavaScript thread; wrk, nginx, iperf3 and the kernel's",
    "  softirq work share the same two cores, so every CPU cycle the director spends is taken from the client or the",
    "  servers (HAProxy is in the same position, the kernel router much less so). lvsd runs one data-plane worker per",
    "  core (`lvsd --workers N`, multi-queue TUN and AF_PACKET fanout); the directors measured here are one thread each, as",
    "  a 2-core machine that also runs the client and the servers has no core to give a second worker",
    "  (docs/benchmarks/workers.md measures 1 against 2, and models more cores).",
  );
  p(
    "- **Small batches under request/response load.** With 32 connections, few packets are queued when the loop wakes",
    "  (the per-batch averages above include the bulk and UDP runs, where batches fill): the per-batch costs (poll on libuv's thread pool when idle,",
    "  `setImmediate` between batches, the `process()` call) are paid for a handful of packets, which shows in latency.",
  );
  p(
    "- **Connection per request** adds connection-table work per flow (scheduling, a new record, IPVS's TCP state",
    "  machine) but that is small next to the per-packet system calls: each short connection is about 8 packets through",
    "  the director.",
  );
  p(
    "- **DR and TUN** halve the director's work (replies bypass it) and DR moves batches with one `recvmmsg`/`sendmmsg`",
    "  per batch; but in this lab the director is also the real servers' gateway, so their replies still cross the",
    "  director namespace's kernel, and TUN adds the real-server agent (another user-space hop, one read and one write",
    "  per packet) on the real servers' cores. TUN's upload is the weakest figure: no virtio-net header describes TCP",
    "  inside IP-in-IP, so every client super-packet is cut here into 40-odd segments, each encapsulated and written",
    "  with its own system call, and the agent reads and writes each again. DR keeps the client's frames whole (AF_PACKET",
    "  with `PACKET_VNET_HDR`, the client's TSO on).",
  );
  p("");
  p(
    "The next steps that move these numbers, in order: workers on a machine with cores to spare; io_uring as lvsd's",
    'default TUN path (`lvsd --io-uring` today, opt-in; "What fewer system calls bought" below); less kernel work per packet (AF_XDP: no sk_buff on receive,',
    "see docs/benchmarks/packet-path.md); for GUE tunnels, the UDP-tunnel",
    "GSO type of newer kernels (`VIRTIO_NET_HDR_GSO_UDP_TUNNEL_*`, `TUN_F_UDP_TUNNEL_GSO`, Linux 6.17) so that tunnelled",
    "super-packets need not be cut here; a quiet machine to measure on.",
    "",
  );

  renderDataPlaneTargets(by, p);

  p("## Per packet: where the time goes", "");
  p(
    "From the profile of the NAT director in [docs/benchmarks/packet-path.md](benchmarks/packet-path.md) (2026-12-06,",
    "`bench:system --profile`, `perf record`, and `bench/io.bench.ts`, which drains a queue of 200,000 small packets",
    "with nothing else running). Per small packet through the NAT loop, CPU of the director process:",
    "",
    "| part | per packet | share of the director's CPU samples (perf, keep-alive / UDP 64 B) |",
    "|---|---:|---:|",
    "| receive: `read(2)` into a slot (the kernel's one copy in) | about 1.0 µs | TUN device and copies: 7 % / 15 % |",
    "| write back: `write(2)`, and the kernel routing it on (bridge, veth, the far side's TCP) in our thread | about 1.5 µs | routing, bridge, veth: 17 % / 27 %; far-side TCP / UDP: 10 % / 3 % |",
    "| sk_buff allocation and freeing | (in the above) | 9 % / 10 % |",
    "| wake-ups: poll on libuv's pool, futex, epoll (per batch) | 0.5–3 system calls per packet | context switches: 24 % / 14 % |",
    "| JavaScript (director loop, adapters) and wasm (`process()`) | 0.4–0.6 µs | JIT code 4–5 %; node runtime 5–9 % |",
    "| copies in JavaScript | none: slots are wasm memory, iovecs point into them | |",
    "",
    "System calls: 2 per packet (one read, one write) plus one empty read and a poll per wake-up (2.4–3 per packet under",
    "request / response, 4–6 per GSO super-packet under bulk). The kernel's work, not the calls' entry cost, is 85–90 % of the director's CPU.",
    "Idle: in the profiled runs the director's main thread waited for packets 32–77 % of the time (the client, the",
    "servers and the kernel's forwarding on the same 2 cores were the bottleneck, not the director's loop).",
    "",
  );
  renderVariantGains(by, p);
  renderProfiles(measured, p);

  p("## Per round", "");
  p("TUN queue drops: packets the kernel dropped at the director's TUN device queue during each measurement (keep-alive / close / up / down / UDP).", "");
  p(
    "| system | round | keep-alive req/s | close req/s | up Gbit/s | down Gbit/s | UDP received/s | many connections req/s | several streams up Gbit/s | TUN queue drops |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const s of measured) {
    for (const r of s.rounds) {
      const f = (v: number | undefined, fmt: (n: number) => string) => (typeof v === "number" ? fmt(v) : "—");
      p(
        `| ${s.label} | ${r.round} | ${f(r.kaRps, fmtRate)} | ${f(r.closeRps, fmtRate)} | ${f(r.upBps, fmtGbit)} | ${f(r.downBps, fmtGbit)} | ${!s.rounds.some((x) => x.udpPps !== undefined) ? "n/a" : f(r.udpPps, fmtRate)} | ${f(r.manyKaRps, fmtRate)} | ${f(r.manyUpBps, fmtGbit)} | ${r.kaDrops === undefined ? "—" : [r.kaDrops, r.closeDrops, r.upDrops, r.downDrops, r.udpDrops].map((x) => (x === undefined ? "—" : group(x))).join(" / ")} |`,
      );
    }
  }
  p("");
  p("Raw figures of the run (every wrk and iperf3 result, director counters): `bench/out/system.json` (not committed).", "");
  return out.join("\n");
}

/** --profile: per system and measurement, where the director's main thread and its system calls went, per packet. */
function renderProfiles(systems: SystemRecord[], p: (...lines: string[]) => void): void {
  const rows = systems.flatMap((s) => s.rounds.flatMap((r) => Object.entries(r.profiles ?? {}).map(([id, rec]) => ({ s, r, id, rec }))));
  if (rows.length === 0) return;
  p("## Where a packet's time goes (--profile)", "");
  p(
    "Per measurement, the director process's CPU time (process.cpuUsage(), all threads: what it cost, whatever the load),",
    "its main thread sampled by V8's profiler (every 250 µs: wall time, so a thread preempted inside a call counts as in it) and its system calls counted by",
    "`perf stat` on the syscall tracepoints (all threads of the process), divided by the packets it received meanwhile.",
    "busy = the main thread's time outside the event loop's idle wait; native = functions without JavaScript source:",
    "koffi's calls into libc with the system call inside them, and V8 builtins; program = V8 itself. The profiler costs",
    "the director some speed, so read shares and counts, not rates, from this table.",
    "",
  );
  p(
    "| system | round | measurement | packets | CPU µs/packet: user + system | main thread busy µs/packet | wasm | JS | native | GC + program | idle share | system calls/packet | by call (per packet) |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  );
  for (const { s, r, id, rec } of rows) {
    const n = Math.max(1, rec.packets);
    const us = (ms: number) => ((ms * 1000) / n).toFixed(2);
    const pr = rec.profile;
    const js = Object.values(pr.js).reduce((a, b) => a + b, 0);
    const calls = rec.syscalls.all ?? 0;
    const heavy = Object.entries(rec.syscalls)
      .filter(([name, x]) => name !== "all" && x > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, x]) => `${name} ${(x / n).toFixed(2)}`)
      .join("; ");
    p(
      `| ${s.label} | ${r.round} | ${id} | ${group(rec.packets)} | ${us(rec.cpuUserMs)} + ${us(rec.cpuSystemMs)} | ${us(pr.totalMs - pr.idleMs)} | ${us(pr.wasmMs)} | ${us(js)} | ${us(pr.nativeMs)} | ${us(pr.gcMs + pr.programMs)} | ${pr.totalMs > 0 ? Math.round((100 * pr.idleMs) / pr.totalMs) : 0} % | ${(calls / n).toFixed(2)} | ${heavy} |`,
    );
  }
  p("");
  const withPerf = rows.filter((x) => x.rec.perf);
  if (withPerf.length > 0) {
    p(
      "The same measurements seen by `perf record` (the director process, kernel symbols included): percent of its CPU",
      "samples. forwarding = routing, bridge, veth, device queues and the softirq loop; far-side transport = the TCP / UDP",
      "of the host on the other side of the veth, run in our softirq; TUN = the device and the copies in and out.",
      "",
      "| system | round | measurement | kernel | forwarding | far-side transport | TUN | sk_buffs | switches, wake-ups | JS + wasm (JIT) | node, libc, koffi |",
      "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const { s, r, id, rec } of withPerf) {
      const k = rec.perf!;
      p(
        `| ${s.label} | ${r.round} | ${id} | ${k.kernel} % | ${k.forwarding} % | ${k.transport} % | ${k.tun} % | ${k.skb} % | ${k.switches} % | ${k.jit} % | ${k.runtime} % |`,
      );
    }
    p("");
  }
  const first = rows[0]!;
  p(
    `Heaviest functions of the main thread (${first.s.label}, ${first.id}, round ${first.r.round}): ` +
      first.rec.profile.top.map((f) => `${f.name} (${f.kind}) ${((f.ms * 1000) / Math.max(1, first.rec.packets)).toFixed(2)} µs/packet`).join("; ") +
      ".",
    "",
  );
}

/** Ratios of a system variant against the system it varies, in the same rounds (io_uring, qdisc bypass). */
function renderVariantGains(by: Map<SystemId, SystemRecord>, p: (...lines: string[]) => void): void {
  const pairs: Array<[SystemId, SystemId, string]> = [
    ["nat-uring", "nat", "io_uring against read / write per packet (NAT, TUN with offloads)"],
    ["dr-bypass", "dr", "PACKET_QDISC_BYPASS against the qdisc path (DR, AF_PACKET)"],
  ];
  const live = (x: SystemRecord | undefined): x is SystemRecord => !!x && !x.unavailable && !x.error && x.rounds.length > 0;
  const shown = pairs.filter(([a, b]) => live(by.get(a)) && live(by.get(b)));
  if (shown.length === 0) return;
  p("## What fewer system calls bought (same rounds)", "");
  p("Ratio of the medians in bold; [lowest–highest] of the per-round ratios after it.", "");
  p(`| metric | ${shown.map(([, , label]) => label).join(" | ")} |`, `|---|${shown.map(() => "---:").join("|")}|`);
  for (const [label, key] of [
    ["HTTP keep-alive req/s", "kaRps"],
    ["  keep-alive latency p99 (lower is better)", "kaP99"],
    ["HTTP connection-per-request req/s", "closeRps"],
    ["bulk client -> server", "upBps"],
    ["bulk server -> client", "downBps"],
    ["UDP 64 B datagrams/s", "udpPps"],
    ["keep-alive, many connections, req/s", "manyKaRps"],
    ["bulk, several streams", "manyUpBps"],
  ] as Array<[string, Key]>) {
    const cells = shown.map(([a, b]) => (values(by.get(a)!, key).length ? fmtRatioCell(ratio(by.get(a), by.get(b), key)) : "not run"));
    if (cells.every((c) => c === "not run")) continue;
    p(`| ${label.replace(/^ {2}/, "&nbsp;&nbsp;")} | ${cells.join(" | ")} |`);
  }
  p("");
}

/**
 * Issue 13's targets, one row each: the measured ratio of this run for the NAT director
 * (read / write, and io_uring where it was measured), met or not, and, where not, why (the
 * profile) and what was tried. The reasons are this project's findings, not computed.
 */
function renderDataPlaneTargets(by: Map<SystemId, SystemRecord>, p: (...lines: string[]) => void): void {
  const router = by.get("router");
  const haproxy = by.get("haproxy");
  const nat = by.get("nat");
  if (!nat || !router || !haproxy) return;
  const uring = by.get("nat-uring");
  const dr = by.get("dr");
  const tun = by.get("tun");
  const r = (a: SystemRecord | undefined, b: SystemRecord | undefined, k: Key) => ratio(a, b, k)?.ofMedians ?? NaN;
  const f = (x: number) => (Number.isFinite(x) ? fmtRatio(x) : "not measured");
  const met = (ok: boolean) => (ok ? "met" : "**missed**");
  const both = (a: SystemRecord | undefined, k: Key, bar1: number, bar2: number) => {
    const h = r(a, haproxy, k);
    const t = r(a, router, k);
    return { text: `${f(h)} HAProxy, ${f(t)} router`, ok: h >= bar1 && t >= bar2 };
  };
  const cell = (x: { text: string; ok: boolean }) => `${x.text}: ${met(x.ok)}`;
  const ofRouter = (a: SystemRecord | undefined, keys: Key[], bar: number) => {
    const xs = keys.map((k) => r(a, router, k));
    return { text: xs.map(f).join(" / "), ok: xs.every((x) => x >= bar) };
  };
  const p99 = (a: SystemRecord | undefined) => {
    const v = a ? values(a, "kaP99") : [];
    const h = values(haproxy, "kaP99");
    if (v.length === 0 || h.length === 0) return { text: "not measured", ok: false };
    return { text: `${fmtMs(median(v))} ms against ${fmtMs(median(h))} ms`, ok: median(v) <= median(h) };
  };
  const REQUESTS =
    "about 3 µs of director CPU per small packet, 85–90 % of it the kernel's forwarding run inside our read and write (the profile below); HAProxy pays one pass through the stack where a NAT packet pays two. Tried: batches of 256, io_uring (one call per batch), workers (docs/benchmarks/workers.md: 1.14x with 2 on these 2 shared cores)";
  const rows: Array<[string, string, string, string]> = [
    [
      "NAT keep-alive req/s >= 1.2x HAProxy and >= 0.8x the router",
      cell(both(nat, "kaRps", 1.2, 0.8)),
      uring ? cell(both(uring, "kaRps", 1.2, 0.8)) : "—",
      REQUESTS,
    ],
    [
      "NAT connection per request >= 1.2x HAProxy and >= 0.8x the router",
      cell(both(nat, "closeRps", 1.2, 0.8)),
      uring ? cell(both(uring, "closeRps", 1.2, 0.8)) : "—",
      `${REQUESTS}; a short connection is about 8 packets, scheduling and the state machine are under 0.3 µs of them`,
    ],
    [
      "NAT bulk, each direction, >= 0.8x the router",
      cell(ofRouter(nat, ["upBps", "downBps"], 0.8)),
      uring ? cell(ofRouter(uring, ["upBps", "downBps"], 0.8)) : "—",
      "GSO super-packets kept whole (12x the no-offload director in the same rounds), but each crosses the director's kernel twice (into the device, routed again after our write). Tried: offloads, queue 4096 (no more drops in bulk), io_uring",
    ],
    [
      "DR and TUN bulk upload, client TSO on, >= 0.9x the router",
      `DR ${cell(ofRouter(dr, ["upBps"], 0.9))}; TUN ${cell(ofRouter(tun, ["upBps"], 0.9))}`,
      "—",
      "DR: frames whole through AF_PACKET with PACKET_VNET_HDR and one recvmmsg / sendmmsg per batch; the director is also the real servers' gateway here. TUN: no virtio-net header describes TCP inside IP-in-IP, so each super-packet is cut here into 40-odd segments, and the real servers decapsulate in user space (this kernel has no ipip module). Tried: qdisc bypass (no gain); next: the UDP-tunnel GSO type of Linux 6.17",
    ],
    ["DR request rates >= 0.9x the router", cell(ofRouter(dr, ["kaRps", "closeRps"], 0.9)), "—", "as for NAT requests, halved: replies bypass the director"],
    [
      "UDP 64 B datagrams >= 0.9x the router",
      cell(ofRouter(nat, ["udpPps"], 0.9)),
      uring ? cell(ofRouter(uring, ["udpPps"], 0.9)) : "—",
      "a flood of packets no offload can merge: the per-packet cost above; io_uring gains most here",
    ],
    [
      "NAT p99 under keep-alive no worse than HAProxy's",
      cell(p99(nat)),
      uring ? cell(p99(uring)) : "—",
      "per-batch costs (the wake-up through libuv's pool, setImmediate between batches) fall on batches of a few packets under request / response load",
    ],
  ];
  p("## The data-plane targets (issue 13), judged on this run", "");
  p(
    "Each target with this run's ratio (of the medians; per-round spreads in the tables above), for the NAT director with",
    "read / write (lvsd's default) and with io_uring (`lvsd --io-uring`), and, where missed, why and what was tried. The core",
    "benchmarks (rewrite, schedulers, datapath) did not regress: docs/benchmarks/fnat-ab.md (A/B runs, every row 0.95x to 1.05x).",
    "",
    "| target | lvs-wasm NAT, read / write (DR and TUN rows: those directors) | NAT, io_uring | where missed: why, and what was tried |",
    "|---|---|---|---|",
  );
  for (const [target, a, b, why] of rows) p(`| ${target} | ${a} | ${b} | ${why} |`);
  p("");
}
