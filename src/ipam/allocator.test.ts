import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../datastore/memory.js";
import { API_VERSION } from "../api/resource.js";
import { IPAM } from "./allocator.js";
import { affinityPrefix, blockPrefix, handleKey } from "./block.js";
import { checkIPAM } from "./check.js";
import {
  isAddressInUse,
  isAddressReserved,
  isNotInPool,
  isPoolDisabled,
  isPoolExhausted,
  isPoolNotFound,
} from "./errors.js";

interface Setup {
  pools?: {
    name: string;
    cidr: string;
    blockSize?: number;
    disabled?: boolean;
    nodeSelector?: string;
    allowedUses?: string[];
  }[];
  reservations?: string[];
  config?: Record<string, unknown>;
  nodes?: { name: string; labels?: Record<string, string> }[];
}

async function setup(s: Setup): Promise<{ ds: MemoryDatastore; ipam: IPAM }> {
  const ds = new MemoryDatastore();
  const ipam = new IPAM(ds);
  const r = ipam.resources;
  for (const p of s.pools ?? []) {
    const { name, ...spec } = p;
    await r.create({ apiVersion: API_VERSION, kind: "IPPool", metadata: { name }, spec });
  }
  if (s.reservations !== undefined) {
    await r.create({
      apiVersion: API_VERSION,
      kind: "IPReservation",
      metadata: { name: "res" },
      spec: { reservedCIDRs: s.reservations },
    });
  }
  if (s.config !== undefined) {
    await r.create({
      apiVersion: API_VERSION,
      kind: "IPAMConfiguration",
      metadata: { name: "default" },
      spec: s.config,
    });
  }
  for (const n of s.nodes ?? [{ name: "n1" }, { name: "n2" }, { name: "n3" }]) {
    await r.create({
      apiVersion: API_VERSION,
      kind: "Node",
      metadata: { name: n.name, ...(n.labels !== undefined ? { labels: n.labels } : {}) },
      spec: {},
    });
  }
  return { ds, ipam };
}

async function assertConsistent(ds: MemoryDatastore): Promise<void> {
  const rep = await checkIPAM(ds);
  assert.deepEqual(rep.issues, []);
}

const v4 = { name: "p4", cidr: "198.19.0.0/24", blockSize: 28 };

