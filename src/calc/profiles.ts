/**
 * Profiles (reference/calico.md §2.9): rules that apply when no tier does, and labels
 * endpoints inherit. A profile an endpoint names but that does not exist gets Felix's stand-in
 * that drops everything; `projectcalico-default-allow` exists without a resource.
 */
import { labelsOf, specOf } from "./decode.js";
import { translateRules, type RuleContext } from "./rule-translation.js";
import type { IPSetSpec } from "./ipset-spec.js";
import { newRule, type CompiledProfile, type ParsedRule } from "./types.js";

export const DEFAULT_ALLOW_PROFILE = "projectcalico-default-allow";

export interface ProfileRecord {
  name: string;
  labels: Record<string, string>;
  compiled: CompiledProfile;
  sets: IPSetSpec[];
}

export const profileOrigin = (name: string): string => `profile/${name}`;

const bareRule = (action: ParsedRule["action"], origin: string): ParsedRule => newRule(action, origin);

/** Throws on rules that cannot be translated; undefined when the value is not a profile. */
export function decodeProfile(name: string, value: unknown, logPrefix: string): ProfileRecord | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const ctx = (dir: string): RuleContext => ({
    origin: `${profileOrigin(name)} ${dir}`,
    namespace: undefined,
    logPrefix,
  });
  const inbound = translateRules(spec.ingress, ctx("inbound"));
  const outbound = translateRules(spec.egress, ctx("outbound"));
  return {
    name,
    labels: labelsOf(spec.labelsToApply),
    compiled: { id: name, inbound: inbound.rules, outbound: outbound.rules },
    sets: [...inbound.sets, ...outbound.sets],
  };
}

/** The profile used for a name with no (valid) resource. */
export function builtinProfile(name: string): CompiledProfile {
  if (name === DEFAULT_ALLOW_PROFILE) {
    return {
      id: name,
      inbound: [bareRule("allow", `${profileOrigin(name)} inbound[0]`)],
      outbound: [bareRule("allow", `${profileOrigin(name)} outbound[0]`)],
    };
  }
  // Felix: a missing profile is replaced by one that drops everything.
  const origin = `${profileOrigin(name)} (missing: deny all)`;
  return {
    id: name,
    inbound: [bareRule("deny", `${origin} inbound`)],
    outbound: [bareRule("deny", `${origin} outbound`)],
  };
}
