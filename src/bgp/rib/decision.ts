/**
 * The decision process (RFC 4271 §9.1.2, tie-breaks §9.1.2.2, RFC 4456 §9) as elimination over
 * the candidate set, the way the RFC writes it: each step keeps the routes best on one
 * criterion. Elimination (not pairwise comparison) keeps the MED step well defined — MED is
 * compared only within one neighbouring AS, so pairwise comparison is not transitive and its
 * result would depend on arrival order. Each step that removes routes is recorded in words.
 */
import { type CIDR, formatIP } from "../../api/net.js";
import { Origin } from "../packet/index.js";
import { type Decision, DecisionStep, type Elimination, type Route } from "./types.js";

export interface DecisionOptions {
  defaultLocalPref: number;
  alwaysCompareMed: boolean;
  maxPaths: number;
  nextHopReachable: (nh: CIDR) => boolean;
  igpCost: (nh: CIDR) => number;
}

export const DEFAULT_DECISION: DecisionOptions = {
  defaultLocalPref: 100,
  alwaysCompareMed: false,
  maxPaths: 1,
  nextHopReachable: () => true,
  igpCost: () => 0,
};

/** BIRD's protocol preferences: static (our IPAM blocks) 200, BGP 100 — compared first. */
export const LOCAL_PREFERENCE = 200;
export const BGP_PREFERENCE = 100;

const ORIGIN_NAME = ["IGP", "EGP", "INCOMPLETE"];

/** LOCAL_PREF as the decision sees it: eBGP and local routes get the default (RFC 4271 §5.1.5). */
export function effectiveLocalPref(r: Route, def: number): number {
  return r.peer.type === "ibgp" ? (r.attributes.localPref ?? def) : def;
}

/** RFC 4271 §9.1.2.2 a: AS_SET counts 1; confederation segments count 0 (RFC 5065 §5.3). */
export function asPathLength(r: Route): number {
  let n = 0;
  for (const s of r.attributes.asPath ?? []) {
    if (s.type === "sequence") n += s.asns.length;
    else if (s.type === "set") n += 1;
  }
  return n;
}

/** RFC 4271 §9.1.2.2 c: the AS the route came from; our own AS for iBGP routes originated
 * inside it (empty path, or one starting with an AS_SET). */
export function neighbourAS(r: Route): number {
  for (const s of r.attributes.asPath ?? []) {
    if (s.type === "confed-sequence" || s.type === "confed-set") continue;
    if (s.type === "sequence" && s.asns.length > 0) return s.asns[0] ?? r.peer.localAS;
    break;
  }
  return r.peer.localAS;
}

/** RFC 4271 §9.1.2.2 c: a missing MED is the lowest possible value. */
const medOf = (r: Route): number => r.attributes.med ?? 0;
const routerIdOf = (r: Route): number => r.attributes.originatorId ?? r.peer.bgpId;
const preferenceOf = (r: Route): number => (r.peer.type === "local" ? LOCAL_PREFERENCE : BGP_PREFERENCE);

function addrCompare(a: Route, b: Route): number {
  const x = a.peer.address;
  const y = b.peer.address;
  if (x.family !== y.family) return x.family - y.family;
  if (x.addr !== y.addr) return x.addr < y.addr ? -1 : 1;
  return a.peer.id < b.peer.id ? -1 : a.peer.id > b.peer.id ? 1 : 0;
}

const ip4 = (n: number): string => formatIP(4, BigInt(n));
const addr = (r: Route): string => formatIP(r.peer.address.family, r.peer.address.addr);

interface Criterion {
  step: DecisionStep;
  /** Lower is better. */
  score: (r: Route) => number;
  say: (winner: Route, loser: Route) => string;
}

function criteria(o: DecisionOptions): Criterion[] {
  return [
    {
      step: DecisionStep.PREFERENCE,
      score: (r) => -preferenceOf(r),
      say: (w, l) => `preference ${preferenceOf(w)} > ${preferenceOf(l)} (locally originated)`,
    },
    {
      step: DecisionStep.LOCAL_PREF,
      score: (r) => -effectiveLocalPref(r, o.defaultLocalPref),
      say: (w, l) =>
        `local-pref ${effectiveLocalPref(w, o.defaultLocalPref)} > ${effectiveLocalPref(l, o.defaultLocalPref)}`,
    },
    {
      step: DecisionStep.AS_PATH,
      score: asPathLength,
      say: (w, l) => `as-path ${asPathLength(w)} < ${asPathLength(l)}`,
    },
    {
      step: DecisionStep.ORIGIN,
      score: (r) => r.attributes.origin ?? Origin.INCOMPLETE,
      say: (w, l) =>
        `origin ${ORIGIN_NAME[w.attributes.origin ?? 2]} < ${ORIGIN_NAME[l.attributes.origin ?? 2]}`,
    },
    // MED is handled specially (per neighbouring AS) in decide().
    {
      step: DecisionStep.EBGP_OVER_IBGP,
      score: (r) => (r.peer.type === "ibgp" ? 1 : 0),
      say: () => "eBGP over iBGP",
    },
    {
      step: DecisionStep.IGP_COST,
      score: (r) => o.igpCost(r.nextHop),
      say: (w, l) => `igp cost ${o.igpCost(w.nextHop)} < ${o.igpCost(l.nextHop)}`,
    },
  ];
}

