/**
 * The path attribute list of an UPDATE (RFC 4271 §4.3) with RFC 7606 error handling: the table
 * of codecs, flags checks, duplicates, unknown attributes, the RFC 6793 merge and the
 * well-known-mandatory check. See docs/bgp-packet.md for the table as implemented.
 */
import { BgpError } from "../errors.js";
import {
  AttrFlag,
  AttrType,
  type CodecContext,
  type DecodedUpdate,
  ErrorCode,
  type PathAttributes,
  UpdateSubcode,
} from "../types.js";
import { ByteWriter, copyBytes, readU16 } from "../wire.js";
import {
  AGGREGATOR,
  AS4_AGGREGATOR,
  ATOMIC_AGGREGATE,
  encodeAggregate,
  finishAggregator,
} from "./aggregator.js";
import { AS4_PATH, AS_PATH, encodeAsPath, finishAsPath } from "./as-path.js";
import {
  type AttributeCodec,
  type DecodeState,
  type ErrorApproach,
  MalformedAttribute,
  type WireAttribute,
} from "./attribute.js";
import { COMMUNITIES, LARGE_COMMUNITY, encodeCommunities } from "./communities.js";
import { LOCAL_PREF, MULTI_EXIT_DISC, encodeMetrics } from "./metrics.js";
import { MP_REACH_NLRI, MP_UNREACH_NLRI, encodeMpNlri } from "./mp-nlri.js";
import { prefixCount } from "../nlri.js";
import { NEXT_HOP, encodeNextHop } from "./next-hop.js";
import { ORIGIN, encodeOrigin } from "./origin.js";
import { CLUSTER_LIST, ORIGINATOR_ID, encodeReflection } from "./reflection.js";

export const ATTRIBUTE_CODECS: ReadonlyMap<number, AttributeCodec> = new Map(
  [
    ORIGIN,
    AS_PATH,
    NEXT_HOP,
    MULTI_EXIT_DISC,
    LOCAL_PREF,
    ATOMIC_AGGREGATE,
    AGGREGATOR,
    COMMUNITIES,
    ORIGINATOR_ID,
    CLUSTER_LIST,
    MP_REACH_NLRI,
    MP_UNREACH_NLRI,
    AS4_PATH,
    AS4_AGGREGATOR,
    LARGE_COMMUNITY,
  ].map((c) => [c.code, c]),
);

const isMp = (code: number): boolean => code === AttrType.MP_REACH_NLRI || code === AttrType.MP_UNREACH_NLRI;

const attrName = (code: number): string => ATTRIBUTE_CODECS.get(code)?.name ?? `attribute ${code}`;

export interface DecodedAttributes {
  attributes: PathAttributes;
  treatAsWithdraw?: NonNullable<DecodedUpdate["treatAsWithdraw"]>;
  discarded: NonNullable<DecodedUpdate["discarded"]>;
}

/**
 * Decode `b[start, end)` as path attributes. `hasBodyNlri` says whether the UPDATE carries IPv4
 * NLRI in its body (NEXT_HOP is then mandatory). Throws BgpError for session-reset errors.
 */
