import assert from "node:assert/strict";
import { Balancer, LinkType, SyncReceiver, SyncSender, type ServiceKey } from "lvs-wasm";
import { buildPacket } from "lvs-wasm/testing";

// Two directors with the same configuration: ipvsadm -A -t 10.0.0.100:80, -a ... -g
const vip: ServiceKey = { kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 };
function director(): Balancer {
  const b = new Balancer({ connections: 1024 });
  b.addService({ key: vip, scheduler: "rr", schedulerFlags: [], onePacket: false });
  for (const rip of ["192.168.10.11", "192.168.10.12"]) {
    b.addDestination(vip, { address: rip, port: 80, method: "route", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  }
  return b;
}
const master = director();
const backup = director();

// The wire between them: here a function call; lvsd uses UDP multicast (SyncDaemons).
const clock = () => 1000;
const rx = new SyncReceiver(backup, { syncId: 7, clock });
const tx = new SyncSender(master, { syncId: 7, clock, send: (message, done) => (rx.handle(message), done()) });

// A client's SYN, ACK and first data packet: the third packet is sync_threshold.
for (const flags of ["S", "A", "PA"]) {
  const packet = buildPacket({ protocol: "tcp", src: "10.0.0.2", dst: "10.0.0.100", sport: 40000, dport: 80, flags });
  master.processPacket(packet, LinkType.RawIp, clock());
}
tx.flush(); // lvsd's sender does this 2 s after a message's first connection
tx.close();

// The backup holds the connection, ESTABLISHED, on the real server the master chose.
const [synced] = backup.connections(clock());
assert.equal(synced.state, "ESTABLISHED");
assert.equal(synced.destination.address, master.connections(clock())[0].destination.address);
assert.equal(rx.stats.imported.created, 1);
