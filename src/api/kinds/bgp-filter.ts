/**
 * BGPFilter (cluster): ordered import/export rules for BGP routes, referenced by BGPPeer.filters
 * (reference/calico.md §2.16). Rules from the CRD's CEL validations and
 * `validateBGPFilterRuleV4/V6`. The first matching rule decides.
 */
import type { AnyResource, Resource } from "../resource.js";
import {
  checkEnum,
  checkKnownFields,
  checkNumberValue,
  checkObject,
  checkStringValue,
  isRecord,
  join,
  type Issues,
} from "../check.js";
import type { KindDef } from "./kind.js";
import { checkASNumberValue, parseASNumber } from "./as-number.js";
import { communityProblem } from "./bgp-community.js";
import { checkNetField, cloneResource, forEachObject, specOf } from "./infra-spec.js";

export const MATCH_OPERATORS = ["Equal", "NotEqual", "In", "NotIn"] as const;
export const FILTER_ACTIONS = ["Accept", "Reject"] as const;

export interface BGPFilterOperation {
  addCommunity?: { value: string };
  prependASPath?: { prefix: (number | string)[] };
  setPriority?: { value: number };
}

export interface BGPFilterRule {
  cidr?: string;
  matchOperator?: (typeof MATCH_OPERATORS)[number];
  prefixLength?: { min?: number; max?: number };
  source?: "RemotePeers";
  interface?: string;
  peerType?: "eBGP" | "iBGP";
  communities?: { values: string[] };
  asPathPrefix?: (number | string)[];
  priority?: number;
  action: (typeof FILTER_ACTIONS)[number];
  operations?: BGPFilterOperation[];
}

export interface BGPFilterSpec {
  exportV4?: BGPFilterRule[];
  importV4?: BGPFilterRule[];
  exportV6?: BGPFilterRule[];
  importV6?: BGPFilterRule[];
}

export type BGPFilter = Resource<"BGPFilter", BGPFilterSpec>;

const RULE_FIELDS = [
  "cidr",
  "matchOperator",
  "prefixLength",
  "source",
  "interface",
  "peerType",
  "communities",
  "asPathPrefix",
  "priority",
  "action",
  "operations",
];
const LISTS = { exportV4: 4, importV4: 4, exportV6: 6, importV6: 6 } as const;
const FILTER_INTERFACE = /^[a-zA-Z0-9_.*-]{1,15}$/;
const PRIORITY = { integer: true, min: 1, max: 2147483646 } as const;

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== "";

function checkCommunity(v: unknown, path: string, issues: Issues): void {
  const s = checkStringValue(v, path, issues, { maxLength: 32 });
  if (s === undefined) return;
  const problem = communityProblem(s);
  if (problem !== undefined) issues.add(path, problem, s);
}

function checkASList(v: unknown, path: string, issues: Issues, opt: { min: number; max: number }): void {
  if (!Array.isArray(v)) {
    issues.add(path, "must be a list of AS numbers", v);
    return;
  }
  if (v.length < opt.min || v.length > opt.max) {
    issues.add(path, `must have ${opt.min} to ${opt.max} AS numbers (has ${v.length})`);
  }
  v.forEach((as: unknown, i) => checkASNumberValue(as, join(path, i), issues));
}

function checkOperation(op: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(op, ["addCommunity", "prependASPath", "setPriority"], path, issues);
  const set = ["addCommunity", "prependASPath", "setPriority"].filter((k) => present(op[k]));
  if (set.length !== 1) {
    issues.add(
      path,
      `must set exactly one of addCommunity, prependASPath, setPriority (has ${set.length})`,
      op,
    );
  }
  const add = checkObject(op, "addCommunity", path, issues);
  if (add !== undefined) {
    const ap = join(path, "addCommunity");
    checkKnownFields(add, ["value"], ap, issues);
    if (!present(add.value)) issues.add(join(ap, "value"), "is required");
    else checkCommunity(add.value, join(ap, "value"), issues);
  }
  const prepend = checkObject(op, "prependASPath", path, issues);
  if (prepend !== undefined) {
    const pp = join(path, "prependASPath");
    checkKnownFields(prepend, ["prefix"], pp, issues);
    if (prepend.prefix === undefined) issues.add(join(pp, "prefix"), "is required");
    else checkASList(prepend.prefix, join(pp, "prefix"), issues, { min: 1, max: 10 });
  }
  const setPrio = checkObject(op, "setPriority", path, issues);
  if (setPrio !== undefined) {
    const sp = join(path, "setPriority");
    checkKnownFields(setPrio, ["value"], sp, issues);
    if (setPrio.value === undefined) issues.add(join(sp, "value"), "is required");
    else checkNumberValue(setPrio.value, join(sp, "value"), issues, PRIORITY);
  }
}

