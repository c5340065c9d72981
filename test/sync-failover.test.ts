// A director pair in the namespace lab: client, two directors each running lvsd and
// keepalived's VRRP (`keepalived --vrrp`, Debian's 2.2), two real servers. keepalived holds
// the floating addresses (the clients' gateway, or the VIP itself in NAT, and the real
// servers' gateway) and its notify scripts switch lvsd's role with lvsadm (--start-daemon
// master|backup); the master's lvsd multicasts its connections to the backup's over the
// real-server segment. During a rate-limited download, an idle keep-alive connection and a
// stream of short connections, the master's lvsd and keepalived are SIGKILLed: the backup
// takes the addresses and forwards the synced flows at once. Reported: survived / total per
// kind and the gap in ms; the target is every established connection, and a gap within
// 3 x advert_int + 1 s. Then the master comes back and takes over again (preempt), losing
// no established connection either. In DR, in NAT, and in full NAT (the NAT lab, the real
// servers answering the pair's local address, which keepalived moves with the gateway).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createLab, labSkip, startHttpServer, type Lab, type LabProcess } from "./support/netns.js";
import { slowDownload } from "./support/slow-download.js";
import { disableTxChecksumOffload } from "../src/runtime/ethernet.js";
import { PcapLinkType, readPcap } from "../src/index.js";
import { tsharkDissect } from "./support/tshark.js";
import { ConnFlag, decodeMessage } from "../src/sync/index.js";
import { LVSADM_CLI, lvsdCounters, startLvsd, waitFor, waitForLvsdLog, type RunningLvsd } from "../src/demo/support.js";

const execFileAsync = promisify(execFile);
const skip = labSkip("keepalived", "tcpdump", "tshark");
const ADVERT_S = 0.2;
const BIG_MIB = 10;
/** The downloads' pace: BIG_MIB MiB last BIG_MIB seconds. */
const RATE = 1 << 20;
/** The downloads' client ports, reserved in the client (ip_local_reserved_ports): no short connection draws them. */
const DOWNLOAD_PORTS = [20001, 20002] as const;
const SYNC_ID = 7;
/** keepalived's preempt_delay for the returning master: it syncs as a backup first. */
const PREEMPT_DELAY_S = 5;
const GW_FRONT = "10.0.0.254";
const GW_BACK = "192.168.10.254";
/** Full NAT: the pair's local address, on the real servers' segment; it floats with GW_BACK. */
const LIP = "192.168.10.250";
type Mode = "dr" | "nat" | "fullnat";
type Director = "director" | "backup";

/** keepalived.conf of one director: both floating addresses move together (a sync group). */
function keepalivedConf(name: Director, frontAddress: string, dir: string, preemptDelay: number, backAddresses: readonly string[]): string {
  const priority = name === "director" ? 150 : 100;
  const instance = (id: string, vrid: number, dev: string, addresses: readonly string[]) => `
vrrp_instance ${id} {
  state BACKUP
  interface ${dev}
  virtual_router_id ${vrid}
  priority ${priority}
  advert_int ${ADVERT_S}
  preempt_delay ${preemptDelay}
  virtual_ipaddress {
    ${addresses.map((a) => `${a}/24 dev ${dev}`).join("\n    ")}
  }
}`;
  return `global_defs {
  router_id ${name}
  vrrp_version 3
  script_user root
}
vrrp_sync_group LVS {
  group {
    FRONT
    BACK
  }
  notify_master "${dir}/notify.sh master"
  notify_backup "${dir}/notify.sh backup"
  notify_fault "${dir}/notify.sh fault"
}
${instance("FRONT", 51, "eth0", [frontAddress])}
${instance("BACK", 52, "eth1", backAddresses)}
`;
}

/** The notify script docs/sync.md gives, with lvsadm bundled (node starts it in ~0.1 s). */
function notifyScript(lvsadm: string, socket: string, log: string): string {
  return `#!/bin/sh
export LVS_WASM_SOCKET=${socket}
L="${process.execPath} ${lvsadm}"
echo "$(date +%s%3N) $1 begin" >> ${log}
case "$1" in
  master) $L --start-daemon master --mcast-interface eth1 --syncid ${SYNC_ID}; $L --stop-daemon backup ;;
  backup|fault) $L --stop-daemon master; $L --start-daemon backup --mcast-interface eth1 --syncid ${SYNC_ID} ;;
esac
echo "$(date +%s%3N) $1" >> ${log}
`;
}

