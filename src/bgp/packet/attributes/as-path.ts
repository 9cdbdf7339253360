/**
 * AS_PATH (RFC 4271 §4.3, §5.1.2; confederation segments RFC 5065 §3) and AS4_PATH (RFC 6793).
 *
 * With `ctx.as4` the AS_PATH carries 4-octet ASNs and AS4_PATH must not appear (it is discarded,
 * RFC 6793 §4.1). Without it, AS_PATH carries 2-octet ASNs (AS_TRANS for the big ones) and the
 * real path travels in AS4_PATH; the two are merged on decode (§4.2.3) and split on encode
 * (§4.2.2). Malformed AS_PATH → treat-as-withdraw (RFC 7606 §7.2); malformed AS4_PATH →
 * attribute discard (RFC 6793 §6).
 */
import {
  AS_TRANS,
  type AsPathSegment,
  type AsPathSegmentType,
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

const SEGMENT_CODE: Record<AsPathSegmentType, number> = {
  set: 1,
  sequence: 2,
  "confed-sequence": 3,
  "confed-set": 4,
};
const SEGMENT_TYPE: Record<number, AsPathSegmentType> = {
  1: "set",
  2: "sequence",
  3: "confed-sequence",
  4: "confed-set",
};

const isConfed = (s: AsPathSegment): boolean => s.type === "confed-sequence" || s.type === "confed-set";

/** RFC 7606 §7.2: unknown segment type, zero length, overrun or a lone trailing octet. */
export function decodeSegments(v: Uint8Array, asnSize: 2 | 4): AsPathSegment[] {
  const out: AsPathSegment[] = [];
  let at = 0;
  while (at < v.length) {
    if (v.length - at < 2)
      throw new MalformedAttribute(UpdateSubcode.MALFORMED_AS_PATH, "one stray octet after the last segment");
    const code = v[at] ?? 0;
    const n = v[at + 1] ?? 0;
    const type = SEGMENT_TYPE[code];
    if (type === undefined)
      throw new MalformedAttribute(UpdateSubcode.MALFORMED_AS_PATH, `unknown segment type ${code}`);
    if (n === 0) throw new MalformedAttribute(UpdateSubcode.MALFORMED_AS_PATH, `empty ${type} segment`);
    const end = at + 2 + n * asnSize;
    if (end > v.length) {
      throw new MalformedAttribute(
        UpdateSubcode.MALFORMED_AS_PATH,
        `${type} segment of ${n} ASNs needs ${n * asnSize} octets, ${v.length - at - 2} remain`,
      );
    }
    const asns: number[] = [];
    for (let p = at + 2; p < end; p += asnSize) asns.push(asnSize === 4 ? readU32(v, p) : readU16(v, p));
    out.push({ type, asns });
    at = end;
  }
  return out;
}

export function encodeSegments(segments: readonly AsPathSegment[], asnSize: 2 | 4): Uint8Array {
  const w = new ByteWriter();
  for (const s of segments) {
    // A segment holds at most 255 ASNs; longer ones go out as several of the same type.
    for (let i = 0; i < s.asns.length; i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      w.u8(SEGMENT_CODE[s.type]).u8(chunk.length);
      for (const asn of chunk) {
        if (asnSize === 4) w.u32(asn);
        else w.u16(asn > 0xffff ? AS_TRANS : asn);
      }
    }
  }
  return w.finish();
}

export const AS_PATH: AttributeCodec = {
  code: AttrType.AS_PATH,
  name: "AS_PATH",
  flags: AttrFlag.TRANSITIVE,
  onError: "treat-as-withdraw",
  decode(v, st) {
    st.attrs.asPath = decodeSegments(v, st.ctx.as4 ? 4 : 2);
  },
};

export const AS4_PATH: AttributeCodec = {
  code: AttrType.AS4_PATH,
  name: "AS4_PATH",
  flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE,
  onError: "attribute-discard",
  decode(v, st) {
    const segs = decodeSegments(v, 4);
    if (st.ctx.as4) return { discard: "AS4_PATH from a 4-octet-AS speaker is ignored (RFC 6793 §4.1)" };
    // RFC 6793 §6: confederation segments have no place in AS4_PATH; we drop them.
    st.as4Path = segs.filter((s) => !isConfed(s));
    return undefined;
  },
};

/** RFC 4271 §9.1.2.2 a): a set counts as one, confederation segments do not count. */
function pathLength(segs: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of segs)
    if (s.type === "sequence") n += s.asns.length;
    else if (s.type === "set") n += 1;
  return n;
}

/**
 * RFC 6793 §4.2.3: keep as many leading ASNs of AS_PATH as AS4_PATH is short of, then AS4_PATH.
 * If AS_PATH is the shorter, AS4_PATH is ignored. Leading confederation segments (and ones next
 * to a taken segment) are kept.
 */
export function mergeAs4Path(
  asPath: readonly AsPathSegment[],
  as4Path: readonly AsPathSegment[],
): AsPathSegment[] {
  const n2 = pathLength(asPath);
  const n4 = pathLength(as4Path);
  if (n2 < n4) return asPath.map((s) => ({ type: s.type, asns: [...s.asns] }));
  let need = n2 - n4;
  const head: AsPathSegment[] = [];
  for (const s of asPath) {
    if (isConfed(s)) {
      head.push({ type: s.type, asns: [...s.asns] });
      continue;
    }
    if (need === 0) break;
    if (s.type === "set") {
      head.push({ type: s.type, asns: [...s.asns] });
      need -= 1;
    } else {
      const take = Math.min(need, s.asns.length);
      head.push({ type: s.type, asns: s.asns.slice(0, take) });
      need -= take;
    }
  }
  return [...head, ...as4Path.map((s) => ({ type: s.type, asns: [...s.asns] }))];
}

/** Post-pass for a 2-octet session: fold AS4_PATH into asPath. */
export function finishAsPath(st: DecodeState): void {
  if (st.as4Path === undefined || st.attrs.asPath === undefined) return;
  st.attrs.asPath = mergeAs4Path(st.attrs.asPath, st.as4Path);
}

export function encodeAsPath(a: PathAttributes, ctx: CodecContext, out: WireAttribute[]): void {
  if (a.asPath === undefined) return;
  if (ctx.as4) {
    out.push({ flags: AS_PATH.flags, code: AS_PATH.code, value: encodeSegments(a.asPath, 4) });
    return;
  }
  out.push({ flags: AS_PATH.flags, code: AS_PATH.code, value: encodeSegments(a.asPath, 2) });
  // RFC 6793 §4.2.2: send AS4_PATH only when some ASN does not fit, without confederation segments.
  const real = a.asPath.filter((s) => !isConfed(s));
  if (real.some((s) => s.asns.some((asn) => asn > 0xffff))) {
    out.push({ flags: AS4_PATH.flags, code: AS4_PATH.code, value: encodeSegments(real, 4) });
  }
}
