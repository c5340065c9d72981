// TCP_CHECK: a connection that completes within connect_timeout is a success; refused,
// reset, unreachable or timed out is a failure. Like keepalived, nothing is sent: the
// socket is closed as soon as it connects.
import { connect } from "node:net";
import type { CheckTarget } from "../spec.js";
import { errorText, type ProbeResult } from "./probe.js";

export function tcpProbe(target: CheckTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({
      host: target.address,
      port: target.port,
      ...(target.bindto ? { localAddress: target.bindto } : {}),
      ...(target.bindPort ? { localPort: target.bindPort } : {}),
    });
    let settled = false;
    const done = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `no connection within ${timeoutMs} ms` }), timeoutMs);
    socket.once("connect", () => done({ ok: true, detail: "connected" }));
    socket.once("error", (e) => done({ ok: false, detail: errorText(e) }));
  });
}
