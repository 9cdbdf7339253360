/**
 * Per-endpoint chains, implementing reference/calico.md §1.6 step by step:
 * conntrack, (failsafes), clear marks, (anti-spoofing, no tunnels from workloads), then per
 * tier "clear pass mark; jump each policy while pass mark is clear; return if accept mark set;
 * end-of-tier drop", then profiles and a final drop (normal chains only).
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import type {
  DesiredState,
  EndpointTier,
  LocalEndpoint,
  LocalHostEndpoint,
  LocalWorkloadEndpoint,
} from "../../calc/types.js";
import type { Chain, Match, Rule, Verdict } from "../nft/model.js";
import { CHAIN, endpointChain, policyChain, profileChain, type EndpointChainKind } from "../names.js";
import type { DataplaneConfig } from "../types.js";
import { chain, sharedRule } from "./comment.js";
import { ACCEPT_MARK, PASS_MARK } from "./marks.js";
import { failClosedRule, families } from "./policy.js";

type Dir = "in" | "out";
/** normal: profiles then drop; forward: after tiers, return (forwarded traffic allowed by
 * default); untracked/preDNAT: like forward, and no conntrack rules in untracked chains. */
type ChainType = "normal" | "forward" | "untracked" | "predna";

const markSet = (bit: number): Match => ({ type: "mark", op: "==", mask: bit, value: bit });
const markClear = (bit: number): Match => ({ type: "mark", op: "==", mask: bit, value: 0 });
const r = (matches: Match[], verdict?: Verdict, statements: Rule["statements"] = []): Rule =>
  verdict === undefined ? { matches, statements } : { matches, statements, verdict };

// The rules below are the same on every endpoint (or every endpoint using one policy or
// profile): hashed once and shared between chains (comment.ts `sharedRule`). The key names
// everything the rule depends on.

/** `ct state established,related`: a flow's later packets. */
export const established = (): Match => ({ type: "ct-state", op: "==", states: ["established", "related"] });

export const conntrackRules = (): Rule[] => [
  sharedRule("ct-established", () => r([established()], { type: "accept" })),
  sharedRule("ct-invalid", () => r([{ type: "ct-state", op: "==", states: ["invalid"] }], { type: "drop" })),
];

const clearMarks = (): Rule =>
  sharedRule("clear-marks", () =>
    r([], undefined, [{ type: "set-mark", clear: ACCEPT_MARK | PASS_MARK, set: 0 }]),
  );

const clearPassMark = (): Rule =>
  sharedRule("clear-pass-mark", () => r([], undefined, [{ type: "set-mark", clear: PASS_MARK, set: 0 }]));

/** `return` once a policy or profile has set the accept mark. */
const returnIfAccepted = (): Rule =>
  sharedRule("return-if-accepted", () => r([markSet(ACCEPT_MARK)], { type: "return" }));

/** Jump to a policy chain unless an earlier policy of the tier passed the packet. */
const jumpPolicy = (target: string): Rule =>
  sharedRule(`jump-policy:${target}`, () => r([markClear(PASS_MARK)], { type: "jump", chain: target }));

const jumpTo = (target: string): Rule =>
  sharedRule(`jump:${target}`, () => r([], { type: "jump", chain: target }));

/** A verdict with no matches (`drop`, `reject`): the end of a chain. */
const always = (v: Verdict): Rule => sharedRule(`always:${verdictKey(v)}`, () => r([], v));

/** The verdicts endpoint chains end with; nothing else reaches `always`/end-of-tier. */
function verdictKey(v: Verdict): string {
  if (v.type === "drop" || v.type === "reject" || v.type === "return" || v.type === "accept") return v.type;
  throw new Error(`endpoint chains do not end with a "${v.type}" verdict`);
}

/**
 * Step 6 for one direction's tiers; the references the chain makes are checked by the caller.
 * `deny` undefined: no end-of-tier drop (untracked and preDNAT chains — normal policy in the
 * filter table still has to see the packet; Felix `endpointIptablesChain`).
 */
