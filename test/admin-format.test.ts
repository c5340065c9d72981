// Golden tests for lvsadm's listings. Every expected line is built here from ipvsadm.c's own
// printf formats (print_title, print_service_entry, print_largenum, print_conn, list_timeout,
// list_daemon) through a tiny printf, never from lvsadm's output.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  formatListing,
  formatServiceListing,
  formatConnections,
  formatTimeouts,
  formatDaemons,
  formatSave,
  portNamesFromText,
  DEFAULT_LIST_FORMAT,
} from "../src/index.js";
import type { ListingSnapshot, ServiceSnapshot, DestinationSnapshot, ListFormat } from "../src/index.js";
import type { ServiceConfig, DestinationConfig } from "../src/config/types.js";

/** C printf for the conversions ipvsadm uses: %s %d %u %llu with '-' and widths, and %*llu. */
function printf(format: string, ...args: Array<string | number | bigint>): string {
  let next = 0;
  return format.replace(/%(-?)(\*|\d*)(?:ll)?([sdu%])/g, (_match, minus: string, width: string, conversion: string) => {
    if (conversion === "%") return "%";
    const w = width === "*" ? Number(args[next++]) : width === "" ? 0 : Number(width);
    const text = String(args[next++]);
    return minus ? text.padEnd(w) : text.padStart(w);
  });
}

const PORT_NAMES = portNamesFromText("http 80/tcp www\nhttps 443/tcp\ndomain 53/udp\n");
const OPTIONS = { portNames: PORT_NAMES };
const F = (extra: Partial<ListFormat> = {}): ListFormat => ({ ...DEFAULT_LIST_FORMAT, ...extra });

const TITLE = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
const HEADER = printf("IP Virtual Server version %d.%d.%d (size=%d)\n", 1, 2, 1, 4096);

function service(
  config: Partial<ServiceConfig> & Pick<ServiceConfig, "key">,
  destinations: DestinationSnapshot[] = [],
  extra: Partial<ServiceSnapshot> = {},
): ServiceSnapshot {
  return { config: { scheduler: "wlc", schedulerFlags: [], onePacket: false, ...config }, destinations, ...extra };
}
function dest(config: Partial<DestinationConfig> & Pick<DestinationConfig, "address" | "port">, extra: Partial<DestinationSnapshot> = {}): DestinationSnapshot {
  return {
    config: { method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...config },
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    ...extra,
  };
}
const tcp = (address: string, port: number) => ({ kind: "address", protocol: "tcp", address, port }) as const;
const snapshot = (services: ServiceSnapshot[]): ListingSnapshot => ({ tableSize: 4096, services });

const NAT_TUTORIAL = snapshot([
  service({ key: tcp("192.168.227.128", 80), scheduler: "rr" }, [
    dest({ address: "192.168.253.144", port: 80 }),
    dest({ address: "192.168.253.143", port: 80 }),
  ]),
]);

test("-Ln: the reference page's example (the page trims trailing blanks; ipvsadm's %-10u does not)", () => {
  const reference = [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    "TCP  192.168.227.128:80 rr",
    "  -> 192.168.253.143:80           Masq    1      0          0",
    "  -> 192.168.253.144:80           Masq    1      0          0",
  ];
  const output = formatListing(NAT_TUTORIAL, F({ numeric: true }), OPTIONS);
  assert.deepEqual(
    output
      .trimEnd()
      .split("\n")
      .map((line) => line.trimEnd()),
    reference,
  );
});

test("-Ln: printf layouts exactly, trailing blanks included", () => {
  const expected =
    HEADER +
    TITLE +
    printf("%s %s", printf("%-4s %s", "TCP", "192.168.227.128:80"), "rr") +
    "\n" +
    printf("  -> %-28s %-7s %-6d %-10u %-10u\n", "192.168.253.143:80", "Masq", 1, 0, 0) +
    printf("  -> %-28s %-7s %-6d %-10u %-10u\n", "192.168.253.144:80", "Masq", 1, 0, 0);
  assert.equal(formatListing(NAT_TUTORIAL, F({ numeric: true }), OPTIONS), expected);
});

test("-L without -n names ports from /etc/services (addresses stay numeric)", () => {
  const expected =
    HEADER +
    TITLE +
    printf("%s %s\n", printf("%-4s %s", "TCP", "192.168.227.128:http"), "rr") +
    printf("  -> %-28s %-7s %-6d %-10u %-10u\n", "192.168.253.143:http", "Masq", 1, 0, 0) +
    printf("  -> %-28s %-7s %-6d %-10u %-10u\n", "192.168.253.144:http", "Masq", 1, 0, 0);
  assert.equal(formatListing(NAT_TUTORIAL, F(), OPTIONS), expected);
});

