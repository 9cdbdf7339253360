/**
 * Necessary conditions ("anchors") of a selector, used by the label index to find the few
 * selectors an item could match, and the few items a selector could match, without evaluating
 * everything against everything.
 *
 * `anchorsOf(node)` returns either `undefined` (no useful condition: the selector may match an
 * item that has none of its labels, e.g. `!has(a)`, `a != "x"`, `all()`) or a list of anchors
 * with the guarantee:
 *
 *     node matches labels  ⇒  some anchor in the list is satisfied by labels
 *
 * An anchor `{ key, values }` is satisfied when `key` is present and, if `values` is not null,
 * its value is one of `values`. An empty list means the selector can never match (`a in {}`).
 */
import type { SelectorNode } from "./ast.js";

export interface Anchor {
  readonly key: string;
  /** Allowed values, or null for "any value" (the key must merely be present). */
  readonly values: readonly string[] | null;
}

/** Relative cost of a presence anchor against one exact value (it matches a whole key's items). */
const PRESENCE_COST = 16;
/** Beyond this many alternatives an anchor list is not worth indexing. */
const MAX_ANCHORS = 64;

export function anchorCost(anchors: readonly Anchor[] | undefined): number {
  if (anchors === undefined) return Infinity;
  let cost = 0;
  for (const a of anchors) cost += a.values === null ? PRESENCE_COST : a.values.length;
  return cost;
}

export function anchorsOf(node: SelectorNode): readonly Anchor[] | undefined {
  switch (node.kind) {
    case "all":
    case "global":
    case "ne":
    case "notIn":
      return undefined;
    case "eq":
      return [{ key: node.label, values: [node.value] }];
    case "in":
      return node.values.length === 0 ? [] : [{ key: node.label, values: node.values }];
    case "has":
    case "contains":
    case "startsWith":
    case "endsWith":
      return [{ key: node.label, values: null }];
    case "not": {
      // !(k != v) ≡ k == v and !(k not in S) ≡ k in S; the parser never nests "!" directly.
      const inner = node.operand;
      if (inner.kind === "ne") return [{ key: inner.label, values: [inner.value] }];
      if (inner.kind === "notIn")
        return inner.values.length === 0 ? [] : [{ key: inner.label, values: inner.values }];
      if (inner.kind === "not") return anchorsOf(inner.operand);
      if (inner.kind === "all") return [];
      return undefined;
    }
    case "and": {
      // Every operand must hold, so any operand's anchors will do: take the most selective.
      let best: readonly Anchor[] | undefined;
      let bestCost = Infinity;
      for (const op of node.operands) {
        const a = anchorsOf(op);
        const c = anchorCost(a);
        if (c < bestCost) {
          best = a;
          bestCost = c;
          if (c === 0) break;
        }
      }
      return best;
    }
    case "or": {
      // Some operand must hold: the union of their anchors; one unanchored operand spoils it.
      const all: Anchor[] = [];
      for (const op of node.operands) {
        const a = anchorsOf(op);
        if (a === undefined) return undefined;
        all.push(...a);
        if (all.length > MAX_ANCHORS) return undefined;
      }
      return mergeAnchors(all);
    }
  }
}

/** Merges anchors on the same key (a presence anchor absorbs value anchors). */
function mergeAnchors(anchors: readonly Anchor[]): Anchor[] {
  const byKey = new Map<string, Set<string> | null>();
  for (const a of anchors) {
    const prev = byKey.get(a.key);
    if (prev === null) continue;
    if (a.values === null) {
      byKey.set(a.key, null);
    } else if (prev === undefined) {
      byKey.set(a.key, new Set(a.values));
    } else {
      for (const v of a.values) prev.add(v);
    }
  }
  return [...byKey].map(([key, values]) => ({ key, values: values === null ? null : [...values] }));
}

/** True when the labels satisfy at least one anchor (used by tests and assertions). */
export function anchorsSatisfied(
  anchors: readonly Anchor[],
  labels: Readonly<Record<string, string>>,
): boolean {
  return anchors.some((a) => {
    const v = Object.hasOwn(labels, a.key) ? labels[a.key] : undefined;
    return v !== undefined && (a.values === null || a.values.includes(v));
  });
}
