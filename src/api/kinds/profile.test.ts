import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Issues } from "../check.js";
import { API_VERSION, type AnyResource } from "../resource.js";
import { PROFILE } from "./profile.js";

const profile = (spec: unknown): AnyResource => ({
  apiVersion: API_VERSION,
  kind: "Profile",
  metadata: { name: "dev-apps" },
  spec: spec as Record<string, unknown>,
});

function paths(r: AnyResource): string[] {
  const issues = new Issues();
  PROFILE.validate(r, issues);
  return issues.list.map((i) => i.path).sort();
}

void describe("Profile", () => {
  const DOCS = profile({
    ingress: [
      { action: "Deny", source: { nets: ["198.19.20.0/24"] } },
      { action: "Allow", source: { selector: "stage == 'development'" } },
    ],
    egress: [{ action: "Allow" }],
    labelsToApply: { stage: "development" },
  });

  void it("accepts the docs example", () => assert.deepEqual(paths(DOCS), []));
  void it("accepts the built-in kns profile shape", () =>
    assert.deepEqual(
      paths(
        profile({
          ingress: [{ action: "Allow" }],
          egress: [{ action: "Allow" }],
          labelsToApply: { "pcns.projectcalico.org/name": "default" },
        }),
      ),
      [],
    ));

  const bad: [string, unknown, string[]][] = [
    [
      "rule problem with path",
      { egress: [{ action: "Allow" }, { action: "Block" }] },
      ["spec.egress[1].action"],
    ],
    ["bad label", { labelsToApply: { "bad key": "x" } }, ['spec.labelsToApply["bad key"]']],
    ["bad label value", { labelsToApply: { k: "not ok" } }, ['spec.labelsToApply["k"]']],
    ["unknown field", { selector: "all()" }, ["spec.selector"]],
    ["rules not a list", { ingress: "Allow" }, ["spec.ingress"]],
  ];
  for (const [name, spec, want] of bad)
    void it(`rejects ${name}`, () => assert.deepEqual(paths(profile(spec)), want));

  void it("normalises rules on write", () => {
    const out = PROFILE.withDefaults(
      profile({ ingress: [{ action: "Allow", protocol: "6", destination: { ports: ["22"] } }], egress: [] }),
    );
    assert.deepEqual(out.spec, { ingress: [{ action: "Allow", protocol: 6, destination: { ports: [22] } }] });
  });
});
