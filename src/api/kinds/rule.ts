/**
 * The policy rule schema shared by NetworkPolicy, GlobalNetworkPolicy, the staged kinds and
 * Profile (reference/calico.md §2.11): types, validation and normalisation.
 *
 * Validation follows Calico's Go validator (`libcalico-go/lib/validator/v3`) plus the CRD
 * CEL rules of `api/pkg/apis/projectcalico/v3/policy_common.go`. Where the two disagree we
 * take the CEL reading, which accepts protocol numbers (1, 6, 58) wherever the names are.
 */
import {
  checkArray,
  checkEnumValue,
  checkKnownFields,
  checkNumber,
  checkString,
  isDNS1123Subdomain,
  isRecord,
  join,
  labelKeyProblem,
  DNS1123_SUBDOMAIN_HINT,
  type Issues,
} from "../check.js";
import { isMasked, parseCIDR, type IPFamily } from "../net.js";
import { checkSelector } from "../selector-field.js";

// ---- types ----

export const RULE_ACTIONS = ["Allow", "Deny", "Log", "Pass"] as const;
export type Action = (typeof RULE_ACTIONS)[number];

export const POLICY_TYPES = ["Ingress", "Egress"] as const;
export type PolicyType = (typeof POLICY_TYPES)[number];

/** Protocol names Calico's v3 API accepts; case-sensitive (lower-case is the internal v1 form). */
export const PROTOCOL_NAMES = ["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"] as const;
export type ProtocolName = (typeof PROTOCOL_NAMES)[number];
/** A protocol name or an IP protocol number 1-255. */
export type Protocol = ProtocolName | number;

/** IANA protocol numbers of the named protocols. */
export const PROTOCOL_NUMBERS: Readonly<Record<ProtocolName, number>> = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
  SCTP: 132,
  UDPLite: 136,
};

/** A single port (80), a range ("8000:8080") or a named port ("http"). */
export type Port = number | string;

export interface ICMPFields {
  /** 0-254 */
  type?: number;
  /** 0-255; requires `type` */
  code?: number;
}

export interface ServiceAccountMatch {
  names?: string[];
  selector?: string;
}

export interface ServiceMatch {
  name: string;
  namespace?: string;
}

export interface EntityRule {
  nets?: string[];
  notNets?: string[];
  selector?: string;
  notSelector?: string;
  namespaceSelector?: string;
  ports?: Port[];
  notPorts?: Port[];
  serviceAccounts?: ServiceAccountMatch;
  services?: ServiceMatch;
}

export interface HTTPPath {
  exact?: string;
  prefix?: string;
}

export interface HTTPMatch {
  methods?: string[];
  paths?: HTTPPath[];
}

export interface RuleMetadata {
  annotations?: Record<string, string>;
}

export interface Rule {
  action: Action;
  ipVersion?: 4 | 6;
  protocol?: Protocol;
  notProtocol?: Protocol;
  icmp?: ICMPFields;
  notICMP?: ICMPFields;
  source?: EntityRule;
  destination?: EntityRule;
  http?: HTTPMatch;
  metadata?: RuleMetadata;
}

export const RULE_FIELDS = [
  "action",
  "ipVersion",
  "protocol",
  "notProtocol",
  "icmp",
  "notICMP",
  "source",
  "destination",
  "http",
  "metadata",
] as const;

export const ENTITY_RULE_FIELDS = [
  "nets",
  "notNets",
  "selector",
  "notSelector",
  "namespaceSelector",
  "ports",
  "notPorts",
  "serviceAccounts",
  "services",
] as const;

/** Where a rule list sits; some constraints depend on it. */
export interface RuleContext {
  direction: "ingress" | "egress";
  /**
   * `namespaced`: NetworkPolicy / StagedNetworkPolicy; `global`: (Staged)GlobalNetworkPolicy
   * (service matches must name a namespace); `profile`: Calico checks only per-rule
   * constraints for profile rules, not the direction-dependent ones.
   */
  owner: "namespaced" | "global" | "profile";
}

