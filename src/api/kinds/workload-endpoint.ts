/**
 * WorkloadEndpoint (namespaced): a workload's interface on a host — its addresses, profiles,
 * named ports (reference/calico.md §2.4) — and the name Calico derives from its identity
 * (§7.4). Rules from libcalico's WorkloadEndpointSpec tags and `validateWorkloadEndpointSpec`.
 */
import type { Resource } from "../resource.js";
import {
  checkKnownFields,
  checkNumber,
  checkObject,
  checkString,
  join,
  checkIPValue,
  type Issues,
} from "../check.js";
import { cidrContains, familyBits, type CIDR } from "../net.js";
import type { KindDef } from "./kind.js";
import { checkEndpointPorts, type WorkloadEndpointPort } from "./endpoint-port.js";
import {
  checkIPField,
  checkMACField,
  checkNameField,
  checkNameList,
  checkNetList,
  checkNetText,
  cloneResource,
  forEachObject,
  INTERFACE_NAME,
  INTERFACE_NAME_HINT,
  specOf,
} from "./infra-spec.js";

export interface IPNAT {
  internalIP: string;
  externalIP: string;
  source?: string;
}

export interface QoSControls {
  ingressBandwidth?: number;
  egressBandwidth?: number;
  ingressBurst?: number;
  egressBurst?: number;
  ingressPeakrate?: number;
  egressPeakrate?: number;
  ingressMinburst?: number;
  egressMinburst?: number;
  ingressPacketRate?: number;
  egressPacketRate?: number;
  ingressPacketBurst?: number;
  egressPacketBurst?: number;
  ingressMaxConnections?: number;
  egressMaxConnections?: number;
  dscp?: number | string;
}

export interface WorkloadEndpointSpec {
  orchestrator?: string;
  workload?: string;
  node?: string;
  containerID?: string;
  pod?: string;
  endpoint?: string;
  serviceAccountName?: string;
  /** Each a single address: /32 or /128 (a bare address is read as one). */
  ipNetworks?: string[];
  ipNATs?: IPNAT[];
  ipv4Gateway?: string;
  ipv6Gateway?: string;
  profiles?: string[];
  interfaceName: string;
  mac?: string;
  ports?: WorkloadEndpointPort[];
  allowSpoofedSourcePrefixes?: string[];
  qosControls?: QoSControls;
}

export type WorkloadEndpoint = Resource<"WorkloadEndpoint", WorkloadEndpointSpec>;

// ---- names (reference/calico.md §7.4) ----

export interface WorkloadEndpointIdentity {
  node: string;
  orchestrator: string;
  endpoint: string;
  /** k8s */
  pod?: string;
  /** cni */
  containerID?: string;
  /** every other orchestrator (libnetwork always uses the literal "libnetwork") */
  workload?: string;
}

/** Which identity field the third name segment holds, by orchestrator. */
export function workloadSegmentField(orchestrator: string): "pod" | "containerID" | "workload" {
  return orchestrator === "k8s" ? "pod" : orchestrator === "cni" ? "containerID" : "workload";
}

const escapeSegment = (s: string): string => s.replace(/-/g, "--");

/** Why `s` cannot be a name segment, or undefined if it can. */
function segmentProblem(label: string, s: string | undefined): string | undefined {
  if (s === undefined || s === "") return `${label} is required to build a workload endpoint name`;
  if (s.startsWith("-") || s.endsWith("-")) return `${label} must not start or end with '-'`;
  return undefined;
}

/**
 * `<node>-<orchestrator>-<pod|containerID|workload>-<endpoint>`, each segment with `-` doubled.
 * Throws a TypeError naming the missing or bad identifier.
 */
