/**
 * Adj-RIB-Out diffs into UPDATE messages: withdrawals packed together, announcements grouped
 * by identical attributes and next hop (one UPDATE per group as long as it fits the 4096-octet
 * limit, RFC 4271 §4). IPv4 rides in the UPDATE body, IPv6 in MP_REACH/MP_UNREACH (RFC 4760).
 * Sizes are computed from the codec's own encoding of the message without NLRI plus each
 * prefix's length octet and address octets.
 */
import type { CIDR } from "../../api/net.js";
import {
  AFI,
  type CodecContext,
  encodeMessage,
  MAX_MESSAGE_LENGTH,
  MessageType,
  type PathAttributes,
  SAFI,
  type UpdateMessage,
} from "../packet/index.js";
import type { Advertisement } from "./export.js";

/** A canonical text for attributes plus next hop: equal texts pack into one UPDATE. */
export function advertisementKey(a: Advertisement): string {
  const x = a.attributes;
  const parts: unknown[] = [
    a.nextHop.family,
    a.nextHop.addr.toString(16),
    x.origin,
    x.asPath,
    x.med,
    x.localPref,
    x.atomicAggregate,
    x.aggregator === undefined ? undefined : [x.aggregator.asn, x.aggregator.address.addr.toString(16)],
    x.communities,
    x.largeCommunities,
    x.originatorId,
    x.clusterList,
    x.unknown?.map((u) => [u.flags, u.code, Array.from(u.data)]),
  ];
  return JSON.stringify(parts);
}

const prefixOctets = (c: CIDR): number => 1 + Math.ceil(c.prefix / 8);

/** The UPDATE announcing `nlri` (all one family) with `a`. */
export function announcement(a: Advertisement, family: 4 | 6, nlri: CIDR[]): UpdateMessage {
  const attributes: PathAttributes = { ...a.attributes };
  if (family === 4) {
    attributes.nextHop = a.nextHop;
    return { type: MessageType.UPDATE, withdrawn: [], attributes, nlri };
  }
  attributes.mpReach = { afi: AFI.IPV6, safi: SAFI.UNICAST, nextHops: [a.nextHop], nlri };
  return { type: MessageType.UPDATE, withdrawn: [], attributes, nlri: [] };
}

export function withdrawal(family: 4 | 6, prefixes: CIDR[]): UpdateMessage {
  if (family === 4) return { type: MessageType.UPDATE, withdrawn: prefixes, attributes: {}, nlri: [] };
  return {
    type: MessageType.UPDATE,
    withdrawn: [],
    attributes: { mpUnreach: { afi: AFI.IPV6, safi: SAFI.UNICAST, withdrawn: prefixes } },
    nlri: [],
  };
}

/** Split `prefixes` into messages built by `build`, each within MAX_MESSAGE_LENGTH.
 * One spare octet covers an MP_* attribute growing into extended length. */
function pack(prefixes: CIDR[], build: (p: CIDR[]) => UpdateMessage, ctx: CodecContext): UpdateMessage[] {
  if (prefixes.length === 0) return [];
  const base = encodeMessage(build([]), ctx).length + 1;
  const out: UpdateMessage[] = [];
  let batch: CIDR[] = [];
  let size = base;
  for (const p of prefixes) {
    const n = prefixOctets(p);
    if (size + n > MAX_MESSAGE_LENGTH && batch.length > 0) {
      out.push(build(batch));
      batch = [];
      size = base;
    }
    batch.push(p);
    size += n;
  }
  out.push(build(batch));
  return out;
}

export interface OutDiff {
  withdrawn: CIDR[];
  announced: { prefix: CIDR; adv: Advertisement; key: string }[];
}

/** The UPDATEs for one peer's diff: withdrawals first, then one group per attribute set. */
export function packUpdates(diff: OutDiff, ctx: CodecContext): UpdateMessage[] {
  const out: UpdateMessage[] = [];
  for (const family of [4, 6] as const) {
    const w = diff.withdrawn.filter((p) => p.family === family);
    out.push(...pack(w, (p) => withdrawal(family, p), ctx));
  }
  const groups = new Map<string, { adv: Advertisement; family: 4 | 6; nlri: CIDR[] }>();
  for (const a of diff.announced) {
    const k = `${a.prefix.family}|${a.key}`;
    let g = groups.get(k);
    if (g === undefined) {
      g = { adv: a.adv, family: a.prefix.family, nlri: [] };
      groups.set(k, g);
    }
    g.nlri.push(a.prefix);
  }
  for (const g of groups.values()) out.push(...pack(g.nlri, (p) => announcement(g.adv, g.family, p), ctx));
  return out;
}