/** Rule lists per policy, per the CRD schema (`MaxItems=1024`). */
export const MAX_RULES = 1024;
const MAX_NETS = 256;
const MAX_PORTS = 50;
const MAX_HTTP_ITEMS = 20;
const MAX_HTTP_PATH = 1024;
/** Kubernetes' total annotation size limit, which Calico applies to rule metadata too. */
const MAX_ANNOTATION_BYTES = 256 * 1024;

// ---- value parsers (pure; no issues) ----

export type ParsedProtocol = { ok: true; value: Protocol; number: number } | { ok: false; message: string };

const PROTOCOL_HINT = `must be one of ${PROTOCOL_NAMES.join(", ")} (case-sensitive) or an integer from 1 to 255`;

/**
 * Parse a protocol as Calico's `numorstring.Protocol` does: numbers and all-digit strings
 * are protocol numbers (0 is invalid), anything else must be a name, matched exactly.
 */
export function parseProtocol(v: unknown): ParsedProtocol {
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= 1 && v <= 255) return { ok: true, value: v, number: v };
    return { ok: false, message: PROTOCOL_HINT };
  }
  if (typeof v !== "string") return { ok: false, message: PROTOCOL_HINT };
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n >= 1 && n <= 255) return { ok: true, value: n, number: n };
    return { ok: false, message: PROTOCOL_HINT };
  }
  const name = PROTOCOL_NAMES.find((p) => p === v);
  if (name !== undefined) return { ok: true, value: name, number: PROTOCOL_NUMBERS[name] };
  const fold = PROTOCOL_NAMES.find((p) => p.toLowerCase() === v.toLowerCase());
  return {
    ok: false,
    message: fold !== undefined ? `${PROTOCOL_HINT}; did you mean ${fold}?` : PROTOCOL_HINT,
  };
}

/** True for TCP (6), UDP (17) and SCTP (132): the protocols with ports. */
export function protocolSupportsPorts(p: Protocol): boolean {
  const n = typeof p === "number" ? p : PROTOCOL_NUMBERS[p];
  return n === 6 || n === 17 || n === 132;
}

export type ParsedPort =
  | { ok: true; kind: "range"; min: number; max: number }
  | { ok: true; kind: "named"; name: string }
  | { ok: false; message: string };

const PORT_NAME_SYNTAX = /^[a-zA-Z0-9_.-]{1,128}$/;
/** Kubernetes IsValidPortName (IANA_SVC_NAME), which Calico applies to named ports. */
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function portNameProblem(name: string): string | undefined {
  if (!PORT_NAME_SYNTAX.test(name)) return "is not a port number, a range min:max or a port name";
  if (name.length > 15 || !IANA_SVC_NAME.test(name) || name.includes("--") || !/[a-z]/.test(name)) {
    return (
      "a named port must be 1-15 characters of a-z, 0-9 and '-', contain a letter, " +
      "and not start, end or contain '--' (a Kubernetes port name)"
    );
  }
  return undefined;
}

const PORT_RANGE_MSG = "port numbers must be from 1 to 65535";

/** Parse a port as Calico's `numorstring.Port`: `80`, `"80"`, `"8000:8080"` or `"http"`. */
export function parsePort(v: unknown): ParsedPort {
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= 1 && v <= 65535) return { ok: true, kind: "range", min: v, max: v };
    return { ok: false, message: PORT_RANGE_MSG };
  }
  if (typeof v !== "string") {
    return { ok: false, message: 'must be a port number, a range "min:max" or a port name' };
  }
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n >= 1 && n <= 65535) return { ok: true, kind: "range", min: n, max: n };
    return { ok: false, message: PORT_RANGE_MSG };
  }
  const m = /^(\d+):(\d+)$/.exec(v);
  if (m !== null) {
    const min = Number(m[1]);
    const max = Number(m[2]);
    if (min < 1 || max < 1 || min > 65535 || max > 65535) return { ok: false, message: PORT_RANGE_MSG };
    if (min > max) {
      return { ok: false, message: `port range minimum (${min}) is greater than its maximum (${max})` };
    }
    return { ok: true, kind: "range", min, max };
  }
  const problem = portNameProblem(v);
  if (problem !== undefined) return { ok: false, message: problem };
  return { ok: true, kind: "named", name: v };
}

