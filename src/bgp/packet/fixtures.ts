/**
 * Test helpers: build raw messages from hex pieces, so malformed-message tables read like the
 * wire. Used only by the *.test.ts files beside it.
 */
export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
export const toHexString = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const h2 = (n: number): string => n.toString(16).padStart(4, "0");
const h1 = (n: number): string => n.toString(16).padStart(2, "0");

export const MARKER = "ff".repeat(16);

/** A whole message: marker, length (computed unless given), type, body. */
export function msg(type: number, bodyHex: string, length?: number): Uint8Array {
  const body = bodyHex.replace(/\s+/g, "");
  return hex(MARKER + h2(length ?? 19 + body.length / 2) + h1(type) + body);
}

/** One path attribute; the length field is 2 octets when the Extended Length flag is set. */
export function attr(flags: number, code: number, valueHex: string, length?: number): string {
  const v = valueHex.replace(/\s+/g, "");
  const len = length ?? v.length / 2;
  return h1(flags) + h1(code) + (flags & 0x10 ? h2(len) : h1(len)) + v;
}

/** An UPDATE message from its three parts (lengths computed unless overridden). */
export function update(
  withdrawnHex: string,
  attrsHex: string,
  nlriHex: string,
  o: { withdrawnLength?: number; attrsLength?: number } = {},
): Uint8Array {
  const w = withdrawnHex.replace(/\s+/g, "");
  const a = attrsHex.replace(/\s+/g, "");
  return msg(2, h2(o.withdrawnLength ?? w.length / 2) + w + h2(o.attrsLength ?? a.length / 2) + a + nlriHex);
}

export const ORIGIN_IGP = attr(0x40, 1, "00");
/** AS_PATH: one sequence [65000], 4-octet encoding. */
export const AS_PATH_4 = attr(0x40, 2, "02 01 0000fde8");
/** AS_PATH: one sequence [65000], 2-octet encoding. */
export const AS_PATH_2 = attr(0x40, 2, "02 01 fde8");
export const NEXT_HOP_10_0_0_1 = attr(0x40, 3, "0a000001");
/** ORIGIN, AS_PATH (4-octet), NEXT_HOP: enough for IPv4 NLRI. */
export const BASE4 = ORIGIN_IGP + AS_PATH_4 + NEXT_HOP_10_0_0_1;
/** 10.1.0.0/16 */
export const NLRI_10_1 = "100a01";

/** An OPEN body: version, AS, hold, id, then optional parameters (length computed). */
export function openBody(o: {
  version?: number;
  as?: number;
  hold?: number;
  id?: string;
  params?: string;
}): string {
  const p = (o.params ?? "").replace(/\s+/g, "");
  return (
    h1(o.version ?? 4) + h2(o.as ?? 65000) + h2(o.hold ?? 90) + (o.id ?? "0a000001") + h1(p.length / 2) + p
  );
}
