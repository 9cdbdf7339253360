/**
 * IP addresses and CIDRs as native values (bigint), parsed strictly. Wire/API strings stay at
 * the edges (STYLE.md): validators and IPAM work on these.
 */
export type IPFamily = 4 | 6;

export interface IPAddr {
  family: IPFamily;
  value: bigint;
}

export interface CIDR {
  family: IPFamily;
  /** The address as written (host bits may be set; see `isMasked`). */
  addr: bigint;
  prefix: number;
}

export const familyBits = (family: IPFamily): number => (family === 4 ? 32 : 128);

const V4_OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!V4_OCTET.test(p)) return undefined;
    v = (v << 8n) | BigInt(Number(p));
  }
  return v;
}

function parseV6(text: string): bigint | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  // An embedded dotted-quad tail (::ffff:1.2.3.4) counts as two groups.
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.slice(lastColon + 1).includes(".")) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const dbl = head.indexOf("::");
  if (dbl !== head.lastIndexOf("::")) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = parseGroups(head.slice(0, dbl));
    const right = parseGroups(head.slice(dbl + 2));
    if (left === undefined || right === undefined || left.length + right.length > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Parse an IPv4 or IPv6 address; undefined if it is not one. */
export function parseIP(text: string): IPAddr | undefined {
  if (text.includes(":")) {
    const value = parseV6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseV4(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** Parse `addr/prefix`; undefined if malformed. A bare address is not a CIDR here. */
export function parseCIDR(text: string): CIDR | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > familyBits(ip.family)) return undefined;
  return { family: ip.family, addr: ip.value, prefix };
}

/** Parse a CIDR, or a bare address as a host CIDR (/32 or /128), as Calico's nets fields accept. */
export function parseCIDROrIP(text: string): CIDR | undefined {
  if (text.includes("/")) return parseCIDR(text);
  const ip = parseIP(text);
  return ip === undefined ? undefined : { family: ip.family, addr: ip.value, prefix: familyBits(ip.family) };
}

export function hostMask(family: IPFamily, prefix: number): bigint {
  const bits = BigInt(familyBits(family) - prefix);
  return (1n << bits) - 1n;
}

/** True when no host bits are set (e.g. `198.18.0.0/24`, not `198.19.0.1/24`). */
export function isMasked(c: CIDR): boolean {
  return (c.addr & hostMask(c.family, c.prefix)) === 0n;
}

export function networkOf(c: CIDR): CIDR {
  return { family: c.family, addr: c.addr & ~hostMask(c.family, c.prefix), prefix: c.prefix };
}

export function cidrContains(outer: CIDR, inner: CIDR): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const mask = ~hostMask(outer.family, outer.prefix);
  return (outer.addr & mask) === (inner.addr & mask);
}

export function cidrsOverlap(a: CIDR, b: CIDR): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

export function formatIP(family: IPFamily, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 §4.2: compress the longest run (≥2) of zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const left = hex.slice(0, bestStart).join(":");
  const right = hex.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}

export function formatCIDR(c: CIDR): string {
  return `${formatIP(c.family, c.addr)}/${c.prefix}`;
}
