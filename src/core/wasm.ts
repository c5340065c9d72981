// Loads the data-plane module with a plain WebAssembly.instantiate: no loader library, no
// glue. The ABI carries only integers (see docs/design.md), so the imports are the abort
// hook, which reports a broken invariant as a line and column, and the call-out to
// schedulers written in TypeScript.

import { WASM_BASE64 } from "./wasm-binary.generated.js";

/** The parts of a WebAssembly.Memory the host uses (typed here so no DOM lib is needed). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
/** A compiled data-plane module (a WebAssembly.Module), shareable with worker threads. */
export type CompiledLvsModule = object & { readonly __compiledLvsModule?: never };

// Node provides WebAssembly globally; @types/node 20 does not declare it.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => CompiledLvsModule;
  Instance: new (module: CompiledLvsModule, imports: object) => { exports: unknown };
};

/** The raw exports of build/lvs.wasm. Pointers and sizes are byte offsets into `memory`. */
export interface LvsWasmExports {
  readonly memory: WasmMemory;
  abiVersion(): number;
  lvsInit(slotCount: number, slotCapacity: number): number;
  regionSlots(): number;
  regionDescriptors(): number;
  regionParams(): number;
  regionInfo(): number;
  slotStrideBytes(): number;
  slotCapacityBytes(): number;
  slotCountTotal(): number;
  headroomBytes(): number;
  descriptorBytes(): number;
  parseSlot(slot: number): number;
  checksumAt(ptr: number, len: number): number;
  regionOffload(): number;
  offloadRecordBytes(): number;
  gsoSegments(slot: number): number;
  gsoSegmentInto(slot: number, first: number, out: number, max: number): number;
  offloadCompleteSlot(slot: number): number;
  applyActionBatch(first: number, count: number): number;
  /** Every other export, added by later areas (forwarding, schedulers, datapath). */
  readonly [name: string]: unknown;
}

/** Thrown when the data plane hits a broken internal invariant (never for bad input). */
export class WasmAbortError extends Error {
  constructor(line: number, column: number) {
    super(`lvs-wasm data plane aborted at assembly source line ${line}:${column}`);
    this.name = "WasmAbortError";
  }
}

let compiled: CompiledLvsModule | undefined;

/** The compiled module, shared by every instance (and transferable to worker threads). */
export function wasmModule(): CompiledLvsModule {
  if (!compiled) compiled = new WebAssembly.Module(Buffer.from(WASM_BASE64, "base64"));
  return compiled;
}

/**
 * Host functions an instance calls back into, set after instantiation by the part of the
 * host that owns the feature (the scheduler table installs `customSchedule`).
 */
export interface WasmHostHooks {
  /** A TypeScript scheduler's pick: list position, or -1 for none. */
  customSchedule?: (service: number, handle: number, keyPtr: number) => number;
}

const hostHooks = new WeakMap<object, WasmHostHooks>();

/** The hooks of an instance made by instantiateWasm. */
export function wasmHostHooks(wasm: LvsWasmExports): WasmHostHooks {
  const hooks = hostHooks.get(wasm);
  if (!hooks) throw new Error("these exports were not made by instantiateWasm");
  return hooks;
}

/** A fresh, uninitialised instance of the data plane. */
export function instantiateWasm(module: CompiledLvsModule = wasmModule()): LvsWasmExports {
  const hooks: WasmHostHooks = {};
  const instance = new WebAssembly.Instance(module, {
    env: {
      lvsAbort(line: number, column: number): never {
        throw new WasmAbortError(line, column);
      },
      lvsSchedCustom(service: number, handle: number, keyPtr: number): number {
        return hooks.customSchedule ? hooks.customSchedule(service, handle, keyPtr) : -1;
      },
    },
  });
  const exports = instance.exports as unknown as LvsWasmExports;
  hostHooks.set(exports, hooks);
  return exports;
}
