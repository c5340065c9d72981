// The parser against packets scapy built, with scapy's own view of each as the expectation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PacketCore, LinkType, DropReason } from "../src/index.js";
import { scapyRun } from "./support/scapy.js";
import { skipUnless } from "./support/tools.js";

interface Expect {
  hex: string;
  link: number;
  family: number;
  l3: number;
  l4: number;
  proto: number;
  sport: number;
  dport: number;
  frag: number;
  iplen: number;
}

// For each scapy expression, python reports bytes and the offsets scapy itself computed.
const PROGRAM = `
import sys, json, logging
logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
from scapy.all import *
from scapy.layers.inet6 import *
out = []
for e in json.loads(sys.stdin.read()):
    p = eval(e)
    raw = bytes(p)
    p = p.__class__(raw)
    link = 1 if p.haslayer(Ether) else 0
    ip = p[IP] if p.haslayer(IP) else p[IPv6]
    l3 = len(raw) - len(bytes(ip))
    fam = 4 if isinstance(ip, IP) else 6
    l4layer = None
    for cls in (TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply):
        if p.haslayer(cls):
            l4layer = p[cls]; break
    frag = 0
    if fam == 4 and (ip.frag or ip.flags.MF):
        frag = 2 if ip.frag else 1
    if fam == 6 and p.haslayer(IPv6ExtHdrFragment):
        fh = p[IPv6ExtHdrFragment]
        frag = 2 if fh.offset else (1 if fh.m else 0)
    iplen = ip.len if fam == 4 else 40 + ip.plen
    if frag == 2:
        # scapy may still decode ports from a later fragment; the parser must not
        l4 = len(raw) - len(bytes(ip.payload.payload)) if fam == 6 else l3 + ip.ihl*4
        out.append(dict(hex=raw.hex(), link=link, family=fam, l3=l3, l4=l4, proto=-1, sport=0, dport=0, frag=2, iplen=iplen))
        continue
    l4 = len(raw) - len(bytes(l4layer))
    proto = {TCP:6, UDP:17, ICMP:1}.get(type(l4layer), 58)
    if isinstance(l4layer, (TCP, UDP)):
        sport, dport = l4layer.sport, l4layer.dport
    else:
        sport = dport = l4layer.id
    out.append(dict(hex=raw.hex(), link=link, family=fam, l3=l3, l4=l4, proto=proto, sport=sport, dport=dport, frag=frag, iplen=iplen))
print(json.dumps(out))
`;

const CASES = [
  "Ether()/IP(src='10.1.0.1',dst='10.2.0.2')/TCP(sport=40000,dport=80,flags='S')",
  "Ether()/Dot1Q(vlan=7)/IP(src='10.1.0.1',dst='10.2.0.2')/UDP(sport=53000,dport=53)/b'q'",
  "Ether()/Dot1AD(vlan=3)/Dot1Q(vlan=7)/IPv6(src='2001:db8::1',dst='2001:db8::2')/TCP(sport=1,dport=443)",
  "IP(src='10.1.0.1',dst='10.2.0.2',options=[IPOption_RR(routers=['1.2.3.4'])])/TCP(sport=5,dport=80,options=[('MSS',1460)])",
  "IP(src='10.1.0.1',dst='10.2.0.2')/ICMP(type=8,id=4242,seq=1)/b'ping'",
  "IPv6(src='2001:db8::1',dst='2001:db8::2')/ICMPv6EchoRequest(id=777,seq=2)",
  "IPv6(src='2001:db8::1',dst='2001:db8::2')/IPv6ExtHdrHopByHop()/IPv6ExtHdrDestOpt()/IPv6ExtHdrRouting(addresses=['2001:db8::9'])/UDP(sport=9,dport=10)/(b'x'*3)",
  "IPv6(src='2001:db8::1',dst='2001:db8::2')/IPv6ExtHdrFragment(offset=0,m=1,id=5)/UDP(sport=9,dport=10)/(b'x'*16)",
  "IPv6(src='2001:db8::1',dst='2001:db8::2')/IPv6ExtHdrFragment(offset=100,m=0,id=5,nh=17)/(b'y'*16)",
  "IP(src='10.1.0.1',dst='10.2.0.2',flags='MF')/UDP(sport=9,dport=10)/(b'z'*32)",
  "IP(src='10.1.0.1',dst='10.2.0.2',frag=50,proto=17)/(b'z'*32)",
  "Ether()/IP(src='10.1.0.1',dst='10.2.0.2')/UDP(sport=7,dport=8)",
];

test("parser agrees with scapy on offsets, ports and fragments", { skip: skipUnless("scapy") }, () => {
  const core = new PacketCore({ slotCount: 4, slotCapacity: 2048 });
  const expected = scapyRun<Expect[]>(PROGRAM, CASES);
  for (const [i, e] of expected.entries()) {
    const bytes = Uint8Array.from(Buffer.from(e.hex, "hex"));
    const got = core.parseBytes(bytes, e.link === 1 ? LinkType.Ethernet : LinkType.RawIp);
    const label = CASES[i];
    assert.equal(got.status, DropReason.None, `${label}: status ${got.status}`);
    assert.equal(got.family, e.family, `${label}: family`);
    assert.equal(got.l3Offset, e.l3, `${label}: l3`);
    assert.equal(got.l4Offset, e.l4, `${label}: l4`);
    assert.equal(got.fragment, e.frag, `${label}: fragment`);
    assert.equal(got.ipLength, e.iplen, `${label}: ip length`);
    if (e.frag !== 2) {
      assert.equal(got.protocol, e.proto, `${label}: protocol`);
      assert.equal(got.sourcePort, e.sport, `${label}: sport`);
      assert.equal(got.destinationPort, e.dport, `${label}: dport`);
    } else {
      assert.equal(got.sourcePort, 0, `${label}: later fragment has no ports`);
    }
  }
});

test("truncated, corrupt and non-IP frames get a reason, not a parse", () => {
  const core = new PacketCore({ slotCount: 2, slotCapacity: 2048 });
  const arp = new Uint8Array(42);
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(core.parseBytes(arp, LinkType.Ethernet).status, DropReason.NotIp);
  assert.equal(core.parseBytes(new Uint8Array(0), LinkType.RawIp).status, DropReason.Truncated);
  assert.equal(core.parseBytes(Uint8Array.of(0x45, 0, 0, 20), LinkType.RawIp).status, DropReason.Truncated);
  assert.equal(core.parseBytes(Uint8Array.of(0x75), LinkType.RawIp).status, DropReason.BadVersion);
  const hdr = Uint8Array.from([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  assert.equal(core.parseBytes(hdr, LinkType.RawIp).status, DropReason.BadIpChecksum);
  const sum = core.checksum(hdr);
  hdr[10] = sum >> 8;
  hdr[11] = sum & 0xff;
  assert.equal(core.checksum(hdr), 0, "a header with its checksum filled in sums to zero");
  // TCP claimed but only 4 bytes of it: a bad L4 header.
  assert.equal(core.parseBytes(hdr, LinkType.RawIp).status, DropReason.BadL4Header);
});
