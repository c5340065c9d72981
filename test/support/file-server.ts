// A node HTTP server that answers every path with one file (random bytes a test checks by
// SHA-256). Node, not python's http.server: that one looks its own name up in DNS first.

import type { HostName, Lab, LabProcess } from "../../src/lab/index.js";

const FILE_SERVER = `
const [file, host, port] = process.argv.slice(1);
const fs = require("node:fs");
require("node:http").createServer((q, r) => {
  r.writeHead(200, { "content-length": fs.statSync(file).size });
  fs.createReadStream(file).pipe(r);
}).listen(Number(port), host, () => console.log("listening"));
`;

/** Starts the server in `host` on address:port; resolve once it listens (the process is the lab's, stopped with it). */
export async function startFileServer(lab: Lab, host: HostName, file: string, address: string, port: number): Promise<LabProcess> {
  const server = lab.spawn(host, process.execPath, ["-e", FILE_SERVER, file, address, String(port)]);
  await server.waitForOutput(/^listening$/m, 10_000);
  return server;
}
