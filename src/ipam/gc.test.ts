import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDatastore } from "../datastore/memory.js";
import { API_VERSION } from "../api/resource.js";
import { IPAM } from "./allocator.js";
import { affinityPrefix, blockPrefix, parseBlock } from "./block.js";
import { checkIPAM } from "./check.js";
import { gcDeletedNodes } from "./gc.js";

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
