import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeInputs, decodeResource, decodeResources, InputError } from "./codec.js";
import { ValidationError } from "./validation.js";

const pool = (name: string, cidr: string) =>
  `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: ${name}\nspec:\n  cidr: ${cidr}\n`;

function failures(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  assert.fail("expected an InputError");
}

describe("decodeResources", () => {
  test("reads a multi-document YAML stream, skipping empty documents", () => {
    const out = decodeResources(
      `---\n# nothing\n---\n${pool("a", "198.19.0.0/24")}---\n---\n${pool("b", "198.19.1.0/24")}`,
    );
    assert.deepEqual(
      out.map((r) => [r.resource.metadata.name, r.ref.index]),
      [
        ["a", 1],
        ["b", 2],
      ],
    );
  });

  test("reads JSON, a single object or a List", () => {
    const one = decodeResources(
      JSON.stringify({
        apiVersion: "projectcalico.org/v3",
        kind: "Tier",
        metadata: { name: "t" },
        spec: { order: 5 },
      }),
    );
    assert.equal(one[0]?.resource.kind, "Tier");
    const list = decodeResources(
      JSON.stringify({
        apiVersion: "projectcalico.org/v3",
        kind: "IPPoolList",
        items: [
          {
            apiVersion: "projectcalico.org/v3",
            kind: "IPPool",
            metadata: { name: "x" },
            spec: { cidr: "198.19.0.0/24" },
          },
          {
            apiVersion: "projectcalico.org/v3",
            kind: "IPPool",
            metadata: { name: "y" },
            spec: { cidr: "198.19.1.0/24" },
          },
        ],
      }),
    );
    assert.deepEqual(
      list.map((r) => [r.resource.metadata.name, r.ref.index, r.ref.item]),
      [
        ["x", 1, 1],
        ["y", 1, 2],
      ],
    );
  });

  test("a plain `List` may mix kinds; errors name the item", () => {
    const text = `apiVersion: v1\nkind: List\nitems:\n- ${JSON.stringify({ apiVersion: "projectcalico.org/v3", kind: "Tier", metadata: { name: "t" }, spec: {} })}\n- ${JSON.stringify({ apiVersion: "projectcalico.org/v3", kind: "IPPool", metadata: { name: "p" }, spec: { cidr: "nope" } })}\n`;
    const e = failures(() => decodeResources(text, "list.yaml"));
    assert.equal(e.total, 2);
    assert.equal(e.failures.length, 1);
    assert.match(
      e.failures[0]!.message,
      /^Invalid list\.yaml: document 1, item 2 \(line 1\), IPPool "p":\n {2}spec\.cidr = "nope": /,
    );
  });

  test("defaults the namespace of namespaced kinds and rejects one on cluster-scoped kinds", () => {
    const [np] = decodeResources(
      "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {selector: all()}\n",
    );
    assert.equal(np?.resource.metadata.namespace, "default");
    const e = failures(() =>
      decodeResources(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s, namespace: x}\n",
      ),
    );
    assert.match(e.message, /metadata\.namespace = "x": must not be set: GlobalNetworkSet is not namespaced/);
  });

  test("envelope errors: not a mapping, missing metadata, bad names, unknown metadata fields", () => {
    const cases: [string, RegExp][] = [
      ["- a\n- b\n", /\(document\) = \["a","b"\]: must be a mapping/],
      ["apiVersion: projectcalico.org/v3\nkind: Tier\n", /metadata: is required/],
      [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: Bad_Name}\n",
        /metadata\.name = "Bad_Name": must be a lower-case DNS-1123 subdomain/,
      ],
      [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s, lables: {a: b}}\n",
        /metadata\.lables = .*unknown field; did you mean labels\?/,
      ],
      [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s, labels: {'a b': c}}\n",
        /metadata\.labels\["a b"\] = "a b": label key name/,
      ],
      [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s}\nspec: [1]\n",
        /spec = \[1\]: must be a mapping/,
      ],
      [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: s}\nspce: {}\n",
        /spce = \{\}: unknown field; did you mean spec\?/,
      ],
      ["a: 1\na: 2\n", /YAML\/JSON syntax error: Map keys must be unique/],
    ];
    for (const [text, re] of cases) {
      const e = failures(() => decodeResources(text));
      assert.match(e.message, re, text);
    }
  });

  test("every invalid document is reported, not just the first", () => {
    const e = failures(() =>
      decodeResources(`${pool("a", "x")}---\n${pool("b", "198.19.0.0/24")}---\n${pool("c", "y")}`),
    );
    assert.equal(e.total, 3);
    assert.deepEqual(
      e.failures.map((f) => f.document.name),
      ["a", "c"],
    );
    assert.match(e.message, /^2 of 3 document\(s\) are invalid; nothing was written/);
  });

  test("decodeInputs counts documents across inputs and names each source", () => {
    const e = failures(() =>
      decodeInputs([
        { text: pool("a", "198.19.0.0/24"), source: "one.yaml" },
        { text: pool("b", "bad"), source: "two.yaml" },
      ]),
    );
    assert.equal(e.total, 2);
    assert.match(e.message, /two\.yaml: document 1/);
  });

  test("Kubernetes NetworkPolicy is converted to knp.default.<name>", () => {
    const [r] = decodeResources(
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n",
    );
    assert.equal(r?.resource.metadata.name, "knp.default.deny-all");
    assert.equal(r?.resource.metadata.namespace, "shop");
    assert.equal(r?.resource.spec.order, 1000);
    assert.deepEqual(r?.resource.spec.types, ["Ingress"]);
  });

  test("decodeResource throws a ValidationError for one object", () => {
    assert.throws(
      () =>
        decodeResource({
          apiVersion: "projectcalico.org/v3",
          kind: "IPPool",
          metadata: { name: "p" },
          spec: {},
        }),
      (e: unknown) => e instanceof ValidationError && e.issues.some((i) => i.path === "spec.cidr"),
    );
  });
});
