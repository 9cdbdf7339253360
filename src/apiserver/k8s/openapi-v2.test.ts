import { test } from "node:test";
import assert from "node:assert/strict";
import { openApiV2, openApiV2Protobuf, OPENAPI_V2_PROTOBUF } from "./openapi-v2.js";
import { KINDS } from "../../api/registry.js";

/** Minimal protobuf reader for the test: every field of a message, by number (wire type 2 only). */
function fields(buf: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    assert.equal(tag & 7, 2, "only length-delimited fields are written");
    const len = varint();
    const num = tag >>> 3;
    out.set(num, [...(out.get(num) ?? []), buf.subarray(i, i + len)]);
    i += len;
  }
  return out;
}
const one = (m: Map<number, Buffer[]>, n: number): Buffer => {
  const v = m.get(n);
  assert.equal(v?.length, 1, `field ${n} once`);
  return v[0]!;
};

test("the protobuf document has one PATCH per kind with its GVK and the dryRun parameter", () => {
  const doc = fields(openApiV2Protobuf(KINDS));
  assert.equal(one(doc, 1).toString(), "2.0");
  assert.equal(one(fields(one(doc, 2)), 1).toString(), "calico-ts");
  const paths = fields(one(doc, 8)).get(2) ?? [];
  assert.equal(paths.length, KINDS.length);
  const byName = new Map(
    paths.map((p) => {
      const named = fields(p);
      return [one(named, 1).toString(), fields(one(fields(one(named, 2)), 8))] as const;
    }),
  );
  const op = byName.get("/apis/projectcalico.org/v3/namespaces/{namespace}/networkpolicies/{name}");
  assert.ok(op !== undefined, [...byName.keys()].join("\n"));
  const ext = fields(one(op, 13));
  assert.equal(one(ext, 1).toString(), "x-kubernetes-group-version-kind");
  assert.equal(
    one(fields(one(ext, 2)), 2).toString(),
    "group: projectcalico.org\nkind: NetworkPolicy\nversion: v3\n",
  );
  const params = (op.get(8) ?? []).map((p) => {
    const sub = fields(one(fields(one(fields(one(fields(p), 1)), 2)), 3));
    return `${one(sub, 2).toString()}:${one(sub, 4).toString()}`;
  });
  assert.deepEqual(params, ["query:dryRun", "query:fieldManager", "query:fieldValidation"]);
  assert.ok(byName.has("/apis/projectcalico.org/v3/globalnetworkpolicies/{name}"));
});

test("JSON when not asked for protobuf; the same operations", () => {
  const json = openApiV2(KINDS, "application/json");
  assert.equal(json.contentType, "application/json");
  const doc = JSON.parse(json.body.toString()) as Record<string, any>;
  assert.equal(doc.swagger, "2.0");
  const op = doc.paths["/apis/projectcalico.org/v3/ippools/{name}"].patch;
  assert.deepEqual(op["x-kubernetes-group-version-kind"], {
    group: "projectcalico.org",
    kind: "IPPool",
    version: "v3",
  });
  assert.equal(openApiV2(KINDS, OPENAPI_V2_PROTOBUF).contentType, "application/octet-stream");
});
