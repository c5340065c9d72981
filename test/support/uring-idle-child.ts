// Run by test/io-tun-uring.test.ts inside a namespace: one receive on an idle TUN device
// through io_uring, printed. A child process, because reads that waited for packets would
// block this whole process inside io_uring_enter, where no test timeout can reach it.
import { PacketCore } from "../../src/index.js";
import { TunDevice } from "../../src/io/tun.js";
import { UringTunDevice } from "../../src/io/tun-uring.js";

const tun = new UringTunDevice(TunDevice.open({ name: "idle0" }), { smallBatch: 0 });
const core = new PacketCore({ slotCount: 64 });
const n = tun.receive(core.slots, 0, 64, 0);
console.log(`idle receive ${n} in ${tun.ring.enters} enter`);
tun.close();
