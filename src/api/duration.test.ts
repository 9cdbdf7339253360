import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkDuration, formatDuration, parseDuration } from "./duration.js";
import { Issues } from "./check.js";

describe("Go durations", () => {
  const good: [string, number][] = [
    ["0", 0],
    ["0s", 0],
    ["90s", 90_000],
    ["1m30s", 90_000],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["1h5m", 3_900_000],
    ["1m30s123ms", 90_123],
    ["250ms", 250],
    ["1.5s", 1500],
    [".5s", 500],
    ["1.5h", 5_400_000],
    ["100us", 0.1],
    ["100µs", 0.1],
    ["1000000ns", 1],
    ["-5s", -5000],
    ["+5s", 5000],
  ];
  for (const [text, ms] of good) {
    it(`parses ${JSON.stringify(text)} as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  for (const bad of ["", "5", "s", "1d", "1 m", "1m 30s", "5S", "1.s.5", "ms", "--1s", "1m30", "0x10s"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseDuration(bad), undefined));
  }

  const formats: [number, string][] = [
    [0, "0s"],
    [90_000, "1m30s"],
    [3_600_000, "1h0m0s"],
    [250, "250ms"],
    [1500, "1.5s"],
    [-5000, "-5s"],
  ];
  for (const [ms, text] of formats) {
    it(`formats ${ms} ms as Go does: ${text}`, () => assert.equal(formatDuration(ms), text));
  }

  it("round-trips whole milliseconds through format and parse", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e10, max: 1e10 }), (ms) => {
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
    );
  });

  it("records a path-qualified issue for a bad or negative duration", () => {
    const issues = new Issues();
    checkDuration({ a: "soon", b: "-1s", c: 90, d: "90s" }, "a", "spec", issues);
    checkDuration({ b: "-1s" }, "b", "spec", issues);
    checkDuration({ c: 90 }, "c", "spec", issues);
    assert.equal(checkDuration({ d: "90s" }, "d", "spec", issues), 90_000);
    assert.deepEqual(
      issues.list.map((i) => [i.path, i.value]),
      [
        ["spec.a", "soon"],
        ["spec.b", "-1s"],
        ["spec.c", 90],
      ],
    );
  });
});