/** The stored form of a port: a number for a single port, "min:max" for a range. */
export function formatPort(p: Exclude<ParsedPort, { ok: false }>): Port {
  if (p.kind === "named") return p.name;
  return p.min === p.max ? p.min : `${p.min}:${p.max}`;
}

// ---- validation ----

/**
 * Validate `obj[field]` as a list of rules; returns nothing (problems go to `issues`).
 */
export function checkRules(
  obj: Record<string, unknown>,
  field: "ingress" | "egress",
  path: string,
  issues: Issues,
  ctx: RuleContext,
): void {
  const list = checkArray(obj, field, path, issues, { maxItems: MAX_RULES });
  if (list === undefined) return;
  const base = join(path, field);
  list.forEach((r, i) => checkRule(r, join(base, i), issues, ctx));
}

interface NetFamilies {
  /** The family first seen in the rule's nets, and where. */
  first?: { family: IPFamily; path: string };
}

/** Validate one rule at `path` (e.g. `spec.ingress[2]`). */
export function checkRule(v: unknown, path: string, issues: Issues, ctx: RuleContext): void {
  if (!isRecord(v)) {
    issues.add(path, "must be a rule object with at least an action", v);
    return;
  }
  checkKnownFields(v, RULE_FIELDS, path, issues);
  const action = checkEnumField(v, "action", path, RULE_ACTIONS, issues, true);

  let ipVersion: 4 | 6 | undefined;
  if (v.ipVersion !== undefined && v.ipVersion !== null) {
    if (v.ipVersion === 4 || v.ipVersion === 6) ipVersion = v.ipVersion;
    else issues.add(join(path, "ipVersion"), "must be 4 or 6", v.ipVersion);
  }

  const protocol = checkProtocolField(v, "protocol", path, issues);
  const notProtocol = checkProtocolField(v, "notProtocol", path, issues);
  // An invalid protocol is already reported; don't pile consequential errors on it.
  const protocolGivenButBad = protocol === undefined && v.protocol !== undefined && v.protocol !== null;

  // ICMP and ICMPv6 pin the IP version (both protocol and notProtocol, as Calico checks).
  for (const [field, p] of [
    ["protocol", protocol],
    ["notProtocol", notProtocol],
  ] as const) {
    if (p === undefined || ipVersion === undefined) continue;
    const n = typeof p === "number" ? p : PROTOCOL_NUMBERS[p];
    if (n === 1 && ipVersion !== 4) {
      issues.add(
        join(path, "ipVersion"),
        `must be 4 when ${field} is ICMP (or leave ipVersion unset)`,
        ipVersion,
      );
    } else if (n === 58 && ipVersion !== 6) {
      issues.add(
        join(path, "ipVersion"),
        `must be 6 when ${field} is ICMPv6 (or leave ipVersion unset)`,
        ipVersion,
      );
    }
  }

  const icmp = checkICMP(v, "icmp", path, issues);
  checkICMP(v, "notICMP", path, issues);
  if (icmp && !protocolGivenButBad) {
    const n =
      protocol === undefined
        ? undefined
        : typeof protocol === "number"
          ? protocol
          : PROTOCOL_NUMBERS[protocol];
    if (n !== 1 && n !== 58) {
      issues.add(join(path, "icmp"), "ICMP fields require protocol ICMP or ICMPv6 (or 1 / 58)", v.icmp);
    }
  }

  const families: NetFamilies = {};
  const source = checkEntityRule(v, "source", path, issues, ipVersion, families);
  const destination = checkEntityRule(v, "destination", path, issues, ipVersion, families);

  // Ports only exist for TCP, UDP and SCTP; named ports too (Calico requires the protocol).
  const portsAllowed = protocolGivenButBad || (protocol !== undefined && protocolSupportsPorts(protocol));
  for (const [side, e] of [
    ["source", source],
    ["destination", destination],
  ] as const) {
    if (e === undefined) continue;
    for (const f of ["ports", "notPorts"] as const) {
      const list = e[f];
      if (!portsAllowed && Array.isArray(list) && list.length > 0) {
        issues.add(
          join(join(path, side), f),
          "rules that match ports must set protocol to TCP, UDP or SCTP (or 6, 17, 132)",
          list,
        );
      }
    }
  }

  // A destination service match uses the ports of the service's endpoints.
  if (destination !== undefined && isRecord(destination.services)) {
    for (const f of ["ports", "notPorts"] as const) {
      const list = destination[f];
      if (Array.isArray(list) && list.length > 0) {
        issues.add(join(join(path, "destination"), f), "cannot be combined with destination.services", list);
      }
    }
  }

  // Direction-dependent service rules and GNP namespaces (policy spec validators in Calico).
  if (ctx.owner !== "profile") {
    if (ctx.direction === "ingress" && destination !== undefined && destination.services !== undefined) {
      issues.add(
        join(join(path, "destination"), "services"),
        "not allowed in an ingress rule's destination (use source)",
        destination.services,
      );
    }
    if (ctx.direction === "egress" && source !== undefined && source.services !== undefined) {
      issues.add(
        join(join(path, "source"), "services"),
        "not allowed in an egress rule's source (use destination)",
        source.services,
      );
    }
    if (ctx.owner === "global") {
      const side = ctx.direction === "ingress" ? source : destination;
      const sideName = ctx.direction === "ingress" ? "source" : "destination";
      if (side !== undefined && isRecord(side.services)) {
        const ns = side.services.namespace;
        if (ns === undefined || ns === null || ns === "") {
          issues.add(
            join(join(join(path, sideName), "services"), "namespace"),
            "is required in a GlobalNetworkPolicy (service names are only unique within a namespace)",
          );
        }
      }
    }
  }

  if (v.http !== undefined && v.http !== null) {
    checkHTTP(v.http, join(path, "http"), issues);
    if (action !== undefined && action !== "Allow") {
      issues.add(join(path, "http"), `HTTP match is only valid on Allow rules (action is ${action})`, v.http);
    }
    if (protocol !== undefined && protocol !== "TCP" && protocol !== 6) {
      issues.add(
        join(path, "protocol"),
        "rules with an HTTP match must have protocol TCP or no protocol",
        protocol,
      );
    }
    if (ctx.owner !== "profile" && ctx.direction === "egress") {
      issues.add(join(path, "http"), "HTTP match is not allowed in egress rules", v.http);
    }
  }

  checkRuleMetadata(v, path, issues);
}

