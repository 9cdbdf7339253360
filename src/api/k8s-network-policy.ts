/**
 * Kubernetes `networking.k8s.io/v1` NetworkPolicy → the Calico NetworkPolicy Calico itself
 * derives from it (libcalico-go `conversion.K8sNetworkPolicyToCalico`, reference/calico.md
 * §1.2): name `knp.default.<name>`, tier `default`, order 1000, the pod selector ANDed with
 * `projectcalico.org/orchestrator == 'k8s'`, one Allow rule per (protocol, peer) pair.
 *
 * The input is checked the way the Kubernetes API server would check it first (peer shape,
 * ipBlock.except inside cidr, ports, label selectors), with paths relative to the k8s object.
 * The API server's defaulting is applied too: ports default to TCP, and a policy without
 * `policyTypes` gets [Ingress] plus Egress when it has egress rules.
 */
import {
  checkArray,
  checkKnownFields,
  checkObject,
  isDNS1123Label,
  isDNS1123Subdomain,
  isRecord,
  join,
  labelKeyProblem,
  labelValueProblem,
  DNS1123_LABEL_HINT,
  DNS1123_SUBDOMAIN_HINT,
  Issues,
} from "./check.js";
import type { NetworkPolicySpec } from "./kinds/network-policy.js";
import {
  normalizeRule,
  parsePort,
  portNameProblem,
  type EntityRule,
  type Port,
  type PolicyType,
  type Rule,
} from "./kinds/rule.js";
import { cidrContains, formatCIDR, networkOf, parseCIDR, type CIDR } from "./net.js";
import { API_VERSION, type AnyResource } from "./resource.js";
import type { ValidationIssue } from "./validation.js";

export const K8S_NETWORKING_API_VERSION = "networking.k8s.io/v1";
export const K8S_POLICY_NAME_PREFIX = "knp.default.";
/** Calico inserts every converted Kubernetes policy at this order in the default tier. */
export const K8S_POLICY_ORDER = 1000;
export const ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator";
export const K8S_POLICY_SPEC_FIELDS = ["podSelector", "policyTypes", "ingress", "egress"] as const;

// ---- Kubernetes types (the subset a NetworkPolicy uses) ----

export interface K8sLabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface K8sLabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: K8sLabelSelectorRequirement[];
}

export interface K8sIPBlock {
  cidr: string;
  except?: string[];
}

export interface K8sNetworkPolicyPeer {
  podSelector?: K8sLabelSelector;
  namespaceSelector?: K8sLabelSelector;
  ipBlock?: K8sIPBlock;
}

export interface K8sNetworkPolicyPort {
  protocol?: "TCP" | "UDP" | "SCTP";
  port?: number | string;
  endPort?: number;
}

export interface K8sNetworkPolicySpec {
  podSelector?: K8sLabelSelector;
  policyTypes?: PolicyType[];
  ingress?: { from?: K8sNetworkPolicyPeer[]; ports?: K8sNetworkPolicyPort[] }[];
  egress?: { to?: K8sNetworkPolicyPeer[]; ports?: K8sNetworkPolicyPort[] }[];
}

export interface K8sNetworkPolicy {
  apiVersion: typeof K8S_NETWORKING_API_VERSION;
  kind: "NetworkPolicy";
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  spec?: K8sNetworkPolicySpec;
}

export interface ConversionResult {
  /** The Calico NetworkPolicy; present only when there were no issues. */
  resource?: AnyResource;
  issues: ValidationIssue[];
}

// ---- selectors ----

/**
 * Calico's `k8sSelectorToCalico`: matchLabels (sorted by key) then matchExpressions, joined
 * with `&&`. A pod selector always carries the orchestrator clause; an empty namespace
 * selector means every namespace (`all()`); an absent one is the empty string.
 */
export function k8sSelectorToCalico(sel: K8sLabelSelector | undefined, kind: "pod" | "namespace"): string {
  const parts: string[] = kind === "pod" ? [`${ORCHESTRATOR_LABEL} == 'k8s'`] : [];
  if (sel === undefined) return parts.join(" && ");
  const labels = sel.matchLabels ?? {};
  const exprs = sel.matchExpressions ?? [];
  if (kind === "namespace" && Object.keys(labels).length === 0 && exprs.length === 0) return "all()";
  for (const k of Object.keys(labels).sort()) parts.push(`${k} == '${labels[k]}'`);
  for (const e of exprs) {
    const values = (e.values ?? []).join("', '");
    switch (e.operator) {
      case "In":
        parts.push(`${e.key} in { '${values}' }`);
        break;
      case "NotIn":
        parts.push(`${e.key} not in { '${values}' }`);
        break;
      case "Exists":
        parts.push(`has(${e.key})`);
        break;
      case "DoesNotExist":
        parts.push(`! has(${e.key})`);
        break;
    }
  }
  return parts.join(" && ");
}