const TIE_BREAKS: Criterion[] = [
  {
    step: DecisionStep.CLUSTER_LIST,
    score: (r) => r.attributes.clusterList?.length ?? 0,
    say: (w, l) =>
      `cluster-list ${w.attributes.clusterList?.length ?? 0} < ${l.attributes.clusterList?.length ?? 0}`,
  },
  {
    step: DecisionStep.ROUTER_ID,
    score: routerIdOf,
    say: (w, l) => `router-id ${ip4(routerIdOf(w))} < ${ip4(routerIdOf(l))}`,
  },
];

/** Keep the routes with the lowest score; record an elimination when some were removed. */
function keepBest(set: Route[], c: Criterion, out: Elimination[]): Route[] {
  if (set.length < 2) return set;
  let min = Infinity;
  for (const r of set) min = Math.min(min, c.score(r));
  const kept = set.filter((r) => c.score(r) === min);
  if (kept.length === set.length) return set;
  const eliminated = set.filter((r) => c.score(r) !== min);
  const runnerUp = eliminated.reduce((a, b) => (c.score(b) < c.score(a) ? b : a));
  out.push({ step: c.step, text: c.say(kept[0] as Route, runnerUp), eliminated });
  return kept;
}

/** RFC 4271 §9.1.2.2 c: remove a route when another from the same neighbouring AS has a lower
 * MED (or any route, with always-compare-med). */
function keepBestMed(set: Route[], alwaysCompare: boolean, out: Elimination[]): Route[] {
  if (set.length < 2) return set;
  const groupOf = (r: Route): number => (alwaysCompare ? 0 : neighbourAS(r));
  const minByGroup = new Map<number, number>();
  for (const r of set) {
    const g = groupOf(r);
    minByGroup.set(g, Math.min(minByGroup.get(g) ?? Infinity, medOf(r)));
  }
  const kept = set.filter((r) => medOf(r) === minByGroup.get(groupOf(r)));
  if (kept.length === set.length) return set;
  const eliminated = set.filter((r) => !kept.includes(r));
  const loser = eliminated.reduce((a, b) => (medOf(b) < medOf(a) ? b : a));
  const winner = kept.find((r) => groupOf(r) === groupOf(loser)) ?? loser;
  const as = alwaysCompare ? "always-compare-med" : `neighbour AS ${neighbourAS(loser)}`;
  out.push({ step: DecisionStep.MED, text: `med ${medOf(winner)} < ${medOf(loser)} (${as})`, eliminated });
  return kept;
}

/** The best path among `candidates` (all for one prefix), or undefined if none is usable. */
export function decide(
  candidates: readonly Route[],
  o: DecisionOptions = DEFAULT_DECISION,
): Decision | undefined {
  const eliminations: Elimination[] = [];
  // Fast path: one candidate (the common case at scale).
  if (candidates.length === 1) {
    const only = candidates[0] as Route;
    if (!o.nextHopReachable(only.nextHop)) return undefined;
    return { best: only, multipath: [only], step: DecisionStep.ONLY_PATH, reason: "only path", eliminations };
  }
  // RFC 4271 §9.1.2: routes whose NEXT_HOP cannot be resolved are excluded.
  let set = candidates.filter((r) => o.nextHopReachable(r.nextHop));
  if (set.length < candidates.length) {
    const eliminated = candidates.filter((r) => !set.includes(r));
    const nh = eliminated[0]?.nextHop;
    const text = nh === undefined ? "" : `next hop ${formatIP(nh.family, nh.addr)} unreachable`;
    eliminations.push({ step: DecisionStep.NEXT_HOP, text, eliminated });
  }
  if (set.length === 0) return undefined;
  const [pref, lp, asPath, origin, ebgp, igp] = criteria(o) as [
    Criterion,
    Criterion,
    Criterion,
    Criterion,
    Criterion,
    Criterion,
  ];
  set = keepBest(set, pref, eliminations);
  set = keepBest(set, lp, eliminations);
  set = keepBest(set, asPath, eliminations);
  set = keepBest(set, origin, eliminations);
  set = keepBestMed(set, o.alwaysCompareMed, eliminations);
  set = keepBest(set, ebgp, eliminations);
  set = keepBest(set, igp, eliminations);
  // Multipath: everything still equal here, ordered by the remaining tie-breaks.
  const ordered = [...set].sort(
    (a, b) =>
      (a.attributes.clusterList?.length ?? 0) - (b.attributes.clusterList?.length ?? 0) ||
      routerIdOf(a) - routerIdOf(b) ||
      addrCompare(a, b),
  );
  for (const c of TIE_BREAKS) set = keepBest(set, c, eliminations);
  if (set.length > 1) {
    const sorted = [...set].sort(addrCompare);
    const [w, ...rest] = sorted as [Route, ...Route[]];
    eliminations.push({
      step: DecisionStep.PEER_ADDRESS,
      text: `peer address ${addr(w)} < ${addr(rest[0] as Route)}`,
      eliminated: rest,
    });
    set = [w];
  }
  const best = set[0] as Route;
  const multipath = ordered.slice(0, Math.max(1, o.maxPaths));
  const last = eliminations[eliminations.length - 1];
  if (last === undefined) {
    return { best, multipath, step: DecisionStep.ONLY_PATH, reason: "only path", eliminations };
  }
  return { best, multipath, step: last.step, reason: last.text, eliminations };
}