function checkRule(rule: Record<string, unknown>, path: string, family: 4 | 6, issues: Issues): void {
  checkKnownFields(rule, RULE_FIELDS, path, issues);
  const bits = family === 4 ? 32 : 128;
  if (typeof rule.cidr === "string" && rule.cidr.length > (family === 4 ? 18 : 43)) {
    issues.add(join(path, "cidr"), `must be at most ${family === 4 ? 18 : 43} characters`, rule.cidr);
  }
  checkNetField(rule, "cidr", path, issues, { family, masked: true });
  checkEnum(rule, "matchOperator", path, MATCH_OPERATORS, issues);
  const hasCidr = present(rule.cidr);
  if (hasCidr && !present(rule.matchOperator)) {
    issues.add(
      join(path, "matchOperator"),
      `is required when cidr is set (one of ${MATCH_OPERATORS.join(", ")})`,
    );
  }
  if (!hasCidr && present(rule.matchOperator)) {
    issues.add(join(path, "cidr"), "is required when matchOperator is set");
  }
  const pl = checkObject(rule, "prefixLength", path, issues);
  if (pl !== undefined) {
    const pp = join(path, "prefixLength");
    checkKnownFields(pl, ["min", "max"], pp, issues);
    if (!hasCidr) issues.add(pp, "needs cidr: a prefix-length range only narrows a cidr match", pl);
    const min =
      pl.min === undefined
        ? undefined
        : checkNumberValue(pl.min, join(pp, "min"), issues, { integer: true, min: 0, max: bits });
    const max =
      pl.max === undefined
        ? undefined
        : checkNumberValue(pl.max, join(pp, "max"), issues, { integer: true, min: 0, max: bits });
    if (min !== undefined && max !== undefined && min > max)
      issues.add(pp, "min must not be greater than max", pl);
  }
  checkEnum(rule, "source", path, ["RemotePeers"], issues);
  const iface = rule.interface;
  if (present(iface)) {
    checkStringValue(iface, join(path, "interface"), issues, {
      pattern: FILTER_INTERFACE,
      patternHint: "an interface name or glob of 1-15 characters (a-z, A-Z, 0-9, '_', '.', '-', '*')",
    });
  }
  checkEnum(rule, "peerType", path, ["eBGP", "iBGP"], issues);
  const comm = checkObject(rule, "communities", path, issues);
  if (comm !== undefined) {
    const cp = join(path, "communities");
    checkKnownFields(comm, ["values"], cp, issues);
    const values = comm.values;
    if (!Array.isArray(values))
      issues.add(join(cp, "values"), "is required: a list with one community", values);
    else {
      if (values.length !== 1)
        issues.add(join(cp, "values"), `must hold exactly one community (has ${values.length})`);
      values.forEach((v: unknown, i) => checkCommunity(v, join(join(cp, "values"), i), issues));
    }
  }
  if (rule.asPathPrefix !== undefined)
    checkASList(rule.asPathPrefix, join(path, "asPathPrefix"), issues, { min: 0, max: Infinity });
  if (rule.priority !== undefined) checkNumberValue(rule.priority, join(path, "priority"), issues, PRIORITY);
  const action = checkEnum(rule, "action", path, FILTER_ACTIONS, issues, { required: true });
  const ops = forEachObject(rule, "operations", path, issues, (o, p) => checkOperation(o, p, issues), {
    minItems: 1,
    maxItems: 10,
  });
  if (ops !== undefined && ops.length > 0 && action === "Reject") {
    issues.add(
      join(path, "operations"),
      "may only be used with action Accept (a rejected route is not modified)",
      rule.operations,
    );
  }
}

export function validateBGPFilterSpec(spec: Record<string, unknown>, path: string, issues: Issues): void {
  checkKnownFields(spec, Object.keys(LISTS), path, issues);
  for (const [list, family] of Object.entries(LISTS)) {
    forEachObject(spec, list, path, issues, (rule, p) => checkRule(rule, p, family, issues));
  }
}

/** Normalise dotted AS numbers in asPathPrefix / prependASPath to the integers Calico stores. */
function normaliseRuleASNumbers(rule: unknown): void {
  if (!isRecord(rule)) return;
  const norm = (list: unknown): unknown =>
    Array.isArray(list) ? list.map((v: unknown) => parseASNumber(v) ?? v) : list;
  if (rule.asPathPrefix !== undefined) rule.asPathPrefix = norm(rule.asPathPrefix);
  if (Array.isArray(rule.operations)) {
    for (const op of rule.operations as unknown[]) {
      if (isRecord(op) && isRecord(op.prependASPath)) op.prependASPath.prefix = norm(op.prependASPath.prefix);
    }
  }
}

export const BGP_FILTER_KIND: KindDef = {
  kind: "BGPFilter",
  plural: "bgpfilters",
  namespaced: false,
  // calicoctl's list repeats "bgpfilter" where the plural belongs; the plural comes from `plural`.
  shortNames: ["bgpfilter", "bgpf", "bgpfs", "bf", "bfs"],
  validate(resource, issues) {
    const spec = specOf(resource, issues);
    if (spec !== undefined) validateBGPFilterSpec(spec, "spec", issues);
  },
  withDefaults(resource: AnyResource): AnyResource {
    const out = cloneResource(resource);
    for (const list of Object.keys(LISTS)) {
      const rules = out.spec[list];
      if (Array.isArray(rules)) rules.forEach(normaliseRuleASNumbers);
    }
    return out;
  },
};
