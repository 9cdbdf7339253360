/**
 * Set elements: parsing the canonical text model.ts documents into values, and printing values
 * back in exactly the form `NftCli.list` normalises nft's JSON to, so that `FakeNft` and the
 * kernel list the same strings.
 *
 * Canonical forms (what nft prints, normalised):
 * - addresses: `198.19.0.5`, `fd00:19::5`; in interval sets a prefix `198.19.0.0/26` (masked;
 *   a full-length prefix prints as the address) or, when not a prefix, a range `a-b`;
 * - `198.19.0.5 . 6 . 8080` (protocol as a number);
 * - `cali1234` for ifnames (unquoted), `80` for ports.
 */
import { familyBits, formatIP, parseCIDR, parseIP, type IPFamily } from "../../api/net.js";
import { CalicoError } from "../../errors.js";
import type { SetKeyType } from "./model.js";

export const NFT_BAD_ELEMENT = "NFT_BAD_ELEMENT";

export type ElementValue =
  | { kind: "addr"; family: IPFamily; lo: bigint; hi: bigint }
  | { kind: "concat"; family: IPFamily; addr: bigint; proto: number; port: number }
  | { kind: "ifname"; name: string }
  | { kind: "port"; port: number };

function bad(keyType: string, text: string, why: string): CalicoError {
  return new CalicoError(NFT_BAD_ELEMENT, `Cannot use element "${text}" in a set of type ${keyType}: ${why}`);
}

const keyFamily = (kt: SetKeyType): IPFamily => (kt.startsWith("ipv6") ? 6 : 4);

function parseAddrOrInterval(kt: SetKeyType, text: string, interval: boolean): ElementValue {
  const family = keyFamily(kt);
  const bits = familyBits(family);
  const t = text.trim();
  const dash = t.indexOf("-");
  if (dash >= 0) {
    const a = parseIP(t.slice(0, dash).trim());
    const b = parseIP(t.slice(dash + 1).trim());
    if (a === undefined || b === undefined || a.family !== family || b.family !== family)
      throw bad(kt, text, "not a range of IPv" + family + " addresses");
    if (!interval) throw bad(kt, text, "ranges need an interval set");
    if (a.value > b.value) throw bad(kt, text, "range start after range end");
    return { kind: "addr", family, lo: a.value, hi: b.value };
  }
  if (t.includes("/")) {
    const c = parseCIDR(t);
    if (c === undefined || c.family !== family) throw bad(kt, text, `not an IPv${family} prefix`);
    if (!interval && c.prefix !== bits) throw bad(kt, text, "prefixes need an interval set");
    const host = (1n << BigInt(bits - c.prefix)) - 1n;
    const lo = c.addr & ~host;
    return { kind: "addr", family, lo, hi: lo | host };
  }
  const ip = parseIP(t);
  if (ip === undefined || ip.family !== family) throw bad(kt, text, `not an IPv${family} address`);
  return { kind: "addr", family, lo: ip.value, hi: ip.value };
}

function parsePort(kt: SetKeyType, text: string): number {
  const t = text.trim();
  if (!/^\d{1,5}$/.test(t) || Number(t) > 65535) throw bad(kt, text, "not a port number");
  return Number(t);
}

/** Parse canonical element text for a set of key type `kt`; throws NFT_BAD_ELEMENT. */
export function parseElement(kt: SetKeyType, text: string, interval = false): ElementValue {
  switch (kt) {
    case "ipv4_addr":
    case "ipv6_addr":
      return parseAddrOrInterval(kt, text, interval);
    case "ipv4_addr . inet_proto . inet_service":
    case "ipv6_addr . inet_proto . inet_service": {
      const parts = text.split(" . ");
      if (parts.length !== 3) throw bad(kt, text, 'expected "addr . proto . port"');
      const family = keyFamily(kt);
      const ip = parseIP(parts[0]!.trim());
      if (ip === undefined || ip.family !== family) throw bad(kt, text, `not an IPv${family} address`);
      const p = parts[1]!.trim();
      if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw bad(kt, text, "protocol must be a number 0-255");
      return { kind: "concat", family, addr: ip.value, proto: Number(p), port: parsePort(kt, parts[2]!) };
    }
    case "ifname": {
      const name = text;
      if (name.length === 0 || name.length > 15 || /["\s\\]/.test(name))
        throw bad(kt, text, "not an interface name");
      return { kind: "ifname", name };
    }
    case "inet_service":
      return { kind: "port", port: parsePort(kt, text) };
  }
}

/** The prefix length when [lo, hi] is exactly one prefix, else undefined. */
export function prefixOf(family: IPFamily, lo: bigint, hi: bigint): number | undefined {
  const size = hi - lo + 1n;
  if ((size & (size - 1n)) !== 0n) return undefined; // not a power of two
  if ((lo & (size - 1n)) !== 0n) return undefined; // not aligned
  let len = familyBits(family);
  for (let s = size; s > 1n; s >>= 1n) len--;
  return len;
}

export function formatElement(v: ElementValue): string {
  switch (v.kind) {
    case "addr": {
      if (v.lo === v.hi) return formatIP(v.family, v.lo);
      const len = prefixOf(v.family, v.lo, v.hi);
      return len !== undefined
        ? `${formatIP(v.family, v.lo)}/${len}`
        : `${formatIP(v.family, v.lo)}-${formatIP(v.family, v.hi)}`;
    }
    case "concat":
      return `${formatIP(v.family, v.addr)} . ${v.proto} . ${v.port}`;
    case "ifname":
      return v.name;
    case "port":
      return String(v.port);
  }
}

/** Canonical text of an element (throws NFT_BAD_ELEMENT when it does not fit the key type). */
export function canonicalElement(kt: SetKeyType, text: string, interval = true): string {
  return formatElement(parseElement(kt, text, interval));
}

/** Intervals overlap (both address values). */
export function intervalsOverlap(a: ElementValue, b: ElementValue): boolean {
  return a.kind === "addr" && b.kind === "addr" && a.lo <= b.hi && b.lo <= a.hi;
}
