// lvs-wasm: the public API. Each area re-exports its own public names here.
export * from "./core/abi.js";
export { PacketCore, DEFAULT_SLOT_COUNT, DEFAULT_SLOT_CAPACITY } from "./core/packet-core.js";
export type { PacketCoreOptions, ParsedPacket } from "./core/packet-core.js";
export { PacketSlots } from "./core/packet-slots.js";
export type { SlotResult } from "./core/packet-slots.js";
export { instantiateWasm, wasmModule, WasmAbortError } from "./core/wasm.js";
export type { LvsWasmExports, WasmMemory, CompiledLvsModule } from "./core/wasm.js";
export { readPcap } from "./pcap/reader.js";
export type { PcapFile } from "./pcap/reader.js";
export { writePcap } from "./pcap/writer.js";
export type { PcapFrame, PcapWriteOptions } from "./pcap/writer.js";
export { PcapLinkType, PcapFormatError } from "./pcap/format.js";
export type { PcapRecord } from "./pcap/format.js";
export { ActionKind, ActionError, encodeAction, encodeAddress, encodeMac, ACTION_SIZE } from "./core/actions.js";
export type { ForwardAction, TunnelType, MacRewrite } from "./core/actions.js";
// Schedulers: service/destination tables in wasm, custom scheduler registry (issue #3).
export * from "./sched/index.js";
// ipvsadm language: argument parsing, listings and save/restore text (lvsadm).
export * from "./admin/index.js";
export { Balancer, PacketFlags } from "./balancer/balancer.js";
export type { BalancerOptions, BalancerEvent, BalancerEventListener, DirectorAddressing, PacketOutcome } from "./balancer/balancer.js";
export type { LocalAddressSnapshot } from "./balancer/balancer.js";
export { IPVS_SYSCTLS, DEFAULT_SYSCTLS, parseSysctlAssignment } from "./balancer/sysctls.js";
export type { IpvsSysctls, IpvsSysctlName } from "./balancer/sysctls.js";
export type { ConnectionRecord } from "./balancer/memory-readers.js";
export type { FragmentOptions, FragmentStats } from "./balancer/fragments.js";
// Large configuration changes, all or nothing, in slices beside a packet loop (issue 17).
export { RuleTransaction } from "./balancer/rule-transaction.js";
export type { RuleChangeSpec, RuleCounts, RuleOp } from "./balancer/rule-transaction.js";
export { Slicer, DEFAULT_SLICE_MS } from "./balancer/slices.js";
export { ConfigError } from "./config/types.js";
export type {
  ServiceKey,
  ServiceConfig,
  DestinationConfig,
  RuleSet,
  ServiceWithDestinations,
  Persistence,
  Protocol,
  ForwardMethod,
  TunnelOptions,
  TunnelChecksum,
  AddressFamily,
  ConfigErrorCode,
} from "./config/types.js";
// Packet I/O (TUN, AF_PACKET, in-memory), neighbours, ARP, and the director loop (issue #5).
export { MemoryPacketIO, SlotWords, emptyIoStats } from "./io/packet-io.js";
export type { PacketIO, PacketIOStats } from "./io/packet-io.js";
export { TunDevice } from "./io/tun.js";
export type { TunOffloads, TunOptions } from "./io/tun.js";
export { UringTunDevice, SMALL_BATCH as URING_SMALL_BATCH, tunDeviceOf } from "./io/tun-uring.js";
export type { UringTunOptions } from "./io/tun-uring.js";
export { IoUringUnavailableError } from "./io/uring.js";
export { AfPacketSocket } from "./io/af-packet.js";
export type { AfPacketOptions, AfPacketFanout } from "./io/af-packet.js";
export { AfXdpSocket, xdpPoolSlots, xdpPoolSlotsFor, XDP_FRAME_SIZE, XDP_MAX_FRAME } from "./io/af-xdp.js";
export type { AfXdpOptions, XdpKernelStats } from "./io/af-xdp.js";
export { IoError, IoUnavailableError } from "./io/libc.js";
export { adviseHugePages, hugePageBytes, transparentHugePageMode } from "./io/huge-pages.js";
export type { HugePageAdvice } from "./io/huge-pages.js";
export { withNetns } from "./io/netns.js";
export { KernelNeighbours, parseNeighbours } from "./runtime/neighbours.js";
export type { KernelNeighboursOptions } from "./runtime/neighbours.js";
export { ArpResponder } from "./runtime/arp-responder.js";
export type { ArpResponderOptions, FrameSender } from "./runtime/arp-responder.js";
export { Director } from "./runtime/director.js";
export type { DirectorOptions, DirectorRoute, DirectorStats, NeighbourResolver, PassDecision, PassHook } from "./runtime/director.js";
export { Lvsd } from "./runtime/lvsd.js";
export { parseLvsdArgs } from "./runtime/lvsd-options.js";
export type { LvsdOptions, AdapterSpec } from "./runtime/lvsd-options.js";
export { diffRules } from "./runtime/rule-diff.js";
export type { RuleChange, ReloadSummary } from "./runtime/rule-diff.js";
export { startRsAgent } from "./runtime/rs-agent.js";
export type { RsAgent, RsAgentOptions, RsAgentStats, AgentTunnel } from "./runtime/rs-agent.js";
// Health checks with keepalived's semantics and the keepalived.conf reader (issue #14).
export {
  HealthChecker,
  HttpCheckState,
  CheckState,
  KEEPALIVED_DEFAULTS,
  worstDetectionMs,
  runProbe,
  readKeepalivedConf,
  KeepalivedConfError,
  formatDiagnostic,
} from "./health/index.js";
export type {
  HealthCheckerOptions,
  HealthCommandTarget,
  HealthEvent,
  HealthReloadSummary,
  CheckStatus,
  RealServerStatus,
  VirtualServerStatus,
  CheckSpec,
  CheckTarget,
  CheckTimers,
  CheckType,
  HealthConfig,
  HttpUrlSpec,
  RealServerSpec,
  SorryServerSpec,
  VirtualServerSpec,
  CheckOutcome,
  ProbeResult,
  KeepalivedConf,
  Diagnostic,
} from "./health/index.js";
// Prometheus metrics: node_exporter's ipvs names and lvs-wasm's own (issue #14).
export { LvsMetrics, serviceLabels, serveMetrics, parseMetricsAddress, balancerSnapshot } from "./metrics/index.js";
export type { LvsMetricsSources, MetricsServer, MetricsEndpoint, MetricsSnapshot, HealthSnapshot, DatapathCounters, AdapterCounters } from "./metrics/index.js";
// Connection sync (issue 15).
export * from "./sync/index.js";
export type { SyncRecord, SyncImportResult } from "./balancer/sync-records.js";
// lvsd's directors in a process of your own (docs/daemon.md, docs/tun-mode.md).
export { startDrDirector } from "./runtime/dr-director.js";
export type { DrDirector, DrDirectorOptions } from "./runtime/dr-director.js";
export { startTunDirector, tunHostCommands } from "./runtime/tun-director.js";
export type { TunDirector, TunDirectorOptions } from "./runtime/tun-director.js";
export type { EthernetPort } from "./runtime/ethernet.js";
