/**
 * Pieces shared by the infrastructure kinds: reading the spec, singleton names, name-valued and
 * address-valued fields, secret references. Field-level building blocks live in `../check.ts`.
 */
import type { AnyResource } from "../resource.js";
import {
  checkIPValue,
  checkObject,
  checkString,
  checkStringValue,
  checkKnownFields,
  isDNS1123Subdomain,
  isRecord,
  join,
  DNS1123_SUBDOMAIN_HINT,
  type Issues,
} from "../check.js";
import { parseCIDROrIP, isMasked, type CIDR, type IPAddr } from "../net.js";

/** The spec as an object (a missing spec reads as `{}`); undefined (with an issue) if not an object. */
export function specOf(resource: AnyResource, issues: Issues): Record<string, unknown> | undefined {
  const spec: unknown = resource.spec;
  if (spec === undefined || spec === null) return {};
  if (!isRecord(spec)) {
    issues.add("spec", "must be an object", spec);
    return undefined;
  }
  return spec;
}

/** A deep copy of a resource, for `withDefaults` (resources are plain JSON data). */
export function cloneResource(resource: AnyResource): AnyResource {
  return structuredClone(resource);
}

/** The copy's spec as a mutable object (created when missing). */
export function mutableSpec(resource: AnyResource): Record<string, unknown> {
  if (!isRecord(resource.spec)) resource.spec = {};
  return resource.spec;
}

/** Name rule of the cluster-wide configuration singletons (reference/calico.md §2.0). */
export function singletonNameProblem(name: string, perNode: boolean): string | undefined {
  if (name === "default") return undefined;
  if (perNode && name.startsWith("node.") && isDNS1123Subdomain(name.slice(5))) return undefined;
  return perNode
    ? `must be "default" or "node.<node name>" (this kind is a cluster singleton with per-node overrides)`
    : `must be "default" (this kind is a cluster singleton)`;
}

/** A field holding another resource's name (Calico's `name` validator: DNS-1123 subdomain). */
export function checkNameField(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: { required?: boolean } = {},
): string | undefined {
  const v = checkString(obj, field, path, issues, opt);
  if (v === undefined || v === "") {
    if (v === "" && opt.required === true)
      issues.add(join(path, field), "is required (must not be empty)", v);
    return v;
  }
  if (!isDNS1123Subdomain(v)) {
    issues.add(join(path, field), `must be ${DNS1123_SUBDOMAIN_HINT}`, v);
    return undefined;
  }
  return v;
}

export function checkNameValue(v: unknown, path: string, issues: Issues): string | undefined {
  const s = checkStringValue(v, path, issues);
  if (s === undefined) return undefined;
  if (!isDNS1123Subdomain(s)) {
    issues.add(path, `must be ${DNS1123_SUBDOMAIN_HINT}`, s);
    return undefined;
  }
  return s;
}

/** A list of names (profiles, filters). */
export function checkNameList(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
): string[] | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  const p = join(path, field);
  if (!Array.isArray(v)) {
    issues.add(p, "must be a list of names", v);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item: unknown, i) => {
    const n = checkNameValue(item, join(p, i), issues);
    if (n !== undefined) out.push(n);
  });
  return out;
}

/** An IP-address-valued string field (empty string counts as unset, as Go's omitempty). */
export function checkIPField(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  family?: 4 | 6,
): IPAddr | undefined {
  const v = obj[field];
  if (v === undefined || v === null || v === "") return undefined;
  return checkIPValue(v, join(path, field), issues, family);
}

export interface NetOpts {
  family?: 4 | 6;
  /** Require host bits zero (Calico's `net`/`netv4`/`netv6`); `cidr*` validators do not. */
  masked?: boolean;
}

/** Calico's `net`/`cidr` family of validators: a CIDR, or a bare IP meaning /32 or /128. */
export function checkNetText(v: unknown, path: string, issues: Issues, opt: NetOpts = {}): CIDR | undefined {
  const what = opt.family === undefined ? "a CIDR" : `an IPv${opt.family} CIDR`;
  const example = opt.family === 6 ? "fd00:19::/48" : "198.19.0.0/16";
  if (typeof v !== "string") {
    issues.add(path, `must be ${what} string such as ${example} (or a single address)`, v);
    return undefined;
  }
  const c = parseCIDROrIP(v);
  if (c === undefined || (opt.family !== undefined && c.family !== opt.family)) {
    issues.add(path, `must be ${what} such as ${example} (or a single address)`, v);
    return undefined;
  }
  if (opt.masked === true && !isMasked(c)) {
    issues.add(path, "must have no host bits set (e.g. 198.19.0.0/16, not 198.19.0.1/16)", v);
    return undefined;
  }
  return c;
}