export function decodePathAttributes(
  b: Uint8Array,
  start: number,
  end: number,
  ctx: CodecContext,
  hasBodyNlri: boolean,
): DecodedAttributes {
  const st: DecodeState = { ctx, attrs: {} };
  const out: DecodedAttributes = { attributes: st.attrs, discarded: [] };
  const withdraw = (subcode: number, reason: string): void => {
    out.treatAsWithdraw ??= { subcode, reason };
  };
  const fail = (
    code: number,
    approach: ErrorApproach,
    subcode: number,
    reason: string,
    whole: Uint8Array,
  ): void => {
    const text = `${attrName(code)}: ${reason}`;
    if (approach === "session-reset") {
      throw new BgpError(ErrorCode.UPDATE_MESSAGE, subcode, copyBytes(whole), `UPDATE rejected: ${text}`);
    }
    if (approach === "treat-as-withdraw") withdraw(subcode, text);
    else out.discarded.push({ code, reason: text });
  };
  const seen = new Set<number>();
  const unknown: NonNullable<PathAttributes["unknown"]> = [];

  let at = start;
  while (at < end) {
    // RFC 7606 §4: too few octets for an attribute header, or an attribute running past the
    // Total Path Attribute Length → treat-as-withdraw; the NLRI is still found from the total.
    const flags = b[at] ?? 0;
    const hdr = flags & AttrFlag.EXTENDED_LENGTH ? 4 : 3;
    if (end - at < hdr) {
      withdraw(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `${end - at} stray octets after the last attribute`);
      break;
    }
    const code = b[at + 1] ?? 0;
    const len = hdr === 4 ? readU16(b, at + 2) : (b[at + 2] ?? 0);
    const vStart = at + hdr;
    const vEnd = vStart + len;
    if (vEnd > end) {
      const reason = `${attrName(code)} claims ${len} octets, only ${end - vStart} remain in the attribute list`;
      // An overrunning MP_REACH/MP_UNREACH hides NLRI we would have to withdraw: reset (§7.11).
      if (isMp(code)) {
        throw new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
          new Uint8Array(0),
          `UPDATE rejected: ${reason}`,
        );
      }
      withdraw(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, reason);
      break;
    }
    const whole = b.subarray(at, vEnd);
    const value = b.subarray(vStart, vEnd);
    at = vEnd;

    // RFC 7606 §3 g: a repeated MP_* is fatal; any other repeat is dropped, the first kept.
    if (seen.has(code)) {
      if (isMp(code)) {
        throw new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          new Uint8Array(0),
          `UPDATE rejected: ${attrName(code)} appears more than once`,
        );
      }
      out.discarded.push({ code, reason: `${attrName(code)}: repeated; the first one is kept` });
      continue;
    }
    seen.add(code);

    const codec = ATTRIBUTE_CODECS.get(code);
    if (codec === undefined) {
      // RFC 4271 §6.3: an unrecognized well-known attribute is fatal; RFC 4271 §5: optional
      // transitive ones are passed on with Partial set, optional non-transitive ones dropped.
      if ((flags & AttrFlag.OPTIONAL) === 0) {
        throw new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          copyBytes(whole),
          `UPDATE rejected: attribute ${code} is flagged well-known but we do not know it`,
        );
      }
      if (flags & AttrFlag.TRANSITIVE) {
        unknown.push({
          flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE | AttrFlag.PARTIAL,
          code,
          data: copyBytes(value),
        });
      }
      continue;
    }

    // RFC 7606 §3 c: Optional/Transitive bits in conflict → malformed, treat-as-withdraw unless
    // the attribute's own rules are stronger (MP_*: session reset, §7.11).
    if ((flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) !== codec.flags) {
      fail(
        code,
        isMp(code) ? "session-reset" : "treat-as-withdraw",
        UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
        `flags 0x${flags.toString(16).padStart(2, "0")} conflict with its type`,
        whole,
      );
      continue;
    }
    try {
      const r = codec.decode(value, st);
      if (r !== undefined) out.discarded.push({ code, reason: `${codec.name}: ${r.discard}` });
    } catch (e) {
      if (!(e instanceof MalformedAttribute)) throw e;
      fail(code, codec.onError, e.subcode, e.reason, whole);
    }
  }
  // Kept in type-code order, the order the encoder sends them in, so decode∘encode is stable.
  if (unknown.length > 0) st.attrs.unknown = unknown.sort((x, y) => x.code - y.code);

  // RFC 6793 §4.2.3 on a 2-octet session.
  if (!ctx.as4) {
    if (finishAggregator(st)) finishAsPath(st);
  }

  // RFC 7606 §3 d: a missing well-known mandatory attribute → treat-as-withdraw. NEXT_HOP is
  // mandatory only with IPv4 NLRI in the body (RFC 4760 §3).
  const hasMpNlri = st.attrs.mpReach !== undefined && prefixCount(st.attrs.mpReach, "nlri") > 0;
  if (hasBodyNlri || hasMpNlri) {
    const required: [number, unknown][] = [
      [AttrType.ORIGIN, st.attrs.origin],
      [AttrType.AS_PATH, st.attrs.asPath],
    ];
    if (hasBodyNlri) required.push([AttrType.NEXT_HOP, st.attrs.nextHop]);
    for (const [code, v] of required) {
      if (v === undefined && !seen.has(code)) {
        withdraw(UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE, `${attrName(code)} is missing`);
      }
    }
  }
  return out;
}

/**
 * Encode path attributes: MP_REACH_NLRI / MP_UNREACH_NLRI first (RFC 7606 §5.1), then the rest
 * by type code; Extended Length only when a value exceeds 255 octets (RFC 7606 §5.2 lets the
 * receiver accept both).
 */
export function encodePathAttributes(a: PathAttributes, ctx: CodecContext): Uint8Array {
  const list: WireAttribute[] = [];
  encodeMpNlri(a, list);
  const rest: WireAttribute[] = [];
  encodeOrigin(a, rest);
  encodeAsPath(a, ctx, rest);
  encodeNextHop(a, rest);
  encodeMetrics(a, rest);
  encodeAggregate(a, ctx, rest);
  encodeCommunities(a, rest);
  encodeReflection(a, rest);
  for (const u of a.unknown ?? []) rest.push({ flags: u.flags, code: u.code, value: u.data });
  rest.sort((x, y) => x.code - y.code);
  const w = new ByteWriter();
  for (const attr of [...list, ...rest]) {
    const ext = attr.value.length > 255;
    const flags = (attr.flags & 0xe0) | (ext ? AttrFlag.EXTENDED_LENGTH : 0);
    w.u8(flags).u8(attr.code);
    if (ext) w.u16(attr.value.length);
    else w.u8(attr.value.length);
    w.bytes(attr.value);
  }
  return w.finish();
}
