// Clients that run inside a lab host (normally the client namespace), with timeouts, and
// return parsed results: ping (ICMP echo via Python raw sockets: iputils is not a
// dependency), curl, a UDP request, wrk, iperf3.
//
// Connection-per-request load (wrk with connectionClose, curl in a loop) burns one local
// port per request: the client namespace is built with ip_local_port_range 1024-65535 and
// tcp_tw_reuse=1 so that TIME_WAIT does not run it out of ports.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HostName, Lab } from "./topology.js";

/** `http://addr:port/path`, with brackets for IPv6. */
export function httpUrl(address: string, port = 80, path = "/"): string {
  const host = address.includes(":") ? `[${address}]` : address;
  return `http://${host}${port === 80 ? "" : `:${port}`}${path}`;
}

// ---- ping ---------------------------------------------------------------------------

export interface PingResult {
  sent: number;
  received: number;
  /** Round-trip times of the replies, in ms. */
  rttMs: number[];
}

const PY_PING = `
import socket, struct, sys, time, os
dst, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
v6 = ":" in dst
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); typ, rtyp = 128, 129
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); typ, rtyp = 8, 0
ident = os.getpid() & 0xFFFF
def csum(b):
    if len(b) % 2: b += b"\\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xFFFF); t += t >> 16
    return ~t & 0xFFFF
got = []
for seq in range(count):
    body = struct.pack("!HH", ident, seq) + b"lvs-wasm-lab"
    hdr = struct.pack("!BBH", typ, 0, 0)
    pkt = struct.pack("!BBH", typ, 0, 0 if v6 else csum(hdr + body)) + body
    t0 = time.monotonic(); s.sendto(pkt, (dst, 0)); deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0: break
        s.settimeout(left)
        try: data, _ = s.recvfrom(2048)
        except socket.timeout: break
        icmp = data if v6 else data[(data[0] & 15) * 4:]
        if len(icmp) >= 8 and icmp[0] == rtyp and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
            got.append((time.monotonic() - t0) * 1000); break
print("PING %d %d %s" % (count, len(got), " ".join("%.3f" % r for r in got)))
`;

/** Sends `count` ICMP echo requests from `from` to `to`; each waits up to timeoutMs. */
export async function ping(lab: Lab, from: HostName, to: string, options: { count?: number; timeoutMs?: number } = {}): Promise<PingResult> {
  const count = options.count ?? 1;
  const timeoutMs = options.timeoutMs ?? 1000;
  const r = await lab.exec(from, "/usr/bin/python3", ["-c", PY_PING, to, String(count), String(timeoutMs / 1000)], {
    timeoutMs: count * timeoutMs + 5000,
  });
  const m = /PING (\d+) (\d+) ?([\d. ]*)/.exec(r.stdout);
  if (!m) throw new Error(`ping ${to} from ${from}: unexpected output ${JSON.stringify(r.stdout + r.stderr)}`);
  return { sent: Number(m[1]), received: Number(m[2]), rttMs: m[3]!.trim() ? m[3]!.trim().split(" ").map(Number) : [] };
}

// ---- curl ---------------------------------------------------------------------------

export interface CurlOptions {
  /** Whole transfer limit (curl --max-time), default 10 s. */
  timeoutMs?: number;
  /** Throw away the body (bulk downloads); `body` is then "". */
  discardBody?: boolean;
  /** Extra curl arguments (e.g. ["--local-port", "40000"], ["-H", "Connection: close"]). */
  args?: readonly string[];
}

export interface CurlResult {
  status: number;
  body: string;
  /** Seconds, as curl's time_total. */
  timeTotal: number;
  /** Bytes of body received. */
  sizeDownload: number;
  /** Average download speed, bytes/s. */
  speedDownload: number;
  /** The address:port curl connected to. */
  remote: string;
  local: string;
}

const CURL_MARK = "\n@@lvsw-curl@@";

