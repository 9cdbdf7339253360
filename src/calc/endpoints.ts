/**
 * Labelled items read from the datastore: workload endpoints, host endpoints and network sets,
 * with the labels Calico adds (reference/calico.md §2.4, §2.10) and their profile parents
 * (whose `labelsToApply` they inherit, own labels winning).
 */
import { formatCIDR, formatIP, networkOf, parseCIDROrIP, type CIDR } from "../api/net.js";
import { labelsOf, metadataOf, num, objects, specOf, str, strings } from "./decode.js";
import type { ItemMembers, NamedPort } from "./ipset-index.js";
import { protocolNumber } from "./rule-translation.js";
import { NAMESPACE_LABEL, ORCHESTRATOR_LABEL, SERVICE_ACCOUNT_LABEL } from "./selector-translation.js";

export interface EndpointRecord {
  key: string;
  kind: "workload" | "host";
  node: string;
  labels: Readonly<Record<string, string>>;
  profiles: string[];
  interfaceName: string;
  /** Host CIDRs (/32, /128): ipNetworks or expectedIPs. */
  addrs: CIDR[];
  ports: NamedPort[];
  mac?: string;
  allowSpoofedSourcePrefixes: CIDR[];
}

export interface NetworkSetRecord {
  key: string;
  labels: Readonly<Record<string, string>>;
  parents: string[];
  nets: CIDR[];
}

export const workloadKey = (ns: string, name: string): string => `wep/${ns}/${name}`;
export const hostEndpointKey = (name: string): string => `hep/${name}`;
export const networkSetKey = (ns: string, name: string): string => `ns/${ns}/${name}`;
export const globalNetworkSetKey = (name: string): string => `gns/${name}`;

function hostCIDRs(list: unknown): CIDR[] {
  const out: CIDR[] = [];
  for (const s of strings(list)) {
    const c = parseCIDROrIP(s.trim());
    if (c === undefined) return [];
    out.push({ ...c, prefix: c.family === 4 ? 32 : 128 });
  }
  return out;
}

function cidrs(list: unknown): CIDR[] | undefined {
  const out: CIDR[] = [];
  for (const s of strings(list)) {
    const c = parseCIDROrIP(s.trim());
    if (c === undefined) return undefined;
    out.push(networkOf(c));
  }
  return out;
}

function namedPorts(list: unknown): NamedPort[] {
  const out: NamedPort[] = [];
  for (const p of objects(list)) {
    const name = str(p.name);
    const protocol = protocolNumber(p.protocol ?? "TCP");
    const port = num(p.port);
    if (name === undefined || name === "" || protocol === undefined || port === undefined) continue;
    out.push({ name, protocol, port });
  }
  return out;
}

export function decodeWorkloadEndpoint(ns: string, name: string, value: unknown): EndpointRecord | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const node = str(spec.node);
  const interfaceName = str(spec.interfaceName);
  if (node === undefined || interfaceName === undefined) return undefined;
  const labels = labelsOf(metadataOf(value).labels);
  labels[NAMESPACE_LABEL] = ns;
  const orchestrator = str(spec.orchestrator);
  if (orchestrator !== undefined && orchestrator !== "") labels[ORCHESTRATOR_LABEL] = orchestrator;
  const sa = str(spec.serviceAccountName);
  if (sa !== undefined && sa !== "") labels[SERVICE_ACCOUNT_LABEL] = sa;
  const rec: EndpointRecord = {
    key: workloadKey(ns, name),
    kind: "workload",
    node,
    // Frozen: the label indexes then share it instead of copying it (selector/label-index.ts).
    labels: Object.freeze(labels),
    profiles: strings(spec.profiles),
    interfaceName,
    addrs: hostCIDRs(spec.ipNetworks),
    ports: namedPorts(spec.ports),
    allowSpoofedSourcePrefixes: cidrs(spec.allowSpoofedSourcePrefixes) ?? [],
  };
  const mac = str(spec.mac);
  if (mac !== undefined && mac !== "") rec.mac = mac;
  return rec;
}

export function decodeHostEndpoint(name: string, value: unknown): EndpointRecord | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const node = str(spec.node);
  if (node === undefined) return undefined;
  return {
    key: hostEndpointKey(name),
    kind: "host",
    node,
    labels: Object.freeze(labelsOf(metadataOf(value).labels)),
    profiles: strings(spec.profiles),
    interfaceName: str(spec.interfaceName) ?? "",
    addrs: hostCIDRs(spec.expectedIPs),
    ports: namedPorts(spec.ports),
    allowSpoofedSourcePrefixes: [],
  };
}

/** A NetworkSet (namespace given) or GlobalNetworkSet. */
export function decodeNetworkSet(
  ns: string | undefined,
  name: string,
  value: unknown,
): NetworkSetRecord | undefined {
  const spec = specOf(value);
  if (spec === undefined) return undefined;
  const nets = cidrs(spec.nets);
  if (nets === undefined) return undefined;
  const labels = labelsOf(metadataOf(value).labels);
  if (ns === undefined)
    return { key: globalNetworkSetKey(name), labels: Object.freeze(labels), parents: [], nets };
  labels[NAMESPACE_LABEL] = ns;
  // A NetworkSet inherits its namespace's labels (`pcns.*`) from the namespace profile.
  return { key: networkSetKey(ns, name), labels: Object.freeze(labels), parents: [`kns.${ns}`], nets };
}

export function endpointMembers(ep: EndpointRecord): ItemMembers {
  return {
    nets: ep.addrs.map(formatCIDR),
    hostAddrs: ep.addrs.map((c) => formatIP(c.family, c.addr)),
    ports: ep.ports,
  };
}

export function networkSetMembers(ns: NetworkSetRecord): ItemMembers {
  return { nets: ns.nets.map(formatCIDR), hostAddrs: [], ports: [] };
}