test("service line: flags in parentheses, persistent, mask, pe, ops; Route/Tunnel/Local; IPv6 and fwmark", () => {
  const listing = snapshot([
    service(
      {
        key: tcp("10.0.0.1", 80),
        scheduler: "sh",
        schedulerFlags: ["sh-fallback", "sh-port"],
        persistence: { timeout: 600, netmask: "255.255.255.0" },
        persistenceEngine: "sip",
      },
      [
        dest({ address: "10.1.0.1", port: 80, method: "route", weight: 3 }, { activeConns: 12, inactConns: 345 }),
        dest({ address: "10.1.0.2", port: 80, method: "tunnel", weight: 0, tunnel: { type: "ipip", checksum: "nocsum" } }),
        dest({ address: "127.0.0.1", port: 80, method: "route" }, { local: true }),
      ],
    ),
    service(
      {
        key: { kind: "address", protocol: "udp", address: "2001:db8::1", port: 53 },
        scheduler: "rr",
        onePacket: true,
        persistence: { timeout: 60, netmask: 64 },
      },
      [dest({ address: "2001:db8::10", port: 5353 })],
    ),
    service({ key: { kind: "fwmark", fwmark: 7, family: 4 }, scheduler: "wrr", schedulerFlags: ["flag-2"] }),
    service({ key: { kind: "fwmark", fwmark: 8, family: 6 }, scheduler: "mh", schedulerFlags: ["mh-port"] }),
  ]);
  const destLine = (name: string, fwd: string, weight: number, active: number, inact: number) =>
    printf("  -> %-28s %-7s %-6d %-10u %-10u\n", name, fwd, weight, active, inact);
  const expected =
    HEADER +
    TITLE +
    printf("%s %s", printf("%-4s %s", "TCP", "10.0.0.1:80"), "sh") +
    " (sh-fallback,sh-port)" +
    printf(" persistent %u", 600) +
    printf(" mask %s", "255.255.255.0") +
    printf(" pe %s", "sip") +
    "\n" +
    destLine("10.1.0.1:80", "Route", 3, 12, 345) +
    destLine("10.1.0.2:80", "Tunnel", 0, 0, 0) +
    destLine("127.0.0.1:80", "Local", 1, 0, 0) +
    printf("%s %s", printf("%-4s %s", "UDP", "[2001:db8::1]:53"), "rr") +
    printf(" persistent %u", 60) +
    printf(" mask %i".replace("%i", "%d"), 64) +
    " ops\n" +
    destLine("[2001:db8::10]:5353", "Masq", 1, 0, 0) +
    printf("%s %s", printf("FWM  %u", 7), "wrr") +
    " (flag-2)\n" +
    printf("%s %s", printf("FWM  %u IPv6", 8), "mh") +
    " (mh-port)\n";
  // ipvs_cmp_services puts 127.0.0.1 (0x7f000001) after 10.1.0.2 and address services first.
  assert.equal(formatListing(listing, F({ numeric: true }), OPTIONS), expected);
});

test("sort order keeps ipvsadm's signed-int wrap: 200.0.0.1 before 10.0.0.1; a fwmark above 2^31 first", () => {
  const listing = snapshot([
    service({ key: tcp("10.0.0.1", 80) }, [dest({ address: "10.9.0.1", port: 80 }), dest({ address: "192.168.0.1", port: 80 })]),
    service({ key: tcp("200.0.0.1", 80) }),
    service({ key: { kind: "fwmark", fwmark: 3000000000, family: 4 } }),
    service({ key: { kind: "fwmark", fwmark: 5, family: 4 } }),
  ]);
  const names = formatListing(listing, F({ numeric: true }), OPTIONS)
    .split("\n")
    .slice(3, -1)
    .map((line) => line.trim().split(/\s+/).slice(0, 2).join(" "));
  // (int)(0x0a000001 - 0xc8000001) > 0, so 10.0.0.1 sorts after 200.0.0.1; likewise for the dests.
  // (int)(0 - 3000000000) > 0, so the large mark sorts before every address service.
  assert.deepEqual(names, ["FWM 3000000000", "TCP 200.0.0.1:80", "TCP 10.0.0.1:80", "-> 192.168.0.1:80", "-> 10.9.0.1:80", "FWM 5"]);
  const unsorted = formatListing(listing, F({ numeric: true, sort: false }), OPTIONS)
    .split("\n")
    .slice(3, -1)
    .map((line) => line.trim().split(/\s+/).slice(0, 2).join(" "));
  assert.deepEqual(unsorted, ["TCP 10.0.0.1:80", "-> 10.9.0.1:80", "-> 192.168.0.1:80", "TCP 200.0.0.1:80", "FWM 3000000000", "FWM 5"]);
});

