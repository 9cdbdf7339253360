/**
 * Policy and profile chains (reference/calico.md §1.6): one chain per policy and direction,
 * one nft rule per (ParsedRule, family, named-port alternative). Actions never end the
 * packet's journey except Deny: Allow sets the accept mark and returns, Pass sets the pass
 * mark and returns, Log logs and falls through.
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import { formatCIDR } from "../../api/net.js";
import type { CompiledPolicy, CompiledProfile, IPSet, ParsedRule, PortRange } from "../../calc/types.js";
import type { Chain, Match, Rule, Statement, Verdict } from "../nft/model.js";
import { ipSetName, policyChain, profileChain } from "../names.js";
import { chain } from "./comment.js";
import { ACCEPT_MARK, PASS_MARK } from "./marks.js";

export interface PolicyRenderOptions {
  ipv6: boolean;
  denyAction: "Drop" | "Reject";
  logPrefix: string;
  /** IP set IDs present in the state (a rule naming an absent set cannot be programmed). */
  ipSets: ReadonlyMap<string, IPSet>;
}

const ICMP_V4 = 1;
const ICMP_V6 = 58;
/** Protocols with ports, for the guard when a rule has ports but no protocol. */
const PORT_PROTOCOLS = [6, 17, 132, 136];

export const families = (ipv6: boolean): IPFamily[] => (ipv6 ? [4, 6] : [4]);

/** Thrown (and caught by the caller) when a rule references an IP set the state lacks. */
export class MissingIPSetError extends Error {
  constructor(readonly setId: string) {
    super(`IP set "${setId}" is not in the desired state`);
  }
}

const inFamily = (nets: CIDR[], f: IPFamily): CIDR[] => nets.filter((n) => n.family === f);

function hasFamilySpecifics(r: ParsedRule): boolean {
  return (
    r.srcNets.length + r.notSrcNets.length + r.dstNets.length + r.notDstNets.length > 0 ||
    r.srcIPSets.length + r.notSrcIPSets.length + r.dstIPSets.length + r.notDstIPSets.length > 0 ||
    r.srcNamedPortIPSets.length + r.notSrcNamedPortIPSets.length > 0 ||
    r.dstNamedPortIPSets.length + r.notDstNamedPortIPSets.length > 0 ||
    r.icmp !== undefined ||
    r.notICMP !== undefined ||
    r.protocol === ICMP_V4 ||
    r.protocol === ICMP_V6
  );
}

const ranges = (rs: PortRange[]): { first: number; last: number }[] =>
  rs.map((r) => ({ first: r.first, last: r.last }));

/**
 * The match lists for one family (several when named ports turn a port condition into an OR),
 * or [] when the rule cannot match a packet of that family. `family` undefined renders a rule
 * valid for both (no family-specific fields, both families enabled).
 */
