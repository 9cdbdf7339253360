/**
 * BGP AS numbers as Calico's `numorstring.ASNumber` accepts them: a 32-bit unsigned integer, a
 * decimal string, or the dotted "asdot" form `X.Y` (RFC 5396: X·65536 + Y, each part 16 bits).
 * Calico stores the plain integer, so `withDefaults` normalises dotted values to numbers.
 */
import { join, type Issues } from "../check.js";

export const AS_NUMBER_MAX = 0xffffffff;
export const AS_NUMBER_HINT = "an AS number from 1 to 4294967295, or dotted X.Y with X and Y from 0 to 65535";

/** The AS as an integer, or undefined when `v` is not an AS number in any accepted form. */
export function parseASNumber(v: unknown): number | undefined {
  let n: number | undefined;
  if (typeof v === "number") n = v;
  else if (typeof v === "string") {
    const dotted = /^(\d{1,5})\.(\d{1,5})$/.exec(v);
    if (dotted !== null) {
      const hi = Number(dotted[1]);
      const lo = Number(dotted[2]);
      if (hi > 0xffff || lo > 0xffff) return undefined;
      n = hi * 0x10000 + lo;
    } else if (/^\d{1,10}$/.test(v)) n = Number(v);
  }
  // AS 0 is reserved (RFC 7607) and means "unset" in Calico's Go structs.
  if (n === undefined || !Number.isInteger(n) || n < 1 || n > AS_NUMBER_MAX) return undefined;
  return n;
}

/** Dotted form for display (`65536` → `1.0`); plain form below 65536. */
export function formatASDot(as: number): string {
  return as < 0x10000 ? String(as) : `${Math.floor(as / 0x10000)}.${as % 0x10000}`;
}

export function checkASNumberValue(v: unknown, path: string, issues: Issues): number | undefined {
  const n = parseASNumber(v);
  if (n === undefined) {
    // YAML reads an unquoted 1.10 as the float 1.1; Calico rejects it too, so say why.
    const hint =
      typeof v === "number" && !Number.isInteger(v)
        ? ' (quote dotted AS numbers, e.g. "1.10": unquoted, YAML reads them as decimal fractions)'
        : "";
    issues.add(path, `must be ${AS_NUMBER_HINT}${hint}`, v);
  }
  return n;
}

export function checkASNumber(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: { required?: boolean } = {},
): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (opt.required === true) issues.add(join(path, field), "is required");
    return undefined;
  }
  return checkASNumberValue(v, join(path, field), issues);
}

/** Replace a dotted/string AS at `obj[field]` by its integer (what Calico stores). */
export function normaliseASField(obj: Record<string, unknown>, field: string): void {
  const n = parseASNumber(obj[field]);
  if (n !== undefined) obj[field] = n;
}
