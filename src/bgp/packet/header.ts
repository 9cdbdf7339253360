/**
 * The fixed 19-octet header (RFC 4271 §4.1) and its checks (§6.1). `checkHeader` works on a
 * partial header too, so a stream reader can reject a bad marker or length as soon as the
 * offending octet arrives, before buffering any body.
 */
import { BgpEncodeError, BgpError, u16 } from "./errors.js";
import { ErrorCode, HEADER_LENGTH, HeaderSubcode, MAX_MESSAGE_LENGTH, MessageType } from "./types.js";
import { readU16 } from "./wire.js";

export const MARKER_LENGTH = 16;

/** Smallest legal total length per type (RFC 4271 §4.2–§4.5, RFC 2918 §3). */
export const MIN_LENGTH: Record<number, number> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 23,
};

export interface Header {
  length: number;
  type: MessageType;
}

/**
 * Validate the first `n` octets of a header (n may be < 19). Returns the header once all 19
 * octets are there, undefined before. Throws the §6.1 NOTIFICATION otherwise.
 */
export function checkHeader(b: Uint8Array, at: number, n: number): Header | undefined {
  const markerSeen = Math.min(n, MARKER_LENGTH);
  for (let i = 0; i < markerSeen; i++) {
    if (b[at + i] !== 0xff) {
      throw new BgpError(
        ErrorCode.MESSAGE_HEADER,
        HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
        new Uint8Array(0),
        `BGP header rejected: marker octet ${i} is 0x${(b[at + i] ?? 0).toString(16).padStart(2, "0")}, not 0xff`,
      );
    }
  }
  if (n < 18) return undefined;
  const length = readU16(b, at + MARKER_LENGTH);
  if (length < HEADER_LENGTH || length > MAX_MESSAGE_LENGTH) throw badLength(length, "outside 19..4096");
  if (n < HEADER_LENGTH) return undefined;
  const type = b[at + 18] ?? 0;
  const min = MIN_LENGTH[type];
  if (min === undefined) {
    throw new BgpError(
      ErrorCode.MESSAGE_HEADER,
      HeaderSubcode.BAD_MESSAGE_TYPE,
      new Uint8Array([type]),
      `BGP header rejected: message type ${type} is not one we know (1..5)`,
    );
  }
  if (length < min) throw badLength(length, `below the ${min} octets a type ${type} message needs`);
  // RFC 4271 §4.4: a KEEPALIVE is only a header. ROUTE-REFRESH length errors are reported with
  // their own code (RFC 7313 §5) once the body is in, see route-refresh.ts.
  if (type === MessageType.KEEPALIVE && length !== HEADER_LENGTH) {
    throw badLength(length, "a KEEPALIVE is exactly 19 octets");
  }
  return { length, type: type as MessageType };
}

function badLength(length: number, why: string): BgpError {
  return new BgpError(
    ErrorCode.MESSAGE_HEADER,
    HeaderSubcode.BAD_MESSAGE_LENGTH,
    u16(length),
    `BGP header rejected: length ${length} is ${why}`,
  );
}

/** Header + body as one message; throws if the total exceeds 4096 octets. */
export function frame(type: MessageType, body: Uint8Array): Uint8Array {
  const length = HEADER_LENGTH + body.length;
  if (length > MAX_MESSAGE_LENGTH) {
    throw new BgpEncodeError(`cannot encode a type ${type} message of ${length} octets: the limit is 4096`);
  }
  const out = new Uint8Array(length);
  out.fill(0xff, 0, MARKER_LENGTH);
  out[16] = length >> 8;
  out[17] = length & 0xff;
  out[18] = type;
  out.set(body, HEADER_LENGTH);
  return out;
}
