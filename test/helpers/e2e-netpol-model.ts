/**
 * A small, independent model of Kubernetes NetworkPolicy semantics (the API reference's
 * "Behavior of to and from selectors", and the upstream e2e suite's truth tables in
 * `test/e2e/network/netpol`): given the pods, their namespaces' labels and a set of
 * `networking.k8s.io/v1` policies, is one connection allowed? The e2e tests compare what real
 * packets do on the lab with this model, so it knows nothing of Calico.
 *
 * - A pod selected by no policy of a direction (Ingress/Egress) is open in that direction.
 * - A selected pod admits a connection if any rule of any policy selecting it matches: its
 *   peers (none = everyone) and its ports (none = every port).
 * - A peer: `ipBlock` (cidr minus except, by the pod's address of the probe's family; a block
 *   of the other family admits nothing), or pod and namespace
 *   selectors ANDed, an absent namespaceSelector meaning the policy's own namespace.
 * - Ports: protocol (default TCP), a number, a number with `endPort`, or a name resolved on the
 *   destination pod.
 */
import { BlockList, isIPv6 } from "node:net";
import type {
  K8sIPBlock,
  K8sLabelSelector,
  K8sNetworkPolicy,
  K8sNetworkPolicyPeer,
  K8sNetworkPolicyPort,
} from "../../src/api/k8s-network-policy.js";

export interface ModelPod {
  /** Unique name, e.g. `x-a`. */
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** The address probed (IPv4 or IPv6: the model runs per family). */
  ip: string;
  /** Named container ports: name → protocol and number. */
  namedPorts: Record<string, { protocol: "TCP" | "UDP"; port: number }>;
}

export interface Probe {
  proto: "TCP" | "UDP";
  port: number;
}

export function selectorMatches(sel: K8sLabelSelector | undefined, labels: Record<string, string>): boolean {
  if (sel === undefined) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok =
      e.operator === "In"
        ? inValues
        : e.operator === "NotIn"
          ? !inValues
          : e.operator === "Exists"
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

/** Whether `ip` is in `cidr`; never across families (an IPv4 block admits no IPv6 peer). */
function inCidr(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split("/");
  const type = isIPv6(net!) ? "ipv6" : "ipv4";
  if (isIPv6(ip) !== (type === "ipv6")) return false;
  const list = new BlockList();
  list.addSubnet(net!, Number(len), type);
  return list.check(ip, type);
}

const inBlock = (ip: string, b: K8sIPBlock): boolean =>
  inCidr(ip, b.cidr) && !(b.except ?? []).some((e) => inCidr(ip, e));

function peerMatches(
  peer: K8sNetworkPolicyPeer,
  policyNs: string,
  other: ModelPod,
  nsLabels: Record<string, Record<string, string>>,
): boolean {
  if (peer.ipBlock !== undefined) return inBlock(other.ip, peer.ipBlock);
  const nsOk =
    peer.namespaceSelector === undefined
      ? other.namespace === policyNs
      : selectorMatches(peer.namespaceSelector, nsLabels[other.namespace] ?? {});
  return nsOk && selectorMatches(peer.podSelector, other.labels);
}

function portMatches(p: K8sNetworkPolicyPort, probe: Probe, dst: ModelPod): boolean {
  if ((p.protocol ?? "TCP") !== probe.proto) return false;
  if (p.port === undefined) return true;
  if (typeof p.port === "string") {
    const named = dst.namedPorts[p.port];
    return named !== undefined && named.protocol === probe.proto && named.port === probe.port;
  }
  return probe.port >= p.port && probe.port <= (p.endPort ?? p.port);
}

function policyTypes(pol: K8sNetworkPolicy): ("Ingress" | "Egress")[] {
  return pol.spec?.policyTypes ?? ["Ingress", ...(pol.spec?.egress !== undefined ? ["Egress" as const] : [])];
}

/** Whether `policies` let `src` open a connection (`probe`) to `dst`. */
export function allowed(
  policies: readonly K8sNetworkPolicy[],
  nsLabels: Record<string, Record<string, string>>,
  src: ModelPod,
  dst: ModelPod,
  probe: Probe,
): boolean {
  const side = (dir: "Ingress" | "Egress"): boolean => {
    const self = dir === "Ingress" ? dst : src;
    const other = dir === "Ingress" ? src : dst;
    const selecting = policies.filter(
      (p) =>
        (p.metadata.namespace ?? "default") === self.namespace &&
        policyTypes(p).includes(dir) &&
        selectorMatches(p.spec?.podSelector, self.labels),
    );
    if (selecting.length === 0) return true;
    return selecting.some((p) => {
      const rules =
        dir === "Ingress"
          ? (p.spec?.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
          : (p.spec?.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
      const ns = p.metadata.namespace ?? "default";
      return rules.some(
        (r) =>
          (r.peers === undefined ||
            r.peers.length === 0 ||
            r.peers.some((peer) => peerMatches(peer, ns, other, nsLabels))) &&
          (r.ports === undefined ||
            r.ports.length === 0 ||
            r.ports.some((pt) => portMatches(pt, probe, dst))),
      );
    });
  };
  return side("Egress") && side("Ingress");
}

/**
 * The expected and the measured matrix of one probe side by side (rows: from, columns: to;
 * `.` connected, `X` not), with every differing cell marked `!` in the measured one.
 */
export function formatMatrices(
  title: string,
  names: readonly string[],
  expected: (from: string, to: string) => boolean,
  actual: (from: string, to: string) => boolean | undefined,
): string {
  const w = Math.max(4, ...names.map((n) => n.length));
  const pad = (s: string) => s.padEnd(w + 1);
  const head = pad("") + names.map(pad).join("");
  const lines = [`${title}`, `${pad("expected").padEnd(head.length)}   | actual`, `${head}   | ${head}`];
  for (const from of names) {
    const exp = names.map((to) => (from === to ? "-" : expected(from, to) ? "." : "X"));
    const act = names.map((to) => {
      if (from === to) return "-";
      const a = actual(from, to);
      const mark = a === undefined ? "?" : a ? "." : "X";
      return a !== expected(from, to) ? `${mark}!` : mark;
    });
    lines.push(`${pad(from)}${exp.map(pad).join("")}   | ${pad(from)}${act.map(pad).join("")}`);
  }
  return lines.join("\n");
}