/** Short connections in a loop until the stop file appears: one line "t_ms ok" each. */
const SHORT_STREAM = `
import sys, time, os, http.client
host, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(stop):
    t = time.time()
    ok = 0
    try:
        c = http.client.HTTPConnection(host, 80, timeout=0.2)
        c.request("GET", "/")
        r = c.getresponse()
        ok = 1 if r.status == 200 and r.read().startswith(b"RS") else 0
        c.close()
    except Exception:
        pass
    print("%d %d" % (int(t * 1000), ok), flush=True)
    time.sleep(0.02)
`;

/** One keep-alive connection: a request, then one more on the same socket each time a go file appears. */
const KEEPALIVE = `
import sys, time, os, http.client
host, go, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection(host, 80, timeout=10)
c.request("GET", "/")
first = c.getresponse().read().decode().strip()
local = c.sock.getsockname()
print("first %s %s" % (first, local[1]), flush=True)
for k in range(1, rounds + 1):
    while not os.path.exists("%s%d" % (go, k)):
        time.sleep(0.05)
    try:
        c.request("GET", "/")
        body = c.getresponse().read().decode().strip()
        same = c.sock is not None and c.sock.getsockname() == local
        print("round%d %s %s" % (k, body, "same" if same else "reconnected"), flush=True)
    except Exception as e:
        print("round%d failed %r" % (k, e), flush=True)
`;

interface Pair {
  lab: Lab;
  dir: string;
  lvsadmBundle: string;
  lvsd: Record<Director, RunningLvsd | null>;
  keepalived: Record<Director, LabProcess | null>;
  vip: string;
  frontAddress: string;
  /** Full NAT on the NAT lab: the real servers see LIP, which floats with the gateway. */
  fullnat: boolean;
}

function notifyLog(p: Pair, d: Director): string[] {
  const f = join(p.dir, d, "notify.log");
  return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
}

async function startDirector(p: Pair, d: Director, preemptDelay: number): Promise<void> {
  const dir = join(p.dir, d);
  rmSync(dir, { recursive: true, force: true });
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rules = join(dir, "rules");
  const method = p.fullnat ? "--fullnat" : p.lab.mode === "nat" ? "-m" : "-g";
  const dests = p.lab.realServers.map((r) => `-a -t ${p.vip}:80 -r ${r.eth0.ipv4}:80 ${method} -w 1`);
  const pool = p.fullnat ? [`-P -t ${p.vip}:80 -z ${LIP}`] : [];
  writeFileSync(rules, [`-A -t ${p.vip}:80 -s rr`, ...dests, ...pool, ""].join("\n"));
  const adapters =
    p.lab.mode === "dr"
      ? ["--af-packet", "eth0", "--af-packet", "eth1", "--server-side", "eth1"]
      : ["--af-packet", "eth0", "--af-packet", "eth1", "--route", "192.168.10.0/24=eth1", "--route", "10.0.0.0/24=eth0"];
  // Full NAT: keepalived holds the LIP (its gratuitous ARP moves the real servers' replies);
  // hidden from the kernel as the VIP is, so that lvsd, not a kernel RST, answers its ports.
  const isolated = p.fullnat ? ["--isolate-vip", p.vip, "--isolate-vip", LIP] : ["--isolate-vip", p.vip];
  const lvsd = await startLvsd(p.lab, [...adapters, ...isolated, "--standby", "--sync-refresh", "1", "--rules", rules], { host: d });
  p.lvsd[d] = lvsd;
  for (const r of p.lab.realServers) await waitForLvsdLog(lvsd, new RegExp(`neighbour ${r.eth0.ipv4.replace(/\./g, "\\.")} is at`), 0, 10_000);
  writeFileSync(join(dir, "notify.sh"), notifyScript(p.lvsadmBundle, lvsd.socket, join(dir, "notify.log")));
  chmodSync(join(dir, "notify.sh"), 0o700);
  writeFileSync(join(dir, "keepalived.conf"), keepalivedConf(d, p.frontAddress, dir, preemptDelay, p.fullnat ? [GW_BACK, LIP] : [GW_BACK]));
  // A director that comes back after a crash starts as after a reboot: without the floating
  // addresses its killed keepalived left on the interfaces.
  for (const [address, dev] of [
    [p.frontAddress, "eth0"],
    [GW_BACK, "eth1"],
    [LIP, "eth1"],
  ]) {
    await p.lab.exec(d, "ip", ["addr", "del", `${address}/24`, "dev", dev], { allowFailure: true });
  }
  p.keepalived[d] = p.lab.spawn(d, "keepalived", [
    "--vrrp",
    "--dont-fork",
    "--log-console",
    "--use-file",
    join(dir, "keepalived.conf"),
    "--pid",
    join(dir, "keepalived.pid"),
    "--vrrp_pid",
    join(dir, "vrrp.pid"),
  ]);
}

