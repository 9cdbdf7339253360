import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../datastore/memory.js";
import { API_VERSION } from "../api/resource.js";
import { IPAM } from "./allocator.js";
import { parseCIDR } from "../api/net.js";
import {
  affinityKey,
  affinityPrefix,
  blockKey,
  blockPrefix,
  hostAffinity,
  newBlock,
  parseBlock,
  serializeBlock,
} from "./block.js";
import { checkIPAM } from "./check.js";
import {
  DEFAULT_LEAK_GRACE_PERIOD_MS,
  gcDeletedNodes,
  IPAMGarbageCollector,
  leakGracePeriodMs,
} from "./gc.js";

async function setup(cidr: string, blockSize: number): Promise<{ ds: MemoryDatastore; ipam: IPAM }> {
  const ds = new MemoryDatastore();
  const ipam = new IPAM(ds);
  await ipam.resources.create({
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "p" },
    spec: { cidr, blockSize },
  });
  for (const name of ["n1", "n2"]) {
    await ipam.resources.create({ apiVersion: API_VERSION, kind: "Node", metadata: { name }, spec: {} });
  }
  return { ds, ipam };
}

describe("IPAM GC of deleted nodes", () => {
  test("a deleted node's addresses and affinities are released; borrowers keep theirs", async () => {
    const { ds, ipam } = await setup("198.19.0.0/28", 28);
    const mine = await ipam.autoAssign({ node: "n1", handleID: "a", num4: 4, attrs: { node: "n1" } });
    const theirs = await ipam.autoAssign({ node: "n2", handleID: "b", num4: 4, attrs: { node: "n2" } });
    await ipam.resources.delete({ kind: "Node", name: "n1" });
    const kinds = (await checkIPAM(ds)).issues.map((i) => i.kind);
    assert.ok(kinds.includes("missing-node"));

    const res = await gcDeletedNodes(ipam);
    assert.deepEqual(res.nodes, ["n1"]);
    assert.deepEqual([...res.releasedAddresses].sort(), mine.ipv4.map((a) => a.address).sort());
    assert.equal(res.affinitiesReleased, 1);
    assert.equal((await ds.list(affinityPrefix("n1", 4))).items.length, 0);
    const [block] = (await ds.list(blockPrefix(4))).items.map((kv) => parseBlock(kv.value));
    assert.equal(block?.affinity, null, "the block n2 borrows from stays, unaffine");
    assert.deepEqual((await checkIPAM(ds)).issues, []);

    // When the borrower lets go, the unaffine block is deleted and free for anyone.
    await ipam.releaseIPs(theirs.ipv4.map((a) => a.address));
    assert.equal((await ds.list(blockPrefix(4))).items.length, 0);
    await ipam.autoAssign({ node: "n2", handleID: "c", num4: 1 });
    assert.equal((await ds.list(affinityPrefix("n2", 4))).items.length, 1);
    assert.deepEqual((await checkIPAM(ds)).issues, []);
  });

  test("an empty block of a deleted node is deleted with its affinity; live nodes are untouched", async () => {
    const { ds, ipam } = await setup("198.19.0.0/24", 28);
    await ipam.autoAssign({ node: "n1", handleID: "a", num4: 1, attrs: { node: "n1" } });
    await ipam.autoAssign({ node: "n2", handleID: "b", num4: 1, attrs: { node: "n2" } });
    await ipam.resources.delete({ kind: "Node", name: "n1" });
    const res = await gcDeletedNodes(ipam);
    assert.equal(res.releasedAddresses.length, 1);
    assert.equal((await ds.list(blockPrefix(4))).items.length, 1);
    assert.equal((await ds.list(affinityPrefix("n2", 4))).items.length, 1);
    assert.deepEqual((await checkIPAM(ds)).issues, []);
    const again = await gcDeletedNodes(ipam);
    assert.deepEqual(again, { nodes: [], releasedAddresses: [], affinitiesReleased: 0 });
  });
});

const GRACE = 60_000;

