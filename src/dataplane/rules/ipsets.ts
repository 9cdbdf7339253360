/**
 * IP sets → nft named sets, one per family (reference/calico.md §1.5): selector sets are
 * interval sets of prefixes; named-port sets are `ipv4_addr . inet_proto . inet_service`.
 * Interval sets refuse overlapping elements, so a net set is programmed as its minimal cover
 * (a /32 inside a listed /24 is dropped).
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import { familyBits, formatIP, hostMask, networkOf, parseCIDROrIP } from "../../api/net.js";
import type { IPSet, PoolInfo } from "../../calc/types.js";
import type { SetElement, SetSpec } from "../nft/model.js";
import { ALL_POOLS_SET_ID, MASQ_POOLS_SET_ID, ipSetName } from "../names.js";

export interface DesiredSet {
  spec: SetSpec;
  elements: Set<SetElement>;
}

/** Canonical element text for a prefix: a bare address for a host prefix, else `addr/len`. */
export function prefixElement(c: CIDR): SetElement {
  const n = networkOf(c);
  const addr = formatIP(n.family, n.addr);
  return n.prefix === familyBits(n.family) ? addr : `${addr}/${n.prefix}`;
}

/** The minimal set of prefixes covering `cidrs` with no element inside another. */
export function collapse(cidrs: CIDR[]): CIDR[] {
  const sorted = cidrs
    .map(networkOf)
    .sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.prefix - b.prefix));
  const out: CIDR[] = [];
  let lastEnd = -1n;
  for (const c of sorted) {
    if (c.addr <= lastEnd) continue; // inside the previous kept prefix
    out.push(c);
    lastEnd = c.addr | hostMask(c.family, c.prefix);
  }
  return out;
}

function netElements(members: Iterable<string>, family: IPFamily): Set<SetElement> {
  const cidrs: CIDR[] = [];
  for (const m of members) {
    const c = parseCIDROrIP(m);
    if (c !== undefined && c.family === family) cidrs.push(c);
  }
  return new Set(collapse(cidrs).map(prefixElement));
}

/** `198.19.0.5,6,8080` → `198.19.0.5 . 6 . 8080` (undefined for the other family or junk). */
export function ipPortElement(member: string, family: IPFamily): SetElement | undefined {
  const [addr, proto, port] = member.split(",");
  if (addr === undefined || proto === undefined || port === undefined) return undefined;
  const c = parseCIDROrIP(addr);
  if (c === undefined || c.family !== family || !/^\d+$/.test(proto) || !/^\d+$/.test(port)) return undefined;
  return `${formatIP(family, c.addr)} . ${Number(proto)} . ${Number(port)}`;
}

export function ipSetFor(set: IPSet, family: IPFamily): DesiredSet {
  const name = ipSetName(family, set.id);
  if (set.type === "net") {
    return {
      spec: { name, keyType: family === 4 ? "ipv4_addr" : "ipv6_addr", interval: true },
      elements: netElements(set.members, family),
    };
  }
  const elements = new Set<SetElement>();
  for (const m of set.members) {
    const e = ipPortElement(m, family);
    if (e !== undefined) elements.add(e);
  }
  return {
    spec: {
      name,
      keyType:
        family === 4 ? "ipv4_addr . inet_proto . inet_service" : "ipv6_addr . inet_proto . inet_service",
      interval: false,
    },
    elements,
  };
}

/** The all-pools and natOutgoing-pools sets for one family. */
export function poolSets(pools: Iterable<PoolInfo>, family: IPFamily): DesiredSet[] {
  const all: CIDR[] = [];
  const masq: CIDR[] = [];
  for (const p of pools) {
    if (p.cidr.family !== family) continue;
    all.push(p.cidr);
    if (p.natOutgoing) masq.push(p.cidr);
  }
  const keyType = family === 4 ? "ipv4_addr" : "ipv6_addr";
  const mk = (id: string, cidrs: CIDR[]): DesiredSet => ({
    spec: { name: ipSetName(family, id), keyType, interval: true },
    elements: new Set(collapse(cidrs).map(prefixElement)),
  });
  return [mk(ALL_POOLS_SET_ID, all), mk(MASQ_POOLS_SET_ID, masq)];
}