export function ruleMatches(
  r: ParsedRule,
  family: IPFamily | undefined,
  opts: PolicyRenderOptions,
): Match[][] {
  const f: IPFamily = family ?? 4;
  if (family !== undefined && r.ipVersion !== undefined && r.ipVersion !== family) return [];
  // ICMP is per family: protocol 1 never matches IPv6, 58 never IPv4.
  const icmpProto = f === 4 ? ICMP_V4 : ICMP_V6;
  if (family !== undefined && (r.protocol === ICMP_V4 || r.protocol === ICMP_V6) && r.protocol !== icmpProto)
    return [];
  if (
    family !== undefined &&
    (r.icmp !== undefined || r.notICMP !== undefined) &&
    r.protocol !== undefined &&
    r.protocol !== icmpProto
  )
    return [];
  const src = family === undefined ? [] : inFamily(r.srcNets, f);
  const dst = family === undefined ? [] : inFamily(r.dstNets, f);
  // Felix `filterNets`: a net list (negated or not) with no entry of this family means the
  // rule is not rendered for it — equivalent to not matching. Dropping only the negation
  // would make `notNets: [198.18.0.0/15]` match every IPv6 packet.
  if (r.srcNets.length > 0 && src.length === 0) return [];
  if (r.dstNets.length > 0 && dst.length === 0) return [];
  if (family !== undefined && r.notSrcNets.length > 0 && inFamily(r.notSrcNets, f).length === 0) return [];
  if (family !== undefined && r.notDstNets.length > 0 && inFamily(r.notDstNets, f).length === 0) return [];

  const set = (id: string): string => {
    if (!opts.ipSets.has(id)) throw new MissingIPSetError(id);
    return ipSetName(f, id);
  };
  const m: Match[] = [];
  if (family !== undefined) m.push({ type: "nfproto", family });
  const hasPorts = r.srcPorts.length + r.notSrcPorts.length + r.dstPorts.length + r.notDstPorts.length > 0;
  if (r.protocol !== undefined) m.push({ type: "l4proto", op: "==", protocols: [r.protocol] });
  else if (hasPorts) m.push({ type: "l4proto", op: "==", protocols: PORT_PROTOCOLS }); // `th` needs an l4proto (guard)
  if (r.notProtocol !== undefined) m.push({ type: "l4proto", op: "!=", protocols: [r.notProtocol] });
  if (family !== undefined) {
    if (src.length > 0) m.push({ type: "addr", family, dir: "saddr", op: "==", cidrs: src });
    const notSrc = inFamily(r.notSrcNets, f);
    if (notSrc.length > 0) m.push({ type: "addr", family, dir: "saddr", op: "!=", cidrs: notSrc });
    if (dst.length > 0) m.push({ type: "addr", family, dir: "daddr", op: "==", cidrs: dst });
    const notDst = inFamily(r.notDstNets, f);
    if (notDst.length > 0) m.push({ type: "addr", family, dir: "daddr", op: "!=", cidrs: notDst });
    for (const id of r.srcIPSets) m.push({ type: "addr-set", family, dir: "saddr", op: "==", set: set(id) });
    for (const id of r.notSrcIPSets)
      m.push({ type: "addr-set", family, dir: "saddr", op: "!=", set: set(id) });
    for (const id of r.dstIPSets) m.push({ type: "addr-set", family, dir: "daddr", op: "==", set: set(id) });
    for (const id of r.notDstIPSets)
      m.push({ type: "addr-set", family, dir: "daddr", op: "!=", set: set(id) });
    for (const id of r.notSrcNamedPortIPSets)
      m.push({ type: "addr-port-set", family, dir: "saddr", op: "!=", set: set(id) });
    for (const id of r.notDstNamedPortIPSets)
      m.push({ type: "addr-port-set", family, dir: "daddr", op: "!=", set: set(id) });
  }
  if (r.notSrcPorts.length > 0)
    m.push({ type: "port", dir: "sport", op: "!=", ranges: ranges(r.notSrcPorts) });
  if (r.notDstPorts.length > 0)
    m.push({ type: "port", dir: "dport", op: "!=", ranges: ranges(r.notDstPorts) });
  if (r.icmp !== undefined) m.push(icmpMatch(f, "==", r.icmp));
  if (r.notICMP !== undefined) m.push(icmpMatch(f, "!=", r.notICMP));

  // "port in *Ports OR (addr, proto, port) in any named-port set": one alternative each.
  const alternatives = (dir: "sport" | "dport", ports: PortRange[], named: string[]): Match[][] => {
    const alts: Match[][] = [];
    if (ports.length > 0) alts.push([{ type: "port", dir, op: "==", ranges: ranges(ports) }]);
    if (family !== undefined)
      for (const id of named)
        alts.push([
          { type: "addr-port-set", family, dir: dir === "sport" ? "saddr" : "daddr", op: "==", set: set(id) },
        ]);
    return alts.length > 0 ? alts : [[]];
  };
  const srcAlts = alternatives("sport", r.srcPorts, r.srcNamedPortIPSets);
  const dstAlts = alternatives("dport", r.dstPorts, r.dstNamedPortIPSets);
  const out: Match[][] = [];
  for (const s of srcAlts) for (const d of dstAlts) out.push([...m, ...s, ...d]);
  return out;
}

