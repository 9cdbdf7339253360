/**
 * Kubernetes list/watch selectors: `labelSelector` in the Kubernetes syntax
 * (`a=b,c!=d,e in (x,y),f notin (z),g,!h`; k8s.io/apimachinery/pkg/labels) and
 * `fieldSelector` on `metadata.name` / `metadata.namespace` (`=`, `==`, `!=`), which is what
 * kubectl sends (`kubectl get NAME -w` lists and watches with `metadata.name=NAME`).
 * Calico's own selector language is not used here: these are the API's query parameters.
 */
import type { AnyResource } from "../../api/resource.js";
import { statusError, StatusReason } from "./status.js";

type LabelRequirement =
  | { op: "eq" | "ne"; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: readonly string[] }
  | { op: "exists" | "notexists"; key: string }
  | { op: "gt" | "lt"; key: string; value: number };

export type LabelSelector = readonly LabelRequirement[];

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

const bad = (text: string, why: string) =>
  statusError(
    StatusReason.BadRequest,
    `unable to parse requirement: labelSelector ${JSON.stringify(text)}: ${why}`,
  );

/** Split at commas that are not inside parentheses. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

function checkKey(key: string, text: string): string {
  if (!KEY.test(key) || key.length > 316) throw bad(text, `invalid label key ${JSON.stringify(key)}`);
  return key;
}

function checkValue(value: string, text: string): string {
  if (!VALUE.test(value) || value.length > 63) {
    throw bad(text, `invalid label value ${JSON.stringify(value)}`);
  }
  return value;
}

/** Parse a Kubernetes label selector; the empty string selects everything. */
export function parseLabelSelector(text: string): LabelSelector {
  const reqs: LabelRequirement[] = [];
  if (text.trim() === "") return reqs;
  for (const raw of splitTop(text)) {
    const part = raw.trim();
    if (part === "") throw bad(text, "empty requirement");
    const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (setMatch !== null) {
      const key = checkKey(setMatch[1] ?? "", text);
      const values = (setMatch[3] ?? "").split(",").map((v) => checkValue(v.trim(), text));
      reqs.push({ op: setMatch[2] === "in" ? "in" : "notin", key, values });
      continue;
    }
    const cmp = /^([^=!<>\s]+)\s*(==|!=|=|<|>)\s*(.*)$/.exec(part);
    if (cmp !== null) {
      const key = checkKey(cmp[1] ?? "", text);
      const opText = cmp[2] ?? "";
      const value = (cmp[3] ?? "").trim();
      if (opText === "<" || opText === ">") {
        if (!/^-?\d+$/.test(value))
          throw bad(text, `${opText} needs an integer, got ${JSON.stringify(value)}`);
        reqs.push({ op: opText === "<" ? "lt" : "gt", key, value: Number(value) });
      } else {
        reqs.push({ op: opText === "!=" ? "ne" : "eq", key, value: checkValue(value, text) });
      }
      continue;
    }
    if (part.startsWith("!")) {
      reqs.push({ op: "notexists", key: checkKey(part.slice(1).trim(), text) });
      continue;
    }
    reqs.push({ op: "exists", key: checkKey(part, text) });
  }
  return reqs;
}

export function matchesLabels(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return sel.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case "eq":
        return v === r.value;
      case "ne":
        return v !== r.value; // k8s: a missing key satisfies !=
      case "in":
        return v !== undefined && r.values.includes(v);
      case "notin":
        return v === undefined || !r.values.includes(v);
      case "exists":
        return has;
      case "notexists":
        return !has;
      case "gt":
      case "lt": {
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        return r.op === "gt" ? Number(v) > r.value : Number(v) < r.value;
      }
    }
  });
}

interface FieldRequirement {
  field: "metadata.name" | "metadata.namespace";
  negate: boolean;
  value: string;
}

export type FieldSelector = readonly FieldRequirement[];

export function parseFieldSelector(text: string): FieldSelector {
  const reqs: FieldRequirement[] = [];
  if (text.trim() === "") return reqs;
  for (const raw of text.split(",")) {
    const m = /^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$/.exec(raw);
    const field = m?.[1];
    if (m === null || (field !== "metadata.name" && field !== "metadata.namespace")) {
      throw statusError(
        StatusReason.BadRequest,
        `field label not supported: fieldSelector ${JSON.stringify(text)}: only metadata.name and metadata.namespace with =, == or != are`,
      );
    }
    reqs.push({ field, negate: m[2] === "!=", value: m[3] ?? "" });
  }
  return reqs;
}

export function matchesFields(sel: FieldSelector, res: AnyResource): boolean {
  return sel.every((r) => {
    const actual = (r.field === "metadata.name" ? res.metadata.name : res.metadata.namespace) ?? "";
    return (actual === r.value) !== r.negate;
  });
}

/** Both selectors of a list/watch request as one predicate. */
export interface ObjectFilter {
  readonly empty: boolean;
  matches(res: AnyResource): boolean;
}

export function objectFilter(labelSelector: string | null, fieldSelector: string | null): ObjectFilter {
  const labels = parseLabelSelector(labelSelector ?? "");
  const fields = parseFieldSelector(fieldSelector ?? "");
  return {
    empty: labels.length === 0 && fields.length === 0,
    matches: (res) => matchesLabels(labels, res.metadata.labels ?? {}) && matchesFields(fields, res),
  };
}