const BIG = snapshot([
  service(
    { key: tcp("10.0.0.1", 80) },
    [
      dest(
        { address: "10.1.0.1", port: 80 },
        {
          stats: { conns: 99999999n, inpkts: 100000000n, outpkts: 999999999n, inbytes: 1000000000n, outbytes: 123456789012345n },
          rates: { cps: 123456789n, inpps: 5n, outpps: 6n, inbps: 250000000n, outbps: 7n },
        },
      ),
    ],
    {
      stats: { conns: 12n, inpkts: 345678901n, outpkts: 99999999999n, inbytes: 100000000000n, outbytes: 99999999999999n },
      rates: { cps: 1n, inpps: 2n, outpps: 3n, inbps: 4000000000n, outbps: 5n },
    },
  ),
]);

test("--stats: K/M/G/T past 10^8 (print_largenum)", () => {
  const expected =
    HEADER +
    printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes") +
    printf("%-33s", "TCP  10.0.0.1:80") +
    printf("%9llu", 12) +
    printf("%8lluK", 345678) +
    printf("%8lluM", 99999) +
    printf("%8lluG", 100) +
    printf("%8lluG", 99999) +
    "\n" +
    printf("  -> %-28s", "10.1.0.1:80") +
    printf("%9llu", 99999999) +
    printf("%8lluK", 100000) +
    printf("%8lluK", 999999) +
    printf("%8lluM", 1000) +
    printf("%8lluT", 123) +
    "\n";
  assert.equal(formatListing(BIG, F({ numeric: true, stats: true }), OPTIONS), expected);
});

test("--stats --exact: every digit, one blank before each number", () => {
  const exact = (n: bigint) => printf("%*llu", String(n).length <= 8 ? 9 : String(n).length + 1, n);
  const expected =
    HEADER +
    printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes") +
    printf("%-33s", "TCP  10.0.0.1:80") +
    [12n, 345678901n, 99999999999n, 100000000000n, 99999999999999n].map(exact).join("") +
    "\n" +
    printf("  -> %-28s", "10.1.0.1:80") +
    [99999999n, 100000000n, 999999999n, 1000000000n, 123456789012345n].map(exact).join("") +
    "\n";
  assert.equal(formatListing(BIG, F({ numeric: true, stats: true, exact: true }), OPTIONS), expected);
});

test("--rate: service through print_largenum; a real server's CPS/PPS as plain %8llu", () => {
  const expected =
    HEADER +
    printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS") +
    printf("%-33s", "TCP  10.0.0.1:80") +
    printf("%9llu%9llu%9llu", 1, 2, 3) +
    printf("%8lluM", 4000) +
    printf("%9llu", 5) +
    "\n" +
    printf("  -> %-28s %8llu %8llu %8llu", "10.1.0.1:80", 123456789, 5, 6) +
    printf("%8lluK", 250000) +
    printf("%9llu", 7) +
    "\n";
  assert.equal(formatListing(BIG, F({ numeric: true, rate: true }), OPTIONS), expected);
});

const DETAILED = snapshot([
  service({ key: tcp("10.0.0.1", 443), scheduler: "lc" }, [
    dest(
      {
        address: "10.1.0.1",
        port: 443,
        method: "tunnel",
        weight: 2,
        upperThreshold: 100,
        lowerThreshold: 50,
        tunnel: { type: "gue", port: 6080, checksum: "nocsum" },
      },
      { activeConns: 7, inactConns: 8, persistConns: 9 },
    ),
    dest({ address: "10.1.0.2", port: 443, method: "tunnel", tunnel: { type: "gre", checksum: "csum" } }),
    dest({ address: "10.1.0.3", port: 443, method: "tunnel", tunnel: { type: "gue", port: 5555, checksum: "remcsum" } }),
    dest({ address: "10.1.0.4", port: 443, method: "tunnel", tunnel: { type: "ipip", checksum: "nocsum" } }),
    dest({ address: "10.1.0.5", port: 8443, method: "masq" }),
  ]),
]);

