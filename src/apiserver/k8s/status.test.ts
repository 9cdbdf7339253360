import { test } from "node:test";
import assert from "node:assert/strict";
import { failure, StatusError, toStatus } from "./status.js";
import { ResourceError, ResourceErrorCode } from "../../datastore/resources.js";
import { ValidationError } from "../../api/validation.js";
import { DatastoreError, DatastoreErrorCode } from "../../datastore/types.js";
import { PatchError } from "../../api/patch.js";

const gnp = { plural: "globalnetworkpolicies", kind: "GlobalNetworkPolicy", name: "allow-dns" };

test("store errors map to Kubernetes reasons, codes and messages", () => {
  const cases: [unknown, string, number, RegExp][] = [
    [
      new ResourceError(ResourceErrorCode.NOT_FOUND, "x"),
      "NotFound",
      404,
      /^globalnetworkpolicies\.projectcalico\.org "allow-dns" not found$/,
    ],
    [
      new ResourceError(ResourceErrorCode.ALREADY_EXISTS, "x"),
      "AlreadyExists",
      409,
      /"allow-dns" already exists$/,
    ],
    [
      new ResourceError(ResourceErrorCode.CONFLICT, "changed"),
      "Conflict",
      409,
      /^Operation cannot be fulfilled on globalnetworkpolicies\.projectcalico\.org "allow-dns": changed$/,
    ],
    [new ResourceError(ResourceErrorCode.REJECTED, "tier missing"), "Invalid", 422, /^tier missing$/],
    [new PatchError("operation 0: test failed"), "Invalid", 422, /test failed/],
    [
      new DatastoreError(DatastoreErrorCode.REVISION_COMPACTED, "rev 3 < 10"),
      "Expired",
      410,
      /too old resource version/,
    ],
    [new Error("boom"), "InternalError", 500, /Internal error occurred: boom/],
  ];
  for (const [err, reason, code, message] of cases) {
    const s = toStatus(err, gnp);
    assert.equal(s.kind, "Status");
    assert.equal(s.apiVersion, "v1");
    assert.equal(s.status, "Failure");
    assert.equal(s.reason, reason);
    assert.equal(s.code, code);
    assert.match(s.message, message);
  }
  assert.deepEqual(toStatus(new ResourceError(ResourceErrorCode.NOT_FOUND, "x"), gnp).details, {
    name: "allow-dns",
    group: "projectcalico.org",
    kind: "globalnetworkpolicies",
  });
});

test("validation errors become 422 Invalid with one cause per field", () => {
  const err = new ValidationError({ kind: "GlobalNetworkPolicy", name: "allow-dns" }, [
    { path: "spec.order", value: "x", message: "must be a number" },
    { path: "spec.selector", message: "is required" },
  ]);
  const s = toStatus(err, gnp);
  assert.equal(s.code, 422);
  assert.equal(s.reason, "Invalid");
  assert.match(s.message, /^GlobalNetworkPolicy\.projectcalico\.org "allow-dns" is invalid: spec\.order: /);
  assert.deepEqual(s.details, {
    name: "allow-dns",
    group: "projectcalico.org",
    kind: "GlobalNetworkPolicy",
    causes: [
      { reason: "FieldValueInvalid", field: "spec.order", message: 'Invalid value: "x": must be a number' },
      { reason: "FieldValueInvalid", field: "spec.selector", message: "is required" },
    ],
  });
});

test("a StatusError is passed through unchanged", () => {
  const status = failure("Forbidden", "no", { name: "a" });
  assert.equal(toStatus(new StatusError(status), gnp), status);
  assert.equal(status.code, 403);
});
