// lvsadm's argument parsing against ipvsadm 1.31's rules (ipvsadm.c: parse_options,
// process_options, generic_opt_check, parse_service...), case by case.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCommand, CommandError, portNamesFromText } from "../src/index.js";
import type { LvsCommand } from "../src/index.js";

// A fixed services(5) table so that the cases do not depend on this machine.
const PORT_NAMES = portNamesFromText(`
http		80/tcp		www		# WorldWideWeb HTTP
https		443/tcp
domain		53/tcp
domain		53/udp
sip		5060/udp
`);

const parse = (line: string): LvsCommand => parseCommand(line === "" ? [] : line.split(" "), { program: "ipvsadm", portNames: PORT_NAMES });

const LIST_DEFAULTS = {
  numeric: false,
  exact: false,
  sort: true,
  stats: false,
  rate: false,
  thresholds: false,
  persistentConn: false,
  tunInfo: false,
};
const tcp = (address: string, port: number) => ({ kind: "address", protocol: "tcp", address, port }) as const;
const dest = (address: string, port: number, method: "masq" | "route" | "tunnel", extra: object = {}) => ({
  address,
  port,
  method,
  weight: 1,
  upperThreshold: 0,
  lowerThreshold: 0,
  ...extra,
});

const ACCEPTED: Array<[string, LvsCommand]> = [
  // The classic NAT tutorial.
  [
    "-A -t 192.168.227.128:80 -s rr",
    { kind: "add-service", service: { key: tcp("192.168.227.128", 80), scheduler: "rr", schedulerFlags: [], onePacket: false } },
  ],
  [
    "-a -t 192.168.227.128:80 -r 192.168.253.143:80 -m",
    { kind: "add-dest", service: tcp("192.168.227.128", 80), destination: dest("192.168.253.143", 80, "masq") },
  ],
  ["-Ln", { kind: "list", show: "services", format: { ...LIST_DEFAULTS, numeric: true } }],
  // No argument lists the table; -l is -L.
  ["", { kind: "list", show: "services", format: LIST_DEFAULTS }],
  ["-l", { kind: "list", show: "services", format: LIST_DEFAULTS }],
  // Bundles.
  ["-Lnc", { kind: "list", show: "connections", format: { ...LIST_DEFAULTS, numeric: true } }],
  ["-Ln --stats --exact", { kind: "list", show: "services", format: { ...LIST_DEFAULTS, numeric: true, stats: true, exact: true } }],
  ["-LnX --rate --nosort", { kind: "list", show: "services", format: { ...LIST_DEFAULTS, numeric: true, rate: true, exact: true, sort: false } }],
  ["-L --sort --thresholds", { kind: "list", show: "services", format: { ...LIST_DEFAULTS, thresholds: true } }],
  ["-At 10.0.0.1:80", { kind: "add-service", service: { key: tcp("10.0.0.1", 80), scheduler: "wlc", schedulerFlags: [], onePacket: false } }],
  ["-A -t10.0.0.1:80 -srr", { kind: "add-service", service: { key: tcp("10.0.0.1", 80), scheduler: "rr", schedulerFlags: [], onePacket: false } }],
  ["-A -t=10.0.0.1:80 --scheduler=lc", { kind: "add-service", service: { key: tcp("10.0.0.1", 80), scheduler: "lc", schedulerFlags: [], onePacket: false } }],
  [
    "--add-service --tcp-service 10.0.0.1:80 --scheduler sed",
    { kind: "add-service", service: { key: tcp("10.0.0.1", 80), scheduler: "sed", schedulerFlags: [], onePacket: false } },
  ],
  // -p: optional value, taken only from a word that does not start with '-'.
  [
    "-A -t 10.0.0.1:80 -p",
    {
      kind: "add-service",
      service: { key: tcp("10.0.0.1", 80), scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 300, netmask: "255.255.255.255" }, onePacket: false },
    },
  ],
  [
    "-A -t 10.0.0.1:80 -p -s rr",
    {
      kind: "add-service",
      service: { key: tcp("10.0.0.1", 80), scheduler: "rr", schedulerFlags: [], persistence: { timeout: 300, netmask: "255.255.255.255" }, onePacket: false },
    },
  ],
  [
    "-A -t 10.0.0.1:80 -p 600 -M 255.255.255.0",
    {
      kind: "add-service",
      service: { key: tcp("10.0.0.1", 80), scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 600, netmask: "255.255.255.0" }, onePacket: false },
    },
  ],
  [
    "-A -t 10.0.0.1:80 --persistent=60",
    {
      kind: "add-service",
      service: { key: tcp("10.0.0.1", 80), scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 60, netmask: "255.255.255.255" }, onePacket: false },
    },
  ],
  // Zero port is fine for a persistent service.
  [
    "-A -t 10.0.0.1 -p",
    {
      kind: "add-service",
      service: { key: tcp("10.0.0.1", 0), scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 300, netmask: "255.255.255.255" }, onePacket: false },
    },
  ],
  // IPv6, ports by name, inet_aton forms.
  ["-A -t [2001:db8::1]:80 -s rr", { kind: "add-service", service: { key: tcp("2001:db8::1", 80), scheduler: "rr", schedulerFlags: [], onePacket: false } }],
  [
    "-A -t [2001:DB8:0:0:0:0:0:1]:https -p 60 -M 64",
    {
      kind: "add-service",
      service: { key: tcp("2001:db8::1", 443), scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 60, netmask: 64 }, onePacket: false },
    },
  ],
  ["-A -t 10.1:www", { kind: "add-service", service: { key: tcp("10.0.0.1", 80), scheduler: "wlc", schedulerFlags: [], onePacket: false } }],
  ["-A -t 012.0.0.1:+80", { kind: "add-service", service: { key: tcp("10.0.0.1", 80), scheduler: "wlc", schedulerFlags: [], onePacket: false } }],
  [
    "-A -u 10.0.0.1:domain -o",
    {
      kind: "add-service",
      service: { key: { kind: "address", protocol: "udp", address: "10.0.0.1", port: 53 }, scheduler: "wlc", schedulerFlags: [], onePacket: true },
    },
  ],
  [
    "-A --sctp-service 10.0.0.1:3868 -s mh -b mh-port,mh-fallback",
    {
      kind: "add-service",
      service: {
        key: { kind: "address", protocol: "sctp", address: "10.0.0.1", port: 3868 },
        scheduler: "mh",
        schedulerFlags: ["mh-fallback", "mh-port"],
        onePacket: false,
      },
    },
  ],
  // fwmark, then -6; flag-1 with sh is sh-fallback (the same bit).
  [
    "-A -f 1 -s sh -b flag-1",
    { kind: "add-service", service: { key: { kind: "fwmark", fwmark: 1, family: 4 }, scheduler: "sh", schedulerFlags: ["sh-fallback"], onePacket: false } },
  ],
  [
    "-A -f 4294967295 -6 -p 10 -M 48 -o --pe sip",
    {
      kind: "add-service",
      service: {
        key: { kind: "fwmark", fwmark: 4294967295, family: 6 },
        scheduler: "wlc",
        schedulerFlags: [],
        persistence: { timeout: 10, netmask: 48 },
        onePacket: true,
        persistenceEngine: "sip",
      },
    },
  ],
  // A custom scheduler name passes the parser.
  [
    "-E -t 10.0.0.1:80 -s my_sched-2",
    { kind: "edit-service", service: { key: tcp("10.0.0.1", 80), scheduler: "my_sched-2", schedulerFlags: [], onePacket: false } },
  ],
  ["-D -t 10.0.0.1:80", { kind: "delete-service", service: tcp("10.0.0.1", 80) }],
  ["-C", { kind: "clear" }],
  // Real servers: default -g; -g and -i take the virtual port; a missing port copies it.
  ["-a -t 10.0.0.1:80 -r 192.168.0.2", { kind: "add-dest", service: tcp("10.0.0.1", 80), destination: dest("192.168.0.2", 80, "route") }],
  [
    "-a -t 10.0.0.1:80 -r 192.168.0.2:8080 -g -w 0",
    { kind: "add-dest", service: tcp("10.0.0.1", 80), destination: { ...dest("192.168.0.2", 80, "route"), weight: 0 } },
  ],
  [
    "-a -t 10.0.0.1:80 -r 192.168.0.2:8080 -m -w 65535 -x 100 -y 50",
    {
      kind: "add-dest",
      service: tcp("10.0.0.1", 80),
      destination: { ...dest("192.168.0.2", 8080, "masq"), weight: 65535, upperThreshold: 100, lowerThreshold: 50 },
    },
  ],
  [
    "-a -t 10.0.0.1:80 -r 192.168.0.2 -i",
    { kind: "add-dest", service: tcp("10.0.0.1", 80), destination: dest("192.168.0.2", 80, "tunnel", { tunnel: { type: "ipip", checksum: "nocsum" } }) },
  ],
  [
    "-a -t 10.0.0.1:80 -r 2001:db8::2 -i --tun-type gue --tun-port 6080 --tun-remcsum",
    {
      kind: "add-dest",
      service: tcp("10.0.0.1", 80),
      destination: dest("2001:db8::2", 80, "tunnel", { tunnel: { type: "gue", port: 6080, checksum: "remcsum" } }),
    },
  ],
  [
    "-e -t 10.0.0.1:80 -r 192.168.0.2 -i --tun-type gre --tun-csum -w 5",
    {
      kind: "edit-dest",
      service: tcp("10.0.0.1", 80),
      destination: { ...dest("192.168.0.2", 80, "tunnel", { tunnel: { type: "gre", checksum: "csum" } }), weight: 5 },
    },
  ],
  ["-a -f 7 -r 192.168.0.2:8080 -m", { kind: "add-dest", service: { kind: "fwmark", fwmark: 7, family: 4 }, destination: dest("192.168.0.2", 8080, "masq") }],
  ["-d -t 10.0.0.1:80 -r 192.168.0.2", { kind: "delete-dest", service: tcp("10.0.0.1", 80), destination: { address: "192.168.0.2", port: 80 } }],
  // Listing one service, zeroing, timeouts, save, restore, daemons, help, version.
  ["-L -t 10.0.0.1:http -n", { kind: "list", show: "services", service: tcp("10.0.0.1", 80), format: { ...LIST_DEFAULTS, numeric: true } }],
  ["-L --timeout", { kind: "list", show: "timeouts", format: LIST_DEFAULTS }],
  ["-L --daemon", { kind: "list", show: "daemon", format: LIST_DEFAULTS }],
  ["-Lc --persistent-conn", { kind: "list", show: "connections", format: { ...LIST_DEFAULTS, persistentConn: true } }],
  ["-Z", { kind: "zero" }],
  ["-Z -f 3", { kind: "zero", service: { kind: "fwmark", fwmark: 3, family: 4 } }],
  ["--set 900 120 300", { kind: "set-timeouts", timeouts: { tcp: 900, tcpFin: 120, udp: 300 } }],
  ["--set 0 -- 0 0", { kind: "set-timeouts", timeouts: { tcp: 0, tcpFin: 0, udp: 0 } }],
  ["-S", { kind: "save", numeric: false }],
  ["-Sn", { kind: "save", numeric: true }],
  ["-R", { kind: "restore" }],
  ["--start-daemon master", { kind: "start-daemon", daemon: { role: "master", mcastInterface: "eth0", syncId: 0 } }],
  [
    "--start-daemon backup --mcast-interface eth1 --syncid 9 --mcast-group ff02::81 --mcast-port 8849 --mcast-ttl 2 --sync-maxlen 1400",
    {
      kind: "start-daemon",
      daemon: { role: "backup", mcastInterface: "eth1", syncId: 9, syncMaxlen: 1400, mcastGroup: "ff02::81", mcastPort: 8849, mcastTtl: 2 },
    },
  ],
  ["--stop-daemon master", { kind: "stop-daemon", role: "master" }],
  ["-h --anything", { kind: "help" }],
  ["--version", { kind: "version" }],
];

