/**
 * MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4), optional non-transitive, for IPv4 and
 * IPv6 unicast. IPv6 next hop: 16 octets (global) or 32 (global + link-local), RFC 2545 §3.
 *
 * Malformed → session reset with "Optional Attribute Error" (RFC 4760 §7, RFC 7606 §7.11: the
 * NLRI cannot be located reliably, so treat-as-withdraw is impossible). An AFI/SAFI we do not
 * speak is discarded — except an empty MP_UNREACH_NLRI, kept because it is that family's
 * End-of-RIB (RFC 4724 §2).
 */
import { BgpEncodeError } from "../errors.js";
import { countPrefixes, decodePrefixes, encodePrefixes, lazyPrefixes } from "../nlri.js";
import type { CIDR, IPFamily } from "../../../api/net.js";
import { AFI, AttrFlag, AttrType, type MpReach, type PathAttributes, SAFI, UpdateSubcode } from "../types.js";
import { ByteWriter, copyBytes, readAddr, readU16, writeAddr } from "../wire.js";
import { type AttributeCodec, MalformedAttribute, type WireAttribute } from "./attribute.js";

export function familyOf(afi: number, safi: number): IPFamily | undefined {
  if (safi !== SAFI.UNICAST) return undefined;
  return afi === AFI.IPV4 ? 4 : afi === AFI.IPV6 ? 6 : undefined;
}

const bad = (why: string): MalformedAttribute =>
  new MalformedAttribute(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, why);

export const MP_REACH_NLRI: AttributeCodec = {
  code: AttrType.MP_REACH_NLRI,
  name: "MP_REACH_NLRI",
  flags: AttrFlag.OPTIONAL,
  onError: "session-reset",
  decode(v, st) {
    if (v.length < 5)
      throw bad(`length ${v.length}: too short for AFI, SAFI, next hop length and reserved octet`);
    const afi = readU16(v, 0);
    const safi = v[2] ?? 0;
    const nhLen = v[3] ?? 0;
    if (4 + nhLen + 1 > v.length) throw bad(`next hop length ${nhLen} overruns the attribute`);
    const family = familyOf(afi, safi);
    if (family === undefined) return { discard: `AFI ${afi} / SAFI ${safi} is not spoken here` };
    const size = family === 4 ? 4 : 16;
    const ok = family === 4 ? nhLen === 4 : nhLen === 16 || nhLen === 32;
    if (!ok)
      throw bad(
        `next hop length ${nhLen} is not valid for IPv${family} (${family === 4 ? "4" : "16 or 32"})`,
      );
    const nextHops: CIDR[] = [];
    for (let at = 4; at < 4 + nhLen; at += size) {
      nextHops.push({ family, addr: readAddr(v, at, size), prefix: family === 4 ? 32 : 128 });
    }
    // One reserved octet (formerly the SNPA count), ignored on receipt (RFC 4760 §3).
    // Checked now, decoded when read (see lazyPrefixes).
    const count = countPrefixes(v, 4 + nhLen + 1, v.length, family);
    if (typeof count !== "number") throw bad(`NLRI: ${count.error}`);
    const mpReach: MpReach = { afi, safi, nextHops, nlri: [] };
    if (count > 0) lazyPrefixes(mpReach, "nlri", { bytes: copyBytes(v, 4 + nhLen + 1), family, count });
    st.attrs.mpReach = mpReach;
    return undefined;
  },
};

export const MP_UNREACH_NLRI: AttributeCodec = {
  code: AttrType.MP_UNREACH_NLRI,
  name: "MP_UNREACH_NLRI",
  flags: AttrFlag.OPTIONAL,
  onError: "session-reset",
  decode(v, st) {
    if (v.length < 3) throw bad(`length ${v.length}: too short for AFI and SAFI`);
    const afi = readU16(v, 0);
    const safi = v[2] ?? 0;
    const family = familyOf(afi, safi);
    if (family === undefined) {
      if (v.length === 3) {
        st.attrs.mpUnreach = { afi, safi, withdrawn: [] };
        return undefined;
      }
      return { discard: `AFI ${afi} / SAFI ${safi} is not spoken here` };
    }
    const withdrawn = decodePrefixes(v, 3, v.length, family);
    if ("error" in withdrawn) throw bad(`withdrawn routes: ${withdrawn.error}`);
    st.attrs.mpUnreach = { afi, safi, withdrawn };
    return undefined;
  },
};

export function encodeMpNlri(a: PathAttributes, out: WireAttribute[]): void {
  if (a.mpReach !== undefined) {
    const { afi, safi, nextHops, nlri } = a.mpReach;
    const family = familyOf(afi, safi);
    if (family === undefined)
      throw new BgpEncodeError(`cannot encode MP_REACH_NLRI for AFI ${afi} / SAFI ${safi}`);
    const w = new ByteWriter().u16(afi).u8(safi);
    const size = family === 4 ? 4 : 16;
    if (nextHops.some((n) => n.family !== family)) {
      throw new BgpEncodeError(`MP_REACH_NLRI for IPv${family} with a next hop of another family`);
    }
    w.u8(nextHops.length * size);
    for (const nh of nextHops) writeAddr(w, nh.addr, size);
    w.u8(0);
    encodePrefixes(w, family, nlri);
    out.push({ flags: MP_REACH_NLRI.flags, code: MP_REACH_NLRI.code, value: w.finish() });
  }
  if (a.mpUnreach !== undefined) {
    const { afi, safi, withdrawn } = a.mpUnreach;
    const w = new ByteWriter().u16(afi).u8(safi);
    const family = familyOf(afi, safi);
    if (family === undefined) {
      if (withdrawn.length > 0)
        throw new BgpEncodeError(`cannot encode MP_UNREACH_NLRI for AFI ${afi} / SAFI ${safi}`);
    } else {
      encodePrefixes(w, family, withdrawn);
    }
    out.push({ flags: MP_UNREACH_NLRI.flags, code: MP_UNREACH_NLRI.code, value: w.finish() });
  }
}
