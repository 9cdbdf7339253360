import { test } from "node:test";
import assert from "node:assert/strict";
import * as calico from "../src/index.js";

test("the main module exports parseSelector with evaluate, toString and positioned SyntaxErrors", () => {
  const s = calico.parseSelector("app == 'web' && tier in {'fe', 'canary'}");
  assert.equal(s.evaluate({ app: "web", tier: "fe" }), true);
  assert.equal(s.evaluate({ app: "web" }), false);
  assert.equal(s.toString(), '(app == "web" && tier in {"canary", "fe"})');
  assert.throws(
    () => calico.parseSelector("app == web"),
    (e: unknown) => e instanceof SyntaxError && /column \d+/.test(e.message),
  );
});

test("the main module exports resource decoding, validation errors and the kinds", () => {
  assert.equal(calico.KINDS.length, 21);
  const [r] = calico.decodeResources(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: all(), egress: [{action: Allow}]}\n",
  );
  assert.deepEqual(r?.resource.spec.types, ["Egress"]);
  assert.throws(
    () =>
      calico.decodeResources(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {}\n",
      ),
    (e: unknown) => calico.isInputError(e) && /spec\.cidr: is required/.test(e.message),
  );
});

test("the main module exports the datastore drivers and resource client", async () => {
  const store = new calico.ResourceStore(new calico.MemoryDatastore());
  const created = await store.create({
    apiVersion: calico.API_VERSION,
    kind: "GlobalNetworkSet",
    metadata: { name: "s" },
    spec: { nets: ["198.18.0.0/24"] },
  });
  assert.match(created.metadata.resourceVersion ?? "", /^\d+$/);
  await store.datastore.close();
});
