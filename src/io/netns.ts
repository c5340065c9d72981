// Opening adapters inside a named network namespace (`ip netns add NAME`). A socket or a TUN
// device belongs to the namespace of the thread that created it, and keeps working from any
// thread afterwards, so the JavaScript thread switches (setns(2) affects only the calling
// thread), creates, and switches back.

import { check, CLONE_NEWNET, libc, O_CLOEXEC, O_RDONLY } from "./libc.js";

/** Runs fn with the calling thread in network namespace `name` (/run/netns/NAME), then returns. */
export function withNetns<T>(name: string | undefined, fn: () => T): T {
  if (!name) return fn();
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new RangeError(`network namespace name "${name}" is not valid`);
  const c = libc();
  const saved = check(c.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "opening this thread's network namespace");
  let target = -1;
  try {
    target = check(c.open(`/run/netns/${name}`, O_RDONLY | O_CLOEXEC), `opening network namespace ${name}`, `no /run/netns/${name} (ip netns add ${name})`);
    check(c.setns(target, CLONE_NEWNET), `entering network namespace ${name}`, "needs CAP_SYS_ADMIN: run as root");
    try {
      return fn();
    } finally {
      if (c.setns(saved, CLONE_NEWNET) < 0) {
        // Staying in the wrong namespace would silently misplace every later socket.
        // biome-ignore lint/correctness/noUnsafeFinally: this error must replace any other: the process is unsafe now
        throw new Error(`could not return to the original network namespace after ${name}: the process is in an unsafe state`);
      }
    }
  } finally {
    if (target >= 0) c.close(target);
    c.close(saved);
  }
}
