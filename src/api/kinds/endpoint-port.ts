/**
 * Named ports of WorkloadEndpoints and HostEndpoints (`spec.ports`), which policy rules refer
 * to by name. Rules from Calico's `validateEndpointPort` / `validateWorkloadEndpointPort`.
 */
import { checkKnownFields, checkNumber, join, type Issues } from "../check.js";
import { checkIPField, forEachObject } from "./infra-spec.js";

/** Protocol of a named port: a name that has ports, or its IANA number. */
export type PortProtocol = "TCP" | "UDP" | "SCTP" | number;

export interface EndpointPort {
  name: string;
  protocol: PortProtocol;
  port: number;
}

export interface WorkloadEndpointPort {
  name?: string;
  protocol: PortProtocol;
  port: number;
  hostPort?: number;
  hostIP?: string;
}

const PORT_PROTOCOLS = ["TCP", "UDP", "SCTP"] as const;
const PORT_PROTOCOL_NUMBERS: Readonly<Record<number, string>> = { 6: "TCP", 17: "UDP", 132: "SCTP" };
// The other protocol names Calico knows (numorstring.Protocol); they are valid protocols
// without ports, so the message can say so rather than "unknown".
const PORTLESS_PROTOCOLS = ["ICMP", "ICMPv6", "UDPLite"];

/** Kubernetes IsValidPortName (IANA service name syntax, RFC 6335 §5.1). */
export function portNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 15) return "must be 1-15 characters";
  if (!/^[a-z0-9-]+$/.test(name)) return "must contain only a-z, 0-9 and '-'";
  if (!/[a-z]/.test(name)) return "must contain at least one letter";
  if (name.includes("--")) return "must not contain consecutive '-'";
  if (name.startsWith("-") || name.endsWith("-")) return "must not start or end with '-'";
  return undefined;
}

function checkProtocol(v: unknown, path: string, issues: Issues): void {
  if (v === undefined || v === null || v === "") {
    issues.add(path, "is required (TCP, UDP or SCTP)");
    return;
  }
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 1 || v > 255) {
      issues.add(path, "must be TCP, UDP, SCTP or a protocol number from 1 to 255", v);
    } else if (PORT_PROTOCOL_NUMBERS[v] === undefined) {
      issues.add(path, "protocol has no ports; named ports need TCP (6), UDP (17) or SCTP (132)", v);
    }
    return;
  }
  if (typeof v !== "string") {
    issues.add(path, "must be TCP, UDP or SCTP", v);
    return;
  }
  if ((PORT_PROTOCOLS as readonly string[]).includes(v)) return;
  if (PORTLESS_PROTOCOLS.includes(v) || /^\d+$/.test(v)) {
    issues.add(path, "protocol has no ports; named ports need TCP, UDP or SCTP", v);
    return;
  }
  issues.add(path, "must be one of TCP, UDP, SCTP", v);
}

/**
 * Check `obj[field]` as a list of endpoint ports. HostEndpoint ports always need a name;
 * WorkloadEndpoint ports may omit it when they only map a hostPort.
 */
export function checkEndpointPorts(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  kind: "host" | "workload",
): void {
  const known =
    kind === "host" ? ["name", "protocol", "port"] : ["name", "protocol", "port", "hostPort", "hostIP"];
  forEachObject(obj, field, path, issues, (port, p) => {
    checkKnownFields(port, known, p, issues);
    const name = port.name;
    const hostPort =
      kind === "workload"
        ? checkNumber(port, "hostPort", p, issues, { integer: true, min: 0, max: 65535 })
        : undefined;
    if (name === undefined || name === null || name === "") {
      if (kind === "host") issues.add(join(p, "name"), "is required (a port name such as http)");
      else if (hostPort === undefined || hostPort === 0) {
        issues.add(join(p, "name"), "is required unless hostPort is set");
      }
    } else if (typeof name !== "string") {
      issues.add(join(p, "name"), "must be a string", name);
    } else {
      const problem = portNameProblem(name);
      if (problem !== undefined) issues.add(join(p, "name"), `port name ${problem}`, name);
    }
    checkProtocol(port.protocol, join(p, "protocol"), issues);
    checkNumber(port, "port", p, issues, { required: true, integer: true, min: 1, max: 65535 });
    if (kind === "workload") checkIPField(port, "hostIP", p, issues);
  });
}
