/**
 * What a session needs from the codec (src/bgp/packet): encode a message, split a byte stream
 * into decoded messages, and turn a decode error into the NOTIFICATION it calls for. An
 * interface so tests can wrap or replace it; `packetCodec` is the real one.
 */
import type { Notification } from "./fsm.js";
import {
  MessageReader,
  describeNotification,
  encodeMessage,
  isBgpError,
  type BgpMessage,
  type CodecContext,
  type DecodedMessage,
} from "./packet/index.js";

export interface MessageStream {
  /** Complete messages in order; `error` (a decode error) ends the stream. */
  push(chunk: Uint8Array): { messages: DecodedMessage[]; error?: unknown };
}

export interface SessionCodec {
  encode(msg: BgpMessage, ctx: CodecContext): Uint8Array;
  /** `ctx` is read on every message, so the session may change it once OPENs are exchanged. */
  reader(ctx: CodecContext): MessageStream;
  /** The NOTIFICATION a decode error asks for, or undefined if it is not one. */
  notificationOf(err: unknown): Notification | undefined;
  describeNotification(n: Notification): string;
}

export const packetCodec: SessionCodec = {
  encode: encodeMessage,
  reader: (ctx) => new MessageReader(ctx),
  notificationOf: (err) =>
    isBgpError(err) ? { code: err.notificationCode, subcode: err.subcode, data: err.data } : undefined,
  describeNotification: (n) => describeNotification(n),
};
