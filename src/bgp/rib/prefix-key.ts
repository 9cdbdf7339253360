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

const hexDigit = (code: number): number => (code <= 57 ? code - 48 : code - 87);

export function prefixKey(c: CIDR): PrefixKey {
  if (c.family === 4) return Number(c.addr) * 33 + c.prefix;
  // One native BigInt → hex conversion instead of a BigInt shift and mask per word.
  const hex = c.addr.toString(16);
  const pad = 32 - hex.length;
  const words: number[] = [c.prefix];
  for (let i = 0; i < 8; i++) {
    let w = 0;
    for (let j = i * 4; j < i * 4 + 4; j++) w = (w << 4) | (j < pad ? 0 : hexDigit(hex.charCodeAt(j - pad)));
    words.push(w);
  }
  let end = words.length;
  while (end > 1 && words[end - 1] === 0) end--;
  return String.fromCharCode(...words.slice(0, end));
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

export const keyFamily = (key: PrefixKey): 4 | 6 => (typeof key === "number" ? 4 : 6);