/** A pod's allocation: the attributes the CNI plugin writes. */
async function podIP(ipam: IPAM, pod: string, n = 1): Promise<string[]> {
  const r = await ipam.autoAssign({
    node: "n1",
    handleID: `k8s-pod-network.${pod}`,
    num4: n,
    attrs: { namespace: "default", pod, node: "n1" },
  });
  return r.ipv4.map((a) => a.address);
}

async function putWEP(ipam: IPAM, pod: string, addrs: string[]): Promise<void> {
  await ipam.resources.create({
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name: `n1-k8s-${pod}-eth0`, namespace: "default" },
    spec: {
      node: "n1",
      orchestrator: "k8s",
      endpoint: "eth0",
      pod,
      interfaceName: `cali${pod}`,
      ipNetworks: addrs.map((a) => `${a}/32`),
    },
  });
}

function collector(ipam: IPAM, grace = GRACE): { gc: IPAMGarbageCollector; at: (t: number) => void } {
  let t = 1_000_000;
  const gc = new IPAMGarbageCollector(ipam, { leakGracePeriodMs: grace, now: () => t });
  return { gc, at: (x) => (t = 1_000_000 + x) };
}

describe("IPAM leak GC", () => {
  test("an address no workload holds is released only after the grace period", async () => {
    const { ds, ipam } = await setup("198.19.0.0/24", 28);
    const [leak] = await podIP(ipam, "gone");
    const held = await podIP(ipam, "alive");
    await putWEP(ipam, "alive", held);
    const { gc, at } = collector(ipam);
    let r = await gc.runOnce();
    assert.deepEqual(r.candidates, [leak]);
    assert.deepEqual(r.leaksReleased, []);
    at(GRACE - 1);
    assert.deepEqual((await gc.runOnce()).leaksReleased, []);
    at(GRACE);
    r = await gc.runOnce();
    assert.deepEqual(r.leaksReleased, [leak]);
    assert.equal(await ipam.getAllocation(leak!), undefined);
    assert.equal((await ipam.getAllocation(held[0]!))?.handleID, "k8s-pod-network.alive");
    assert.equal(gc.remembered, 0, "nothing left to remember");
    assert.deepEqual((await checkIPAM(ds)).issues, []);
    at(3 * GRACE);
    r = await gc.runOnce();
    assert.deepEqual([r.candidates, r.leaksReleased, r.leaksKept], [[], [], []]);
  });

  test("a candidate that becomes in use is forgotten; the clock restarts if it is unused again", async () => {
    const { ipam } = await setup("198.19.0.0/24", 28);
    const addrs = await podIP(ipam, "late");
    const { gc, at } = collector(ipam);
    await gc.runOnce();
    assert.equal(gc.remembered, 1);
    await putWEP(ipam, "late", addrs);
    at(GRACE / 2);
    await gc.runOnce();
    assert.equal(gc.remembered, 0);
    await ipam.resources.delete({ kind: "WorkloadEndpoint", name: "n1-k8s-late-eth0", namespace: "default" });
    at(GRACE);
    assert.deepEqual((await gc.runOnce()).leaksReleased, [], "first sighting again");
    at(2 * GRACE);
    assert.deepEqual((await gc.runOnce()).leaksReleased, addrs);
  });

  test("a handle is released only when all its addresses are leaked", async () => {
    const { ipam } = await setup("198.19.0.0/24", 28);
    const addrs = await podIP(ipam, "multi", 2);
    await putWEP(ipam, "multi", [addrs[0]!]);
    const { gc, at } = collector(ipam);
    await gc.runOnce();
    at(2 * GRACE);
    const r = await gc.runOnce();
    assert.deepEqual(r.leaksReleased, []);
    assert.deepEqual(r.leaksKept, [addrs[1]]);
    assert.ok((await ipam.getAllocation(addrs[1]!)) !== undefined);
  });

  test("a confirmed leak is re-validated just before release (a workload appeared meanwhile)", async () => {
    const { ipam } = await setup("198.19.0.0/24", 28);
    const addrs = await podIP(ipam, "racy");
    const ds = ipam.datastore as MemoryDatastore;
    const { gc, at } = collector(ipam);
    await gc.runOnce();
    // The pod's endpoint is written right after the pass has read the endpoints, so the
    // first classification still sees a leak; the re-validation must not.
    let armed = true;
    const list = ds.list.bind(ds);
    ds.list = async (prefix) => {
      const res = await list(prefix);
      if (armed && prefix.includes("/workloadendpoints/")) {
        armed = false;
        await putWEP(ipam, "racy", addrs);
      }
      return res;
    };
    at(GRACE);
    const r = await gc.runOnce();
    assert.equal(armed, false);
    assert.deepEqual(r.leaksReleased, []);
    assert.deepEqual(r.leaksKept, addrs);
    assert.ok((await ipam.getAllocation(addrs[0]!)) !== undefined);
  });

  test("an address re-allocated since it was first seen starts a new grace period", async () => {
    const { ipam } = await setup("198.19.0.0/24", 28);
    const [a] = await podIP(ipam, "first");
    await ipam.autoAssign({ node: "n1", handleID: "keep", num4: 1 }); // keeps the block alive
    const { gc, at } = collector(ipam);
    await gc.runOnce();
    await ipam.releaseIPs([a!]);
    await ipam.assignIP(
      a!,
      "k8s-pod-network.second",
      { namespace: "default", pod: "second", node: "n1" },
      "n1",
    );
    at(GRACE);
    const r = await gc.runOnce();
    assert.deepEqual(r.leaksReleased, []);
    assert.deepEqual(r.candidates, [a]);
    at(2 * GRACE);
    assert.deepEqual((await gc.runOnce()).leaksReleased, [a]);
  });

  test("grace period 0 disables pod address GC but not deleted-node GC", async () => {
    const { ipam } = await setup("198.19.0.0/24", 28);
    const [a] = await podIP(ipam, "p");
    const other = await ipam.autoAssign({ node: "n2", handleID: "x", num4: 1, attrs: { node: "n2" } });
    await ipam.resources.delete({ kind: "Node", name: "n2" });
    const { gc, at } = collector(ipam, 0);
    const r = await gc.runOnce();
    assert.deepEqual(r.deletedNodes.releasedAddresses, [other.ipv4[0]!.address]);
    at(10 * GRACE);
    const r2 = await gc.runOnce();
    assert.deepEqual([r2.candidates, r2.leaksReleased], [[], []]);
    assert.equal(gc.remembered, 0);
    assert.ok((await ipam.getAllocation(a!)) !== undefined);
  });

  test("the grace period comes from KubeControllersConfiguration default", async () => {
    const { ipam } = await setup("198.19.0.0/24", 28);
    assert.equal(await leakGracePeriodMs(ipam), DEFAULT_LEAK_GRACE_PERIOD_MS);
    await ipam.resources.create({
      apiVersion: API_VERSION,
      kind: "KubeControllersConfiguration",
      metadata: { name: "default" },
      spec: { controllers: { node: { leakGracePeriod: "2m30s" } } },
    });
    assert.equal(await leakGracePeriodMs(ipam), 150_000);
    const gc = new IPAMGarbageCollector(ipam);
    assert.equal((await gc.runOnce()).leakGracePeriodMs, 150_000);
  });

  test("an empty affine block is given up after two sightings a grace period apart; the last is kept", async () => {
    const { ds, ipam } = await setup("198.19.0.0/24", 28);
    const blocks = ["198.19.0.32/28", "198.19.0.48/28"].map((c) => parseCIDR(c)!);
    for (const c of blocks) {
      await ds.create(affinityKey("n1", c), JSON.stringify({ state: "confirmed", deleted: false }));
      await ds.create(blockKey(c), serializeBlock(newBlock(c, hostAffinity("n1"), 1)));
    }
    const { gc, at } = collector(ipam);
    assert.deepEqual((await gc.runOnce()).emptyBlocksReleased, []);
    at(GRACE);
    const r = await gc.runOnce();
    assert.equal(r.emptyBlocksReleased.length, 1);
    at(5 * GRACE);
    assert.deepEqual((await gc.runOnce()).emptyBlocksReleased, [], "the node keeps its last block");
    assert.equal((await ds.list(blockPrefix(4))).items.length, 1);
    assert.equal((await ds.list(affinityPrefix("n1", 4))).items.length, 1);
    assert.deepEqual((await checkIPAM(ds)).issues, []);
  });
});
