/**
 * NOTIFICATION (RFC 4271 §4.5) and the words for every code/subcode, so `calicoctl node status`
 * can say why a session went down. Subcode names from RFC 4271 §4.5, RFC 5492 §5, RFC 4486,
 * RFC 6608, RFC 7313 §5, RFC 8538, RFC 9234; the Cease shutdown message from RFC 9003.
 */
import { ErrorCode, MessageType, type NotificationMessage } from "./types.js";
import { copyBytes } from "./wire.js";

export function encodeNotificationBody(m: NotificationMessage): Uint8Array {
  const out = new Uint8Array(2 + m.data.length);
  out[0] = m.code;
  out[1] = m.subcode;
  out.set(m.data, 2);
  return out;
}

/** Any code/subcode is accepted: a NOTIFICATION is never answered with another (§6.4). */
export function decodeNotificationBody(b: Uint8Array): NotificationMessage {
  return { type: MessageType.NOTIFICATION, code: b[0] ?? 0, subcode: b[1] ?? 0, data: copyBytes(b, 2) };
}

const CODE_NAMES: Record<number, string> = {
  [ErrorCode.MESSAGE_HEADER]: "Message header error",
  [ErrorCode.OPEN_MESSAGE]: "OPEN message error",
  [ErrorCode.UPDATE_MESSAGE]: "UPDATE message error",
  [ErrorCode.HOLD_TIMER_EXPIRED]: "Hold timer expired",
  [ErrorCode.FSM]: "Finite state machine error",
  [ErrorCode.CEASE]: "Cease",
  [ErrorCode.ROUTE_REFRESH]: "ROUTE-REFRESH message error",
};

const SUBCODE_NAMES: Record<number, Record<number, string>> = {
  [ErrorCode.MESSAGE_HEADER]: {
    1: "connection not synchronized",
    2: "bad message length",
    3: "bad message type",
  },
  [ErrorCode.OPEN_MESSAGE]: {
    1: "unsupported version number",
    2: "bad peer AS",
    3: "bad BGP identifier",
    4: "unsupported optional parameter",
    5: "authentication failure (deprecated)",
    6: "unacceptable hold time",
    7: "unsupported capability",
    11: "role mismatch",
  },
  [ErrorCode.UPDATE_MESSAGE]: {
    1: "malformed attribute list",
    2: "unrecognized well-known attribute",
    3: "missing well-known attribute",
    4: "attribute flags error",
    5: "attribute length error",
    6: "invalid ORIGIN attribute",
    7: "AS routing loop (deprecated)",
    8: "invalid NEXT_HOP attribute",
    9: "optional attribute error",
    10: "invalid network field",
    11: "malformed AS_PATH",
  },
  [ErrorCode.FSM]: {
    1: "unexpected message in OpenSent state",
    2: "unexpected message in OpenConfirm state",
    3: "unexpected message in Established state",
  },
  [ErrorCode.CEASE]: {
    1: "maximum number of prefixes reached",
    2: "administrative shutdown",
    3: "peer de-configured",
    4: "administrative reset",
    5: "connection rejected",
    6: "other configuration change",
    7: "connection collision resolution",
    8: "out of resources",
    9: "hard reset",
    10: "BFD down",
  },
  [ErrorCode.ROUTE_REFRESH]: {
    1: "invalid message length",
  },
};

/** "Cease / administrative shutdown: "maintenance"" — one line, for humans. */
export function describeNotification(n: { code: number; subcode: number; data?: Uint8Array }): string {
  const code = CODE_NAMES[n.code] ?? `Unknown error code ${n.code}`;
  let text = code;
  if (n.subcode !== 0 || SUBCODE_NAMES[n.code] !== undefined) {
    const sub =
      n.subcode === 0 ? "unspecific" : (SUBCODE_NAMES[n.code]?.[n.subcode] ?? `subcode ${n.subcode}`);
    text += ` / ${sub}`;
  }
  const data = n.data ?? new Uint8Array(0);
  // RFC 9003 §2: Administrative Shutdown/Reset may carry a length-prefixed UTF-8 message.
  if (n.code === ErrorCode.CEASE && (n.subcode === 2 || n.subcode === 4) && data.length > 0) {
    const len = data[0] ?? 0;
    if (len > 0 && 1 + len <= data.length) {
      text += `: "${new TextDecoder("utf-8", { fatal: false }).decode(data.subarray(1, 1 + len))}"`;
    }
  } else if (n.code === ErrorCode.OPEN_MESSAGE && n.subcode === 1 && data.length >= 2) {
    text += ` (peer supports up to version ${((data[0] ?? 0) << 8) | (data[1] ?? 0)})`;
  } else if (n.code === ErrorCode.MESSAGE_HEADER && n.subcode === 2 && data.length >= 2) {
    text += ` (${((data[0] ?? 0) << 8) | (data[1] ?? 0)})`;
  } else if (n.code === ErrorCode.MESSAGE_HEADER && n.subcode === 3 && data.length >= 1) {
    text += ` (${data[0] ?? 0})`;
  } else if (n.code === ErrorCode.UPDATE_MESSAGE && n.subcode === 3 && data.length >= 1) {
    text += ` (attribute type ${data[0] ?? 0})`;
  }
  return text;
}
