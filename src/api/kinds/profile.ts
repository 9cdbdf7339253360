/**
 * Profile (reference/calico.md §2.9): rules and labels endpoints inherit by naming the
 * profile. Its rules are checked like policy rules, minus the direction-dependent checks
 * Calico applies only to policies.
 */
import { checkKnownFields, checkLabels, isRecord } from "../check.js";
import type { Resource } from "../resource.js";
import type { KindDef } from "./kind.js";
import { checkRules, normalizeRuleList, type Rule } from "./rule.js";

export interface ProfileSpec {
  ingress?: Rule[];
  egress?: Rule[];
  /** Labels every endpoint using the profile inherits (its own labels win). */
  labelsToApply?: Record<string, string>;
}

export type Profile = Resource<"Profile", ProfileSpec>;

export const PROFILE: KindDef = {
  kind: "Profile",
  plural: "profiles",
  namespaced: false,
  shortNames: ["pro", "pros"],
  validate(resource, issues) {
    const spec: unknown = resource.spec ?? {};
    if (!isRecord(spec)) {
      issues.add("spec", "must be an object", spec);
      return;
    }
    checkKnownFields(spec, ["ingress", "egress", "labelsToApply"], "spec", issues);
    checkRules(spec, "ingress", "spec", issues, { direction: "ingress", owner: "profile" });
    checkRules(spec, "egress", "spec", issues, { direction: "egress", owner: "profile" });
    checkLabels(spec, "labelsToApply", "spec", issues);
  },
  withDefaults(resource) {
    const out = structuredClone(resource);
    const spec: Record<string, unknown> = isRecord(out.spec) ? out.spec : {};
    for (const f of ["ingress", "egress"] as const) {
      const rules = normalizeRuleList(spec[f]);
      if (rules === undefined) continue;
      if (rules.length === 0) delete spec[f];
      else spec[f] = rules;
    }
    out.spec = spec;
    return out;
  },
};
