/**
 * Tier (reference/calico.md §2.8): an ordered group of policies with a verdict for traffic
 * that reaches its end. Tiers run in ascending `order` (absent = last, ties by name).
 */
import {
  checkEnum,
  checkKnownFields,
  checkNumber,
  isDNS1123Label,
  isRecord,
  DNS1123_LABEL_HINT,
} from "../check.js";
import { API_VERSION, type Resource } from "../resource.js";
import type { KindDef } from "./kind.js";

export const TIER_DEFAULT_ACTIONS = ["Deny", "Pass"] as const;
export type TierDefaultAction = (typeof TIER_DEFAULT_ACTIONS)[number];

export interface TierSpec {
  /** Absent = applied after every tier with an order. */
  order?: number;
  /** What happens to traffic no policy in the tier decided; default Deny. */
  defaultAction?: TierDefaultAction;
}

export type Tier = Resource<"Tier", TierSpec>;

/** The built-in tier every policy without a `tier` belongs to; Kubernetes policies go here too. */
export const DEFAULT_TIER_ORDER = 1_000_000;
/** Built-in tiers for Kubernetes AdminNetworkPolicy / BaselineAdminNetworkPolicy (recent Calico). */
export const KUBE_ADMIN_TIER_ORDER = 1_000;
export const KUBE_BASELINE_TIER_ORDER = 10_000_000;

/** Tiers whose order Calico pins: a Tier with one of these names must carry that order. */
export const RESERVED_TIER_ORDERS: Readonly<Record<string, number>> = {
  default: DEFAULT_TIER_ORDER,
  "kube-admin": KUBE_ADMIN_TIER_ORDER,
  "kube-baseline": KUBE_BASELINE_TIER_ORDER,
};

/**
 * The `default` tier as Calico creates it on start-up. Policies in it that match no rule
 * fall through to the tier's end: Deny, as for every tier with an applicable policy.
 */
export const DEFAULT_TIER: Tier = {
  apiVersion: API_VERSION,
  kind: "Tier",
  metadata: { name: "default" },
  spec: { order: DEFAULT_TIER_ORDER, defaultAction: "Deny" },
};

export function tierNameProblem(name: string): string | undefined {
  // Tier names appear inside policy names and in a label value, so they are DNS labels.
  return isDNS1123Label(name) ? undefined : `a Tier name must be ${DNS1123_LABEL_HINT} (no dots)`;
}

export const TIER: KindDef = {
  kind: "Tier",
  plural: "tiers",
  namespaced: false,
  shortNames: [],
  nameProblem: tierNameProblem,
  validate(resource, issues) {
    const spec: unknown = resource.spec ?? {};
    if (!isRecord(spec)) {
      issues.add("spec", "must be an object", spec);
      return;
    }
    checkKnownFields(spec, ["order", "defaultAction"], "spec", issues);
    const order = checkNumber(spec, "order", "spec", issues);
    checkEnum(spec, "defaultAction", "spec", TIER_DEFAULT_ACTIONS, issues);
    const reserved = RESERVED_TIER_ORDERS[resource.metadata.name];
    if (reserved !== undefined && order !== reserved && (spec.order === undefined || order !== undefined)) {
      issues.add("spec.order", `the ${resource.metadata.name} tier's order must be ${reserved}`, spec.order);
    }
  },
  withDefaults(resource) {
    const out = structuredClone(resource);
    const spec: Record<string, unknown> = isRecord(out.spec) ? out.spec : {};
    if (spec.defaultAction === undefined || spec.defaultAction === null) spec.defaultAction = "Deny";
    out.spec = spec;
    return out;
  },
};