function checkEnumField<T extends string>(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  allowed: readonly T[],
  issues: Issues,
  required = false,
): T | undefined {
  const val = obj[field];
  if (val === undefined || val === null) {
    if (required) issues.add(join(path, field), `is required; one of ${allowed.join(", ")}`);
    return undefined;
  }
  return checkEnumValue(val, join(path, field), allowed, issues);
}

function checkProtocolField(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
): Protocol | undefined {
  const val = obj[field];
  if (val === undefined || val === null) return undefined;
  const p = parseProtocol(val);
  if (!p.ok) {
    issues.add(join(path, field), p.message, val);
    return undefined;
  }
  return p.value;
}

/** Returns true when the field is present (whatever its validity). */
function checkICMP(obj: Record<string, unknown>, field: string, path: string, issues: Issues): boolean {
  const val = obj[field];
  if (val === undefined || val === null) return false;
  const p = join(path, field);
  if (!isRecord(val)) {
    issues.add(p, "must be an object with type and optionally code", val);
    return true;
  }
  checkKnownFields(val, ["type", "code"], p, issues);
  checkNumber(val, "type", p, issues, { integer: true, min: 0, max: 254 });
  checkNumber(val, "code", p, issues, { integer: true, min: 0, max: 255 });
  if ((val.type === undefined || val.type === null) && val.code !== undefined && val.code !== null) {
    // The kernel can only match an ICMP code together with its type.
    issues.add(join(p, "code"), "an ICMP code requires an ICMP type", val.code);
  }
  return true;
}

