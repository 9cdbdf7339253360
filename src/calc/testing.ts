/** Builders of datastore updates for the calculation's tests. */
import { RESOURCE_PREFIX } from "../datastore/keys.js";
import type { KVUpdate } from "./types.js";

const KINDS: Readonly<Record<string, string>> = {
  workloadendpoints: "WorkloadEndpoint",
  hostendpoints: "HostEndpoint",
  networkpolicies: "NetworkPolicy",
  globalnetworkpolicies: "GlobalNetworkPolicy",
  stagednetworkpolicies: "StagedNetworkPolicy",
  stagedglobalnetworkpolicies: "StagedGlobalNetworkPolicy",
  stagedkubernetesnetworkpolicies: "StagedKubernetesNetworkPolicy",
  tiers: "Tier",
  profiles: "Profile",
  networksets: "NetworkSet",
  globalnetworksets: "GlobalNetworkSet",
  ippools: "IPPool",
  nodes: "Node",
};

export function key(plural: string, name: string, ns?: string): string {
  return ns === undefined
    ? `${RESOURCE_PREFIX}${plural}/${name}`
    : `${RESOURCE_PREFIX}${plural}/${ns}/${name}`;
}

/** A put of a v3 resource. */
export function put(
  plural: string,
  name: string,
  spec: Record<string, unknown>,
  opts: { ns?: string; labels?: Record<string, string> } = {},
): KVUpdate {
  const metadata: Record<string, unknown> = { name };
  if (opts.ns !== undefined) metadata.namespace = opts.ns;
  if (opts.labels !== undefined) metadata.labels = opts.labels;
  return {
    key: key(plural, name, opts.ns),
    value: { apiVersion: "projectcalico.org/v3", kind: KINDS[plural] ?? plural, metadata, spec },
  };
}

export function del(plural: string, name: string, ns?: string): KVUpdate {
  return { key: key(plural, name, ns), value: null };
}

export function wep(
  ns: string,
  name: string,
  opts: {
    node?: string;
    ips?: string[];
    labels?: Record<string, string>;
    profiles?: string[];
    ports?: { name: string; protocol: string | number; port: number }[];
    sa?: string;
    iface?: string;
  } = {},
): KVUpdate {
  const spec: Record<string, unknown> = {
    orchestrator: "k8s",
    node: opts.node ?? "host-a",
    endpoint: "eth0",
    interfaceName: opts.iface ?? `cali${name.padEnd(11, "0").slice(0, 11)}`,
    ipNetworks: opts.ips ?? [],
    profiles: opts.profiles ?? [],
  };
  if (opts.ports !== undefined) spec.ports = opts.ports;
  if (opts.sa !== undefined) spec.serviceAccountName = opts.sa;
  return put("workloadendpoints", name, spec, { ns, labels: opts.labels ?? {} });
}

export function block(
  cidr: string,
  affinity: string | null,
  borrowed: { ordinal: number; node: string }[] = [],
): KVUpdate {
  const size = cidr.includes(":") ? 128 - Number(cidr.split("/")[1]) : 32 - Number(cidr.split("/")[1]);
  const n = 2 ** Math.min(size, 8);
  const allocations: (number | null)[] = new Array<number | null>(n).fill(null);
  const attributes: { handle_id: string; secondary: Record<string, string> }[] = [];
  for (const b of borrowed) {
    allocations[b.ordinal] = attributes.length;
    attributes.push({ handle_id: `h${b.ordinal}`, secondary: { node: b.node } });
  }
  const unallocated = allocations.flatMap((a, i) => (a === null ? [i] : []));
  const fam = cidr.includes(":") ? "ipv6" : "ipv4";
  return {
    key: `/calico/ipam/v2/assignment/${fam}/block/${cidr.replace(/[.:/]/g, "-")}`,
    value: {
      cidr,
      affinity,
      allocations,
      unallocated,
      attributes,
      deleted: false,
      sequenceNumber: 0,
      sequenceNumberForAllocation: {},
    },
  };
}
