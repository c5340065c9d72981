// The probe for each checker type.
import type { CheckSpec } from "../spec.js";
import { dnsProbe } from "./dns-check.js";
import { httpProbe } from "./http-check.js";
import { miscProbe } from "./misc-check.js";
import type { ProbeResult } from "./probe.js";
import { tcpProbe } from "./tcp-check.js";

export type { Probe, ProbeResult } from "./probe.js";

/** One attempt of `spec`'s check. */
export function runProbe(spec: CheckSpec): Promise<ProbeResult> {
  switch (spec.type) {
    case "TCP_CHECK":
      return tcpProbe(spec, spec.connectTimeout);
    case "HTTP_GET":
    case "SSL_GET":
      return httpProbe(spec);
    case "MISC_CHECK":
      return miscProbe(spec);
    case "DNS_CHECK":
      return dnsProbe(spec);
  }
}
