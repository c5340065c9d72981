// ipvsadm 1.31's option table and its table of legal command/option combinations, as data,
// with DPVS's full-NAT additions at the end: --fullnat (a forwarding method; DPVS's short -b
// is ipvsadm's --sched-flags, which keeps it), --add-laddr / --del-laddr / --get-laddr
// (-P / -Q / -G) and --laddr (-z).
import type { OptionSpec } from "./argv.js";

export type OptionTag =
  | "A"
  | "E"
  | "D"
  | "C"
  | "L"
  | "l"
  | "Z"
  | "a"
  | "e"
  | "d"
  | "set"
  | "h"
  | "v"
  | "R"
  | "S"
  | "start-daemon"
  | "stop-daemon"
  | "t"
  | "u"
  | "sctp-service"
  | "f"
  | "s"
  | "p"
  | "M"
  | "r"
  | "m"
  | "i"
  | "g"
  | "w"
  | "x"
  | "y"
  | "n"
  | "c"
  | "mcast-interface"
  | "syncid"
  | "timeout"
  | "daemon"
  | "stats"
  | "rate"
  | "thresholds"
  | "persistent-conn"
  | "nosort"
  | "sort"
  | "X"
  | "6"
  | "o"
  | "pe"
  | "b"
  | "mcast-group"
  | "mcast-port"
  | "mcast-ttl"
  | "sync-maxlen"
  | "tun-info"
  | "tun-type"
  | "tun-port"
  | "tun-nocsum"
  | "tun-csum"
  | "tun-remcsum"
  | "fullnat"
  | "P"
  | "Q"
  | "G"
  | "z"
  | "proxy-protocol";

const none = "none" as const;
const required = "required" as const;

/** In ipvsadm's order: popt takes the first entry that matches (both "list" entries mean -L). */
export const IPVSADM_OPTIONS: readonly OptionSpec<OptionTag>[] = [
  { long: "add-service", short: "A", argument: none, tag: "A" },
  { long: "edit-service", short: "E", argument: none, tag: "E" },
  { long: "delete-service", short: "D", argument: none, tag: "D" },
  { long: "clear", short: "C", argument: none, tag: "C" },
  { long: "list", short: "L", argument: none, tag: "L" },
  { long: "list", short: "l", argument: none, tag: "l" },
  { long: "zero", short: "Z", argument: none, tag: "Z" },
  { long: "add-server", short: "a", argument: none, tag: "a" },
  { long: "edit-server", short: "e", argument: none, tag: "e" },
  { long: "delete-server", short: "d", argument: none, tag: "d" },
  { long: "set", argument: none, tag: "set" },
  { long: "help", short: "h", argument: none, tag: "h" },
  { long: "version", short: "v", argument: none, tag: "v" },
  { long: "restore", short: "R", argument: none, tag: "R" },
  { long: "save", short: "S", argument: none, tag: "S" },
  { long: "start-daemon", argument: required, tag: "start-daemon" },
  { long: "stop-daemon", argument: required, tag: "stop-daemon" },
  { long: "tcp-service", short: "t", argument: required, tag: "t" },
  { long: "udp-service", short: "u", argument: required, tag: "u" },
  { long: "sctp-service", argument: required, tag: "sctp-service" },
  { long: "fwmark-service", short: "f", argument: required, tag: "f" },
  { long: "scheduler", short: "s", argument: required, tag: "s" },
  { long: "persistent", short: "p", argument: "optional", tag: "p" },
  { long: "netmask", short: "M", argument: required, tag: "M" },
  { long: "real-server", short: "r", argument: required, tag: "r" },
  { long: "masquerading", short: "m", argument: none, tag: "m" },
  { long: "ipip", short: "i", argument: none, tag: "i" },
  { long: "gatewaying", short: "g", argument: none, tag: "g" },
  { long: "weight", short: "w", argument: required, tag: "w" },
  { long: "u-threshold", short: "x", argument: required, tag: "x" },
  { long: "l-threshold", short: "y", argument: required, tag: "y" },
  { long: "numeric", short: "n", argument: none, tag: "n" },
  { long: "connection", short: "c", argument: none, tag: "c" },
  { long: "mcast-interface", argument: required, tag: "mcast-interface" },
  { long: "syncid", argument: required, tag: "syncid" },
  { long: "timeout", argument: none, tag: "timeout" },
  { long: "daemon", argument: none, tag: "daemon" },
  { long: "stats", argument: none, tag: "stats" },
  { long: "rate", argument: none, tag: "rate" },
  { long: "thresholds", argument: none, tag: "thresholds" },
  { long: "persistent-conn", argument: none, tag: "persistent-conn" },
  { long: "nosort", argument: none, tag: "nosort" },
  { long: "sort", argument: none, tag: "sort" },
  { long: "exact", short: "X", argument: none, tag: "X" },
  { long: "ipv6", short: "6", argument: none, tag: "6" },
  { long: "ops", short: "o", argument: none, tag: "o" },
  { long: "pe", argument: required, tag: "pe" },
  { long: "sched-flags", short: "b", argument: required, tag: "b" },
  { long: "mcast-group", argument: required, tag: "mcast-group" },
  { long: "mcast-port", argument: required, tag: "mcast-port" },
  { long: "mcast-ttl", argument: required, tag: "mcast-ttl" },
  { long: "sync-maxlen", argument: required, tag: "sync-maxlen" },
  { long: "tun-info", argument: none, tag: "tun-info" },
  { long: "tun-type", argument: required, tag: "tun-type" },
  { long: "tun-port", argument: required, tag: "tun-port" },
  { long: "tun-nocsum", argument: none, tag: "tun-nocsum" },
  { long: "tun-csum", argument: none, tag: "tun-csum" },
  { long: "tun-remcsum", argument: none, tag: "tun-remcsum" },
  { long: "fullnat", argument: none, tag: "fullnat" },
  { long: "add-laddr", short: "P", argument: none, tag: "P" },
  { long: "del-laddr", short: "Q", argument: none, tag: "Q" },
  { long: "get-laddr", short: "G", argument: none, tag: "G" },
  { long: "laddr", short: "z", argument: required, tag: "z" },
  { long: "proxy-protocol", argument: required, tag: "proxy-protocol" },
];

