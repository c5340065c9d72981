// Schedulers written in TypeScript: schedule() asks the host, with integers only (service,
// the handle its registerScheduler() name resolved to, the flow key's address). The host
// answers with a list position, or -1; anything out of range is "no destination".

import { Scheduler } from "./scheduler";
import { svcGet, nDests, destAt, S_PARAM } from "./table";

@external("env", "lvsSchedCustom")
declare function hostSchedule(svc: u32, handle: u32, key: usize): i32;

function hostScheduleDest(svc: u32, key: usize): i32 {
  const pos = hostSchedule(svc, svcGet(svc, S_PARAM), key);
  if (pos < 0 || <u32>pos >= nDests(svc)) return -1;
  return <i32>destAt(svc, <u32>pos);
}

/** Named "*host": not selectable by name; the host's registry maps custom names to it. */
export const host = new Scheduler("*host", "", hostScheduleDest);
