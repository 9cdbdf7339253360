import { it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { CIDR } from "../../api/net.js";
import { type PrefixKey, prefixKey } from "./prefix-key.js";
import { PrefixTable } from "./prefix-table.js";

/** Prefixes from small pools, so sequences revisit keys (updates, deletes of present keys). */
const prefix: fc.Arbitrary<CIDR> = fc.oneof(
  fc.record({
    family: fc.constant(4 as const),
    addr: fc.constantFrom(0n, 1n, 0xc6120000n, 0xc6130100n, 0xffffffffn, 0x80000000n),
    prefix: fc.integer({ min: 0, max: 32 }),
  }),
  fc.record({
    family: fc.constant(6 as const),
    addr: fc.constantFrom(0n, 0xfd000019n << 96n, (0xfd000019n << 96n) | (5n << 48n), 2n ** 128n - 1n),
    prefix: fc.integer({ min: 0, max: 128 }),
  }),
);

const op = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), prefix, value: fc.integer() }),
  fc.record({ kind: fc.constant("delete" as const), prefix }),
  fc.record({ kind: fc.constant("get" as const), prefix }),
);

it("behaves like a Map of prefix keys under random set/get/delete sequences", () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const t = new PrefixTable<number>();
      const m = new Map<PrefixKey, number>();
      for (const o of ops) {
        const k = prefixKey(o.prefix);
        if (o.kind === "set") {
          t.set(k, o.value);
          m.set(k, o.value);
        } else if (o.kind === "delete") assert.equal(t.delete(k), m.delete(k));
        else assert.equal(t.get(k), m.get(k));
        assert.equal(t.size, m.size);
      }
      assert.deepEqual(new Map(t.entries()), m);
      assert.deepEqual([...t.values()].sort(), [...m.values()].sort());
    }),
    { numRuns: 300 },
  );
});

it("grows and deletes at scale without losing keys (backward-shift deletion)", () => {
  const t = new PrefixTable<number>();
  const keys: PrefixKey[] = [];
  for (let i = 0; i < 50_000; i++) {
    const v4: CIDR = { family: 4, addr: 0xc6120000n + BigInt(i), prefix: 32 };
    const v6: CIDR = { family: 6, addr: (0xfd000019n << 96n) | (BigInt(i) << 48n), prefix: 80 };
    for (const k of [prefixKey(v4), prefixKey(v6)]) {
      t.set(k, i);
      keys.push(k);
    }
  }
  assert.equal(t.size, 100_000);
  // Delete every third key, then every key must still be found or gone as expected.
  keys.forEach((k, i) => {
    if (i % 3 === 0) assert.equal(t.delete(k), true);
  });
  keys.forEach((k, i) => assert.equal(t.get(k), i % 3 === 0 ? undefined : Math.floor(i / 2)));
  assert.equal(t.size, 100_000 - Math.ceil(100_000 / 3));
});
