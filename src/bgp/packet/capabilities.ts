/**
 * Capabilities advertisement (RFC 5492): code, length, value — carried in OPEN optional
 * parameter type 2. Known: multiprotocol (RFC 4760 §8), route refresh (RFC 2918 §2),
 * graceful restart (RFC 4724 §3), 4-octet AS (RFC 6793 §3). Anything else is kept as bytes.
 */
import { BgpEncodeError, BgpError, UNSPECIFIC_SUBCODE } from "./errors.js";
import { type Capability, ErrorCode } from "./types.js";
import { ByteWriter, copyBytes, readU16, readU32 } from "./wire.js";

export const CapabilityCode = {
  MULTIPROTOCOL: 1,
  ROUTE_REFRESH: 2,
  GRACEFUL_RESTART: 64,
  AS4: 65,
} as const;

/** RFC 4724 §3: Restart Flags (4 bits) + Restart Time (12 bits). */
const GR_RESTART_STATE = 0x8000;
const GR_TIME_MASK = 0x0fff;
/** RFC 4724 §3: Flags for Address Family, bit 0 = Forwarding State. */
const GR_FORWARDING = 0x80;

export function encodeCapability(w: ByteWriter, cap: Capability): void {
  const v = new ByteWriter();
  switch (cap.type) {
    case "multiprotocol":
      v.u16(cap.afi).u8(0).u8(cap.safi);
      break;
    case "route-refresh":
      break;
    case "graceful-restart":
      v.u16((cap.restarting ? GR_RESTART_STATE : 0) | (cap.restartTime & GR_TIME_MASK));
      for (const f of cap.families)
        v.u16(f.afi)
          .u8(f.safi)
          .u8(f.forwardingPreserved ? GR_FORWARDING : 0);
      break;
    case "as4":
      v.u32(cap.asn);
      break;
    case "unknown":
      v.bytes(cap.data);
      break;
  }
  if (v.length > 255)
    throw new BgpEncodeError(`capability ${cap.code} is ${v.length} octets; the limit is 255`);
  w.u8(cap.code).u8(v.length).bytes(v.finish());
}

function malformed(why: string): BgpError {
  // RFC 5492 gives no subcode for a malformed capability; RFC 4271 §6.2 allows Unspecific.
  return new BgpError(ErrorCode.OPEN_MESSAGE, UNSPECIFIC_SUBCODE, new Uint8Array(0), `OPEN rejected: ${why}`);
}

/** Decode the value of one optional parameter of type 2 into capabilities. */
export function decodeCapabilities(b: Uint8Array, start: number, end: number, out: Capability[]): void {
  let at = start;
  while (at < end) {
    if (at + 2 > end) throw malformed(`capability header truncated at octet ${at - start} of the parameter`);
    const code = b[at] ?? 0;
    const len = b[at + 1] ?? 0;
    const v = at + 2;
    if (v + len > end) throw malformed(`capability ${code} claims ${len} octets, only ${end - v} remain`);
    out.push(decodeOne(b, code, v, len));
    at = v + len;
  }
}

function decodeOne(b: Uint8Array, code: number, v: number, len: number): Capability {
  switch (code) {
    case CapabilityCode.MULTIPROTOCOL:
      if (len !== 4) throw malformed(`multiprotocol capability has length ${len}, not 4`);
      return { code: 1, type: "multiprotocol", afi: readU16(b, v), safi: b[v + 3] ?? 0 };
    case CapabilityCode.ROUTE_REFRESH:
      if (len !== 0) throw malformed(`route-refresh capability has length ${len}, not 0`);
      return { code: 2, type: "route-refresh" };
    case CapabilityCode.GRACEFUL_RESTART: {
      if (len < 2 || (len - 2) % 4 !== 0) throw malformed(`graceful-restart capability has length ${len}`);
      const head = readU16(b, v);
      const families: (Capability & { type: "graceful-restart" })["families"] = [];
      for (let at = v + 2; at < v + len; at += 4) {
        families.push({
          afi: readU16(b, at),
          safi: b[at + 2] ?? 0,
          forwardingPreserved: ((b[at + 3] ?? 0) & GR_FORWARDING) !== 0,
        });
      }
      return {
        code: 64,
        type: "graceful-restart",
        restarting: (head & GR_RESTART_STATE) !== 0,
        restartTime: head & GR_TIME_MASK,
        families,
      };
    }
    case CapabilityCode.AS4:
      if (len !== 4) throw malformed(`4-octet AS capability has length ${len}, not 4`);
      return { code: 65, type: "as4", asn: readU32(b, v) };
    default:
      return { code, type: "unknown", data: copyBytes(b, v, v + len) };
  }
}
