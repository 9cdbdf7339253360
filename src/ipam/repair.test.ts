import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../datastore/memory.js";
import { API_VERSION } from "../api/resource.js";
import { parseCIDR } from "../api/net.js";
import { IPAM } from "./allocator.js";
import {
  affinityKey,
  blockKey,
  handleKey,
  hostAffinity,
  newBlock,
  parseBlock,
  serializeBlock,
  allocate,
  type HandleDoc,
} from "./block.js";
import { checkIPAM } from "./check.js";
import { IPAMRepairer, repairIPAM, repairIsEmpty, type RepairResult } from "./repair.js";

const BLOCK = parseCIDR("198.19.4.0/28")!;
const BLOCK6 = parseCIDR("fd00:19:0:4::/124")!;

async function setup(): Promise<{ ds: MemoryDatastore; ipam: IPAM }> {
  const ds = new MemoryDatastore();
  const ipam = new IPAM(ds);
  for (const [name, cidr, blockSize] of [
    ["p4", "198.19.4.0/28", 28],
    ["p6", "fd00:19:0:4::/124", 124],
  ] as const) {
    await ipam.resources.create({
      apiVersion: API_VERSION,
      kind: "IPPool",
      metadata: { name },
      spec: { cidr, blockSize },
    });
  }
  for (const name of ["n1", "n2"]) {
    await ipam.resources.create({ apiVersion: API_VERSION, kind: "Node", metadata: { name }, spec: {} });
  }
  return { ds, ipam };
}

const aff = (state: string): string => JSON.stringify({ state, deleted: false });
const handle = (block: Record<string, number>): string =>
  JSON.stringify({ block, deleted: false } satisfies HandleDoc);

/** A block affine to `node` holding `n` addresses of handle `h`, written directly. */
async function putBlock(ds: MemoryDatastore, node: string | null, h: string, n: number): Promise<void> {
  const b = newBlock(BLOCK, node === null ? null : hostAffinity(node), 1);
  if (n > 0) allocate(b, n, h, { node: "n1" });
  await ds.create(blockKey(BLOCK), serializeBlock(b));
}

interface Case {
  name: string;
  /** Write the broken state. */
  breakIt: (ds: MemoryDatastore, ipam: IPAM) => Promise<void>;
  /** The result field that must list the fix. */
  field: keyof RepairResult;
  /** True when the state is one a live allocator passes through: only a later pass acts. */
  aged: boolean;
  /** After repair, this key exists (true) or not (false). */
  keys?: Record<string, boolean>;
}

const aKey = affinityKey("n1", BLOCK);
const bKey = blockKey(BLOCK);

const cases: Case[] = [
  {
    name: "handle count above what the block holds (killed between handle += n and block write)",
    breakIt: async (ds, ipam) => {
      await ipam.autoAssign({ node: "n1", handleID: "h", num4: 2 });
      const kv = (await ds.get(handleKey("h")))!;
      await ds.update(kv.key, handle({ "198.19.4.0/28": 5 }), kv.modRevision);
    },
    field: "handlesFixed",
    aged: true,
  },
  {
    name: "handle count below what the block holds",
    breakIt: async (ds, ipam) => {
      await ipam.autoAssign({ node: "n1", handleID: "h", num4: 3, num6: 1 });
      const kv = (await ds.get(handleKey("h")))!;
      await ds.update(kv.key, handle({ "198.19.4.0/28": 1 }), kv.modRevision);
    },
    field: "handlesFixed",
    aged: true,
  },
  {
    name: "handle with no addresses left (killed between block release and handle -= n)",
    breakIt: async (ds, ipam) => {
      await ipam.autoAssign({ node: "n2", handleID: "keep", num4: 1 });
      await ds.create(handleKey("gone"), handle({ "198.19.4.0/28": 2 }));
    },
    field: "handlesDeleted",
    aged: true,
    keys: { [handleKey("gone")]: false },
  },
  {
    name: "addresses held by a handle that does not exist",
    breakIt: async (ds) => {
      await ds.create(aKey, aff("confirmed"));
      await putBlock(ds, "n1", "orphan", 2);
    },
    field: "handlesFixed",
    aged: true,
    keys: { [handleKey("orphan")]: true },
  },
  {
    name: "pending affinity with no block (killed between affinity and block create)",
    breakIt: async (ds) => {
      await ds.create(aKey, aff("pending"));
    },
    field: "affinitiesDeleted",
    aged: true,
    keys: { [aKey]: false },
  },
  {
    name: "pending affinity whose block another node won",
    breakIt: async (ds) => {
      await ds.create(affinityKey("n2", BLOCK), aff("confirmed"));
      await putBlock(ds, "n2", "x", 0);
      await ds.create(aKey, aff("pending"));
    },
    field: "affinitiesDeleted",
    aged: true,
    keys: { [aKey]: false, [bKey]: true },
  },
  {
    name: "pending affinity whose block exists with that host (killed before confirm)",
    breakIt: async (ds) => {
      await ds.create(aKey, aff("pending"));
      await putBlock(ds, "n1", "x", 0);
    },
    field: "affinitiesConfirmed",
    aged: false,
    keys: { [aKey]: true, [bKey]: true },
  },
  {
    name: "pendingDeletion affinity whose block is gone (killed before the affinity delete)",
    breakIt: async (ds) => {
      await ds.create(aKey, aff("pendingDeletion"));
    },
    field: "affinitiesDeleted",
    aged: false,
    keys: { [aKey]: false },
  },
  {
    name: "pendingDeletion affinity whose block still holds addresses (killed before block delete)",
    breakIt: async (ds, ipam) => {
      await ipam.autoAssign({ node: "n1", handleID: "h", num4: 1 });
      const kv = (await ds.get(aKey))!;
      await ds.update(aKey, aff("pendingDeletion"), kv.modRevision);
    },
    field: "affinitiesRestored",
    aged: true,
    keys: { [aKey]: true, [bKey]: true },
  },
  {
    name: "pendingDeletion affinity whose block is empty: the deletion is finished",
    breakIt: async (ds) => {
      await ds.create(aKey, aff("pendingDeletion"));
      await putBlock(ds, "n1", "x", 0);
    },
    field: "blocksDeleted",
    aged: true,
    keys: { [aKey]: false, [bKey]: false },
  },
  {
    name: "host-affine block with no affinity record",
    breakIt: async (ds, ipam) => {
      await ipam.autoAssign({ node: "n1", handleID: "h", num4: 1 });
      await ds.delete(aKey);
    },
    field: "affinitiesRecreated",
    aged: false,
    keys: { [aKey]: true },
  },
  {
    name: "confirmed affinity with no block",
    breakIt: async (ds) => {
      await ds.create(affinityKey("n2", BLOCK6), aff("confirmed"));
    },
    field: "affinitiesDeleted",
    aged: true,
    keys: { [affinityKey("n2", BLOCK6)]: false },
  },
];

