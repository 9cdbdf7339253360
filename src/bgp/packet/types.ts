/**
 * BGP-4 messages as data (RFC 4271 §4), with the extensions calico-ts speaks: multiprotocol
 * (RFC 4760, IPv6 per RFC 2545), 4-octet AS (RFC 6793), route refresh (RFC 2918), graceful
 * restart (RFC 4724), communities (RFC 1997), large communities (RFC 8092), route reflection
 * attributes (RFC 4456). Native types inside (CIDR with bigint addresses, numbers for AS and
 * router IDs); the wire form lives only in the codec (STYLE.md: wire types stay at the edges).
 *
 * This file is the contract between the codec (`src/bgp/packet/*`) and everything above it
 * (FSM, RIB, speaker).
 */
import type { CIDR } from "../../api/net.js";

export const BGP_PORT = 179;
export const BGP_VERSION = 4;
/** RFC 4271 §4.1 */
export const HEADER_LENGTH = 19;
export const MAX_MESSAGE_LENGTH = 4096;
/** RFC 6793: the 2-octet AS placed in OPEN / AS_PATH when the real AS does not fit. */
export const AS_TRANS = 23456;

export const MessageType = {
  OPEN: 1,
  UPDATE: 2,
  NOTIFICATION: 3,
  KEEPALIVE: 4,
  ROUTE_REFRESH: 5,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** RFC 4760 AFI / SAFI we use; others are carried as numbers. */
export const AFI = { IPV4: 1, IPV6: 2 } as const;
export const SAFI = { UNICAST: 1 } as const;

export interface AfiSafi {
  afi: number;
  safi: number;
}

// ---- OPEN ----

export type Capability =
  /** RFC 4760 §8, code 1 */
  | { code: 1; type: "multiprotocol"; afi: number; safi: number }
  /** RFC 2918, code 2 */
  | { code: 2; type: "route-refresh" }
  /** RFC 4724 §3, code 64 */
  | {
      code: 64;
      type: "graceful-restart";
      /** The R bit: the speaker has restarted. */
      restarting: boolean;
      /** Seconds, 12 bits. */
      restartTime: number;
      families: (AfiSafi & { forwardingPreserved: boolean })[];
    }
  /** RFC 6793, code 65 */
  | { code: 65; type: "as4"; asn: number }
  /** Anything else, kept as bytes (sent back unchanged if re-encoded). */
  | { code: number; type: "unknown"; data: Uint8Array };

export interface OpenMessage {
  type: typeof MessageType.OPEN;
  version: number;
  /** The 2-octet "My Autonomous System" field (AS_TRANS when the real AS needs 4 octets). */
  myAS: number;
  holdTime: number;
  /** BGP Identifier as an unsigned 32-bit number. */
  bgpId: number;
  capabilities: Capability[];
  /** Optional parameters of types other than 2 (capabilities), kept as bytes. */
  otherParameters?: { type: number; data: Uint8Array }[];
}

// ---- UPDATE ----

export const Origin = { IGP: 0, EGP: 1, INCOMPLETE: 2 } as const;
export type Origin = (typeof Origin)[keyof typeof Origin];

export type AsPathSegmentType = "set" | "sequence" | "confed-sequence" | "confed-set";
export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

/** Attribute type codes (RFC 4271 §5, 4760, 1997, 4456, 6793, 8092). */
export const AttrType = {
  ORIGIN: 1,
  AS_PATH: 2,
  NEXT_HOP: 3,
  MULTI_EXIT_DISC: 4,
  LOCAL_PREF: 5,
  ATOMIC_AGGREGATE: 6,
  AGGREGATOR: 7,
  COMMUNITIES: 8,
  ORIGINATOR_ID: 9,
  CLUSTER_LIST: 10,
  MP_REACH_NLRI: 14,
  MP_UNREACH_NLRI: 15,
  AS4_PATH: 17,
  AS4_AGGREGATOR: 18,
  LARGE_COMMUNITY: 32,
} as const;

/** Attribute flag bits (RFC 4271 §4.3). */
export const AttrFlag = {
  OPTIONAL: 0x80,
  TRANSITIVE: 0x40,
  PARTIAL: 0x20,
  EXTENDED_LENGTH: 0x10,
} as const;

export interface MpReach {
  afi: number;
  safi: number;
  /** One next hop (IPv4 or IPv6 global), or two for IPv6 (global then link-local, RFC 2545 §3). */
  nextHops: CIDR[];
  nlri: CIDR[];
}

export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: CIDR[];
}

/** Path attributes, decoded. AS numbers are always the real (4-octet) values: the codec
 * merges AS4_PATH/AS4_AGGREGATOR into asPath/aggregator when talking to an old speaker
 * (RFC 6793 §4.2.3) and splits them when encoding for one. */
