import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { matchesLabels, objectFilter, parseFieldSelector, parseLabelSelector } from "./selectors.js";
import { StatusError } from "./status.js";
import type { AnyResource } from "../../api/resource.js";

const labels = { app: "web", tier: "front", "example.com/team": "net", version: "3" };

test("label selectors follow Kubernetes' syntax and semantics", () => {
  const cases: [string, boolean][] = [
    ["", true],
    ["app=web", true],
    ["app==web", true],
    ["app = web", true],
    ["app=db", false],
    ["app!=db", true],
    ["missing!=x", true], // a missing key satisfies !=
    ["app in (web,db)", true],
    ["app in (db, cache)", false],
    ["app notin (db)", true],
    ["missing notin (db)", true],
    ["app notin (web)", false],
    ["tier", true],
    ["missing", false],
    ["!missing", true],
    ["!tier", false],
    ["example.com/team=net", true],
    ["app=web,tier=front", true],
    ["app=web,tier=back", false],
    ["app in (web,db),!missing,tier", true],
    ["version>2", true],
    ["version<3", false],
    ["app=", false],
  ];
  for (const [sel, want] of cases) {
    assert.equal(matchesLabels(parseLabelSelector(sel), labels), want, sel);
  }
});

test("malformed label selectors are 400 BadRequest naming the selector", () => {
  for (const sel of ["app=web,", "=web", "app in web", "app=we b", "a b", "version>x", "-bad=1"]) {
    assert.throws(
      () => parseLabelSelector(sel),
      (e: unknown) =>
        e instanceof StatusError &&
        e.status.code === 400 &&
        e.status.reason === "BadRequest" &&
        e.status.message.includes(JSON.stringify(sel)),
      sel,
    );
  }
});

const res = (name: string, namespace?: string): AnyResource => ({
  apiVersion: "projectcalico.org/v3",
  kind: "NetworkPolicy",
  metadata: { name, ...(namespace !== undefined ? { namespace } : {}), labels: { app: "web" } },
  spec: {},
});

test("field selectors support metadata.name and metadata.namespace", () => {
  const f = (sel: string, r: AnyResource) => objectFilter(null, sel).matches(r);
  assert.equal(f("metadata.name=a", res("a")), true);
  assert.equal(f("metadata.name==a", res("b")), false);
  assert.equal(f("metadata.name!=a", res("b")), true);
  assert.equal(f("metadata.namespace=prod,metadata.name=a", res("a", "prod")), true);
  assert.equal(f("metadata.namespace=prod", res("a", "dev")), false);
  assert.throws(() => parseFieldSelector("spec.selector=x"), /field label not supported/);
  assert.throws(() => parseFieldSelector("metadata.name"), /field label not supported/);
});

test("an object filter combines both selectors and knows when it is empty", () => {
  assert.equal(objectFilter(null, null).empty, true);
  assert.equal(objectFilter("", "").empty, true);
  const f = objectFilter("app=web", "metadata.name=a");
  assert.equal(f.empty, false);
  assert.equal(f.matches(res("a")), true);
  assert.equal(f.matches(res("b")), false);
  assert.equal(objectFilter("app=db", null).matches(res("a")), false);
});

test("any selector text parses or is a 400 Status, never another error", () => {
  const piece = fc.constantFrom(
    "a",
    "b",
    "=",
    "==",
    "!=",
    "!",
    ",",
    " in ",
    " notin ",
    "(",
    ")",
    " ",
    "x/y",
    "<",
    ">",
    "1",
    "-",
  );
  const text = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.array(piece, { maxLength: 12 }).map((p) => p.join("")),
  );
  fc.assert(
    fc.property(text, (t) => {
      for (const parse of [parseLabelSelector, parseFieldSelector]) {
        try {
          const sel = parse(t);
          if (parse === parseLabelSelector)
            matchesLabels(sel as ReturnType<typeof parseLabelSelector>, labels);
        } catch (e) {
          assert.ok(e instanceof StatusError && e.status.code === 400, String(e));
        }
      }
    }),
    { numRuns: 3000 },
  );
});
