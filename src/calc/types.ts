/**
 * The contract between the pure calculation (`src/calc`) and the dataplane (`src/dataplane`):
 * what this host must enforce and route, in Felix's terms (reference/calico.md §1.4, §1.6,
 * §2.12, §2.13), with every selector already turned into an IP set ID.
 *
 * The calculation keeps a full desired state and, per flush, the IDs that changed since the
 * last flush (coalesced: an object added then removed between flushes is just "changed", and
 * the state says it is absent). The dataplane looks each changed ID up in the state; absent
 * means remove. IP set membership also comes as deltas, because a selector set can hold
 * thousands of members and one endpoint's label change moves one of them.
 *
 * No I/O, no kernel names here: chain, set and interface naming is the dataplane's business.
 */
import type { CIDR, IPFamily } from "../api/net.js";

// ---- rules ----

export interface PortRange {
  /** Inclusive. A single port has first === last. */
  first: number;
  last: number;
}

export type RuleAction = "allow" | "deny" | "pass" | "log";

/**
 * One policy or profile rule after selector translation (§2.13) and IP set resolution, in
 * Felix's `ParsedRule` shape. Every listed condition must hold (AND). Within a field:
 * - `*Nets`, `*Ports`: the packet's address/port is in ANY of them; `not*`: in NONE;
 * - `*IPSets` (selector sets): the address is in EVERY listed set (usually one);
 *   `not*IPSets`: in NONE;
 * - `*NamedPortIPSets` (members `ip,protocol,port`): the port condition is
 *   "port in `*Ports` OR (address, protocol, port) in ANY named-port set" — when a rule has
 *   named ports the renderer expands this OR into several kernel rules.
 *   `not*NamedPortIPSets`: in NONE.
 * A rule whose fields cannot match any packet of a family (e.g. only IPv6 nets) is still
 * listed; `ipVersion` says which family it applies to when it is restricted.
 */
export interface ParsedRule {
  action: RuleAction;
  /** Restricts the rule to one family (from `ipVersion`, nets, ICMP vs ICMPv6). */
  ipVersion?: IPFamily;
  /** IANA protocol number. */
  protocol?: number;
  notProtocol?: number;
  icmp?: { type: number; code?: number };
  notICMP?: { type: number; code?: number };

  srcNets: CIDR[];
  notSrcNets: CIDR[];
  dstNets: CIDR[];
  notDstNets: CIDR[];

  srcPorts: PortRange[];
  notSrcPorts: PortRange[];
  dstPorts: PortRange[];
  notDstPorts: PortRange[];

  srcIPSets: string[];
  notSrcIPSets: string[];
  dstIPSets: string[];
  notDstIPSets: string[];
  srcNamedPortIPSets: string[];
  notSrcNamedPortIPSets: string[];
  dstNamedPortIPSets: string[];
  notDstNamedPortIPSets: string[];

  /** For `log` rules: the prefix (FelixConfiguration `logPrefix`, default `calico-packet`). */
  logPrefix?: string;
  /** Where the rule came from, for comments and traces: `<policy id> ingress[2]`. */
  origin: string;
}

/** A rule with the given action that matches every packet, plus any fields given. */
export function newRule(action: RuleAction, origin: string, fields: Partial<ParsedRule> = {}): ParsedRule {
  return {
    action,
    srcNets: [],
    notSrcNets: [],
    dstNets: [],
    notDstNets: [],
    srcPorts: [],
    notSrcPorts: [],
    dstPorts: [],
    notDstPorts: [],
    srcIPSets: [],
    notSrcIPSets: [],
    dstIPSets: [],
    notDstIPSets: [],
    srcNamedPortIPSets: [],
    notSrcNamedPortIPSets: [],
    dstNamedPortIPSets: [],
    notDstNamedPortIPSets: [],
    origin,
    ...fields,
  };
}

// ---- IP sets ----

/**
 * - `net`: members are CIDRs (`198.19.0.5/32`, `198.19.4.0/24`); matched against one address.
 * - `ip-port`: members are `{address, protocol, port}` (named ports, resolved per endpoint).
 * Members of both families live in one set here; the dataplane splits them per family.
 */
export type IPSetType = "net" | "ip-port";

export interface IPPortMember {
  /** Host address (a /32 or /128 CIDR). */
  addr: CIDR;
  protocol: number;
  port: number;
}

/** Members are kept as canonical strings so sets and deltas compare cheaply:
 * `net`: `198.19.0.0/26`, `fd00:19::5/128`; `ip-port`: `198.19.0.5,6,8080`. */
export type IPSetMember = string;

export interface IPSet {
  /** Stable ID derived from the selector (and named port) — e.g. `s:<hash>` / `n:<hash>`. */
  id: string;
  type: IPSetType;
  /** What the set is for, for comments and debugging: the selector text, `+ named port http/TCP`. */
  description: string;
  members: ReadonlySet<IPSetMember>;
}

// ---- policies, profiles, tiers ----

/** `gnp/<name>` (GlobalNetworkPolicy) or `np/<namespace>/<name>` (NetworkPolicy, incl. `knp.default.*`). */
export type PolicyId = string;