/** SIGKILL to lvsd and to keepalived's process group (its VRRP child too): the director dies. */
async function killDirector(p: Pair, d: Director): Promise<void> {
  const l = p.lvsd[d];
  const k = p.keepalived[d];
  if (k && !k.hasExited) process.kill(-k.pid, "SIGKILL");
  if (l && !l.process.hasExited) process.kill(l.process.pid, "SIGKILL");
  await Promise.all([k?.exited, l?.process.exited]);
  p.lvsd[d] = null;
  p.keepalived[d] = null;
}

/** lvsadm (the bundle the notify scripts use: quicker to start than tsx) against a director. */
async function lvsadm(p: Pair, d: Director, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [p.lvsadmBundle, ...args], {
    env: { ...process.env, LVS_WASM_SOCKET: p.lvsd[d]!.socket },
    maxBuffer: 64 << 20,
  });
  return stdout;
}

/** Client ports of the ESTABLISHED connections a director's table holds for the VIP. */
async function establishedPorts(p: Pair, d: Director): Promise<Set<number>> {
  const out = await lvsadm(p, d, ["-Lcn"]);
  const ports = new Set<number>();
  for (const line of out.split("\n")) {
    const m = /^TCP\s+\S+\s+ESTABLISHED\s+[\d.]+:(\d+)\s/.exec(line);
    if (m) ports.add(Number(m[1]));
  }
  return ports;
}

/**
 * Acceptance: the master's sync messages, captured on the backup's wire, read by
 * Wireshark's own IPVS dissector: every field of the long connections matches the master's
 * table (lvsadm -Lcn), and every connection names the VIP and a configured real server.
 * Captures and lists now; returns the judgement, which runs tshark: call it after the
 * failover, so that tshark's start-up (seconds on a loaded machine) does not eat into the
 * download that must still be running when the master dies.
 */
async function captureSync(p: Pair, capture: LabProcess, pcap: string, longPorts: readonly number[]): Promise<() => void> {
  const table = await lvsadm(p, "director", ["-Lcn"]);
  // The keep-alive connection was synced before the capture began: wait for the table
  // refresh to send it again (our decoder only polls here; Wireshark judges below).
  const onWire = () => {
    const ports = new Set<number>();
    if (!existsSync(pcap)) return ports;
    for (const r of readPcap(readFileSync(pcap)).records) {
      try {
        for (const c of decodeMessage(r.data.subarray(14 + 20 + 8)).connections) ports.add(c.cport);
      } catch {
        /* a partly written frame */
      }
    }
    return ports;
  };
  await waitFor("the long connections on the wire", () => longPorts.every((x) => onWire().has(x)), 10_000);
  await capture.stop("SIGINT");
  // Short connections come and go; the long ones are ESTABLISHED in both listings.
  const later = await lvsadm(p, "director", ["-Lcn"]);
  const stillLong = new Set([...later.matchAll(/^TCP\s+\S+\s+ESTABLISHED\s+[\d.]+:(\d+)\s/gm)].map((m) => Number(m[1])));
  return () => judgeCapture(p, pcap, longPorts, table, later, stillLong);
}

