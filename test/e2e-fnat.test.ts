// Full NAT end to end in namespaces, through the real daemon: the lab's client, director and
// two real servers, but the real servers have NO route back to the client: their only route
// off their subnet is to the director's local addresses (LIPs). lvsd runs over a TUN device
// with a rules file that names the full-NAT destinations (--fullnat) and the local addresses
// (-P ... -z); the director's kernel routes the VIPs and the LIPs into the device, nothing
// else (no policy routing for replies, which NAT needs). curl from the client works, the real
// servers see the LIP as the source, and tshark judges every packet the real server received
// with checksum validation. IPv4 and IPv6. Everything is torn down in `after`.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { lvsadmRaw, startLvsd, type RunningLvsd } from "../src/demo/support.js";
import { createLab, curl, httpUrl, isListening, labSkip, startHttpServer, type Lab } from "./support/netns.js";
import { disableTxChecksumOffload } from "../src/runtime/ethernet.js";
import { PcapLinkType, readPcap } from "../src/index.js";
import { assertFrameValid, tsharkDissect } from "./support/tshark.js";

const skip = labSkip("curl", "tcpdump", "tshark", "sha256sum", "nginx");

const LIP = "10.200.0.250";
const LIP2 = "10.200.0.251";
const LIP6 = "fd00:200::fa";

let lab: Lab;
let lvsd: RunningLvsd;
let dir: string;
let VIP: string;
let VIP6: string;

async function lvsadm(args: string[], expectCode = 0): Promise<{ stdout: string; stderr: string }> {
  const r = await lvsadmRaw(lvsd.socket, args);
  assert.equal(r.code, expectCode, `lvsadm ${args.join(" ")}: exit ${r.code}, stderr ${JSON.stringify(r.stderr)}`);
  return r;
}

