/**
 * The BGP message codec (pure, no I/O). See docs/bgp-packet.md.
 */
export * from "./types.js";
export { BgpError, BgpEncodeError, isBgpError, RouteRefreshSubcode, UNSPECIFIC_SUBCODE } from "./errors.js";
export { type DecodedMessage, decodeMessage, encodeMessage } from "./message.js";
export { MessageReader, type ReadResult } from "./reader.js";
export { decodeUpdate, endOfRib, endOfRibFamily, isEndOfRib } from "./update.js";
export { openPeerAS } from "./open.js";
export { CapabilityCode } from "./capabilities.js";
export { describeNotification } from "./notification.js";
export { prefixCount, type WirePrefixes, wirePrefixes } from "./nlri.js";