export function workloadEndpointName(id: WorkloadEndpointIdentity): string {
  const field = workloadSegmentField(id.orchestrator);
  const third = id.orchestrator === "libnetwork" ? "libnetwork" : id[field];
  const segs: [string, string | undefined][] = [
    ["node", id.node],
    ["orchestrator", id.orchestrator],
    [field, third],
    ["endpoint", id.endpoint],
  ];
  for (const [label, s] of segs) {
    const problem = segmentProblem(label, s);
    if (problem !== undefined) throw new TypeError(problem);
  }
  return segs.map(([, s]) => escapeSegment(s as string)).join("-");
}

/** Split a name built by `workloadEndpointName` back into its identity; undefined if it is not one. */
export function parseWorkloadEndpointName(name: string): WorkloadEndpointIdentity | undefined {
  const segs: string[] = [];
  let cur = "";
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c !== "-") cur += c;
    else if (name[i + 1] === "-") {
      cur += "-";
      i++;
    } else {
      segs.push(cur);
      cur = "";
    }
  }
  segs.push(cur);
  if (segs.length !== 4 || segs.some((s) => segmentProblem("segment", s) !== undefined)) return undefined;
  const [node, orchestrator, third, endpoint] = segs as [string, string, string, string];
  const id: WorkloadEndpointIdentity = { node, orchestrator, endpoint };
  if (orchestrator === "libnetwork") {
    if (third !== "libnetwork") return undefined;
    id.workload = "libnetwork";
  } else id[workloadSegmentField(orchestrator)] = third;
  return id;
}

// ---- validation ----

const FIELDS = [
  "orchestrator",
  "workload",
  "node",
  "containerID",
  "pod",
  "endpoint",
  "serviceAccountName",
  "ipNetworks",
  "ipNATs",
  "ipv4Gateway",
  "ipv6Gateway",
  "profiles",
  "interfaceName",
  "mac",
  "ports",
  "allowSpoofedSourcePrefixes",
  "qosControls",
];

const QOS_NUMBERS = [
  "ingressBandwidth",
  "egressBandwidth",
  "ingressBurst",
  "egressBurst",
  "ingressPeakrate",
  "egressPeakrate",
  "ingressMinburst",
  "egressMinburst",
  "ingressPacketRate",
  "egressPacketRate",
  "ingressPacketBurst",
  "egressPacketBurst",
  "ingressMaxConnections",
  "egressMaxConnections",
];

const CONTAINER_ID = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

export function validateWorkloadEndpointSpec(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): void {
  checkKnownFields(spec, FIELDS, path, issues);
  for (const f of ["orchestrator", "workload", "node", "pod", "endpoint", "serviceAccountName"]) {
    checkNameField(spec, f, path, issues);
  }
  const cid = checkString(spec, "containerID", path, issues);
  if (cid !== undefined && cid !== "" && !CONTAINER_ID.test(cid)) {
    issues.add(
      join(path, "containerID"),
      "must be letters, digits and '-', starting and ending alphanumeric",
      cid,
    );
  }
  const iface = checkString(spec, "interfaceName", path, issues, { required: true });
  if (iface !== undefined && !INTERFACE_NAME.test(iface)) {
    issues.add(join(path, "interfaceName"), `must be ${INTERFACE_NAME_HINT}`, iface);
  }
  checkMACField(spec, "mac", path, issues);
  checkNameList(spec, "profiles", path, issues);
  checkIPField(spec, "ipv4Gateway", path, issues, 4);
  checkIPField(spec, "ipv6Gateway", path, issues, 6);

  const nets: CIDR[] = [];
  const rawNets = spec.ipNetworks;
  if (rawNets !== undefined && rawNets !== null) {
    const np = join(path, "ipNetworks");
    if (!Array.isArray(rawNets)) issues.add(np, "must be a list of addresses (/32 or /128)", rawNets);
    else
      rawNets.forEach((n: unknown, i) => {
        const c = checkNetText(n, join(np, i), issues, { masked: true });
        if (c === undefined) return;
        if (c.prefix !== familyBits(c.family)) {
          issues.add(join(np, i), `must be a single address (/${familyBits(c.family)}), not a range`, n);
        } else nets.push(c);
      });
  }
  forEachObject(spec, "ipNATs", path, issues, (nat, p) => {
    checkKnownFields(nat, ["internalIP", "externalIP", "source"], p, issues);
    checkString(nat, "source", p, issues);
    const internal = checkIPValue(nat.internalIP, join(p, "internalIP"), issues);
    const external = checkIPValue(nat.externalIP, join(p, "externalIP"), issues);
    if (internal !== undefined && external !== undefined && internal.family !== external.family) {
      issues.add(
        join(p, "externalIP"),
        `must be an IPv${internal.family} address like internalIP`,
        nat.externalIP,
      );
    }
    if (internal !== undefined) {
      const host: CIDR = {
        family: internal.family,
        addr: internal.value,
        prefix: familyBits(internal.family),
      };
      if (!nets.some((n) => cidrContains(n, host))) {
        issues.add(join(p, "internalIP"), "must be one of the endpoint's ipNetworks", nat.internalIP);
      }
    }
  });
  checkNetList(spec, "allowSpoofedSourcePrefixes", path, issues);
  checkEndpointPorts(spec, "ports", path, issues, "workload");
  const qos = checkObject(spec, "qosControls", path, issues);
  if (qos !== undefined) {
    const qp = join(path, "qosControls");
    checkKnownFields(qos, [...QOS_NUMBERS, "dscp"], qp, issues);
    for (const f of QOS_NUMBERS) checkNumber(qos, f, qp, issues, { integer: true, min: 0 });
    const dscp = qos.dscp;
    if (dscp !== undefined && typeof dscp !== "string")
      checkNumber(qos, "dscp", qp, issues, { integer: true, min: 0, max: 63 });
  }
}

