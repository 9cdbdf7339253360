/**
 * Small building blocks for resource validators. Each takes the parent object, the field
 * name and the field's path, records problems in an `Issues` list and returns the value when
 * it has the right type, so a validator reads top-down like the schema it checks.
 */
import type { ValidationIssue } from "./validation.js";
import { parseCIDR, parseCIDROrIP, parseIP, isMasked, type CIDR, type IPAddr } from "./net.js";

export class Issues {
  readonly list: ValidationIssue[] = [];

  add(path: string, message: string, ...value: [unknown?]): void {
    this.list.push(value.length > 0 ? { path, value: value[0], message } : { path, message });
  }

  get ok(): boolean {
    return this.list.length === 0;
  }
}

export const join = (path: string, field: string | number): string =>
  typeof field === "number" ? `${path}[${field}]` : path === "" ? field : `${path}.${field}`;

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Edit distance (insert, delete, substitute, swap neighbours), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest allowed name to a typo, if it is close enough to be what was meant. */
export function suggest(word: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const candidate of allowed) {
    const dist = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (dist < bestDist) {
      best = candidate;
      bestDist = dist;
    }
  }
  return best !== undefined && bestDist <= Math.max(1, Math.floor(word.length / 4)) ? best : undefined;
}

/** Flag fields a kind does not have (calicoctl decodes strictly, so a typo is an error). */
export function checkKnownFields(
  obj: Record<string, unknown>,
  known: readonly string[],
  path: string,
  issues: Issues,
): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      const guess = suggest(key, known);
      const hint = guess !== undefined ? `did you mean ${guess}? ` : "";
      issues.add(join(path, key), `unknown field; ${hint}allowed fields here: ${known.join(", ")}`, obj[key]);
    }
  }
}

interface Presence {
  required?: boolean;
}

function present(obj: Record<string, unknown>, field: string, path: string, issues: Issues, opt: Presence) {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (opt.required === true) issues.add(join(path, field), "is required");
    return false;
  }
  return true;
}

export function checkObject(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: Presence = {},
): Record<string, unknown> | undefined {
  if (!present(obj, field, path, issues, opt)) return undefined;
  const v = obj[field];
  if (!isRecord(v)) {
    issues.add(join(path, field), "must be an object", v);
    return undefined;
  }
  return v;
}

export function checkArray(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: Presence & { maxItems?: number; minItems?: number } = {},
): unknown[] | undefined {
  if (!present(obj, field, path, issues, opt)) return undefined;
  const v = obj[field];
  if (!Array.isArray(v)) {
    issues.add(join(path, field), "must be a list", v);
    return undefined;
  }
  if (opt.maxItems !== undefined && v.length > opt.maxItems) {
    issues.add(join(path, field), `must have at most ${opt.maxItems} items (has ${v.length})`);
  }
  if (opt.minItems !== undefined && v.length < opt.minItems) {
    issues.add(join(path, field), `must have at least ${opt.minItems} item(s)`);
  }
  return v as unknown[];
}

export interface StringOpts extends Presence {
  maxLength?: number;
  minLength?: number;
  pattern?: RegExp;
  /** Human description of the pattern, used in the message. */
  patternHint?: string;
}

export function checkString(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: StringOpts = {},
): string | undefined {
  if (!present(obj, field, path, issues, opt)) return undefined;
  return checkStringValue(obj[field], join(path, field), issues, opt);
}

export function checkStringValue(
  v: unknown,
  path: string,
  issues: Issues,
  opt: StringOpts = {},
): string | undefined {
  if (typeof v !== "string") {
    issues.add(path, "must be a string", v);
    return undefined;
  }
  if (opt.maxLength !== undefined && v.length > opt.maxLength) {
    issues.add(path, `must be at most ${opt.maxLength} characters (is ${v.length})`, v);
    return undefined;
  }
  if (opt.minLength !== undefined && v.length < opt.minLength) {
    issues.add(path, `must be at least ${opt.minLength} character(s)`, v);
    return undefined;
  }
  if (opt.pattern !== undefined && !opt.pattern.test(v)) {
    issues.add(path, `must be ${opt.patternHint ?? `a string matching ${String(opt.pattern)}`}`, v);
    return undefined;
  }
  return v;
}

export function checkEnum<T extends string>(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  allowed: readonly T[],
  issues: Issues,
  opt: Presence = {},
): T | undefined {
  if (!present(obj, field, path, issues, opt)) return undefined;
  return checkEnumValue(obj[field], join(path, field), allowed, issues);
}

export function checkEnumValue<T extends string>(
  v: unknown,
  path: string,
  allowed: readonly T[],
  issues: Issues,
): T | undefined {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    issues.add(path, `must be one of ${allowed.join(", ")}`, v);
    return undefined;
  }
  return v as T;
}

export function checkBool(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: Presence = {},
): boolean | undefined {
  if (!present(obj, field, path, issues, opt)) return undefined;
  const v = obj[field];
  if (typeof v !== "boolean") {
    issues.add(join(path, field), "must be true or false", v);
    return undefined;
  }
  return v;
}

