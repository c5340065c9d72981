// Port names as getservbyname/getservbyport read them from /etc/services, so that
// "-t 10.0.0.1:http" parses and listings without -n show "10.0.0.1:http" as ipvsadm does.
import { readFileSync } from "node:fs";

export type ServiceProtocol = "tcp" | "udp" | "sctp";

export interface PortNames {
  /** getservbyname(name, proto): official names and aliases; undefined when unknown. */
  portOf(name: string, protocol: ServiceProtocol): number | undefined;
  /** getservbyport(port, proto): the first official name listed for that port. */
  nameOf(port: number, protocol: ServiceProtocol): string | undefined;
}

/** Reads services(5) text: "name port/proto [aliases...] [# comment]". First entry wins. */
export function portNamesFromText(text: string): PortNames {
  const byName = new Map<string, number>();
  const byPort = new Map<string, string>();
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/#.*/, "").trim();
    if (line.length === 0) continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const match = /^(\d+)\/([a-z]+)$/.exec(portProto ?? "");
    if (!name || !match) continue;
    const port = Number(match[1]);
    const protocol = match[2]!;
    if (port > 65535) continue;
    for (const alias of [name, ...aliases]) {
      const key = `${alias}/${protocol}`;
      if (!byName.has(key)) byName.set(key, port);
    }
    const portKey = `${port}/${protocol}`;
    if (!byPort.has(portKey)) byPort.set(portKey, name);
  }
  return {
    portOf: (name, protocol) => byName.get(`${name}/${protocol}`),
    nameOf: (port, protocol) => byPort.get(`${port}/${protocol}`),
  };
}

/** No names at all: every port is a number (as on a system without /etc/services). */
export const NO_PORT_NAMES: PortNames = {
  portOf: () => undefined,
  nameOf: () => undefined,
};

let systemPortNames: PortNames | undefined;

/** /etc/services of this machine, read once; no names when the file is missing. */
export function systemPortNamesDb(): PortNames {
  if (!systemPortNames) {
    try {
      systemPortNames = portNamesFromText(readFileSync("/etc/services", "utf8"));
    } catch {
      systemPortNames = NO_PORT_NAMES;
    }
  }
  return systemPortNames;
}
