/**
 * Framing a TCP byte stream into messages. The header is checked octet by octet as it arrives
 * (a wrong marker or length fails at once, RFC 4271 §6.1), and at most one message — never more
 * than 4096 octets — is ever held back. After an error the reader is finished: the session is
 * going down with the NOTIFICATION the error carries.
 */
import { BgpError } from "./errors.js";
import { checkHeader } from "./header.js";
import { type DecodedMessage, decodeBody } from "./message.js";
import { type CodecContext, HEADER_LENGTH, MAX_MESSAGE_LENGTH } from "./types.js";

export interface ReadResult {
  /** Complete messages, in order (those before an error included). */
  messages: DecodedMessage[];
  error?: BgpError;
}

export class MessageReader {
  private readonly pending = new Uint8Array(MAX_MESSAGE_LENGTH);
  private pendingLen = 0;
  private failed: BgpError | undefined;

  /** `ctx` is read on every message, so the session may flip `as4` once the OPENs are exchanged. */
  constructor(private readonly ctx: CodecContext) {}

  /** Octets held for a message not yet complete (always < 4096). */
  get buffered(): number {
    return this.pendingLen;
  }

  push(chunk: Uint8Array): ReadResult {
    const messages: DecodedMessage[] = [];
    if (this.failed !== undefined) return { messages, error: this.failed };
    try {
      let off = 0;
      while (off < chunk.length || this.pendingLen >= HEADER_LENGTH) {
        if (this.pendingLen === 0) {
          // Fast path: parse straight out of the chunk.
          const avail = chunk.length - off;
          const h = checkHeader(chunk, off, avail);
          if (h !== undefined && avail >= h.length) {
            messages.push(decodeBody(h.type, chunk.subarray(off, off + h.length), this.ctx));
            off += h.length;
            continue;
          }
          this.pending.set(chunk.subarray(off), 0);
          this.pendingLen = avail;
          break;
        }
        // Slow path: complete the held message, first its header, then its body.
        const before = this.pendingLen;
        const headerNeed = Math.max(0, HEADER_LENGTH - before);
        const headerTake = Math.min(headerNeed, chunk.length - off);
        this.pending.set(chunk.subarray(off, off + headerTake), before);
        this.pendingLen += headerTake;
        off += headerTake;
        const h = checkHeader(this.pending, 0, this.pendingLen);
        if (h === undefined) break;
        const bodyTake = Math.min(h.length - this.pendingLen, chunk.length - off);
        this.pending.set(chunk.subarray(off, off + bodyTake), this.pendingLen);
        this.pendingLen += bodyTake;
        off += bodyTake;
        if (this.pendingLen < h.length) break;
        this.pendingLen = 0;
        // Decoders copy what they keep, so the buffer can be reused.
        messages.push(decodeBody(h.type, this.pending.subarray(0, h.length), this.ctx));
      }
    } catch (e) {
      if (!(e instanceof BgpError)) throw e;
      this.failed = e;
      this.pendingLen = 0;
      return { messages, error: e };
    }
    return { messages };
  }
}
