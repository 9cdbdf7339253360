/**
 * ATOMIC_AGGREGATE (RFC 4271 §5.1.6), AGGREGATOR (§5.1.7) and AS4_AGGREGATOR (RFC 6793 §3).
 * All three are "attribute discard" when malformed (RFC 7606 §7.6, §7.7; RFC 6793 §6).
 * AGGREGATOR is 6 octets on a 2-octet session and 8 on a 4-octet one.
 */
import {
  AS_TRANS,
  AttrFlag,
  AttrType,
  type CodecContext,
  type PathAttributes,
  UpdateSubcode,
} from "../types.js";
import { ByteWriter, readU16, readU32 } from "../wire.js";
import {
  type AttributeCodec,
  type DecodeState,
  MalformedAttribute,
  type WireAttribute,
} from "./attribute.js";

const OPT_TRANS = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;

export const ATOMIC_AGGREGATE: AttributeCodec = {
  code: AttrType.ATOMIC_AGGREGATE,
  name: "ATOMIC_AGGREGATE",
  flags: AttrFlag.TRANSITIVE,
  onError: "attribute-discard",
  decode(v, st) {
    if (v.length !== 0)
      throw new MalformedAttribute(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `length ${v.length}, not 0`);
    st.attrs.atomicAggregate = true;
  },
};

export const AGGREGATOR: AttributeCodec = {
  code: AttrType.AGGREGATOR,
  name: "AGGREGATOR",
  flags: OPT_TRANS,
  onError: "attribute-discard",
  decode(v, st) {
    const asnSize = st.ctx.as4 ? 4 : 2;
    if (v.length !== asnSize + 4) {
      throw new MalformedAttribute(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        `length ${v.length}, not ${asnSize + 4}`,
      );
    }
    const asn = asnSize === 4 ? readU32(v, 0) : readU16(v, 0);
    st.attrs.aggregator = { asn, address: { family: 4, addr: BigInt(readU32(v, asnSize)), prefix: 32 } };
  },
};

export const AS4_AGGREGATOR: AttributeCodec = {
  code: AttrType.AS4_AGGREGATOR,
  name: "AS4_AGGREGATOR",
  flags: OPT_TRANS,
  onError: "attribute-discard",
  decode(v, st) {
    if (v.length !== 8)
      throw new MalformedAttribute(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `length ${v.length}, not 8`);
    if (st.ctx.as4) return { discard: "AS4_AGGREGATOR from a 4-octet-AS speaker is ignored (RFC 6793 §4.1)" };
    st.as4Aggregator = {
      asn: readU32(v, 0),
      address: { family: 4, addr: BigInt(readU32(v, 4)), prefix: 32 },
    };
    return undefined;
  },
};

/**
 * RFC 6793 §4.2.3: an AGGREGATOR with a real (non-AS_TRANS) AS means the aggregation happened
 * after the path left 4-octet land: AS4_AGGREGATOR and AS4_PATH are then ignored.
 * Returns false when AS4_PATH must be ignored.
 */
export function finishAggregator(st: DecodeState): boolean {
  if (st.as4Aggregator === undefined || st.attrs.aggregator === undefined) return true;
  if (st.attrs.aggregator.asn !== AS_TRANS) return false;
  st.attrs.aggregator = st.as4Aggregator;
  return true;
}

export function encodeAggregate(a: PathAttributes, ctx: CodecContext, out: WireAttribute[]): void {
  if (a.atomicAggregate === true) {
    out.push({ flags: ATOMIC_AGGREGATE.flags, code: ATOMIC_AGGREGATE.code, value: new Uint8Array(0) });
  }
  if (a.aggregator === undefined) return;
  const addr = Number(a.aggregator.address.addr & 0xffffffffn);
  const { asn } = a.aggregator;
  if (ctx.as4) {
    out.push({
      flags: OPT_TRANS,
      code: AGGREGATOR.code,
      value: new ByteWriter().u32(asn).u32(addr).finish(),
    });
    return;
  }
  out.push({
    flags: OPT_TRANS,
    code: AGGREGATOR.code,
    value: new ByteWriter()
      .u16(asn > 0xffff ? AS_TRANS : asn)
      .u32(addr)
      .finish(),
  });
  if (asn > 0xffff) {
    out.push({
      flags: OPT_TRANS,
      code: AS4_AGGREGATOR.code,
      value: new ByteWriter().u32(asn).u32(addr).finish(),
    });
  }
}
