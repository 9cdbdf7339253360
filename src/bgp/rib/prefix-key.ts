/**
 * Compact Map keys for prefixes, and back. At a million routes the key is a large part of a
 * route's memory: IPv4 keys are numbers (addr·33 + length < 2^38, exact in a double; 16 bytes
 * as a heap number), IPv6 keys short two-byte strings (the length, then the address's 16-bit
 * words up to the last non-zero one: 6 characters for a /80 instead of ~35 for hex text).
 * The RIB keeps keys instead of CIDR objects (a CIDR with its BigInt is ~80 bytes) and decodes
 * a prefix only when someone reads it.
 */
import type { CIDR } from "../../api/net.js";

export type PrefixKey = number | string;

/** An IPv6 address as 64-bit halves, read back as 16-bit words (no string, no array). */
const halves = new BigUint64Array(2);
const words = new Uint16Array(halves.buffer);
/** Index in `words` of the address's 16-bit word i (0 = most significant), whatever the
 * platform's byte order. */
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const wordIndex = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
  const half = i < 4 ? 0 : 1;
  const k = i % 4;
  return half * 4 + (LITTLE ? 3 - k : k);
});
/** The 16-bit words of the IPv6 key being built, most significant first. */
const w16 = new Uint16Array(8);

export function prefixKey(c: CIDR): PrefixKey {
  if (c.family === 4) return Number(c.addr) * 33 + c.prefix;
  halves[0] = c.addr >> 64n;
  halves[1] = BigInt.asUintN(64, c.addr);
  for (let i = 0; i < 8; i++) w16[i] = words[wordIndex[i]!]!;
  return v6Key(c.prefix);
}

/**
 * The key of a prefix as it is on the wire (RFC 4271 §4.3: its length octet is `len`, its
 * `ceil(len / 8)` address octets start at `b[at]`; bits past the length are masked off), the
 * same as `prefixKey` of the decoded CIDR, without building the CIDR or a BigInt.
 */
export function wireKey(b: Uint8Array, at: number, len: number, family: 4 | 6): PrefixKey {
  const octets = (len + 7) >> 3;
  if (family === 4) {
    let a = 0;
    for (let j = 0; j < 4; j++) a = a * 256 + (j < octets ? b[at + j]! : 0);
    // Mask the host bits in double arithmetic (no 32-bit sign trouble).
    const host = 2 ** (32 - len);
    return (a - (a % host)) * 33 + len;
  }
  for (let i = 0; i < 8; i++) {
    const keep = len - 16 * i; // bits of this word inside the prefix
    if (keep <= 0) {
      w16[i] = 0;
      continue;
    }
    const hi = 2 * i < octets ? b[at + 2 * i]! : 0;
    const lo = 2 * i + 1 < octets ? b[at + 2 * i + 1]! : 0;
    const v = (hi << 8) | lo;
    w16[i] = keep >= 16 ? v : v & (0xffff << (16 - keep));
  }
  return v6Key(len);
}

/** The IPv6 key of `w16` and a length: trailing zero words dropped, one call with the words
 * as arguments (no intermediate array or string). */
function v6Key(p: number): string {
  const w = w16;
  let end = 8;
  while (end > 0 && w[end - 1] === 0) end--;
  switch (end) {
    case 0:
      return String.fromCharCode(p);
    case 1:
      return String.fromCharCode(p, w[0]!);
    case 2:
      return String.fromCharCode(p, w[0]!, w[1]!);
    case 3:
      return String.fromCharCode(p, w[0]!, w[1]!, w[2]!);
    case 4:
      return String.fromCharCode(p, w[0]!, w[1]!, w[2]!, w[3]!);
    case 5:
      return String.fromCharCode(p, w[0]!, w[1]!, w[2]!, w[3]!, w[4]!);
    case 6:
      return String.fromCharCode(p, w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!);
    case 7:
      return String.fromCharCode(p, w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!, w[6]!);
    default:
      return String.fromCharCode(p, w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!, w[6]!, w[7]!);
  }
}

export function keyPrefix(key: PrefixKey): CIDR {
  if (typeof key === "number") {
    const prefix = key % 33;
    return { family: 4, addr: BigInt((key - prefix) / 33), prefix };
  }
  let addr = 0n;
  for (let i = 1; i <= 8; i++) addr = (addr << 16n) | BigInt(i < key.length ? key.charCodeAt(i) : 0);
  return { family: 6, addr, prefix: key.charCodeAt(0) };
}

/**
 * A key as integers, for tables and records that keep keys inline instead of as objects:
 * writes the address words to `out` (IPv4: `out[0]` = the address as int32; IPv6: four
 * 32-bit words, most significant first) and returns the prefix length, + 256 for IPv6.
 */
export function keyWords(key: PrefixKey, out: Int32Array): number {
  if (typeof key === "number") {
    const len = key % 33;
    out[0] = (key - len) / 33;
    return len;
  }
  const n = key.length;
  for (let j = 0; j < 4; j++) {
    const hi = 1 + 2 * j < n ? key.charCodeAt(1 + 2 * j) : 0;
    const lo = 2 + 2 * j < n ? key.charCodeAt(2 + 2 * j) : 0;
    out[j] = (hi << 16) | lo;
  }
  return key.charCodeAt(0) + 256;
}

/** The inverse of `keyWords`. */
export function wordsKey(lenf: number, w0: number, w1: number, w2: number, w3: number): PrefixKey {
  if (lenf < 256) return (w0 >>> 0) * 33 + lenf;
  const chars = [lenf - 256, w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff];
  chars.push(w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff);
  let end = chars.length;
  while (end > 1 && chars[end - 1] === 0) end--;
  return String.fromCharCode(...chars.slice(0, end));
}

export const keyFamily = (key: PrefixKey): 4 | 6 => (typeof key === "number" ? 4 : 6);