// ---- ports ----

type CalicoPort = { kind: "range"; min: number; max: number } | { kind: "named"; name: string };

const portValue = (p: CalicoPort): Port =>
  p.kind === "named" ? p.name : p.min === p.max ? p.min : `${p.min}:${p.max}`;

/**
 * Calico's `SimplifyPorts`: named ports pass through in order, numeric ports and ranges are
 * merged into the fewest sorted ranges after them. Fewer than two numeric ports: unchanged.
 */
export function simplifyPorts(ports: readonly CalicoPort[]): CalicoPort[] {
  if (ports.length <= 1) return [...ports];
  const out: CalicoPort[] = [];
  const numbers: number[] = [];
  for (const p of ports) {
    if (p.kind === "named") out.push(p);
    else for (let i = p.min; i <= p.max; i++) numbers.push(i);
  }
  if (numbers.length <= 1) return [...ports];
  numbers.sort((a, b) => a - b);
  let i = 0;
  while (i < numbers.length) {
    const first = numbers[i] ?? 0;
    let last = first;
    i++;
    while (i < numbers.length && (numbers[i] ?? 0) <= last + 1) {
      last = numbers[i] ?? last;
      i++;
    }
    out.push({ kind: "range", min: first, max: last });
  }
  return out;
}

// ---- input checks (what the Kubernetes API server enforces) ----

const K8S_PROTOCOLS = ["TCP", "UDP", "SCTP"] as const;
const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

function checkLabelSelector(v: unknown, path: string, issues: Issues): K8sLabelSelector | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) {
    issues.add(path, "must be a label selector object (matchLabels / matchExpressions)", v);
    return undefined;
  }
  checkKnownFields(v, ["matchLabels", "matchExpressions"], path, issues);
  const out: K8sLabelSelector = {};
  const ml = checkObject(v, "matchLabels", path, issues);
  if (ml !== undefined) {
    const labels: Record<string, string> = {};
    for (const [k, val] of Object.entries(ml)) {
      const p = `${join(path, "matchLabels")}[${JSON.stringify(k)}]`;
      const kp = labelKeyProblem(k);
      if (kp !== undefined) issues.add(p, kp, k);
      if (typeof val !== "string") issues.add(p, "label value must be a string", val);
      else {
        const vp = labelValueProblem(val);
        if (vp !== undefined) issues.add(p, vp, val);
        labels[k] = val;
      }
    }
    out.matchLabels = labels;
  }
  const me = checkArray(v, "matchExpressions", path, issues);
  if (me !== undefined) {
    const exprs: K8sLabelSelectorRequirement[] = [];
    me.forEach((e, i) => {
      const p = join(join(path, "matchExpressions"), i);
      if (!isRecord(e)) {
        issues.add(p, "must be an object with key, operator and values", e);
        return;
      }
      checkKnownFields(e, ["key", "operator", "values"], p, issues);
      const key = e.key;
      if (typeof key !== "string") {
        issues.add(join(p, "key"), key === undefined ? "is required" : "must be a string", key);
        return;
      }
      const kp = labelKeyProblem(key);
      if (kp !== undefined) issues.add(join(p, "key"), kp, key);
      const op = e.operator;
      if (typeof op !== "string" || !(OPERATORS as readonly string[]).includes(op)) {
        issues.add(join(p, "operator"), `must be one of ${OPERATORS.join(", ")}`, op);
        return;
      }
      const values: string[] = [];
      const vals = checkArray(e, "values", p, issues);
      vals?.forEach((val, j) => {
        const vp = join(join(p, "values"), j);
        if (typeof val !== "string") issues.add(vp, "must be a string", val);
        else {
          const problem = labelValueProblem(val);
          if (problem !== undefined) issues.add(vp, problem, val);
          values.push(val);
        }
      });
      if ((op === "In" || op === "NotIn") && values.length === 0) {
        issues.add(join(p, "values"), `must be non-empty when operator is ${op}`);
      }
      if ((op === "Exists" || op === "DoesNotExist") && (vals?.length ?? 0) > 0) {
        issues.add(join(p, "values"), `must be empty when operator is ${op}`, vals);
      }
      const req: K8sLabelSelectorRequirement = {
        key,
        operator: op as K8sLabelSelectorRequirement["operator"],
      };
      if (values.length > 0) req.values = values;
      exprs.push(req);
    });
    out.matchExpressions = exprs;
  }
  return out;
}

