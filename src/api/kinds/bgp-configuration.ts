/**
 * BGPConfiguration (cluster; `default` plus per-node `node.<name>`): AS number, mesh, service
 * advertisement and communities (reference/calico.md §2.14). Rules from
 * `validateBGPConfigurationSpec` and the field tags.
 */
import type { AnyResource, Resource } from "../resource.js";
import {
  checkBool,
  checkEnum,
  checkKnownFields,
  checkNumber,
  checkStringValue,
  isRecord,
  join,
  type Issues,
} from "../check.js";
import { checkDuration } from "../duration.js";
import type { KindDef } from "./kind.js";
import { checkASNumber, normaliseASField } from "./as-number.js";
import { communityProblem, isCommunityValue } from "./bgp-community.js";
import {
  checkIPField,
  checkNameField,
  checkNetField,
  checkPassword,
  cloneResource,
  forEachObject,
  singletonNameProblem,
  specOf,
} from "./infra-spec.js";

export interface Community {
  name: string;
  value: string;
}

export interface PrefixAdvertisement {
  cidr: string;
  /** Names from `communities`, or literal aa:nn / aa:nn:mm values. */
  communities: string[];
}

export interface SecretKeyRef {
  secretKeyRef: { name: string; key: string; optional?: boolean };
}

export interface BGPConfigurationSpec {
  logSeverityScreen?: string;
  /** Default true. */
  nodeToNodeMeshEnabled?: boolean;
  /** Default 64512. */
  asNumber?: number | string;
  serviceClusterIPs?: { cidr: string }[];
  serviceExternalIPs?: { cidr: string }[];
  serviceLoadBalancerIPs?: { cidr: string }[];
  serviceLoadBalancerAggregation?: "Enabled" | "Disabled";
  communities?: Community[];
  prefixAdvertisements?: PrefixAdvertisement[];
  /** Default 179. */
  listenPort?: number;
  bindMode?: "None" | "NodeIP";
  nodeMeshPassword?: SecretKeyRef;
  nodeMeshMaxRestartTime?: string;
  ignoredInterfaces?: string[];
  localWorkloadPeeringIPV4?: string;
  localWorkloadPeeringIPV6?: string;
  programClusterRoutes?: string;
  ipv4NormalRoutePriority?: number;
  ipv6NormalRoutePriority?: number;
}

export type BGPConfiguration = Resource<"BGPConfiguration", BGPConfigurationSpec>;

export const DEFAULT_AS_NUMBER = 64512;
export const DEFAULT_BGP_PORT = 179;

const FIELDS = [
  "logSeverityScreen",
  "nodeToNodeMeshEnabled",
  "asNumber",
  "serviceClusterIPs",
  "serviceExternalIPs",
  "serviceLoadBalancerIPs",
  "serviceLoadBalancerAggregation",
  "communities",
  "prefixAdvertisements",
  "listenPort",
  "bindMode",
  "nodeMeshPassword",
  "nodeMeshMaxRestartTime",
  "ignoredInterfaces",
  "localWorkloadPeeringIPV4",
  "localWorkloadPeeringIPV6",
  "programClusterRoutes",
  "ipv4NormalRoutePriority",
  "ipv6NormalRoutePriority",
];

const LOG_LEVELS = ["Trace", "Debug", "Info", "Warning", "Error", "Fatal"] as const;
// BIRD interface patterns: a name or glob, never "*" alone (that would exclude every interface).
const IGNORED_INTERFACE = /^[a-zA-Z0-9_.*-]{1,15}$/;

