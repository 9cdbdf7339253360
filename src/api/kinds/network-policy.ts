/**
 * NetworkPolicy, GlobalNetworkPolicy and their staged variants (reference/calico.md §2.6,
 * §2.7), plus StagedKubernetesNetworkPolicy. One spec checker serves all of them; the kinds
 * differ in which fields exist, how names may look and whether rules are namespaced.
 */
import {
  checkArray,
  checkBool,
  checkKnownFields,
  checkNumber,
  checkString,
  isDNS1123Label,
  isRecord,
  join,
  DNS1123_LABEL_HINT,
  type Issues,
} from "../check.js";
import { convertK8sNetworkPolicySpec, K8S_POLICY_SPEC_FIELDS } from "../k8s-network-policy.js";
import type { AnyResource, Resource } from "../resource.js";
import { checkSelector } from "../selector-field.js";
import type { KindDef } from "./kind.js";
import { checkRules, normalizeRuleList, POLICY_TYPES, type PolicyType, type Rule } from "./rule.js";

export const DEFAULT_TIER_NAME = "default";
/** Label Calico adds to every policy on write, naming its tier. */
export const TIER_LABEL = "projectcalico.org/tier";

export const PERFORMANCE_HINTS = ["AssumeNeededOnEveryNode"] as const;
export type PerformanceHint = (typeof PERFORMANCE_HINTS)[number];

export const STAGED_ACTIONS = ["Set", "Delete", "Learn", "Ignore"] as const;
export type StagedAction = (typeof STAGED_ACTIONS)[number];

export interface NetworkPolicySpec {
  /** Default `default`. */
  tier?: string;
  /** Absent = applied last in its tier. */
  order?: number;
  selector?: string;
  serviceAccountSelector?: string;
  /** Never empty once stored: inferred from the rules on write (`inferPolicyTypes`). */
  types?: PolicyType[];
  ingress?: Rule[];
  egress?: Rule[];
  performanceHints?: PerformanceHint[];
}

export interface GlobalNetworkPolicySpec extends NetworkPolicySpec {
  namespaceSelector?: string;
  doNotTrack?: boolean;
  preDNAT?: boolean;
  applyOnForward?: boolean;
}

export interface StagedNetworkPolicySpec extends NetworkPolicySpec {
  /** Absent means Set. */
  stagedAction?: StagedAction;
}

export interface StagedGlobalNetworkPolicySpec extends GlobalNetworkPolicySpec {
  stagedAction?: StagedAction;
}

export type NetworkPolicy = Resource<"NetworkPolicy", NetworkPolicySpec>;
export type GlobalNetworkPolicy = Resource<"GlobalNetworkPolicy", GlobalNetworkPolicySpec>;
export type StagedNetworkPolicy = Resource<"StagedNetworkPolicy", StagedNetworkPolicySpec>;
export type StagedGlobalNetworkPolicy = Resource<"StagedGlobalNetworkPolicy", StagedGlobalNetworkPolicySpec>;

const NP_FIELDS = [
  "tier",
  "order",
  "selector",
  "serviceAccountSelector",
  "types",
  "ingress",
  "egress",
  "performanceHints",
] as const;
const GNP_FIELDS = [...NP_FIELDS, "namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"] as const;

/**
 * `types` when a policy is written without them (§2.12): egress rules and no ingress rules
 * ⇒ [Egress]; both ⇒ [Ingress, Egress]; otherwise [Ingress].
 */
export function inferPolicyTypes(spec: { ingress?: unknown[]; egress?: unknown[] }): PolicyType[] {
  const hasIngress = (spec.ingress?.length ?? 0) > 0;
  const hasEgress = (spec.egress?.length ?? 0) > 0;
  if (hasEgress && !hasIngress) return ["Egress"];
  if (hasEgress && hasIngress) return ["Ingress", "Egress"];
  return ["Ingress"];
}

// ---- names ----

const LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN = `${LABEL}(\\.${LABEL})*`;
/** Calico's networkPolicyNameRegex: a label, one dotted prefix (legacy tier prefix), or knp./ossg.default.<subdomain>. */
const NP_NAME = new RegExp(`^((${LABEL})(\\.${LABEL})?|((knp|ossg)\\.default\\.(${SUBDOMAIN})))$`);
/** Calico's globalNetworkPolicyNameRegex: a label with at most one dotted prefix. */
const GNP_NAME = new RegExp(`^(${LABEL}\\.)?${LABEL}$`);

export function networkPolicyNameProblem(name: string): string | undefined {
  if (name.length > 253) return "must be at most 253 characters";
  if (!NP_NAME.test(name)) {
    return (
      "a NetworkPolicy name must be a DNS label (a-z, 0-9, '-'), optionally with one dotted prefix " +
      "(<tier>.<name>), or knp.default.<name> for a converted Kubernetes policy"
    );
  }
  return undefined;
}

