// The namespace lab: LVS topologies (client, director, real servers) as network namespaces,
// servers and clients to run in them, and HAProxy as a peer. Used by the system tests, the
// benchmarks and the demo. Linux only, needs root and iproute2; see docs/lab.md.
// Not part of the published package (no tsup entry): it drives the machine, not packets.

export { createLab, withLab, ADDRESSES, LabCommandError } from "./topology.js";
export type {
  Lab,
  LabOptions,
  LabMode,
  HostName,
  Segment,
  LabInterface,
  LabHost,
  ClientHost,
  DirectorHost,
  RealServerHost,
  EcmpDirectorHost,
  SegmentInfo,
  AddressPair,
} from "./topology.js";
export { cleanupStaleLabs, listLabNamespaces, liveLabs, destroyAllLabsSync, ownerPid, LAB_PREFIX } from "./registry.js";
export type { CleanupOptions } from "./registry.js";
export type { ExecOptions, ExecResult, LabProcess } from "./shell.js";
export { startHttpServer, startUdpEcho, startIperf3Server, hostAddresses, isListening } from "./servers.js";
export type { HttpServer, HttpServerOptions, LabServer } from "./servers.js";
export { ping, curl, udpRequest, wrk, iperf3, httpUrl, whoHas } from "./clients.js";
export type { PingResult, CurlOptions, CurlResult, WrkOptions, WrkResult, Iperf3Options, Iperf3Result } from "./clients.js";
export { startHaproxy } from "./haproxy.js";
export { startBird, routerBirdConfig, directorBirdConfig, LAB_BGP_TIMERS } from "./bird.js";
export type { RunningBird, BgpTimers, RouterBirdOptions, DirectorBirdOptions } from "./bird.js";
/** The failure-test client (a script): run it with node --import tsx in the client namespace. */
export const FLOW_CLIENT = new URL("./flow-client.ts", import.meta.url);
export type { Haproxy, HaproxyOptions } from "./haproxy.js";
