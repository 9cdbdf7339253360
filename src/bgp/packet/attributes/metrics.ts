/**
 * MULTI_EXIT_DISC (RFC 4271 §5.1.4, optional non-transitive) and LOCAL_PREF (§5.1.5, well-known):
 * four octets each; a wrong length → treat-as-withdraw (RFC 7606 §7.4, §7.5). Discarding
 * LOCAL_PREF from an external peer (RFC 7606 §7.5) needs the session type: done above the codec.
 */
import { AttrFlag, AttrType, type PathAttributes, UpdateSubcode } from "../types.js";
import { readU32, u32Bytes } from "../wire.js";
import { type AttributeCodec, MalformedAttribute, type WireAttribute } from "./attribute.js";

function four(v: Uint8Array): number {
  if (v.length !== 4)
    throw new MalformedAttribute(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `length ${v.length}, not 4`);
  return readU32(v, 0);
}

export const MULTI_EXIT_DISC: AttributeCodec = {
  code: AttrType.MULTI_EXIT_DISC,
  name: "MULTI_EXIT_DISC",
  flags: AttrFlag.OPTIONAL,
  onError: "treat-as-withdraw",
  decode(v, st) {
    st.attrs.med = four(v);
  },
};

export const LOCAL_PREF: AttributeCodec = {
  code: AttrType.LOCAL_PREF,
  name: "LOCAL_PREF",
  flags: AttrFlag.TRANSITIVE,
  onError: "treat-as-withdraw",
  decode(v, st) {
    st.attrs.localPref = four(v);
  },
};

export function encodeMetrics(a: PathAttributes, out: WireAttribute[]): void {
  if (a.med !== undefined)
    out.push({ flags: MULTI_EXIT_DISC.flags, code: MULTI_EXIT_DISC.code, value: u32Bytes(a.med) });
  if (a.localPref !== undefined) {
    out.push({ flags: LOCAL_PREF.flags, code: LOCAL_PREF.code, value: u32Bytes(a.localPref) });
  }
}
