import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseResourcePath } from "./path.js";
import { StatusError } from "./status.js";

const P = "/apis/projectcalico.org/v3";

test("resource paths name kind, namespace and name", () => {
  const show = (path: string) => {
    const rp = parseResourcePath(`${P}/${path}`);
    return [rp.kind.kind, rp.namespace ?? "-", rp.name ?? "-", rp.legacyWatch].join(" ");
  };
  assert.equal(show("ippools"), "IPPool - - false");
  assert.equal(show("ippools/pool-a"), "IPPool - pool-a false");
  assert.equal(show("networkpolicies"), "NetworkPolicy - - false");
  assert.equal(show("namespaces/prod/networkpolicies"), "NetworkPolicy prod - false");
  assert.equal(
    show("namespaces/prod/networkpolicies/default.allow"),
    "NetworkPolicy prod default.allow false",
  );
  assert.equal(show("watch/globalnetworkpolicies"), "GlobalNetworkPolicy - - true");
  assert.equal(show("watch/namespaces/prod/networkpolicies/a"), "NetworkPolicy prod a true");
});

test("paths that name nothing are 404", () => {
  for (const path of [
    "pods",
    "ippools/a/status",
    "namespaces/prod/ippools", // cluster-scoped kind under a namespace
    "networkpolicies/a", // namespaced kind by name without its namespace
    "namespaces/prod",
    "ippools//x",
  ]) {
    assert.throws(
      () => parseResourcePath(`${P}/${path}`),
      (e: unknown) => e instanceof StatusError && e.status.code === 404,
      path,
    );
  }
});

test("any path parses or is a 4xx Status, never another error", () => {
  const seg = fc.oneof(
    fc.constantFrom(
      "namespaces",
      "watch",
      "ippools",
      "networkpolicies",
      "prod",
      "a",
      "",
      "%",
      "%E0%A4%A",
      "%2F",
    ),
    fc.string({ maxLength: 8 }),
  );
  fc.assert(
    fc.property(fc.array(seg, { maxLength: 6 }), (segs) => {
      try {
        parseResourcePath(`${P}/${segs.join("/")}`);
      } catch (e) {
        assert.ok(e instanceof StatusError && e.status.code >= 400 && e.status.code < 500, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