test("--thresholds", () => {
  const row = (name: string, u: number, l: number, a: number, i: number) => printf("  -> %-28s %-10u %-10u %-10u %-10u\n", name, u, l, a, i);
  const expected =
    HEADER +
    printf("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn") +
    "TCP  10.0.0.1:443 lc\n" +
    row("10.1.0.1:443", 100, 50, 7, 8) +
    row("10.1.0.2:443", 0, 0, 0, 0) +
    row("10.1.0.3:443", 0, 0, 0, 0) +
    row("10.1.0.4:443", 0, 0, 0, 0) +
    row("10.1.0.5:8443", 0, 0, 0, 0);
  assert.equal(formatListing(DETAILED, F({ numeric: true, thresholds: true }), OPTIONS), expected);
});

test("--persistent-conn", () => {
  const row = (name: string, w: number, p: number, a: number, i: number) => printf("  -> %-28s %-9u %-11u %-10u %-10u\n", name, w, p, a, i);
  const expected =
    HEADER +
    printf("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn") +
    "TCP  10.0.0.1:443 lc\n" +
    row("10.1.0.1:443", 2, 9, 7, 8) +
    row("10.1.0.2:443", 1, 0, 0, 0) +
    row("10.1.0.3:443", 1, 0, 0, 0) +
    row("10.1.0.4:443", 1, 0, 0, 0) +
    row("10.1.0.5:8443", 1, 0, 0, 0);
  assert.equal(formatListing(DETAILED, F({ numeric: true, persistentConn: true }), OPTIONS), expected);
});

test("--tun-info: ipip, gue:PORT:-c|+c|r+c, gre:..., n/a", () => {
  const row = (name: string, fwd: string, info: string, w: number, a: number, i: number) =>
    printf("  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", name, fwd, info, w, a, i);
  const expected =
    HEADER +
    "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n" +
    "TCP  10.0.0.1:443 lc\n" +
    row("10.1.0.1:443", "Tunnel", "gue:6080:-c", 2, 7, 8) +
    row("10.1.0.2:443", "Tunnel", "gre:+c", 1, 0, 0) +
    row("10.1.0.3:443", "Tunnel", "gue:5555:r+c", 1, 0, 0) +
    row("10.1.0.4:443", "Tunnel", "ipip", 1, 0, 0) +
    row("10.1.0.5:8443", "Masq", "n/a", 1, 0, 0);
  assert.equal(formatListing(DETAILED, F({ numeric: true, tunInfo: true }), OPTIONS), expected);
});

test("-L -t SERVICE: titles and the service, no version header", () => {
  const expected = `${TITLE}TCP  10.0.0.1:https lc\n${printf("  -> %-28s %-7s %-6d %-10u %-10u\n", "10.1.0.1:https", "Tunnel", 2, 7, 8)}`;
  const one = service({ key: tcp("10.0.0.1", 443), scheduler: "lc" }, [DETAILED.services[0]!.destinations[0]!]);
  assert.equal(formatServiceListing(one, F(), OPTIONS), expected);
});

test("-Lnc and -Lc: print_conn columns, expire as mm:ss", () => {
  const conns = [
    {
      protocol: "tcp",
      client: { address: "192.168.1.50", port: 51234 },
      virtual: { address: "192.168.227.128", port: 80 },
      destination: { address: "192.168.253.143", port: 80 },
      state: "ESTABLISHED",
      expires: 899,
    },
    {
      protocol: "udp",
      client: { address: "2001:db8::50", port: 5353 },
      virtual: { address: "2001:db8::1", port: 53 },
      destination: { address: "2001:db8::10", port: 53 },
      state: "UDP",
      expires: 5,
    },
  ] as const;
  const head = printf("pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination");
  const row = (...c: string[]) => printf("%-3s %-6s %-11s %-18s %-18s %s\n", ...c);
  assert.equal(
    formatConnections(conns, { numeric: true, persistentConn: false }, OPTIONS),
    "IPVS connection entries\n" +
      head +
      row("TCP", printf("%02d:%02d", "14", "59"), "ESTABLISHED", "192.168.1.50:51234", "192.168.227.128:80", "192.168.253.143:80") +
      row("UDP", "00:05", "UDP", "[2001:db8::50]:5353", "[2001:db8::1]:53", "[2001:db8::10]:53"),
  );
  assert.equal(
    formatConnections(conns, { numeric: false, persistentConn: false }, OPTIONS),
    "IPVS connection entries\n" +
      head +
      row("TCP", "14:59", "ESTABLISHED", "192.168.1.50:51234", "192.168.227.128:http", "192.168.253.143:http") +
      row("UDP", "00:05", "UDP", "[2001:db8::50]:5353", "[2001:db8::1]:domain", "[2001:db8::10]:domain"),
  );
});