describe("IPAM crash repair", () => {
  for (const c of cases) {
    test(c.name, async () => {
      const { ds, ipam } = await setup();
      await c.breakIt(ds, ipam);
      let t = 0;
      const r = new IPAMRepairer(ipam, { minAgeMs: 1000, now: () => t });
      const first = await r.runOnce();
      if (c.aged) {
        assert.deepEqual(first[c.field], [], "not on the first sight");
        assert.ok(first.deferred.length > 0);
        // Not yet old enough: still nothing.
        t = 999;
        assert.deepEqual((await r.runOnce())[c.field], []);
        t = 1000;
        const second = await r.runOnce();
        assert.equal(second[c.field].length, 1, JSON.stringify(second));
        assert.deepEqual(second.deferred, []);
      } else {
        assert.equal(first[c.field].length, 1, JSON.stringify(first));
      }
      assert.equal(r.remembered, 0);
      assert.deepEqual((await checkIPAM(ds)).issues, []);
      for (const [k, present] of Object.entries(c.keys ?? {})) {
        assert.equal((await ds.get(k)) !== undefined, present, k);
      }
      // Idempotent: another run finds nothing to do.
      t = 5000;
      assert.ok(repairIsEmpty(await r.runOnce()));
      assert.ok(repairIsEmpty(await repairIPAM(ipam, { minAgeMs: 1 })));
      // And the allocator works on from the repaired state.
      await ipam.autoAssign({ node: "n1", handleID: "after", num4: 1, num6: 1 });
      assert.deepEqual((await checkIPAM(ds)).issues, []);
    });
  }

  test("a state that changes between passes is not acted on (a live allocator's)", async () => {
    const { ds, ipam } = await setup();
    await ds.create(aKey, aff("pending"));
    let t = 0;
    const r = new IPAMRepairer(ipam, { minAgeMs: 1000, now: () => t });
    await r.runOnce();
    // The claimer takes it over (rewrites it): the clock starts again.
    const kv = (await ds.get(aKey))!;
    await ds.update(aKey, aff("pending"), kv.modRevision);
    t = 2000;
    const res = await r.runOnce();
    assert.deepEqual(res.affinitiesDeleted, []);
    assert.ok((await ds.get(aKey)) !== undefined);
    t = 3000;
    assert.deepEqual((await r.runOnce()).affinitiesDeleted, [aKey]);
  });

  test("a handle mid-assign (incremented, block not yet written) is left alone until it settles", async () => {
    const { ds, ipam } = await setup();
    await ipam.autoAssign({ node: "n1", handleID: "h", num4: 1 });
    let t = 0;
    const r = new IPAMRepairer(ipam, { minAgeMs: 1000, now: () => t });
    // The allocator's handle += 1 ...
    let kv = (await ds.get(handleKey("h")))!;
    await ds.update(kv.key, handle({ "198.19.4.0/28": 2 }), kv.modRevision);
    assert.deepEqual((await r.runOnce()).handlesFixed, []);
    // ... then its block write, a moment later.
    const bkv = (await ds.get(bKey))!;
    const b = parseBlock(bkv.value);
    allocate(b, 1, "h", null);
    await ds.update(bKey, serializeBlock(b), bkv.modRevision);
    t = 5000;
    const res = await r.runOnce();
    assert.ok(repairIsEmpty(res), JSON.stringify(res));
    kv = (await ds.get(handleKey("h")))!;
    assert.deepEqual((JSON.parse(kv.value) as HandleDoc).block, { "198.19.4.0/28": 2 });
    assert.deepEqual((await checkIPAM(ds)).issues, []);
  });

  test("repairIPAM waits once for aged states and reports both passes", async () => {
    const { ds, ipam } = await setup();
    await ds.create(aKey, aff("pending"));
    await ds.create(handleKey("gone"), handle({ "198.19.4.16/28": 1 }));
    const res = await repairIPAM(ipam, { minAgeMs: 20 });
    assert.deepEqual(res.affinitiesDeleted, [aKey]);
    assert.deepEqual(res.handlesDeleted, ["gone"]);
    assert.deepEqual(res.deferred, []);
    assert.deepEqual((await checkIPAM(ds)).issues, []);
  });
});
