import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CLUSTER_INFORMATION_KIND } from "./cluster-information.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = CLUSTER_INFORMATION_KIND;

describe("ClusterInformation", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "clusterinformations");
    assert.deepEqual([...K.shortNames], ["clusterinformation", "clusterinfo", "clusterinfos"]);
  });

  it("accepts what Calico writes", () => {
    const spec = {
      clusterGUID: "4a7b3d2e9c1f4f0e8d6c5b4a3f2e1d0c",
      clusterType: "k8s,bgp,kubeadm,kdd",
      calicoVersion: "v3.30.0",
      datastoreReady: true,
      variant: "Calico",
    };
    assert.deepEqual(issuesFor(K, spec, "default"), []);
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ["datastoreReady as a string", { datastoreReady: "false" }, "spec.datastoreReady"],
    ["a GUID that is not hex", { clusterGUID: "not-a-guid!" }, "spec.clusterGUID"],
    ["a version that is a number", { calicoVersion: 3.3 }, "spec.calicoVersion"],
    ["a typo", { datastoreready: true }, "spec.datastoreready"],
  ];
  for (const [name, spec, path] of invalid) {
    it(`rejects ${name} at ${path}`, () =>
      assert.deepEqual(
        issuesFor(K, spec, "default").map((i) => i.path),
        [path],
      ));
  }

  it("must be named default", () => assert.notEqual(K.nameProblem?.("cluster"), undefined));

  it("stores the resource as written", () => {
    const r = resource(K, { datastoreReady: false }, "default");
    assert.deepEqual(K.withDefaults(r), r);
  });
});
