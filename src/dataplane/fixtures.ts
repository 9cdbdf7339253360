/**
 * A hand-built desired state for dataplane tests: two workloads on this host, two tiers
 * (one with Pass), a profile, a named port, notNets, ICMP and a host endpoint with failsafes.
 * Addresses: workloads 198.19.0.0/16 and fd00:19::/48, hosts 198.18.0.0/16 and fd00::/64.
 */
import type { CIDR } from "../api/net.js";
import { parseCIDROrIP } from "../api/net.js";
import {
  newRule,
  type CompiledPolicy,
  type CompiledProfile,
  type DesiredRoute,
  type DesiredState,
  type IPSet,
  type LocalEndpoint,
  type ParsedRule,
  type PoolInfo,
} from "../calc/types.js";
import type { DataplaneConfig } from "./types.js";

export const cidr = (s: string): CIDR => {
  const c = parseCIDROrIP(s);
  if (c === undefined) throw new Error(`bad CIDR ${s}`);
  return c;
};

export function rule(action: ParsedRule["action"], fields: Partial<ParsedRule> = {}): ParsedRule {
  return newRule(action, "test", fields);
}

export const testConfig = (over: Partial<DataplaneConfig> = {}): DataplaneConfig => ({
  interfacePrefixes: ["cali"],
  failsafeInboundHostPorts: [
    { protocol: "tcp", port: 22 },
    { protocol: "tcp", port: 179 },
  ],
  failsafeOutboundHostPorts: [{ protocol: "udp", port: 53 }],
  defaultEndpointToHostAction: "Drop",
  logPrefix: "calico-packet",
  routeProtocol: 83,
  ipv6: true,
  denyAction: "Drop",
  ...over,
});

export interface MutableState {
  ipSets: Map<string, IPSet>;
  policies: Map<string, CompiledPolicy>;
  profiles: Map<string, CompiledProfile>;
  endpoints: Map<string, LocalEndpoint>;
  routes: Map<string, DesiredRoute>;
  pools: Map<string, PoolInfo>;
}

export const W1 = { key: "wep/shop/frontend", iface: "cali1111111111a", v4: "198.19.0.1", v6: "fd00:19::1" };
export const W2 = { key: "wep/shop/db", iface: "cali2222222222b", v4: "198.19.0.2", v6: "fd00:19::2" };

/**
 * Policies:
 * - tier `security` (default deny): `gnp/security.block-bad` denies from 198.19.99.0/24, passes
 *   everything else; `gnp/security.icmp` allows ICMP echo request (v4) and ICMPv6 echo request.
 * - tier `default`: `np/shop/db` selects W2: ingress allows TCP to its named port `postgres`
 *   (set n:pg) from members of s:frontend, and TCP 8080 from anywhere except 198.19.0.0/30.
 * Profile `kns.shop` allows all (both directions). W1 has no policies (profile decides).
 */
