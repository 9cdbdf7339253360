import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkASNumberValue, formatASDot, parseASNumber } from "./as-number.js";
import { Issues } from "../check.js";

describe("AS numbers", () => {
  const good: [unknown, number][] = [
    [64512, 64512],
    [1, 1],
    [4294967295, 4294967295],
    ["64512", 64512],
    ["1.0", 65536],
    ["1.10", 65546],
    ["65535.65535", 4294967295],
    ["0.64512", 64512],
  ];
  for (const [v, n] of good)
    it(`reads ${JSON.stringify(v)} as ${n}`, () => assert.equal(parseASNumber(v), n));

  for (const bad of [
    0,
    -1,
    4294967296,
    1.5,
    "0",
    "",
    "as64512",
    "65536.0",
    "1.65536",
    "1.2.3",
    "4294967296",
    null,
    true,
    [1],
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseASNumber(bad), undefined));
  }

  it("dotted form round-trips for every 32-bit AS", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xffffffff }), (as) => {
        assert.equal(parseASNumber(formatASDot(as)), as);
      }),
    );
  });

  it("explains an unquoted dotted AS that YAML read as a fraction", () => {
    const issues = new Issues();
    checkASNumberValue(1.1, "spec.asNumber", issues);
    assert.match(issues.list[0]?.message ?? "", /quote dotted AS numbers, e.g. "1.10"/);
  });
});