function tierRules(tiers: EndpointTier[], dir: Dir, deny: Verdict | undefined): Rule[] {
  const out: Rule[] = [];
  for (const t of tiers) {
    const ids = dir === "in" ? t.ingress : t.egress;
    if (ids.length === 0) continue;
    out.push(clearPassMark());
    for (const id of ids) out.push(jumpPolicy(policyChain(dir, id)), returnIfAccepted());
    // "End of tier <name>. Drop if no policies passed packet."
    if (t.defaultAction === "deny" && deny !== undefined)
      out.push(sharedRule(`end-of-tier:${verdictKey(deny)}`, () => r([markClear(PASS_MARK)], deny)));
  }
  return out;
}

function profileRules(profiles: string[], dir: Dir, deny: Verdict): Rule[] {
  const out: Rule[] = [];
  for (const id of profiles) out.push(jumpTo(profileChain(dir, id)), returnIfAccepted());
  out.push(always(deny)); // "Drop if no profiles matched"
  return out;
}

/** Whether every policy and profile the chain would jump to is in the state (else fail closed). */
function referencesPresent(
  state: DesiredState,
  tiers: EndpointTier[],
  profiles: string[] | undefined,
  dir: Dir,
): boolean {
  for (const t of tiers)
    for (const id of dir === "in" ? t.ingress : t.egress) {
      const p = state.policies.get(id);
      if (p === undefined || (dir === "in" ? p.inbound : p.outbound) === undefined) return false;
    }
  for (const id of profiles ?? []) if (!state.profiles.has(id)) return false;
  return true;
}

export function denyVerdict(cfg: DataplaneConfig, chainType: ChainType = "normal"): Verdict {
  return cfg.denyAction === "Reject" && (chainType === "normal" || chainType === "forward")
    ? { type: "reject" }
    : { type: "drop" };
}

interface PolicyChainSpec {
  name: string;
  type: ChainType;
  dir: Dir;
  tiers: EndpointTier[];
  /** Before the tiers (after conntrack and clearing marks). */
  preamble?: Rule[];
  /** Jumped right after conntrack (HEP failsafes). */
  failsafe?: string;
}

function policyChainFor(
  state: DesiredState,
  ep: LocalEndpoint,
  spec: PolicyChainSpec,
  cfg: DataplaneConfig,
): Chain {
  const profiles = spec.type === "normal" ? ep.profiles : undefined;
  const deny = denyVerdict(cfg, spec.type);
  const rules: Rule[] = [];
  if (spec.type !== "untracked") rules.push(...conntrackRules());
  if (spec.failsafe !== undefined) rules.push(jumpTo(spec.failsafe));
  if (!referencesPresent(state, spec.tiers, profiles, spec.dir)) {
    // An endpoint we cannot program correctly is denied, never left open (DESIGN.md §3).
    rules.push(failClosedRule());
    return chain(spec.name, rules);
  }
  rules.push(clearMarks());
  rules.push(...(spec.preamble ?? []));
  const endOfTier = spec.type === "normal" || spec.type === "forward" ? deny : undefined;
  rules.push(...tierRules(spec.tiers, spec.dir, endOfTier));
  if (profiles !== undefined) rules.push(...profileRules(profiles, spec.dir, deny));
  return chain(spec.name, rules);
}

/** The sources a workload may send from: its own addresses and its allowed spoofed prefixes. */
const ownSources = (ep: LocalWorkloadEndpoint, f: IPFamily): CIDR[] =>
  [...(f === 4 ? ep.ipv4Nets : ep.ipv6Nets), ...ep.allowSpoofedSourcePrefixes].filter((c) => c.family === f);

/** Anti-spoofing: a workload may send only from its own addresses (and allowed spoofed prefixes). */
function antiSpoof(ep: LocalWorkloadEndpoint, cfg: DataplaneConfig): Rule[] {
  const out: Rule[] = [];
  for (const f of families(cfg.ipv6)) {
    const own = ownSources(ep, f);
    const fam: Match = { type: "nfproto", family: f };
    out.push(
      own.length === 0
        ? r([fam], { type: "drop" })
        : r([fam, { type: "addr", family: f, dir: "saddr", op: "!=", cidrs: own }], { type: "drop" }),
    );
  }
  if (!cfg.ipv6) out.push(r([{ type: "nfproto", family: 6 }], { type: "drop" }));
  return out;
}

