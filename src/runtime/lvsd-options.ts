// lvsd's options and its command line: what LvsdOptions holds, the usage text, and the
// parser that turns argv into options (or one line naming what is wrong). The daemon
// itself (lvsd.ts) never reads argv.
import { isIPv4, isIPv6 } from "node:net";
import type { BalancerOptions } from "../balancer/balancer.js";
import { parseSysctlAssignment } from "../balancer/sysctls.js";
import { ConfigError } from "../config/types.js";
import type { PacketIO } from "../io/packet-io.js";
import { parseMetricsAddress } from "../metrics/metrics-server.js";
import type { ControlServerOptions } from "../admin/control-server.js";
import { checkSocketPathLength } from "../admin/socket-claim.js";
import { MAX_DESTINATIONS, MAX_SERVICES } from "../sched/service-table.js";
import type { WorkerMeshData } from "./workers/worker-mesh.js";
/** An adapter lvsd opens itself. */
export type AdapterSpec =
  | {
      readonly kind: "tun";
      readonly name: string;
      readonly netns?: string;
      readonly mtu?: number;
      /** Default true: IFF_VNET_HDR with offloads. */
      readonly offload?: boolean;
      /** Default LVSD_TUN_TXQUEUELEN. */
      readonly txQueueLength?: number;
      /** Move the packets through io_uring (UringTunDevice) instead of read / write (--io-uring). */
      readonly ioUring?: boolean;
    }
  | {
      readonly kind: "af-packet";
      readonly interface: string;
      readonly netns?: string;
      /** Default true: PACKET_VNET_HDR (GSO frames and partial checksums pass whole). */
      readonly offload?: boolean;
    }
  | {
      /** An AF_XDP socket on queue 0 (--af-xdp): the interface's frames are lvsd's alone. */
      readonly kind: "af-xdp";
      readonly interface: string;
      readonly netns?: string;
    };

export interface LvsdOptions {
  /** Rules file in ipvsadm -S format, applied at start and re-read by reload(). */
  readonly rulesFile?: string;
  /** Control socket path; default /run/lvs-wasm/lvsd.sock. `false`: no socket (embedding, tests). */
  readonly socketPath?: string | false;
  /** Adapters to open (TUN device or AF_PACKET sockets). */
  readonly adapters?: readonly AdapterSpec[];
  /** Adapters opened by the caller (closed by stop() all the same). */
  readonly io?: readonly PacketIO[];
  /** Forwarding routes by adapter name (AF_PACKET with two interfaces): longest prefix wins. */
  readonly routes?: ReadonlyArray<{ readonly prefix: string; readonly adapter: string }>;
  /**
   * AF_PACKET: the interface the real servers are on (a DR director's server side). Its
   * socket reads ARP and IPv6 neighbour discovery only (a socket filter), answers for no VIP, and forwarded packets
   * leave by it unless a more specific route says otherwise (0.0.0.0/0 and ::/0 to it).
   */
  readonly serverSide?: string;
  /**
   * AF_PACKET: IPv4 and IPv6 addresses hidden from the director's own kernel by a tc ingress drop on
   * every interface but the server side, after the AF_PACKET tap (docs/tun-mode.md).
   * Removed at stop.
   */
  readonly isolateVips?: readonly string[];
  /** AF_PACKET: probe unresolved real servers by ARP / neighbour solicitation every this many ms (default 1000). */
  readonly neighbourProbeMs?: number;
  readonly balancer?: BalancerOptions;
  /**
   * Advise transparent huge pages for the data plane's memory before the tables are
   * carved (fewer TLB misses at large tables; see docs/daemon.md). Default true; best
   * effort, logged either way.
   */
  readonly hugePages?: boolean;
  /**
   * Keep a kernel route per servable VIP for a routing daemon to announce (ECMP scale-out,
   * docs/scale-out.md); `lvsadm drain` withdraws them. Off unless given.
   */
  readonly announce?: { readonly device?: string; readonly table?: number; readonly protocol?: number; readonly settleMs?: number };
  /** Control socket limits: idle timeout and connections open at once (--control-idle-ms, --control-connections). */
  readonly control?: ControlServerOptions;
  /**
   * Warn once when a service's address is local to the adapters' kernel or has TIME_WAIT or
   * listening sockets there (the early-demux trap, docs/daemon.md). Default true.
   */
  readonly vipCheck?: boolean;
  /** Director batch size and timer period. */
  readonly batch?: number;
  readonly tickMs?: number;
  /**
   * Start as a keepalived pair's standby: forward nothing and answer no ARP for the VIPs
   * until `lvsadm --start-daemon master` (docs/sync.md).
   */
  readonly standby?: boolean;
  /**
   * A sync master re-sends every live connection at least this often (ms), so that a
   * backup that starts late or comes back learns the idle ones too. 0 (default): only
   * what the kernel's rules send.
   */
  readonly syncRefreshMs?: number;
  /** One line per event. Default: stderr with an "lvsd: " prefix. */
  readonly log?: (line: string) => void;
  /** Milliseconds, monotonic (tests). Default performance.now(). */
  readonly clock?: () => number;
  /**
   * keepalived.conf whose virtual servers and health checks lvsd runs (--keepalived FILE;
   * docs/health.md). The checks run on lvsd's main thread; SIGHUP re-reads the file.
   */
  readonly keepalivedFile?: string;
  /** Serve Prometheus metrics here (--metrics HOST:PORT; docs/metrics.md). Nothing listens without it. */
  readonly metrics?: { readonly host: string; readonly port: number };
  /**
   * Data-plane workers, one thread each with its own Balancer and its own queue of every
   * adapter (--workers N; docs/daemon.md, "Threads"). lvsd's default: the cores available.
   */
  readonly workers?: number;
  /** Set by LvsdHost in each of several workers: which one this is, and what they share. */
  readonly worker?: { readonly index: number; readonly mesh: WorkerMeshData };
}

