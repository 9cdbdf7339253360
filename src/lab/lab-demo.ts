/**
 * What `lab up` puts in the datastore and which demo workloads it starts: IP pools in the
 * project's ranges (DESIGN.md §6), the BGP mesh, a namespace profile that allows everything
 * (as Kubernetes does without policy) and two small policies, so the connectivity matrix shows
 * both allowed and denied paths:
 *
 * - `backend` accepts TCP 80 only from `frontend`;
 * - `db` accepts TCP 80 only from `backend`;
 * - `frontend` and `client` accept everything.
 */

export const DEMO_NAMESPACE = "demo";
export const LAB_POOL_V4 = "198.19.0.0/16";
export const LAB_POOL_V6 = "fd00:19::/48";
/** The ports every lab workload answers on (TCP and UDP). */
export const LAB_PROBE_PORTS = [53, 80, 81, 8080];

export interface DemoWorkload {
  name: string;
  /** Index into the hosts (modulo their number). */
  hostIndex: number;
  labels: Record<string, string>;
}

export const DEMO_WORKLOADS: DemoWorkload[] = [
  { name: "frontend", hostIndex: 0, labels: { app: "frontend", tier: "web" } },
  { name: "backend", hostIndex: 1, labels: { app: "backend", tier: "api" } },
  { name: "db", hostIndex: 2, labels: { app: "db", tier: "data" } },
  { name: "client", hostIndex: 1, labels: { app: "client" } },
];

/** Whether the demo policy allows TCP 80 from `from` to `to`; undefined for other workloads. */
export function demoExpect(from: string, to: string): boolean | undefined {
  // "ext", the plain host behind the ToR (--tor), has no labels and no policy of its own.
  const demo = new Set([...DEMO_WORKLOADS.map((w) => w.name), "ext"]);
  if (!demo.has(from) || !demo.has(to)) return undefined;
  if (to === "backend") return from === "frontend";
  if (to === "db") return from === "backend";
  return true;
}

const v3 = "projectcalico.org/v3";

export function demoResources(opts: {
  ipv6: boolean;
  hosts: { name: string; v4: string; v6?: string }[];
}): unknown[] {
  return [
    ...opts.hosts.map((h) => ({
      apiVersion: v3,
      kind: "Node",
      metadata: { name: h.name },
      spec: {
        bgp: { ipv4Address: `${h.v4}/24`, ...(h.v6 !== undefined ? { ipv6Address: `${h.v6}/64` } : {}) },
      },
    })),
    {
      apiVersion: v3,
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { nodeToNodeMeshEnabled: true, asNumber: 64512, logSeverityScreen: "Info" },
    },
    {
      apiVersion: v3,
      kind: "IPPool",
      metadata: { name: "lab-ipv4" },
      spec: { cidr: LAB_POOL_V4, blockSize: 26, natOutgoing: false, nodeSelector: "all()" },
    },
    ...(opts.ipv6
      ? [
          {
            apiVersion: v3,
            kind: "IPPool",
            metadata: { name: "lab-ipv6" },
            spec: { cidr: LAB_POOL_V6, blockSize: 122, nodeSelector: "all()" },
          },
        ]
      : []),
    {
      apiVersion: v3,
      kind: "Profile",
      metadata: { name: `kns.${DEMO_NAMESPACE}` },
      spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
    },
    {
      apiVersion: v3,
      kind: "NetworkPolicy",
      metadata: { name: "backend-from-frontend", namespace: DEMO_NAMESPACE },
      spec: {
        selector: "app == 'backend'",
        types: ["Ingress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "app == 'frontend'" },
            destination: { ports: [80] },
          },
        ],
      },
    },
    {
      apiVersion: v3,
      kind: "NetworkPolicy",
      metadata: { name: "db-from-backend", namespace: DEMO_NAMESPACE },
      spec: {
        selector: "app == 'db'",
        types: ["Ingress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "app == 'backend'" },
            destination: { ports: [80] },
          },
        ],
      },
    },
  ];
}
