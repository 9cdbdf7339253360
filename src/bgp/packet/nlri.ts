/**
 * Prefixes on the wire (RFC 4271 §4.3, RFC 4760 §5): a length octet then the fewest octets
 * that hold that many bits. Trailing bits beyond the length are "irrelevant" (RFC 4271 §4.3):
 * we accept any value and mask them off, so decoded CIDRs are always network addresses.
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import { familyBits, formatCIDR, hostMask } from "../../api/net.js";
import { BgpEncodeError } from "./errors.js";
import type { ByteWriter } from "./wire.js";

export function encodePrefixes(w: ByteWriter, family: IPFamily, prefixes: readonly CIDR[]): void {
  const bits = familyBits(family);
  for (const c of prefixes) {
    if (c.family !== family || c.prefix < 0 || c.prefix > bits) {
      throw new BgpEncodeError(`cannot encode prefix ${formatCIDR(c)} as an IPv${family} NLRI`);
    }
    w.u8(c.prefix);
    const octets = Math.ceil(c.prefix / 8);
    const net = c.addr & ~hostMask(family, c.prefix);
    for (let i = 0; i < octets; i++) w.u8(Number((net >> BigInt(bits - 8 - i * 8)) & 0xffn));
  }
}

/** The big-endian 32-bit word `i` of an address given by its first `octets` bytes at `at`
 * (missing bytes are zero), masked to the first `prefix` bits of the address. */
function word(b: Uint8Array, at: number, octets: number, i: number, prefix: number): number {
  let w = 0;
  for (let j = 0; j < 4; j++) {
    const k = i * 4 + j;
    w = (w << 8) | (k < octets ? (b[at + k] ?? 0) : 0);
  }
  const keep = prefix - i * 32; // bits of this word inside the prefix
  if (keep >= 32) return w >>> 0;
  if (keep <= 0) return 0;
  return (w & ~(0xffffffff >>> keep)) >>> 0;
}

/** 16 octets to read an IPv6 prefix through (two 64-bit reads: 4 BigInts per prefix, not 12). */
const scratch = new DataView(new ArrayBuffer(16));

/** The network address of a wire prefix: at a million prefixes per table dump, byte-wise
 * BigInt arithmetic was a large share of decoding, and every BigInt is garbage to collect. */
function networkAddr(b: Uint8Array, at: number, octets: number, prefix: number, bits: number): bigint {
  if (bits === 32) return BigInt(word(b, at, octets, 0, prefix));
  for (let i = 0; i < 4; i++) scratch.setUint32(i * 4, i * 4 < octets ? word(b, at, octets, i, prefix) : 0);
  const hi = scratch.getBigUint64(0);
  if (prefix <= 64) return hi << 64n;
  return (hi << 64n) | scratch.getBigUint64(8);
}

/**
 * Decode a run of prefixes filling `b[start, end)`. Returns a reason string if the field is
 * syntactically incorrect (RFC 7606 §5.3: a length beyond 32/128 or an overrun); the caller
 * picks the NOTIFICATION, which depends on where the field sits.
 */
export function decodePrefixes(
  b: Uint8Array,
  start: number,
  end: number,
  family: IPFamily,
): CIDR[] | { error: string } {
  const bits = familyBits(family);
  const out: CIDR[] = [];
  let at = start;
  while (at < end) {
    const prefix = b[at] ?? 0;
    if (prefix > bits) return { error: `prefix length ${prefix} is longer than ${bits}` };
    const octets = Math.ceil(prefix / 8);
    if (at + 1 + octets > end) {
      return { error: `a /${prefix} needs ${octets} octets but only ${end - at - 1} remain` };
    }
    out.push({ family, addr: networkAddr(b, at + 1, octets, prefix, bits), prefix });
    at += 1 + octets;
  }
  return out;
}

/** Check a run of prefixes in `b[start, end)` without building them: their count, or why
 * the field is syntactically incorrect (the same reasons as `decodePrefixes`). */
export function countPrefixes(
  b: Uint8Array,
  start: number,
  end: number,
  family: IPFamily,
): number | { error: string } {
  const bits = familyBits(family);
  let n = 0;
  let at = start;
  while (at < end) {
    const prefix = b[at] ?? 0;
    if (prefix > bits) return { error: `prefix length ${prefix} is longer than ${bits}` };
    const octets = Math.ceil(prefix / 8);
    if (at + 1 + octets > end) {
      return { error: `a /${prefix} needs ${octets} octets but only ${end - at - 1} remain` };
    }
    n++;
    at += 1 + octets;
  }
  return n;
}

/** The octets of an NLRI field not decoded yet (already checked by `countPrefixes`). */
export interface WirePrefixes {
  /** A copy: the reader's buffers are reused. */
  bytes: Uint8Array;
  family: IPFamily;
  count: number;
}

const WIRE = Symbol("wire prefixes");
type WithWire = { [WIRE]?: Partial<Record<string, WirePrefixes>> };

/**
 * Make `obj[prop]` the prefixes of `wire`, decoded into CIDRs (one object and a BigInt each)
 * only when first read; until then `wirePrefixes` hands the octets to a reader that can do
 * without CIDRs — the RIB, for which a million-route table dump is otherwise a million CIDRs
 * and BigInts to build and collect. To everything else the property is a plain array:
 * enumerable, decoded on first read, then an ordinary data property.
 */
export function lazyPrefixes(obj: object, prop: string, wire: WirePrefixes): void {
  const o = obj as WithWire & Record<string, unknown>;
  if (o[WIRE] === undefined) Object.defineProperty(o, WIRE, { value: {}, enumerable: false });
  o[WIRE]![prop] = wire;
  const settle = (value: unknown) => {
    delete o[WIRE]![prop];
    Object.defineProperty(o, prop, { value, writable: true, enumerable: true, configurable: true });
  };
  Object.defineProperty(o, prop, {
    enumerable: true,
    configurable: true,
    get() {
      const v = decodePrefixes(wire.bytes, 0, wire.bytes.length, wire.family) as CIDR[];
      settle(v);
      return v;
    },
    set(value: unknown) {
      settle(value);
    },
  });
}

/** The octets behind `obj[prop]` if it is still undecoded (see `lazyPrefixes`). */
export function wirePrefixes(obj: object, prop: string): WirePrefixes | undefined {
  return (obj as WithWire)[WIRE]?.[prop];
}

/** How many prefixes `obj[prop]` holds, without decoding them. */
export function prefixCount(obj: object, prop: string): number {
  return wirePrefixes(obj, prop)?.count ?? ((obj as Record<string, unknown>)[prop] as unknown[]).length;
}
