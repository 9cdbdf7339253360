/**
 * Key order and prefix ranges shared by the drivers. Keys are compared by Unicode code point,
 * which is the byte order of their UTF-8 encoding: the order etcd uses (byte strings) and the
 * order of SQLite's BINARY collation (memcmp over UTF-8). Plain `<` on JS strings compares
 * UTF-16 code units and differs from it for characters above U+FFFF.
 */
import { DatastoreError, DatastoreErrorCode } from "./types.js";

/** Reject keys no driver can store faithfully: empty, or not well-formed Unicode. */
export function checkKey(key: string): void {
  if (typeof key !== "string" || key === "") {
    throw new DatastoreError(
      DatastoreErrorCode.INVALID_ARGUMENT,
      `Invalid key ${JSON.stringify(key)}: must be a non-empty string`,
    );
  }
  if (!isWellFormed(key)) {
    throw new DatastoreError(
      DatastoreErrorCode.INVALID_ARGUMENT,
      `Invalid key ${JSON.stringify(key)}: not well-formed Unicode (lone surrogate)`,
      { key },
    );
  }
}

export function checkValue(key: string, value: string): void {
  if (typeof value !== "string") {
    throw new DatastoreError(
      DatastoreErrorCode.INVALID_ARGUMENT,
      `Invalid value for key "${key}": must be a string (JSON text)`,
      { key },
    );
  }
}

export function checkRevision(what: string, revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 0) {
    throw new DatastoreError(
      DatastoreErrorCode.INVALID_ARGUMENT,
      `Invalid ${what} ${String(revision)}: must be a non-negative integer`,
    );
  }
}

function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

const isSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdfff;

/** Code-point (= UTF-8 byte) order of two well-formed strings. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point above U+FFFF) sorts after every BMP unit from U+E000 up.
    const sx = isSurrogate(x);
    const sy = isSurrogate(y);
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The smallest key greater than every key that starts with `prefix`, or undefined when there
 * is none (empty prefix, or a prefix of only U+10FFFF). Keys k with `prefix <= k < upper` are
 * exactly the keys starting with `prefix`, in code-point order.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return cps.join("") + String.fromCodePoint(next);
    }
  }
  return undefined;
}