export function globalNetworkPolicyNameProblem(name: string): string | undefined {
  if (name.length > 253) return "must be at most 253 characters";
  if (!GNP_NAME.test(name)) {
    return "a GlobalNetworkPolicy name must be a DNS label (a-z, 0-9, '-'), optionally with one dotted prefix (<tier>.<name>)";
  }
  return undefined;
}

// ---- validation ----

interface Shape {
  global: boolean;
  staged: boolean;
}

function specOf(resource: AnyResource, issues: Issues): Record<string, unknown> | undefined {
  const spec: unknown = resource.spec;
  if (spec === undefined || spec === null) return {};
  if (!isRecord(spec)) {
    issues.add("spec", "must be an object", spec);
    return undefined;
  }
  return spec;
}

function isEmptyValue(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === "" ||
    v === false ||
    (Array.isArray(v) && v.length === 0) ||
    (isRecord(v) && Object.keys(v).length === 0)
  );
}

/** Validate a (Global)NetworkPolicy-shaped spec at `path`. */
export function checkPolicySpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
  shape: Shape,
): void {
  const known: string[] = [...(shape.global ? GNP_FIELDS : NP_FIELDS)];
  if (shape.staged) known.unshift("stagedAction");
  checkKnownFields(spec, known, path, issues);

  const tier = checkString(spec, "tier", path, issues);
  if (tier !== undefined && !isDNS1123Label(tier)) {
    issues.add(join(path, "tier"), `must be a tier name: ${DNS1123_LABEL_HINT}`, tier);
  }

  if (shape.staged) {
    const action = spec.stagedAction;
    if (action !== undefined && action !== null && !(STAGED_ACTIONS as readonly unknown[]).includes(action)) {
      issues.add(join(path, "stagedAction"), `must be one of ${STAGED_ACTIONS.join(", ")}`, action);
    }
    if (action === "Delete") {
      // A staged delete names the policy to remove; it carries nothing else but the tier.
      for (const [k, v] of Object.entries(spec)) {
        if (k === "tier" || k === "stagedAction" || !known.includes(k)) continue;
        if (!isEmptyValue(v)) {
          issues.add(join(path, k), "must be empty when stagedAction is Delete (only tier may be set)", v);
        }
      }
      return;
    }
  }

  checkNumber(spec, "order", path, issues);
  checkSelector(spec, "selector", path, issues, { global: "forbidden" });
  checkSelector(spec, "serviceAccountSelector", path, issues, { global: "forbidden" });
  if (shape.global) checkSelector(spec, "namespaceSelector", path, issues, { global: "forbidden" });

  const types = checkArray(spec, "types", path, issues, { maxItems: 2 });
  const seen = new Set<string>();
  types?.forEach((t, i) => {
    const p = join(join(path, "types"), i);
    if (typeof t !== "string" || !(POLICY_TYPES as readonly string[]).includes(t)) {
      issues.add(p, `must be one of ${POLICY_TYPES.join(", ")}`, t);
    } else if (seen.has(t)) {
      issues.add(p, `'${t}' is listed more than once`, t);
    } else seen.add(t);
  });

  const owner = shape.global ? "global" : "namespaced";
  checkRules(spec, "ingress", path, issues, { direction: "ingress", owner });
  checkRules(spec, "egress", path, issues, { direction: "egress", owner });

  const hints = checkArray(spec, "performanceHints", path, issues);
  const seenHints = new Set<string>();
  hints?.forEach((h, i) => {
    const p = join(join(path, "performanceHints"), i);
    if (typeof h !== "string" || !(PERFORMANCE_HINTS as readonly string[]).includes(h)) {
      issues.add(p, `must be one of ${PERFORMANCE_HINTS.join(", ")}`, h);
    } else if (seenHints.has(h)) issues.add(p, "duplicate hint", h);
    else seenHints.add(h);
  });

  if (shape.global) {
    const doNotTrack = checkBool(spec, "doNotTrack", path, issues) === true;
    const preDNAT = checkBool(spec, "preDNAT", path, issues) === true;
    const applyOnForward = checkBool(spec, "applyOnForward", path, issues) === true;
    if (doNotTrack && preDNAT) {
      issues.add(join(path, "preDNAT"), "preDNAT and doNotTrack cannot both be true", true);
    }
    if (preDNAT) {
      // Pre-DNAT policy runs in PREROUTING: there is no egress direction there.
      if (Array.isArray(spec.egress) && spec.egress.length > 0) {
        issues.add(join(path, "egress"), "a preDNAT policy cannot have egress rules");
      }
      if (types?.includes("Egress") === true) {
        issues.add(join(path, "types"), "a preDNAT policy cannot have type Egress", types);
      }
    }
    if ((doNotTrack || preDNAT) && !applyOnForward) {
      issues.add(
        join(path, "applyOnForward"),
        `must be true when ${doNotTrack ? "doNotTrack" : "preDNAT"} is true`,
        spec.applyOnForward,
      );
    }
  }
}

