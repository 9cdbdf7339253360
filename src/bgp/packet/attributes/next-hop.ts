/**
 * NEXT_HOP (RFC 4271 §5.1.3), IPv4 only; MP_REACH_NLRI carries the others. Malformed or not a
 * usable host address → treat-as-withdraw (RFC 7606 §7.3, keeping RFC 4271 §6.3's semantic check
 * for what the codec can know alone: 0.0.0.0, multicast and class E). "Is it our own address"
 * needs the session and is checked above the codec.
 */
import { AttrFlag, AttrType, type PathAttributes, UpdateSubcode } from "../types.js";
import { readU32 } from "../wire.js";
import { type AttributeCodec, MalformedAttribute, type WireAttribute } from "./attribute.js";

export function isUsableNextHopV4(v: number): boolean {
  return v !== 0 && v >>> 29 !== 0b111;
}

export const NEXT_HOP: AttributeCodec = {
  code: AttrType.NEXT_HOP,
  name: "NEXT_HOP",
  flags: AttrFlag.TRANSITIVE,
  onError: "treat-as-withdraw",
  decode(v, st) {
    if (v.length !== 4)
      throw new MalformedAttribute(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `length ${v.length}, not 4`);
    const addr = readU32(v, 0);
    if (!isUsableNextHopV4(addr)) {
      throw new MalformedAttribute(
        UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE,
        `${[24, 16, 8, 0].map((s) => (addr >>> s) & 0xff).join(".")} is not a unicast host address`,
      );
    }
    st.attrs.nextHop = { family: 4, addr: BigInt(addr), prefix: 32 };
  },
};

export function encodeNextHop(a: PathAttributes, out: WireAttribute[]): void {
  if (a.nextHop === undefined) return;
  const n = Number(a.nextHop.addr);
  out.push({
    flags: NEXT_HOP.flags,
    code: NEXT_HOP.code,
    value: new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]),
  });
}