export interface NumberOpts extends Presence {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function checkNumber(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: NumberOpts = {},
): number | undefined {
  if (!present(obj, field, path, issues, opt)) return undefined;
  return checkNumberValue(obj[field], join(path, field), issues, opt);
}

export function checkNumberValue(
  v: unknown,
  path: string,
  issues: Issues,
  opt: NumberOpts = {},
): number | undefined {
  const range =
    opt.min !== undefined && opt.max !== undefined
      ? ` from ${opt.min} to ${opt.max}`
      : opt.min !== undefined
        ? ` ≥ ${opt.min}`
        : opt.max !== undefined
          ? ` ≤ ${opt.max}`
          : "";
  const what = `${opt.integer === true ? "an integer" : "a number"}${range}`;
  if (typeof v !== "number" || !Number.isFinite(v) || (opt.integer === true && !Number.isInteger(v))) {
    issues.add(path, `must be ${what}`, v);
    return undefined;
  }
  if ((opt.min !== undefined && v < opt.min) || (opt.max !== undefined && v > opt.max)) {
    issues.add(path, `must be ${what}`, v);
    return undefined;
  }
  return v;
}

/** A list of strings, each checked with `each` (which records its own issues). */
export function checkStringList(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  each: (value: string, path: string) => void = () => undefined,
  opt: Presence & { maxItems?: number } = {},
): string[] | undefined {
  const arr = checkArray(obj, field, path, issues, opt);
  if (arr === undefined) return undefined;
  const out: string[] = [];
  arr.forEach((item, i) => {
    const p = join(join(path, field), i);
    if (typeof item !== "string") {
      issues.add(p, "must be a string", item);
      return;
    }
    out.push(item);
    each(item, p);
  });
  return out;
}

// ---- names and labels (Kubernetes conventions, reference/calico.md §2.0) ----

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isDNS1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isDNS1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export const DNS1123_SUBDOMAIN_HINT =
  "a lower-case DNS-1123 subdomain (a-z, 0-9, '-' and '.', starting and ending alphanumeric, at most 253 characters)";
export const DNS1123_LABEL_HINT =
  "a lower-case DNS-1123 label (a-z, 0-9 and '-', starting and ending alphanumeric, at most 63 characters)";

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** A Kubernetes label key: optional DNS subdomain prefix + '/' + name of ≤63 chars. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDNS1123Subdomain(prefix)) {
    return "label key prefix must be a DNS-1123 subdomain";
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return "label key name must be 1-63 characters of a-z, A-Z, 0-9, '-', '_' or '.', starting and ending alphanumeric";
  }
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.length === 0) return undefined;
  if (value.length > 63 || !QUALIFIED_NAME.test(value)) {
    return "label value must be empty or 1-63 characters of a-z, A-Z, 0-9, '-', '_' or '.', starting and ending alphanumeric";
  }
  return undefined;
}

/** A `map[string]string` of labels; keys and values checked against Kubernetes rules. */
export function checkLabels(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
): Record<string, string> | undefined {
  const m = checkObject(obj, field, path, issues);
  if (m === undefined) return undefined;
  const base = join(path, field);
  for (const [k, v] of Object.entries(m)) {
    const p = `${base}[${JSON.stringify(k)}]`;
    const keyProblem = labelKeyProblem(k);
    if (keyProblem !== undefined) issues.add(p, keyProblem, k);
    if (typeof v !== "string") issues.add(p, "label value must be a string", v);
    else {
      const valueProblem = labelValueProblem(v);
      if (valueProblem !== undefined) issues.add(p, valueProblem, v);
    }
  }
  return m as Record<string, string>;
}

/** A `map[string]string` without key rules (annotations). */
export function checkStringMap(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
): Record<string, string> | undefined {
  const m = checkObject(obj, field, path, issues);
  if (m === undefined) return undefined;
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "string")
      issues.add(`${join(path, field)}[${JSON.stringify(k)}]`, "must be a string", v);
  }
  return m as Record<string, string>;
}

// ---- addresses ----

export function checkIPValue(v: unknown, path: string, issues: Issues, family?: 4 | 6): IPAddr | undefined {
  if (typeof v !== "string") {
    issues.add(path, "must be an IP address string", v);
    return undefined;
  }
  const ip = parseIP(v);
  if (ip === undefined || (family !== undefined && ip.family !== family)) {
    issues.add(path, `must be an IPv${family ?? "4 or IPv6"} address`, v);
    return undefined;
  }
  return ip;
}

export interface CIDROpts {
  /** Require host bits to be zero (IPPool.cidr). */
  masked?: boolean;
  /** Accept a bare address as a /32 or /128. */
  allowBareIP?: boolean;
  family?: 4 | 6;
}

export function checkCIDRValue(
  v: unknown,
  path: string,
  issues: Issues,
  opt: CIDROpts = {},
): CIDR | undefined {
  if (typeof v !== "string") {
    issues.add(path, "must be a CIDR string such as 198.19.0.0/16 or fd00:19::/48", v);
    return undefined;
  }
  const c = opt.allowBareIP === true ? parseCIDROrIP(v) : parseCIDR(v);
  if (c === undefined) {
    issues.add(
      path,
      `must be a CIDR such as 198.19.0.0/16 or fd00:19::/48${opt.allowBareIP === true ? " (or a single IP address)" : ""}`,
      v,
    );
    return undefined;
  }
  if (opt.family !== undefined && c.family !== opt.family) {
    issues.add(path, `must be an IPv${opt.family} CIDR`, v);
    return undefined;
  }
  if (opt.masked === true && !isMasked(c)) {
    issues.add(path, "must have no host bits set (e.g. 198.19.0.0/16, not 198.19.0.1/16)", v);
    return undefined;
  }
  return c;
}