function checkEntityRule(
  rule: Record<string, unknown>,
  field: "source" | "destination",
  path: string,
  issues: Issues,
  ipVersion: 4 | 6 | undefined,
  families: NetFamilies,
): Record<string, unknown> | undefined {
  const val = rule[field];
  if (val === undefined || val === null) return undefined;
  const p = join(path, field);
  if (!isRecord(val)) {
    issues.add(p, "must be an object (an entity rule)", val);
    return undefined;
  }
  checkKnownFields(val, ENTITY_RULE_FIELDS, p, issues);

  checkNets(val, "nets", p, issues, ipVersion, families);
  checkNets(val, "notNets", p, issues, ipVersion, families);

  checkSelector(val, "selector", p, issues, { global: "forbidden" });
  // Calico only forbids global() in `selector`; elsewhere we allow it on its own.
  checkSelector(val, "notSelector", p, issues, { global: "alone-only" });
  checkSelector(val, "namespaceSelector", p, issues, { global: "alone-only" });

  checkPorts(val, "ports", p, issues);
  checkPorts(val, "notPorts", p, issues);

  if (val.serviceAccounts !== undefined && val.serviceAccounts !== null) {
    const sp = join(p, "serviceAccounts");
    const sa = val.serviceAccounts;
    if (!isRecord(sa)) issues.add(sp, "must be an object with names and/or selector", sa);
    else {
      checkKnownFields(sa, ["names", "selector"], sp, issues);
      const names = checkArray(sa, "names", sp, issues);
      const seen = new Set<string>();
      names?.forEach((n, i) => {
        const np = join(join(sp, "names"), i);
        if (typeof n !== "string" || n === "") issues.add(np, "must be a non-empty service account name", n);
        else if (seen.has(n)) issues.add(np, "duplicate service account name", n);
        else seen.add(n);
      });
      checkSelector(sa, "selector", sp, issues, { global: "alone-only" });
    }
  }

  if (val.services !== undefined && val.services !== null) {
    const sp = join(p, "services");
    const svc = val.services;
    if (!isRecord(svc)) issues.add(sp, "must be an object with name and optionally namespace", svc);
    else {
      checkKnownFields(svc, ["name", "namespace"], sp, issues);
      for (const f of ["name", "namespace"] as const) {
        const s = checkString(svc, f, sp, issues, { required: f === "name", maxLength: 253 });
        if (s !== undefined && !isDNS1123Subdomain(s)) {
          issues.add(join(sp, f), `must be ${DNS1123_SUBDOMAIN_HINT}`, s);
        }
      }
      // A service match stands alone: it supplies the addresses (and for destinations the ports).
      const exclusive: [string, string][] = [
        ["namespaceSelector", "namespaceSelector"],
        ["selector", "selector"],
        ["notSelector", "notSelector"],
        ["serviceAccounts", "serviceAccounts"],
        ["nets", "nets"],
        ["notNets", "notNets"],
      ];
      for (const [f, label] of exclusive) {
        const other = val[f];
        const set =
          other !== undefined &&
          other !== null &&
          other !== "" &&
          !(Array.isArray(other) && other.length === 0);
        if (set)
          issues.add(
            join(p, f),
            `cannot be combined with services (${label} and services are exclusive)`,
            other,
          );
      }
    }
  }
  return val;
}

