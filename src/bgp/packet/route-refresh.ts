/**
 * ROUTE-REFRESH (RFC 2918 §3): AFI (2), subtype (1, RFC 7313 §3; reserved in RFC 2918), SAFI (1).
 */
import { BgpError, RouteRefreshSubcode } from "./errors.js";
import { ErrorCode, MessageType, type RouteRefreshMessage } from "./types.js";
import { copyBytes, readU16 } from "./wire.js";

export function encodeRouteRefreshBody(m: RouteRefreshMessage): Uint8Array {
  return new Uint8Array([(m.afi >> 8) & 0xff, m.afi & 0xff, m.subtype, m.safi]);
}

/** `whole` is the complete message: RFC 7313 §5 puts it in the NOTIFICATION's data. */
export function decodeRouteRefreshBody(b: Uint8Array, whole: Uint8Array): RouteRefreshMessage {
  if (b.length !== 4) {
    throw new BgpError(
      ErrorCode.ROUTE_REFRESH,
      RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
      copyBytes(whole),
      `ROUTE-REFRESH rejected: body is ${b.length} octets, not 4`,
    );
  }
  return { type: MessageType.ROUTE_REFRESH, afi: readU16(b, 0), subtype: b[2] ?? 0, safi: b[3] ?? 0 };
}
