/**
 * The scale scenario of issue 5 as datastore resources: 10,000 WorkloadEndpoints over 10
 * nodes (1,000 on the measured node), 50 namespaces with their `kns.` profiles, and 2,000
 * policies — namespaced NetworkPolicies with label selectors and rule selectors (some named
 * ports, some CIDRs, some egress), GlobalNetworkPolicies in two extra tiers and the default
 * tier. Deterministic (seeded), so every run measures the same inputs.
 */
import { hostVethName } from "../src/lab/workload.js";
import { seededRandom } from "./report.js";

const V3 = "projectcalico.org/v3";
type Res = Record<string, unknown>;

export interface ScaleParams {
  endpoints: number;
  localEndpoints: number;
  nodes: number;
  namespaces: number;
  appsPerNamespace: number;
  policies: number;
  globalPolicies: number;
}

export const DEFAULT_SCALE: ScaleParams = {
  endpoints: 10_000,
  localEndpoints: 1_000,
  nodes: 10,
  namespaces: 50,
  appsPerNamespace: 20,
  policies: 2_000,
  globalPolicies: 100,
};

export interface ScaleEndpoint {
  namespace: string;
  name: string;
  node: string;
  iface: string;
  labels: Record<string, string>;
  v4: string;
  v6: string;
}

const ROLES = ["web", "api", "db", "cache"] as const;

export const nsName = (i: number) => `ns-${String(i).padStart(2, "0")}`;
export const appName = (i: number) => `app-${String(i).padStart(2, "0")}`;

/** Endpoint i: 198.19.(i>>8).(i&255) and fd00:19:0:(i>>8)::(i&255+1), inside the lab ranges. */
export function endpointAt(i: number, p: ScaleParams, localNode: string, prefix: string): ScaleEndpoint {
  const ns = nsName(i % p.namespaces);
  const app = appName(Math.floor(i / p.namespaces) % p.appsPerNamespace);
  // The first localEndpoints are this node's (they cover every namespace and app).
  const nodeIdx = i < p.localEndpoints ? 0 : 1 + (i % (p.nodes - 1));
  const node = nodeIdx === 0 ? localNode : `node${nodeIdx}`;
  const name = `${node}-k8s-pod${i}-eth0`;
  return {
    namespace: ns,
    name,
    node,
    iface: hostVethName(`${prefix}${ns}.${name}`),
    labels: {
      app,
      role: ROLES[i % ROLES.length]!,
      env: i % 3 === 0 ? "staging" : "prod",
      version: `v${i % 5}`,
    },
    v4: `198.19.${i >> 8}.${i & 255}`,
    v6: `fd00:19:0:${(i >> 8).toString(16)}::${((i & 255) + 1).toString(16)}`,
  };
}

export function wepResource(e: ScaleEndpoint): Res {
  return {
    apiVersion: V3,
    kind: "WorkloadEndpoint",
    metadata: { namespace: e.namespace, name: e.name, labels: e.labels },
    spec: {
      orchestrator: "k8s",
      node: e.node,
      pod: e.name.split("-k8s-")[1]!.replace(/-eth0$/, ""), // `pod<i>`
      endpoint: "eth0",
      interfaceName: e.iface,
      ipNetworks: [`${e.v4}/32`, `${e.v6}/128`],
      profiles: [`kns.${e.namespace}`],
      ports: [
        { name: "http", protocol: "TCP", port: 8080 },
        { name: "metrics", protocol: "TCP", port: 9090 },
      ],
    },
  };
}