/** Captures TCP `port` on rs1's eth0 while `during` runs; returns the frames. */
async function captureOnRs1(during: () => Promise<void>, port = 80): Promise<Uint8Array[]> {
  const pcap = join(dir, `rs1-${Date.now()}.pcap`);
  const capture = lab.spawn("rs1", "tcpdump", ["-i", "eth0", "--immediate-mode", "-U", "-n", "-w", pcap, "tcp", "port", String(port)]);
  await capture.waitForOutput(/listening on/, 10_000);
  try {
    await during();
    // Until the file stops growing (each packet is written as it comes: -U, immediate mode).
    let size = -1;
    for (let i = 0; i < 50 && statSync(pcap).size !== size; i++) {
      size = statSync(pcap).size;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    // tcpdump -U writes each packet as it comes; SIGINT flushes and exits.
    process.kill(capture.pid, "SIGINT");
    await capture.exited;
  }
  const frames = readPcap(readFileSync(pcap)).records.map((r) => r.data);
  assert.ok(frames.length > 0, `tcpdump captured nothing: ${capture.output()}`);
  return frames;
}

describe("full NAT end to end through lvsd (TUN): real servers with no route to the client", { skip }, () => {
  before(async () => {
    lab = await createLab({ mode: "nat", realServers: 2, ipv6: true, vipOnDirector: false });
    VIP = lab.vip!.v4;
    VIP6 = lab.vip!.v6!;
    const [RS1, RS2] = lab.realServers.map((r) => r.eth0.ipv4);
    const [RS1v6, RS2v6] = lab.realServers.map((r) => r.eth0.ipv6!);
    dir = mkdtempSync(join(tmpdir(), "e2e-fnat-"));
    lab.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
    // The real servers: no default route; only the LIPs' prefixes, via the director.
    for (const rs of ["rs1", "rs2"] as const) {
      await lab.exec(rs, "ip", ["-4", "route", "del", "default"]);
      await lab.exec(rs, "ip", ["-6", "route", "del", "default"]);
      await lab.exec(rs, "ip", ["-4", "route", "add", "10.200.0.0/24", "via", "192.168.10.1"]);
      await lab.exec(rs, "ip", ["-6", "route", "add", "fd00:200::/64", "via", "fd00:10::1"]);
    }
    const rules = join(dir, "rules");
    writeFileSync(
      rules,
      [
        `-A -t ${VIP}:80 -s rr`,
        `-a -t ${VIP}:80 -r ${RS1}:80 --fullnat -w 1`,
        `-a -t ${VIP}:80 -r ${RS2}:80 --fullnat -w 1`,
        `-P -t ${VIP}:80 -z ${LIP}`,
        `-A -t [${VIP6}]:80 -s rr`,
        `-a -t [${VIP6}]:80 -r [${RS1v6}]:80 --fullnat -w 1`,
        `-a -t [${VIP6}]:80 -r [${RS2v6}]:80 --fullnat -w 1`,
        `-P -t [${VIP6}]:80 -z ${LIP6}`,
        "",
      ].join("\n"),
    );
    await Promise.all([startHttpServer(lab, "rs1", { bigMiB: 1 }), startHttpServer(lab, "rs2", { bigMiB: 1 })]);
    lvsd = await startLvsd(lab, ["--tun", "lvs0", "--rules", rules]);
    // The VIPs and the LIPs into the device: that is all the routing full NAT needs.
    for (const prefix of [`${VIP}/32`, `${LIP}/32`, `${LIP2}/32`]) await lab.exec("director", "ip", ["-4", "route", "add", prefix, "dev", "lvs0"]);
    for (const prefix of [`${VIP6}/128`, `${LIP6}/128`]) await lab.exec("director", "ip", ["-6", "route", "add", prefix, "dev", "lvs0"]);
    // Checksums complete on the wire to the real servers, so that a capture there shows them.
    disableTxChecksumOffload(lab.ns("director"), "eth1");
  });

  after(async () => {
    const id = lab?.id;
    if (lvsd) await lvsd.stop();
    await lab?.destroy();
    if (id) assert.doesNotMatch(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(`^${id}-`, "m"), "no namespace of the lab is left");
  });

  test("the real servers cannot reach the client themselves (the point of this lab)", async () => {
    const r = await lab.exec("rs1", "ip", ["-4", "route", "get", "10.0.0.2"], { allowFailure: true });
    assert.notEqual(r.code, 0, `rs1 has a route to the client: ${r.stdout}`);
    assert.match(r.stderr, /unreachable/i);
  });

  test("IPv4: curls answer RS2, RS1, RS2, RS1 from the VIP; rs1 sees only the LIP as source, every checksum good to tshark", async () => {
    const answers: string[] = [];
    const frames = await captureOnRs1(async () => {
      for (let i = 0; i < 4; i++) {
        const r = await curl(lab, "client", httpUrl(VIP), { timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.equal(r.remote, `${VIP}:80`, "the reply came from the VIP");
        answers.push(r.body.trim());
      }
    });
    assert.deepEqual(answers, ["RS2", "RS1", "RS2", "RS1"]);
    const dissected = tsharkDissect(PcapLinkType.Ethernet, frames);
    const toRs = dissected.filter((f) => f.fields.get("tcp.dstport")?.[0] === "80");
    assert.ok(toRs.length >= 6, `rs1 received ${toRs.length} packets of its two connections`);
    for (const [i, f] of toRs.entries()) {
      assertFrameValid(f, `packet ${i} to rs1`);
      assert.equal(f.fields.get("ip.src")?.[0], LIP, "the real server sees the local address, not the client");
      assert.equal(f.fields.get("ip.checksum.status")?.[0], "1", `packet ${i}: IP checksum`);
      assert.equal(f.fields.get("tcp.checksum.status")?.[0], "1", `packet ${i}: TCP checksum`);
      const port = Number(f.fields.get("tcp.srcport")?.[0]);
      assert.ok(port >= 32768 && port <= 60999, `local port ${port} in the default range`);
    }
    const g = await lvsadm(["-G", "-t", `${VIP}:80`]);
    assert.match(g.stdout, new RegExp(`^TCP  ${VIP.replace(/\./g, "\\.")}:http +${LIP.replace(/\./g, "\\.")} +[1-9]\\d* +0$`, "m"), g.stdout);
    assert.match((await lvsadm(["-Ln"])).stdout, /FullNat/);
  });

  test("IPv6: curls through [VIP6]:80 answer from both real servers, sourced from the IPv6 LIP", async () => {
    const answers: string[] = [];
    const frames = await captureOnRs1(async () => {
      for (let i = 0; i < 2; i++) {
        const r = await curl(lab, "client", httpUrl(VIP6), { timeoutMs: 5000 });
        assert.equal(r.status, 200);
        answers.push(r.body.trim());
      }
    });
    assert.deepEqual(answers.sort(), ["RS1", "RS2"]);
    const toRs = tsharkDissect(PcapLinkType.Ethernet, frames).filter((f) => f.fields.get("tcp.dstport")?.[0] === "80");
    assert.ok(toRs.length >= 3);
    for (const f of toRs) {
      assertFrameValid(f, "IPv6 packet to rs1");
      assert.equal(f.fields.get("ipv6.src")?.[0], LIP6);
      assert.equal(f.fields.get("tcp.checksum.status")?.[0], "1");
    }
  });

  test("a 8 MiB random download arrives byte for byte (sha256); a second local address added by lvsadm -P takes flows in turn", async () => {
    const data = randomBytes(8 << 20);
    writeFileSync(join(dir, "random.bin"), data);
    const expected = createHash("sha256").update(data).digest("hex");
    const server = lab.spawn("rs1", process.execPath, [
      "-e",
      `const fs=require("node:fs");require("node:http").createServer((q,r)=>{r.writeHead(200,{"content-length":fs.statSync(process.argv[1]).size});fs.createReadStream(process.argv[1]).pipe(r)}).listen(8000,"0.0.0.0",()=>console.log("listening"))`,
      join(dir, "random.bin"),
    ]);
    try {
      await server.waitForOutput(/^listening$/m, 10_000);
      const rs1 = lab.realServers[0].eth0.ipv4;
      await lvsadm(["-A", "-t", `${VIP}:8000`, "-s", "rr"]);
      await lvsadm(["-a", "-t", `${VIP}:8000`, "-r", `${rs1}:8000`, "--fullnat"]);
      await lvsadm(["-P", "-t", `${VIP}:8000`, "-z", LIP]);
      await lvsadm(["--add-laddr", "-t", `${VIP}:8000`, "--laddr", LIP2]);
      for (let i = 0; i < 2; i++) {
        const r = await lab.exec("client", "bash", ["-o", "pipefail", "-c", `curl -sS --max-time 30 ${httpUrl(VIP, 8000, "/")} | sha256sum`], {
          timeoutMs: 40_000,
        });
        assert.equal(r.stdout.split(" ")[0], expected, `download ${i + 1}`);
      }
      const g = (await lvsadm(["-G", "-n", "-t", `${VIP}:8000`])).stdout;
      for (const lip of [LIP, LIP2]) assert.match(g, new RegExp(`${lip.replace(/\./g, "\\.")} +1 +0$`, "m"), `each local address took one flow:\n${g}`);
    } finally {
      await server.stop();
    }
  });

  test("PROXY protocol v2 (--proxy-protocol v2): nginx with listen ... proxy_protocol reports the client's address and port, while its peer is the LIP; tshark reads the header on rs1", async () => {
    const ndir = mkdtempSync(join(tmpdir(), "e2e-fnat-nginx-"));
    lab.onDestroy(() => rmSync(ndir, { recursive: true, force: true }));
    writeFileSync(
      join(ndir, "nginx.conf"),
      `daemon off; master_process off; worker_processes 1; user root; pid ${ndir}/nginx.pid; error_log ${ndir}/error.log warn;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${ndir}/body; proxy_temp_path ${ndir}/proxy; fastcgi_temp_path ${ndir}/fastcgi; uwsgi_temp_path ${ndir}/uwsgi; scgi_temp_path ${ndir}/scgi;
  server { listen 81 proxy_protocol; listen [::]:81 proxy_protocol;
    location / { default_type text/plain; return 200 "client $proxy_protocol_addr:$proxy_protocol_port server $proxy_protocol_server_addr:$proxy_protocol_server_port peer $remote_addr\\n"; } } }
`,
    );
    const nginx = lab.spawn("rs1", "nginx", ["-p", ndir, "-e", join(ndir, "error.log"), "-c", join(ndir, "nginx.conf")]);
    try {
      for (let i = 0; i < 100 && !(await isListening(lab, "rs1", 81)); i++) {
        if (nginx.hasExited) throw new Error(`nginx exited: ${nginx.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const rs1 = lab.realServers[0].eth0;
      await lvsadm(["-A", "-t", `${VIP}:81`, "-s", "rr", "--proxy-protocol", "v2"]);
      await lvsadm(["-a", "-t", `${VIP}:81`, "-r", `${rs1.ipv4}:81`, "--fullnat"]);
      await lvsadm(["-P", "-t", `${VIP}:81`, "-z", LIP]);
      await lvsadm(["-A", "-t", `[${VIP6}]:81`, "-s", "rr", "--proxy-protocol", "v2"]);
      await lvsadm(["-a", "-t", `[${VIP6}]:81`, "-r", `[${rs1.ipv6!}]:81`, "--fullnat"]);
      await lvsadm(["-P", "-t", `[${VIP6}]:81`, "-z", LIP6]);
      let r4: Awaited<ReturnType<typeof curl>> | undefined;
      const frames = await captureOnRs1(async () => {
        r4 = await curl(lab, "client", httpUrl(VIP, 81), { timeoutMs: 5000 });
      }, 81);
      assert.equal(r4!.status, 200);
      const [, cport] = /^client 10\.0\.0\.2:(\d+) server /.exec(r4!.body) ?? [];
      assert.ok(cport, `nginx saw the client's address: ${r4!.body}`);
      const port4 = Number(r4!.local.split(":").at(-1));
      assert.equal(r4!.body.trim(), `client 10.0.0.2:${port4} server ${VIP}:81 peer ${LIP}`);
      const r6 = await curl(lab, "client", httpUrl(VIP6, 81), { timeoutMs: 5000 });
      assert.equal(r6.body.trim(), `client fd00::2:${Number(r6.local.split(":").at(-1))} server ${VIP6}:81 peer ${LIP6}`);
      // On the wire at rs1: the header, as tshark's PROXY dissector reads it, and good checksums.
      const dissected = tsharkDissect(PcapLinkType.Ethernet, frames, { preferences: ["tcp.try_heuristic_first:TRUE"] });
      const withHeader = dissected.filter((f) => f.fields.has("proxy.v2.version"));
      assert.equal(withHeader.length, 1, "one segment carried the header");
      assert.equal(withHeader[0].fields.get("proxy.src.ipv4")?.[0], "10.0.0.2");
      assert.equal(Number(withHeader[0].fields.get("proxy.srcport")?.[0]), port4);
      for (const f of dissected.filter((x) => x.fields.get("tcp.dstport")?.[0] === "81")) {
        assertFrameValid(f, "packet to rs1:81");
        assert.equal(f.fields.get("tcp.checksum.status")?.[0], "1");
      }
    } finally {
      await nginx.stop();
    }
  });
});