function checkNets(
  entity: Record<string, unknown>,
  field: "nets" | "notNets",
  path: string,
  issues: Issues,
  ipVersion: 4 | 6 | undefined,
  families: NetFamilies,
): void {
  const list = checkArray(entity, field, path, issues, { maxItems: MAX_NETS });
  if (list === undefined) return;
  const base = join(path, field);
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const p = join(base, i);
    if (typeof item !== "string") {
      issues.add(p, "must be a CIDR string such as 198.19.0.0/16 or fd00:19::/48", item);
      return;
    }
    // Calico parses rule nets with ParseCIDR (so a prefix is required) and the `net` tag
    // (so host bits must be clear).
    const c = parseCIDR(item);
    if (c === undefined) {
      const hint = /^[0-9a-fA-F.:]+$/.test(item)
        ? ` (for a single address write ${item}/${item.includes(":") ? 128 : 32})`
        : "";
      issues.add(p, `must be a CIDR such as 198.19.0.0/16 or fd00:19::/48${hint}`, item);
      return;
    }
    if (!isMasked(c)) {
      issues.add(p, "must have no host bits set (e.g. 198.19.0.0/16, not 198.19.0.1/16)", item);
      return;
    }
    if (seen.has(item)) issues.add(p, "duplicate entry", item);
    seen.add(item);
    if (field === "notNets" && c.prefix === 0) {
      issues.add(
        p,
        `${item} excludes every IPv${c.family} address; drop the rule or use a narrower CIDR`,
        item,
      );
    }
    if (ipVersion !== undefined && c.family !== ipVersion) {
      issues.add(p, `is an IPv${c.family} CIDR but the rule has ipVersion ${ipVersion}`, item);
      return;
    }
    if (families.first === undefined) families.first = { family: c.family, path: p };
    else if (families.first.family !== c.family) {
      issues.add(
        p,
        `is an IPv${c.family} CIDR but ${families.first.path} is IPv${families.first.family}; a rule's nets must all be one family`,
        item,
      );
    }
  });
}

function checkPorts(
  entity: Record<string, unknown>,
  field: "ports" | "notPorts",
  path: string,
  issues: Issues,
): void {
  const list = checkArray(entity, field, path, issues, { maxItems: MAX_PORTS });
  if (list === undefined) return;
  const base = join(path, field);
  list.forEach((item, i) => {
    const r = parsePort(item);
    if (!r.ok) issues.add(join(base, i), r.message, item);
  });
}

