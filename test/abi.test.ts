// The host's mirrors of the data plane's constants (src/core/abi.ts, src/core/actions.ts)
// against the data plane itself: first against the exported getters and the module's
// behaviour, then against the AssemblyScript sources the constants are declared in. Also
// the host-side validation of PacketCore options and of action records.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  ABI_VERSION,
  ACTION_SIZE,
  ActionError,
  ActionKind,
  DESC_SIZE,
  Desc,
  DROP_REASON_NAMES,
  DropReason,
  HEADROOM,
  LinkType,
  PARAMS_SIZE,
  PacketCore,
  Verdict,
  encodeAction,
  instantiateWasm,
  type ForwardAction,
} from "../src/index.js";

const ROOT = new URL("../", import.meta.url);

/** `export const NAME: u32 = value;` declarations of an AssemblyScript source file. */
function asConstants(path: string): Map<string, number> {
  const text = readFileSync(new URL(path, ROOT), "utf8");
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^export const (\w+): u32 = (0x[0-9a-fA-F]+|\d+)\s*;/gm)) {
    out.set(m[1], Number(m[2]));
  }
  assert.ok(out.size > 0, `no u32 constants found in ${path}`);
  return out;
}

function pascal(snake: string): string {
  return snake
    .toLowerCase()
    .split("_")
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join("");
}