interface PeerFields {
  selector?: string;
  namespaceSelector?: string;
  nets?: string[];
  notNets?: string[];
}

function cidrOf(v: unknown, path: string, issues: Issues): CIDR | undefined {
  if (typeof v !== "string") {
    issues.add(path, v === undefined ? "is required" : "must be a CIDR string", v);
    return undefined;
  }
  const c = parseCIDR(v);
  if (c === undefined) issues.add(path, "must be a CIDR such as 198.19.0.0/16 or fd00:19::/48", v);
  return c;
}

function convertPeer(v: unknown, path: string, issues: Issues): PeerFields | undefined {
  if (!isRecord(v)) {
    issues.add(path, "must be a peer object (podSelector / namespaceSelector / ipBlock)", v);
    return undefined;
  }
  checkKnownFields(v, ["podSelector", "namespaceSelector", "ipBlock"], path, issues);
  const hasPod = v.podSelector !== undefined && v.podSelector !== null;
  const hasNs = v.namespaceSelector !== undefined && v.namespaceSelector !== null;
  const hasBlock = v.ipBlock !== undefined && v.ipBlock !== null;
  if (!hasPod && !hasNs && !hasBlock) {
    issues.add(path, "must specify a peer: podSelector and/or namespaceSelector, or ipBlock", v);
    return undefined;
  }
  if (hasBlock) {
    if (hasPod || hasNs) {
      issues.add(path, "ipBlock may not be combined with podSelector or namespaceSelector", v);
      return undefined;
    }
    const bp = join(path, "ipBlock");
    const block = v.ipBlock;
    if (!isRecord(block)) {
      issues.add(bp, "must be an object with cidr and optionally except", block);
      return undefined;
    }
    checkKnownFields(block, ["cidr", "except"], bp, issues);
    const cidr = cidrOf(block.cidr, join(bp, "cidr"), issues);
    const notNets: string[] = [];
    checkArray(block, "except", bp, issues)?.forEach((e, i) => {
      const ep = join(join(bp, "except"), i);
      const c = cidrOf(e, ep, issues);
      if (c === undefined || cidr === undefined) return;
      // k8s: each except must be a strict subset of cidr (and so of the same family).
      if (!cidrContains(cidr, c) || c.prefix <= cidr.prefix) {
        issues.add(ep, `must be a strict subset of ipBlock.cidr ${String(block.cidr)}`, e);
        return;
      }
      notNets.push(formatCIDR(networkOf(c)));
    });
    if (cidr === undefined) return undefined;
    // Calico stores the network address (cnet.ParseCIDR masks it).
    const out: PeerFields = { nets: [formatCIDR(networkOf(cidr))] };
    if (notNets.length > 0) out.notNets = notNets;
    return out;
  }
  const pod = checkLabelSelector(v.podSelector, join(path, "podSelector"), issues);
  const ns = checkLabelSelector(v.namespaceSelector, join(path, "namespaceSelector"), issues);
  const out: PeerFields = { selector: k8sSelectorToCalico(pod, "pod") };
  const nsSel = k8sSelectorToCalico(ns, "namespace");
  if (nsSel !== "") out.namespaceSelector = nsSel;
  return out;
}

interface PortEntry {
  protocol: string;
  /** undefined = every port of the protocol */
  port?: CalicoPort;
}

