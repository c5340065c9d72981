// lvsadm end to end: the real CLI process talking to a control socket served by a Balancer
// (the classic NAT tutorial typed with lvsadm), and `lvsadm replay` on a capture built by
// scapy whose output tshark validates.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Balancer, readPcap, writePcap, PcapLinkType } from "../src/index.js";
import { serveControl } from "../src/admin/control-server.js";
import { scapyBuild } from "./support/scapy.js";
import { tsharkDissect, assertFrameValid } from "./support/tshark.js";
import { skipUnless } from "./support/tools.js";

const run = promisify(execFile);
const CLI = new URL("../src/admin/lvsadm-cli.ts", import.meta.url).pathname;

async function lvsadm(socket: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const child = execFile(process.execPath, ["--import", "tsx", CLI, ...args], { env: { ...process.env, LVS_WASM_SOCKET: socket } });
  if (input !== undefined) child.stdin!.end(input);
  else child.stdin!.end();
  let stdout = "",
    stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const code: number = await new Promise((r) => child.on("close", (c) => r(c ?? -1)));
  return { stdout, stderr, code };
}

test("the classic NAT tutorial typed with lvsadm against a running director", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lvsadm-"));
  const socket = join(dir, "run", "lvsd.sock");
  const balancer = new Balancer({ connections: 4096 });
  const server = await serveControl(socket, { balancer, now: () => 0 });
  try {
    assert.equal(statSync(socket).mode & 0o777, 0o600, "only the owner may use the socket");
    assert.equal(statSync(join(dir, "run")).mode & 0o777, 0o700);
    for (const args of [
      ["-A", "-t", "192.168.227.128:80", "-s", "rr"],
      ["-a", "-t", "192.168.227.128:80", "-r", "192.168.253.143:80", "-m"],
      ["-a", "-t", "192.168.227.128:80", "-r", "192.168.253.144:80", "-m"],
    ]) {
      const r = await lvsadm(socket, args);
      assert.deepEqual([r.code, r.stderr], [0, ""], args.join(" "));
    }
    const list = await lvsadm(socket, ["-Ln"]);
    // ipvsadm's layouts: "%-33s" service lines and "  -> %-28s %-7s %-6d %-10u %-10u" dests.
    const dest = (a: string) => `  -> ${a.padEnd(28)} ${"Masq".padEnd(7)} ${"1".padEnd(6)} ${"0".padEnd(10)} ${"0".padEnd(10)}\n`;
    assert.equal(
      list.stdout,
      "IP Virtual Server version 1.2.1 (size=4096)\n" +
        "Prot LocalAddress:Port Scheduler Flags\n" +
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
        "TCP  192.168.227.128:80 rr\n" +
        dest("192.168.253.143:80") +
        dest("192.168.253.144:80"),
    );
    const json = await lvsadm(socket, ["-Ln", "--json"]);
    const data = JSON.parse(json.stdout) as {
      tableSize: number;
      services: Array<{
        config: { key: { address: string }; scheduler: string };
        stats: { conns: number };
        destinations: Array<{ config: { address: string; method: string } }>;
      }>;
    };
    assert.equal(data.tableSize, 4096);
    assert.equal(data.services[0].config.key.address, "192.168.227.128");
    assert.equal(data.services[0].config.scheduler, "rr");
    assert.equal(data.services[0].stats.conns, 0);
    // JSON carries the kernel's own list order, newest first (as --nosort); -S and -L sort
    assert.deepEqual(
      data.services[0].destinations.map((d) => [d.config.address, d.config.method]),
      [
        ["192.168.253.144", "masq"],
        ["192.168.253.143", "masq"],
      ],
    );
    const savedJson = JSON.parse((await lvsadm(socket, ["-S", "--json"])).stdout) as { services: unknown[] };
    assert.equal(savedJson.services.length, 1);
    const dup = await lvsadm(socket, ["-A", "-t", "192.168.227.128:80", "-s", "rr"]);
    assert.deepEqual([dup.code, dup.stderr], [255, "Service already exists\n"]);
    const typo = await lvsadm(socket, ["-a", "-t", "192.168.227.128:80", "-r", "192.168.253.145:80", "-w", "70000"]);
    assert.deepEqual([typo.code, typo.stderr], [2, "illegal weight specified\n"]);
    const missing = await lvsadm(socket, ["-d", "-t", "192.168.227.128:80", "-r", "192.168.253.199:80"]);
    assert.deepEqual([missing.code, missing.stderr], [255, "No such destination\n"]);
    const saved = await lvsadm(socket, ["-S", "-n"]);
    assert.equal(
      saved.stdout,
      "-A -t 192.168.227.128:80 -s rr\n" +
        "-a -t 192.168.227.128:80 -r 192.168.253.143:80 -m -w 1\n" +
        "-a -t 192.168.227.128:80 -r 192.168.253.144:80 -m -w 1\n",
    );
    // -R of a file with a bad last line changes nothing.
    const restore = await lvsadm(socket, ["-R"], "-A -u 10.1.1.1:53 -s wlc\n-a -u 10.1.1.1:53 -r 10.2.2.2:53 -m -w 99999\n");
    assert.equal(restore.code, 255);
    assert.match(restore.stderr, /line 2/);
    assert.equal(balancer.listing().services.length, 1, "nothing of the rejected file was applied");
    const ok = await lvsadm(socket, ["-R"], "-A -u 10.1.1.1:53 -s wlc\n-a -u 10.1.1.1:53 -r 10.2.2.2:53 -m -w 2\n");
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(balancer.listing().services.length, 2);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lvsadm without a director says so in one line", async () => {
  const r = await lvsadm("/nonexistent/lvsd.sock", ["-Ln"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^lvsadm: cannot reach the lvs-wasm director at \/nonexistent\/lvsd.sock \(ENOENT: is lvsd running\?\)\n$/);
});

test("lvsadm replay: scapy capture in, rewritten capture out that tshark validates, stats and drops printed", {
  skip: skipUnless("scapy", "tshark"),
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "replay-"));
  try {
    const VIP = "10.20.0.1";
    const eth = "Ether(src='02:00:00:00:00:01',dst='02:00:00:00:00:02')";
    const frames = scapyBuild([
      `${eth}/IP(src='10.0.0.1',dst='${VIP}')/TCP(sport=1234,dport=80,flags='S')`,
      `${eth}/IP(src='10.0.0.2',dst='${VIP}')/TCP(sport=1235,dport=80,flags='S')`,
      `${eth}/IP(src='10.0.0.1',dst='${VIP}')/TCP(sport=1234,dport=80,flags='A')`,
      `${eth}/IP(src='10.0.0.3',dst='${VIP}')/UDP(sport=5353,dport=53)/DNS(rd=1,qd=DNSQR(qname='example.org'))`,
      `${eth}/IP(src='10.0.0.1',dst='10.99.0.1')/TCP(sport=1,dport=22,flags='S')`,
      `${eth}/IP(src='10.0.0.1',dst='${VIP}',ttl=1)/TCP(sport=1236,dport=80,flags='S')`,
      `${eth}/ARP(pdst='${VIP}')`,
    ]);
    const input = writePcap(
      PcapLinkType.Ethernet,
      frames.map((data, i) => ({ data, timestampNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n })),
    );
    writeFileSync(join(dir, "in.pcap"), input);
    writeFileSync(
      join(dir, "rules"),
      [
        `-A -t ${VIP}:80 -s rr`,
        `-a -t ${VIP}:80 -r 192.168.1.11:8080 -m -w 1`,
        `-a -t ${VIP}:80 -r 192.168.1.12:8080 -g -w 1`,
        `-A -u ${VIP}:53 -s wlc`,
        `-a -u ${VIP}:53 -r 192.168.1.13:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum`,
        "",
      ].join("\n"),
    );
    const { stdout } = await run(process.execPath, [
      "--import",
      "tsx",
      CLI,
      "replay",
      "--rules",
      join(dir, "rules"),
      "--in",
      join(dir, "in.pcap"),
      "--out",
      join(dir, "out.pcap"),
      "--neigh",
      "192.168.1.11=02:00:00:00:01:11",
      "--neigh",
      "192.168.1.12=02:00:00:00:01:12",
      "--neigh",
      "192.168.1.13=02:00:00:00:01:13",
      "--director-mac",
      "02:00:00:00:00:02",
      "--tunnel-source",
      "192.168.1.1",
    ]);
    assert.match(stdout, /^TCP {2}10\.20\.0\.1:80 /m);
    assert.match(stdout, /Frames: 7 {2}forwarded: 4 {2}replied: 0 {2}passed to host: 2/);
    assert.match(stdout, /ttl-expired: 1/);
    const out = readPcap(readFileSync(join(dir, "out.pcap")));
    assert.equal(out.linkType, PcapLinkType.Ethernet);
    assert.equal(out.records.length, 4);
    const dissected = tsharkDissect(
      PcapLinkType.Ethernet,
      out.records.map((r) => r.data),
    );
    dissected.forEach((f, i) => assertFrameValid(f, `output frame ${i}`));
    const dsts = dissected.map((f) => f.fields.get("ip.dst")?.[0]);
    // rr from the head of the newest-first list: RS2 (added last, DR) first, then RS1 (NAT)
    assert.deepEqual(dsts.slice(0, 3), ["10.20.0.1", "192.168.1.11", "10.20.0.1"], "DR keeps the VIP, NAT to RS1, the ACK follows its flow");
    assert.equal(dissected[0].fields.get("eth.dst")?.[0], "02:00:00:00:01:12", "DR: RS2's MAC");
    assert.ok(dissected[3].protocols.includes("gue"), `GUE tunnel recognised: ${dissected[3].protocols}`);
    assert.deepEqual(dissected[3].fields.get("ip.dst"), ["192.168.1.13", VIP], "outer to the RS, inner to the VIP");
    assert.equal(out.records[0].timestampNs, 1_700_000_000_000_000_000n, "timestamps kept");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--json writes 64-bit counters as exact integers and is no ipvsadm option", async () => {
  const { toJson, extractJsonFlag } = await import("../src/admin/json-output.js");
  assert.equal(toJson({ inbytes: 18446744073709551615n, n: 1, s: "x" }), '{\n  "inbytes": 18446744073709551615,\n  "n": 1,\n  "s": "x"\n}');
  assert.deepEqual(extractJsonFlag(["-Ln", "--json"]), { argv: ["-Ln"], json: true });
  assert.deepEqual(extractJsonFlag(["-Ln"]), { argv: ["-Ln"], json: false });
});

test("a control socket in a shared sticky directory (like /tmp) leaves the directory's mode alone", async () => {
  const { chmodSync } = await import("node:fs");
  const shared = mkdtempSync(join(tmpdir(), "sticky-"));
  chmodSync(shared, 0o1777);
  const server = await serveControl(join(shared, "lvsd.sock"), { balancer: new Balancer({ connections: 16, slots: 1, slotCapacity: 128 }), now: () => 0 });
  try {
    assert.equal(statSync(shared).mode & 0o7777, 0o1777, "the shared directory keeps its mode");
    assert.equal(statSync(join(shared, "lvsd.sock")).mode & 0o777, 0o600, "the socket itself is owner-only");
  } finally {
    await server.close();
    rmSync(shared, { recursive: true, force: true });
  }
});
