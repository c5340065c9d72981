// keepalived.conf -> HealthConfig. Reads the LVS part of keepalived 2.2's configuration
// (keepalived.conf(5), "LVS CONFIGURATION"): virtual_server_group, virtual_server with its
// options, real_server, sorry_server and the checkers TCP_CHECK, HTTP_GET, SSL_GET,
// MISC_CHECK and DNS_CHECK, with keepalived's defaults and inheritance (virtual server ->
// real server -> checker). Everything else is reported with its line: a warning when
// ignoring it changes no traffic (global_defs, vrrp_*, smtp_alert, snmp_name ...), an
// error when it would (an unknown keyword in a virtual server, a checker type lvs-wasm does
// not run, a bad value). One error refuses the whole file.
import { isIP } from "node:net";
import { normaliseDestination, normaliseService, serviceKeyText } from "../../balancer/validate.js";
import type { DestinationConfig, ForwardMethod, Protocol, ServiceConfig, ServiceKey, TunnelOptions } from "../../config/types.js";
import { DNS_TYPES } from "../checks/dns-check.js";
import {
  KEEPALIVED_DEFAULTS,
  type CheckSpec,
  type CheckType,
  type HealthConfig,
  type HttpUrlSpec,
  type RealServerSpec,
  type VirtualServerSpec,
} from "../spec.js";
import { type Diagnostic, KeepalivedConfError, formatDiagnostic } from "./diagnostics.js";
import { readStatements, type Statement } from "./statements.js";

export interface KeepalivedConf {
  readonly config: HealthConfig;
  /** Warnings (errors make readKeepalivedConf throw). */
  readonly diagnostics: readonly Diagnostic[];
}

/** Schedulers keepalived 2.2 accepts (lvs_sched / lb_algo). */
const SCHEDULERS = new Set(["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"]);
const SCHED_FLAGS = new Set(["flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback"]);

/** Top-level blocks that only concern VRRP, BFD or the process itself: ignored with a warning. */
const IGNORED_TOP = /^(global_defs|vrrp_.*|static_.*|track_.*|bfd_instance|linkbeat_interfaces|garp_group|SSL|net_namespace.*|instance|use_.*)$/;

/** Keywords that change no traffic: read and ignored with a warning. */
const HARMLESS_VS = new Set(["ha_suspend", "smtp_alert", "snmp_name", "omega", "hashed"]);
const HARMLESS_RS = new Set(["smtp_alert", "snmp_name"]);
const HARMLESS_CHECK = new Set(["log_all_failures", "bind_if", "fwmark", "tls_compliant", "user"]);

interface Timers {
  delayLoop?: number;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  alpha?: boolean;
  inhibit?: boolean;
  virtualhost?: string;
}

interface Group {
  readonly entries: Array<{ kind: "address"; address: string; port: number } | { kind: "fwmark"; mark: number; family?: 4 | 6 }>;
}

class Reader {
  readonly diagnostics: Diagnostic[] = [];
  readonly groups = new Map<string, Group>();

  warn(s: Statement, message: string): void {
    this.diagnostics.push({ severity: "warning", file: s.file, line: s.line, message });
  }
  error(s: Statement, message: string): void {
    this.diagnostics.push({ severity: "error", file: s.file, line: s.line, message });
  }

  // ------------------------------------------------------------------ values

