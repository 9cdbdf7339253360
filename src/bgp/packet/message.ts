/**
 * One whole message, header included: `encodeMessage` and `decodeMessage` dispatch on the type.
 */
import { BgpError, u16 } from "./errors.js";
import { checkHeader, frame } from "./header.js";
import { decodeNotificationBody, encodeNotificationBody } from "./notification.js";
import { decodeOpenBody, encodeOpenBody } from "./open.js";
import { decodeRouteRefreshBody, encodeRouteRefreshBody } from "./route-refresh.js";
import {
  type BgpMessage,
  type CodecContext,
  type DecodedUpdate,
  ErrorCode,
  HEADER_LENGTH,
  HeaderSubcode,
  MessageType,
} from "./types.js";
import { decodeUpdate, encodeUpdateBody } from "./update.js";

/** A decoded message; for an UPDATE, also its RFC 7606 outcome (`update.update === message`). */
export interface DecodedMessage {
  message: BgpMessage;
  update?: DecodedUpdate;
}

export function encodeMessage(msg: BgpMessage, ctx: CodecContext): Uint8Array {
  switch (msg.type) {
    case MessageType.OPEN:
      return frame(msg.type, encodeOpenBody(msg));
    case MessageType.UPDATE:
      return frame(msg.type, encodeUpdateBody(msg, ctx));
    case MessageType.NOTIFICATION:
      return frame(msg.type, encodeNotificationBody(msg));
    case MessageType.KEEPALIVE:
      return frame(msg.type, new Uint8Array(0));
    case MessageType.ROUTE_REFRESH:
      return frame(msg.type, encodeRouteRefreshBody(msg));
  }
}

/** Decode exactly one message; `bytes` must be the whole message. Throws BgpError. */
export function decodeMessage(bytes: Uint8Array, ctx: CodecContext): DecodedMessage {
  const h = checkHeader(bytes, 0, bytes.length);
  if (h === undefined || h.length !== bytes.length) {
    const claimed = bytes.length >= 18 ? ((bytes[16] ?? 0) << 8) | (bytes[17] ?? 0) : bytes.length;
    throw new BgpError(
      ErrorCode.MESSAGE_HEADER,
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      u16(claimed),
      `BGP message rejected: header says ${claimed} octets, ${bytes.length} were given`,
    );
  }
  return decodeBody(h.type, bytes, ctx);
}

/** Decode a message whose header `checkHeader` already accepted. */
export function decodeBody(type: MessageType, whole: Uint8Array, ctx: CodecContext): DecodedMessage {
  const body = whole.subarray(HEADER_LENGTH);
  switch (type) {
    case MessageType.OPEN:
      return { message: decodeOpenBody(body) };
    case MessageType.UPDATE: {
      const d = decodeUpdate(body, ctx);
      return { message: d.update, update: d };
    }
    case MessageType.NOTIFICATION:
      return { message: decodeNotificationBody(body) };
    case MessageType.KEEPALIVE:
      return { message: { type: MessageType.KEEPALIVE } };
    case MessageType.ROUTE_REFRESH:
      return { message: decodeRouteRefreshBody(body, whole) };
  }
}
