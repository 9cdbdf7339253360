/**
 * Byte-level helpers shared by the codec files: a growable writer and bounds-checked reads.
 * Reads never run past the view they are given; callers check lengths first and map a short
 * read to the NOTIFICATION their section of RFC 4271 §6 asks for.
 */
import { BgpEncodeError } from "./errors.js";

export class ByteWriter {
  private buf = new Uint8Array(64);
  private len = 0;

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.reserve(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** Write a 2-octet placeholder; `patchU16` fills it in later. */
  placeholder16(): number {
    const at = this.len;
    this.u16(0);
    return at;
  }

  patchU16(at: number, v: number): void {
    if (v > 0xffff) throw new BgpEncodeError(`length ${v} does not fit a 2-octet field`);
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export function readU16(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

export function readU32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

/** Big-endian bytes → bigint. */
export function readAddr(b: Uint8Array, at: number, octets: number): bigint {
  let v = 0n;
  for (let i = 0; i < octets; i++) v = (v << 8n) | BigInt(b[at + i] ?? 0);
  return v;
}

export function writeAddr(w: ByteWriter, value: bigint, octets: number): void {
  for (let i = octets - 1; i >= 0; i--) w.u8(Number((value >> BigInt(i * 8)) & 0xffn));
}

export const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** A 32-bit value as four big-endian octets. */
export function u32Bytes(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/**
 * A plain Uint8Array copy of `b[start, end)`. Not `b.slice()`: on a Node Buffer (what sockets
 * hand us) `slice` is a view, and a decoded message must not alias the stream's memory.
 */
export function copyBytes(b: Uint8Array, start = 0, end = b.length): Uint8Array {
  return new Uint8Array(b.subarray(start, end));
}
