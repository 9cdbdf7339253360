/**
 * The RIB's model (RFC 4271 §3.2): per-peer Adj-RIBs-In and Adj-RIBs-Out around one Loc-RIB.
 * Pure data; the `Rib` class (rib.ts) owns the state and does no I/O. See docs/bgp-rib.md.
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import type { CodecContext, PathAttributes, UpdateMessage } from "../packet/index.js";

/** How we learned a route: from an iBGP or eBGP session, or injected by the speaker itself. */
export type PeerType = "ibgp" | "ebgp" | "local";

/** One BGP session's identity and export knobs, as the speaker knows them once Established. */
export interface Peer {
  /** Stable key (e.g. the peer address as text, or "local"). */
  id: string;
  address: CIDR;
  asn: number;
  /** The peer's BGP Identifier from its OPEN (RFC 4271 §4.2), unsigned 32-bit. */
  bgpId: number;
  type: PeerType;
  /** RFC 4456: this iBGP peer is one of our route-reflector clients. */
  rrClient: boolean;
  /** Our AS on this session (prepended on eBGP export; AS_PATH loop check). */
  localAS: number;
  /** Our BGP Identifier on this session (ORIGINATOR_ID loop check, RFC 4456 §8). */
  localBgpId: number;
  /** RFC 4456 §7: our CLUSTER_ID when reflecting; defaults to `localBgpId`. */
  clusterId?: number;
  /** Our addresses on this session, one per family: the NEXT_HOP when we set next hop self. */
  localAddresses?: CIDR[];
  /** Families exchanged on this session (default both). */
  families?: IPFamily[];
  /** Rewrite the next hop of learned routes to ourselves on iBGP export (BIRD `next hop self`). */
  nextHopSelf?: boolean;
  /** Calico BGPPeer `keepOriginalNextHop`: on eBGP export, keep a learned route's next hop. */
  keepOriginalNextHop?: boolean;
  /** The negotiated codec context (4-octet AS), for UPDATE packing sizes. Default as4 true. */
  codec?: CodecContext;
}

/** A path in a RIB: one prefix as learned from one peer. Attributes never carry MP_* or NEXT_HOP
 * (those are per message; the next hop is `nextHop`). Routes from one UPDATE share one
 * `attributes` object. */
export interface Route {
  prefix: CIDR;
  peer: Peer;
  attributes: PathAttributes;
  /** The resolved next hop: a /32 or /128. */
  nextHop: CIDR;
  /** RFC 4724 §4.2: kept across the peer's restart, not yet refreshed. */
  stale: boolean;
  /** Clock time (ms) the route was accepted. */
  receivedAt: number;
}

/** RFC 4271 §9.1 steps as implemented, in order (docs/bgp-rib.md). */
export const DecisionStep = {
  NEXT_HOP: "next-hop",
  PREFERENCE: "preference",
  LOCAL_PREF: "local-pref",
  AS_PATH: "as-path",
  ORIGIN: "origin",
  MED: "med",
  EBGP_OVER_IBGP: "ebgp-over-ibgp",
  IGP_COST: "igp-cost",
  CLUSTER_LIST: "cluster-list",
  ROUTER_ID: "router-id",
  PEER_ADDRESS: "peer-address",
  ONLY_PATH: "only-path",
} as const;
export type DecisionStep = (typeof DecisionStep)[keyof typeof DecisionStep];

/** One step of the decision that removed candidates, in words. */
export interface Elimination {
  step: DecisionStep;
  /** e.g. "local-pref 200 > 100": the survivors' value against the best eliminated value. */
  text: string;
  eliminated: Route[];
}

/** The outcome of the decision process for one prefix. */
export interface Decision {
  best: Route;
  /** ECMP set (best first): routes equal to the best through the IGP-cost step, ≤ maxPaths. */
  multipath: Route[];
  /** Why `best` beat the runner-up: the last step that removed a candidate. */
  step: DecisionStep;
  reason: string;
  /** Every step that removed candidates, in order. */
  eliminations: Elimination[];
}

/** Accept (possibly changed attributes) or reject (undefined) a route. */
export type ImportPolicy = (
  prefix: CIDR,
  attributes: PathAttributes,
  from: Peer,
) => PathAttributes | undefined;
export type ExportPolicy = (
  prefix: CIDR,
  attributes: PathAttributes,
  to: Peer,
  route: Route,
) => PathAttributes | undefined;

export interface RibConfig {
  /** LOCAL_PREF given to eBGP-learned and local routes, and to iBGP routes without one. */
  defaultLocalPref?: number;
  /** Compare MED between routes from different neighbouring ASes. */
  alwaysCompareMed?: boolean;
  /** ECMP width for the kernel (BIRD `merge paths`); 1 = off. */
  maxPaths?: number;
  /** Phase 2 reachability of a next hop (RFC 4271 §9.1.2); default: all reachable. */
  nextHopReachable?: (nextHop: CIDR) => boolean;
  /** Interior cost to a next hop (RFC 4271 §9.1.2.2 e); default: all equal. */
  igpCost?: (nextHop: CIDR) => number;
  importPolicy?: ImportPolicy;
  exportPolicy?: ExportPolicy;
  /** Descriptor used for locally originated routes (AS, BGP id, next hop self addresses). */
  local: { asn: number; bgpId: number; addresses: CIDR[] };
  /** Milliseconds; the caller's clock (tests drive it). Default Date.now. */
  clock?: () => number;
}

/** A Loc-RIB change for the kernel: the new best and ECMP next hops, or the prefix removed. */
export interface LocRibChange {
  prefix: CIDR;
  /** Undefined when the prefix left the Loc-RIB. */
  decision?: Decision;
  /** The kernel next-hop set (multipath next hops; empty when removed). */
  nextHops: CIDR[];
}

/** What one RIB operation asks the speaker to do. */
export interface RibChanges {
  locRib: LocRibChange[];
  /** UPDATE messages to send, per peer id, in order. */
  updates: Map<string, UpdateMessage[]>;
}

/** Why an announced route was not accepted (counted per peer). */
export const RejectReason = {
  AS_PATH_LOOP: "as-path-loop",
  FIRST_AS: "first-as",
  ORIGINATOR_ID: "originator-id",
  CLUSTER_LIST: "cluster-list-loop",
  NEXT_HOP_SELF: "next-hop-is-ours",
  NO_NEXT_HOP: "no-next-hop",
  POLICY: "import-policy",
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];
