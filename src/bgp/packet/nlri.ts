/**
 * Prefixes on the wire (RFC 4271 §4.3, RFC 4760 §5): a length octet then the fewest octets
 * that hold that many bits. Trailing bits beyond the length are "irrelevant" (RFC 4271 §4.3):
 * we accept any value and mask them off, so decoded CIDRs are always network addresses.
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import { familyBits, formatCIDR, hostMask } from "../../api/net.js";
import { BgpEncodeError } from "./errors.js";
import { readAddr, type ByteWriter } from "./wire.js";

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
    const raw = readAddr(b, at + 1, octets) << BigInt(bits - octets * 8);
    out.push({ family, addr: raw & ~hostMask(family, prefix), prefix });
    at += 1 + octets;
  }
  return out;
}