function convertPort(v: unknown, path: string, issues: Issues): PortEntry | undefined {
  if (!isRecord(v)) {
    issues.add(path, "must be a port object (protocol / port / endPort)", v);
    return undefined;
  }
  checkKnownFields(v, ["protocol", "port", "endPort"], path, issues);
  let protocol = "TCP"; // the Kubernetes default (NetworkPolicyPort.protocol)
  if (v.protocol !== undefined && v.protocol !== null) {
    if (typeof v.protocol !== "string" || !(K8S_PROTOCOLS as readonly string[]).includes(v.protocol)) {
      issues.add(join(path, "protocol"), `must be one of ${K8S_PROTOCOLS.join(", ")}`, v.protocol);
      return undefined;
    }
    protocol = v.protocol;
  }
  const port = v.port;
  const endPort = v.endPort;
  const hasEnd = endPort !== undefined && endPort !== null;
  if (port === undefined || port === null) {
    if (hasEnd) issues.add(join(path, "endPort"), "requires port", endPort);
    return { protocol };
  }
  if (typeof port === "number") {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      issues.add(join(path, "port"), "must be a port number from 1 to 65535 or a port name", port);
      return undefined;
    }
    if (!hasEnd) return { protocol, port: { kind: "range", min: port, max: port } };
    if (typeof endPort !== "number" || !Number.isInteger(endPort) || endPort < port || endPort > 65535) {
      issues.add(join(path, "endPort"), `must be an integer from port (${port}) to 65535`, endPort);
      return undefined;
    }
    return { protocol, port: { kind: "range", min: port, max: endPort } };
  }
  if (typeof port === "string") {
    const problem = portNameProblem(port);
    if (problem !== undefined) {
      issues.add(
        join(path, "port"),
        `must be a port number from 1 to 65535 or a port name; ${problem}`,
        port,
      );
      return undefined;
    }
    if (hasEnd) {
      issues.add(join(path, "endPort"), "may only be used with a numeric port", endPort);
      return undefined;
    }
    const parsed = parsePort(port);
    return parsed.ok && parsed.kind === "named"
      ? { protocol, port: { kind: "named", name: port } }
      : undefined;
  }
  issues.add(join(path, "port"), "must be a port number from 1 to 65535 or a port name", port);
  return undefined;
}

/**
 * Calico's `k8sRuleToCalico`: one Allow rule per protocol (sorted) per peer; no ports means
 * any protocol, no peers means any peer.
 */
function convertRule(
  v: unknown,
  path: string,
  peerField: "from" | "to",
  ingress: boolean,
  issues: Issues,
): Rule[] {
  if (!isRecord(v)) {
    issues.add(path, `must be a rule object (${peerField} / ports)`, v);
    return [];
  }
  checkKnownFields(v, [peerField, "ports"], path, issues);
  const peers: (PeerFields | undefined)[] = [];
  checkArray(v, peerField, path, issues)?.forEach((p, i) => {
    const f = convertPeer(p, join(join(path, peerField), i), issues);
    if (f !== undefined) peers.push(f);
  });
  if (peers.length === 0) peers.push(undefined);

  const entries: PortEntry[] = [];
  checkArray(v, "ports", path, issues)?.forEach((p, i) => {
    const e = convertPort(p, join(join(path, "ports"), i), issues);
    if (e !== undefined) entries.push(e);
  });

  // protocol → ports; null = all ports of that protocol; "" = any protocol.
  const byProtocol = new Map<string, CalicoPort[] | null>();
  if (entries.length === 0) byProtocol.set("", null);
  for (const e of entries) {
    if (e.port === undefined) byProtocol.set(e.protocol, null);
    else {
      const existing = byProtocol.get(e.protocol);
      if (existing === undefined) byProtocol.set(e.protocol, [e.port]);
      else if (existing !== null) existing.push(e.port);
    }
  }

  const rules: Rule[] = [];
  for (const protocol of [...byProtocol.keys()].sort()) {
    const list = byProtocol.get(protocol);
    const ports = list === null || list === undefined ? undefined : simplifyPorts(list).map(portValue);
    for (const peer of peers) {
      const entity: EntityRule = {};
      if (peer?.nets !== undefined) entity.nets = peer.nets;
      if (peer?.selector !== undefined) entity.selector = peer.selector;
      if (peer?.namespaceSelector !== undefined) entity.namespaceSelector = peer.namespaceSelector;
      if (peer?.notNets !== undefined) entity.notNets = peer.notNets;
      const portsEntity: EntityRule = ports === undefined ? {} : { ports };
      const rule: Rule = { action: "Allow" };
      if (protocol !== "") rule.protocol = protocol as Rule["protocol"] & string;
      if (ingress) {
        rule.source = entity;
        rule.destination = portsEntity;
      } else {
        rule.destination = { ...portsEntity, ...entity };
      }
      rules.push(normalizeRule(rule));
    }
  }
  return rules;
}

/**
 * Convert (and check) a Kubernetes NetworkPolicy spec into a Calico NetworkPolicySpec.
 * `path` prefixes issue paths (`spec`). Also used to validate StagedKubernetesNetworkPolicy.
 */
