/**
 * A tree-walking evaluator: the reference semantics of §3.3 written as directly as possible.
 * Not used on any hot path; it is the baseline the benchmark compares the compiled closures
 * against, and the oracle the property tests check them with.
 */
import type { SelectorNode } from "./ast.js";
import type { Labels } from "./compile.js";

function lookup(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

export function interpret(node: SelectorNode, labels: Labels): boolean {
  switch (node.kind) {
    case "all":
    case "global":
      return true;
    case "has":
      return lookup(labels, node.label) !== undefined;
    case "eq":
      return lookup(labels, node.label) === node.value;
    case "ne":
      return lookup(labels, node.label) !== node.value;
    case "contains": {
      const v = lookup(labels, node.label);
      return v !== undefined && v.includes(node.value);
    }
    case "startsWith": {
      const v = lookup(labels, node.label);
      return v !== undefined && v.startsWith(node.value);
    }
    case "endsWith": {
      const v = lookup(labels, node.label);
      return v !== undefined && v.endsWith(node.value);
    }
    case "in": {
      const v = lookup(labels, node.label);
      return v !== undefined && node.values.includes(v);
    }
    case "notIn": {
      const v = lookup(labels, node.label);
      return v === undefined || !node.values.includes(v);
    }
    case "not":
      return !interpret(node.operand, labels);
    case "and":
      return node.operands.every((op) => interpret(op, labels));
    case "or":
      return node.operands.some((op) => interpret(op, labels));
  }
}
