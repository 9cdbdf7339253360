import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Issues } from "../check.js";
import { API_VERSION, type AnyResource } from "../resource.js";
import type { KindDef } from "./kind.js";
import { GLOBAL_NETWORK_SET, NETWORK_SET } from "./network-set.js";

function set(kind: string, spec: unknown, labels?: Record<string, string>): AnyResource {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name: "external-database",
      ...(kind === "NetworkSet" ? { namespace: "staging" } : {}),
      ...(labels !== undefined ? { labels } : {}),
    },
    spec: spec as Record<string, unknown>,
  };
}

function paths(def: KindDef, r: AnyResource): string[] {
  const issues = new Issues();
  def.validate(r, issues);
  return issues.list.map((i) => i.path).sort();
}

for (const def of [NETWORK_SET, GLOBAL_NETWORK_SET]) {
  void describe(def.kind, () => {
    void it("accepts the docs example", () =>
      assert.deepEqual(
        paths(def, set(def.kind, { nets: ["198.51.100.0/28", "203.0.113.0/24"] }, { role: "db" })),
        [],
      ));
    void it("accepts bare addresses, host bits and IPv6", () =>
      assert.deepEqual(
        paths(def, set(def.kind, { nets: ["198.19.0.1", "198.19.1.1/24", "fd00:19::1", "fd00:19::/48"] })),
        [],
      ));
    void it("accepts an empty set", () => assert.deepEqual(paths(def, set(def.kind, {})), []));

    const bad: [string, AnyResource, string[]][] = [
      ["a bad CIDR", set(def.kind, { nets: ["198.19.0.0/16", "nope"] }), ["spec.nets[1]"]],
      ["a prefix too long", set(def.kind, { nets: ["198.19.0.0/40"] }), ["spec.nets[0]"]],
      ["a duplicate", set(def.kind, { nets: ["198.19.0.0/16", "198.19.0.0/16"] }), ["spec.nets[1]"]],
      ["nets not a list", set(def.kind, { nets: "198.19.0.0/16" }), ["spec.nets"]],
      ["an unknown field", set(def.kind, { net: [] }), ["spec.net"]],
      [
        "the reserved namespace label",
        set(def.kind, {}, { "projectcalico.org/namespace": "x" }),
        ['metadata.labels["projectcalico.org/namespace"]'],
      ],
    ];
    for (const [name, r, want] of bad)
      void it(`rejects ${name}`, () => assert.deepEqual(paths(def, r), want));

    void it("withDefaults copies", () => {
      const r = set(def.kind, { nets: ["198.19.0.0/16"] });
      const out = def.withDefaults(r);
      assert.deepEqual(out, r);
      assert.notEqual(out, r);
    });
  });
}

void it("NetworkSet is namespaced, GlobalNetworkSet is not", () => {
  assert.deepEqual(
    [NETWORK_SET, GLOBAL_NETWORK_SET].map((k) => [k.plural, k.namespaced]),
    [
      ["networksets", true],
      ["globalnetworksets", false],
    ],
  );
});
