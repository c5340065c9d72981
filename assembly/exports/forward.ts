// ABI of the forwarding primitives: the action table and batch application.

import { initActionTable, actionsBase, actionCount, ACTION_SIZE } from "../forward/action";
import { applyActions } from "../forward/apply";

export function actionsInit(count: u32): u32 {
  return initActionTable(count) ? 0 : 1;
}
export function regionActions(): usize { return actionsBase; }
export function actionCountTotal(): u32 { return actionCount; }
export function actionRecordBytes(): u32 { return ACTION_SIZE; }
/** Applies each slot's action record; see assembly/forward/apply.ts. */
export function applyActionBatch(first: u32, count: u32): u32 {
  return applyActions(first, count);
}