export function checkNetField(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: NetOpts & { required?: boolean } = {},
): CIDR | undefined {
  const v = obj[field];
  if (v === undefined || v === null || v === "") {
    if (opt.required === true) issues.add(join(path, field), "is required");
    return undefined;
  }
  return checkNetText(v, join(path, field), issues, opt);
}

export function checkNetList(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: NetOpts = {},
): CIDR[] | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  const p = join(path, field);
  if (!Array.isArray(v)) {
    issues.add(p, "must be a list of CIDRs", v);
    return undefined;
  }
  const out: CIDR[] = [];
  v.forEach((item: unknown, i) => {
    const c = checkNetText(item, join(p, i), issues, opt);
    if (c !== undefined) out.push(c);
  });
  return out;
}

/** A list of objects, each handed to `each` with its path. */
export function forEachObject(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  each: (item: Record<string, unknown>, path: string, index: number) => void,
  opt: { maxItems?: number; minItems?: number } = {},
): unknown[] | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  const p = join(path, field);
  if (!Array.isArray(v)) {
    issues.add(p, "must be a list", v);
    return undefined;
  }
  if (opt.maxItems !== undefined && v.length > opt.maxItems) {
    issues.add(p, `must have at most ${opt.maxItems} items (has ${v.length})`);
  }
  if (opt.minItems !== undefined && v.length < opt.minItems) {
    issues.add(p, `must have at least ${opt.minItems} item(s)`);
  }
  v.forEach((item: unknown, i) => {
    const ip = join(p, i);
    if (!isRecord(item)) issues.add(ip, "must be an object", item);
    else each(item, ip, i);
  });
  return v as unknown[];
}

/** `{secretKeyRef: {name, key, optional?}}` (BGPPeer.password, BGPConfiguration.nodeMeshPassword). */
export function checkPassword(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
): void {
  const pw = checkObject(obj, field, path, issues);
  if (pw === undefined) return;
  const p = join(path, field);
  checkKnownFields(pw, ["secretKeyRef"], p, issues);
  const ref = checkObject(pw, "secretKeyRef", p, issues, { required: true });
  if (ref === undefined) return;
  const rp = join(p, "secretKeyRef");
  checkKnownFields(ref, ["name", "key", "optional"], rp, issues);
  checkNameField(ref, "name", rp, issues, { required: true });
  checkString(ref, "key", rp, issues, {
    required: true,
    minLength: 1,
    maxLength: 253,
    pattern: /^[-._a-zA-Z0-9]+$/,
    patternHint: "a secret key (letters, digits, '-', '_' and '.')",
  });
  if (ref.optional !== undefined && typeof ref.optional !== "boolean") {
    issues.add(join(rp, "optional"), "must be true or false", ref.optional);
  }
}

const MAC_PATTERNS = [
  /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/, // EUI-48
  /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){6}$/, // EUI-64
  /^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/, // Cisco dotted EUI-48
  /^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/,
];

/** A MAC address in one of the forms Go's `net.ParseMAC` accepts (48 or 64 bit). */
export function checkMACField(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
): void {
  const v = obj[field];
  if (v === undefined || v === null || v === "") return;
  if (typeof v !== "string" || !MAC_PATTERNS.some((re) => re.test(v))) {
    issues.add(join(path, field), "must be a MAC address such as ee:ee:ee:ee:ee:ee", v);
  }
}

/** Whether `text` compiles as a (Go RE2-style) regular expression, approximated with JS RegExp. */
export function regexpProblem(text: string): string | undefined {
  // Go allows leading inline flags such as (?i); JS does not, so compile without them.
  const flags = /^\(\?([imsU]+)\)/.exec(text);
  const body = flags === null ? text : text.slice(flags[0].length);
  try {
    new RegExp(body, flags?.[1]?.includes("i") === true ? "i" : "");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Linux interface name rule Calico applies (`^[a-zA-Z0-9_.-]{1,15}$`). */
export const INTERFACE_NAME = /^[a-zA-Z0-9_.-]{1,15}$/;
export const INTERFACE_NAME_HINT =
  "an interface name of 1-15 characters from a-z, A-Z, 0-9, '_', '.' and '-'";
