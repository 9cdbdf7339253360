/**
 * OPEN (RFC 4271 §4.2) and its checks (§6.2, RFC 6286 for the identifier, RFC 5492 for
 * capabilities). Peer-AS validation needs configuration and belongs to the FSM: it gets the
 * real AS from `openPeerAS`.
 */
import { encodeCapability, decodeCapabilities } from "./capabilities.js";
import { BgpEncodeError, BgpError, UNSPECIFIC_SUBCODE, u16 } from "./errors.js";
import {
  BGP_VERSION,
  type Capability,
  ErrorCode,
  MessageType,
  OpenSubcode,
  type OpenMessage,
} from "./types.js";
import { ByteWriter, readU16, readU32 } from "./wire.js";

/** RFC 5492 §4: optional parameter type 2. */
export const CAPABILITIES_PARAMETER = 2;

export function encodeOpenBody(m: OpenMessage): Uint8Array {
  const params = new ByteWriter();
  // One parameter per capability: keeps each under 255 octets however many there are, and is
  // what RFC 5492 §4 shows as acceptable alongside packing them together.
  for (const cap of m.capabilities) {
    const c = new ByteWriter();
    encodeCapability(c, cap);
    params.u8(CAPABILITIES_PARAMETER).u8(c.length).bytes(c.finish());
  }
  for (const p of m.otherParameters ?? []) {
    if (p.data.length > 255) throw new BgpEncodeError(`OPEN parameter ${p.type} exceeds 255 octets`);
    params.u8(p.type).u8(p.data.length).bytes(p.data);
  }
  if (params.length > 255) {
    throw new BgpEncodeError(`OPEN optional parameters total ${params.length} octets; the limit is 255`);
  }
  const w = new ByteWriter();
  w.u8(m.version).u16(m.myAS).u16(m.holdTime).u32(m.bgpId).u8(params.length).bytes(params.finish());
  return w.finish();
}

function openError(subcode: number, data: Uint8Array, why: string): BgpError {
  return new BgpError(ErrorCode.OPEN_MESSAGE, subcode, data, `OPEN rejected: ${why}`);
}

/** Decode an OPEN body (the octets after the header). */
export function decodeOpenBody(b: Uint8Array): OpenMessage {
  // The header check guarantees ≥ 10 octets.
  const version = b[0] ?? 0;
  if (version !== BGP_VERSION) {
    // RFC 4271 §6.2: the data is the largest locally supported version number, 2 octets.
    throw openError(
      OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
      u16(BGP_VERSION),
      `version ${version}, we speak 4`,
    );
  }
  const myAS = readU16(b, 1);
  const holdTime = readU16(b, 3);
  if (holdTime === 1 || holdTime === 2) {
    throw openError(
      OpenSubcode.UNACCEPTABLE_HOLD_TIME,
      new Uint8Array(0),
      `hold time ${holdTime}: must be 0 or ≥ 3`,
    );
  }
  const bgpId = readU32(b, 5);
  // RFC 6286 §2.2: a 4-octet, unsigned, non-zero integer (no longer required to be an IP address).
  if (bgpId === 0) throw openError(OpenSubcode.BAD_BGP_IDENTIFIER, new Uint8Array(0), "BGP identifier 0");
  const optLen = b[9] ?? 0;
  if (10 + optLen !== b.length) {
    throw openError(
      UNSPECIFIC_SUBCODE,
      new Uint8Array(0),
      `optional parameters length ${optLen} disagrees with the ${b.length - 10} octets that follow`,
    );
  }
  const capabilities: Capability[] = [];
  let at = 10;
  while (at < b.length) {
    if (at + 2 > b.length)
      throw openError(UNSPECIFIC_SUBCODE, new Uint8Array(0), "optional parameter truncated");
    const type = b[at] ?? 0;
    const len = b[at + 1] ?? 0;
    if (at + 2 + len > b.length) {
      throw openError(
        UNSPECIFIC_SUBCODE,
        new Uint8Array(0),
        `optional parameter ${type} overruns the message`,
      );
    }
    if (type !== CAPABILITIES_PARAMETER) {
      throw openError(
        OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
        new Uint8Array(0),
        `optional parameter type ${type} is not supported (only 2, capabilities)`,
      );
    }
    decodeCapabilities(b, at + 2, at + 2 + len, capabilities);
    at += 2 + len;
  }
  return { type: MessageType.OPEN, version, myAS, holdTime, bgpId, capabilities };
}

/** The peer's real AS: the 4-octet AS capability if present (RFC 6793 §4.1), else My AS. */
export function openPeerAS(open: OpenMessage): number {
  for (const c of open.capabilities) if (c.type === "as4") return c.asn;
  return open.myAS;
}
