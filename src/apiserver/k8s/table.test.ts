import { test } from "node:test";
import assert from "node:assert/strict";
import { age, parseIncludeObject, representationOf, tableColumns, toTable } from "./table.js";
import { findKind } from "../../api/registry.js";
import type { AnyResource } from "../../api/resource.js";

const kind = (name: string) => findKind(name)!;

test("kubectl's Accept header selects the v1 Table; anything else gets objects", () => {
  const kubectlGet =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
  assert.equal(representationOf(kubectlGet), "table");
  assert.equal(representationOf("application/json"), "object");
  assert.equal(representationOf(undefined), "object");
  assert.equal(representationOf("application/json;as=Table;v=v1beta1;g=meta.k8s.io"), "object");
  assert.equal(representationOf("application/json; as=Table; v=v1; g=meta.k8s.io"), "table");
});

test("includeObject defaults to Metadata", () => {
  assert.equal(parseIncludeObject(null), "Metadata");
  assert.equal(parseIncludeObject("Object"), "Object");
  assert.equal(parseIncludeObject("None"), "None");
  assert.equal(parseIncludeObject("junk"), "Metadata");
});

test("columns are calicoctl's: ps at priority 0, wide extras at 1, NAME first, AGE, no NAMESPACE", () => {
  const cols = (k: string) => tableColumns(kind(k)).map(({ col, priority }) => `${col.header}:${priority}`);
  assert.deepEqual(cols("IPPool"), [
    "NAME:0",
    "CIDR:0",
    "SELECTOR:0",
    "AGE:0",
    "NAT:1",
    "IPIPMODE:1",
    "VXLANMODE:1",
    "DISABLED:1",
    "DISABLEBGPEXPORT:1",
    "ASSIGNMENTMODE:1",
  ]);
  assert.deepEqual(cols("NetworkPolicy"), ["NAME:0", "TIER:0", "AGE:0", "ORDER:1", "SELECTOR:1"]);
  // calicoctl's WorkloadEndpoint table has no NAME column; ours puts it first.
  assert.equal(cols("WorkloadEndpoint")[0], "NAME:0");
  assert.deepEqual(cols("Tier").slice(0, 3), ["NAME:0", "ORDER:0", "AGE:0"]);
});

test("a Table carries column definitions, cells and PartialObjectMetadata rows", () => {
  const pool: AnyResource = {
    apiVersion: "projectcalico.org/v3",
    kind: "IPPool",
    metadata: { name: "pool-a", resourceVersion: "7", labels: { env: "test" } },
    spec: { cidr: "198.19.0.0/20", nodeSelector: "all()" },
  };
  const t = toTable(kind("ippools"), [pool], { resourceVersion: "9" });
  assert.equal(t.kind, "Table");
  assert.equal(t.apiVersion, "meta.k8s.io/v1");
  assert.deepEqual(t.metadata, { resourceVersion: "9" });
  assert.deepEqual(t.columnDefinitions[0], {
    name: "Name",
    type: "string",
    format: "name",
    description: "Name of the resource",
    priority: 0,
  });
  assert.equal(t.rows.length, 1);
  assert.deepEqual(t.rows[0]!.cells.slice(0, 4), ["pool-a", "198.19.0.0/20", "all()", "<unknown>"]);
  assert.equal(t.rows[0]!.cells.length, t.columnDefinitions.length);
  assert.deepEqual(t.rows[0]!.object, {
    kind: "PartialObjectMetadata",
    apiVersion: "meta.k8s.io/v1",
    metadata: pool.metadata,
  });
  assert.equal(toTable(kind("ippools"), [pool], { includeObject: "Object" }).rows[0]!.object, pool);
  assert.equal(toTable(kind("ippools"), [pool], { includeObject: "None" }).rows[0]!.object, null);
});

test("ages print like kubectl's", () => {
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  const at = (seconds: number) => age("2026-01-01T00:00:00Z", t0 + seconds * 1000);
  assert.equal(at(0), "0s");
  assert.equal(at(-5), "0s");
  assert.equal(at(119), "119s");
  assert.equal(at(125), "2m5s");
  assert.equal(at(600), "10m");
  assert.equal(at(3 * 3600 + 60), "3h1m");
  assert.equal(at(10 * 3600), "10h");
  assert.equal(at(3 * 86400 + 3600), "3d1h");
  assert.equal(at(30 * 86400), "30d");
  assert.equal(at(800 * 86400), "2y");
  assert.equal(age(undefined, t0), "<unknown>");
  assert.equal(age("garbage", t0), "<unknown>");
});
