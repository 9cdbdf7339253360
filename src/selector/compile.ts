/**
 * Compiles an AST into a tree of closures once, at parse time, so `evaluate` does no AST
 * dispatch (reference/calico.md §3.3 for the semantics).
 *
 * Label lookup is a plain property read. A label map is a record of strings, so a read that is
 * not a string (absent, or something inherited from Object.prototype such as `constructor`)
 * means "absent": `===` against a string literal and `Set#has` of strings are already false for
 * those, and the substring tests check `typeof` first.
 */
import type { SelectorNode } from "./ast.js";

export type Labels = Readonly<Record<string, string>>;
export type Predicate = (labels: Labels) => boolean;

const always: Predicate = () => true;
const never: Predicate = () => false;

export function compile(node: SelectorNode): Predicate {
  switch (node.kind) {
    case "all":
    case "global":
      return always;
    case "has": {
      const k = node.label;
      return (l) => typeof l[k] === "string";
    }
    case "eq": {
      const k = node.label;
      const v = node.value;
      return (l) => l[k] === v;
    }
    case "ne": {
      const k = node.label;
      const v = node.value;
      return (l) => l[k] !== v;
    }
    case "contains": {
      const k = node.label;
      const v = node.value;
      return (l) => {
        const x = l[k];
        return typeof x === "string" && x.includes(v);
      };
    }
    case "startsWith": {
      const k = node.label;
      const v = node.value;
      return (l) => {
        const x = l[k];
        return typeof x === "string" && x.startsWith(v);
      };
    }
    case "endsWith": {
      const k = node.label;
      const v = node.value;
      return (l) => {
        const x = l[k];
        return typeof x === "string" && x.endsWith(v);
      };
    }
    case "in":
    case "notIn": {
      const member = membership(node.label, node.values);
      if (node.kind === "in") return member;
      if (member === never) return always;
      return (l) => !member(l);
    }
    case "not": {
      const inner = compile(node.operand);
      if (inner === always) return never;
      if (inner === never) return always;
      return (l) => !inner(l);
    }
    case "and":
      return chain(node.operands.map(compile), true);
    case "or":
      return chain(node.operands.map(compile), false);
  }
}

/** `label in {values}`; small sets become direct comparisons, larger ones a Set lookup. */
function membership(k: string, values: readonly string[]): Predicate {
  switch (values.length) {
    case 0:
      return never;
    case 1: {
      const a = values[0]!;
      return (l) => l[k] === a;
    }
    case 2: {
      const a = values[0]!;
      const b = values[1]!;
      return (l) => {
        const x = l[k];
        return x === a || x === b;
      };
    }
    case 3: {
      const a = values[0]!;
      const b = values[1]!;
      const c = values[2]!;
      return (l) => {
        const x = l[k];
        return x === a || x === b || x === c;
      };
    }
    default: {
      const set: ReadonlySet<unknown> = new Set(values);
      return (l) => set.has(l[k]);
    }
  }
}

/** `&&` (isAnd) or `||` over compiled operands, short-circuiting, unrolled for 2 and 3. */
function chain(ops: Predicate[], isAnd: boolean): Predicate {
  if (ops.length === 0) return isAnd ? always : never;
  if (ops.length === 1) return ops[0]!;
  if (ops.length === 2) {
    const a = ops[0]!;
    const b = ops[1]!;
    return isAnd ? (l) => a(l) && b(l) : (l) => a(l) || b(l);
  }
  if (ops.length === 3) {
    const a = ops[0]!;
    const b = ops[1]!;
    const c = ops[2]!;
    return isAnd ? (l) => a(l) && b(l) && c(l) : (l) => a(l) || b(l) || c(l);
  }
  const n = ops.length;
  return isAnd
    ? (l) => {
        for (let i = 0; i < n; i++) if (!ops[i]!(l)) return false;
        return true;
      }
    : (l) => {
        for (let i = 0; i < n; i++) if (ops[i]!(l)) return true;
        return false;
      };
}
