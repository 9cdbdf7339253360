/**
 * ClusterInformation (cluster singleton `default`): identity and readiness of the cluster's
 * datastore (reference/calico.md §2.19). Written by Calico itself; `datastoreReady: false`
 * makes components pause (used while migrating or releasing leaked IPs).
 */
import type { Resource } from "../resource.js";
import { checkBool, checkKnownFields, checkString, type Issues } from "../check.js";
import type { KindDef } from "./kind.js";
import { cloneResource, singletonNameProblem, specOf } from "./infra-spec.js";

export interface ClusterInformationSpec {
  clusterGUID?: string;
  /** Comma-separated tags, e.g. `k8s,bgp,kubeadm,kdd`. */
  clusterType?: string;
  calicoVersion?: string;
  datastoreReady?: boolean;
  variant?: string;
}

export type ClusterInformation = Resource<"ClusterInformation", ClusterInformationSpec>;

export function validateClusterInformationSpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): void {
  checkKnownFields(
    spec,
    ["clusterGUID", "clusterType", "calicoVersion", "datastoreReady", "variant"],
    path,
    issues,
  );
  checkString(spec, "clusterGUID", path, issues, {
    pattern: /^[0-9a-fA-F-]*$/,
    patternHint: "a hexadecimal GUID",
  });
  checkString(spec, "clusterType", path, issues);
  checkString(spec, "calicoVersion", path, issues);
  checkBool(spec, "datastoreReady", path, issues);
  checkString(spec, "variant", path, issues);
}

export const CLUSTER_INFORMATION_KIND: KindDef = {
  kind: "ClusterInformation",
  plural: "clusterinformations",
  namespaced: false,
  shortNames: ["clusterinformation", "clusterinfo", "clusterinfos"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateClusterInformationSpec(spec, "spec", issues);
  },
  withDefaults: cloneResource,
  nameProblem: (name) => singletonNameProblem(name, false),
};