describe("IPAM auto-assign", () => {
  test("first allocation claims an affine block; later ones reuse it", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    const a = await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 3 });
    assert.equal(a.ipv4.length, 3);
    assert.equal(a.ipv4[0]!.pool, "p4");
    assert.match(a.ipv4[0]!.cidr, /\/28$/);
    const aff = await ds.list(affinityPrefix("n1", 4));
    assert.equal(aff.items.length, 1);
    assert.equal(JSON.parse(aff.items[0]!.value).state, "confirmed");
    const b = await ipam.autoAssign({ node: "n1", handleID: "h2", num4: 2 });
    assert.equal((await ds.list(blockPrefix(4))).items.length, 1);
    const all = new Set([...a.ipv4, ...b.ipv4].map((x) => x.address));
    assert.equal(all.size, 5);
    const h = JSON.parse((await ds.get(handleKey("h1")))!.value);
    assert.deepEqual(Object.values(h.block), [3]);
    await assertConsistent(ds);
  });

  test("different nodes get different blocks", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    const a = await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 1 });
    const b = await ipam.autoAssign({ node: "n2", handleID: "h2", num4: 1 });
    assert.notEqual(a.ipv4[0]!.cidr.split("/")[0], b.ipv4[0]!.cidr.split("/")[0]);
    assert.equal((await ds.list(blockPrefix(4))).items.length, 2);
    await assertConsistent(ds);
  });

  test("a full node claims another block, then borrows when none is left", async () => {
    const { ds, ipam } = await setup({ pools: [{ name: "p", cidr: "198.19.0.0/27", blockSize: 28 }] });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 20 });
    assert.equal((await ds.list(affinityPrefix("n1", 4))).items.length, 2);
    await ipam.releaseByHandle("h1");
    assert.equal(
      (await ds.list(affinityPrefix("n1", 4))).items.length,
      0,
      "emptied blocks lose their affinity",
    );
    await ipam.autoAssign({ node: "n1", handleID: "a", num4: 16 });
    const got = await ipam.autoAssign({ node: "n2", handleID: "b", num4: 16 });
    assert.equal(got.ipv4.length, 16);
    await ipam.autoAssign({ node: "n1", handleID: "c", num4: 0 });
    await assert.rejects(ipam.autoAssign({ node: "n3", handleID: "d", num4: 1 }), isPoolExhausted);
    await assertConsistent(ds);
  });

  test("borrowing: a node with no block to claim takes addresses from another node's block", async () => {
    const { ds, ipam } = await setup({ pools: [{ name: "p", cidr: "198.19.0.0/28", blockSize: 28 }] });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 4 });
    const b = await ipam.autoAssign({ node: "n2", handleID: "h2", num4: 4 });
    assert.equal(b.ipv4.length, 4);
    assert.equal((await ds.list(affinityPrefix("n2", 4))).items.length, 0);
    await assertConsistent(ds);
  });

  test("strictAffinity: no borrowing, a clear exhaustion error and nothing written", async () => {
    const { ds, ipam } = await setup({
      pools: [{ name: "p", cidr: "198.19.0.0/28", blockSize: 28 }],
      config: { strictAffinity: true, autoAllocateBlocks: true },
    });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 4 });
    const before = await ds.revision();
    await assert.rejects(ipam.autoAssign({ node: "n2", handleID: "h2", num4: 1 }), (e: unknown) => {
      assert.ok(isPoolExhausted(e));
      assert.match((e as Error).message, /pool "p"/);
      return true;
    });
    assert.equal(await ds.get(handleKey("h2")), undefined);
    assert.ok((await ds.revision()) >= before);
    await assertConsistent(ds);
  });

  test("maxBlocksPerHost caps a node's blocks", async () => {
    const { ds, ipam } = await setup({
      pools: [{ name: "p", cidr: "198.19.0.0/24", blockSize: 30 }],
      config: { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 2 },
    });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 8 });
    await assert.rejects(ipam.autoAssign({ node: "n1", handleID: "h2", num4: 1 }), (e: unknown) => {
      assert.ok(isPoolExhausted(e));
      assert.match((e as Error).message, /limit of 2 blocks/);
      return true;
    });
    assert.equal((await ds.list(affinityPrefix("n1", 4))).items.length, 2);
    await assertConsistent(ds);
  });

  test("reservations are never handed out, and assignIP refuses them", async () => {
    const { ds, ipam } = await setup({
      pools: [{ name: "p", cidr: "198.19.0.0/28", blockSize: 28 }],
      reservations: ["198.19.0.0/30", "198.19.0.9"],
    });
    const got = await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 11 });
    const addrs = got.ipv4.map((a) => a.address);
    for (const r of ["198.19.0.0", "198.19.0.1", "198.19.0.2", "198.19.0.3", "198.19.0.9"])
      assert.ok(!addrs.includes(r), r);
    await assert.rejects(ipam.autoAssign({ node: "n1", handleID: "h2", num4: 1 }), isPoolExhausted);
    await assert.rejects(ipam.assignIP("198.19.0.9", "h3", null, "n1"), isAddressReserved);
    await assertConsistent(ds);
  });

  test("IPv6 and dual stack; a v6 failure gives back the v4 addresses", async () => {
    const { ds, ipam } = await setup({
      pools: [v4, { name: "p6", cidr: "fd00:19::/120", blockSize: 122 }],
    });
    const got = await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 1, num6: 2 });
    assert.equal(got.ipv6.length, 2);
    assert.match(got.ipv6[0]!.cidr, /^fd00:19::[0-9a-f]*\/122$/);
    await assert.rejects(
      ipam.autoAssign({ node: "n1", handleID: "h2", num4: 1, num6: 1000 }),
      isPoolExhausted,
    );
    assert.equal(await ds.get(handleKey("h2")), undefined, "the v4 half was released");
    await assertConsistent(ds);
  });

  test("named pools: unknown, disabled and wrong-family pools are named in the error", async () => {
    const { ipam } = await setup({
      pools: [
        v4,
        { name: "off", cidr: "198.19.10.0/24", disabled: true },
        { name: "p6", cidr: "fd00:19::/120" },
      ],
    });
    await assert.rejects(
      ipam.autoAssign({ node: "n1", handleID: "h", num4: 1, pools4: ["nope"] }),
      (e: unknown) => {
        assert.ok(isPoolNotFound(e));
        assert.match((e as Error).message, /"nope"/);
        return true;
      },
    );
    await assert.rejects(
      ipam.autoAssign({ node: "n1", handleID: "h", num4: 1, pools4: ["off"] }),
      (e: unknown) => {
        assert.ok(isPoolDisabled(e));
        assert.match((e as Error).message, /"off"/);
        return true;
      },
    );
    await assert.rejects(
      ipam.autoAssign({ node: "n1", handleID: "h", num4: 1, pools4: ["p6"] }),
      isPoolNotFound,
    );
    const ok = await ipam.autoAssign({ node: "n1", handleID: "h", num4: 1, pools4: ["p4"] });
    assert.equal(ok.ipv4[0]!.pool, "p4");
  });

  test("disabled pools and nodeSelector exclude pools", async () => {
    const { ipam } = await setup({
      pools: [
        { name: "off", cidr: "198.19.10.0/24", disabled: true },
        { name: "rack1", cidr: "198.19.20.0/24", nodeSelector: "rack == 'r1'" },
        { name: "lb", cidr: "198.19.30.0/24", allowedUses: ["LoadBalancer"] },
      ],
      nodes: [
        { name: "n1", labels: { rack: "r1" } },
        { name: "n2", labels: { rack: "r2" } },
      ],
    });
    const a = await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 1 });
    assert.equal(a.ipv4[0]!.pool, "rack1");
    await assert.rejects(ipam.autoAssign({ node: "n2", handleID: "h2", num4: 1 }), isPoolNotFound);
    const lb = await ipam.autoAssign({ node: "n2", handleID: "h3", num4: 1, intendedUse: "LoadBalancer" });
    assert.equal(lb.ipv4[0]!.pool, "lb");
  });
});

