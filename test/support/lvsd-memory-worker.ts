// A data-plane worker for LvsdHost in tests that need no root: lvsd's own worker
// (runLvsdWorker, with lvsd's default tables) over an in-memory adapter instead of a
// device. Start it with LvsdHost.start(new URL("./support/lvsd-memory-worker.ts", ...)).

import { MemoryPacketIO } from "../../src/io/packet-io.js";
import { isLvsdWorker, runLvsdWorker } from "../../src/runtime/lvsd-worker.js";

if (isLvsdWorker()) void runLvsdWorker({ io: [new MemoryPacketIO("mem0")] });
