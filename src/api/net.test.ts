import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  cidrContains,
  cidrsOverlap,
  formatCIDR,
  formatIP,
  isMasked,
  parseCIDR,
  parseCIDROrIP,
  parseIP,
} from "./net.js";

test("parseIP accepts IPv4 and IPv6 forms and rejects near-misses", () => {
  const good: [string, 4 | 6, bigint][] = [
    ["198.19.0.1", 4, 0xc6130001n],
    ["0.0.0.0", 4, 0n],
    ["255.255.255.255", 4, 0xffffffffn],
    ["fd00::1", 6, (0xfd00n << 112n) | 1n],
    ["::", 6, 0n],
    ["::1", 6, 1n],
    ["fd00:19::", 6, (0xfd00n << 112n) | (0x19n << 96n)],
    ["::ffff:198.18.0.1", 6, (0xffffn << 32n) | 0xc6120001n],
    ["FD00:0:0:0:0:0:0:1", 6, (0xfd00n << 112n) | 1n],
  ];
  for (const [text, family, value] of good) assert.deepEqual(parseIP(text), { family, value }, text);
  for (const bad of [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.-1",
    "fd00:::1",
    "1::2::3",
    "12345::",
    "g::1",
    "1:2:3:4:5:6:7:8:9",
    " 1.2.3.4",
  ]) {
    assert.equal(parseIP(bad), undefined, bad);
  }
});

test("parseCIDR needs a prefix within the family's width", () => {
  assert.deepEqual(parseCIDR("198.19.0.0/16"), { family: 4, addr: 0xc6130000n, prefix: 16 });
  assert.equal(parseCIDR("198.19.0.0/33"), undefined);
  assert.equal(parseCIDR("198.19.0.0"), undefined);
  assert.equal(parseCIDR("fd00::/129"), undefined);
  assert.equal(parseCIDR("fd00::/-1"), undefined);
  assert.deepEqual(parseCIDROrIP("198.19.0.7"), { family: 4, addr: 0xc6130007n, prefix: 32 });
  assert.equal(parseCIDROrIP("fd00::7")?.prefix, 128);
});

test("isMasked, contains and overlap", () => {
  assert.equal(isMasked(parseCIDR("198.19.0.0/16")!), true);
  assert.equal(isMasked(parseCIDR("198.19.0.1/16")!), false);
  const a = parseCIDR("198.19.0.0/16")!;
  const b = parseCIDR("198.19.4.0/24")!;
  const c = parseCIDR("198.18.0.0/16")!;
  assert.equal(cidrContains(a, b), true);
  assert.equal(cidrContains(b, a), false);
  assert.equal(cidrsOverlap(b, a), true);
  assert.equal(cidrsOverlap(a, c), false);
  assert.equal(cidrsOverlap(a, parseCIDR("fd00::/64")!), false);
});

test("formatIP uses RFC 5952 compression", () => {
  assert.equal(formatIP(6, parseIP("fd00:0:0:0:0:0:0:1")!.value), "fd00::1");
  assert.equal(formatIP(6, 0n), "::");
  assert.equal(formatIP(6, parseIP("1:0:0:2:0:0:0:3")!.value), "1:0:0:2::3");
  assert.equal(formatIP(6, parseIP("1:0:2:3:4:5:6:7")!.value), "1:0:2:3:4:5:6:7");
  assert.equal(formatCIDR(parseCIDR("198.19.0.0/16")!), "198.19.0.0/16");
});

test("format then parse round-trips any address", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
      assert.equal(parseIP(formatIP(6, v))?.value, v);
    }),
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), (v) => {
      assert.equal(parseIP(formatIP(4, v))?.value, v);
    }),
  );
});