export function convertK8sNetworkPolicySpec(
  spec: Record<string, unknown>,
  _namespace: string,
  path: string,
  issues: Issues,
): NetworkPolicySpec {
  checkKnownFields(spec, K8S_POLICY_SPEC_FIELDS, path, issues);
  const podSelector = checkLabelSelector(spec.podSelector, join(path, "podSelector"), issues);

  const ingress: Rule[] = [];
  const ingressList = checkArray(spec, "ingress", path, issues);
  ingressList?.forEach((r, i) =>
    ingress.push(...convertRule(r, join(join(path, "ingress"), i), "from", true, issues)),
  );
  const egress: Rule[] = [];
  const egressList = checkArray(spec, "egress", path, issues);
  egressList?.forEach((r, i) =>
    egress.push(...convertRule(r, join(join(path, "egress"), i), "to", false, issues)),
  );

  let policyTypes: string[] = [];
  const pt = checkArray(spec, "policyTypes", path, issues, { maxItems: 2 });
  const seen = new Set<string>();
  pt?.forEach((t, i) => {
    const p = join(join(path, "policyTypes"), i);
    if (t !== "Ingress" && t !== "Egress") issues.add(p, "must be one of Ingress, Egress", t);
    else if (seen.has(t)) issues.add(p, `'${t}' is listed more than once`, t);
    else seen.add(t);
  });
  policyTypes = [...seen];
  // The API server's default (SetDefaults_NetworkPolicy): Ingress, plus Egress with egress rules.
  if (policyTypes.length === 0) {
    policyTypes = ["Ingress"];
    if ((egressList?.length ?? 0) > 0) policyTypes.push("Egress");
  }
  // Calico: Ingress first, then Egress; none ⇒ Ingress. Egress rules without type Egress are
  // kept but never applied (Calico logs a warning).
  const types: PolicyType[] = [];
  if (policyTypes.includes("Ingress")) types.push("Ingress");
  if (policyTypes.includes("Egress")) types.push("Egress");
  if (types.length === 0) types.push("Ingress");

  const out: NetworkPolicySpec = {
    tier: "default",
    order: K8S_POLICY_ORDER,
    selector: k8sSelectorToCalico(podSelector ?? {}, "pod"),
  };
  if (ingress.length > 0) out.ingress = ingress;
  if (egress.length > 0) out.egress = egress;
  out.types = types;
  return out;
}

/** Convert a whole `networking.k8s.io/v1` NetworkPolicy document. */
export function convertK8sNetworkPolicy(doc: unknown): ConversionResult {
  const issues = new Issues();
  if (!isRecord(doc)) {
    issues.add("", "must be a NetworkPolicy object", doc);
    return { issues: issues.list };
  }
  checkKnownFields(doc, ["apiVersion", "kind", "metadata", "spec", "status"], "", issues);
  if (doc.apiVersion !== K8S_NETWORKING_API_VERSION) {
    issues.add("apiVersion", `must be ${K8S_NETWORKING_API_VERSION}`, doc.apiVersion);
  }
  if (doc.kind !== "NetworkPolicy") issues.add("kind", "must be NetworkPolicy", doc.kind);

  let name: string | undefined;
  let namespace = "default";
  const md = checkObject(doc, "metadata", "", issues, { required: true });
  if (md !== undefined) {
    if (typeof md.name !== "string" || md.name === "") {
      issues.add(
        "metadata.name",
        md.name === undefined ? "is required" : "must be a non-empty string",
        md.name,
      );
    } else if (!isDNS1123Subdomain(md.name)) {
      issues.add("metadata.name", `must be ${DNS1123_SUBDOMAIN_HINT}`, md.name);
    } else if (K8S_POLICY_NAME_PREFIX.length + md.name.length > 253) {
      issues.add(
        "metadata.name",
        `must be at most ${253 - K8S_POLICY_NAME_PREFIX.length} characters (Calico prefixes ${K8S_POLICY_NAME_PREFIX})`,
        md.name,
      );
    } else name = md.name;
    if (md.namespace !== undefined && md.namespace !== null) {
      if (typeof md.namespace !== "string" || !isDNS1123Label(md.namespace)) {
        issues.add("metadata.namespace", `must be a namespace name: ${DNS1123_LABEL_HINT}`, md.namespace);
      } else namespace = md.namespace;
    }
  }

  const specValue = doc.spec ?? {};
  let spec: NetworkPolicySpec | undefined;
  if (!isRecord(specValue)) issues.add("spec", "must be an object", specValue);
  else spec = convertK8sNetworkPolicySpec(specValue, namespace, "spec", issues);

  if (!issues.ok || name === undefined || spec === undefined) return { issues: issues.list };
  const resource: AnyResource = {
    apiVersion: API_VERSION,
    kind: "NetworkPolicy",
    metadata: { name: K8S_POLICY_NAME_PREFIX + name, namespace },
    spec: spec as Record<string, unknown>,
  };
  return { resource, issues: [] };
}
