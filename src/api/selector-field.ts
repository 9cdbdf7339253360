/** Validation of selector-valued fields (reference/calico.md §3.5 policy-level constraints). */
import { parseSelector } from "../selector/index.js";
import { join, type Issues } from "./check.js";

export interface SelectorFieldOpts {
  required?: boolean;
  /** `global()` is only allowed in a rule's namespaceSelector, and there only on its own. */
  global?: "forbidden" | "alone-only";
  maxLength?: number;
}

export function checkSelector(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: SelectorFieldOpts = {},
): string | undefined {
  const v = obj[field];
  const p = join(path, field);
  if (v === undefined || v === null) {
    if (opt.required === true) issues.add(p, "is required");
    return undefined;
  }
  if (typeof v !== "string") {
    issues.add(p, "must be a selector string, e.g. app == 'web'", v);
    return undefined;
  }
  const max = opt.maxLength ?? 1024;
  if (v.length > max) {
    issues.add(p, `selector must be at most ${max} characters (is ${v.length})`, v);
    return undefined;
  }
  try {
    parseSelector(v);
  } catch (err) {
    issues.add(p, `invalid selector: ${err instanceof Error ? err.message : String(err)}`, v);
    return undefined;
  }
  const mode = opt.global ?? "forbidden";
  if (v.includes("global(")) {
    if (mode === "forbidden") {
      issues.add(p, "global() is not allowed here (only on its own in a rule's namespaceSelector)", v);
      return undefined;
    }
    if (v.trim() !== "global()") {
      issues.add(p, "global() must be used on its own, not combined with other expressions", v);
      return undefined;
    }
  }
  return v;
}