export function validateBGPConfigurationSpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): void {
  checkKnownFields(spec, FIELDS, path, issues);
  checkEnum(spec, "logSeverityScreen", path, LOG_LEVELS, issues);
  const mesh = checkBool(spec, "nodeToNodeMeshEnabled", path, issues);
  checkASNumber(spec, "asNumber", path, issues);
  for (const f of ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"]) {
    forEachObject(spec, f, path, issues, (block, p) => {
      checkKnownFields(block, ["cidr"], p, issues);
      checkNetField(block, "cidr", p, issues, { masked: true });
    });
  }
  checkEnum(spec, "serviceLoadBalancerAggregation", path, ["Enabled", "Disabled"], issues);
  checkNumber(spec, "listenPort", path, issues, { integer: true, min: 1, max: 65535 });
  checkEnum(spec, "bindMode", path, ["None", "NodeIP"], issues);
  checkPassword(spec, "nodeMeshPassword", path, issues);
  checkDuration(spec, "nodeMeshMaxRestartTime", path, issues);
  if (mesh === false) {
    if (spec.nodeMeshPassword !== undefined && spec.nodeMeshPassword !== null) {
      issues.add(
        join(path, "nodeMeshPassword"),
        "cannot be set when nodeToNodeMeshEnabled is false",
        spec.nodeMeshPassword,
      );
    }
    if (spec.nodeMeshMaxRestartTime !== undefined && spec.nodeMeshMaxRestartTime !== null) {
      issues.add(
        join(path, "nodeMeshMaxRestartTime"),
        "cannot be set when nodeToNodeMeshEnabled is false",
        spec.nodeMeshMaxRestartTime,
      );
    }
  }
  const ignored = spec.ignoredInterfaces;
  if (ignored !== undefined && ignored !== null) {
    const ip = join(path, "ignoredInterfaces");
    if (!Array.isArray(ignored)) issues.add(ip, "must be a list of interface names or globs", ignored);
    else
      ignored.forEach((name: unknown, i) => {
        const s = checkStringValue(name, join(ip, i), issues);
        if (s !== undefined && (s === "*" || !IGNORED_INTERFACE.test(s))) {
          issues.add(
            join(ip, i),
            "must be an interface name or glob of 1-15 characters (a-z, A-Z, 0-9, '_', '.', '-', '*'), not \"*\" alone",
            s,
          );
        }
      });
  }
  checkIPField(spec, "localWorkloadPeeringIPV4", path, issues, 4);
  checkIPField(spec, "localWorkloadPeeringIPV6", path, issues, 6);
  if (spec.programClusterRoutes !== undefined)
    checkStringValue(spec.programClusterRoutes, join(path, "programClusterRoutes"), issues, { minLength: 1 });
  checkNumber(spec, "ipv4NormalRoutePriority", path, issues, { integer: true, min: 1, max: 2147483646 });
  checkNumber(spec, "ipv6NormalRoutePriority", path, issues, { integer: true, min: 1, max: 2147483646 });

  // Communities: each named value must be valid, and every definition must be used by some
  // prefix advertisement (Calico rejects unused ones); advertisements name defined
  // communities or give literal values.
  const defined = new Set<string>();
  const communities = forEachObject(spec, "communities", path, issues, (c, p) => {
    checkKnownFields(c, ["name", "value"], p, issues);
    const name = checkNameField(c, "name", p, issues, { required: true });
    if (name !== undefined && name !== "") {
      if (defined.has(name)) issues.add(join(p, "name"), "is defined more than once", name);
      defined.add(name);
    }
    const value = c.value;
    if (value === undefined || value === null || value === "") issues.add(join(p, "value"), "is required");
    else {
      const s = checkStringValue(value, join(p, "value"), issues);
      const problem = s === undefined ? undefined : communityProblem(s);
      if (problem !== undefined) issues.add(join(p, "value"), problem, value);
    }
  });
  const adverts = forEachObject(spec, "prefixAdvertisements", path, issues, (a, p) => {
    checkKnownFields(a, ["cidr", "communities"], p, issues);
    checkNetField(a, "cidr", p, issues, { required: true, masked: true });
    const list = a.communities;
    const lp = join(p, "communities");
    if (list === undefined || list === null) {
      issues.add(lp, "is required (community names or aa:nn values)");
      return;
    }
    if (!Array.isArray(list)) {
      issues.add(lp, "must be a list of community names or values", list);
      return;
    }
    list.forEach((item: unknown, i) => {
      const s = checkStringValue(item, join(lp, i), issues);
      if (s === undefined) return;
      if (isCommunityValue(s)) {
        const problem = communityProblem(s);
        if (problem !== undefined) issues.add(join(lp, i), problem, s);
      } else if (!defined.has(s)) {
        const names = [...defined];
        issues.add(
          join(lp, i),
          `must be a community defined in spec.communities${names.length > 0 ? ` (${names.join(", ")})` : " (none are)"} or a value aa:nn / aa:nn:mm`,
          s,
        );
      }
    });
  });
  if ((communities?.length ?? 0) > 0 && (adverts?.length ?? 0) === 0) {
    issues.add(
      join(path, "communities"),
      "are defined but not used: add prefixAdvertisements that refer to them",
    );
  }
}

export const BGP_CONFIGURATION_KIND: KindDef = {
  kind: "BGPConfiguration",
  plural: "bgpconfigurations",
  namespaced: false,
  shortNames: ["bgpconfiguration", "bgpconfig", "bgpconfigs"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateBGPConfigurationSpec(spec, "spec", issues);
  },
  withDefaults(resource: AnyResource): AnyResource {
    const out = cloneResource(resource);
    if (isRecord(out.spec)) normaliseASField(out.spec, "asNumber");
    return out;
  },
  nameProblem: (name) => singletonNameProblem(name, true),
};
