/**
 * The selector AST and its canonical string form (reference/calico.md §3.4).
 *
 * The canonical form is what Calico's `Selector.String()` prints; it feeds the unique ID that
 * names IP sets, so it must match upstream byte for byte.
 */

/** Leaf comparisons of one label against one literal. */
export type LabelValueOp = "eq" | "ne" | "contains" | "startsWith" | "endsWith";
/** Set membership tests. */
export type LabelSetOp = "in" | "notIn";

export interface AllNode {
  readonly kind: "all";
}
/** `global()`: true when evaluated; only meaningful in a rule namespaceSelector (§2.13). */
export interface GlobalNode {
  readonly kind: "global";
}
export interface HasNode {
  readonly kind: "has";
  readonly label: string;
}
export interface LabelValueNode {
  readonly kind: LabelValueOp;
  readonly label: string;
  readonly value: string;
}
export interface LabelSetNode {
  readonly kind: LabelSetOp;
  readonly label: string;
  /** Sorted ascending by UTF-8 bytes and de-duplicated (see `normaliseSet`). */
  readonly values: readonly string[];
}
export interface NotNode {
  readonly kind: "not";
  readonly operand: SelectorNode;
}
/** `&&` / `||` chains; the parser only builds them with two or more operands. */
export interface AndNode {
  readonly kind: "and";
  readonly operands: readonly SelectorNode[];
}
export interface OrNode {
  readonly kind: "or";
  readonly operands: readonly SelectorNode[];
}

export type SelectorNode =
  AllNode | GlobalNode | HasNode | LabelValueNode | LabelSetNode | NotNode | AndNode | OrNode;

export type SelectorNodeKind = SelectorNode["kind"];

/**
 * Compares strings by their UTF-8 bytes, as Go's `sort.Strings` does. That is code point
 * order, which differs from JS's UTF-16 code unit order for astral vs U+E000–U+FFFF chars.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const pa = a.codePointAt(i)!;
    const pb = b.codePointAt(i)!;
    // Both surrogate-free (or equal leading units handled above): compare code points.
    return pa < pb ? -1 : pa > pb ? 1 : 0;
  }
  return a.length - b.length;
}

/** Sorts (UTF-8 byte order) and de-duplicates the values of an `in` / `not in` set. */
export function normaliseSet(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareUtf8);
}

/** Double quotes unless the value itself contains one (§3.4); literals have no escapes. */
export function quote(value: string): string {
  return value.includes('"') ? `'${value}'` : `"${value}"`;
}

const VALUE_OP_TEXT: Readonly<Record<LabelValueOp, string>> = {
  eq: "==",
  ne: "!=",
  contains: "contains",
  startsWith: "starts with",
  endsWith: "ends with",
};

/** The canonical form of a node (Calico's `Selector.String()`). */
export function canonicalString(node: SelectorNode): string {
  switch (node.kind) {
    case "all":
      return "all()";
    case "global":
      return "global()";
    case "has":
      return `has(${node.label})`;
    case "eq":
    case "ne":
    case "contains":
    case "startsWith":
    case "endsWith":
      return `${node.label} ${VALUE_OP_TEXT[node.kind]} ${quote(node.value)}`;
    case "in":
    case "notIn":
      return `${node.label}${node.kind === "in" ? " in {" : " not in {"}${node.values.map(quote).join(", ")}}`;
    case "not":
      return `!${canonicalString(node.operand)}`;
    case "and":
    case "or": {
      const ops = node.operands;
      // The parser never builds empty chains; hand-built ones print as their identity.
      if (ops.length === 0) return node.kind === "and" ? "all()" : "!all()";
      if (ops.length === 1) return canonicalString(ops[0]!);
      const sep = node.kind === "and" ? " && " : " || ";
      let out = "(" + canonicalString(ops[0]!);
      for (let i = 1; i < ops.length; i++) out += sep + canonicalString(ops[i]!);
      return out + ")";
    }
  }
}

/** Every label key the expression reads, sorted (for indexes and dependency tracking). */
export function referencedLabels(node: SelectorNode): string[] {
  const keys = new Set<string>();
  const walk = (n: SelectorNode): void => {
    switch (n.kind) {
      case "all":
      case "global":
        return;
      case "has":
      case "eq":
      case "ne":
      case "contains":
      case "startsWith":
      case "endsWith":
      case "in":
      case "notIn":
        keys.add(n.label);
        return;
      case "not":
        walk(n.operand);
        return;
      case "and":
      case "or":
        n.operands.forEach(walk);
        return;
    }
  };
  walk(node);
  return [...keys].sort(compareUtf8);
}