test("-Lc --persistent-conn: pe columns when the connection carries pe data", () => {
  const conns = [
    {
      protocol: "udp",
      client: { address: "10.0.0.9", port: 5060 },
      virtual: { address: "10.0.0.1", port: 5060 },
      destination: { address: "10.1.0.1", port: 5060 },
      state: "UDP",
      expires: 3600,
      persistenceEngine: { name: "sip", data: "call-1@host" },
    },
    {
      protocol: "tcp",
      client: { address: "10.0.0.9", port: 4000 },
      virtual: { address: "10.0.0.1", port: 80 },
      destination: { address: "10.1.0.1", port: 80 },
      state: "TIME_WAIT",
      expires: 61,
    },
  ] as const;
  assert.equal(
    formatConnections(conns, { numeric: true, persistentConn: true }, OPTIONS),
    "IPVS connection entries\n" +
      printf("pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source", "virtual", "destination", "pe name", "pe_data") +
      printf("%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n", "UDP", "60:00", "UDP", "10.0.0.9:5060", "10.0.0.1:5060", "10.1.0.1:5060", "sip", "call-1@host") +
      printf("%-3s %-6s %-11s %-18s %-18s %s\n", "TCP", "01:01", "TIME_WAIT", "10.0.0.9:4000", "10.0.0.1:80", "10.1.0.1:80"),
  );
});

test("--timeout and --daemon", () => {
  assert.equal(formatTimeouts({ tcp: 900, tcpFin: 120, udp: 300 }), "Timeout (tcp tcpfin udp): 900 120 300\n");
  assert.equal(
    formatDaemons([
      { role: "backup", mcastInterface: "eth1", syncId: 2 },
      { role: "master", mcastInterface: "eth0", syncId: 1, syncMaxlen: 1472, mcastGroup: "224.0.0.81", mcastPort: 8848, mcastTtl: 1 },
    ]),
    printf("%s sync daemon (mcast=%s, syncid=%d", "master", "eth0", 1) +
      printf(", maxlen=%u", 1472) +
      printf(", group=%s", "224.0.0.81") +
      printf(", port=%u", 8848) +
      printf(", ttl=%u", 1) +
      ")\n" +
      printf("%s sync daemon (mcast=%s, syncid=%d", "backup", "eth1", 2) +
      ")\n",
  );
  assert.equal(formatDaemons([]), "");
});

test("-S / -S -n: print_service_entry with FMT_RULE and print_tunnel_rule", () => {
  const services = DETAILED.services.map((s) => ({ service: s.config, destinations: s.destinations.map((d) => d.config) }));
  const expectedNumeric =
    printf("-A %s -s %s\n", "-t 10.0.0.1:443", "lc") +
    printf("-a %s -r %s %s -w %d", "-t 10.0.0.1:443", "10.1.0.1:443", "-i", 2) +
    " -x 100 -y 50" +
    printf(" --tun-type %s --tun-port %d %s\n", "gue", 6080, "--tun-nocsum") +
    printf("-a %s -r %s %s -w %d --tun-type %s %s\n", "-t 10.0.0.1:443", "10.1.0.2:443", "-i", 1, "gre", "--tun-csum") +
    printf("-a %s -r %s %s -w %d --tun-type %s --tun-port %d %s\n", "-t 10.0.0.1:443", "10.1.0.3:443", "-i", 1, "gue", 5555, "--tun-remcsum") +
    printf("-a %s -r %s %s -w %d --tun-type %s\n", "-t 10.0.0.1:443", "10.1.0.4:443", "-i", 1, "ipip") +
    printf("-a %s -r %s %s -w %d\n", "-t 10.0.0.1:443", "10.1.0.5:8443", "-m", 1);
  assert.equal(formatSave(services, { numeric: true, portNames: PORT_NAMES }), expectedNumeric);
  assert.equal(formatSave(services, { numeric: false, portNames: PORT_NAMES }).split("\n")[0], printf("-A %s -s %s", "-t 10.0.0.1:https", "lc"));
});
