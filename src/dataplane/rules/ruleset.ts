/**
 * The desired contents of table `inet calico`, kept as pieces owned by state objects
 * ("static", "set:<id>", "pol:<id>", "prof:<id>", "ep:<key>", "pools") so an update
 * recomputes only the pieces a change touches, plus a flat view of every chain, set and map
 * for diffing. `DesiredTable.fromState` and a sequence of `update`s give the same flat view.
 */
import type { IPFamily } from "../../api/net.js";
import type { DesiredState, LocalHostEndpoint, StateChanges } from "../../calc/types.js";
import type { Chain, MapSpec, MapVerdict } from "../nft/model.js";
import { MAP, endpointChain, type EndpointChainKind } from "../names.js";
import type { DataplaneConfig } from "../types.js";
import { hostEndpointChains, workloadChains } from "./endpoint.js";
import { clearMemberCaches, ipSetFor, poolSets, type DesiredSet } from "./ipsets.js";
import { families, policyChains, profileChains, referencedSets, type PolicyRenderOptions } from "./policy.js";
import { natChains, staticChains } from "./static.js";

export interface DesiredMap {
  spec: MapSpec;
  elements: Map<string, MapVerdict>;
}

export interface MapElement {
  map: string;
  key: string;
  verdict: MapVerdict;
}

export interface Piece {
  chains: Chain[];
  sets: DesiredSet[];
  maps: MapSpec[];
  mapElements: MapElement[];
}

/** Names a change touched, for the fast path's diff. */
export interface Touched {
  chains: Set<string>;
  sets: Set<string>;
  maps: Set<string>;
}

export const emptyTouched = (): Touched => ({ chains: new Set(), sets: new Set(), maps: new Set() });

const piece = (p: Partial<Piece>): Piece => ({ chains: [], sets: [], maps: [], mapElements: [], ...p });

const renderOpts = (state: DesiredState, cfg: DataplaneConfig): PolicyRenderOptions => ({
  ipv6: cfg.ipv6,
  denyAction: cfg.denyAction,
  logPrefix: cfg.logPrefix,
  ipSets: state.ipSets,
});

function hepKinds(
  state: DesiredState,
  cfg: DataplaneConfig,
): (h: LocalHostEndpoint) => Set<EndpointChainKind> {
  return (h) => new Set(hostEndpointChains(state, h, cfg).keys());
}

/**
 * Who references what, both ways: `set(from, targets)` replaces what `from` references, and
 * `get(target)` lists who references it (without scanning every target on each update).
 */
class RefIndex {
  private readonly byTarget = new Map<string, Set<string>>();
  private readonly byFrom = new Map<string, readonly string[]>();

  set(from: string, targets: readonly string[]): void {
    for (const t of this.byFrom.get(from) ?? []) {
      const s = this.byTarget.get(t);
      s?.delete(from);
      if (s?.size === 0) this.byTarget.delete(t);
    }
    if (targets.length === 0) this.byFrom.delete(from);
    else this.byFrom.set(from, targets);
    for (const t of targets) {
      let s = this.byTarget.get(t);
      if (s === undefined) this.byTarget.set(t, (s = new Set()));
      s.add(from);
    }
  }

  get(target: string): ReadonlySet<string> | undefined {
    return this.byTarget.get(target);
  }

  clear(): void {
    this.byTarget.clear();
    this.byFrom.clear();
  }
}

export class DesiredTable {
  readonly chains = new Map<string, Chain>();
  readonly sets = new Map<string, DesiredSet>();
  readonly maps = new Map<string, DesiredMap>();
  private readonly pieces = new Map<string, Piece>();
  /** policy/profile ID → endpoint keys that reference it; set ID → policy/profile owners. */
  private readonly epRefs = new RefIndex();
  private readonly setRefs = new RefIndex();

  constructor(private cfg: DataplaneConfig) {}

  static fromState(state: DesiredState, cfg: DataplaneConfig): DesiredTable {
    const t = new DesiredTable(cfg);
    t.rebuild(state);
    return t;
  }

