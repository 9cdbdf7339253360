/**
 * Node (cluster): a Calico node, its BGP identity and tunnel addresses (reference/calico.md
 * §2.3). Rules from libcalico's NodeSpec tags and `validateNodeSpec`.
 */
import type { Resource } from "../resource.js";
import {
  checkEnum,
  checkKnownFields,
  checkObject,
  checkString,
  checkStringValue,
  isRecord,
  join,
  type Issues,
} from "../check.js";
import type { KindDef } from "./kind.js";
import { checkASNumber, normaliseASField } from "./as-number.js";
import {
  checkIPField,
  checkMACField,
  checkNetField,
  checkNetText,
  cloneResource,
  forEachObject,
  specOf,
} from "./infra-spec.js";

export const NODE_ADDRESS_TYPES = ["CalicoNodeIP", "InternalIP", "ExternalIP"] as const;
export type NodeAddressType = (typeof NODE_ADDRESS_TYPES)[number];

export interface NodeBGPSpec {
  /** Inherits BGPConfiguration `default`'s asNumber (64512) when unset. */
  asNumber?: number | string;
  /** Address with prefix, e.g. 198.18.0.5/24 — the prefix decides CrossSubnet. */
  ipv4Address?: string;
  ipv6Address?: string;
  ipv4IPIPTunnelAddr?: string;
  /** Makes this node a route reflector with this cluster ID (IPv4 dotted form). */
  routeReflectorClusterID?: string;
}

export interface NodeSpec {
  bgp?: NodeBGPSpec;
  ipv4VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  orchRefs?: { nodeName?: string; orchestrator: string }[];
  wireguard?: { interfaceIPv4Address?: string; interfaceIPv6Address?: string };
  addresses?: { address: string; type?: NodeAddressType }[];
  interfaces?: { name?: string; addresses?: string[] }[];
}

export interface NodeStatus {
  wireguardPublicKey?: string;
  wireguardPublicKeyV6?: string;
  podCIDRs?: string[];
}

export type CalicoNode = Resource<"Node", NodeSpec> & { status?: NodeStatus };

const FIELDS = [
  "bgp",
  "ipv4VXLANTunnelAddr",
  "vxlanTunnelMACAddr",
  "ipv6VXLANTunnelAddr",
  "vxlanTunnelMACAddrV6",
  "orchRefs",
  "wireguard",
  "addresses",
  "interfaces",
];
const BGP_FIELDS = [
  "asNumber",
  "ipv4Address",
  "ipv6Address",
  "ipv4IPIPTunnelAddr",
  "routeReflectorClusterID",
];

// A WireGuard key: 32 bytes, standard base64 (44 characters ending in '=').
const WIREGUARD_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function validateNodeSpec(spec: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(spec, FIELDS, path, issues);
  const bgp = checkObject(spec, "bgp", path, issues);
  if (bgp !== undefined) {
    const bp = join(path, "bgp");
    checkKnownFields(bgp, BGP_FIELDS, bp, issues);
    if (BGP_FIELDS.every((f) => bgp[f] === undefined || bgp[f] === null || bgp[f] === "")) {
      issues.add(bp, "must not be empty: set at least ipv4Address or ipv6Address, or omit bgp", bgp);
    }
    checkASNumber(bgp, "asNumber", bp, issues);
    checkNetField(bgp, "ipv4Address", bp, issues, { family: 4 });
    checkNetField(bgp, "ipv6Address", bp, issues, { family: 6 });
    checkIPField(bgp, "ipv4IPIPTunnelAddr", bp, issues, 4);
    checkIPField(bgp, "routeReflectorClusterID", bp, issues, 4);
  }
  checkIPField(spec, "ipv4VXLANTunnelAddr", path, issues, 4);
  checkIPField(spec, "ipv6VXLANTunnelAddr", path, issues, 6);
  checkMACField(spec, "vxlanTunnelMACAddr", path, issues);
  checkMACField(spec, "vxlanTunnelMACAddrV6", path, issues);
  forEachObject(spec, "orchRefs", path, issues, (ref, p) => {
    checkKnownFields(ref, ["nodeName", "orchestrator"], p, issues);
    checkString(ref, "nodeName", p, issues);
    checkString(ref, "orchestrator", p, issues, { required: true, minLength: 1 });
  });
  const wg = checkObject(spec, "wireguard", path, issues);
  if (wg !== undefined) {
    const wp = join(path, "wireguard");
    checkKnownFields(wg, ["interfaceIPv4Address", "interfaceIPv6Address"], wp, issues);
    checkIPField(wg, "interfaceIPv4Address", wp, issues, 4);
    checkIPField(wg, "interfaceIPv6Address", wp, issues, 6);
  }
  forEachObject(spec, "addresses", path, issues, (a, p) => {
    checkKnownFields(a, ["address", "type"], p, issues);
    checkNetField(a, "address", p, issues, { required: true, masked: true });
    checkEnum(a, "type", p, NODE_ADDRESS_TYPES, issues);
  });
  forEachObject(spec, "interfaces", path, issues, (iface, p) => {
    checkKnownFields(iface, ["name", "addresses"], p, issues);
    checkString(iface, "name", p, issues);
    const addrs = iface.addresses;
    if (addrs !== undefined && addrs !== null) {
      if (!Array.isArray(addrs)) issues.add(join(p, "addresses"), "must be a list of addresses", addrs);
      else addrs.forEach((a: unknown, i) => checkNetText(a, join(join(p, "addresses"), i), issues));
    }
  });
}

export function validateNodeStatus(status: unknown, issues: Issues): void {
  if (status === undefined || status === null) return;
  if (!isRecord(status)) {
    issues.add("status", "must be an object", status);
    return;
  }
  checkKnownFields(status, ["wireguardPublicKey", "wireguardPublicKeyV6", "podCIDRs"], "status", issues);
  for (const f of ["wireguardPublicKey", "wireguardPublicKeyV6"]) {
    const v = status[f];
    if (v === undefined || v === "") continue;
    const s = checkStringValue(v, join("status", f), issues);
    if (s !== undefined && !WIREGUARD_KEY.test(s)) {
      issues.add(join("status", f), "must be a WireGuard public key (32 bytes, base64)", s);
    }
  }
  const cidrs = status.podCIDRs;
  if (cidrs !== undefined && cidrs !== null) {
    if (!Array.isArray(cidrs)) issues.add("status.podCIDRs", "must be a list of CIDRs", cidrs);
    else cidrs.forEach((c: unknown, i) => checkNetText(c, join("status.podCIDRs", i), issues));
  }
}

export const NODE_KIND: KindDef = {
  kind: "Node",
  plural: "nodes",
  namespaced: false,
  shortNames: ["node", "no", "nos"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateNodeSpec(spec, "spec", issues);
    validateNodeStatus(resource.status, issues);
  },
  withDefaults(resource) {
    const out = cloneResource(resource);
    const bgp = out.spec.bgp;
    if (isRecord(bgp)) normaliseASField(bgp, "asNumber");
    return out;
  },
};
