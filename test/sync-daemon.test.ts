// The sync daemons' configuration as the kernel's start_sync_thread sets it, and lvsadm's
// answers for --start-daemon / --stop-daemon (ipvsadm's words) through the executor. The
// sockets themselves are exercised in test/sync-failover.test.ts (namespaces).

import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer, ConfigError, executeCommand, parseCommand } from "../src/index.js";
import { effectiveConfig, SyncDaemons } from "../src/sync/daemon.js";

test("effective configuration: the kernel's defaults and sync_maxlen clamps", () => {
  const master = effectiveConfig({ role: "master", mcastInterface: "eth1", syncId: 0 }, 9000);
  assert.deepEqual(master, { role: "master", mcastInterface: "eth1", syncId: 0, syncMaxlen: 1472, mcastGroup: "224.0.0.81", mcastPort: 8848, mcastTtl: 1 });
  // A backup reads up to its interface's MTU less the headers; a master stays at 1500's.
  assert.equal(effectiveConfig({ role: "backup", mcastInterface: "eth1", syncId: 0 }, 9000).syncMaxlen, 9000 - 28);
  assert.equal(effectiveConfig({ role: "backup", mcastInterface: "eth1", syncId: 0 }, 1280).syncMaxlen, 1472);
  assert.equal(effectiveConfig({ role: "backup", mcastInterface: "eth1", syncId: 0, syncMaxlen: 100 }, 1500).syncMaxlen, 1024, "a backup's minimum");
  assert.equal(effectiveConfig({ role: "master", mcastInterface: "eth1", syncId: 0, syncMaxlen: 70000 }, 1500).syncMaxlen, 65535 - 28);
  assert.equal(effectiveConfig({ role: "master", mcastInterface: "eth1", syncId: 0, mcastGroup: "ff02::81" }, 1500).syncMaxlen, 1500 - 48, "IPv6 headers");
});

test("an unknown interface is refused before any socket opens", () => {
  const daemons = new SyncDaemons({ balancer: new Balancer({ connections: 16, slots: 2, slotCapacity: 256 }), clock: () => 0 });
  assert.throws(
    () => daemons.start({ role: "backup", mcastInterface: "no-such-if0", syncId: 1 }),
    (e: unknown) => e instanceof ConfigError && e.code === "ENODEV",
  );
  assert.deepEqual(daemons.list(), []);
  assert.throws(
    () => daemons.stop("master"),
    (e: unknown) => e instanceof ConfigError && e.code === "ESRCH",
  );
});

test("lvsadm --start-daemon / --stop-daemon: ipvsadm's words and exit status, -L --daemon lists what runs", () => {
  const running = new Map<string, ReturnType<typeof effectiveConfig>>();
  const ctx = {
    balancer: new Balancer({ connections: 16, slots: 2, slotCapacity: 256 }),
    now: () => 0,
    daemons: () => [...running.values()],
    syncControl: {
      start: (c: Parameters<typeof effectiveConfig>[0]) => {
        if (running.has(c.role)) throw new ConfigError("already", "EEXIST");
        running.set(c.role, effectiveConfig(c, 1500));
      },
      stop: (role: "master" | "backup") => {
        if (!running.delete(role)) throw new ConfigError("none", "ESRCH");
      },
    },
  };
  const run = (line: string) => executeCommand(ctx, parseCommand(line.split(" ")));
  assert.equal(run("--start-daemon master --mcast-interface eth1 --syncid 7").exitCode, 0);
  assert.deepEqual(run("--start-daemon master --mcast-interface eth1"), { stdout: "", stderr: "Daemon has already run\n", exitCode: 255 });
  assert.deepEqual(run("--stop-daemon backup"), { stdout: "", stderr: "No daemon is running\n", exitCode: 255 });
  assert.equal(run("-L --daemon").stdout, "master sync daemon (mcast=eth1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n");
  // Without lvsd (no sync control) the command says where it runs.
  const bare = executeCommand({ balancer: ctx.balancer, now: () => 0 }, parseCommand(["--start-daemon", "master"]));
  assert.equal(bare.exitCode, 255);
  assert.match(bare.stderr, /lvsd runs them/);
});
