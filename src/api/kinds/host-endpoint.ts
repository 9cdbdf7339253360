/**
 * HostEndpoint (cluster): one interface of a host (or all of them, `*`) that policy applies to
 * (reference/calico.md §2.5). Rules from `validateHostEndpointSpec` and the field tags.
 */
import type { Resource } from "../resource.js";
import { checkKnownFields, checkString, join, checkIPValue, type Issues } from "../check.js";
import type { KindDef } from "./kind.js";
import { checkEndpointPorts, type EndpointPort } from "./endpoint-port.js";
import {
  checkNameField,
  checkNameList,
  cloneResource,
  INTERFACE_NAME,
  INTERFACE_NAME_HINT,
  specOf,
} from "./infra-spec.js";

export interface HostEndpointSpec {
  node: string;
  /** `*` for every interface of the host, a specific interface, or empty with expectedIPs. */
  interfaceName?: string;
  expectedIPs?: string[];
  profiles?: string[];
  ports?: EndpointPort[];
}

export type HostEndpoint = Resource<"HostEndpoint", HostEndpointSpec>;

const FIELDS = ["node", "interfaceName", "expectedIPs", "profiles", "ports"];

export function validateHostEndpointSpec(spec: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(spec, FIELDS, path, issues);
  checkNameField(spec, "node", path, issues, { required: true });
  const iface = checkString(spec, "interfaceName", path, issues);
  if (iface !== undefined && iface !== "" && iface !== "*" && !INTERFACE_NAME.test(iface)) {
    issues.add(join(path, "interfaceName"), `must be "*" or ${INTERFACE_NAME_HINT}`, iface);
  }
  const ips = spec.expectedIPs;
  let ipCount = 0;
  if (ips !== undefined && ips !== null) {
    if (!Array.isArray(ips)) issues.add(join(path, "expectedIPs"), "must be a list of IP addresses", ips);
    else {
      ipCount = ips.length;
      ips.forEach((ip: unknown, i) => checkIPValue(ip, join(join(path, "expectedIPs"), i), issues));
    }
  }
  const rawIface = spec.interfaceName;
  if ((rawIface === undefined || rawIface === null || rawIface === "") && ipCount === 0) {
    issues.add(
      join(path, "interfaceName"),
      'is required unless expectedIPs lists at least one address (use "*" for all interfaces)',
    );
  }
  checkNameList(spec, "profiles", path, issues);
  checkEndpointPorts(spec, "ports", path, issues, "host");
}

export const HOST_ENDPOINT_KIND: KindDef = {
  kind: "HostEndpoint",
  plural: "hostendpoints",
  namespaced: false,
  shortNames: ["hostendpoint", "hep", "heps"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateHostEndpointSpec(spec, "spec", issues);
  },
  // Calico stores a HostEndpoint as written.
  withDefaults: cloneResource,
};
