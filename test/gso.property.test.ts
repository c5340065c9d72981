// Property tests of partial checksums and software segmentation against the plain
// TypeScript model (test/support/gso-model.ts): random families, protocols, addresses,
// ports, payload sizes, segment sizes, TCP flags and sequence numbers. The data plane's
// NAT of a packet with a partial checksum (the virtio_net_hdr says NEEDS_CSUM) must leave
// exactly the folded pseudo-header sum of the rewritten packet, which the device's
// completion turns into the full checksum; its segments must equal the model's byte for byte.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, LinkType, PacketCore, type ServiceKey, Verdict, VNET_HDR_SIZE } from "../src/index.js";
import { build, deviceComplete, type Family, layout, natModel, type Proto, segmentModel, toPartial, vnetHeader } from "./support/gso-model.js";

const core = new PacketCore({ slotCount: 48, slotCapacity: 16384 });
const wasm = core.wasm;

function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return [...b].join(".");
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] << 8) | b[i + 1]).toString(16));
  return words.join(":");
}

const caseArb = fc
  .record({
    family: fc.constantFrom<Family>(4, 6),
    proto: fc.constantFrom<Proto>("tcp", "udp"),
    seed: fc.integer({ min: 0, max: 255 }),
    payloadLength: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 9000 })),
    gsoSize: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 536, max: 1460 })),
    side: fc.constantFrom<"dst" | "src">("dst", "src"),
    port: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
    sport: fc.integer({ min: 1, max: 65535 }),
    dport: fc.integer({ min: 1, max: 65535 }),
    seq: fc.integer({ min: 0, max: 0xffffffff }),
    flags: fc.integer({ min: 0, max: 255 }),
    id: fc.integer({ min: 0, max: 0xffff }),
    addresses: fc.uint8Array({ minLength: 48, maxLength: 48 }),
  })
  .map((c) => {
    const n = c.family === 4 ? 4 : 16;
    const payload = new Uint8Array(c.payloadLength);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 131 + c.seed) & 0xff;
    const complete = build({
      family: c.family,
      proto: c.proto,
      src: c.addresses.subarray(0, n),
      dst: c.addresses.subarray(16, 16 + n),
      sport: c.sport,
      dport: c.dport,
      seq: c.seq,
      flags: c.flags,
      id: c.id,
      payload,
    });
    return { ...c, complete, newAddress: c.addresses.slice(32, 32 + n) };
  });

/** NAT of the partial packet in slot 0 by the data plane (applyActions: no TTL change). */
interface NatCase {
  readonly side: "dst" | "src";
  readonly newAddress: Uint8Array;
  readonly port: number;
  readonly complete: Uint8Array;
}

function natPartial(c: NatCase, gso: number): { verdict: number; packet: Uint8Array } {
  core.setAction(0, { kind: c.side === "dst" ? "nat-dnat" : "nat-snat", address: formatAddress(c.newAddress), port: c.port });
  const partial = toPartial(c.complete);
  core.slots.write(0, partial, LinkType.RawIp);
  core.slots.offloadRecord(0).set(vnetHeader(partial, gso));
  core.slots.setField(0, 24 /* Desc.Action */, 0);
  core.applyBatch(0, 1);
  const r = core.slots.result(0);
  return { verdict: r.verdict, packet: r.packet };
}
function segmentsOfSlot0(): Uint8Array[] {
  const total = wasm.gsoSegments(0);
  const out: Uint8Array[] = [];
  for (let done = 0; done < total; ) {
    const k = wasm.gsoSegmentInto(0, done, 1, core.slots.count - 1);
    if (k === 0) throw new Error(`segmenter stopped at ${done} of ${total}`);
    for (let i = 1; i <= k; i++) out.push(core.slots.view(i).slice());
    done += k;
  }
  return out;
}

test("NAT of a partial checksum: the field is the rewritten packet's folded pseudo-header sum, and the device completes it to the full checksum", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const out = natPartial(c, 0);
      assert.equal(out.verdict, Verdict.Forward);
      const expected = natModel(c.complete, c.side, c.newAddress, c.port, true);
      assert.deepEqual(out.packet, expected);
      const { l4, csumField } = layout(out.packet);
      assert.deepEqual(deviceComplete(out.packet, l4, csumField - l4), natModel(c.complete, c.side, c.newAddress, c.port, false));
      // And completed by the data plane itself (an egress without offloads).
      assert.equal(wasm.offloadCompleteSlot(0), 0);
      assert.deepEqual(core.slots.view(0).slice(), natModel(c.complete, c.side, c.newAddress, c.port, false));
    }),
    { numRuns: 400 },
  );
});

test("software GSO: the data plane's segments of a NATed super-packet equal the model's, whatever the sizes, flags and sequence numbers", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      fc.pre(Math.ceil(c.payloadLength / c.gsoSize) <= 400);
      const out = natPartial(c, c.gsoSize);
      assert.equal(out.verdict, Verdict.Forward);
      const expected = natModel(c.complete, c.side, c.newAddress, c.port, true);
      assert.deepEqual(out.packet, expected);
      assert.deepEqual([...core.slots.offloadRecord(0).subarray(0, VNET_HDR_SIZE)], [...vnetHeader(expected, c.gsoSize)], "the header is kept");
      const segments = segmentsOfSlot0();
      assert.deepEqual(segments, segmentModel(expected, c.gsoSize));
    }),
    { numRuns: 250 },
  );
});

test("bad input: random virtio-net headers on random and mutated packets never trap the datapath or the segmenter", () => {
  const b = new Balancer({ connections: 64, slots: 8 });
  const key: ServiceKey = { kind: "address", protocol: "tcp", address: "203.0.113.10", port: 80 };
  b.addService({ key, scheduler: "rr", schedulerFlags: [], onePacket: false });
  b.addDestination(key, { address: "192.0.2.50", port: 8080, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const seedPacket = build({
    family: 4,
    proto: "tcp",
    src: new Uint8Array([198, 51, 100, 7]),
    dst: new Uint8Array([203, 0, 113, 10]),
    sport: 40000,
    dport: 80,
    flags: 0x02,
    payload: new Uint8Array(3000),
  });
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 10, maxLength: 10 }),
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.array(fc.tuple(fc.nat(seedPacket.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }).map((edits) => {
          const p = seedPacket.slice();
          for (const [at, v] of edits) p[at] = v;
          return p;
        }),
      ),
      (header, packet) => {
        b.slots.write(0, packet, LinkType.RawIp);
        b.slots.offloadRecord(0).set(header);
        b.process(1, 1000);
        const w = b.core.wasm;
        const n = w.gsoSegments(0);
        if (n > 0) assert.ok(w.gsoSegmentInto(0, 0, 1, 7) > 0, "a packet the segmenter counts, it cuts");
        w.offloadCompleteSlot(0);
        b.slots.write(0, packet, LinkType.RawIp);
        b.slots.offloadRecord(0).set(header);
        core.slots.write(0, packet, LinkType.RawIp);
        core.slots.offloadRecord(0).set(header);
        core.applyBatch(0, 1);
      },
    ),
    { numRuns: 3000 },
  );
});
