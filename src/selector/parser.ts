/**
 * Recursive-descent parser for Calico selectors (reference/calico.md §3.2).
 *
 *   selector  := ws* EOF | or_expr EOF
 *   or_expr   := and_expr ( "||" and_expr )*
 *   and_expr  := operation ( "&&" operation )*
 *   operation := "!"* primary            -- odd count negates
 *   primary   := has(label) | all() | global() | label op string | label (not) in set
 *              | "(" or_expr ")"
 *
 * Like upstream, a parenthesised chain stays a child node (`a && (b && c)` is not flattened)
 * and a chain of one operation is that operation.
 */
import type { LabelSetOp, LabelValueOp, SelectorNode } from "./ast.js";
import { normaliseSet } from "./ast.js";
import { syntaxError } from "./errors.js";
import { tokenize, type Token, type TokenKind } from "./tokenizer.js";

/** Longer inputs are rejected before tokenizing (the CRD schema allows 1024). */
export const MAX_SELECTOR_LENGTH = 4096;
/** Parenthesis nesting limit; keeps recursion (parse, compile, print) far from the stack limit. */
export const MAX_NESTING = 128;

const VALUE_OPS: Partial<Record<TokenKind, LabelValueOp>> = {
  "==": "eq",
  "!=": "ne",
  contains: "contains",
  "starts with": "startsWith",
  "ends with": "endsWith",
};
const SET_OPS: Partial<Record<TokenKind, LabelSetOp>> = { in: "in", "not in": "notIn" };

/** Parses `expression` into an AST; throws SelectorSyntaxError. Empty input means `all()`. */
export function parseAst(expression: string): SelectorNode {
  if (expression.length > MAX_SELECTOR_LENGTH) {
    throw syntaxError(
      `selector is longer than ${MAX_SELECTOR_LENGTH} characters (${expression.length})`,
      MAX_SELECTOR_LENGTH,
      expression,
    );
  }
  const tokens = tokenize(expression);
  let i = 0;
  let depth = 0;

  const peek = (): Token => tokens[i]!;
  const describe = (t: Token): string => {
    if (t.kind === "eof") return "end of selector";
    if (t.kind === "label") return `label "${t.value}"`;
    if (t.kind === "string") return `string ${quoteForMessage(t.value)}`;
    if (t.kind === "has") return `"has(${t.value})"`;
    if (t.kind === "all" || t.kind === "global") return `"${t.kind}()"`;
    return `"${t.kind}"`;
  };
  const fail = (what: string, t: Token): never => {
    throw syntaxError(`${what} but found ${describe(t)}`, t.pos, expression);
  };

  const parseOr = (): SelectorNode => {
    const first = parseAnd();
    if (peek().kind !== "||") return first;
    const operands = [first];
    while (peek().kind === "||") {
      i++;
      operands.push(parseAnd());
    }
    return { kind: "or", operands };
  };

  const parseAnd = (): SelectorNode => {
    const first = parseOperation();
    if (peek().kind !== "&&") return first;
    const operands = [first];
    while (peek().kind === "&&") {
      i++;
      operands.push(parseOperation());
    }
    return { kind: "and", operands };
  };

  const parseOperation = (): SelectorNode => {
    let negated = false;
    while (peek().kind === "!") {
      negated = !negated;
      i++;
    }
    const node = parsePrimary();
    return negated ? { kind: "not", operand: node } : node;
  };

  const parsePrimary = (): SelectorNode => {
    const t = peek();
    switch (t.kind) {
      case "has":
        i++;
        return { kind: "has", label: t.value };
      case "all":
        i++;
        return { kind: "all" };
      case "global":
        i++;
        return { kind: "global" };
      case "label":
        i++;
        return parseComparison(t);
      case "(": {
        i++;
        if (++depth > MAX_NESTING) {
          throw syntaxError(`parentheses nested deeper than ${MAX_NESTING}`, t.pos, expression);
        }
        if (peek().kind === ")") fail(`expected an expression inside "()"`, peek());
        const inner = parseOr();
        const close = peek();
        if (close.kind !== ")") fail(`expected ")" matching the "(" at column ${t.pos + 1}`, close);
        i++;
        depth--;
        return inner;
      }
      case "string":
        return fail(`expected a label, "has(", "all()", "!" or "(" (a literal cannot be on the left)`, t);
      case ")":
      case "{":
      case "}":
      case ",":
      case "==":
      case "!=":
      case "!": // unreachable: parseOperation consumed every "!"
      case "&&":
      case "||":
      case "in":
      case "not in":
      case "contains":
      case "starts with":
      case "ends with":
      case "eof":
        return fail(`expected a label, "has(", "all()", "global()", "!" or "("`, t);
    }
  };

  const parseComparison = (labelTok: Token): SelectorNode => {
    const label = labelTok.value;
    const opTok = peek();
    const valueOp = VALUE_OPS[opTok.kind];
    if (valueOp !== undefined) {
      i++;
      const lit = peek();
      if (lit.kind !== "string") fail(`expected string after "${opTok.kind}"`, lit);
      i++;
      return { kind: valueOp, label, value: lit.value };
    }
    const setOp = SET_OPS[opTok.kind];
    if (setOp !== undefined) {
      i++;
      const open = peek();
      if (open.kind !== "{") fail(`expected set literal "{" after "${opTok.kind}"`, open);
      i++;
      const values: string[] = [];
      // { } | { s (, s)* [,] }
      while (peek().kind === "string") {
        values.push(peek().value);
        i++;
        if (peek().kind !== ",") break;
        i++;
      }
      const close = peek();
      if (close.kind !== "}") {
        fail(values.length === 0 ? `expected string or "}" in set` : `expected "," or "}" in set`, close);
      }
      i++;
      return { kind: setOp, label, values: normaliseSet(values) };
    }
    return fail(
      `expected operator (==, !=, in, not in, contains, starts with, ends with) after label "${label}"`,
      opTok,
    );
  };

  if (peek().kind === "eof") return { kind: "all" };
  const root = parseOr();
  const rest = peek();
  if (rest.kind !== "eof") {
    fail(
      rest.kind === ")"
        ? `unmatched ")": expected "&&", "||" or end of selector`
        : `expected "&&", "||" or end of selector`,
      rest,
    );
  }
  return root;
}

function quoteForMessage(value: string): string {
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return value.includes('"') ? `'${shown}'` : `"${shown}"`;
}
