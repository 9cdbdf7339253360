/**
 * UPDATE (RFC 4271 §4.3) with RFC 7606 error handling, and End-of-RIB (RFC 4724 §2).
 *
 * Session reset (a thrown BgpError) is kept for what RFC 7606 still makes fatal: lengths that
 * do not add up (§4), syntactically incorrect NLRI or withdrawn routes (§5.3), malformed or
 * repeated MP_* (§3 g, §7.11) and unrecognized well-known attributes (RFC 4271 §6.3).
 */
import { ByteWriter, copyBytes, readU16 } from "./wire.js";
import { decodePathAttributes, encodePathAttributes } from "./attributes/path-attributes.js";
import { BgpEncodeError, BgpError } from "./errors.js";
import { countPrefixes, decodePrefixes, encodePrefixes, lazyPrefixes, prefixCount } from "./nlri.js";
import {
  AFI,
  type AfiSafi,
  type CodecContext,
  type DecodedUpdate,
  ErrorCode,
  MessageType,
  SAFI,
  type UpdateMessage,
  UpdateSubcode,
} from "./types.js";

function fatal(subcode: number, why: string): BgpError {
  return new BgpError(ErrorCode.UPDATE_MESSAGE, subcode, new Uint8Array(0), `UPDATE rejected: ${why}`);
}

/** Decode an UPDATE body (the octets after the 19-octet header). */
export function decodeUpdate(b: Uint8Array, ctx: CodecContext): DecodedUpdate {
  if (b.length < 4)
    throw fatal(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `body of ${b.length} octets is too short`);
  const wl = readU16(b, 0);
  if (2 + wl + 2 > b.length) {
    throw fatal(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `withdrawn routes length ${wl} overruns the message`);
  }
  const tal = readU16(b, 2 + wl);
  const attrStart = 4 + wl;
  if (attrStart + tal > b.length) {
    throw fatal(
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      `withdrawn routes length ${wl} + total path attribute length ${tal} exceed the ${b.length - 4} octets available`,
    );
  }
  const withdrawn = decodePrefixes(b, 2, 2 + wl, 4);
  if ("error" in withdrawn)
    throw fatal(UpdateSubcode.INVALID_NETWORK_FIELD, `withdrawn routes: ${withdrawn.error}`);
  // Checked now (an error resets the session), decoded when read (see lazyPrefixes).
  const count = countPrefixes(b, attrStart + tal, b.length, 4);
  if (typeof count !== "number") throw fatal(UpdateSubcode.INVALID_NETWORK_FIELD, `NLRI: ${count.error}`);
  const a = decodePathAttributes(b, attrStart, attrStart + tal, ctx, count > 0);
  const update: UpdateMessage = { type: MessageType.UPDATE, withdrawn, attributes: a.attributes, nlri: [] };
  if (count > 0) lazyPrefixes(update, "nlri", { bytes: copyBytes(b, attrStart + tal), family: 4, count });
  const out: DecodedUpdate = { update };
  if (a.treatAsWithdraw !== undefined) out.treatAsWithdraw = a.treatAsWithdraw;
  if (a.discarded.length > 0) out.discarded = a.discarded;
  return out;
}

export function encodeUpdateBody(u: UpdateMessage, ctx: CodecContext): Uint8Array {
  const w = new ByteWriter();
  const wl = w.placeholder16();
  encodePrefixes(w, 4, u.withdrawn);
  w.patchU16(wl, w.length - 2);
  const attrs = encodePathAttributes(u.attributes, ctx);
  if (attrs.length > 0xffff) throw new BgpEncodeError(`path attributes of ${attrs.length} octets do not fit`);
  w.u16(attrs.length).bytes(attrs);
  encodePrefixes(w, 4, u.nlri);
  return w.finish();
}

/** The End-of-RIB marker for a family (RFC 4724 §2). */
export function endOfRib(afi: number, safi: number): UpdateMessage {
  const base = { type: MessageType.UPDATE, withdrawn: [], nlri: [] } as const;
  if (afi === AFI.IPV4 && safi === SAFI.UNICAST) return { ...base, withdrawn: [], nlri: [], attributes: {} };
  return { ...base, withdrawn: [], nlri: [], attributes: { mpUnreach: { afi, safi, withdrawn: [] } } };
}

/** Which family this End-of-RIB marker closes, or undefined if it is not one. */
export function endOfRibFamily(u: UpdateMessage): AfiSafi | undefined {
  if (u.withdrawn.length > 0 || prefixCount(u, "nlri") > 0) return undefined;
  const keys = Object.entries(u.attributes).filter(([, v]) => v !== undefined);
  if (keys.length === 0) return { afi: AFI.IPV4, safi: SAFI.UNICAST };
  const mp = u.attributes.mpUnreach;
  if (keys.length === 1 && mp !== undefined && mp.withdrawn.length === 0)
    return { afi: mp.afi, safi: mp.safi };
  return undefined;
}

export function isEndOfRib(u: UpdateMessage): boolean {
  return endOfRibFamily(u) !== undefined;
}
