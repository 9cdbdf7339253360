/**
 * Decode errors as the NOTIFICATION they call for (RFC 4271 §6, STYLE.md: "decode errors carry
 * the NOTIFICATION code/subcode to send"). The FSM sends `toNotification()` and closes.
 */
import { CalicoError } from "../../errors.js";
import { ErrorCode, MessageType, type NotificationMessage } from "./types.js";

/** RFC 4271 §6.1, §6.2: "Error Subcode 0 (Unspecific)" where no subcode fits. */
export const UNSPECIFIC_SUBCODE = 0;

/** RFC 7313 §5: ROUTE-REFRESH Message Error subcode. */
export const RouteRefreshSubcode = { INVALID_MESSAGE_LENGTH: 1 } as const;

/** Stable CalicoError codes, one per NOTIFICATION error code (callers may branch on these). */
const CALICO_CODES: Record<number, string> = {
  [ErrorCode.MESSAGE_HEADER]: "BGP_MESSAGE_HEADER_ERROR",
  [ErrorCode.OPEN_MESSAGE]: "BGP_OPEN_MESSAGE_ERROR",
  [ErrorCode.UPDATE_MESSAGE]: "BGP_UPDATE_MESSAGE_ERROR",
  [ErrorCode.ROUTE_REFRESH]: "BGP_ROUTE_REFRESH_MESSAGE_ERROR",
};

/**
 * A message we cannot accept, with the NOTIFICATION that must answer it.
 *
 * `code` is inherited from CalicoError and is the stable *string* code ("BGP_UPDATE_MESSAGE_ERROR");
 * the numeric NOTIFICATION error code is `notificationCode` (TypeScript does not let a subclass
 * turn the base class's string `code` into a number).
 */
export class BgpError extends CalicoError {
  readonly notificationCode: number;
  readonly subcode: number;
  readonly data: Uint8Array;

  constructor(notificationCode: number, subcode: number, data: Uint8Array, message: string) {
    super(CALICO_CODES[notificationCode] ?? "BGP_ERROR", message);
    this.notificationCode = notificationCode;
    this.subcode = subcode;
    this.data = data;
  }

  toNotification(): NotificationMessage {
    return {
      type: MessageType.NOTIFICATION,
      code: this.notificationCode,
      subcode: this.subcode,
      data: this.data,
    };
  }
}

export function isBgpError(err: unknown): err is BgpError {
  return err instanceof BgpError;
}

/** Raised when asked to encode something the wire cannot carry (a bug above the codec). */
export class BgpEncodeError extends CalicoError {
  constructor(message: string) {
    super("BGP_ENCODE_ERROR", message);
  }
}

export const u16 = (n: number): Uint8Array => new Uint8Array([(n >> 8) & 0xff, n & 0xff]);
