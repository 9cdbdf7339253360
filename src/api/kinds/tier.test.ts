import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Issues } from "../check.js";
import { API_VERSION, type AnyResource } from "../resource.js";
import { DEFAULT_TIER, DEFAULT_TIER_ORDER, TIER } from "./tier.js";

const tier = (name: string, spec: unknown): AnyResource => ({
  apiVersion: API_VERSION,
  kind: "Tier",
  metadata: { name },
  spec: spec as Record<string, unknown>,
});

function paths(r: AnyResource): string[] {
  const issues = new Issues();
  TIER.validate(r, issues);
  return issues.list.map((i) => i.path).sort();
}

void describe("Tier", () => {
  const good: [string, AnyResource][] = [
    ["docs example", tier("internal-access", { order: 100 })],
    ["pass tier", tier("platform", { order: 50.5, defaultAction: "Pass" })],
    ["no order (last)", tier("last", {})],
    ["missing spec", { ...tier("x", {}), spec: undefined as unknown as Record<string, unknown> }],
    ["built-in default tier", DEFAULT_TIER as unknown as AnyResource],
    ["kube-admin at its order", tier("kube-admin", { order: 1000, defaultAction: "Pass" })],
  ];
  for (const [name, r] of good) {
    void it(`accepts ${name}`, () => {
      assert.equal(TIER.nameProblem?.(r.metadata.name), undefined);
      assert.deepEqual(paths(r), []);
    });
  }

  const bad: [string, AnyResource, string[]][] = [
    ["bad defaultAction", tier("t", { defaultAction: "Allow" }), ["spec.defaultAction"]],
    ["order as string", tier("t", { order: "1" }), ["spec.order"]],
    ["unknown field", tier("t", { ordr: 1 }), ["spec.ordr"]],
    ["default tier at another order", tier("default", { order: 100 }), ["spec.order"]],
    ["default tier without order", tier("default", {}), ["spec.order"]],
    ["kube-baseline at another order", tier("kube-baseline", { order: 1 }), ["spec.order"]],
    ["spec not an object", tier("t", 5), ["spec"]],
  ];
  for (const [name, r, want] of bad) void it(`rejects ${name}`, () => assert.deepEqual(paths(r), want));

  const names: [string, boolean][] = [
    ["security", true],
    ["a.b", false],
    ["Security", false],
    ["a".repeat(63), true],
    ["a".repeat(64), false],
  ];
  for (const [name, ok] of names) {
    void it(`name ${name.slice(0, 12)}${name.length > 12 ? "…" : ""} ${ok ? "ok" : "rejected"}`, () =>
      assert.equal(TIER.nameProblem?.(name) === undefined, ok));
  }

  void it("defaults defaultAction to Deny and keeps the order absent", () => {
    assert.deepEqual(TIER.withDefaults(tier("t", {})).spec, { defaultAction: "Deny" });
    assert.deepEqual(TIER.withDefaults(tier("t", { order: 5, defaultAction: "Pass" })).spec, {
      order: 5,
      defaultAction: "Pass",
    });
  });

  void it("the default tier is order 1,000,000 and Deny", () => {
    assert.equal(DEFAULT_TIER.spec.order, DEFAULT_TIER_ORDER);
    assert.equal(DEFAULT_TIER_ORDER, 1_000_000);
    assert.equal(DEFAULT_TIER.spec.defaultAction, "Deny");
  });
});