/**
 * A flow's later packets from the workload's own addresses are accepted first: one rule for
 * the forward hook's fast path instead of the source checks and the conntrack rules. A
 * packet from any other source goes on to the anti-spoofing drop, established or not.
 */
function establishedFromOwn(ep: LocalWorkloadEndpoint, cfg: DataplaneConfig): Rule[] {
  const out: Rule[] = [];
  for (const f of families(cfg.ipv6)) {
    const own = ownSources(ep, f);
    if (own.length > 0)
      out.push(
        r(
          [
            established(),
            { type: "nfproto", family: f },
            { type: "addr", family: f, dir: "saddr", op: "==", cidrs: own },
          ],
          { type: "accept" },
        ),
      );
  }
  return out;
}

/** Workloads may not originate VXLAN (udp/4789) or IPIP (proto 4) packets (§1.6 step 5). */
const noTunnels = (): Rule[] => [
  sharedRule("no-vxlan", () =>
    r(
      [
        { type: "l4proto", op: "==", protocols: [17] },
        { type: "port", dir: "dport", op: "==", ranges: [{ first: 4789, last: 4789 }] },
      ],
      { type: "drop" },
    ),
  ),
  sharedRule("no-ipip", () => r([{ type: "l4proto", op: "==", protocols: [4] }], { type: "drop" })),
];

export function workloadChains(
  state: DesiredState,
  ep: LocalWorkloadEndpoint,
  cfg: DataplaneConfig,
): Chain[] {
  const iface = ep.interfaceName;
  // The source check goes before conntrack so a spoofed packet never rides an existing flow.
  const fw = policyChainFor(
    state,
    ep,
    { name: endpointChain("fw", iface), type: "normal", dir: "out", tiers: ep.tiers, preamble: noTunnels() },
    cfg,
  );
  fw.rules = [...chain("x", [...establishedFromOwn(ep, cfg), ...antiSpoof(ep, cfg)]).rules, ...fw.rules];
  const tw = policyChainFor(
    state,
    ep,
    { name: endpointChain("tw", iface), type: "normal", dir: "in", tiers: ep.tiers },
    cfg,
  );
  return [tw, fw];
}

/** The chains of one host endpoint, by kind (only the ones its policies need). */
export function hostEndpointChains(
  state: DesiredState,
  ep: LocalHostEndpoint,
  cfg: DataplaneConfig,
): Map<EndpointChainKind, Chain> {
  const iface = ep.interfaceName;
  const out = new Map<EndpointChainKind, Chain>();
  const add = (kind: EndpointChainKind, spec: Omit<PolicyChainSpec, "name">): void => {
    out.set(kind, policyChainFor(state, ep, { ...spec, name: endpointChain(kind, iface) }, cfg));
  };
  add("fh", { type: "normal", dir: "in", tiers: ep.tiers, failsafe: CHAIN.failsafeIn });
  add("th", { type: "normal", dir: "out", tiers: ep.tiers, failsafe: CHAIN.failsafeOut });
  const has = (tiers: EndpointTier[], dir: Dir): boolean =>
    tiers.some((t) => (dir === "in" ? t.ingress : t.egress).length > 0);
  if (has(ep.forwardTiers, "in")) add("fhfw", { type: "forward", dir: "in", tiers: ep.forwardTiers });
  if (has(ep.forwardTiers, "out")) add("thfw", { type: "forward", dir: "out", tiers: ep.forwardTiers });
  if (has(ep.untrackedTiers, "in"))
    add("raw-fh", { type: "untracked", dir: "in", tiers: ep.untrackedTiers, failsafe: CHAIN.failsafeIn });
  if (has(ep.untrackedTiers, "out"))
    add("raw-th", { type: "untracked", dir: "out", tiers: ep.untrackedTiers, failsafe: CHAIN.failsafeOut });
  if (has(ep.preDNATTiers, "in"))
    add("mangle-fh", { type: "predna", dir: "in", tiers: ep.preDNATTiers, failsafe: CHAIN.failsafeIn });
  return out;
}