/** The stored form of a policy (§2.6 defaulting): tier, inferred types, tier label, normalised rules. */
export function policyWithDefaults(resource: AnyResource): AnyResource {
  const out = structuredClone(resource);
  const spec: Record<string, unknown> = isRecord(out.spec) ? out.spec : {};
  const tier = typeof spec.tier === "string" && spec.tier !== "" ? spec.tier : DEFAULT_TIER_NAME;
  spec.tier = tier;
  const isDelete = spec.stagedAction === "Delete";
  for (const f of ["ingress", "egress"] as const) {
    const rules = normalizeRuleList(spec[f]);
    if (rules === undefined) continue;
    if (rules.length === 0) delete spec[f];
    else spec[f] = rules;
  }
  if (!isDelete && (!Array.isArray(spec.types) || spec.types.length === 0)) {
    spec.types = inferPolicyTypes({
      ...(Array.isArray(spec.ingress) ? { ingress: spec.ingress } : {}),
      ...(Array.isArray(spec.egress) ? { egress: spec.egress } : {}),
    });
  }
  out.spec = spec;
  out.metadata = { ...out.metadata, labels: { ...(out.metadata.labels ?? {}), [TIER_LABEL]: tier } };
  return out;
}

function policyKind(
  kind: string,
  plural: string,
  namespaced: boolean,
  shortNames: readonly string[],
  shape: Shape,
  nameProblem: (name: string) => string | undefined,
): KindDef {
  return {
    kind,
    plural,
    namespaced,
    shortNames,
    nameProblem,
    validate(resource, issues) {
      const spec = specOf(resource, issues);
      if (spec !== undefined) checkPolicySpec(spec, "spec", issues, shape);
    },
    withDefaults: policyWithDefaults,
  };
}

// Short names: calicoctl's resourcemgr alias lists (calicoctl/calicoctl/resourcemgr/*.go).
export const NETWORK_POLICY: KindDef = policyKind(
  "NetworkPolicy",
  "networkpolicies",
  true,
  ["policy", "policies", "np", "pol", "pols"],
  { global: false, staged: false },
  networkPolicyNameProblem,
);

export const GLOBAL_NETWORK_POLICY: KindDef = policyKind(
  "GlobalNetworkPolicy",
  "globalnetworkpolicies",
  false,
  ["gnp", "gnps"],
  { global: true, staged: false },
  globalNetworkPolicyNameProblem,
);

export const STAGED_NETWORK_POLICY: KindDef = policyKind(
  "StagedNetworkPolicy",
  "stagednetworkpolicies",
  true,
  ["stagedpolicy", "stagedpolicies", "snp", "spol", "spols"],
  { global: false, staged: true },
  networkPolicyNameProblem,
);

export const STAGED_GLOBAL_NETWORK_POLICY: KindDef = policyKind(
  "StagedGlobalNetworkPolicy",
  "stagedglobalnetworkpolicies",
  false,
  ["sgnp", "sgnps"],
  { global: true, staged: true },
  globalNetworkPolicyNameProblem,
);

// ---- StagedKubernetesNetworkPolicy ----

/** A Kubernetes NetworkPolicy spec (networking.k8s.io/v1) plus `stagedAction`. */
export interface StagedKubernetesNetworkPolicySpec {
  stagedAction?: StagedAction;
  podSelector?: Record<string, unknown>;
  policyTypes?: PolicyType[];
  ingress?: Record<string, unknown>[];
  egress?: Record<string, unknown>[];
}

export type StagedKubernetesNetworkPolicy = Resource<
  "StagedKubernetesNetworkPolicy",
  StagedKubernetesNetworkPolicySpec
>;

export const STAGED_KUBERNETES_NETWORK_POLICY: KindDef = {
  kind: "StagedKubernetesNetworkPolicy",
  plural: "stagedkubernetesnetworkpolicies",
  namespaced: true,
  shortNames: ["stagedkubernetespolicy", "stagedkubernetespolicies", "sknp", "skpol", "skpols"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec === undefined) return;
    const action = spec.stagedAction;
    if (action !== undefined && action !== null && !(STAGED_ACTIONS as readonly unknown[]).includes(action)) {
      issues.add("spec.stagedAction", `must be one of ${STAGED_ACTIONS.join(", ")}`, action);
    }
    const { stagedAction: _ignored, ...k8sSpec } = spec;
    if (action === "Delete") {
      checkKnownFields(spec, ["stagedAction", ...K8S_POLICY_SPEC_FIELDS], "spec", issues);
      for (const [k, v] of Object.entries(k8sSpec)) {
        if (!isEmptyValue(v)) issues.add(join("spec", k), "must be empty when stagedAction is Delete", v);
      }
      return;
    }
    // Calico validates these by converting to the NetworkPolicy they stage.
    convertK8sNetworkPolicySpec(k8sSpec, resource.metadata.namespace ?? "default", "spec", issues);
  },
  withDefaults(resource) {
    return structuredClone(resource);
  },
};
