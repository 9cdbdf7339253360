/**
 * IPAMConfiguration (cluster singleton `default`; v1 name IPAMConfig): cluster-wide IPAM
 * behaviour (reference/calico.md §2.20, §4).
 */
import type { AnyResource, Resource } from "../resource.js";
import { checkBool, checkEnum, checkKnownFields, checkNumber, join, type Issues } from "../check.js";
import type { KindDef } from "./kind.js";
import { cloneResource, mutableSpec, singletonNameProblem, specOf } from "./infra-spec.js";

export const VM_ADDRESS_PERSISTENCE = ["Enabled", "Disabled"] as const;

export interface IPAMConfigurationSpec {
  /** Never borrow addresses from another node's block. */
  strictAffinity: boolean;
  /** 0 = no explicit cap (see docs/api-infra.md for the library's default of 20). */
  maxBlocksPerHost?: number;
  autoAllocateBlocks: boolean;
  kubeVirtVMAddressPersistence?: (typeof VM_ADDRESS_PERSISTENCE)[number];
  /** Seconds a released address stays unassignable. */
  ipCooldownSeconds?: number;
}

export type IPAMConfiguration = Resource<"IPAMConfiguration", IPAMConfigurationSpec>;

const FIELDS = [
  "strictAffinity",
  "maxBlocksPerHost",
  "autoAllocateBlocks",
  "kubeVirtVMAddressPersistence",
  "ipCooldownSeconds",
];

export function validateIPAMConfigurationSpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): void {
  checkKnownFields(spec, FIELDS, path, issues);
  const strict = checkBool(spec, "strictAffinity", path, issues);
  const auto = checkBool(spec, "autoAllocateBlocks", path, issues);
  const max = checkNumber(spec, "maxBlocksPerHost", path, issues, { integer: true, min: 0, max: 2147483647 });
  checkEnum(spec, "kubeVirtVMAddressPersistence", path, VM_ADDRESS_PERSISTENCE, issues);
  checkNumber(spec, "ipCooldownSeconds", path, issues, { integer: true, min: 0, max: 1200 });
  if (max !== undefined && max > 0 && strict !== true) {
    issues.add(
      join(path, "maxBlocksPerHost"),
      "a per-host block cap needs strictAffinity: true (otherwise a full host would borrow past it)",
      max,
    );
  }
  if (auto === false && strict !== true) {
    issues.add(
      join(path, "autoAllocateBlocks"),
      "may be false only with strictAffinity: true (without new blocks a host could only borrow)",
      false,
    );
  }
}

export function ipamConfigurationWithDefaults(resource: AnyResource): AnyResource {
  const out = cloneResource(resource);
  const spec = mutableSpec(out);
  // Both fields are non-omitempty in Calico's struct, so they are always stored.
  if (spec.strictAffinity === undefined) spec.strictAffinity = false;
  if (spec.autoAllocateBlocks === undefined) spec.autoAllocateBlocks = true;
  return out;
}

export const IPAM_CONFIGURATION_KIND: KindDef = {
  kind: "IPAMConfiguration",
  plural: "ipamconfigurations",
  namespaced: false,
  shortNames: ["ipamconfiguration", "ipamconfig", "ipamconfigs"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateIPAMConfigurationSpec(spec, "spec", issues);
  },
  withDefaults: ipamConfigurationWithDefaults,
  nameProblem: (name) => singletonNameProblem(name, false),
};
