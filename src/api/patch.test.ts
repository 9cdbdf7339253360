import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonPatch, mergePatch, PatchError } from "./patch.js";

test("merge patch follows RFC 7386 (appendix A examples)", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, want] of cases) assert.deepEqual(mergePatch(target, patch), want);
});

test("JSON patch applies RFC 6902 operations to a copy", () => {
  const doc = { spec: { nets: ["198.18.0.0/24"], order: 1 } };
  const out = jsonPatch(doc, [
    { op: "add", path: "/spec/nets/-", value: "198.18.1.0/24" },
    { op: "replace", path: "/spec/order", value: 2 },
    { op: "copy", from: "/spec/order", path: "/spec/copy" },
    { op: "move", from: "/spec/copy", path: "/spec/moved" },
    { op: "test", path: "/spec/moved", value: 2 },
    { op: "remove", path: "/spec/nets/0" },
  ]);
  assert.deepEqual(out, { spec: { nets: ["198.18.1.0/24"], order: 2, moved: 2 } });
  assert.deepEqual(doc.spec.nets, ["198.18.0.0/24"], "input untouched");
});

test("JSON patch errors name the failing operation", () => {
  const bad: [unknown, RegExp][] = [
    [[{ op: "add" }], /operation 0: must be an object/],
    [{ op: "add" }, /must be an array of operations/],
    [[{ op: "remove", path: "/nope" }], /operation 0: path does not exist/],
    [
      [
        { op: "add", path: "/a", value: 1 },
        { op: "test", path: "/a", value: 2 },
      ],
      /operation 1: test failed/,
    ],
    [[{ op: "frob", path: "/a" }], /unknown op "frob"/],
    [[{ op: "add", path: "a", value: 1 }], /must start with "\/"/],
    [[{ op: "add", path: "/l/7", value: 1 }], /index 7 out of range/],
  ];
  for (const [ops, re] of bad) {
    assert.throws(
      () => jsonPatch({ l: [] }, ops),
      (e: unknown) => e instanceof PatchError && re.test(e.message),
    );
  }
});
