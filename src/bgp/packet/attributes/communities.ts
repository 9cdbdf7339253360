/**
 * COMMUNITIES (RFC 1997) and LARGE_COMMUNITY (RFC 8092), both optional transitive. A length that
 * is not a non-zero multiple of 4 (resp. 12) → treat-as-withdraw (RFC 7606 §7.8, RFC 8092 §6).
 */
import { AttrFlag, AttrType, type PathAttributes, UpdateSubcode } from "../types.js";
import { ByteWriter, readU32 } from "../wire.js";
import { type AttributeCodec, MalformedAttribute, type WireAttribute } from "./attribute.js";

const OPT_TRANS = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;

export const COMMUNITIES: AttributeCodec = {
  code: AttrType.COMMUNITIES,
  name: "COMMUNITIES",
  flags: OPT_TRANS,
  onError: "treat-as-withdraw",
  decode(v, st) {
    if (v.length === 0 || v.length % 4 !== 0) {
      throw new MalformedAttribute(
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
        `length ${v.length}, not a non-zero multiple of 4`,
      );
    }
    const out: number[] = [];
    for (let at = 0; at < v.length; at += 4) out.push(readU32(v, at));
    st.attrs.communities = out;
  },
};

export const LARGE_COMMUNITY: AttributeCodec = {
  code: AttrType.LARGE_COMMUNITY,
  name: "LARGE_COMMUNITY",
  flags: OPT_TRANS,
  onError: "treat-as-withdraw",
  decode(v, st) {
    if (v.length === 0 || v.length % 12 !== 0) {
      throw new MalformedAttribute(
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
        `length ${v.length}, not a non-zero multiple of 12`,
      );
    }
    const out: [number, number, number][] = [];
    for (let at = 0; at < v.length; at += 12)
      out.push([readU32(v, at), readU32(v, at + 4), readU32(v, at + 8)]);
    st.attrs.largeCommunities = out;
  },
};

export function encodeCommunities(a: PathAttributes, out: WireAttribute[]): void {
  if (a.communities !== undefined && a.communities.length > 0) {
    const w = new ByteWriter();
    for (const c of a.communities) w.u32(c);
    out.push({ flags: OPT_TRANS, code: COMMUNITIES.code, value: w.finish() });
  }
  if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
    const w = new ByteWriter();
    for (const [g, l1, l2] of a.largeCommunities) w.u32(g).u32(l1).u32(l2);
    out.push({ flags: OPT_TRANS, code: LARGE_COMMUNITY.code, value: w.finish() });
  }
}