/** GETs `url` from `from`. Throws when curl fails (refused, timeout, ...); any HTTP status is a result. */
export async function curl(lab: Lab, from: HostName, url: string, options: CurlOptions = {}): Promise<CurlResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const r = await lab.exec(
    from,
    "curl",
    [
      "-sS",
      "--max-time",
      String(timeoutMs / 1000),
      "--noproxy",
      "*",
      "-o",
      options.discardBody ? "/dev/null" : "-",
      "-w",
      `${CURL_MARK}%{http_code} %{time_total} %{size_download} %{speed_download} %{remote_ip} %{remote_port} %{local_ip} %{local_port}`,
      ...(options.args ?? []),
      url,
    ],
    { timeoutMs: timeoutMs + 5000 },
  );
  const at = r.stdout.lastIndexOf(CURL_MARK);
  if (at < 0) throw new Error(`curl ${url}: no write-out in ${JSON.stringify(r.stdout.slice(-500))}`);
  const [status, time, size, speed, rip, rport, lip, lport] = r.stdout
    .slice(at + CURL_MARK.length)
    .trim()
    .split(" ");
  const bracket = (a: string | undefined) => (a?.includes(":") ? `[${a}]` : (a ?? ""));
  return {
    status: Number(status),
    body: r.stdout.slice(0, at),
    timeTotal: Number(time),
    sizeDownload: Number(size),
    speedDownload: Number(speed),
    remote: `${bracket(rip)}:${rport}`,
    local: `${bracket(lip)}:${lport}`,
  };
}

// ---- UDP ----------------------------------------------------------------------------

const NODE_UDP_REQUEST = `
const dgram = require("node:dgram");
const [address, port, payload, timeout] = [process.argv[1], Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
const t = setTimeout(() => { console.error("no reply within " + timeout + " ms"); process.exit(2); }, timeout);
s.on("message", (msg, rinfo) => { clearTimeout(t); process.stdout.write(JSON.stringify({ reply: msg.toString(), from: rinfo.address, port: rinfo.port })); s.close(); });
s.send(Buffer.from(payload), port, address);
`;

/** Sends one datagram from `from` and returns the first reply (throws after timeoutMs). */
export async function udpRequest(
  lab: Lab,
  from: HostName,
  address: string,
  port: number,
  payload = "ping",
  timeoutMs = 2000,
): Promise<{ reply: string; from: string; port: number }> {
  const r = await lab.exec(from, process.execPath, ["-e", NODE_UDP_REQUEST, address, String(port), payload, String(timeoutMs)], {
    timeoutMs: timeoutMs + 5000,
  });
  return JSON.parse(r.stdout) as { reply: string; from: string; port: number };
}

// ---- wrk ----------------------------------------------------------------------------