function checkHTTP(v: unknown, path: string, issues: Issues): void {
  if (!isRecord(v)) {
    issues.add(path, "must be an object with methods and/or paths", v);
    return;
  }
  checkKnownFields(v, ["methods", "paths"], path, issues);
  const methods = checkArray(v, "methods", path, issues, { maxItems: MAX_HTTP_ITEMS });
  const seen = new Set<string>();
  methods?.forEach((m, i) => {
    const p = join(join(path, "methods"), i);
    if (typeof m !== "string" || m === "") issues.add(p, "must be an HTTP method name such as GET", m);
    else if (seen.has(m)) issues.add(p, "duplicate HTTP method", m);
    else seen.add(m);
  });
  const paths = checkArray(v, "paths", path, issues, { maxItems: MAX_HTTP_ITEMS });
  paths?.forEach((item, i) => {
    const p = join(join(path, "paths"), i);
    if (!isRecord(item)) {
      issues.add(p, "must be an object with exact or prefix", item);
      return;
    }
    checkKnownFields(item, ["exact", "prefix"], p, issues);
    const exact = checkString(item, "exact", p, issues, { maxLength: MAX_HTTP_PATH });
    const prefix = checkString(item, "prefix", p, issues, { maxLength: MAX_HTTP_PATH });
    const hasExact = exact !== undefined && exact !== "";
    const hasPrefix = prefix !== undefined && prefix !== "";
    if (hasExact && hasPrefix) {
      issues.add(p, "set exactly one of exact or prefix, not both", item);
      return;
    }
    if (!hasExact && !hasPrefix) {
      if (item.exact === undefined && item.prefix === undefined)
        issues.add(p, "set exactly one of exact or prefix", item);
      else if (exact === "" || prefix === "")
        issues.add(p, "set exactly one of exact or prefix (non-empty)", item);
      return;
    }
    const field = hasExact ? "exact" : "prefix";
    const value = hasExact ? exact : prefix;
    // RFC 3986 §3.3: a path starts with '/' and carries no query, fragment or space.
    if (value !== undefined && (!value.startsWith("/") || /[? #]/.test(value))) {
      issues.add(join(p, field), "must start with '/' and contain no '?', '#' or space", value);
    }
  });
}

function checkRuleMetadata(rule: Record<string, unknown>, path: string, issues: Issues): void {
  const md = rule.metadata;
  if (md === undefined || md === null) return;
  const p = join(path, "metadata");
  if (!isRecord(md)) {
    issues.add(p, "must be an object with annotations", md);
    return;
  }
  checkKnownFields(md, ["annotations"], p, issues);
  const ann = md.annotations;
  if (ann === undefined || ann === null) return;
  const ap = join(p, "annotations");
  if (!isRecord(ann)) {
    issues.add(ap, "must be a map of string keys to string values", ann);
    return;
  }
  let size = 0;
  for (const [k, val] of Object.entries(ann)) {
    const kp = `${ap}[${JSON.stringify(k)}]`;
    // Calico checks annotation keys as qualified names after lower-casing them.
    const problem = labelKeyProblem(k.toLowerCase());
    if (problem !== undefined) issues.add(kp, problem.replace("label key", "annotation key"), k);
    if (typeof val !== "string") issues.add(kp, "must be a string", val);
    else size += Buffer.byteLength(k) + Buffer.byteLength(val);
  }
  if (size > MAX_ANNOTATION_BYTES) {
    issues.add(ap, `total size of annotations must be at most ${MAX_ANNOTATION_BYTES} bytes (is ${size})`);
  }
}

// ---- normalisation ----

function nonEmpty<T>(list: T[] | undefined): list is T[] {
  return list !== undefined && list.length > 0;
}

/** The stored form of an entity rule: empty fields dropped, ports in canonical form. */
export function normalizeEntityRule(e: EntityRule): EntityRule | undefined {
  const out: EntityRule = {};
  if (nonEmpty(e.nets)) out.nets = [...e.nets];
  if (e.selector !== undefined && e.selector !== "") out.selector = e.selector;
  if (e.namespaceSelector !== undefined && e.namespaceSelector !== "")
    out.namespaceSelector = e.namespaceSelector;
  if (e.services !== undefined) out.services = { ...e.services };
  if (nonEmpty(e.ports)) out.ports = e.ports.map(normalizePort);
  if (nonEmpty(e.notNets)) out.notNets = [...e.notNets];
  if (e.notSelector !== undefined && e.notSelector !== "") out.notSelector = e.notSelector;
  if (nonEmpty(e.notPorts)) out.notPorts = e.notPorts.map(normalizePort);
  if (e.serviceAccounts !== undefined) {
    const sa: ServiceAccountMatch = {};
    if (nonEmpty(e.serviceAccounts.names)) sa.names = [...e.serviceAccounts.names];
    if (e.serviceAccounts.selector !== undefined && e.serviceAccounts.selector !== "") {
      sa.selector = e.serviceAccounts.selector;
    }
    out.serviceAccounts = sa;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function normalizePort(p: Port): Port {
  const r = parsePort(p);
  return r.ok ? formatPort(r) : p;
}

function normalizeProtocol(p: Protocol): Protocol {
  const r = parseProtocol(p);
  return r.ok ? r.value : p;
}

/**
 * The form Calico stores a (valid) rule in: all-digit protocol strings become numbers,
 * ports become `80` / `"80:90"` / `"name"`, and empty lists and entity rules disappear
 * (Go's `omitempty`/`omitzero`).
 */
export function normalizeRule(r: Rule): Rule {
  const out: Rule = { action: r.action };
  if (r.ipVersion !== undefined) out.ipVersion = r.ipVersion;
  if (r.protocol !== undefined) out.protocol = normalizeProtocol(r.protocol);
  if (r.icmp !== undefined) out.icmp = { ...r.icmp };
  if (r.notProtocol !== undefined) out.notProtocol = normalizeProtocol(r.notProtocol);
  if (r.notICMP !== undefined) out.notICMP = { ...r.notICMP };
  const source = r.source === undefined ? undefined : normalizeEntityRule(r.source);
  if (source !== undefined) out.source = source;
  const destination = r.destination === undefined ? undefined : normalizeEntityRule(r.destination);
  if (destination !== undefined) out.destination = destination;
  if (r.http !== undefined) out.http = structuredClone(r.http);
  if (r.metadata !== undefined) out.metadata = structuredClone(r.metadata);
  return out;
}

/** Normalise `spec[field]` in place on a copy; leaves non-lists alone. */
export function normalizeRuleList(list: unknown): Rule[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return (list as Rule[]).map(normalizeRule);
}
