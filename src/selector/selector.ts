/**
 * The public selector object: parsed once, compiled once, printed canonically.
 */
import { createHash } from "node:crypto";
import { canonicalString, referencedLabels, type SelectorNode } from "./ast.js";
import { compile, type Labels, type Predicate } from "./compile.js";
import { parseAst } from "./parser.js";

export interface Selector {
  /**
   * True when the labels satisfy the expression (§3.3). Compiled: no AST walk per call.
   * A plain function property, safe to pass around detached from the selector.
   */
  readonly evaluate: (labels: Labels) => boolean;
  /** The canonical form (§3.4), identical to Calico's `Selector.String()`. */
  toString(): string;
  /** `"s:" + base64url(SHA-224("s:" + canonical))`: the IP set ID Calico derives (§3.4). */
  uniqueId(): string;
  /** The parsed expression. */
  readonly root: SelectorNode;
  /** Every label key the expression reads, sorted. */
  readonly labelKeys: readonly string[];
}

/** Calico's hash-based ID: `prefix + ":" + base64url_nopad(SHA-224(prefix + ":" + input))`. */
export function calicoHashId(prefix: string, input: string): string {
  const tagged = `${prefix}:${input}`;
  return `${prefix}:${createHash("sha224").update(tagged, "utf8").digest("base64url")}`;
}

class CompiledSelector implements Selector {
  readonly root: SelectorNode;
  readonly labelKeys: readonly string[];
  readonly evaluate: Predicate;
  readonly #canonical: string;
  #uid: string | undefined;

  constructor(root: SelectorNode) {
    this.root = root;
    this.labelKeys = referencedLabels(root);
    this.#canonical = canonicalString(root);
    // An own property holding the closure: callers may pass `sel.evaluate` around unbound.
    this.evaluate = compile(root);
  }

  toString(): string {
    return this.#canonical;
  }

  uniqueId(): string {
    return (this.#uid ??= calicoHashId("s", this.#canonical));
  }
}

/** Builds a Selector from an AST (e.g. one composed programmatically). */
export function selectorFromNode(root: SelectorNode): Selector {
  return new CompiledSelector(root);
}

/** Policies repeat selectors, so parsed ones are kept, least recently used evicted first. */
const CACHE_LIMIT = 4096;
const cache = new Map<string, Selector>();

/**
 * Parses a selector expression (reference/calico.md §3). Throws SelectorSyntaxError, whose
 * `position` is the 0-based offset of the problem. Results are cached by text.
 */
export function parseSelector(expression: string): Selector {
  const hit = cache.get(expression);
  if (hit !== undefined) {
    // Re-insert to mark as most recently used (Map keeps insertion order).
    cache.delete(expression);
    cache.set(expression, hit);
    return hit;
  }
  const sel = new CompiledSelector(parseAst(expression));
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(expression, sel);
  return sel;
}

/** Parses without consulting or filling the cache (benchmarks, tests). */
export function parseSelectorUncached(expression: string): Selector {
  return new CompiledSelector(parseAst(expression));
}

/** The unique ID of a selector given as text (parsed, canonicalised, hashed). */
export function selectorUniqueId(expression: string): string {
  return parseSelector(expression).uniqueId();
}

/** The canonical form of a selector given as text. */
export function canonicaliseSelector(expression: string): string {
  return parseSelector(expression).toString();
}

/** Number of cached parsed selectors (for tests and metrics). */
export function selectorCacheSize(): number {
  return cache.size;
}