/** A well-formed IPv4/UDP packet 10.0.0.1:1234 -> 10.0.0.2:80 (header checksum filled in). */
function ipv4Udp(): Uint8Array {
  const p = new Uint8Array(28 + 4);
  p.set([0x45, 0, 0, p.length, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  p.set([0x04, 0xd2, 0, 80, 0, 12, 0, 0, 1, 2, 3, 4], 20);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

test("wasm getters agree with the host's layout constants", () => {
  const w = instantiateWasm();
  assert.equal(w.abiVersion(), ABI_VERSION, "abiVersion");
  assert.equal(w.descriptorBytes(), DESC_SIZE, "descriptor size");
  assert.equal(w.headroomBytes(), HEADROOM, "headroom");
  assert.equal((w.actionRecordBytes as () => number)(), ACTION_SIZE, "action record size");
  const core = new PacketCore({ slotCount: 3, slotCapacity: 1000, actionCount: 7 });
  const x = core.wasm;
  assert.equal(x.slotCountTotal(), 3);
  assert.equal(x.slotCapacityBytes(), 1000);
  assert.equal(x.slotStrideBytes(), Math.ceil((HEADROOM + 1000) / 64) * 64, "stride = headroom + capacity rounded to 64");
  assert.equal(x.regionSlots() % 64, 0, "slots are 64-byte aligned");
  assert.equal((x.actionCountTotal as () => number)(), 7);
  assert.equal(core.slots.stride, x.slotStrideBytes());
  // The params block must really hold PARAMS_SIZE bytes before the next region starts.
  assert.ok(x.regionInfo() - x.regionParams() >= PARAMS_SIZE, "params block is at least PARAMS_SIZE bytes");
  assert.ok(x.regionDescriptors() - x.regionInfo() >= 64, "info block is at least 64 bytes");
  assert.ok(x.regionSlots() - x.regionDescriptors() >= 3 * DESC_SIZE, "descriptor table holds slotCount descriptors");
  const actions = (x.regionActions as () => number)();
  assert.ok(actions >= x.regionSlots() + 3 * x.slotStrideBytes() || actions + 7 * ACTION_SIZE <= x.regionParams(), "action table does not overlap the slots");
});

test("constants in src/core/abi.ts match assembly/verdict.ts, layout.ts and net/constants.ts", () => {
  const verdict = asConstants("assembly/verdict.ts");
  const verdicts = [...verdict].filter(([k]) => k.startsWith("VERDICT_"));
  assert.equal(verdicts.length, Object.keys(Verdict).length, "same number of verdicts");
  for (const [name, value] of verdicts) {
    assert.equal((Verdict as Record<string, number>)[pascal(name.slice(8))], value, `Verdict.${pascal(name.slice(8))} vs ${name}`);
  }
  const reasons = [...verdict].filter(([k]) => k.startsWith("REASON_") && k !== "REASON_COUNT");
  assert.equal(reasons.length, Object.keys(DropReason).length, "same number of drop reasons");
  assert.equal(verdict.get("REASON_COUNT"), DROP_REASON_NAMES.length, "REASON_COUNT vs DROP_REASON_NAMES");
  for (const [name, value] of reasons) {
    const key = pascal(name.slice(7));
    assert.equal((DropReason as Record<string, number>)[key], value, `DropReason.${key} vs ${name}`);
    assert.equal(DROP_REASON_NAMES[value], name.slice(7).toLowerCase().replaceAll("_", "-"), `DROP_REASON_NAMES[${value}]`);
  }

  const layout = asConstants("assembly/layout.ts");
  assert.equal(layout.get("HEADROOM"), HEADROOM);
  assert.equal(layout.get("DESC_SIZE"), DESC_SIZE);
  assert.equal(layout.get("PARAMS_SIZE"), PARAMS_SIZE);
  const fields = [...layout].filter(([k]) => k.startsWith("DESC_") && k !== "DESC_SIZE");
  assert.equal(fields.length, Object.keys(Desc).length, "same number of descriptor fields");
  for (const [name, value] of fields) {
    assert.equal((Desc as Record<string, number>)[pascal(name.slice(5))], value, `Desc.${pascal(name.slice(5))} vs ${name}`);
  }

  const net = asConstants("assembly/net/constants.ts");
  assert.equal(net.get("LINK_RAW_IP"), LinkType.RawIp);
  assert.equal(net.get("LINK_ETHERNET"), LinkType.Ethernet);
});

test("ActionKind and the record layout in src/core/actions.ts match assembly/forward/action.ts", () => {
  const a = asConstants("assembly/forward/action.ts");
  assert.equal(a.get("ACTION_SIZE"), ACTION_SIZE);
  const names: Record<string, keyof typeof ActionKind> = {
    ACTION_NONE: "None",
    ACTION_NAT_DNAT: "NatDnat",
    ACTION_NAT_SNAT: "NatSnat",
    ACTION_DR: "DirectRouting",
    ACTION_TUNNEL: "Tunnel",
    ACTION_DECAP: "Decapsulate",
    ACTION_ICMP_NAT_IN: "IcmpNatIn",
    ACTION_ICMP_NAT_OUT: "IcmpNatOut",
    ACTION_PORT_UNREACHABLE: "PortUnreachable",
    ACTION_FNAT: "FullNat",
  };
  const kinds = [...a].filter(([k]) => k.startsWith("ACTION_") && k !== "ACTION_SIZE" && k !== "ACTION_KIND_COUNT");
  assert.deepEqual(kinds.map(([k]) => k).sort(), Object.keys(names).sort(), "the same action kinds on both sides");
  for (const [name, value] of kinds) assert.equal(ActionKind[names[name]], value, `ActionKind.${names[name]} vs ${name}`);
  assert.equal(a.get("ACTION_KIND_COUNT"), Object.keys(ActionKind).length);

  const u16 = (rec: Uint8Array, at: number) => rec[at] | (rec[at + 1] << 8); // the wasm reads little-endian
  const at = (name: string) => {
    const v = a.get(name);
    assert.ok(v !== undefined, `assembly/forward/action.ts declares ${name}`);
    return v;
  };
  const gue = encodeAction({
    kind: "tunnel",
    type: "gue",
    remote: "192.0.2.7",
    local: "198.51.100.9",
    port: 0x1234,
    checksum: true,
    remoteChecksum: true,
    mtu: 0x0567,
    destinationMac: "02:11:22:33:44:55",
    sourceMac: "02:66:77:88:99:aa",
  });
  assert.equal(gue.length, ACTION_SIZE);
  assert.equal(gue[at("A_KIND")], at("ACTION_TUNNEL"));
  assert.equal(gue[at("A_FAMILY")], 4);
  assert.equal(gue[at("A_TUN_TYPE")], at("TUN_GUE"));
  assert.equal(gue[at("A_TUN_FLAGS")], at("TUNF_CSUM") | at("TUNF_REMCSUM"));
  assert.equal(u16(gue, at("A_TUN_PORT")), 0x1234);
  assert.equal(u16(gue, at("A_MTU")), 0x0567);
  assert.equal(gue[at("A_SET_MAC")], 1);
  assert.deepEqual([...gue.subarray(at("A_ADDR"), at("A_ADDR") + 4)], [192, 0, 2, 7]);
  assert.deepEqual([...gue.subarray(at("A_TUN_SRC"), at("A_TUN_SRC") + 4)], [198, 51, 100, 9]);
  assert.deepEqual([...gue.subarray(at("A_DST_MAC"), at("A_DST_MAC") + 6)], [2, 0x11, 0x22, 0x33, 0x44, 0x55]);
  assert.deepEqual([...gue.subarray(at("A_SRC_MAC"), at("A_SRC_MAC") + 6)], [2, 0x66, 0x77, 0x88, 0x99, 0xaa]);

  const gre = encodeAction({ kind: "tunnel", type: "gre", remote: "2001:db8::1", local: "2001:db8::2" });
  assert.equal(gre[at("A_TUN_TYPE")], at("TUN_GRE"));
  assert.equal(gre[at("A_FAMILY")], 6);
  assert.equal(gre[at("A_SET_MAC")], 0, "no MACs given: no MAC rewrite");
  assert.equal(encodeAction({ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "10.0.0.2" })[at("A_TUN_TYPE")], at("TUN_IPIP"));

  const nat = encodeAction({ kind: "nat-dnat", address: "2001:db8:0:1::beef", port: 0xbeef });
  assert.equal(nat[at("A_KIND")], at("ACTION_NAT_DNAT"));
  assert.equal(nat[at("A_FAMILY")], 6);
  assert.equal(u16(nat, at("A_PORT")), 0xbeef);
  assert.equal(Buffer.from(nat.subarray(at("A_ADDR"), at("A_ADDR") + 16)).toString("hex"), "20010db800000001000000000000beef");
  assert.equal(encodeAction({ kind: "dr", destinationMac: "02:00:00:00:00:01", sourceMac: "02:00:00:00:00:02" })[at("A_KIND")], at("ACTION_DR"));

  const fnat = encodeAction({ kind: "fullnat", address: "10.1.0.5", port: 0x1f90, sourceAddress: "10.1.0.250", sourcePort: 0xabcd });
  assert.equal(fnat[at("A_KIND")], at("ACTION_FNAT"));
  assert.equal(fnat[at("A_FAMILY")], 4);
  assert.equal(u16(fnat, at("A_PORT")), 0x1f90);
  assert.equal(u16(fnat, at("A_SRC_PORT")), 0xabcd);
  assert.deepEqual([...fnat.subarray(at("A_ADDR"), at("A_ADDR") + 4)], [10, 1, 0, 5]);
  assert.deepEqual([...fnat.subarray(at("A_TUN_SRC"), at("A_TUN_SRC") + 4)], [10, 1, 0, 250]);
  assert.throws(() => encodeAction({ kind: "fullnat", address: "10.1.0.5", sourceAddress: "2001:db8::1" }), /same address family/);
});

test("the module reads descriptor fields where the host writes them", () => {
  const core = new PacketCore({ slotCount: 4, slotCapacity: 256, actionCount: 4 });
  const s = core.slots;
  const result = (slot: number) => [s.field(slot, Desc.Verdict), s.field(slot, Desc.Reason)];

  // Action index past the table: Desc.Action is read, Desc.Verdict / Desc.Reason written.
  s.write(0, ipv4Udp(), LinkType.RawIp);
  s.setField(0, Desc.Action, 4);
  assert.equal(core.applyBatch(0, 1), 1);
  assert.deepEqual(result(0), [Verdict.Drop, DropReason.BadAction]);

  // Desc.Link: the same bytes are not IP as Ethernet (ARP EtherType) -> pass to the host.
  const arp = new Uint8Array(42);
  arp[12] = 0x08;
  arp[13] = 0x06;
  s.write(1, arp, LinkType.Ethernet);
  // Desc.Length: an IPv4 header cut to 10 bytes is truncated.
  s.write(2, ipv4Udp().subarray(0, 10), LinkType.RawIp);
  // Desc.Offset: a packet start past the slot is refused without being read.
  s.write(3, ipv4Udp(), LinkType.RawIp);
  s.setField(3, Desc.Offset, s.stride + 1);
  assert.equal(core.applyBatch(1, 3), 3);
  assert.deepEqual(result(1), [Verdict.Pass, DropReason.NotIp]);
  assert.deepEqual(result(2), [Verdict.Drop, DropReason.Truncated]);
  assert.deepEqual(result(3), [Verdict.Drop, DropReason.Truncated]);
  assert.equal(core.applyBatch(4, 1), 0, "a batch starting past the last slot processes nothing");
  assert.equal(core.applyBatch(3, 100), 1, "a batch is clipped to the slots there are");

  // The kind byte: 0 and ACTION_KIND_COUNT are not actions; 1..9 are dispatched to a
  // primitive (which may refuse the packet, but not as a bad action).
  const table = (core.wasm.regionActions as () => number)();
  const mem = s.bytes;
  const valid: ForwardAction[] = [
    { kind: "nat-dnat", address: "10.0.0.9", port: 8080 },
    { kind: "nat-snat", address: "10.0.0.9" },
    { kind: "dr", destinationMac: "02:00:00:00:00:01", sourceMac: "02:00:00:00:00:02" },
    { kind: "tunnel", type: "ipip", remote: "10.0.0.9", local: "10.0.0.8" },
    { kind: "decap" },
    { kind: "icmp-nat-in", address: "10.0.0.9" },
    { kind: "icmp-nat-out", address: "10.0.0.9" },
    { kind: "port-unreachable" },
    { kind: "fullnat", address: "10.0.0.9", sourceAddress: "10.0.0.8" },
  ];
  for (let kind = 0; kind <= 10; kind++) {
    mem.fill(0, table, table + ACTION_SIZE);
    const isAction = kind >= 1 && kind <= 9;
    if (isAction) {
      const rec = encodeAction(valid[kind - 1]);
      assert.equal(rec[0], kind, `${valid[kind - 1].kind} encodes as kind ${kind}`);
      mem.set(rec, table);
    } else mem[table] = kind;
    s.write(0, ipv4Udp(), LinkType.RawIp);
    core.applyBatch(0, 1);
    const [verdict, reason] = result(0);
    assert.equal(reason === DropReason.BadAction, !isAction, `kind ${kind}: verdict ${verdict} reason ${DROP_REASON_NAMES[reason]}`);
    assert.ok(verdict >= Verdict.Forward && verdict <= Verdict.Pass, `kind ${kind}: verdict ${verdict}`);
  }
});

test("PacketCore rejects bad options with a RangeError naming the option", () => {
  const cases: Array<[object, RegExp]> = [
    [{ slotCount: 0 }, /slotCount/],
    [{ slotCount: -1 }, /slotCount/],
    [{ slotCount: 1.5 }, /slotCount/],
    [{ slotCount: 65537 }, /slotCount/],
    [{ slotCount: Number.NaN }, /slotCount/],
    [{ slotCapacity: 262145 }, /slotCapacity/],
    [{ slotCapacity: 127 }, /slotCapacity/],
    [{ slotCapacity: 2 ** 32 + 1024 }, /slotCapacity/],
    [{ actionCount: -1 }, /actionCount/],
    [{ actionCount: 0 }, /actionCount/],
    [{ actionCount: 2 ** 20 + 1 }, /actionCount/],
    [{ actionCount: 2.5 }, /actionCount/],
  ];
  for (const [options, field] of cases) {
    assert.throws(
      () => new PacketCore({ slotCount: 2, slotCapacity: 256, actionCount: 2, ...options }),
      (e: unknown) => e instanceof RangeError && field.test(e.message),
      `${JSON.stringify(options)} should throw a RangeError matching ${field}`,
    );
  }
  // The limits themselves are accepted.
  assert.doesNotThrow(() => new PacketCore({ slotCount: 1, slotCapacity: 128, actionCount: 1 }));
});

test("setAction rejects bad actions with ActionError and leaves the previous record untouched", () => {
  const core = new PacketCore({ slotCount: 1, slotCapacity: 256, actionCount: 8 });
  const table = (core.wasm.regionActions as () => number)();
  const good: ForwardAction = {
    kind: "tunnel",
    type: "gue",
    remote: "192.0.2.1",
    local: "192.0.2.2",
    port: 6080,
    checksum: true,
    destinationMac: "02:00:00:00:00:01",
    sourceMac: "02:00:00:00:00:02",
  };
  for (let i = 0; i < 8; i++) core.setAction(i, i % 2 ? good : { kind: "nat-dnat", address: "10.0.0.9", port: 8000 + i });
  const before = Buffer.from(core.slots.bytes.subarray(table, table + 8 * ACTION_SIZE));
  assert.ok(
    before.subarray(3 * ACTION_SIZE, 4 * ACTION_SIZE).some((b) => b !== 0),
    "record 3 was written",
  );

  const bad: Array<[unknown, RegExp]> = [
    [{ kind: "nat-dnat", address: "10.0.0.256" }, /address/],
    [{ kind: "nat-dnat", address: "not-an-ip" }, /address/],
    [{ kind: "nat-snat", address: "" }, /address/],
    [{ kind: "icmp-nat-in", address: "2001:db8::g" }, /address/],
    [{ kind: "icmp-nat-out", address: "1:2:3:4:5:6:7:8:9" }, /address/],
    [{ kind: "nat-dnat", address: undefined }, /address/],
    [{ kind: "nat-dnat", address: "10.0.0.1", port: 65536 }, /port/],
    [{ kind: "nat-dnat", address: "10.0.0.1", port: -1 }, /port/],
    [{ kind: "nat-dnat", address: "10.0.0.1", port: 80.5 }, /port/],
    [{ kind: "nat-dnat", address: "10.0.0.1", port: "80" }, /port/],
    [{ kind: "nat-dnat", address: "10.0.0.1", port: Number.NaN }, /port/],
    [{ kind: "dr", destinationMac: "02:00:00:00:00", sourceMac: "02:00:00:00:00:02" }, /destinationMac/],
    [{ kind: "dr", destinationMac: "02:00:00:00:00:01", sourceMac: "zz:00:00:00:00:02" }, /sourceMac/],
    [{ kind: "dr", destinationMac: "02:00:00:00:00:01:03", sourceMac: "02:00:00:00:00:02" }, /destinationMac/],
    [{ kind: "dr", destinationMac: "02:00:00:00:00:01" }, /sourceMac/],
    [{ kind: "nat-dnat", address: "10.0.0.1", sourceMac: "02:00:00:00:00:02" }, /destinationMac/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "2001:db8::1" }, /family/],
    [{ kind: "tunnel", type: "gre", remote: "2001:db8::1", local: "10.0.0.1" }, /family/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.300", local: "10.0.0.1" }, /remote/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "nope" }, /local/],
    [{ kind: "tunnel", type: "gue", remote: "10.0.0.1", local: "10.0.0.2" }, /port/],
    [{ kind: "tunnel", type: "gue", remote: "10.0.0.1", local: "10.0.0.2", port: 0 }, /port/],
    [{ kind: "tunnel", type: "vxlan", remote: "10.0.0.1", local: "10.0.0.2" }, /type/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "10.0.0.2", mtu: 67 }, /mtu/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "10.0.0.2", mtu: 65536 }, /mtu/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "10.0.0.2", mtu: 1500.5 }, /mtu/],
    [{ kind: "tunnel", type: "ipip", remote: "10.0.0.1", local: "10.0.0.2", checksum: true }, /checksum/],
    [{ kind: "tunnel", type: "gre", remote: "10.0.0.1", local: "10.0.0.2", remoteChecksum: true }, /remoteChecksum/],
    [{ kind: "masquerade", address: "10.0.0.1" }, /kind/],
  ];
  for (const [action, field] of bad) {
    assert.throws(
      () => core.setAction(3, action as ForwardAction),
      (e: unknown) => e instanceof ActionError && field.test(e.message),
      `${JSON.stringify(action)} should throw an ActionError matching ${field}`,
    );
    const after = Buffer.from(core.slots.bytes.subarray(table, table + 8 * ACTION_SIZE));
    assert.equal(Buffer.compare(before, after), 0, `${JSON.stringify(action)} changed the action table`);
  }
  for (const index of [-1, 8, 1.5, Number.NaN]) {
    assert.throws(() => core.setAction(index, good), RangeError, `index ${index}`);
  }
  assert.equal(Buffer.compare(before, Buffer.from(core.slots.bytes.subarray(table, table + 8 * ACTION_SIZE))), 0);

  // And a good action does land (the comparison above can see a change).
  core.setAction(3, { kind: "nat-snat", address: "10.1.1.1" });
  const changed = Buffer.from(core.slots.bytes.subarray(table, table + 8 * ACTION_SIZE));
  assert.notEqual(Buffer.compare(before, changed), 0);
  assert.equal(Buffer.compare(before.subarray(0, 3 * ACTION_SIZE), changed.subarray(0, 3 * ACTION_SIZE)), 0, "records before 3 untouched");
  assert.equal(Buffer.compare(before.subarray(4 * ACTION_SIZE), changed.subarray(4 * ACTION_SIZE)), 0, "records after 3 untouched");
});