  /** Recompute everything (first apply, config change). */
  rebuild(state: DesiredState, cfg: DataplaneConfig = this.cfg): void {
    this.cfg = cfg;
    for (const owner of [...this.pieces.keys()]) this.setPiece(owner, undefined, emptyTouched());
    this.epRefs.clear();
    this.setRefs.clear();
    const t = emptyTouched();
    this.refreshStatic(state, t);
    this.refreshPools(state, t);
    for (const id of state.ipSets.keys()) this.refreshSet(state, id, t);
    for (const id of state.policies.keys()) this.refreshPolicy(state, id, t);
    for (const id of state.profiles.keys()) this.refreshProfile(state, id, t);
    for (const key of state.endpoints.keys()) this.refreshEndpoint(state, key, t);
    clearMemberCaches();
  }

  /** Apply one flush's changes; returns the names whose desired content may have changed. */
  update(state: DesiredState, changes: StateChanges): Touched {
    const t = emptyTouched();
    const sets = new Set([...changes.ipSets, ...changes.ipSetMembers.keys()]);
    for (const id of sets) this.refreshSet(state, id, t);
    // A set appearing or disappearing changes whether rules naming it can be programmed.
    const policies = new Set(changes.policies);
    const profiles = new Set(changes.profiles);
    for (const id of changes.ipSets)
      for (const owner of this.setRefs.get(id) ?? []) {
        if (owner.startsWith("pol:")) policies.add(owner.slice(4));
        else profiles.add(owner.slice(5));
      }
    const endpoints = new Set(changes.endpoints);
    for (const id of policies) {
      const existed = this.pieces.has(`pol:${id}`);
      this.refreshPolicy(state, id, t);
      if (existed !== state.policies.has(id))
        for (const k of this.epRefs.get(`pol:${id}`) ?? []) endpoints.add(k);
    }
    for (const id of profiles) {
      const existed = this.pieces.has(`prof:${id}`);
      this.refreshProfile(state, id, t);
      if (existed !== state.profiles.has(id))
        for (const k of this.epRefs.get(`prof:${id}`) ?? []) endpoints.add(k);
    }
    let hepsChanged = false;
    for (const key of endpoints) {
      this.refreshEndpoint(state, key, t);
      if (key.startsWith("hep/")) hepsChanged = true;
    }
    if (hepsChanged) this.refreshStatic(state, t);
    if (changes.pools.size > 0) this.refreshPools(state, t);
    clearMemberCaches();
    return t;
  }

  private refreshStatic(state: DesiredState, t: Touched): void {
    const heps = [...state.endpoints.values()].filter((e): e is LocalHostEndpoint => e.kind === "host");
    const s = staticChains(this.cfg, heps, hepKinds(state, this.cfg));
    this.setPiece("static", piece({ chains: s.chains, maps: s.maps }), t);
  }

  private refreshPools(state: DesiredState, t: Touched): void {
    this.setPiece(
      "pools",
      piece({
        sets: families(this.cfg.ipv6).flatMap((f) => poolSets(state.pools.values(), f)),
        chains: natChains(this.cfg, state.pools.values()),
      }),
      t,
    );
  }

  private refreshSet(state: DesiredState, id: string, t: Touched): void {
    const s = state.ipSets.get(id);
    const fams: IPFamily[] = families(this.cfg.ipv6);
    this.setPiece(
      `set:${id}`,
      s === undefined ? undefined : piece({ sets: fams.map((f) => ipSetFor(s, f)) }),
      t,
    );
  }

  private trackSets(owner: string, ids: string[]): void {
    this.setRefs.set(owner, ids);
  }

  private refreshPolicy(state: DesiredState, id: string, t: Touched): void {
    const p = state.policies.get(id);
    const owner = `pol:${id}`;
    this.trackSets(
      owner,
      p === undefined ? [] : referencedSets([...(p.inbound ?? []), ...(p.outbound ?? [])]),
    );
    this.setPiece(
      owner,
      p === undefined ? undefined : piece({ chains: policyChains(p, renderOpts(state, this.cfg)) }),
      t,
    );
  }