/** Everything but the endpoints: nodes, pool, profiles, tiers, policies. */
export function baseResources(p: ScaleParams, localNode: string): Res[] {
  const out: Res[] = [];
  for (let n = 0; n < p.nodes; n++)
    out.push({
      apiVersion: V3,
      kind: "Node",
      metadata: { name: n === 0 ? localNode : `node${n}` },
      spec: { bgp: { ipv4Address: `198.18.0.${n + 1}/24` } },
    });
  out.push({
    apiVersion: V3,
    kind: "IPPool",
    metadata: { name: "bench-v4" },
    spec: { cidr: "198.19.0.0/16", natOutgoing: true },
  });
  out.push({
    apiVersion: V3,
    kind: "IPPool",
    metadata: { name: "bench-v6" },
    spec: { cidr: "fd00:19::/48" },
  });
  for (let n = 0; n < p.namespaces; n++) {
    const ns = nsName(n);
    out.push({
      apiVersion: V3,
      kind: "Profile",
      metadata: { name: `kns.${ns}` },
      spec: {
        ingress: [{ action: "Allow" }],
        egress: [{ action: "Allow" }],
        labelsToApply: { "pcns.projectcalico.org/name": ns, "pcns.team": `team-${n % 5}` },
      },
    });
  }
  out.push({ apiVersion: V3, kind: "Tier", metadata: { name: "security" }, spec: { order: 100 } });
  out.push({ apiVersion: V3, kind: "Tier", metadata: { name: "platform" }, spec: { order: 200 } });
  out.push(...policies(p));
  return out;
}

function policies(p: ScaleParams): Res[] {
  const rnd = seededRandom(5);
  const pick = (n: number) => Math.floor(rnd() * n);
  const out: Res[] = [];
  for (let g = 0; g < p.globalPolicies; g++) {
    const tier = g % 4 === 0 ? "security" : g % 4 === 1 ? "platform" : "default";
    const name = tier === "default" ? `gnp-${g}` : `${tier}.gnp-${g}`;
    const role = ROLES[g % ROLES.length]!;
    const ingress =
      tier === "security"
        ? [
            { action: "Deny", protocol: "TCP", source: { nets: [`198.18.${g % 256}.0/24`] } },
            { action: "Pass" },
          ]
        : tier === "platform"
          ? [
              {
                action: "Allow",
                protocol: "TCP",
                source: { namespaceSelector: `pcns.team == 'team-${g % 5}'`, selector: `role == 'web'` },
                destination: { ports: ["metrics"] },
              },
              { action: "Pass" },
            ]
          : [
              {
                action: "Allow",
                protocol: "TCP",
                source: { selector: `env == 'prod'` },
                destination: { ports: [443, "8000:8100"] },
              },
            ];
    out.push({
      apiVersion: V3,
      kind: "GlobalNetworkPolicy",
      metadata: { name },
      spec: {
        tier,
        order: 10 + g,
        selector: `role == '${role}' && version == 'v${g % 5}'`,
        ingress,
        egress: [
          { action: "Allow", protocol: "UDP", destination: { ports: [53] } },
          ...(tier === "default" ? [] : [{ action: "Pass" }]),
        ],
        types: ["Ingress", "Egress"],
      },
    });
  }
  for (let i = 0; i < p.policies - p.globalPolicies; i++) {
    const ns = nsName(i % p.namespaces);
    const app = appName(pick(p.appsPerNamespace));
    const from = appName(pick(p.appsPerNamespace));
    const to = appName(pick(p.appsPerNamespace));
    const named = i % 5 === 0;
    const ingress: Res[] = [
      {
        action: "Allow",
        protocol: "TCP",
        source: { selector: `app == '${from}'` },
        destination: { ports: named ? ["http"] : [8080 + (i % 7)] },
      },
    ];
    if (i % 4 === 0)
      ingress.push({
        action: "Allow",
        protocol: "TCP",
        source: { namespaceSelector: `pcns.team == 'team-${i % 5}'` },
        destination: { ports: [9090] },
      });
    if (i % 10 === 0) ingress.unshift({ action: "Deny", source: { nets: [`198.19.${pick(40)}.0/24`] } });
    const spec: Res = { order: 100 + (i % 50), selector: `app == '${app}'`, ingress, types: ["Ingress"] };
    if (i % 3 === 0) {
      spec.egress = [
        {
          action: "Allow",
          protocol: "TCP",
          destination: { selector: `app == '${to}'`, ports: named ? ["http"] : [8080] },
        },
        { action: "Allow", protocol: "UDP", destination: { ports: [53] } },
      ];
      spec.types = ["Ingress", "Egress"];
    }
    out.push({ apiVersion: V3, kind: "NetworkPolicy", metadata: { namespace: ns, name: `np-${i}` }, spec });
  }
  return out;
}
