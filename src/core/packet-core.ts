// One initialised data-plane instance: the wasm exports plus typed views of its slots.
// Everything else (forwarding, schedulers, the datapath) is built on a PacketCore.

import { ABI_VERSION, type DropReason, LinkType } from "./abi.js";
import { ACTION_SIZE, encodeAction, type ForwardAction } from "./actions.js";
import type { SlotResult } from "./packet-slots.js";
import { PacketSlots } from "./packet-slots.js";
import { instantiateWasm, type LvsWasmExports } from "./wasm.js";

export interface PacketCoreOptions {
  /** Packet slots (the largest batch one call can process). Default 256. */
  readonly slotCount?: number;
  /**
   * Largest packet a slot holds, headroom excluded. Default 65,600: a 64 KiB GSO
   * super-frame with its link header stays whole.
   */
  readonly slotCapacity?: number;
  /** Forwarding action records (see ForwardAction). Default 1024. */
  readonly actionCount?: number;
}

/** What parse() found in a packet; offsets are from the packet's first byte. */
export interface ParsedPacket {
  readonly status: DropReason;
  readonly l3Offset: number;
  readonly family: 4 | 6;
  readonly ipLength: number;
  readonly l4Offset: number;
  readonly protocol: number;
  readonly l4Length: number;
  /** 0 not a fragment, 1 first fragment, 2 later fragment. */
  readonly fragment: 0 | 1 | 2;
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly icmpType: number;
  readonly icmpCode: number;
  readonly tcpFlags: number;
  readonly sourceAddressOffset: number;
  readonly destinationAddressOffset: number;
}

export const DEFAULT_SLOT_COUNT = 256;
export const DEFAULT_SLOT_CAPACITY = 65600;

export class PacketCore {
  readonly wasm: LvsWasmExports;
  readonly slots: PacketSlots;
  readonly actionCount: number;

  constructor(options: PacketCoreOptions = {}, wasm: LvsWasmExports = instantiateWasm()) {
    const count = options.slotCount ?? DEFAULT_SLOT_COUNT;
    const capacity = options.slotCapacity ?? DEFAULT_SLOT_CAPACITY;
    if (!Number.isInteger(count) || count < 1 || count > 65536) {
      throw new RangeError(`slotCount must be an integer in 1..65536, got ${count}`);
    }
    if (!Number.isInteger(capacity) || capacity < 128 || capacity > 262144) {
      throw new RangeError(`slotCapacity must be an integer in 128..262144, got ${capacity}`);
    }
    if (wasm.abiVersion() !== ABI_VERSION) {
      throw new Error(`wasm ABI ${wasm.abiVersion()} does not match the host's ${ABI_VERSION}: rebuild`);
    }
    const rc = wasm.lvsInit(count, capacity);
    if (rc !== 0) throw new Error(`lvsInit failed with code ${rc}`);
    const actions = options.actionCount ?? 1024;
    if (!Number.isInteger(actions) || actions < 1 || actions > 1 << 20) {
      throw new RangeError(`actionCount must be an integer in 1..1048576, got ${actions}`);
    }
    if ((wasm.actionsInit as (n: number) => number)(actions) !== 0) throw new Error("actionsInit failed");
    this.actionCount = actions;
    this.wasm = wasm;
    this.slots = new PacketSlots(wasm);
  }

  /** Parses the packet in a slot (diagnostics and tests; the datapath parses on its own). */
  parse(slot: number): ParsedPacket {
    this.wasm.parseSlot(slot);
    const base = this.wasm.regionInfo() >>> 2;
    const w = new Uint32Array(this.wasm.memory.buffer);
    return {
      status: w[base] as DropReason,
      l3Offset: w[base + 1],
      family: w[base + 2] as 4 | 6,
      ipLength: w[base + 3],
      l4Offset: w[base + 4],
      protocol: w[base + 5],
      l4Length: w[base + 6],
      fragment: w[base + 7] as 0 | 1 | 2,
      sourcePort: w[base + 8],
      destinationPort: w[base + 9],
      icmpType: w[base + 10],
      icmpCode: w[base + 11],
      tcpFlags: w[base + 12],
      sourceAddressOffset: w[base + 13],
      destinationAddressOffset: w[base + 14],
    };
  }

  /** Parses a packet given as bytes, through slot 0. */
  parseBytes(packet: Uint8Array, link: LinkType): ParsedPacket {
    this.slots.write(0, packet, link);
    return this.parse(0);
  }

  /** Internet checksum (RFC 1071) of bytes, computed by the data plane. */
  checksum(bytes: Uint8Array): number {
    this.slots.write(0, bytes, LinkType.RawIp);
    return this.wasm.checksumAt(this.slots.slotAddress(0) + 128, bytes.length);
  }

  /** Stores an action in the action table at index (validated whole first). */
  setAction(index: number, action: ForwardAction): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.actionCount) {
      throw new RangeError(`action index ${index} is out of range: use 0..${this.actionCount - 1}`);
    }
    const record = encodeAction(action);
    const base = (this.wasm.regionActions as () => number)();
    this.slots.bytes.set(record, base + index * ACTION_SIZE);
  }

  /** Applies each slot's action (descriptor field Action) to slots [first, first+count). */
  applyBatch(first: number, count: number): number {
    return (this.wasm.applyActionBatch as (f: number, c: number) => number)(first, count);
  }

  /** One packet through one action, via slot 0 and action 0: a convenience for tools and tests. */
  rewrite(packet: Uint8Array, link: LinkType, action: ForwardAction): SlotResult {
    this.setAction(0, action);
    this.slots.write(0, packet, link);
    this.applyBatch(0, 1);
    return this.slots.result(0);
  }
}
