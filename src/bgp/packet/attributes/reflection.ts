/**
 * Route reflection (RFC 4456 §8): ORIGINATOR_ID (4 octets) and CLUSTER_LIST (a non-zero
 * multiple of 4), both optional non-transitive; malformed → treat-as-withdraw (RFC 7606 §7.9,
 * §7.10). Loop checks against our own ids happen above the codec.
 */
import { AttrFlag, AttrType, type PathAttributes, UpdateSubcode } from "../types.js";
import { ByteWriter, readU32, u32Bytes } from "../wire.js";
import { type AttributeCodec, MalformedAttribute, type WireAttribute } from "./attribute.js";

export const ORIGINATOR_ID: AttributeCodec = {
  code: AttrType.ORIGINATOR_ID,
  name: "ORIGINATOR_ID",
  flags: AttrFlag.OPTIONAL,
  onError: "treat-as-withdraw",
  decode(v, st) {
    if (v.length !== 4)
      throw new MalformedAttribute(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `length ${v.length}, not 4`);
    st.attrs.originatorId = readU32(v, 0);
  },
};

export const CLUSTER_LIST: AttributeCodec = {
  code: AttrType.CLUSTER_LIST,
  name: "CLUSTER_LIST",
  flags: AttrFlag.OPTIONAL,
  onError: "treat-as-withdraw",
  decode(v, st) {
    if (v.length === 0 || v.length % 4 !== 0) {
      throw new MalformedAttribute(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        `length ${v.length}, not a non-zero multiple of 4`,
      );
    }
    const out: number[] = [];
    for (let at = 0; at < v.length; at += 4) out.push(readU32(v, at));
    st.attrs.clusterList = out;
  },
};

export function encodeReflection(a: PathAttributes, out: WireAttribute[]): void {
  if (a.originatorId !== undefined) {
    out.push({ flags: ORIGINATOR_ID.flags, code: ORIGINATOR_ID.code, value: u32Bytes(a.originatorId) });
  }
  if (a.clusterList !== undefined && a.clusterList.length > 0) {
    const w = new ByteWriter();
    for (const c of a.clusterList) w.u32(c);
    out.push({ flags: CLUSTER_LIST.flags, code: CLUSTER_LIST.code, value: w.finish() });
  }
}
