/**
 * Every rule we write carries a comment that is a hash of its content, so a read-back
 * (`nft -j list table`) compares chains rule by rule without parsing expressions back
 * (Felix's rule-hash comments, §1.5). A chain matches the desired one when its comment
 * sequence does.
 *
 * Hashing renders the rule's text, which is most of the cost of building the desired table;
 * the rules every endpoint chain repeats (conntrack, mark handling, the jump to a policy's
 * chain) are therefore hashed once and shared (`sharedRule`). A hashed rule is frozen: chains
 * share it, and the belief about the kernel keeps the very same object.
 */
import { createHash } from "node:crypto";
import type { Chain, Rule } from "../nft/model.js";
import { renderRule } from "../nft/render.js";

/** `cali:` + 16 hex chars of SHA-256 of the rule's nft text (without its comment). Throws
 * (NFT_RENDER_INVALID) when the rule cannot be rendered, so it never reaches a transaction. */
export function ruleHash(rule: Rule): string {
  const body = renderRule({
    matches: rule.matches,
    statements: rule.statements,
    ...(rule.verdict ? { verdict: rule.verdict } : {}),
  });
  return "cali:" + createHash("sha256").update(body).digest("hex").slice(0, 16);
}

/** Rules that already carry their hash (made by `withComment`). */
const hashed = new WeakSet<Rule>();

/** The rule with its hash comment: a frozen copy, or the rule itself when already hashed. */
export function withComment(rule: Rule): Rule {
  if (hashed.has(rule)) return rule;
  const out = Object.freeze({ ...rule, comment: ruleHash(rule) });
  hashed.add(out);
  return out;
}

/** Bound on the shared rules kept (keys of policies and profiles that came and went). */
const SHARED_LIMIT = 1 << 16;
const shared = new Map<string, Rule>();

/**
 * The hashed rule for `key`, made (and hashed) on first use. `key` must determine the rule
 * completely: every call with the same key gets the same object.
 */
export function sharedRule(key: string, make: () => Rule): Rule {
  let rule = shared.get(key);
  if (rule === undefined) {
    if (shared.size >= SHARED_LIMIT) shared.clear();
    rule = withComment(make());
    shared.set(key, rule);
  }
  return rule;
}

/** A chain whose rules all carry their hash comments. */
export function chain(name: string, rules: Rule[], base?: Chain["base"]): Chain {
  const c: Chain = { name, rules: rules.map(withComment) };
  if (base !== undefined) c.base = base;
  return c;
}
