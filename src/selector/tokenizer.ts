/**
 * The selector tokenizer (reference/calico.md §3.1).
 *
 * Whitespace is space and TAB only. Operator words (`contains`, `starts with`, `ends with`,
 * `in`, `not in`) are recognised only right after a label, so keywords are never reserved:
 * `in == "x"` compares the label `in`.
 */
import { syntaxError } from "./errors.js";

export type TokenKind =
  | "label"
  | "string"
  | "("
  | ")"
  | "{"
  | "}"
  | ","
  | "=="
  | "!="
  | "!"
  | "&&"
  | "||"
  | "in"
  | "not in"
  | "contains"
  | "starts with"
  | "ends with"
  | "has"
  | "all"
  | "global"
  | "eof";

export interface Token {
  readonly kind: TokenKind;
  /** Label name, string literal contents or `has(` label; "" otherwise. */
  readonly value: string;
  /** 0-based offset of the token's first character. */
  readonly pos: number;
}

/** Label keys: `[a-zA-Z0-9_./-]{1,512}` (upstream `LabelKeyMatcher`). */
export const MAX_LABEL_LENGTH = 512;

const SPACE = 0x20;
const TAB = 0x09;

export function isIdentChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2e || // .
    c === 0x2f || // /
    c === 0x2d // -
  );
}

/** Describes the input at `pos` for "found …" in messages. */
export function describeAt(input: string, pos: number): string {
  if (pos >= input.length) return "end of selector";
  const c = input[pos]!;
  if (c === "\n" || c === "\r") return `newline ${JSON.stringify(c)} (only space and tab are whitespace)`;
  let end = pos;
  while (end < input.length && isIdentChar(input.charCodeAt(end)) && end - pos < 40) end++;
  if (end > pos) return `"${input.slice(pos, end)}"`;
  return JSON.stringify(String.fromCodePoint(input.codePointAt(pos)!));
}

/** Operator words: kind, first word, optional second word (whitespace between is optional). */
const OPERATOR_WORDS: readonly (readonly [TokenKind, string, string])[] = [
  ["contains", "contains", ""],
  ["starts with", "starts", "with"],
  ["ends with", "ends", "with"],
  ["not in", "not", "in"],
  ["in", "in", ""],
];

/** Tokenizes the whole input; always ends with an `eof` token. */
export function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  const n = input.length;
  let i = 0;
  const skipWs = (): void => {
    while (i < n) {
      const c = input.charCodeAt(i);
      if (c !== SPACE && c !== TAB) break;
      i++;
    }
  };
  const fail = (what: string, at: number): never => {
    throw syntaxError(what, at, input);
  };
  const push = (kind: TokenKind, pos: number, value = ""): void => {
    tokens.push({ kind, value, pos });
  };
  /** Length of the identifier at `at`, capped at MAX_LABEL_LENGTH (0 if none). */
  const identLength = (at: number): number => {
    let j = at;
    while (j < n && j - at < MAX_LABEL_LENGTH && isIdentChar(input.charCodeAt(j))) j++;
    return j - at;
  };
  const startsWithAt = (word: string, at: number): boolean => input.startsWith(word, at);
  /** A word boundary: end of input or a character that cannot continue a label. */
  const boundaryAt = (at: number): boolean => at >= n || !isIdentChar(input.charCodeAt(at));

  for (;;) {
    skipWs();
    if (i >= n) {
      push("eof", n);
      return tokens;
    }
    const start = i;
    const c = input[i]!;
    const last = tokens.length > 0 ? tokens[tokens.length - 1]! : undefined;
    switch (c) {
      case "(":
      case ")":
      case "{":
      case "}":
      case ",":
        push(c, start);
        i++;
        continue;
      case '"':
      case "'": {
        // No escape sequences: the literal ends at the next identical quote (§3.1).
        const close = input.indexOf(c, i + 1);
        if (close < 0) fail(`unterminated string literal (no closing ${c})`, start);
        push("string", start, input.slice(i + 1, close));
        i = close + 1;
        continue;
      }
      case "=":
        if (input[i + 1] !== "=") fail(`expected "==" but found "="`, start);
        push("==", start);
        i += 2;
        continue;
      case "!":
        if (input[i + 1] === "=") {
          push("!=", start);
          i += 2;
        } else {
          push("!", start);
          i++;
        }
        continue;
      case "&":
        if (input[i + 1] !== "&") fail(`expected "&&" but found a single "&"`, start);
        push("&&", start);
        i += 2;
        continue;
      case "|":
        if (input[i + 1] !== "|") fail(`expected "||" but found a single "|"`, start);
        push("||", start);
        i += 2;
        continue;
      default:
        break;
    }

    if (last?.kind === "label") {
      // Right after a label only an operator may follow (== and != were handled above).
      const op = matchOperatorWord(start);
      if (op === undefined) {
        fail(
          `expected operator (==, !=, in, not in, contains, starts with, ends with) after label "${last.value}" but found ${describeAt(input, start)}`,
          start,
        );
      } else {
        push(op.kind, start);
        i = op.end;
      }
      continue;
    }

    if (startsWithAt("has(", i)) {
      i += 4;
      skipWs();
      const len = identLength(i);
      if (len === 0) fail(`expected label name in "has(" but found ${describeAt(input, i)}`, i);
      const label = input.slice(i, i + len);
      i += len;
      skipWs();
      if (input[i] !== ")") fail(`expected ")" to close "has(${label}" but found ${describeAt(input, i)}`, i);
      i++;
      push("has", start, label);
      continue;
    }
    const fn = startsWithAt("all(", i) ? "all" : startsWithAt("global(", i) ? "global" : undefined;
    if (fn !== undefined) {
      i += fn.length + 1;
      skipWs();
      if (input[i] !== ")") fail(`expected ")" after "${fn}(" but found ${describeAt(input, i)}`, i);
      i++;
      push(fn, start);
      continue;
    }
    const len = identLength(i);
    if (len > 0) {
      push("label", start, input.slice(i, i + len));
      i += len;
      continue;
    }
    fail(`unexpected character ${describeAt(input, start)}`, start);
  }

  function matchOperatorWord(at: number): { kind: TokenKind; end: number } | undefined {
    // Each word may be split by whitespace ("starts  with", "not in") or not ("startswith",
    // "notin") and must end at a word boundary, so "containsx" is not an operator.
    for (const [kind, first, second] of OPERATOR_WORDS) {
      if (!input.startsWith(first, at)) continue;
      let j = at + first.length;
      if (second !== "") {
        while (j < n && (input.charCodeAt(j) === SPACE || input.charCodeAt(j) === TAB)) j++;
        if (!input.startsWith(second, j)) continue;
        j += second.length;
      }
      if (boundaryAt(j)) return { kind, end: j };
    }
    return undefined;
  }
}
