import { it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodePrefixes } from "../packet/nlri.js";
import { keyPrefix, prefixKey, wireKey } from "./prefix-key.js";

it("prefix keys round-trip and differ for different prefixes (IPv4 and IPv6)", () => {
  const v4 = fc.record({
    family: fc.constant(4 as const),
    addr: fc.bigInt(0n, 2n ** 32n - 1n),
    prefix: fc.integer({ min: 0, max: 32 }),
  });
  const v6 = fc.record({
    family: fc.constant(6 as const),
    addr: fc.bigInt(0n, 2n ** 128n - 1n),
    prefix: fc.integer({ min: 0, max: 128 }),
  });
  fc.assert(
    fc.property(fc.oneof(v4, v6), fc.oneof(v4, v6), (a, b) => {
      assert.deepEqual(keyPrefix(prefixKey(a)), { family: a.family, addr: a.addr, prefix: a.prefix });
      const same = a.family === b.family && a.addr === b.addr && a.prefix === b.prefix;
      assert.equal(prefixKey(a) === prefixKey(b), same);
    }),
    { numRuns: 2000 },
  );
  // Trailing zero words are dropped from IPv6 keys; the length still tells ::/64 from ::/80.
  assert.notEqual(
    prefixKey({ family: 6, addr: 0n, prefix: 64 }),
    prefixKey({ family: 6, addr: 0n, prefix: 80 }),
  );
});

it("wire keys equal the keys of the decoded prefixes, trailing bits and all (IPv4 and IPv6)", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(4 as const, 6 as const),
      fc.integer({ min: 0, max: 128 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (family, n, addr) => {
        const len = family === 4 ? n % 33 : n;
        const octets = Math.ceil(len / 8);
        const wire = new Uint8Array([len, ...addr.subarray(0, octets)]);
        const decoded = decodePrefixes(wire, 0, wire.length, family);
        assert.ok(Array.isArray(decoded));
        assert.equal(wireKey(wire, 1, len, family), prefixKey(decoded[0]!));
      },
    ),
    { numRuns: 3000 },
  );
});
