/**
 * Every rule we write carries a comment that is a hash of its content, so a read-back
 * (`nft -j list table`) compares chains rule by rule without parsing expressions back
 * (Felix's rule-hash comments, §1.5). A chain matches the desired one when its comment
 * sequence does.
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

export function withComment(rule: Rule): Rule {
  return { ...rule, comment: ruleHash(rule) };
}

/** A chain whose rules all carry their hash comments. */
export function chain(name: string, rules: Rule[], base?: Chain["base"]): Chain {
  const c: Chain = { name, rules: rules.map(withComment) };
  if (base !== undefined) c.base = base;
  return c;
}