describe("IPAM assign and release", () => {
  test("assignIP: a specific address, in use, not in a pool", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    const a = await ipam.assignIP("198.19.0.77", "h1", { pod: "x" }, "n1");
    assert.equal(a.cidr, "198.19.0.77/28");
    await assert.rejects(ipam.assignIP("198.19.0.77", "h2", null, "n2"), isAddressInUse);
    await assert.rejects(ipam.assignIP("198.18.9.9", "h2", null, "n2"), isNotInPool);
    // Auto-assign on the same node uses the block assignIP claimed, never the taken address.
    const more = await ipam.autoAssign({ node: "n1", handleID: "h3", num4: 15 });
    assert.ok(!more.ipv4.some((x) => x.address === "198.19.0.77"));
    await assertConsistent(ds);
  });

  test("releaseIPs: frees, is idempotent, keeps handles in step", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    const a = await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 3 });
    const [x, y] = a.ipv4.map((i) => i.address);
    const r = await ipam.releaseIPs([x!]);
    assert.deepEqual(r, { released: [x], notAllocated: [], skipped: [] });
    const again = await ipam.releaseIPs([x!, "198.18.200.1"]);
    assert.deepEqual(again.released, []);
    assert.deepEqual(again.notAllocated.sort(), [x, "198.18.200.1"].sort());
    const h = JSON.parse((await ds.get(handleKey("h1")))!.value);
    assert.deepEqual(Object.values(h.block), [2]);
    await assertConsistent(ds);
    await ipam.releaseIPs([y!]);
    await assertConsistent(ds);
  });

  test("getAllocation says who holds an address; a stale sequence number releases nothing", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    const [a] = (await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 2, attrs: { pod: "p1" } })).ipv4;
    const info = await ipam.getAllocation(a!.address);
    assert.equal(info?.handleID, "h1");
    assert.deepEqual(info?.attrs, { pod: "p1" });
    assert.equal(info?.affinity, "host:n1");
    await ipam.releaseIPs([a!.address]);
    assert.equal(await ipam.getAllocation(a!.address), undefined);
    await ipam.assignIP(a!.address, "h2", null, "n1");
    const stale = await ipam.releaseIPs([{ address: a!.address, sequenceNumber: info.sequenceNumber }]);
    assert.deepEqual(stale, { released: [], notAllocated: [], skipped: [a!.address] });
    assert.equal((await ipam.getAllocation(a!.address))?.handleID, "h2");
    const cur = (await ipam.getAllocation(a!.address))!.sequenceNumber;
    const ok = await ipam.releaseIPs([{ address: a!.address, sequenceNumber: cur }]);
    assert.deepEqual(ok.released, [a!.address]);
    await assertConsistent(ds);
  });

  test("releaseByHandle frees all of a handle; the emptied block and its affinity go", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 20, attrs: { pod: "p" } });
    assert.equal(await ipam.releaseByHandle("h1"), 20);
    assert.equal(await ipam.releaseByHandle("h1"), 0);
    assert.equal(await ds.get(handleKey("h1")), undefined);
    assert.equal((await ds.list(blockPrefix(4))).items.length, 0);
    assert.equal((await ds.list(affinityPrefix("n1", 4))).items.length, 0);
    // The block can now go to another node.
    await ipam.autoAssign({ node: "n2", handleID: "h2", num4: 1 });
    await assertConsistent(ds);
  });

  test("a block keeps its affinity while anything is allocated in it", async () => {
    const { ds, ipam } = await setup({ pools: [v4] });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 1 });
    await ipam.autoAssign({ node: "n1", handleID: "h2", num4: 1 });
    await ipam.releaseByHandle("h1");
    assert.equal((await ds.list(affinityPrefix("n1", 4))).items.length, 1);
    await assertConsistent(ds);
  });
});

describe("IPAM check", () => {
  test("finds handle mismatches, missing handles, missing affinities and nodes", async () => {
    const { ds, ipam } = await setup({ pools: [v4], nodes: [{ name: "n1" }] });
    await ipam.autoAssign({ node: "n1", handleID: "h1", num4: 2 });
    await ipam.autoAssign({ node: "gone", handleID: "h2", num4: 1 });
    await ds.delete(handleKey("h1"));
    const aff = (await ds.list(affinityPrefix("n1", 4))).items[0]!;
    await ds.delete(aff.key);
    await ds.create(handleKey("h9"), JSON.stringify({ block: { "198.19.0.0/28": 1 }, deleted: false }));
    const kinds = new Set((await checkIPAM(ds)).issues.map((i) => i.kind));
    for (const k of ["missing-handle", "missing-affinity", "missing-node", "handle-mismatch"])
      assert.ok(kinds.has(k as never), k);
  });
});
