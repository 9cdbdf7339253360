/**
 * KubeControllersConfiguration (cluster singleton `default`): which Kubernetes controllers run
 * and how (reference/calico.md §2.18). Field tags from Calico's API types.
 */
import type { AnyResource, Resource } from "../resource.js";
import {
  checkEnum,
  checkKnownFields,
  checkLabels,
  checkNumber,
  checkObject,
  checkStringValue,
  isRecord,
  join,
  type Issues,
} from "../check.js";
import { checkDuration } from "../duration.js";
import { checkSelector } from "../selector-field.js";
import type { KindDef } from "./kind.js";
import {
  checkNameField,
  checkNetList,
  cloneResource,
  forEachObject,
  mutableSpec,
  regexpProblem,
  singletonNameProblem,
  specOf,
} from "./infra-spec.js";

export const CONTROLLER_MODES = ["Enabled", "Disabled"] as const;
export type ControllerMode = (typeof CONTROLLER_MODES)[number];

export interface AutoHostEndpointTemplate {
  generateName?: string;
  interfaceCIDRs?: string[];
  interfacePattern?: string;
  labels?: Record<string, string>;
  nodeSelector?: string;
}

export interface KubeControllersConfigurationSpec {
  logSeverityScreen?: string;
  healthChecks?: ControllerMode;
  etcdV3CompactionPeriod?: string;
  prometheusMetricsPort?: number;
  debugProfilePort?: number;
  controllers: {
    node?: {
      reconcilerPeriod?: string;
      syncLabels?: ControllerMode;
      hostEndpoint?: {
        autoCreate?: ControllerMode;
        createDefaultHostEndpoint?: ControllerMode;
        templates?: AutoHostEndpointTemplate[];
      };
      leakGracePeriod?: string;
    };
    policy?: { reconcilerPeriod?: string };
    workloadEndpoint?: { reconcilerPeriod?: string };
    serviceAccount?: { reconcilerPeriod?: string };
    namespace?: { reconcilerPeriod?: string };
    loadBalancer?: { assignIPs?: "AllServices" | "RequestedServicesOnly" };
    policyMigration?: { enabled?: ControllerMode };
  };
}

export type KubeControllersConfiguration = Resource<
  "KubeControllersConfiguration",
  KubeControllersConfigurationSpec
>;

// The Go validator allows Trace..Fatal; the CRD schema allows None..Panic: accept both.
const LOG_LEVELS = ["None", "Trace", "Debug", "Info", "Warning", "Error", "Fatal", "Panic"] as const;
const RECONCILED = ["policy", "workloadEndpoint", "serviceAccount", "namespace"] as const;

function checkTemplates(he: Record<string, unknown>, path: string, issues: Issues): void {
  forEachObject(he, "templates", path, issues, (t, p) => {
    checkKnownFields(
      t,
      ["generateName", "interfaceCIDRs", "interfacePattern", "labels", "nodeSelector"],
      p,
      issues,
    );
    checkNameField(t, "generateName", p, issues);
    const cidrs = checkNetList(t, "interfaceCIDRs", p, issues);
    const pattern = t.interfacePattern;
    if (pattern !== undefined && pattern !== "") {
      const s = checkStringValue(pattern, join(p, "interfacePattern"), issues);
      const problem = s === undefined ? undefined : regexpProblem(s);
      if (problem !== undefined)
        issues.add(join(p, "interfacePattern"), `must be a valid regular expression (${problem})`, pattern);
    }
    if ((cidrs === undefined || cidrs.length === 0) && (pattern === undefined || pattern === "")) {
      issues.add(p, "needs interfaceCIDRs or interfacePattern (or both)");
    }
    checkLabels(t, "labels", p, issues);
    if (t.nodeSelector !== "") checkSelector(t, "nodeSelector", p, issues, { global: "forbidden" });
  });
}

export function validateKubeControllersConfigurationSpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): void {
  checkKnownFields(
    spec,
    [
      "logSeverityScreen",
      "healthChecks",
      "etcdV3CompactionPeriod",
      "prometheusMetricsPort",
      "controllers",
      "debugProfilePort",
    ],
    path,
    issues,
  );
  checkEnum(spec, "logSeverityScreen", path, LOG_LEVELS, issues);
  checkEnum(spec, "healthChecks", path, CONTROLLER_MODES, issues);
  checkDuration(spec, "etcdV3CompactionPeriod", path, issues);
  checkNumber(spec, "prometheusMetricsPort", path, issues, { integer: true, min: 0, max: 65535 });
  checkNumber(spec, "debugProfilePort", path, issues, { integer: true, min: 0, max: 65535 });
  const controllers = checkObject(spec, "controllers", path, issues);
  if (controllers === undefined) return;
  const cp = join(path, "controllers");
  // Calico's own sample writes `loadbalancer`; Go's JSON decoding matches field names without
  // regard to case, so Calico reads it as loadBalancer. We accept that spelling too.
  checkKnownFields(
    controllers,
    ["node", ...RECONCILED, "loadBalancer", "loadbalancer", "policyMigration"],
    cp,
    issues,
  );
  if (controllers.loadBalancer !== undefined && controllers.loadbalancer !== undefined) {
    issues.add(join(cp, "loadbalancer"), "duplicates loadBalancer; keep one", controllers.loadbalancer);
  }
  const node = checkObject(controllers, "node", cp, issues);
  if (node !== undefined) {
    const np = join(cp, "node");
    checkKnownFields(node, ["reconcilerPeriod", "syncLabels", "hostEndpoint", "leakGracePeriod"], np, issues);
    checkDuration(node, "reconcilerPeriod", np, issues);
    checkDuration(node, "leakGracePeriod", np, issues);
    checkEnum(node, "syncLabels", np, CONTROLLER_MODES, issues);
    const he = checkObject(node, "hostEndpoint", np, issues);
    if (he !== undefined) {
      const hp = join(np, "hostEndpoint");
      checkKnownFields(he, ["autoCreate", "createDefaultHostEndpoint", "templates"], hp, issues);
      checkEnum(he, "autoCreate", hp, CONTROLLER_MODES, issues);
      checkEnum(he, "createDefaultHostEndpoint", hp, CONTROLLER_MODES, issues);
      checkTemplates(he, hp, issues);
    }
  }
  for (const name of RECONCILED) {
    const c = checkObject(controllers, name, cp, issues);
    if (c === undefined) continue;
    checkKnownFields(c, ["reconcilerPeriod"], join(cp, name), issues);
    checkDuration(c, "reconcilerPeriod", join(cp, name), issues);
  }
  for (const name of ["loadBalancer", "loadbalancer"]) {
    const lb = checkObject(controllers, name, cp, issues);
    if (lb === undefined) continue;
    checkKnownFields(lb, ["assignIPs"], join(cp, name), issues);
    checkEnum(lb, "assignIPs", join(cp, name), ["AllServices", "RequestedServicesOnly"], issues);
  }
  const mig = checkObject(controllers, "policyMigration", cp, issues);
  if (mig !== undefined) {
    checkKnownFields(mig, ["enabled"], join(cp, "policyMigration"), issues);
    checkEnum(mig, "enabled", join(cp, "policyMigration"), CONTROLLER_MODES, issues);
  }
}

export function kubeControllersConfigurationWithDefaults(resource: AnyResource): AnyResource {
  const out = cloneResource(resource);
  const spec = mutableSpec(out);
  // `controllers` is not omitempty in Calico's struct, so it is always stored.
  if (spec.controllers === undefined || spec.controllers === null) spec.controllers = {};
  const controllers = spec.controllers;
  if (
    isRecord(controllers) &&
    controllers.loadbalancer !== undefined &&
    controllers.loadBalancer === undefined
  ) {
    controllers.loadBalancer = controllers.loadbalancer;
    delete controllers.loadbalancer;
  }
  return out;
}

export const KUBE_CONTROLLERS_CONFIGURATION_KIND: KindDef = {
  kind: "KubeControllersConfiguration",
  plural: "kubecontrollersconfigurations",
  namespaced: false,
  shortNames: [
    "kubecontrollersconfiguration",
    "kubecontrollersconfig",
    "kubecontrollersconfigs",
    "kcc",
    "kccs",
  ],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateKubeControllersConfigurationSpec(spec, "spec", issues);
  },
  withDefaults: kubeControllersConfigurationWithDefaults,
  nameProblem: (name) => singletonNameProblem(name, false),
};
