/**
 * The selector rewriting Calico's backend performs before Felix sees a policy
 * (reference/calico.md §2.13, code `updateprocessors/rules.go`), so that one label index of
 * endpoint labels can answer every selector:
 *  - a NetworkPolicy is scoped to its namespace;
 *  - `serviceAccountSelector` reads service account labels, inherited as `pcsa.*`;
 *  - a `namespaceSelector` reads namespace labels, inherited as `pcns.*`.
 * Results are canonical strings (parse → String()), so equal selectors share one IP set.
 */
import { canonicalString, parseSelector, type SelectorNode } from "../selector/index.js";
import { isObj, str, strings } from "./decode.js";

export const NAMESPACE_LABEL = "projectcalico.org/namespace";
export const ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator";
export const SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount";
export const NAMESPACE_PREFIX = "pcns.";
export const SERVICE_ACCOUNT_PREFIX = "pcsa.";

/** Canonical form of a selector text; throws SelectorSyntaxError. Empty ⇒ `all()`. */
export const canonical = (text: string): string => parseSelector(text).toString();

/** Prefixes every label key; with `namespaceRewrite`, all()/global() become namespace tests. */
function rewrite(node: SelectorNode, prefix: string, namespaceRewrite: boolean): SelectorNode {
  switch (node.kind) {
    case "all":
      return namespaceRewrite ? { kind: "has", label: NAMESPACE_LABEL } : node;
    case "global":
      return namespaceRewrite ? { kind: "not", operand: { kind: "has", label: NAMESPACE_LABEL } } : node;
    case "not":
      return { kind: "not", operand: rewrite(node.operand, prefix, namespaceRewrite) };
    case "and":
    case "or":
      return { kind: node.kind, operands: node.operands.map((o) => rewrite(o, prefix, namespaceRewrite)) };
    case "has":
    case "eq":
    case "ne":
    case "contains":
    case "startsWith":
    case "endsWith":
    case "in":
    case "notIn":
      return { ...node, label: prefix + node.label };
  }
}

/** `text` with every label prefixed (`pcns.`, `pcsa.`), as selector text. */
export function prefixLabels(text: string, prefix: string, namespaceRewrite = false): string {
  return canonicalString(rewrite(parseSelector(text).root, prefix, namespaceRewrite));
}

const nsEquals = (ns: string): string => `${NAMESPACE_LABEL} == ${quoteValue(ns)}`;
const quoteValue = (v: string): string => (v.includes("'") ? `"${v}"` : `'${v}'`);

/** Joins non-empty selector texts with `&&`, each parenthesised. */
function and(parts: readonly string[]): string {
  const present = parts.filter((p) => p.trim() !== "");
  if (present.length === 0) return "";
  if (present.length === 1) return present[0]!;
  return present.map((p) => `(${p})`).join(" && ");
}

/**
 * The selector a policy applies to (§2.13): `selector`, scoped to the namespace of a
 * NetworkPolicy, ANDed with the prefixed `serviceAccountSelector` and (GNP) `namespaceSelector`.
 */
export function policySelector(spec: {
  selector?: string | undefined;
  serviceAccountSelector?: string | undefined;
  namespaceSelector?: string | undefined;
  namespace?: string | undefined;
}): string {
  let sel = spec.selector?.trim() ?? "";
  if (spec.namespace !== undefined) sel = and([sel, nsEquals(spec.namespace)]);
  if (spec.serviceAccountSelector?.trim()) {
    sel = and([sel, prefixLabels(spec.serviceAccountSelector, SERVICE_ACCOUNT_PREFIX)]);
  }
  if (spec.namespaceSelector?.trim()) {
    sel = and([sel, prefixLabels(spec.namespaceSelector, NAMESPACE_PREFIX)]);
  }
  return canonical(sel);
}

/** An entity rule's selectors after translation: undefined ⇒ no condition. */
export interface EntitySelectors {
  selector?: string;
  notSelector?: string;
}

/**
 * Rule `source`/`destination` translation (§2.13). `namespace` is the policy's namespace
 * (undefined for global policies and profiles).
 */
export function entitySelectors(entity: unknown, namespace: string | undefined): EntitySelectors {
  if (!isObj(entity)) return {};
  const selector = str(entity.selector)?.trim() ?? "";
  const notSelector = str(entity.notSelector)?.trim() ?? "";
  const namespaceSelector = str(entity.namespaceSelector)?.trim() ?? "";

  let nsSel = "";
  if (namespaceSelector !== "") nsSel = prefixLabels(namespaceSelector, NAMESPACE_PREFIX, true);
  else if (namespace !== undefined) nsSel = nsEquals(namespace);

  const saParts: string[] = [];
  const sa = isObj(entity.serviceAccounts) ? entity.serviceAccounts : undefined;
  if (sa !== undefined) {
    const saSel = str(sa.selector)?.trim() ?? "";
    if (saSel !== "") saParts.push(prefixLabels(saSel, SERVICE_ACCOUNT_PREFIX));
    const names = strings(sa.names);
    if (names.length > 0) {
      saParts.push(`${SERVICE_ACCOUNT_LABEL} in {${names.map((n) => quoteValue(n)).join(", ")}}`);
    }
  }
  const combined = and([...saParts, selector]);

  let result = combined;
  if (nsSel !== "" && (combined !== "" || notSelector !== "" || namespaceSelector !== "")) {
    result = and([nsSel, combined]);
  }
  const out: EntitySelectors = {};
  if (result !== "") out.selector = canonical(result);
  if (notSelector !== "") out.notSelector = canonical(notSelector);
  return out;
}