/** lvsd's transmit queue for its TUN device: room for a burst of one TCP window of 1500-byte packets (docs/io.md). */
export const LVSD_TUN_TXQUEUELEN = 4096;

/** Most data-plane workers (--workers): the hand-off rings grow with the square of the count. */
export const LVSD_MAX_WORKERS = 64;

/** lvsd's table sizes unless told otherwise: a kube-proxy-sized cluster fits. */
export const LVSD_DEFAULT_SERVICES = 65536;
export const LVSD_DEFAULT_DESTINATIONS = 262144;

export const LVSD_USAGE = `Usage: lvsd (--tun NAME [--mtu N] [--txqueuelen N]
             | --af-packet IF [--af-packet IF]... [--af-xdp IF]... [--route PREFIX=IF]...
               [--server-side IF] [--isolate-vip ADDR]...)
            [--tunnel-source4 ADDR] [--tunnel-source6 ADDR] [--tunnel-mtu N]
            [--netns NAME] [--rules FILE] [--socket PATH] [--connections N]
            [--no-huge-pages] [--no-offload] [--keepalived FILE] [--metrics HOST:PORT]
            [--standby] [--sync-refresh SECONDS] [--sysctl NAME=VALUE]...
            [--announce [--announce-table N] [--announce-protocol N] [--announce-device NAME]
                        [--announce-delay MS]]
            [--max-services N] [--max-destinations N]
            [--destinations-per-service N] [--control-idle-ms N] [--control-connections N]
            [--workers N] [--local-addresses N] [--local-port-range LOW-HIGH]
            [--io-uring]
The lvs-wasm director: runs the balancer over a TUN device or AF_PACKET sockets and takes
lvsadm commands on a root-only control socket. NAT (-m), DR (-g) and TUN (-i) real
servers; see docs/daemon.md for deploying each.

  --tun NAME            open (or create) TUN device NAME; route the VIPs (and, for NAT,
                        the real servers' replies) into it
  --mtu N               MTU for the TUN device (default: the kernel's)
  --no-offload          no virtio-net header on the adapters (TUN: IFF_VNET_HDR, AF_PACKET:
                        PACKET_VNET_HDR): the kernel cuts every frame to the MTU first (by
                        default lvsd takes 64 KB frames with partial checksums; docs/io.md)
  --txqueuelen N        the TUN device's queue toward lvsd, where the kernel drops when
                        lvsd falls behind (default 4096; the kernel's own is 500)
  --io-uring            move the TUN device's packets in batches through io_uring instead
                        of one read / write each (--tun only; docs/io.md, "TUN through
                        io_uring"); refused at start if the kernel forbids io_uring
  --af-packet IF        tap interface IF with an AF_PACKET socket (repeatable); frames
                        leaving IF carry IF's MAC
  --af-xdp IF           take interface IF's frames through an AF_XDP socket (repeatable;
                        libxdp1; one worker): no system call per packet, and IF's frames
                        no longer reach this host's kernel, ARP included (docs/io.md)
  --route PREFIX=IF     with several --af-packet: packets to PREFIX leave by IF
  --server-side IF      the real servers' interface (DR, TUN): its socket reads ARP and
                        IPv6 neighbour discovery only, answers for no VIP, and forwarded
                        packets leave by it unless a --route says otherwise
  --isolate-vip ADDR    hide ADDR (IPv4 or IPv6) from this host's kernel with a tc
                        ingress drop on every --af-packet interface but the server side
                        (repeatable; removed at exit)
  --tunnel-source4 ADDR outer IPv4 source of tunnelled packets (-i real servers): this
                        host's address on the real servers' network
  --tunnel-source6 ADDR the same for IPv6 real servers
  --tunnel-mtu N        path MTU toward the real servers (default 1500): DF packets that
                        no longer fit once encapsulated get ICMP fragmentation-needed
  --netns NAME          open the adapters inside network namespace NAME
  --rules FILE          rules in ipvsadm -S format, applied at start; SIGHUP re-reads the
                        file and applies the difference (connections stay)
  --socket PATH         control socket (default /run/lvs-wasm/lvsd.sock; lvsadm reads
                        LVS_WASM_SOCKET)
  --connections N       connection table size (default 65536)
  --no-huge-pages       do not advise transparent huge pages for the tables (by default
                        lvsd does, where the kernel allows it)
  --keepalived FILE     run the virtual servers and health checks of keepalived.conf
                        FILE (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK; see
                        docs/health.md); SIGHUP re-reads it. Excludes --rules
  --metrics HOST:PORT   serve Prometheus metrics on http://HOST:PORT/metrics (e.g.
                        127.0.0.1:9101; see docs/metrics.md)
  --standby             start as the standby of a keepalived pair: forward nothing and
                        answer no ARP for the VIPs until lvsadm --start-daemon master
                        (docs/sync.md)
  --sync-refresh S      as sync master, re-send every live connection at least every S
                        seconds (default 0: only what the kernel's rules send), so that a
                        backup that comes back learns the idle ones too
  --announce            keep a route for every VIP with a live destination in table
                        201, proto 201, via an anchor TUN device that dies with lvsd,
                        for BIRD to announce by BGP (docs/scale-out.md); lvsadm drain
                        withdraws them
  --announce-table N    the routes' table (default 201)
  --announce-protocol N the routes' protocol number, for BIRD's krt_source filter
                        (default 201)
  --announce-device NAME  the anchor device (default lvs-announce)
  --announce-delay MS   announce only once the configuration has been still this long
                        (default 1000); withdrawals are immediate
  --sysctl NAME=VALUE   an IPVS sysctl (net.ipv4.vs.NAME) that changes decisions
                        (repeatable): sloppy_tcp, sloppy_sctp, schedule_icmp, secure_tcp,
                        drop_entry, drop_packet, amemthresh, am_droprate,
                        expire_nodest_conn, expire_quiescent_template, conn_reuse_mode;
                        the kernel's defaults otherwise (docs/balancer.md, "Sysctls")
  --max-services N      service table size (default 65536; up to 1048576)
  --max-destinations N  destination table size, all services together (default 262144;
                        up to 1048575)
  --destinations-per-service N
                        longest destination list of one service (default 1024)
  --local-addresses N   full NAT's local address table, all services together (default
                        256; up to 65535)
  --local-port-range LOW-HIGH
                        ports each full-NAT local address hands out (default 32768-60999)
  --control-idle-ms N   close a control connection that sends nothing for N ms (default
                        10000)
  --control-connections N
                        control connections open at once; more are refused and logged
                        (default 64)
  --workers N           data-plane worker threads (default: the cores available), each
                        with its own balancer and its own queue of the adapters (a
                        multi-queue TUN device, an AF_PACKET fanout group); a flow and
                        its replies stay with one worker (docs/daemon.md, "Threads")
  -h, --help            this text

Signals: SIGHUP reloads the rules file, SIGUSR1 logs the packet counters, SIGTERM and
SIGINT stop cleanly (exit 0). Events are logged to stderr, one line each.
`;

