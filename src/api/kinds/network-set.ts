/**
 * NetworkSet (namespaced) and GlobalNetworkSet (reference/calico.md §2.10): labelled lists
 * of networks that rule selectors can match, so traffic from/to those addresses matches.
 */
import { checkArray, checkKnownFields, checkCIDRValue, isRecord, join, type Issues } from "../check.js";
import type { AnyResource, Resource } from "../resource.js";
import type { KindDef } from "./kind.js";

export interface NetworkSetSpec {
  /** CIDRs or single addresses (Calico's `cidr` tag: host bits may be set). */
  nets?: string[];
}

export type NetworkSet = Resource<"NetworkSet", NetworkSetSpec>;
export type GlobalNetworkSet = Resource<"GlobalNetworkSet", NetworkSetSpec>;

/** Set by Calico itself when it maps a NetworkSet into its namespace; users may not set it. */
export const NAMESPACE_LABEL = "projectcalico.org/namespace";

function validateNetworkSet(resource: AnyResource, issues: Issues): void {
  const labels = resource.metadata.labels;
  if (labels !== undefined && Object.hasOwn(labels, NAMESPACE_LABEL)) {
    issues.add(
      `metadata.labels[${JSON.stringify(NAMESPACE_LABEL)}]`,
      `${NAMESPACE_LABEL} is reserved (Calico sets it from the namespace)`,
      labels[NAMESPACE_LABEL],
    );
  }
  const spec: unknown = resource.spec ?? {};
  if (!isRecord(spec)) {
    issues.add("spec", "must be an object", spec);
    return;
  }
  checkKnownFields(spec, ["nets"], "spec", issues);
  const nets = checkArray(spec, "nets", "spec", issues);
  const seen = new Set<string>();
  nets?.forEach((n, i) => {
    const p = join("spec.nets", i);
    if (checkCIDRValue(n, p, issues, { allowBareIP: true }) === undefined) return;
    // The CRD declares the list uniqueItems.
    if (seen.has(n as string)) issues.add(p, "duplicate entry", n);
    seen.add(n as string);
  });
}

const withDefaults = (r: AnyResource): AnyResource => structuredClone(r);

export const NETWORK_SET: KindDef = {
  kind: "NetworkSet",
  plural: "networksets",
  namespaced: true,
  shortNames: ["netsets"],
  validate: validateNetworkSet,
  withDefaults,
};

export const GLOBAL_NETWORK_SET: KindDef = {
  kind: "GlobalNetworkSet",
  plural: "globalnetworksets",
  namespaced: false,
  shortNames: ["gnetsets"],
  validate: validateNetworkSet,
  withDefaults,
};
