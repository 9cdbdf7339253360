/** ORIGIN (RFC 4271 §5.1.1), well-known mandatory; malformed → treat-as-withdraw (RFC 7606 §7.1). */
import { AttrFlag, AttrType, type Origin, UpdateSubcode, type PathAttributes } from "../types.js";
import { type AttributeCodec, MalformedAttribute, type WireAttribute } from "./attribute.js";

export const ORIGIN: AttributeCodec = {
  code: AttrType.ORIGIN,
  name: "ORIGIN",
  flags: AttrFlag.TRANSITIVE,
  onError: "treat-as-withdraw",
  decode(v, st) {
    if (v.length !== 1)
      throw new MalformedAttribute(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `length ${v.length}, not 1`);
    const o = v[0] ?? 0;
    if (o > 2) throw new MalformedAttribute(UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, `undefined value ${o}`);
    st.attrs.origin = o as Origin;
  },
};

export function encodeOrigin(a: PathAttributes, out: WireAttribute[]): void {
  if (a.origin === undefined) return;
  out.push({ flags: ORIGIN.flags, code: ORIGIN.code, value: new Uint8Array([a.origin]) });
}