/** What the command line asked for; `help` when -h was given. */
export type LvsdCommandLine = { readonly help: true } | ({ readonly help: false } & LvsdOptions);

/** Parses lvsd's arguments; throws ConfigError with one line naming the problem. */
export function parseLvsdArgs(argv: readonly string[]): LvsdCommandLine {
  let tun: string | undefined;
  let mtu: number | undefined;
  let netns: string | undefined;
  let rulesFile: string | undefined;
  let socketPath: string | undefined;
  let connections: number | undefined;
  let hugePages = true;
  let standby = false;
  let syncRefreshMs = 0;
  let announceOn = false;
  const announce: { device?: string; table?: number; protocol?: number; settleMs?: number } = {};
  let offload = true;
  let txQueueLength: number | undefined;
  let ioUring = false;
  // --af-xdp interfaces, and every Ethernet interface in the order given (the first one's MAC is the director's).
  const xdp: string[] = [];
  const ethernet: Array<{ kind: "af-packet" | "af-xdp"; interface: string }> = [];
  // Table sizes and control limits (docs/daemon.md, "Limits").
  const tables: {
    maxServices?: number;
    maxDestinations?: number;
    destinationsPerService?: number;
    localAddresses?: number;
    localPortRange?: [number, number];
  } = {};
  const control: { idleTimeoutMs?: number; maxConnections?: number } = {};
  const interfaces: string[] = [];
  const routes: Array<{ prefix: string; adapter: string }> = [];
  let serverSide: string | undefined;
  const isolate: string[] = [];
  let tunnelSource4: string | undefined;
  let tunnelSource6: string | undefined;
  let tunnelMtu: number | undefined;
  let keepalivedFile: string | undefined;
  let metrics: { host: string; port: number } | undefined;
  let workers: number | undefined;
  const sysctls: Record<string, number> = {};
  const ipv4 = (text: string, name: string): string => {
    if (!isIPv4(text)) throw new ConfigError(`${name} ${text}: expected an IPv4 address`);
    return text;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined || v === "") throw new ConfigError(`${name} needs a value (see lvsd --help)`);
      return v;
    };
    const integer = (text: string, min: number, max: number): number => {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n < min || n > max) throw new ConfigError(`${name} ${text}: expected an integer in ${min}..${max}`);
      return n;
    };
    switch (name) {
      case "-h":
      case "--help":
        return { help: true };
      case "--tun":
        tun = value();
        break;
      case "--mtu":
        mtu = integer(value(), 68, 65535);
        break;
      case "--af-packet":
        interfaces.push(value());
        ethernet.push({ kind: "af-packet", interface: interfaces[interfaces.length - 1] });
        break;
      case "--af-xdp":
        xdp.push(value());
        ethernet.push({ kind: "af-xdp", interface: xdp[xdp.length - 1] });
        break;
      case "--route": {
        const v = value();
        const at = v.lastIndexOf("=");
        if (at <= 0 || at === v.length - 1) throw new ConfigError(`--route ${v}: expected PREFIX=IF, e.g. 192.168.10.0/24=eth1`);
        routes.push({ prefix: v.slice(0, at), adapter: v.slice(at + 1) });
        break;
      }
      case "--server-side":
        if (serverSide !== undefined) throw new ConfigError("--server-side is given once (the real servers' interface)");
        serverSide = value();
        break;
      case "--isolate-vip": {
        const v = value();
        if (!isIPv4(v) && !isIPv6(v)) throw new ConfigError(`--isolate-vip ${v}: expected an IPv4 or IPv6 address`);
        isolate.push(v);
        break;
      }
      case "--tunnel-source4":
        tunnelSource4 = ipv4(value(), name);
        break;
      case "--tunnel-source6": {
        const v = value();
        if (!isIPv6(v)) throw new ConfigError(`--tunnel-source6 ${v}: expected an IPv6 address`);
        tunnelSource6 = v;
        break;
      }
      case "--tunnel-mtu":
        tunnelMtu = integer(value(), 68, 65535);
        break;
      case "--netns":
        netns = value();
        break;
      case "--rules":
        rulesFile = value();
        break;
      case "--socket":
        socketPath = value();
        checkSocketPathLength(socketPath);
        break;
      case "--connections":
        connections = integer(value(), 1, 1 << 24);
        break;
      case "--txqueuelen":
        txQueueLength = integer(value(), 1, 1_000_000);
        break;
      case "--no-offload":
        offload = false;
        break;
      case "--io-uring":
        ioUring = true;
        break;
      case "--no-huge-pages":
        hugePages = false;
        break;
      case "--keepalived":
        keepalivedFile = value();
        break;
      case "--metrics":
        metrics = parseMetricsAddress(value());
        break;
      case "--standby":
        standby = true;
        break;
      case "--sync-refresh":
        syncRefreshMs = integer(value(), 0, 86400) * 1000;
        break;
      case "--announce":
        announceOn = true;
        break;
      case "--announce-table":
        announce.table = integer(value(), 1, 252);
        break;
      case "--announce-protocol":
        announce.protocol = integer(value(), 1, 252);
        break;
      case "--announce-device":
        announce.device = value();
        break;
      case "--announce-delay":
        announce.settleMs = integer(value(), 0, 600_000);
        break;
      case "--sysctl": {
        const { name: sysctl, value: v } = parseSysctlAssignment(value());
        sysctls[sysctl] = v;
        break;
      }
      case "--max-services":
        tables.maxServices = integer(value(), 1, MAX_SERVICES);
        break;
      case "--max-destinations":
        tables.maxDestinations = integer(value(), 1, MAX_DESTINATIONS);
        break;
      case "--destinations-per-service":
        tables.destinationsPerService = integer(value(), 1, MAX_DESTINATIONS);
        break;
      // Full NAT's local addresses (docs/scale-out.md, "Full NAT").
      case "--local-addresses":
        tables.localAddresses = integer(value(), 1, 65535);
        break;
      case "--local-port-range": {
        const text = value();
        const m = /^(\d+)-(\d+)$/.exec(text);
        const [low, high] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
        if (!m || low < 1 || low > high || high > 65535) throw new ConfigError(`--local-port-range ${text}: expected LOW-HIGH, ports 1..65535, LOW <= HIGH`);
        tables.localPortRange = [low, high];
        break;
      }
      case "--control-idle-ms":
        control.idleTimeoutMs = integer(value(), 100, 3_600_000);
        break;
      case "--control-connections":
        control.maxConnections = integer(value(), 1, 65536);
        break;
      case "--workers":
        workers = integer(value(), 1, LVSD_MAX_WORKERS);
        break;
      default:
        throw new ConfigError(`unknown option ${arg} (see lvsd --help)`);
    }
  }
  if (keepalivedFile && rulesFile) throw new ConfigError("--keepalived and --rules exclude each other: one file owns the virtual services");
  if (tun && interfaces.length > 0) throw new ConfigError("--tun and --af-packet exclude each other: one kind of adapter per director");
  if (tun && xdp.length > 0) throw new ConfigError("--tun and --af-xdp exclude each other: an AF_XDP socket carries Ethernet frames");
  if (new Set(ethernet.map((e) => e.interface)).size < ethernet.length) throw new ConfigError("an interface is named twice (--af-packet / --af-xdp)");
  if (xdp.length > 0 && workers !== undefined && workers > 1)
    throw new ConfigError(`--af-xdp runs one worker (one socket on queue 0): --workers ${workers} is not supported with it`);
  if (!tun && ethernet.length === 0) throw new ConfigError("an adapter is needed: --tun NAME or --af-packet IF (see lvsd --help)");
  if (mtu !== undefined && !tun) throw new ConfigError("--mtu applies to --tun only");
  if (txQueueLength !== undefined && !tun) throw new ConfigError("--txqueuelen applies to --tun only");
  if (ioUring && !tun) throw new ConfigError("--io-uring applies to --tun only (AF_PACKET sockets have recvmmsg / sendmmsg already)");
  if (routes.length > 0 && ethernet.length === 0)
    throw new ConfigError("--route applies to --af-packet only (a TUN device hands packets to the kernel's routing)");
  if (serverSide !== undefined && !interfaces.includes(serverSide)) throw new ConfigError(`--server-side ${serverSide}: not one of the --af-packet interfaces`);
  if (serverSide !== undefined && ethernet.length < 2) throw new ConfigError("--server-side needs a second --af-packet interface for the clients");
  if (isolate.length > 0 && interfaces.length === 0)
    throw new ConfigError("--isolate-vip applies to --af-packet only (with a TUN device the VIPs are routed, not owned)");
  if (tunnelMtu !== undefined && !tunnelSource4 && !tunnelSource6) throw new ConfigError("--tunnel-mtu needs --tunnel-source4 or --tunnel-source6");
  if (!announceOn && Object.keys(announce).length > 0)
    throw new ConfigError("--announce-table, --announce-protocol, --announce-device and --announce-delay need --announce");
  const tunnel = {
    ...(tunnelSource4 ? { tunnelSource4 } : {}),
    ...(tunnelSource6 ? { tunnelSource6 } : {}),
    ...(tunnelMtu !== undefined ? { tunnelMtu } : {}),
  };
  const perService = tables.destinationsPerService ?? 0;
  if (perService > (tables.maxDestinations ?? LVSD_DEFAULT_DESTINATIONS)) {
    throw new ConfigError(`--destinations-per-service ${perService}: more than --max-destinations ${tables.maxDestinations ?? LVSD_DEFAULT_DESTINATIONS}`);
  }
  const balancer = {
    ...tables,
    ...(connections ? { connections } : {}),
    ...(Object.keys(tunnel).length > 0 ? { director: tunnel } : {}),
    ...(Object.keys(sysctls).length > 0 ? { sysctls } : {}),
  };
  const adapters: AdapterSpec[] = tun
    ? [
        {
          kind: "tun",
          name: tun,
          ...(netns ? { netns } : {}),
          ...(mtu !== undefined ? { mtu } : {}),
          ...(offload ? {} : { offload: false }),
          ...(txQueueLength !== undefined ? { txQueueLength } : {}),
          ...(ioUring ? { ioUring } : {}),
        },
      ]
    : ethernet.map(
        (e): AdapterSpec =>
          e.kind === "af-xdp"
            ? { kind: "af-xdp", interface: e.interface, ...(netns ? { netns } : {}) }
            : { kind: "af-packet", interface: e.interface, ...(netns ? { netns } : {}), ...(offload ? {} : { offload: false }) },
      );
  return {
    help: false,
    adapters,
    routes,
    ...(rulesFile ? { rulesFile } : {}),
    ...(socketPath ? { socketPath } : {}),
    ...(serverSide !== undefined ? { serverSide } : {}),
    ...(isolate.length > 0 ? { isolateVips: isolate } : {}),
    ...(Object.keys(balancer).length > 0 ? { balancer } : {}),
    ...(Object.keys(control).length > 0 ? { control } : {}),
    ...(hugePages ? {} : { hugePages: false }),
    ...(keepalivedFile ? { keepalivedFile } : {}),
    ...(metrics ? { metrics } : {}),
    ...(workers !== undefined ? { workers } : xdp.length > 0 ? { workers: 1 } : {}),
    ...(standby ? { standby: true } : {}),
    ...(syncRefreshMs > 0 ? { syncRefreshMs } : {}),
    ...(announceOn ? { announce } : {}),
  };
}
