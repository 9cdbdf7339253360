/**
 * Many allocators and releasers interleaving on one store (in one process, so the async
 * steps of their compare-and-swaps interleave): no address is ever held twice, every
 * release takes effect, and the final state is exactly what the actors hold.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { API_VERSION } from "../src/api/resource.js";
import { IPAM } from "../src/ipam/allocator.js";
import { addressOf, blockPrefix, parseBlock } from "../src/ipam/block.js";
import { checkIPAM } from "../src/ipam/check.js";
import { isPoolExhausted } from "../src/ipam/errors.js";
import { formatIP } from "../src/api/net.js";

type Op =
  | { kind: "alloc"; n: number; v6: boolean }
  | { kind: "release"; pick: number }
  | { kind: "releaseHandle"; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("alloc" as const), n: fc.integer({ min: 1, max: 4 }), v6: fc.boolean() }),
  fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("releaseHandle" as const), pick: fc.nat() }),
);

describe("IPAM under concurrent in-process allocators", () => {
  test("never double-allocates; releases take effect; final state consistent", async () => {
    let conflicts = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 25 }), { minLength: 2, maxLength: 6 }),
        fc.boolean(),
        async (actors, strict) => {
          const ds = new MemoryDatastore();
          const setupIpam = new IPAM(ds);
          const r = setupIpam.resources;
          // Small pools and blocks so blocks fill, get borrowed from, empty and move.
          await r.create({
            apiVersion: API_VERSION,
            kind: "IPPool",
            metadata: { name: "p4" },
            spec: { cidr: "198.19.0.0/27", blockSize: 29 },
          });
          await r.create({
            apiVersion: API_VERSION,
            kind: "IPPool",
            metadata: { name: "p6" },
            spec: { cidr: "fd00:19::/124", blockSize: 126 },
          });
          await r.create({
            apiVersion: API_VERSION,
            kind: "IPReservation",
            metadata: { name: "r" },
            spec: { reservedCIDRs: ["198.19.0.9"] },
          });
          if (strict) {
            await r.create({
              apiVersion: API_VERSION,
              kind: "IPAMConfiguration",
              metadata: { name: "default" },
              spec: { strictAffinity: true, autoAllocateBlocks: true },
            });
          }
          const held = new Map<string, string>(); // address → handle
          const byHandle = new Map<string, string[]>();
          let seq = 0;
          await Promise.all(
            actors.map(async (ops, a) => {
              const ipam = new IPAM(ds);
              const node = `node-${a % 3}`;
              const mine: string[] = [];
              for (const op of ops) {
                if (op.kind === "alloc") {
                  const handleID = `h-${a}-${seq++}`;
                  try {
                    const res = await ipam.autoAssign({
                      node,
                      handleID,
                      ...(op.v6 ? { num6: op.n } : { num4: op.n }),
                    });
                    const got = [...res.ipv4, ...res.ipv6].map((x) => x.address);
                    assert.equal(got.length, op.n);
                    for (const ip of got) {
                      assert.ok(!held.has(ip), `${ip} handed to ${handleID} while held by ${held.get(ip)}`);
                      assert.notEqual(ip, "198.19.0.9", "a reserved address was handed out");
                      held.set(ip, handleID);
                    }
                    byHandle.set(handleID, got);
                    mine.push(handleID);
                  } catch (err) {
                    if (!isPoolExhausted(err)) throw err;
                  }
                } else if (mine.length > 0) {
                  const h = mine.splice(op.pick % mine.length, 1)[0]!;
                  const ips = byHandle.get(h)!;
                  byHandle.delete(h);
                  for (const ip of ips) held.delete(ip); // before the call: another may get it at once
                  if (op.kind === "release") {
                    const res = await ipam.releaseIPs(ips);
                    assert.deepEqual([...res.released].sort(), [...ips].sort());
                  } else {
                    assert.equal(await ipam.releaseByHandle(h), ips.length);
                  }
                }
              }
              conflicts += ipam.stats.conflicts;
            }),
          );
          const report = await checkIPAM(ds, { checkNodes: false });
          assert.deepEqual(report.issues, []);
          // Exactly what the actors believe they hold is allocated, to the handle they hold it by.
          const inStore = new Map<string, string>();
          for (const fam of [4, 6] as const) {
            for (const kv of (await ds.list(blockPrefix(fam))).items) {
              const b = parseBlock(kv.value);
              b.allocations.forEach((x, o) => {
                if (x !== null)
                  inStore.set(formatIP(b.cidr.family, addressOf(b, o)), b.attributes[x]!.handleID!);
              });
            }
          }
          assert.deepEqual(new Map([...inStore].sort()), new Map([...held].sort()));
          await ds.close();
        },
      ),
      { numRuns: Number(process.env.IPAM_PROPERTY_RUNS ?? 40), interruptAfterTimeLimit: 60_000 },
    );
    assert.ok(conflicts > 0, "the actors never raced: the test would prove nothing");
  });
});