function icmpMatch(family: IPFamily, op: "==" | "!=", i: { type: number; code?: number }): Match {
  const match: Match = { type: "icmp", family, op, icmpType: i.type };
  if (i.code !== undefined) match.code = i.code;
  return match;
}

function actionOf(r: ParsedRule, opts: PolicyRenderOptions): { statements: Statement[]; verdict?: Verdict } {
  switch (r.action) {
    case "allow":
      return { statements: [{ type: "set-mark", clear: 0, set: ACCEPT_MARK }], verdict: { type: "return" } };
    case "pass":
      return { statements: [{ type: "set-mark", clear: 0, set: PASS_MARK }], verdict: { type: "return" } };
    case "deny":
      return { statements: [], verdict: { type: opts.denyAction === "Reject" ? "reject" : "drop" } };
    case "log":
      return { statements: [{ type: "log", prefix: r.logPrefix ?? opts.logPrefix }] };
  }
}

/** The nft rules for one ParsedRule, both families. */
export function renderRule(r: ParsedRule, opts: PolicyRenderOptions): Rule[] {
  const { statements, verdict } = actionOf(r, opts);
  const matchLists =
    opts.ipv6 && !hasFamilySpecifics(r) && r.ipVersion === undefined
      ? ruleMatches(r, undefined, opts)
      : families(opts.ipv6).flatMap((f) => ruleMatches(r, f, opts));
  return matchLists.map((matches) => {
    const rule: Rule = { matches, statements: [...statements] };
    if (verdict !== undefined) rule.verdict = verdict;
    return rule;
  });
}

/** Render a list of rules; a missing IP set turns the whole chain into a drop (fail closed). */
function renderRules(name: string, rules: ParsedRule[], opts: PolicyRenderOptions): Chain {
  try {
    return chain(
      name,
      rules.flatMap((r) => renderRule(r, opts)),
    );
  } catch {
    // A missing IP set, or a rule nft cannot take (render refused it): fail closed.
    return chain(name, [failClosedRule()]);
  }
}

/** A rule that drops everything (an object we could not program correctly). */
export const failClosedRule = (): Rule => ({ matches: [], statements: [], verdict: { type: "drop" } });

/** The sets a policy's rules reference (to re-render it when one appears or disappears). */
export function referencedSets(rules: readonly ParsedRule[]): string[] {
  const out = new Set<string>();
  for (const r of rules)
    for (const ids of [
      r.srcIPSets,
      r.notSrcIPSets,
      r.dstIPSets,
      r.notDstIPSets,
      r.srcNamedPortIPSets,
      r.notSrcNamedPortIPSets,
      r.dstNamedPortIPSets,
      r.notDstNamedPortIPSets,
    ])
      for (const id of ids) out.add(id);
  return [...out];
}

/** Policy chains (pi/po) for the directions the policy applies to. Untracked and preDNAT
 * policies run in raw/mangle, where `reject` is not allowed: their Deny is always drop. */
export function policyChains(p: CompiledPolicy, opts: PolicyRenderOptions): Chain[] {
  const o: PolicyRenderOptions = p.doNotTrack || p.preDNAT ? { ...opts, denyAction: "Drop" } : opts;
  const out: Chain[] = [];
  if (p.inbound !== undefined) out.push(renderRules(policyChain("in", p.id), p.inbound, o));
  if (p.outbound !== undefined) out.push(renderRules(policyChain("out", p.id), p.outbound, o));
  return out;
}

export function profileChains(p: CompiledProfile, opts: PolicyRenderOptions): Chain[] {
  return [
    renderRules(profileChain("in", p.id), p.inbound, opts),
    renderRules(profileChain("out", p.id), p.outbound, opts),
  ];
}

export const cidrText = (c: CIDR): string => formatCIDR(c);
