// The real-server agent's command (lvs-rs-agent) on a real server whose kernel has no ipip
// module. scapy, on the director, sends an IP-in-IP packet we did not build ourselves (a UDP
// datagram from the client to the VIP inside) and watches the director's RS-side interface:
// without the agent the real server's kernel answers ICMP protocol-unreachable; with it, no
// ICMP comes back and the real server's UDP echo (bound to the VIP on lo) answers the client.

import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createLab, labSkip, startUdpEcho, type Lab } from "./support/netns.js";
import { skipUnless } from "./support/tools.js";

const skip = labSkip() || skipUnless("scapy");
const CLI = fileURLToPath(new URL("../src/runtime/rs-agent-cli.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

// Sniffs eth1 (started before sending), sends one IPIP packet, returns what came back:
// ICMP errors, and UDP answers from the echo port. Stops at the first answer or after 3 s.
const PROBE = `
import sys, json, threading, logging
logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
from scapy.all import *
conf.verb = 0
a = json.loads(sys.stdin.read())
seen = []
ready = threading.Event()
def keep(p):
    if ICMP in p and p[IP].src == a['rs']:
        seen.append({'icmp': [p[ICMP].type, p[ICMP].code]})
    elif UDP in p and p[UDP].sport == a['port'] and p[IP].src == a['vip']:
        seen.append({'udp': bytes(p[UDP].payload).decode(errors='replace').strip()})
s = AsyncSniffer(iface='eth1', store=False, prn=keep, started_callback=ready.set,
                 stop_filter=lambda p: len(seen) > 0)
s.start()
ready.wait(5)
send(IP(src=a['outer'], dst=a['rs'])/IP(src=a['client'], dst=a['vip'])/UDP(sport=40000, dport=a['port'])/Raw(b'hello'))
s.join(3)
if s.running: s.stop()
print(json.dumps(seen))
`;

test("lvs-rs-agent: without it the RS answers IPIP with ICMP protocol-unreachable; with it the inner datagram reaches the VIP and is answered", {
  skip,
  timeout: 60_000,
}, async () => {
  let lab: Lab | undefined;
  try {
    lab = await createLab({ mode: "tun", realServers: 1, vipOnDirector: false });
    const rs = lab.realServers[0];
    await startUdpEcho(lab, "rs1", { port: 7777 });
    const args = { outer: lab.director.back.ipv4, rs: rs.eth0.ipv4, client: lab.client.eth0.ipv4, vip: lab.vip!.v4, port: 7777 };
    const probe = async () =>
      JSON.parse((await lab!.exec("director", "/usr/bin/python3", ["-c", PROBE], { input: JSON.stringify(args), timeoutMs: 20_000 })).stdout) as Array<{
        icmp?: number[];
        udp?: string;
      }>;

    assert.deepEqual(await probe(), [{ icmp: [3, 2] }], "no ipip module and no agent: protocol unreachable");

    const agent = lab.spawn("rs1", process.execPath, ["--import", TSX, CLI, "--tun-type", "ipip"]);
    await agent.waitForOutput(/lvs-rs-agent: ready/, 20_000);
    assert.deepEqual(await probe(), [{ udp: "RS1" }], "decapsulated, delivered to the VIP, answered; no ICMP");

    process.kill(agent.pid, "SIGUSR1");
    await agent.waitForOutput(/decapsulated 1,/, 5000);
    process.kill(agent.pid, "SIGTERM");
    assert.equal((await agent.exited).code, 0);
  } finally {
    await lab?.destroy();
  }
});