export interface PathAttributes {
  origin?: Origin;
  asPath?: AsPathSegment[];
  /** IPv4 next hop (a /32 CIDR) for IPv4 NLRI in the UPDATE body. */
  nextHop?: CIDR;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: CIDR };
  /** RFC 1997: each a 32-bit value (high 16 bits AS, low 16 bits value). */
  communities?: number[];
  /** RFC 8092: [global administrator, local data 1, local data 2]. */
  largeCommunities?: [number, number, number][];
  originatorId?: number;
  clusterList?: number[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** Optional transitive attributes we do not know: passed on with the Partial bit set;
   * unknown optional non-transitive ones are dropped on decode (RFC 4271 §5). */
  unknown?: { flags: number; code: number; data: Uint8Array }[];
}

export interface UpdateMessage {
  type: typeof MessageType.UPDATE;
  /** IPv4 withdrawn routes in the body. */
  withdrawn: CIDR[];
  attributes: PathAttributes;
  /** IPv4 NLRI in the body. */
  nlri: CIDR[];
}

// ---- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH ----

export interface NotificationMessage {
  type: typeof MessageType.NOTIFICATION;
  code: number;
  subcode: number;
  data: Uint8Array;
}

export interface KeepaliveMessage {
  type: typeof MessageType.KEEPALIVE;
}

export interface RouteRefreshMessage {
  type: typeof MessageType.ROUTE_REFRESH;
  afi: number;
  safi: number;
  /** RFC 7313 subtype (0 = normal request). */
  subtype: number;
}

export type BgpMessage =
  OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

// ---- errors (RFC 4271 §6, RFC 7606) ----

/** NOTIFICATION error codes and subcodes, RFC 4271 §4.5 / §6 (+ RFC 4486 Cease subcodes). */
export const ErrorCode = {
  MESSAGE_HEADER: 1,
  OPEN_MESSAGE: 2,
  UPDATE_MESSAGE: 3,
  HOLD_TIMER_EXPIRED: 4,
  FSM: 5,
  CEASE: 6,
  ROUTE_REFRESH: 7,
} as const;

export const HeaderSubcode = {
  CONNECTION_NOT_SYNCHRONIZED: 1,
  BAD_MESSAGE_LENGTH: 2,
  BAD_MESSAGE_TYPE: 3,
} as const;

export const OpenSubcode = {
  UNSUPPORTED_VERSION_NUMBER: 1,
  BAD_PEER_AS: 2,
  BAD_BGP_IDENTIFIER: 3,
  UNSUPPORTED_OPTIONAL_PARAMETER: 4,
  UNACCEPTABLE_HOLD_TIME: 6,
  /** RFC 5492 */
  UNSUPPORTED_CAPABILITY: 7,
} as const;

export const UpdateSubcode = {
  MALFORMED_ATTRIBUTE_LIST: 1,
  UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: 2,
  MISSING_WELL_KNOWN_ATTRIBUTE: 3,
  ATTRIBUTE_FLAGS_ERROR: 4,
  ATTRIBUTE_LENGTH_ERROR: 5,
  INVALID_ORIGIN_ATTRIBUTE: 6,
  INVALID_NEXT_HOP_ATTRIBUTE: 8,
  OPTIONAL_ATTRIBUTE_ERROR: 9,
  INVALID_NETWORK_FIELD: 10,
  MALFORMED_AS_PATH: 11,
} as const;

export const CeaseSubcode = {
  MAXIMUM_PREFIXES_REACHED: 1,
  ADMINISTRATIVE_SHUTDOWN: 2,
  PEER_DE_CONFIGURED: 3,
  ADMINISTRATIVE_RESET: 4,
  CONNECTION_REJECTED: 5,
  OTHER_CONFIGURATION_CHANGE: 6,
  CONNECTION_COLLISION_RESOLUTION: 7,
  OUT_OF_RESOURCES: 8,
} as const;

/** What the decoder needs to know about the session (negotiated capabilities). */
export interface CodecContext {
  /** Both sides advertised 4-octet AS: AS_PATH carries 4-octet ASNs. */
  as4: boolean;
}

/**
 * The result of decoding one UPDATE under RFC 7606: most attribute errors do not reset the
 * session. `treatAsWithdraw` means every NLRI in the message (body and MP_REACH) must be
 * handled as withdrawn; `discarded` lists attributes dropped under "attribute discard".
 * Errors RFC 7606 still makes fatal are thrown as a `BgpError` carrying the NOTIFICATION.
 */
export interface DecodedUpdate {
  update: UpdateMessage;
  treatAsWithdraw?: { subcode: number; reason: string };
  discarded?: { code: number; reason: string }[];
}
