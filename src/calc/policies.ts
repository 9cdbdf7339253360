/**
 * Policies and tiers as the calculation sees them (reference/calico.md §2.6–2.8, §2.12):
 * decoded from their resources, and the evaluation order — tiers by `order` (absent last)
 * then name; policies in a tier by `order` (absent last) then name, namespace and kind.
 */
import { bool, num, specOf, str, strings } from "./decode.js";
import { policySelector } from "./selector-translation.js";

export const DEFAULT_TIER = "default";
export const DEFAULT_TIER_ORDER = 1_000_000;

export interface TierRecord {
  name: string;
  order: number | undefined;
  defaultAction: "deny" | "pass";
}

/** The default tier exists even without its resource (Calico creates it on start-up). */
export const BUILTIN_DEFAULT_TIER: TierRecord = {
  name: DEFAULT_TIER,
  order: DEFAULT_TIER_ORDER,
  defaultAction: "deny",
};

export function decodeTier(name: string, value: unknown): TierRecord | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const order = name === DEFAULT_TIER ? (num(spec.order) ?? DEFAULT_TIER_ORDER) : num(spec.order);
  return { name, order, defaultAction: str(spec.defaultAction)?.toLowerCase() === "pass" ? "pass" : "deny" };
}

export type PolicyKind = "gnp" | "np";

export interface PolicyRecord {
  /** `gnp/<name>` or `np/<ns>/<name>`. */
  id: string;
  kind: PolicyKind;
  name: string;
  namespace: string | undefined;
  tier: string;
  order: number | undefined;
  /** Translated, canonical. */
  selector: string;
  ingress: boolean;
  egress: boolean;
  ingressRules: unknown;
  egressRules: unknown;
  doNotTrack: boolean;
  preDNAT: boolean;
  applyOnForward: boolean;
  assumeNeeded: boolean;
}

export const globalPolicyId = (name: string): string => `gnp/${name}`;
export const namespacedPolicyId = (ns: string, name: string): string => `np/${ns}/${name}`;

/**
 * A GlobalNetworkPolicy (`namespace` undefined) or NetworkPolicy. Throws SelectorSyntaxError
 * on a bad selector; undefined when the value is not a policy.
 */
export function decodePolicy(
  namespace: string | undefined,
  name: string,
  value: unknown,
): PolicyRecord | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const global = namespace === undefined;
  let types = strings(spec.types);
  if (types.length === 0) {
    // Stored values always carry types; infer as on write (§2.12) if one does not.
    const hasIn = Array.isArray(spec.ingress) && spec.ingress.length > 0;
    const hasEg = Array.isArray(spec.egress) && spec.egress.length > 0;
    types = hasEg && !hasIn ? ["Egress"] : hasEg ? ["Ingress", "Egress"] : ["Ingress"];
  }
  return {
    id: global ? globalPolicyId(name) : namespacedPolicyId(namespace, name),
    kind: global ? "gnp" : "np",
    name,
    namespace,
    tier: str(spec.tier) || DEFAULT_TIER,
    order: num(spec.order),
    selector: policySelector({
      selector: str(spec.selector),
      serviceAccountSelector: str(spec.serviceAccountSelector),
      namespaceSelector: global ? str(spec.namespaceSelector) : undefined,
      namespace,
    }),
    ingress: types.includes("Ingress"),
    egress: types.includes("Egress"),
    ingressRules: spec.ingress,
    egressRules: spec.egress,
    doNotTrack: global && bool(spec.doNotTrack),
    preDNAT: global && bool(spec.preDNAT),
    applyOnForward: global && bool(spec.applyOnForward),
    assumeNeeded: strings(spec.performanceHints).includes("AssumeNeededOnEveryNode"),
  };
}

/** Absent order sorts after every number. */
function compareOrder(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function compareTiers(a: TierRecord, b: TierRecord): number {
  return compareOrder(a.order, b.order) || compareText(a.name, b.name);
}

export function comparePolicies(a: PolicyRecord, b: PolicyRecord): number {
  return (
    compareOrder(a.order, b.order) ||
    compareText(a.name, b.name) ||
    compareText(a.namespace ?? "", b.namespace ?? "") ||
    compareText(a.kind, b.kind)
  );
}
