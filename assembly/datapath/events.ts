// Events a balancer builder wants (flow created, flow expired, destination overloaded),
// written to a ring in wasm memory that the host drains after each call. Off until the
// host enables it, so a balancer without listeners pays nothing.

export const EV_FLOW_CREATED: u32 = 1;
export const EV_FLOW_EXPIRED: u32 = 2;
export const EV_DEST_OVERLOADED: u32 = 3;
export const EV_DEST_UNDERLOADED: u32 = 4;

/** Record: u32 type, u32 connection index, u32 destination, u32 service. */
export const EVENT_SIZE: u32 = 16;

let ring: usize = 0;
let capacity: u32 = 0;
let count: u32 = 0;
let dropped: u32 = 0;
export let eventsEnabled: bool = false;

export function initEvents(cap: u32): bool {
  if (ring != 0 || cap == 0 || cap > 1 << 20) return false;
  ring = heap.alloc(<usize>cap * EVENT_SIZE);
  capacity = cap;
  return true;
}

export function enableEvents(on: bool): void {
  eventsEnabled = on && ring != 0;
}

/** Appends an event; when the ring is full the event is counted as dropped. */
export function emit(type: u32, conn: u32, dest: u32, svc: u32): void {
  if (!eventsEnabled) return;
  if (count >= capacity) {
    dropped++;
    return;
  }
  const e = ring + <usize>count * EVENT_SIZE;
  store<u32>(e, type);
  store<u32>(e + 4, conn);
  store<u32>(e + 8, dest);
  store<u32>(e + 12, svc);
  count++;
}

export function eventsRing(): usize { return ring; }
export function eventsCount(): u32 { return count; }
export function eventsDropped(): u32 { return dropped; }
/** The host has read the ring: start over. */
export function eventsClear(): void {
  count = 0;
  dropped = 0;
}