  arg(s: Statement, index = 1): string | undefined {
    const v = s.words[index];
    if (v === undefined) this.error(s, `${s.words[0]} needs a value`);
    return v;
  }
  integer(s: Statement, min: number, max: number, index = 1): number | undefined {
    const v = this.arg(s, index);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.error(s, `${s.words[0]} ${v}: expected an integer in ${min}..${max}`);
      return undefined;
    }
    return Number(v);
  }
  /** keepalived's TIMER: seconds, fractions allowed; returned in ms. */
  timer(s: Statement, min = 0): number | undefined {
    const v = this.arg(s);
    if (v === undefined) return undefined;
    if (!/^\d+(\.\d+)?$/.test(v) || Number(v) * 1000 < min) {
      this.error(s, `${s.words[0]} ${v}: expected a time in seconds (fractions allowed)${min ? `, at least ${min / 1000}` : ""}`);
      return undefined;
    }
    return Math.round(Number(v) * 1000);
  }
  /** "alpha" alone is true; "alpha yes|no|true|false|on|off". */
  bool(s: Statement): boolean | undefined {
    const v = s.words[1];
    if (v === undefined) return true;
    if (/^(yes|true|on)$/i.test(v)) return true;
    if (/^(no|false|off)$/i.test(v)) return false;
    this.error(s, `${s.words[0]} ${v}: expected yes or no`);
    return undefined;
  }
  address(s: Statement, text: string | undefined): string | undefined {
    if (text === undefined) return undefined;
    if (isIP(text) === 0) {
      this.error(s, `${text}: not an IP address`);
      return undefined;
    }
    return text;
  }
  port(s: Statement, text: string | undefined): number | undefined {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) > 65535) {
      this.error(s, `${text}: not a port (0..65535)`);
      return undefined;
    }
    return Number(text);
  }
  /** A program and its arguments from a STRING or QUOTED-STRING (one word after splitting). */
  command(s: Statement): string[] | undefined {
    const rest = s.words.slice(1);
    if (rest.length === 0) {
      this.error(s, `${s.words[0]} needs a program`);
      return undefined;
    }
    // `misc_path "/bin/check arg"`: the quoted word holds the program and its arguments.
    return rest.length === 1 ? rest[0].split(/[ \t]+/).filter(Boolean) : rest;
  }

  /** The timer-like options valid at virtual server, real server and checker level. */
  commonOption(s: Statement, t: Timers): boolean {
    switch (s.words[0]) {
      case "delay_loop":
        t.delayLoop = this.timer(s, 1) ?? t.delayLoop;
        return true;
      case "connect_timeout":
        t.connectTimeout = this.timer(s, 1) ?? t.connectTimeout;
        return true;
      case "retry":
      case "nb_get_retry":
        t.retry = this.integer(s, 0, 1_000_000) ?? t.retry;
        return true;
      case "delay_before_retry":
        t.delayBeforeRetry = this.timer(s) ?? t.delayBeforeRetry;
        return true;
      case "warmup":
        t.warmup = this.timer(s) ?? t.warmup;
        return true;
      case "alpha":
        t.alpha = this.bool(s) ?? t.alpha;
        return true;
      case "virtualhost":
        t.virtualhost = this.arg(s) ?? t.virtualhost;
        return true;
      default:
        return false;
    }
  }

  forwarding(s: Statement): { method: ForwardMethod; tunnel?: TunnelOptions } | undefined {
    const kind = this.arg(s)?.toUpperCase();
    if (kind === "NAT") return { method: "masq" };
    if (kind === "DR") return { method: "route" };
    if (kind === "TUN") {
      const words = s.words.slice(2);
      let type: TunnelOptions["type"] = "ipip";
      let port: number | undefined;
      let checksum: TunnelOptions["checksum"] = "nocsum";
      for (let i = 0; i < words.length; i++) {
        const w = words[i];
        if (w === "type") {
          const t = words[++i];
          if (t !== "ipip" && t !== "gue" && t !== "gre") {
            this.error(s, `tunnel type ${t ?? "(none)"}: expected ipip, gue or gre`);
            return undefined;
          }
          type = t;
        } else if (w === "port") port = this.port(s, words[++i]);
        else if (w === "nocsum" || w === "csum" || w === "remcsum") checksum = w;
        else {
          this.error(s, `${w}: not a tunnel option (type ipip|gue port N|gre, nocsum|csum|remcsum)`);
          return undefined;
        }
      }
      return { method: "tunnel", tunnel: { type, checksum, ...(port !== undefined ? { port } : {}) } };
    }
    if (kind !== undefined) this.error(s, `${s.words[0]} ${s.words[1]}: expected NAT, DR or TUN`);
    return undefined;
  }

  // ------------------------------------------------------------------ groups

  group(s: Statement): void {
    const name = this.arg(s);
    if (name === undefined) return;
    const entries: Group["entries"] = [];
    for (const e of s.block ?? []) {
      if (e.words[0] === "fwmark") {
        const mark = this.integer(e, 1, 0xffffffff);
        const fam = e.words[2];
        if (mark !== undefined)
          entries.push({ kind: "fwmark", mark, ...(fam === "inet6" ? { family: 6 as const } : fam === "inet" ? { family: 4 as const } : {}) });
        continue;
      }
      const [range, portText] = e.words;
      const port = portText === undefined ? 0 : this.port(e, portText);
      if (port === undefined) continue;
      for (const address of this.expandRange(e, range)) entries.push({ kind: "address", address, port });
    }
    if (entries.length === 0) this.warn(s, `virtual_server_group ${name} has no entries`);
    this.groups.set(name, { entries });
  }

  /** "10.0.0.1", "10.0.0.1-10" (last byte range), "10.0.0.8/29". IPv4 ranges only. */
  expandRange(s: Statement, text: string): string[] {
    const dash = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(text);
    if (dash) {
      const [lo, hi] = [Number(dash[2]), Number(dash[3])];
      if (lo > hi || hi > 255) {
        this.error(s, `${text}: not an address range`);
        return [];
      }
      return Array.from({ length: hi - lo + 1 }, (_, i) => `${dash[1]}${lo + i}`);
    }
    const slash = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(text);
    if (slash && isIP(slash[1]) === 4 && Number(slash[2]) >= 24 && Number(slash[2]) <= 32) {
      const base = slash[1].split(".").map(Number);
      const size = 2 ** (32 - Number(slash[2]));
      const first = base[3] & ~(size - 1) & 0xff;
      return Array.from({ length: size }, (_, i) => `${base[0]}.${base[1]}.${base[2]}.${first + i}`);
    }
    const a = this.address(s, text);
    return a ? [a] : [];
  }

  // ------------------------------------------------------------------ virtual servers

  virtualServer(s: Statement): VirtualServerSpec | null {
    const errorsBefore = this.errorCount();
    const [, first, second] = s.words;
    type Head = { kind: "address"; address: string; port: number } | { kind: "fwmark"; mark: number; family?: 4 | 6 };
    let heads: Head[] = [];
    if (first === "group") {
      const g = second === undefined ? undefined : this.groups.get(second);
      if (!g) {
        this.error(s, `virtual_server group ${second ?? "(none)"}: no virtual_server_group of that name (define it before use)`);
        return null;
      }
      heads = [...g.entries];
    } else if (first === "fwmark") {
      const mark = this.integer(s, 1, 0xffffffff, 2);
      if (mark === undefined) return null;
      heads = [{ kind: "fwmark", mark }];
    } else {
      const address = this.address(s, first);
      const port = second === undefined ? 0 : this.port(s, second);
      if (address === undefined || port === undefined) return null;
      heads = [{ kind: "address", address, port }];
    }
    const t: Timers = {};
    let scheduler: string | undefined;
    const flags: string[] = [];
    let onePacket = false;
    let forwarding: { method: ForwardMethod; tunnel?: TunnelOptions } | undefined;
    let persistenceTimeout: number | undefined;
    let granularity: string | undefined;
    let persistenceEngine: string | undefined;
    let protocol: Protocol | undefined;
    let family: 4 | 6 | undefined;
    let quorum = 1;
    let hysteresis = 0;
    let defaultWeight = 1;
    let quorumUp: string[] | undefined;
    let quorumDown: string[] | undefined;
    let sorry: { address: string; port?: number; inhibit: boolean; forwarding?: { method: ForwardMethod; tunnel?: TunnelOptions }; at: Statement } | undefined;
    const rsBlocks: Statement[] = [];
    for (const o of s.block ?? []) {
      const k = o.words[0];
      if (this.commonOption(o, t)) continue;
      switch (k) {
        case "lb_algo":
        case "lvs_sched": {
          const v = this.arg(o);
          if (v !== undefined && !SCHEDULERS.has(v)) this.error(o, `${k} ${v}: not a scheduler (${[...SCHEDULERS].join(", ")})`);
          else scheduler = v;
          break;
        }
        case "lb_kind":
        case "lvs_method":
          forwarding = this.forwarding(o) ?? forwarding;
          break;
        case "ops":
          onePacket = true;
          break;
        case "persistence_timeout":
          persistenceTimeout = o.words.length > 1 ? this.integer(o, 1, 86400 * 31) : KEEPALIVED_DEFAULTS.persistenceTimeout;
          break;
        case "persistence_granularity":
          granularity = this.arg(o);
          break;
        case "persistence_engine":
          persistenceEngine = this.arg(o);
          break;
        case "protocol": {
          const v = this.arg(o)?.toUpperCase();
          if (v === "TCP" || v === "UDP" || v === "SCTP") protocol = v.toLowerCase() as Protocol;
          else if (v !== undefined) this.error(o, `protocol ${o.words[1]}: expected TCP, UDP or SCTP`);
          break;
        }
        case "ip_family": {
          const v = this.arg(o);
          if (v === "inet") family = 4;
          else if (v === "inet6") family = 6;
          else if (v !== undefined) this.error(o, `ip_family ${v}: expected inet or inet6`);
          break;
        }
        case "quorum":
          quorum = this.integer(o, 1, 0xffffffff) ?? quorum;
          break;
        case "hysteresis":
          hysteresis = this.integer(o, 0, 0xffffffff) ?? hysteresis;
          break;
        case "weight":
          defaultWeight = this.integer(o, 1, 65535) ?? defaultWeight;
          break;
        case "inhibit_on_failure":
          t.inhibit = this.bool(o) ?? t.inhibit;
          break;
        case "quorum_up":
          quorumUp = this.command(o);
          break;
        case "quorum_down":
          quorumDown = this.command(o);
          break;
        case "sorry_server": {
          const address = this.address(o, o.words[1]);
          const port = o.words[2] === undefined ? undefined : this.port(o, o.words[2]);
          if (address !== undefined) sorry = { address, ...(port !== undefined ? { port } : {}), inhibit: sorry?.inhibit ?? false, at: o };
          break;
        }
        case "sorry_server_inhibit":
          if (!sorry) this.warn(o, "sorry_server_inhibit before or without sorry_server: ignored (as keepalived does)");
          else sorry.inhibit = true;
          break;
        case "sorry_server_lvs_method":
          if (!sorry) this.warn(o, "sorry_server_lvs_method without sorry_server: ignored");
          else sorry.forwarding = this.forwarding(o);
          break;
        case "real_server":
          rsBlocks.push(o);
          break;
        default:
          if (SCHED_FLAGS.has(k)) flags.push(k);
          else if (HARMLESS_VS.has(k)) this.warn(o, `${k}: not applied by lvs-wasm (changes no traffic)`);
          else this.error(o, `${k}: unknown or unsupported in virtual_server (it could change traffic, so the file is refused)`);
      }
    }
    if (!scheduler) {
      this.warn(s, `no lvs_sched (lb_algo): keepalived's default ${KEEPALIVED_DEFAULTS.scheduler} is used`);
      scheduler = KEEPALIVED_DEFAULTS.scheduler;
    }
    if (!forwarding) forwarding = { method: "masq" };
    const anyAddress = heads.some((h) => h.kind === "address");
    if (anyAddress && !protocol) {
      this.warn(s, "no protocol: keepalived's default UDP is used (add `protocol TCP`)");
      protocol = "udp";
    }
    if (!persistenceTimeout && heads.some((h) => h.kind === "address" && h.port === 0)) {
      this.warn(s, `port 0 is only valid for persistent services: persistence_timeout ${KEEPALIVED_DEFAULTS.persistenceTimeout} set (as keepalived does)`);
      persistenceTimeout = KEEPALIVED_DEFAULTS.persistenceTimeout;
    }
    if (granularity && !persistenceTimeout) persistenceTimeout = KEEPALIVED_DEFAULTS.persistenceTimeout;
    const vsDefaults = { ...t, forwarding, defaultWeight };
    const realServers: RealServerSpec[] = [];
    const rsStatements: Statement[] = [];
    for (const r of rsBlocks) {
      const rs = this.realServer(r, vsDefaults, heads[0]?.kind === "address" ? heads[0].port : 0);
      if (rs) {
        realServers.push(rs);
        rsStatements.push(r);
      }
    }
    if (rsBlocks.length === 0) this.warn(s, "virtual server has no real servers: ignored (as keepalived does)");
    const familyOf = (h: Head): 4 | 6 =>
      h.kind === "address" ? (isIP(h.address) as 4 | 6) : (h.family ?? family ?? (isIP(realServers[0]?.destination.address ?? "") === 6 ? 6 : 4));
    const services: ServiceConfig[] = [];
    for (const h of heads) {
      const key: ServiceKey =
        h.kind === "address"
          ? { kind: "address", protocol: protocol ?? "tcp", address: h.address, port: h.port }
          : { kind: "fwmark", fwmark: h.mark, family: familyOf(h) };
      const fam = familyOf(h);
      const service: ServiceConfig = {
        key,
        scheduler,
        schedulerFlags: flags,
        onePacket,
        ...(persistenceTimeout ? { persistence: { timeout: persistenceTimeout, netmask: granularity ?? (fam === 6 ? 128 : "255.255.255.255") } } : {}),
        ...(persistenceEngine ? { persistenceEngine } : {}),
      };
      if (fam === 6 && granularity && /^\d+$/.test(granularity)) (service.persistence as { netmask: string | number }).netmask = Number(granularity);
      try {
        services.push(normaliseService(service));
      } catch (e) {
        this.error(s, e instanceof Error ? e.message : String(e));
      }
    }
    let total = 0;
    realServers.forEach((rs, i) => {
      total += rs.destination.weight;
      try {
        if (heads[0]) normaliseDestination(rs.destination, familyOf(heads[0]));
      } catch (e) {
        this.error(rsStatements[i], e instanceof Error ? e.message : String(e));
      }
    });
    if (realServers.length > 0 && quorum > total) {
      this.warn(s, `quorum ${quorum} exceeds the real servers' total weight ${total}: reduced to ${total} (as keepalived does)`);
      quorum = total;
    }
    let sorryServer: VirtualServerSpec["sorryServer"];
    if (sorry) {
      const f = sorry.forwarding ?? forwarding;
      const destination: DestinationConfig = {
        address: sorry.address,
        port: sorry.port ?? (heads[0]?.kind === "address" ? heads[0].port : 0),
        method: f.method,
        weight: 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        ...(f.tunnel ? { tunnel: f.tunnel } : {}),
      };
      sorryServer = { destination, inhibit: sorry.inhibit };
    }
    if (this.errorCount() > errorsBefore || rsBlocks.length === 0) return null;
    return {
      services,
      realServers,
      quorum,
      hysteresis,
      ...(sorryServer ? { sorryServer } : {}),
      ...(quorumUp ? { quorumUp } : {}),
      ...(quorumDown ? { quorumDown } : {}),
      source: `${s.file}:${s.line}`,
    };
  }

  realServer(
    s: Statement,
    vs: Timers & { forwarding: { method: ForwardMethod; tunnel?: TunnelOptions }; defaultWeight: number },
    vport: number,
  ): RealServerSpec | null {
    const address = this.address(s, s.words[1]);
    const port = s.words[2] === undefined ? vport : this.port(s, s.words[2]);
    if (address === undefined || port === undefined) return null;
    const t: Timers = {};
    let weight = vs.defaultWeight;
    let forwarding = vs.forwarding;
    let upper = 0;
    let lower = 0;
    let notifyUp: string[] | undefined;
    let notifyDown: string[] | undefined;
    const checkBlocks: Statement[] = [];
    for (const o of s.block ?? []) {
      const k = o.words[0];
      if (this.commonOption(o, t)) continue;
      switch (k) {
        case "weight":
          weight = this.integer(o, 0, 65535) ?? weight;
          break;
        case "lvs_method":
        case "lb_kind":
          forwarding = this.forwarding(o) ?? forwarding;
          break;
        case "uthreshold":
          upper = this.integer(o, 0, 0xffffffff) ?? upper;
          break;
        case "lthreshold":
          lower = this.integer(o, 0, 0xffffffff) ?? lower;
          break;
        case "inhibit_on_failure":
          t.inhibit = this.bool(o) ?? t.inhibit;
          break;
        case "notify_up":
          notifyUp = this.command(o);
          break;
        case "notify_down":
          notifyDown = this.command(o);
          break;
        case "TCP_CHECK":
        case "HTTP_GET":
        case "SSL_GET":
        case "MISC_CHECK":
        case "DNS_CHECK":
          checkBlocks.push(o);
          break;
        default:
          if (HARMLESS_RS.has(k)) this.warn(o, `${k}: not applied by lvs-wasm (changes no traffic)`);
          else if (/^[A-Z]+_CHECK$/.test(k))
            this.error(o, `${k}: lvs-wasm does not run this checker (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK and DNS_CHECK it does)`);
          else this.error(o, `${k}: unknown or unsupported in real_server (it could change traffic, so the file is refused)`);
      }
    }
    const merged: Timers = { ...vs, ...definedOnly(t) };
    const destination: DestinationConfig = {
      address,
      port,
      method: forwarding.method,
      weight,
      upperThreshold: upper,
      lowerThreshold: lower,
      ...(forwarding.tunnel ? { tunnel: forwarding.tunnel } : {}),
    };
    const checks = checkBlocks.flatMap((c) => {
      const spec = this.check(c, merged, address, port);
      return spec ? [spec] : [];
    });
    return {
      destination,
      checks,
      inhibitOnFailure: merged.inhibit ?? false,
      ...(notifyUp ? { notifyUp } : {}),
      ...(notifyDown ? { notifyDown } : {}),
      source: `${s.file}:${s.line}`,
    };
  }

  check(s: Statement, rs: Timers, address: string, port: number): CheckSpec | null {
    const type = s.words[0] as CheckType;
    const t: Timers = {};
    let connectIp: string | undefined;
    let connectPort: number | undefined;
    let bindto: string | undefined;
    let bindPort: number | undefined;
    const urls: HttpUrlSpec[] = [];
    let httpProtocol: "1.0" | "1.0C" | "1.1" = "1.0";
    let enableSni = false;
    let fastRecovery = false;
    let command: string[] | undefined;
    let miscTimeout: number | undefined;
    let dynamic = false;
    let queryType = "SOA";
    let name = ".";
    const network = type !== "MISC_CHECK";
    for (const o of s.block ?? []) {
      const k = o.words[0];
      if (this.commonOption(o, t)) continue;
      if (network && k === "connect_ip") connectIp = this.address(o, o.words[1]) ?? connectIp;
      else if (network && k === "connect_port") connectPort = this.port(o, o.words[1]) ?? connectPort;
      else if (network && k === "bindto") bindto = this.address(o, o.words[1]) ?? bindto;
      else if (network && k === "bind_port") bindPort = this.port(o, o.words[1]) ?? bindPort;
      else if ((type === "HTTP_GET" || type === "SSL_GET") && k === "url") {
        const u = this.url(o);
        if (u) urls.push(u);
      } else if ((type === "HTTP_GET" || type === "SSL_GET") && k === "http_protocol") {
        const v = this.arg(o);
        if (v === "1.0" || v === "1.0C" || v === "1.1") httpProtocol = v;
        else if (v !== undefined) this.error(o, `http_protocol ${v}: expected 1.0, 1.0C or 1.1`);
      } else if (type === "SSL_GET" && k === "enable_sni") enableSni = true;
      else if ((type === "HTTP_GET" || type === "SSL_GET") && k === "fast_recovery") fastRecovery = this.bool(o) ?? fastRecovery;
      else if (type === "MISC_CHECK" && k === "misc_path") command = this.command(o);
      else if (type === "MISC_CHECK" && k === "misc_timeout") miscTimeout = ((v) => (v === undefined ? undefined : v * 1000))(this.integer(o, 0, 0x7fffffff));
      else if (type === "MISC_CHECK" && k === "misc_dynamic") dynamic = true;
      else if (type === "DNS_CHECK" && k === "type") {
        const v = this.arg(o)?.toUpperCase();
        if (v !== undefined && !(v in DNS_TYPES)) this.error(o, `type ${v}: expected one of ${Object.keys(DNS_TYPES).join(", ")}`);
        else if (v) queryType = v;
      } else if (type === "DNS_CHECK" && k === "name") name = this.arg(o) ?? name;
      else if (HARMLESS_CHECK.has(k)) this.warn(o, `${k}: not applied by lvs-wasm (changes no traffic)`);
      else this.error(o, `${k}: unknown or unsupported in ${type} (it could change which servers get traffic, so the file is refused)`);
    }
    const m: Timers = { ...rs, ...definedOnly(t) };
    const delayLoop = m.delayLoop ?? KEEPALIVED_DEFAULTS.delayLoop;
    const timers = {
      delayLoop,
      connectTimeout: m.connectTimeout ?? KEEPALIVED_DEFAULTS.connectTimeout,
      retry: m.retry ?? KEEPALIVED_DEFAULTS.retry[type],
      delayBeforeRetry: m.delayBeforeRetry ?? KEEPALIVED_DEFAULTS.delayBeforeRetry[type] ?? delayLoop,
      warmup: m.warmup ?? delayLoop,
      alpha: m.alpha ?? false,
    };
    const target = {
      address: connectIp ?? address,
      port: connectPort ?? port,
      ...(bindto ? { bindto } : {}),
      ...(bindPort ? { bindPort } : {}),
    };
    switch (type) {
      case "TCP_CHECK":
        if (target.port === 0) this.error(s, "TCP_CHECK needs a port: connect_port, or a real server port");
        return { type, ...timers, ...target };
      case "HTTP_GET":
      case "SSL_GET":
        if (urls.length === 0) {
          this.error(s, `${type} needs at least one url { path ... } block`);
          return null;
        }
        return {
          type,
          ...timers,
          ...target,
          urls,
          httpProtocol,
          ...(m.virtualhost ? { virtualhost: m.virtualhost } : {}),
          ...(enableSni ? { enableSni } : {}),
          ...(fastRecovery ? { fastRecovery } : {}),
        };
      case "MISC_CHECK":
        if (!command || command.length === 0) {
          this.error(s, "MISC_CHECK needs misc_path");
          return null;
        }
        return { type, ...timers, command, timeout: miscTimeout || delayLoop, dynamic };
      case "DNS_CHECK":
        return { type, ...timers, ...target, port: connectPort ?? 53, queryType, name };
    }
    return null;
  }

  url(s: Statement): HttpUrlSpec | null {
    let path: string | undefined;
    let digest: string | undefined;
    const codes: Array<[number, number]> = [];
    let virtualhost: string | undefined;
    for (const o of s.block ?? []) {
      const k = o.words[0];
      if (k === "path") path = this.arg(o);
      else if (k === "digest") {
        const v = this.arg(o);
        if (v !== undefined && !/^[0-9a-fA-F]{32}$/.test(v)) this.error(o, `digest ${v}: expected 32 hex digits (an MD5, as genhash prints)`);
        else digest = v?.toLowerCase();
      } else if (k === "status_code") {
        for (const w of o.words.slice(1)) {
          const m = /^(\d{3})(?:-(\d{3}))?$/.exec(w);
          if (!m || Number(m[1]) < 100 || Number(m[2] ?? m[1]) > 599 || Number(m[2] ?? m[1]) < Number(m[1]))
            this.error(o, `status_code ${w}: expected a code or range in 100..599`);
          else codes.push([Number(m[1]), Number(m[2] ?? m[1])]);
        }
      } else if (k === "virtualhost") virtualhost = this.arg(o);
      else if (k === "tls_compliant") this.warn(o, "tls_compliant: not applied by lvs-wasm (changes no traffic)");
      else this.error(o, `${k}: unknown or unsupported in url (regex checks are not run; the file is refused)`);
    }
    if (path === undefined) {
      this.error(s, "url needs a path");
      return null;
    }
    return {
      path,
      ...(digest ? { digest } : {}),
      statusCodes: codes.length > 0 ? codes : KEEPALIVED_DEFAULTS.statusCodes,
      ...(virtualhost ? { virtualhost } : {}),
    };
  }

  errorCount(): number {
    return this.diagnostics.filter((d) => d.severity === "error").length;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Reads a keepalived.conf (and its includes). Returns the configuration and the warnings;
 * throws KeepalivedConfError whose message is the first error ("file:line: error: ...")
 * when anything would change traffic and cannot be applied. Nothing is applied here.
 */
export function readKeepalivedConf(file: string): KeepalivedConf {
  const reader = new Reader();
  const statements = readStatements(file);
  const virtualServers: VirtualServerSpec[] = [];
  const seen = new Map<string, string>();
  for (const s of statements) {
    const k = s.words[0];
    if (k === "virtual_server_group") reader.group(s);
    else if (k === "virtual_server") {
      const vs = reader.virtualServer(s);
      if (!vs) continue;
      for (const svc of vs.services) {
        const text = serviceKeyText(svc.key);
        const before = seen.get(text);
        if (before) reader.error(s, `virtual server ${text} is already defined at ${before}`);
        else seen.set(text, `${s.file}:${s.line}`);
      }
      virtualServers.push(vs);
    } else if (IGNORED_TOP.test(k)) reader.warn(s, `${k}: not applied by lvs-wasm (it reads the LVS part: virtual_server, virtual_server_group)`);
    else reader.warn(s, `${k}: unknown top-level keyword, ignored`);
  }
  const errors = reader.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? "s" : ""})` : "";
    throw new KeepalivedConfError(`${formatDiagnostic(errors[0])}${more}`, reader.diagnostics);
  }
  return { config: { virtualServers }, diagnostics: reader.diagnostics };
}