export interface WrkOptions {
  /** Seconds, default 2. */
  durationS?: number;
  /** Open connections, default 10. */
  connections?: number;
  /** wrk threads, default 1 (the lab shares its cores with the servers and the director). */
  threads?: number;
  /** One request per connection (Connection: close): measures connection set-up. */
  connectionClose?: boolean;
  /** wrk's per-request timeout in seconds, default 2. */
  requestTimeoutS?: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Latency in microseconds. */
  latencyUs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

const WRK_DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@@lvsw-wrk@@{"requests":%d,"duration":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

/** Runs wrk from `from` against `url` and returns its summary (from a Lua done() hook). */
export async function wrk(lab: Lab, from: HostName, url: string, options: WrkOptions = {}): Promise<WrkResult> {
  const durationS = options.durationS ?? 2;
  const dir = mkdtempSync(join(tmpdir(), "lvsw-wrk-"));
  try {
    const script = join(dir, "done.lua");
    writeFileSync(script, WRK_DONE);
    const r = await lab.exec(
      from,
      "wrk",
      [
        "-t",
        String(options.threads ?? 1),
        "-c",
        String(options.connections ?? 10),
        "-d",
        `${durationS}s`,
        "--timeout",
        `${options.requestTimeoutS ?? 2}s`,
        "-s",
        script,
        ...(options.connectionClose ? ["-H", "Connection: close"] : []),
        url,
      ],
      { timeoutMs: (durationS + 15) * 1000 },
    );
    const m = /@@lvsw-wrk@@(\{.*\})/.exec(r.stdout);
    if (!m) throw new Error(`wrk ${url}: no summary in output:\n${r.stdout}${r.stderr}`);
    const j = JSON.parse(m[1]!) as Record<string, number>;
    const d = j.duration! / 1e6;
    return {
      requests: j.requests!,
      durationS: d,
      requestsPerSec: d > 0 ? j.requests! / d : 0,
      bytes: j.bytes!,
      errors: { connect: j.connect!, read: j.read!, write: j.write!, status: j.status!, timeout: j.timeout! },
      latencyUs: { mean: j.mean!, p50: j.p50!, p90: j.p90!, p99: j.p99!, max: j.max! },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- iperf3 -------------------------------------------------------------------------

export interface Iperf3Options {
  /** Seconds, default 2. */
  durationS?: number;
  port?: number;
  /** Server sends (-R). */
  reverse?: boolean;
  /** Parallel streams (-P), default 1. */
  parallel?: number;
}

export interface Iperf3Result {
  /** What the receiver got, bits/s (end.sum_received). */
  bitsPerSecond: number;
  /** What the sender sent, bits/s (end.sum_sent). */
  sentBitsPerSecond: number;
  retransmits: number | null;
  /** iperf3's whole -J report. */
  raw: unknown;
}

/**
 * Runs an iperf3 TCP test from `from` to `server`. iperf3 opens a control connection and
 * then data connections that must reach the same server: behind a balancer give the
 * service persistence (or source hashing), or use a single real server.
 */
export async function iperf3(lab: Lab, from: HostName, server: string, options: Iperf3Options = {}): Promise<Iperf3Result> {
  const durationS = options.durationS ?? 2;
  const r = await lab.exec(
    from,
    "iperf3",
    ["-c", server, "-p", String(options.port ?? 5201), "-t", String(durationS), "-J", "-P", String(options.parallel ?? 1), ...(options.reverse ? ["-R"] : [])],
    { timeoutMs: (durationS + 15) * 1000, allowFailure: true },
  );
  let j: { error?: string; end?: { sum_received?: { bits_per_second: number }; sum_sent?: { bits_per_second: number; retransmits?: number } } };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new Error(`iperf3 -c ${server}: no JSON (exit ${String(r.code)}):\n${r.stdout.slice(-1000)}${r.stderr}`);
  }
  if (j.error || r.code !== 0) throw new Error(`iperf3 -c ${server}: ${j.error ?? `exit ${String(r.code)}`}`);
  return {
    bitsPerSecond: j.end?.sum_received?.bits_per_second ?? 0,
    sentBitsPerSecond: j.end?.sum_sent?.bits_per_second ?? 0,
    retransmits: j.end?.sum_sent?.retransmits ?? null,
    raw: j,
  };
}

// ---- ARP / neighbour discovery ------------------------------------------------------

const PY_WHO_HAS = `
import sys, json, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, ARP, srp, conf, get_if_hwaddr, get_if_addr
from scapy.layers.inet6 import IPv6, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6NDOptSrcLLAddr, in6_getnsma, in6_getnsmac, inet_pton, inet_ntop
import socket
conf.verb = 0
iface, timeout, targets, src6 = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
mac = get_if_hwaddr(iface)
out = {}
for t in targets:
    if ":" in t:
        nsma = inet_ntop(socket.AF_INET6, in6_getnsma(inet_pton(socket.AF_INET6, t)))
        q = Ether(src=mac, dst=in6_getnsmac(inet_pton(socket.AF_INET6, nsma)))/IPv6(src=src6, dst=nsma, hlim=255)/ICMPv6ND_NS(tgt=t)/ICMPv6NDOptSrcLLAddr(lladdr=mac)
    else:
        q = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=mac, psrc=get_if_addr(iface), pdst=t)
    ans, _ = srp(q, iface=iface, timeout=timeout, multi=True)
    macs = set()
    for _, r in ans:
        if r.haslayer(ARP) and r[ARP].op == 2 and r[ARP].psrc == t: macs.add(r[ARP].hwsrc)
        if r.haslayer(ICMPv6ND_NA) and r[ICMPv6ND_NA].tgt == t: macs.add(r.src)
    out[t] = sorted(macs)
print(json.dumps(out))
`;

/**
 * Asks "who has <target>?" on `iface` of `from` (ARP for IPv4, a neighbour solicitation for
 * IPv6) and returns, per target, the MACs that answered within timeoutMs. Needs scapy for
 * /usr/bin/python3 (Debian's python3-scapy).
 */
export async function whoHas(lab: Lab, from: HostName, iface: string, targets: readonly string[], timeoutMs = 1000): Promise<Record<string, string[]>> {
  const h = lab.hosts.get(from);
  const src6 = h?.interfaces.find((i) => i.name === iface)?.ipv6 ?? "::";
  const r = await lab.exec(from, "/usr/bin/python3", ["-c", PY_WHO_HAS, iface, String(timeoutMs / 1000), JSON.stringify(targets), src6], {
    timeoutMs: targets.length * timeoutMs + 15_000,
  });
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, string[]>;
}