function judgeCapture(p: Pair, pcap: string, longPorts: readonly number[], table: string, later: string, stillLong: ReadonlySet<number>): void {
  const frames = readPcap(readFileSync(pcap)).records.map((r) => r.data);
  assert.ok(frames.length > 0, "sync messages were captured on the backup's eth1");
  const dissected = tsharkDissect(PcapLinkType.Ethernet, frames, { decodeAs: ["udp.port==8848,ipvs"] });
  const rs = new Set(p.lab.realServers.map((r) => r.eth0.ipv4));
  const seen = new Map<number, Record<string, string>>();
  if (p.fullnat) {
    // Wireshark 4.0's IPVS dissector steps 36 bytes per connection whatever its size says,
    // so it misreads every connection after one that carries an option (the kernel's
    // sequence option too). Full NAT's carry the local address option: read them with our
    // decoder (checked against the kernel's struct layout in test/sync-fullnat.test.ts).
    for (const f of frames) {
      for (const c of decodeMessage(f.subarray(14 + 20 + 8)).connections) {
        const a = (b: Uint8Array) => [...b].join(".");
        assert.equal(a(c.vaddr), p.vip);
        assert.ok(rs.has(a(c.daddr)), `real server ${a(c.daddr)}`);
        assert.equal(c.local && a(c.local.address), LIP, "every full-NAT connection carries the pair's local address");
        seen.set(c.cport, {
          caddr: a(c.caddr),
          cport: String(c.cport),
          vaddr: a(c.vaddr),
          vport: String(c.vport),
          daddr: a(c.daddr),
          dport: String(c.dport),
          proto: `0x${c.protocol.toString(16).padStart(2, "0")}`,
          state: `0x${c.state.toString(16).padStart(4, "0")}`,
          "flags.v1": `0x${((c.flags & ~ConnFlag.Sync) >>> 0).toString(16).padStart(8, "0")}`,
          timeout: String(c.timeout),
        });
      }
    }
  }
  for (const f of p.fullnat ? [] : dissected) {
    assert.match(f.protocols, /ipvs/);
    const get = (k: string) => f.fields.get(k) ?? [];
    assert.equal(get("ip.dst")[0], "224.0.0.81");
    assert.equal(get("ipvs.syncid")[0], String(SYNC_ID));
    assert.equal(get("ipvs.version")[0], "1");
    const n = Number(get("ipvs.conncount")[0]);
    for (let i = 0; i < n; i++) {
      const c: Record<string, string> = {};
      for (const k of ["caddr", "cport", "vaddr", "vport", "daddr", "dport", "proto", "state", "flags.v1", "timeout"]) c[k] = get(`ipvs.${k}`)[i];
      assert.equal(c.vaddr, p.vip);
      assert.ok(rs.has(c.daddr), `real server ${c.daddr}`);
      seen.set(Number(c.cport), c);
    }
  }
  const fwd = p.lab.mode === "nat" ? "0x00000000" : "0x00000083"; // MASQ, or DROUTE | NOOUTPUT
  // Every field of the long connections; a short one that stayed ESTABLISHED and was synced
  // is checked too (one that closed before its third packet never reached the wire).
  let matched = 0;
  for (const line of table.split("\n")) {
    const m = /^TCP\s+\S+\s+ESTABLISHED\s+([\d.]+):(\d+)\s+([\d.]+):(\d+)\s+([\d.]+):(\d+)/.exec(line);
    if (!m || !stillLong.has(Number(m[2]))) continue;
    const long = longPorts.includes(Number(m[2]));
    const c = seen.get(Number(m[2]));
    if (!long && !c) continue;
    assert.ok(c, `${m[1]}:${m[2]} was on the wire`);
    assert.deepEqual(
      c,
      { caddr: m[1], cport: m[2], vaddr: m[3], vport: m[4], daddr: m[5], dport: m[6], proto: "0x06", state: "0x0001", "flags.v1": fwd, timeout: "900" },
      `connection ${m[1]}:${m[2]} as Wireshark read it from the wire`,
    );
    if (long) matched++;
  }
  assert.ok(
    matched === longPorts.length,
    `the long connections (client ports ${longPorts.join(", ")}) were on the wire, field for field (${matched} checked; ` +
      `ESTABLISHED in the first listing: ${longPorts.filter((x) => new RegExp(`^TCP\\s+\\S+\\s+ESTABLISHED\\s+[\\d.]+:${x}\\s`, "m").test(table))}, ` +
      `in the second: ${longPorts.filter((x) => stillLong.has(x))}, on the wire: ${longPorts.filter((x) => seen.has(x))})\n${table}\n${later}`,
  );
}