/**
 * The name must be the one Calico derives from the spec's identifiers (clientv3 rejects a
 * WorkloadEndpoint whose name does not match them).
 */
export function validateWorkloadEndpointName(
  name: string,
  spec: Record<string, unknown>,
  issues: Issues,
): void {
  const str = (k: string): string | undefined => {
    const v = spec[k];
    return typeof v === "string" ? v : undefined;
  };
  const orchestrator = str("orchestrator");
  const missing = ["node", "orchestrator", "endpoint"].filter((k) => str(k) === undefined || str(k) === "");
  if (orchestrator !== undefined && orchestrator !== "" && orchestrator !== "libnetwork") {
    const field = workloadSegmentField(orchestrator);
    if (str(field) === undefined || str(field) === "") missing.push(field);
  }
  for (const f of missing) {
    if (spec[f] === undefined || spec[f] === null || spec[f] === "") {
      issues.add(join("spec", f), `is required (it forms the endpoint's name, ${NAME_FORM})`);
    }
  }
  if (missing.length > 0) return;
  let expected: string;
  try {
    const id: WorkloadEndpointIdentity = {
      node: str("node") as string,
      orchestrator: orchestrator as string,
      endpoint: str("endpoint") as string,
    };
    const field = workloadSegmentField(id.orchestrator);
    const third = str(field);
    if (third !== undefined) id[field] = third;
    expected = workloadEndpointName(id);
  } catch (err) {
    issues.add("spec", err instanceof Error ? err.message : String(err));
    return;
  }
  if (name !== expected) {
    issues.add("metadata.name", `must be "${expected}" (${NAME_FORM}, with each '-' doubled)`, name);
  }
}

const NAME_FORM = "<node>-<orchestrator>-<pod|containerID|workload>-<endpoint>";

export const WORKLOAD_ENDPOINT_KIND: KindDef = {
  kind: "WorkloadEndpoint",
  plural: "workloadendpoints",
  namespaced: true,
  shortNames: ["workloadendpoint", "wep", "weps"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec === undefined) return;
    validateWorkloadEndpointSpec(spec, "spec", issues);
    validateWorkloadEndpointName(resource.metadata.name, spec, issues);
  },
  withDefaults: cloneResource,
};
