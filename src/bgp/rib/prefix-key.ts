/**
 * Map keys for prefixes. IPv4 keys are numbers (addr·33 + length < 2^38, exact in a double):
 * cheaper than strings at a million routes. IPv6 keys are strings.
 */
import type { CIDR } from "../../api/net.js";

export type PrefixKey = number | string;

export function prefixKey(c: CIDR): PrefixKey {
  return c.family === 4 ? Number(c.addr) * 33 + c.prefix : `${c.addr.toString(16)}/${c.prefix}`;
}
