import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { INFRA_KINDS } from "./infra.js";
import { findKind } from "../registry.js";
import { Issues } from "../check.js";
import { API_VERSION, type AnyResource } from "../resource.js";
import fc from "fast-check";

// reference/calico.md §1.2: the datastore plurals.
const PLURALS: Record<string, string> = {
  IPPool: "ippools",
  IPReservation: "ipreservations",
  Node: "nodes",
  WorkloadEndpoint: "workloadendpoints",
  HostEndpoint: "hostendpoints",
  BGPConfiguration: "bgpconfigurations",
  BGPPeer: "bgppeers",
  BGPFilter: "bgpfilters",
  FelixConfiguration: "felixconfigurations",
  KubeControllersConfiguration: "kubecontrollersconfigurations",
  ClusterInformation: "clusterinformations",
  IPAMConfiguration: "ipamconfigurations",
};

describe("infrastructure kinds", () => {
  it("are the twelve kinds with the datastore plurals", () => {
    assert.deepEqual(Object.fromEntries(INFRA_KINDS.map((k) => [k.kind, k.plural])), PLURALS);
  });

  it("are cluster-scoped except WorkloadEndpoint", () => {
    assert.deepEqual(
      INFRA_KINDS.filter((k) => k.namespaced).map((k) => k.kind),
      ["WorkloadEndpoint"],
    );
  });

  it("have lower-case names that no two kinds share", () => {
    const seen = new Map<string, string>();
    for (const k of INFRA_KINDS) {
      for (const n of [k.kind.toLowerCase(), k.plural, ...k.shortNames]) {
        assert.equal(n, n.toLowerCase(), `${k.kind}: ${n}`);
        const other = seen.get(n);
        assert.ok(other === undefined || other === k.kind, `${n} used by ${other} and ${k.kind}`);
        seen.set(n, k.kind);
      }
    }
  });

  it("are found by every name calicoctl accepts, in any case", () => {
    for (const k of INFRA_KINDS) {
      for (const n of [k.kind, k.plural, ...k.shortNames, k.kind.toUpperCase()])
        assert.equal(findKind(n)?.kind, k.kind, n);
    }
  });

  it("never throw, whatever the spec", () => {
    for (const k of INFRA_KINDS) {
      fc.assert(
        fc.property(fc.anything(), (spec) => {
          const r = {
            apiVersion: API_VERSION,
            kind: k.kind,
            metadata: { name: "default", namespace: "default" },
            spec,
          } as AnyResource;
          k.validate(r, new Issues());
        }),
        { numRuns: 100 },
      );
    }
  });

  it("never throw on specs made of their own field names with random values", () => {
    const values = fc.oneof(
      fc.anything(),
      fc.array(fc.object()),
      fc.object(),
      fc.constantFrom("", "all()", "198.19.0.0/16", "1:1"),
    );
    for (const k of INFRA_KINDS) {
      const known = probeFields(k);
      fc.assert(
        fc.property(fc.dictionary(fc.constantFrom(...known), values), (spec) => {
          const r = {
            apiVersion: API_VERSION,
            kind: k.kind,
            metadata: { name: "default", namespace: "default" },
            spec,
          } as AnyResource;
          k.validate(r, new Issues());
          k.withDefaults(r);
        }),
        { numRuns: 100 },
      );
    }
  });
});

/** The spec fields a kind knows, found by asking it about an unknown one. */
function probeFields(k: (typeof INFRA_KINDS)[number]): string[] {
  const issues = new Issues();
  k.validate(
    {
      apiVersion: API_VERSION,
      kind: k.kind,
      metadata: { name: "default" },
      spec: { zzProbe: 1 },
    },
    issues,
  );
  const msg = issues.list.find((i) => i.path === "spec.zzProbe")?.message ?? "";
  const fields = msg.split("allowed fields here: ")[1]?.split(", ") ?? [];
  return fields.length > 0 ? fields : ["zzProbe"];
}
