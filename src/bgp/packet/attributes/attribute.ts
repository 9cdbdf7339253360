/**
 * What every path-attribute codec declares (RFC 4271 §4.3, §5; RFC 7606 §7): its type code,
 * the Optional/Transitive bits it must carry, and the RFC 7606 approach when it is malformed.
 * Decoders throw `MalformedAttribute` with the RFC 4271 §6.3 subcode; the dispatcher in
 * `path-attributes.ts` turns that into treat-as-withdraw, attribute discard or a NOTIFICATION.
 */
import type { CIDR } from "../../../api/net.js";
import type { AsPathSegment, CodecContext, PathAttributes } from "../types.js";

/** RFC 7606 §2. "AFI/SAFI disable" is not offered: we reset instead (§2 allows either). */
export type ErrorApproach = "treat-as-withdraw" | "attribute-discard" | "session-reset";

export class MalformedAttribute extends Error {
  constructor(
    readonly subcode: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Scratch space while decoding one UPDATE: AS4_* are held aside until the merge (RFC 6793 §4.2.3). */
export interface DecodeState {
  ctx: CodecContext;
  attrs: PathAttributes;
  as4Path?: AsPathSegment[];
  as4Aggregator?: { asn: number; address: CIDR };
}

export interface AttributeCodec {
  code: number;
  name: string;
  /** The expected Optional and Transitive bits (Partial and Extended Length are not checked). */
  flags: number;
  onError: ErrorApproach;
  /** Decode the value into `st`; return `{ discard }` to drop it without it being an error. */
  decode(v: Uint8Array, st: DecodeState): void | { discard: string };
}

/** One attribute ready for the wire. */
export interface WireAttribute {
  flags: number;
  code: number;
  value: Uint8Array;
}