export function testState(): MutableState {
  const ipSets = new Map<string, IPSet>([
    [
      "s:frontend",
      {
        id: "s:frontend",
        type: "net",
        description: "app == frontend",
        members: new Set([`${W1.v4}/32`, `${W1.v6}/128`]),
      },
    ],
    [
      "n:pg",
      {
        id: "n:pg",
        type: "ip-port",
        description: "app == db + postgres",
        members: new Set([`${W2.v4},6,5432`, `${W2.v6},6,5432`]),
      },
    ],
  ]);
  const policies = new Map<string, CompiledPolicy>([
    [
      "gnp/security.block-bad",
      {
        id: "gnp/security.block-bad",
        tier: "security",
        inbound: [rule("deny", { srcNets: [cidr("198.19.99.0/24")] }), rule("pass")],
        doNotTrack: false,
        preDNAT: false,
        applyOnForward: false,
      },
    ],
    [
      "gnp/security.icmp",
      {
        id: "gnp/security.icmp",
        tier: "security",
        inbound: [
          rule("allow", { protocol: 1, icmp: { type: 8 }, ipVersion: 4 }),
          rule("allow", { protocol: 58, icmp: { type: 128 }, ipVersion: 6 }),
        ],
        doNotTrack: false,
        preDNAT: false,
        applyOnForward: false,
      },
    ],
    [
      "np/shop/db",
      {
        id: "np/shop/db",
        tier: "default",
        inbound: [
          rule("allow", { protocol: 6, srcIPSets: ["s:frontend"], dstNamedPortIPSets: ["n:pg"] }),
          rule("log", { protocol: 6, dstPorts: [{ first: 8080, last: 8080 }] }),
          rule("allow", {
            protocol: 6,
            dstPorts: [{ first: 8080, last: 8080 }],
            notSrcNets: [cidr("198.19.0.0/30")],
          }),
        ],
        outbound: [rule("allow")],
        doNotTrack: false,
        preDNAT: false,
        applyOnForward: false,
      },
    ],
    [
      "gnp/host-ssh",
      {
        id: "gnp/host-ssh",
        tier: "default",
        inbound: [rule("allow", { protocol: 6, dstPorts: [{ first: 80, last: 80 }] })],
        outbound: [rule("allow")],
        doNotTrack: false,
        preDNAT: false,
        applyOnForward: false,
      },
    ],
  ]);
  const profiles = new Map<string, CompiledProfile>([
    ["kns.shop", { id: "kns.shop", inbound: [rule("allow")], outbound: [rule("allow")] }],
  ]);
  const security = {
    name: "security",
    defaultAction: "deny" as const,
    ingress: ["gnp/security.block-bad", "gnp/security.icmp"],
    egress: [],
  };
  const endpoints = new Map<string, LocalEndpoint>([
    [
      W1.key,
      {
        kind: "workload",
        key: W1.key,
        interfaceName: W1.iface,
        tiers: [],
        profiles: ["kns.shop"],
        ipv4Nets: [cidr(`${W1.v4}/32`)],
        ipv6Nets: [cidr(`${W1.v6}/128`)],
        allowSpoofedSourcePrefixes: [],
      },
    ],
    [
      W2.key,
      {
        kind: "workload",
        key: W2.key,
        interfaceName: W2.iface,
        tiers: [
          security,
          { name: "default", defaultAction: "deny", ingress: ["np/shop/db"], egress: ["np/shop/db"] },
        ],
        profiles: ["kns.shop"],
        ipv4Nets: [cidr(`${W2.v4}/32`)],
        ipv6Nets: [cidr(`${W2.v6}/128`)],
        allowSpoofedSourcePrefixes: [],
      },
    ],
    [
      "hep/node1-eth0",
      {
        kind: "host",
        key: "hep/node1-eth0",
        interfaceName: "eth0",
        tiers: [
          { name: "default", defaultAction: "deny", ingress: ["gnp/host-ssh"], egress: ["gnp/host-ssh"] },
        ],
        profiles: [],
        expectedIPs: [cidr("198.18.0.1/32")],
        forwardTiers: [],
        preDNATTiers: [],
        untrackedTiers: [],
      },
    ],
  ]);
  const routes = new Map<string, DesiredRoute>([
    [`${W1.v4}/32`, { dst: cidr(`${W1.v4}/32`), type: "local-workload", interfaceName: W1.iface }],
    [`${W2.v4}/32`, { dst: cidr(`${W2.v4}/32`), type: "local-workload", interfaceName: W2.iface }],
    [`${W1.v6}/128`, { dst: cidr(`${W1.v6}/128`), type: "local-workload", interfaceName: W1.iface }],
    ["198.19.0.0/26", { dst: cidr("198.19.0.0/26"), type: "local-block" }],
    [
      "198.19.1.0/26",
      { dst: cidr("198.19.1.0/26"), type: "remote-block", node: "node2", gateway: "198.18.0.2" },
    ],
  ]);
  const pools = new Map<string, PoolInfo>([
    [
      "default-ipv4",
      { name: "default-ipv4", cidr: cidr("198.19.0.0/16"), natOutgoing: true, disabled: false },
    ],
    [
      "default-ipv6",
      { name: "default-ipv6", cidr: cidr("fd00:19::/48"), natOutgoing: false, disabled: false },
    ],
  ]);
  return { ipSets, policies, profiles, endpoints, routes, pools };
}

export const asState = (s: MutableState): DesiredState => s;
