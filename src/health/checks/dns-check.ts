// DNS_CHECK: one query over UDP (recursion desired) for `name` of `queryType`; an answer
// with the query's id, the response bit set and rcode 0 within connect_timeout succeeds,
// whatever its answer section holds (keepalived's rule).
import { createSocket } from "node:dgram";
import { randomInt } from "node:crypto";
import type { CheckSpec } from "../spec.js";
import { errorText, type ProbeResult } from "./probe.js";

type DnsSpec = Extract<CheckSpec, { type: "DNS_CHECK" }>;

export const DNS_TYPES: Readonly<Record<string, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };

/** The query datagram. */
export function dnsQuery(id: number, name: string, type: number): Buffer {
  const labels = name
    .split(".")
    .filter((l) => l.length > 0)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "ascii")]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // one question
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2); // class IN
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

export function dnsProbe(spec: DnsSpec): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = createSocket(spec.address.includes(":") ? "udp6" : "udp4");
    const id = randomInt(0, 0x10000);
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `no answer within ${spec.connectTimeout} ms` }), spec.connectTimeout);
    socket.on("error", (e) => done({ ok: false, detail: errorText(e) }));
    socket.on("message", (msg) => {
      if (msg.length < 12 || msg.readUInt16BE(0) !== id || (msg.readUInt16BE(2) & 0x8000) === 0) return; // not our answer: keep waiting
      const rcode = msg.readUInt16BE(2) & 0x000f;
      done(rcode === 0 ? { ok: true, detail: "answered" } : { ok: false, detail: `rcode ${rcode}` });
    });
    const send = () => socket.send(dnsQuery(id, spec.name, DNS_TYPES[spec.queryType] ?? 6), spec.port, spec.address);
    if (spec.bindto || spec.bindPort) socket.bind({ address: spec.bindto, port: spec.bindPort ?? 0 }, send);
    else send();
  });
}