/** ipvsadm's option names (optnames[]), indexed by its OPTC_ numbers. */
export const OPTION_NAMES = [
  "numeric",
  "connection",
  "service-address",
  "scheduler",
  "persistent",
  "netmask",
  "real-server",
  "forwarding-method",
  "weight",
  "u-threshold",
  "l-threshold",
  "mcast-interface",
  "timeout",
  "daemon",
  "stats",
  "rate",
  "thresholds",
  "persistent-conn",
  "nosort",
  "syncid",
  "exact",
  "ops",
  "pe",
  "sched-flags",
  "mcast-group",
  "mcast-port",
  "mcast-ttl",
  "sync-maxlen",
  "tun-info",
  "tun-type",
  "tun-port",
  "tun-nocsum",
  "tun-csum",
  "tun-remcsum",
  "laddr",
  "proxy-protocol",
] as const;

export type OptionName = (typeof OPTION_NAMES)[number];

/** ipvsadm's command names (cmdnames[]), used in its messages. */
export type CommandName =
  | "add-service"
  | "edit-service"
  | "delete-service"
  | "flush"
  | "list"
  | "add-server"
  | "delete-server"
  | "edit-server"
  | "set"
  | "start-daemon"
  | "stop-daemon"
  | "restore"
  | "save"
  | "zero"
  | "add-laddr"
  | "del-laddr"
  | "get-laddr";

/**
 * commands_v_options, one 34-character row per command, columns in OPTION_NAMES order:
 * '+' compulsory, 'x' illegal, '1' at most one of the '1' options, ' ' optional. The 35th
 * column, laddr (-z), is DPVS's: illegal but with the local address commands.
 */
const X10 = "xxxxxxxxxx";
const IPVSADM_COMMAND_OPTION_RULES: Readonly<Record<Exclude<CommandName, "add-laddr" | "del-laddr" | "get-laddr">, string>> = {
  "add-service": `xx+   xxxxxxxxxxxxxxx   ${X10}`,
  "edit-service": `xx+   xxxxxxxxxxxxxxx   ${X10}`,
  "delete-service": `xx+${"x".repeat(31)}`,
  flush: "x".repeat(34),
  list: " 11" + "xxxxxxxxx" + "11" + "       " + "xxxxxxx" + " " + "xxxxx",
  "add-server": `xx+xxx+    ${"x".repeat(18)}     `,
  "delete-server": `xx+xxx+${"x".repeat(27)}`,
  "edit-server": `xx+xxx+    ${"x".repeat(18)}     `,
  set: "x".repeat(34),
  "start-daemon": `${"x".repeat(11)} ${"x".repeat(7)} xxxx    xxxxxx`,
  "stop-daemon": `${"x".repeat(19)} ${"x".repeat(14)}`,
  restore: "x".repeat(34),
  save: ` ${"x".repeat(33)}`,
  zero: `xx ${"x".repeat(31)}`,
};
export const COMMAND_OPTION_RULES: Readonly<Record<CommandName, string>> = {
  // laddr: illegal; proxy-protocol: optional on -A / -E only.
  ...(Object.fromEntries(
    Object.entries(IPVSADM_COMMAND_OPTION_RULES).map(([c, row]) => [c, `${row}x${c === "add-service" || c === "edit-service" ? " " : "x"}`]),
  ) as Record<keyof typeof IPVSADM_COMMAND_OPTION_RULES, string>),
  // DPVS: a service and a local address; -G lists one service's or every service's.
  "add-laddr": `xx+${"x".repeat(31)}+x`,
  "del-laddr": `xx+${"x".repeat(31)}+x`,
  "get-laddr": ` x ${"x".repeat(31)}xx`,
};

/** tunnel_types_v_options: columns tun-port, tun-nocsum, tun-csum, tun-remcsum. */
export const TUNNEL_OPTION_RULES = {
  ipip: "xxxx",
  gue: "+111",
  gre: "x11x",
} as const;

export const TUNNEL_OPTION_COLUMNS = ["tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"] as const satisfies readonly OptionName[];