export interface CompiledPolicy {
  id: PolicyId;
  tier: string;
  /** Rules for traffic into the endpoint (ingress) and out of it (egress). A policy whose
   * `types` include a direction but has no rules for it lists [] there (an implicit deny in
   * its tier); a direction not in `types` is undefined (the policy does not apply there). */
  inbound?: ParsedRule[];
  outbound?: ParsedRule[];
  /** GNP flags (host endpoints only). */
  doNotTrack: boolean;
  preDNAT: boolean;
  applyOnForward: boolean;
}

export interface CompiledProfile {
  /** The profile name (`kns.shop`, `projectcalico-default-allow`, ...). */
  id: string;
  inbound: ParsedRule[];
  outbound: ParsedRule[];
}

/** One tier as it applies to one endpoint: its policies that select the endpoint, in order. */
export interface EndpointTier {
  name: string;
  defaultAction: "deny" | "pass";
  /** Policies in evaluation order (tier order, then policy order, then name). */
  ingress: PolicyId[];
  egress: PolicyId[];
}

// ---- endpoints ----

/** `wep/<namespace>/<name>` or `hep/<name>`. */
export type EndpointKey = string;

interface EndpointCommon {
  key: EndpointKey;
  /** Linux interface name (`cali…`, or a host interface; `*` for an all-interfaces host endpoint). */
  interfaceName: string;
  /** Tiers with at least one policy selecting this endpoint in some direction, in tier order. */
  tiers: EndpointTier[];
  /** Profile IDs in order (the fallback when no tier applies in a direction). */
  profiles: string[];
}

export interface LocalWorkloadEndpoint extends EndpointCommon {
  kind: "workload";
  /** Host addresses (/32, /128). */
  ipv4Nets: CIDR[];
  ipv6Nets: CIDR[];
  mac?: string;
  /** Source prefixes the workload may send from besides its own addresses. */
  allowSpoofedSourcePrefixes: CIDR[];
}

export interface LocalHostEndpoint extends EndpointCommon {
  kind: "host";
  expectedIPs: CIDR[];
  /** Tiers of `applyOnForward` policies (forwarded traffic), of `preDNAT` and of `doNotTrack` ones. */
  forwardTiers: EndpointTier[];
  preDNATTiers: EndpointTier[];
  untrackedTiers: EndpointTier[];
}

export type LocalEndpoint = LocalWorkloadEndpoint | LocalHostEndpoint;

// ---- routes ----

export type RouteType =
  /** `/32` or `/128` to a local workload's interface. */
  | "local-workload"
  /** A blackhole for an IPAM block affine to this host. */
  | "local-block"
  /** A remote host's block or borrowed address (BGP programs these; listed for VXLAN/diagnostics). */
  | "remote-block";

export interface DesiredRoute {
  dst: CIDR;
  type: RouteType;
  /** For local-workload routes. */
  interfaceName?: string;
  /** For remote routes: the owning node and its address. */
  node?: string;
  gateway?: string;
}

/** Key of a route in the state: `<cidr>`. */
export type RouteKey = string;

// ---- pools (for natOutgoing and the all-pools set) ----

export interface PoolInfo {
  name: string;
  cidr: CIDR;
  natOutgoing: boolean;
  disabled: boolean;
}

// ---- the state and its changes ----

export interface DesiredState {
  ipSets: ReadonlyMap<string, IPSet>;
  policies: ReadonlyMap<PolicyId, CompiledPolicy>;
  profiles: ReadonlyMap<string, CompiledProfile>;
  endpoints: ReadonlyMap<EndpointKey, LocalEndpoint>;
  routes: ReadonlyMap<RouteKey, DesiredRoute>;
  pools: ReadonlyMap<string, PoolInfo>;
}

export interface MemberDelta {
  added: IPSetMember[];
  removed: IPSetMember[];
}

/** What changed since the previous flush. Absent from the state ⇒ removed. */
export interface StateChanges {
  /** Sets added, removed, or whose type changed: re-program whole. */
  ipSets: Set<string>;
  /** Membership changes of sets that existed before and still exist. */
  ipSetMembers: Map<string, MemberDelta>;
  policies: Set<PolicyId>;
  profiles: Set<string>;
  endpoints: Set<EndpointKey>;
  routes: Set<RouteKey>;
  pools: Set<string>;
}

export const emptyChanges = (): StateChanges => ({
  ipSets: new Set(),
  ipSetMembers: new Map(),
  policies: new Set(),
  profiles: new Set(),
  endpoints: new Set(),
  routes: new Set(),
  pools: new Set(),
});

export const hasChanges = (c: StateChanges): boolean =>
  c.ipSets.size +
    c.ipSetMembers.size +
    c.policies.size +
    c.profiles.size +
    c.endpoints.size +
    c.routes.size +
    c.pools.size >
  0;

/**
 * One datastore update as the syncer delivers it: the resource key (the datastore key,
 * `/calico/resources/v3/projectcalico.org/<plural>/[<ns>/]<name>` or an IPAM key) and its
 * parsed value, or null when absent. Updates may be replayed, coalesced or spuriously
 * deleted; the calculation reconciles against the value, never the event type.
 */
export interface KVUpdate {
  key: string;
  value: unknown;
}

/** The pure calculation's interface (Felix's calc graph). */
export interface Calculator {
  /** Apply datastore updates; cheap, no output until `flush`. */
  onUpdates(updates: readonly KVUpdate[]): void;
  /** The desired state now. */
  readonly state: DesiredState;
  /** The changes since the previous flush, and reset them. */
  flush(): StateChanges;
}
