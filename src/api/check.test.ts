import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkKnownFields,
  editDistance,
  Issues,
  labelKeyProblem,
  labelValueProblem,
  suggest,
} from "./check.js";

test("editDistance counts single edits and neighbour swaps", () => {
  const cases: [string, string, number][] = [
    ["", "", 0],
    ["abc", "abc", 0],
    ["natOutgoin", "natOutgoing", 1],
    ["destinaton", "destination", 1],
    ["sourec", "source", 1],
    ["ab", "ba", 1],
    ["kitten", "sitting", 3],
  ];
  for (const [a, b, want] of cases) assert.equal(editDistance(a, b), want, `${a} ~ ${b}`);
});

test("suggest offers only close matches", () => {
  assert.equal(suggest("natOutgoin", ["cidr", "natOutgoing", "disabled"]), "natOutgoing");
  assert.equal(suggest("CIDR", ["cidr", "blockSize"]), "cidr");
  assert.equal(suggest("colour", ["cidr", "blockSize"]), undefined);
});

test("checkKnownFields names the unknown field, a guess and the allowed ones", () => {
  const issues = new Issues();
  checkKnownFields({ cidr: "x", natOutgoin: true }, ["cidr", "natOutgoing"], "spec", issues);
  assert.deepEqual(issues.list, [
    {
      path: "spec.natOutgoin",
      value: true,
      message: "unknown field; did you mean natOutgoing? allowed fields here: cidr, natOutgoing",
    },
  ]);
});

test("label keys and values follow Kubernetes rules", () => {
  for (const ok of ["app", "app.kubernetes.io/name", "a-b_c.d", "x".repeat(63), "example.com/X"]) {
    assert.equal(labelKeyProblem(ok), undefined, ok);
  }
  for (const bad of ["", "-app", "app-", "x".repeat(64), "Bad_Prefix/x", "a/b/c", "sp ace", "/x"]) {
    assert.notEqual(labelKeyProblem(bad), undefined, bad);
  }
  for (const ok of ["", "prod", "v1.2-rc_3"]) assert.equal(labelValueProblem(ok), undefined, ok);
  for (const bad of ["-x", "x".repeat(64), "a b", "é"])
    assert.notEqual(labelValueProblem(bad), undefined, bad);
});
