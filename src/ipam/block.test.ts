import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatIP, parseCIDR, type CIDR } from "../api/net.js";
import {
  addressOf,
  affinityKey,
  allocate,
  allocateOrdinal,
  blockKey,
  cidrFromKeyPart,
  blockProblems,
  blockSize,
  freeCount,
  handleCounts,
  handleKey,
  inUseCount,
  newBlock,
  nthBlock,
  ordinalOf,
  parseAffinityKey,
  parseBlock,
  release,
  releaseByHandle,
  serializeBlock,
} from "./block.js";

const cidr = (t: string): CIDR => {
  const c = parseCIDR(t);
  assert.ok(c, t);
  return c;
};
const ips = (b: ReturnType<typeof newBlock>, ords: number[]): string[] =>
  ords.map((o) => formatIP(b.cidr.family, addressOf(b, o)));

describe("IPAM block maths", () => {
  for (const [text, size] of [
    ["198.19.0.0/26", 64],
    ["198.19.0.5/32", 1],
    ["fd00:19::/122", 64],
    ["fd00:19::1/128", 1],
  ] as const) {
    test(`${text}: ${size} ordinals, all free, none reserved by default`, () => {
      const b = newBlock(cidr(text), "host:a", 1);
      assert.equal(blockSize(b.cidr), size);
      assert.equal(b.unallocated.length, size);
      assert.equal(freeCount(b), size);
      assert.deepEqual(blockProblems(b), []);
      const got = allocate(b, size + 5, "h", null);
      assert.equal(got.length, size, "a full block gives only what it has");
      assert.equal(freeCount(b), 0);
      assert.deepEqual(allocate(b, 1, "h", null), [], "a full block gives nothing");
      assert.deepEqual(blockProblems(b), []);
      const r = release(b, got);
      assert.equal(r.released.length, size);
      assert.equal(inUseCount(b), 0);
      assert.deepEqual(blockProblems(b), []);
    });
  }

  test("a /26 hands out .0 and .63 (Calico reserves nothing inside a block)", () => {
    const b = newBlock(cidr("198.19.0.0/26"), null, 1);
    const got = ips(b, allocate(b, 64, "h", null));
    assert.equal(got[0], "198.19.0.0");
    assert.equal(got[63], "198.19.0.63");
  });

  test("allocation pops the head in order; release appends to the tail", () => {
    const b = newBlock(cidr("198.19.0.0/30"), null, 1);
    assert.deepEqual(allocate(b, 2, "h1", null), [0, 1]);
    release(b, [0]);
    assert.deepEqual(b.unallocated, [2, 3, 0]);
    assert.deepEqual(allocate(b, 3, "h2", null), [2, 3, 0]);
  });

  test("reservations are skipped and stay free", () => {
    const b = newBlock(cidr("198.19.0.0/29"), null, 1);
    const reserved = [cidr("198.19.0.0/31"), cidr("198.19.0.5/32")];
    assert.equal(freeCount(b, reserved), 5);
    const got = ips(b, allocate(b, 8, "h", null, reserved));
    assert.deepEqual(got, ["198.19.0.2", "198.19.0.3", "198.19.0.4", "198.19.0.6", "198.19.0.7"]);
    assert.deepEqual(b.unallocated, [0, 1, 5]);
    assert.equal(freeCount(b, reserved), 0);
    assert.deepEqual(blockProblems(b), []);
  });

  test("v6 reservations and addresses", () => {
    const b = newBlock(cidr("fd00:19:0:1::/126"), null, 1);
    const got = ips(b, allocate(b, 4, "h", null, [cidr("fd00:19:0:1::1/128")]));
    assert.deepEqual(got, ["fd00:19:0:1::", "fd00:19:0:1::2", "fd00:19:0:1::3"]);
    assert.equal(ordinalOf(b, addressOf(b, 3)), 3);
    assert.equal(ordinalOf(b, b.cidr.addr + 4n), undefined);
  });

  test("sequence numbers: a stale release is rejected; the current one works", () => {
    const b = newBlock(cidr("198.19.0.0/30"), null, 100);
    allocate(b, 1, "h1", null);
    const seq1 = b.sequenceNumberForAllocation["0"];
    assert.equal(seq1, 101);
    release(b, [0]);
    assert.ok(b.sequenceNumber > 101);
    // Reuse ordinal 0 for someone else, then release it with the old number.
    assert.ok(allocateOrdinal(b, 0, "h2", null));
    const stale = release(b, [0], new Map([[0, seq1]]));
    assert.deepEqual(stale.badSequence, [0]);
    assert.equal(inUseCount(b), 1);
    const cur = b.sequenceNumberForAllocation["0"];
    assert.ok(cur !== undefined);
    const ok = release(b, [0], new Map([[0, cur]]));
    assert.deepEqual(ok.released, [{ ordinal: 0, handleID: "h2" }]);
  });

  test("releasing a free ordinal is not an error; allocateOrdinal refuses a taken one", () => {
    const b = newBlock(cidr("198.19.0.0/30"), null, 1);
    assert.deepEqual(release(b, [2]).alreadyFree, [2]);
    assert.ok(allocateOrdinal(b, 2, "h", null));
    assert.ok(!allocateOrdinal(b, 2, "x", null));
    assert.deepEqual(blockProblems(b), []);
  });

  test("release by handle and attribute compaction", () => {
    const b = newBlock(cidr("198.19.0.0/28"), null, 1);
    allocate(b, 3, "a", { pod: "p1" });
    allocate(b, 2, "b", null);
    allocate(b, 1, "a", { pod: "p1" });
    assert.deepEqual(Object.fromEntries(handleCounts(b)), { a: 4, b: 2 });
    assert.equal(b.attributes.length, 2);
    const r = releaseByHandle(b, "a");
    assert.equal(r.released.length, 4);
    assert.deepEqual(Object.fromEntries(handleCounts(b)), { b: 2 });
    assert.equal(b.attributes.length, 1, "unused attributes are dropped");
    assert.deepEqual(blockProblems(b), []);
  });

  test("JSON round trip in Calico's field names", () => {
    const b = newBlock(cidr("198.19.12.0/26"), "host:n1", 5);
    allocate(b, 2, "k8s-pod-network.abc", { namespace: "ns", pod: "p" });
    const text = serializeBlock(b);
    const wire = JSON.parse(text) as Record<string, unknown>;
    assert.equal(wire.cidr, "198.19.12.0/26");
    assert.equal(wire.affinity, "host:n1");
    assert.deepEqual(wire.attributes, [
      { handle_id: "k8s-pod-network.abc", secondary: { namespace: "ns", pod: "p" } },
    ]);
    assert.deepEqual(parseBlock(text), b);
  });

  test("problems are found", () => {
    const b = newBlock(cidr("198.19.0.0/30"), null, 1);
    b.allocations[1] = 0;
    assert.ok(blockProblems(b).some((p) => p.includes("both allocated and unallocated")));
  });

  test("key layout", () => {
    assert.equal(blockKey(cidr("198.19.0.0/26")), "/calico/ipam/v2/assignment/ipv4/block/198-19-0-0-26");
    assert.equal(blockKey(cidr("fd00:19::/122")), "/calico/ipam/v2/assignment/ipv6/block/fd00-19---122");
    assert.equal(
      affinityKey("n1", cidr("198.19.0.64/26")),
      "/calico/ipam/v2/host/n1/ipv4/block/198-19-0-64-26",
    );
    assert.deepEqual(parseAffinityKey("/calico/ipam/v2/host/n1/ipv6/block/fd00-19---122"), {
      node: "n1",
      family: 6,
    });
    assert.equal(handleKey("h"), "/calico/ipam/v2/handle/h");
    assert.deepEqual(cidrFromKeyPart("fd00-19---122", 6), cidr("fd00:19::/122"));
    assert.deepEqual(cidrFromKeyPart("198-19-0-64-26", 4), cidr("198.19.0.64/26"));
    assert.deepEqual(nthBlock(cidr("198.19.0.0/24"), 26, 3n), cidr("198.19.0.192/26"));
  });
});