  private refreshProfile(state: DesiredState, id: string, t: Touched): void {
    const p = state.profiles.get(id);
    const owner = `prof:${id}`;
    this.trackSets(owner, p === undefined ? [] : referencedSets([...p.inbound, ...p.outbound]));
    this.setPiece(
      owner,
      p === undefined ? undefined : piece({ chains: profileChains(p, renderOpts(state, this.cfg)) }),
      t,
    );
  }

  private refreshEndpoint(state: DesiredState, key: string, t: Touched): void {
    const ep = state.endpoints.get(key);
    // Reference tracking (which policy/profile pieces this endpoint's chains jump to).
    if (ep === undefined) {
      this.epRefs.set(key, []);
      this.setPiece(`ep:${key}`, undefined, t);
      return;
    }
    this.epRefs.set(key, [
      ...ep.profiles.map((p) => `prof:${p}`),
      ...[
        ...ep.tiers,
        ...(ep.kind === "host" ? [...ep.forwardTiers, ...ep.preDNATTiers, ...ep.untrackedTiers] : []),
      ].flatMap((tier) => [...tier.ingress, ...tier.egress].map((p) => `pol:${p}`)),
    ]);
    if (ep.kind === "workload") {
      const iface = ep.interfaceName;
      this.setPiece(
        `ep:${key}`,
        piece({
          chains: workloadChains(state, ep, this.cfg),
          mapElements: [
            {
              map: MAP.fromWlDispatch,
              key: iface,
              verdict: { type: "goto", chain: endpointChain("fw", iface) },
            },
            {
              map: MAP.toWlDispatch,
              key: iface,
              verdict: { type: "goto", chain: endpointChain("tw", iface) },
            },
            { map: MAP.toWlEstablished, key: iface, verdict: { type: "accept" } },
          ],
        }),
        t,
      );
    } else {
      this.setPiece(`ep:${key}`, piece({ chains: [...hostEndpointChains(state, ep, this.cfg).values()] }), t);
    }
  }

  /** Replace one owner's piece in the flat view, recording every name it touched. */
  private setPiece(owner: string, p: Piece | undefined, t: Touched): void {
    const old = this.pieces.get(owner);
    if (old !== undefined) {
      for (const c of old.chains) {
        t.chains.add(c.name);
        this.chains.delete(c.name);
      }
      for (const s of old.sets) {
        t.sets.add(s.spec.name);
        this.sets.delete(s.spec.name);
      }
      for (const m of old.maps) {
        t.maps.add(m.name);
        this.maps.delete(m.name);
      }
      for (const e of old.mapElements) {
        t.maps.add(e.map);
        this.maps.get(e.map)?.elements.delete(e.key);
      }
    }
    if (p === undefined) {
      this.pieces.delete(owner);
      return;
    }
    this.pieces.set(owner, p);
    for (const c of p.chains) {
      t.chains.add(c.name);
      this.chains.set(c.name, c);
    }
    for (const s of p.sets) {
      t.sets.add(s.spec.name);
      this.sets.set(s.spec.name, s);
    }
    for (const m of p.maps) {
      t.maps.add(m.name);
      // Keep the elements endpoint pieces put there.
      this.maps.set(m.name, { spec: m, elements: this.orphanElements(m.name) });
    }
    for (const e of p.mapElements) {
      t.maps.add(e.map);
      this.maps.get(e.map)?.elements.set(e.key, e.verdict);
    }
  }

  /** Elements of `map` contributed by pieces other than the map's owner (on a map re-create). */
  private orphanElements(map: string): Map<string, MapVerdict> {
    const out = new Map<string, MapVerdict>();
    for (const p of this.pieces.values())
      for (const e of p.mapElements) if (e.map === map) out.set(e.key, e.verdict);
    return out;
  }
}