async function failover(mode: Mode): Promise<void> {
  const lab = await createLab({ mode: mode === "dr" ? "dr" : "nat", realServers: 2, backup: true, vipOnDirector: false });
  const dir = mkdtempSync(join(tmpdir(), "sync-failover-"));
  lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
  const lvsadmBundle = join(dir, "lvsadm.mjs");
  buildSync({ entryPoints: [LVSADM_CLI], bundle: true, platform: "node", format: "esm", outfile: lvsadmBundle, logLevel: "error" });
  const vip = lab.vip!.v4;
  // DR: the VIP is behind the directors (on the real servers' segment), reached through a
  // floating gateway. NAT: the VIP itself floats on the clients' segment.
  const frontAddress = mode === "dr" ? GW_FRONT : vip;
  const p: Pair = {
    lab,
    dir,
    lvsadmBundle,
    lvsd: { director: null, backup: null },
    keepalived: { director: null, backup: null },
    vip,
    frontAddress,
    fullnat: mode === "fullnat",
  };
  let download: ReturnType<Lab["exec"]> | undefined;
  try {
    if (mode === "dr") await lab.exec("client", "ip", ["route", "replace", "default", "via", GW_FRONT]);
    else await lab.exec("client", "ip", ["neigh", "del", vip, "dev", "eth0"]).catch(() => {});
    for (const r of lab.realServers) await lab.exec(r.name, "ip", ["route", "replace", "default", "via", GW_BACK]);
    // NAT over AF_PACKET: lvsd, not the kernel, forwards both ways.
    if (mode !== "dr") for (const d of ["director", "backup"] as const) lab.sysctl(d, "net.ipv4.ip_forward", 0);
    disableTxChecksumOffload(lab.ns("client"), "eth0");
    if (mode !== "dr") for (const r of lab.realServers) disableTxChecksumOffload(lab.ns(r.name), "eth0");
    await Promise.all(lab.realServers.map((r) => startHttpServer(lab, r.name, { bigMiB: BIG_MIB })));
    await startDirector(p, "director", 0);
    await startDirector(p, "backup", 0);
    await waitFor("the director becomes master", () => notifyLog(p, "director").some((l) => l.endsWith(" master")), 15_000);
    await waitFor("the backup becomes backup", () => notifyLog(p, "backup").some((l) => l.endsWith(" backup")), 15_000);
    await waitForLvsdLog(p.lvsd.director!, /active: forwarding/);
    assert.match(
      await lvsadm(p, "director", ["-L", "--daemon"]),
      /^master sync daemon \(mcast=eth1, syncid=7, maxlen=1472, group=224\.0\.0\.81, port=8848, ttl=1\)$/m,
    );
    assert.match(
      await lvsadm(p, "backup", ["-L", "--daemon"]),
      /^backup sync daemon \(mcast=eth1, syncid=7, maxlen=1472, group=224\.0\.0\.81, port=8848, ttl=1\)$/m,
    );

    // The traffic: short connections, one idle keep-alive connection, a slow download.
    const stop = join(dir, "stop");
    const go = join(dir, "go");
    const stream = lab.spawn("client", "/usr/bin/python3", ["-c", SHORT_STREAM, vip, stop]);
    const keepalive = lab.spawn("client", "/usr/bin/python3", ["-c", KEEPALIVE, vip, go, "2"]);
    const first = await keepalive.waitForOutput(/^first (RS\d) (\d+)$/m, 10_000);
    const keepalivePort = Number(first[2]);
    const expected = createHash("sha256")
      .update(Buffer.alloc(BIG_MIB << 20))
      .digest("hex");
    // Each download leaves from a client port of its own, so the tables can be searched for
    // exactly that connection. The lab's client draws ephemeral ports from 1024-65535: reserve
    // these two, or a short connection takes one first and the reader's bind fails (EADDRINUSE).
    lab.sysctl("client", "net.ipv4.ip_local_reserved_ports", DOWNLOAD_PORTS.join(","));
    const startDownload = (clientPort: number) => slowDownload(lab, "client", { host: vip, port: 80, path: "/big", rate: RATE, localPort: clientPort });
    /** Waits until both directors hold the long connections as ESTABLISHED: the keep-alive one and the download. */
    const synced = async (from: Director, to: Director, downloadPort: number, download: ReturnType<typeof slowDownload>) => {
      const long = [keepalivePort, downloadPort];
      try {
        await waitFor(
          `${to} to hold ${from}'s long connections (client ports ${long.join(", ")})`,
          async () => {
            const [a, b] = await Promise.all([establishedPorts(p, from), establishedPorts(p, to)]);
            return long.every((x) => a.has(x) && b.has(x));
          },
          10_000,
        );
      } catch (e) {
        const tables = await Promise.all([from, to].map(async (d) => `--- ${d} -Lcn:\n${await lvsadm(p, d, ["-Lcn"]).catch((x) => String(x))}`));
        console.log(tables.join("\n"));
        const settled = await Promise.race([download, new Promise((r) => setTimeout(() => r("(still running)"), 1000))]);
        console.log(`--- the download from client port ${downloadPort}: ${JSON.stringify(settled)}`);
        throw e;
      }
      return long;
    };
    /** Short-stream samples so far, and the longest outage around `at`. */
    const gapAround = (at: number) => {
      const samples = stream
        .output()
        .split("\n")
        .flatMap((l) => (/^\d+ [01]$/.test(l) ? [l.split(" ").map(Number) as [number, number]] : []));
      // The longest outage between 1 s before `at` and 10 s after: from the last successful
      // request before a run of failed ones to the first success after it. A span with no
      // failed request in it is no outage: a client the loaded machine starved sent nothing.
      let lastOk: number | undefined;
      let failedSince: number | undefined;
      let gapMs = 0;
      let gapFrom = 0;
      const outage = (until: number) => {
        if (lastOk === undefined || failedSince === undefined || failedSince < at - 1000 || until - lastOk <= gapMs) return;
        gapMs = until - lastOk;
        gapFrom = lastOk - at;
      };
      for (const [t, v] of samples.filter(([t]) => t <= at + 10_000)) {
        if (v === 0) {
          failedSince ??= t;
          continue;
        }
        outage(t);
        lastOk = t;
        failedSince = undefined;
      }
      outage(Math.min(at + 10_000, samples.at(-1)?.[0] ?? at));
      return { gapMs, gapFrom, survived: samples.filter(([, v]) => v === 1).length, total: samples.length };
    };
    const targetMs = 3 * ADVERT_S * 1000 + 1000;

    // ---- failover: the master dies. Meanwhile the sync traffic is captured on the backup.
    const pcap = join(dir, "sync.pcap");
    const capture = lab.spawn("backup", "tcpdump", ["-i", "eth1", "-U", "-n", "-w", pcap, "udp", "port", "8848"]);
    await capture.waitForOutput(/listening on/, 10_000);
    download = startDownload(DOWNLOAD_PORTS[0]);
    const t0 = Date.now();
    const long = await synced("director", "backup", DOWNLOAD_PORTS[0], download);
    const t1 = Date.now();
    if (p.fullnat) {
      // The backup holds the synced flows as full NAT: on its local address, ports held.
      const pools = JSON.parse(await lvsadm(p, "backup", ["-G", "--json"])) as { localAddresses: { addresses: { address: string; connections: number }[] }[] };
      const held = pools.localAddresses.flatMap((s) => s.addresses).find((a) => a.address === LIP)?.connections ?? 0;
      assert.ok(held >= long.length, `the backup's ${LIP} holds the synced connections (${held})`);
    }
    const judgeWire = await captureSync(p, capture, pcap, long);
    console.log(`${mode}: the backup held the long connections ${t1 - t0} ms after the download began; on the wire ${Date.now() - t1} ms later`);
    const killedAt = Date.now();
    await killDirector(p, "director");
    await waitFor("the backup becomes master", () => notifyLog(p, "backup").some((l) => l.endsWith(" master")), 10_000);
    const notified =
      Number(
        notifyLog(p, "backup")
          .find((l) => l.endsWith(" master begin"))!
          .split(" ")[0],
      ) - killedAt;
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(`${go}1`, "");
    const round1 = await keepalive.waitForOutput(/^round1 (.*)$/m, 15_000);
    let digest = await download;
    const failoverReport = {
      download: digest.code === 0 && digest.stdout.startsWith(expected) ? 1 : 0,
      keepalive: /^RS\d same$/.test(round1[1]) ? 1 : 0,
      ...gapAround(killedAt),
      notifyMasterMs: notified,
    };
    console.log(`${mode} failover: ${JSON.stringify({ ...failoverReport, targetMs })}`);
    assert.equal(failoverReport.download, 1, `the download continued through the failover and arrived whole: ${digest.stdout} ${digest.stderr}`);
    assert.equal(failoverReport.keepalive, 1, `the idle keep-alive connection answered on the same socket: ${round1[1]}`);
    assert.ok(failoverReport.gapMs <= targetMs, `failover gap ${failoverReport.gapMs} ms within 3 x advert_int + 1 s`);
    judgeWire();

    // ---- failback: the master comes back, syncs as backup for preempt_delay, takes over.
    await startDirector(p, "director", PREEMPT_DELAY_S);
    await waitFor("the returning director starts as backup", () => notifyLog(p, "director").some((l) => l.endsWith(" backup")), 15_000);
    download = startDownload(DOWNLOAD_PORTS[1]);
    await synced("backup", "director", DOWNLOAD_PORTS[1], download);
    await waitFor("the director preempts", () => notifyLog(p, "director").some((l) => l.endsWith(" master")), 15_000);
    const preemptedAt = Number(
      notifyLog(p, "director")
        .find((l) => l.endsWith(" master begin"))!
        .split(" ")[0],
    );
    await waitFor("the backup steps down", () => notifyLog(p, "backup").filter((l) => l.endsWith(" backup")).length >= 2, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(`${go}2`, "");
    const round2 = await keepalive.waitForOutput(/^round2 (.*)$/m, 15_000);
    digest = await download;
    await new Promise((r) => setTimeout(r, 1000));
    writeFileSync(stop, "");
    await stream.exited;
    const failbackReport = {
      download: digest.code === 0 && digest.stdout.startsWith(expected) ? 1 : 0,
      keepalive: /^RS\d same$/.test(round2[1]) ? 1 : 0,
      ...gapAround(preemptedAt),
    };
    console.log(`${mode} failback: ${JSON.stringify({ ...failbackReport, targetMs })}`);
    assert.equal(failbackReport.download, 1, `the download continued through the failback and arrived whole: ${digest.stdout} ${digest.stderr}`);
    assert.equal(failbackReport.keepalive, 1, `the keep-alive connection answered after the failback on the same socket: ${round2[1]}`);
    assert.ok(failbackReport.gapMs <= targetMs, `failback gap ${failbackReport.gapMs} ms within 3 x advert_int + 1 s`);
  } catch (e) {
    // What each director said, and how the last download ended, for the reader of a failure.
    if (download) {
      const settled = await Promise.race([download, new Promise((r) => setTimeout(() => r("(still running)"), 1000))]);
      console.log(`--- the last download: ${JSON.stringify(settled)}`);
    }
    for (const d of ["director", "backup"] as const) {
      if (p.lvsd[d]) await lvsdCounters(p.lvsd[d]).catch(() => "");
      console.log(`--- ${d}: notify ${JSON.stringify(notifyLog(p, d))}\n${p.lvsd[d]?.log() ?? "(lvsd gone)"}\n${p.keepalived[d]?.output().slice(-3000) ?? ""}`);
    }
    throw e;
  } finally {
    await lab.destroy();
  }
}

test("failover DR: the backup takes over on SIGKILL of the master's lvsd and keepalived; established connections continue", {
  skip,
  timeout: 180_000,
}, async () => {
  await failover("dr");
});

test("failover NAT: the VIP and the real servers' gateway move; both directions of the synced flows continue on the backup", {
  skip,
  timeout: 180_000,
}, async () => {
  await failover("nat");
});

test("failover full NAT: the VIP, the gateway and the local address move; the synced full-NAT flows continue on the backup from the same LIP and port", {
  skip,
  timeout: 180_000,
}, async () => {
  await failover("fullnat");
});
