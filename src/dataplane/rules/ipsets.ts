/**
 * IP sets → nft named sets, one per family (reference/calico.md §1.5): selector sets are
 * interval sets of prefixes; named-port sets are `ipv4_addr . inet_proto . inet_service`.
 * Interval sets refuse overlapping elements, so a net set is programmed as its minimal cover
 * (a /32 inside a listed /24 is dropped).
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import { familyBits, formatIP, hostMask, networkOf, parseCIDROrIP, parseIP } from "../../api/net.js";
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

/** A prefix with its element text and last address, computed once per distinct member. */
interface ParsedNet {
  cidr: CIDR;
  /** Last address covered (for the containment check). */
  end: bigint;
  element: SetElement;
}

const parsedNet = (c: CIDR): ParsedNet => {
  const n = networkOf(c);
  return { cidr: n, end: n.addr | hostMask(n.family, n.prefix), element: prefixElement(n) };
};

/** The minimal cover, sorted by address (`collapse` over already parsed prefixes). */
function collapseParsed(nets: ParsedNet[]): ParsedNet[] {
  nets.sort((a, b) =>
    a.cidr.addr < b.cidr.addr ? -1 : a.cidr.addr > b.cidr.addr ? 1 : a.cidr.prefix - b.cidr.prefix,
  );
  const out: ParsedNet[] = [];
  let lastEnd = -1n;
  for (const n of nets) {
    if (n.cidr.addr <= lastEnd) continue; // inside the previous kept prefix
    out.push(n);
    lastEnd = n.end;
  }
  return out;
}

/** The minimal set of prefixes covering `cidrs` with no element inside another. */
export function collapse(cidrs: CIDR[]): CIDR[] {
  return collapseParsed(cidrs.map(parsedNet)).map((n) => n.cidr);
}

/**
 * Member text → its parsed form (null: not an address). An endpoint's address is a member of
 * every set selecting it, and a set is rebuilt whole when one member changes, so parsing
 * (bigint arithmetic) once per distinct member instead of once per (set, member) is most of the
 * cold start's set cost; the element strings are shared by every set holding them, too.
 * Scoped to one table computation (`clearMemberCaches`, called by DesiredTable after a rebuild
 * or an update): kept for good, the three caches held ~17 MiB on the bench table (80,000
 * parsed members) for the few sets a later change rebuilds. Also bounded.
 */
class MemberCache<T> {
  private readonly map = new Map<string, T | null>();
  constructor(
    private readonly parse: (member: string) => T | null,
    private readonly limit = 1 << 18,
  ) {}
  clear(): void {
    this.map.clear();
  }

  get(member: string): T | null {
    let v = this.map.get(member);
    if (v === undefined) {
      if (this.map.size >= this.limit) this.map.clear();
      v = this.parse(member);
      this.map.set(member, v);
    }
    return v;
  }
}

/** One host address, shared by its net member (`addr/32`) and its named-port members. */
const addresses = new MemberCache<ParsedNet>((a) => {
  const ip = parseIP(a);
  if (ip === undefined) return null;
  // A host prefix is its own network and last address: no masking arithmetic.
  const cidr: CIDR = { family: ip.family, addr: ip.value, prefix: familyBits(ip.family) };
  return { cidr, end: ip.value, element: formatIP(ip.family, ip.value) };
});

const netMembers = new MemberCache<ParsedNet>((m) => {
  const slash = m.indexOf("/");
  const host = slash < 0 ? undefined : addresses.get(m.slice(0, slash));
  if (host !== undefined && host !== null && m.slice(slash + 1) === String(familyBits(host.cidr.family)))
    return host;
  const c = parseCIDROrIP(m);
  return c === undefined ? null : parsedNet(c);
});

function netElements(members: Iterable<string>, family: IPFamily): Set<SetElement> {
  const nets: ParsedNet[] = [];
  for (const m of members) {
    const n = netMembers.get(m);
    if (n !== null && n.cidr.family === family) nets.push(n);
  }
  return new Set(collapseParsed(nets).map((n) => n.element));
}

/** `198.19.0.5,6,8080` → `198.19.0.5 . 6 . 8080` (undefined for the other family or junk). */
export function ipPortElement(member: string, family: IPFamily): SetElement | undefined {
  const e = ipPortMembers.get(member);
  return e === null || e.family !== family ? undefined : e.element;
}

const ipPortMembers = new MemberCache<{ family: IPFamily; element: SetElement }>((member) => {
  const [addr, proto, port] = member.split(",");
  if (addr === undefined || proto === undefined || port === undefined) return null;
  if (!/^\d+$/.test(proto) || !/^\d+$/.test(port)) return null;
  let family: IPFamily;
  let text: string;
  if (addr.includes("/")) {
    const c = parseCIDROrIP(addr);
    if (c === undefined) return null;
    family = c.family;
    text = formatIP(c.family, c.addr);
  } else {
    const host = addresses.get(addr);
    if (host === null) return null;
    family = host.cidr.family;
    text = host.element;
  }
  return { family, element: `${text} . ${Number(proto)} . ${Number(port)}` };
});

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

/** Drop the parsed members (end of a table computation; see MemberCache). */
export function clearMemberCaches(): void {
  addresses.clear();
  netMembers.clear();
  ipPortMembers.clear();
}