for (const [line, expected] of ACCEPTED) {
  test(`accepts: ipvsadm ${line}`, () => {
    assert.deepEqual(parse(line), expected);
  });
}

const TRY = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

// [command line, message, exit code]: messages as ipvsadm 1.31 prints them.
const REJECTED: Array<[string, string, number]> = [
  ["-A -t 10.0.0.1:80 -w 3", "Illegal 'weight' option with the 'add-service' command", 2],
  ["-A -s rr", "You need to supply the 'service-address' option for the 'add-service' command", 2],
  ["-a -t 10.0.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536", "illegal weight specified", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", "illegal weight specified", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1x", "illegal weight specified", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648", "illegal u_threshold specified", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -y abc", "illegal l_threshold specified", 2],
  ["-A -t 10.0.0.256:80", "illegal virtual server address[:port] specified", 2],
  ["-A -t 80", "illegal virtual server address[:port] specified", 2],
  ["-A -t 10.0.0.1:65536", "illegal virtual server address[:port] specified", 2],
  ["-A -t 10.0.0.1:nosuchport", "illegal virtual server address[:port] specified", 2],
  ["-A -t [2001:db8::1]80", "illegal virtual server address[:port] specified", 2],
  [
    "-A -t www.example.com:80",
    "illegal virtual server address[:port] specified (host name `www.example.com' not resolved: lvsadm takes IPv4 and IPv6 addresses only)",
    2,
  ],
  ["-a -t 10.0.0.1:80 -r 10.0.0.999", "illegal real server address[:port] specified", 2],
  ["-A -t 10.0.0.1:80 -t 10.0.0.2:80", "multiple 'service-address' options specified", 2],
  ["-A -t 10.0.0.1:80 -f 1", "multiple 'service-address' options specified", 2],
  ["-a -t 10.0.0.1:80 -r [2001:db8::2] -i", "illegal real server address[:port] specified", 2],
  ["-A -t 10.0.0.1:0", "Zero port specified for non-persistent service", 2],
  ["-A -t 10.0.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services", 2],
  ["-A -t 10.0.0.1:80 -p 0", "invalid timeout value `0' specified", 2],
  ["-A -t 10.0.0.1:80 -p 2678401", "invalid timeout value `2678401' specified", 2],
  ["-A -t 10.0.0.1:80 -pn", "invalid timeout value `n' specified", 2],
  ["-A -t 10.0.0.1:80 -p -M 255.255.255.300", "illegal virtual server persistent mask specified", 2],
  ["-A -t [::1]:80 -p -M 129", "illegal ipv6 netmask specified", 2],
  ["-A -t [::1]:80 -p -M 255.255.255.0", "illegal ipv6 netmask specified", 2],
  ["-A -f 0", "invalid fwmark value `0' specified", 2],
  ["-A -f -1", "invalid fwmark value `-1' specified", 2],
  ["-A -f 4294967296", "invalid fwmark value `4294967296' specified", 2],
  ["-A -6 -f 1", "-6 used before -f", 2],
  ["-A -t 10.0.0.1:80 -b flag-4", "invalid scheduler flag `flag-4'", 2],
  ["-A -t 10.0.0.1:80 -b sh-port", "incompatible scheduler flag `sh-port'", 2],
  ["-A -t 10.0.0.1:80 -s mh -b mh-port,sh-fallback", "incompatible scheduler flag `sh-fallback'", 2],
  ["-A -t 10.0.0.1:80 -s Bad!", "Scheduler or persistence engine not found", 255],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gue", "Tunnel options conflict with forward method", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan", "illegal tunnel type specified", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue", "You need to supply the 'tun-port' option for the 'gue' tunnel type", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-port 5", "Illegal 'tun-port' option with the 'ipip' tunnel type", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum", "Illegal 'tun-remcsum' option with the 'gre' tunnel type", 2],
  [
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum",
    "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
    2,
  ],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0", "illegal tunnel port specified", 2],
  ["-a -t 10.0.0.1:80 -r ::2 -m", "Different address family is allowed only for tunneling servers", 2],
  ["-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g", "multiple 'forwarding-method' options specified", 2],
  ["-L -c -t 10.0.0.1:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2],
  ["-L --timeout --daemon", "The option 'daemon' conflicts with the 'timeout' option in the 'list' command", 2],
  ["-L -c --stats", "options conflicts in the list command", 2],
  ["-L --daemon --persistent-conn", "options conflicts in the list command", 2],
  ["-L -s rr", "Illegal 'scheduler' option with the 'list' command", 2],
  ["-C -n", "Illegal 'numeric' option with the 'flush' command", 2],
  ["-S -c", "Illegal 'connection' option with the 'save' command", 2],
  ["--set 1 2", "--set option requires 3 timeout values", 2],
  ["--set 1 2 3 4", "unexpected argument 4", 2],
  ["--set 1 x 3", "invalid timeout value `x' specified", 2],
  ["-L extra", "unexpected argument extra", 2],
  ["-L -A", "invalid option `-A'", 2],
  ["-L --start-daemon master", "invalid option `master'", 2],
  ["--start-daemon primary", "illegal start-daemon parameter specified", 2],
  ["--stop-daemon primary", "illegal start_daemon specified", 2],
  ["--start-daemon master --mcast-group 10.0.0.1", "invalid IPv4 mcast-group `10.0.0.1'", 2],
  ["--start-daemon master --mcast-group 2001:db8::1", "invalid IPv6 mcast-group `2001:db8::1'", 2],
  ["--start-daemon master --syncid 256", "illegal syncid specified", 2],
  ["--start-daemon master --mcast-port 0", "illegal mcast-port specified", 2],
  ["--start-daemon master --mcast-ttl 256", "illegal mcast-ttl specified", 2],
  ["--start-daemon master --sync-maxlen 65508", "illegal sync-maxlen specified", 2],
  ["--stop-daemon master --mcast-interface eth0", "Illegal 'mcast-interface' option with the 'stop-daemon' command", 2],
  // popt's own complaints: the word, then the reason; exit status 255.
  ["-A -t", "-t: missing argument", 255],
  ["-A --bogus", "--bogus: unknown option", 255],
  ["-A -q", "-q: unknown option", 255],
  ["-Aq", "-Aq: unknown option", 255],
  ["-A --numeric=yes", "--numeric=yes: option does not take an argument", 255],
  // No command first: only the "Try" line.
  ["-n -L", TRY, 255],
  ["foo", TRY, 255],
  ["-t 10.0.0.1:80 -A", TRY, 255],
  ["--start-daemon", TRY, 255],
];

for (const [line, message, exitCode] of REJECTED) {
  test(`rejects: ipvsadm ${line}`, () => {
    assert.throws(
      () => parse(line),
      (error: unknown) => {
        assert.ok(error instanceof CommandError, `not a CommandError: ${String(error)}`);
        assert.equal(error.message, message);
        assert.equal(error.exitCode, exitCode);
        return true;
      },
    );
  });
}

test("stderr carries ipvsadm's exact bytes (fail adds a newline; -6's message already has one)", () => {
  const stderrOf = (line: string) => {
    try {
      parse(line);
    } catch (error) {
      if (error instanceof CommandError) return error.stderr;
    }
    return undefined;
  };
  assert.equal(stderrOf("-A -6"), "-6 used before -f\n\n");
  assert.equal(stderrOf("-A -t 10.0.0.1:0"), "Zero port specified for non-persistent service\n");
  assert.equal(stderrOf("-A -t"), "-t: missing argument\n");
  assert.equal(stderrOf("bogus"), `${TRY}\n`);
});

test("the program name in the Try line is argv[0] (lvsadm by default)", () => {
  assert.throws(() => parseCommand(["nothing"]), { message: "Try `lvsadm -h' or 'lvsadm --help' for more information." });
});

test("checks run in ipvsadm's order: a bad value before a later popt error", () => {
  assert.throws(() => parse("-A -t 10.0.0.300:80 --bogus"), { message: "illegal virtual server address[:port] specified" });
  assert.throws(() => parse("-A -t 10.0.0.1:80 --bogus -w x"), { message: "--bogus: unknown option" });
  // Scheduler flags are checked before the option table, as in ipvsadm.
  assert.throws(() => parse("-L -b nope"), { message: "invalid scheduler flag `nope'" });
});

test("ipvsadm quirks kept: [IPv4]:port loses its port; -r before -t copies port 0", () => {
  assert.deepEqual(parse("-A -t [10.0.0.1]:80 -p"), {
    kind: "add-service",
    service: { key: tcp("10.0.0.1", 0), scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 300, netmask: "255.255.255.255" }, onePacket: false },
  });
  assert.deepEqual(parse("-a -r 10.0.0.2 -m -t 10.0.0.1:80"), {
    kind: "add-dest",
    service: tcp("10.0.0.1", 80),
    destination: dest("10.0.0.2", 0, "masq"),
  });
});
