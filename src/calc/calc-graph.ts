/**
 * The calculation graph (Felix's calc graph, reference/calico.md §1.4): datastore values in,
 * this host's desired policy, IP set and route state out, incrementally.
 *
 * Two label indexes carry the incremental work: one of LOCAL endpoints against policy
 * selectors (which policies are active, which endpoints need their tiers recomputed), and one
 * of ALL endpoints and network sets against the selectors of active rules (IP set members).
 * An update only marks what it affects dirty; the end of `onUpdates` recomputes the dirty
 * policies, profiles, endpoints and routes and stores them in maps that remember what really
 * changed since the last flush. docs/calc.md has the contract and invariants.
 */
import { parseCIDR } from "../api/net.js";
import { LabelIndex } from "../selector/index.js";
import { bool, classifyKey, specOf } from "./decode.js";
import {
  decodeHostEndpoint,
  decodeNetworkSet,
  decodeWorkloadEndpoint,
  endpointMembers,
  networkSetMembers,
  type EndpointRecord,
} from "./endpoints.js";
import { IPSetIndex } from "./ipset-index.js";
import type { IPSetSpec } from "./ipset-spec.js";
import {
  BUILTIN_DEFAULT_TIER,
  comparePolicies,
  compareTiers,
  decodePolicy,
  decodeTier,
  DEFAULT_TIER,
  type PolicyRecord,
  type TierRecord,
} from "./policies.js";
import { builtinProfile, decodeProfile, type ProfileRecord } from "./profiles.js";
import { blockRoutes, decodeBlock, decodeNodeAddrs, RouteTable, type NodeAddrs } from "./routes.js";
import { translateRules } from "./rule-translation.js";
import { TrackedMap } from "./tracked-map.js";
import {
  emptyChanges,
  type Calculator,
  type CompiledPolicy,
  type CompiledProfile,
  type DesiredRoute,
  type DesiredState,
  type EndpointTier,
  type KVUpdate,
  type LocalEndpoint,
  type PoolInfo,
  type StateChanges,
} from "./types.js";

export interface CalcGraphOptions {
  hostname: string;
  /** Prefix of `log` rules (FelixConfiguration `logPrefix`); default `calico-packet`. */
  logPrefix?: string;
  /** Told about values the calculation ignores (unreadable, invalid selectors, ...). */
  onProblem?: (message: string) => void;
}

/** A policy with its rules translated (done once per value, not per activation). */
interface PolicyEntry extends PolicyRecord {
  compiled: CompiledPolicy;
  sets: IPSetSpec[];
}

const STAGED_PLURALS = new Set([
  "stagednetworkpolicies",
  "stagedglobalnetworkpolicies",
  "stagedkubernetesnetworkpolicies",
]);

export class CalcGraph implements Calculator {
  readonly #hostname: string;
  readonly #logPrefix: string;
  readonly #onProblem: ((m: string) => void) | undefined;

  // ---- inputs ----
  /** Local endpoints (see #onEndpoint). */
  readonly #endpoints = new Map<string, EndpointRecord>();
  readonly #policies = new Map<string, PolicyEntry>();
  /** Staged policies: read and kept, never enforced (§2.7). */
  readonly #staged = new Map<string, unknown>();
  readonly #tiers = new Map<string, TierRecord>();
  readonly #tierPolicies = new Map<string, Set<string>>();
  readonly #profiles = new Map<string, ProfileRecord>();
  readonly #nodes = new Map<string, NodeAddrs>();
  /** node → blocks whose routes name it. */
  readonly #nodeBlocks = new Map<string, Set<string>>();
  readonly #blockValues = new Map<string, ReturnType<typeof decodeBlock>>();
  /** block → nodes its routes name. */
  readonly #blockNodes = new Map<string, Set<string>>();

  // ---- indexes ----
  /** Local endpoints × policy selectors. */
  readonly #policyIndex: LabelIndex<string, string>;
  readonly #ipSets = new IPSetIndex();
  readonly #routeTable = new RouteTable();
  /** Local endpoints per profile name. */
  readonly #profileRefs = new Map<string, number>();
  /** IP sets each active policy / profile holds. */
  readonly #held = new Map<string, IPSetSpec[]>();

  // ---- dirty marks ----
  readonly #dirtyPolicies = new Set<string>();
  readonly #dirtyProfiles = new Set<string>();
  readonly #dirtyEndpoints = new Set<string>();

  // ---- outputs ----
  readonly #outPolicies = new TrackedMap<string, CompiledPolicy>();
  readonly #outProfiles = new TrackedMap<string, CompiledProfile>();
  readonly #outEndpoints = new TrackedMap<string, LocalEndpoint>();
  readonly #outRoutes = new TrackedMap<string, DesiredRoute>();
  readonly #outPools = new TrackedMap<string, PoolInfo>();

  readonly state: DesiredState;

  constructor(options: CalcGraphOptions) {
    this.#hostname = options.hostname;
    this.#logPrefix = options.logPrefix ?? "calico-packet";
    this.#onProblem = options.onProblem;
    this.#policyIndex = new LabelIndex<string, string>({
      onMatchStarted: (pid, ep) => this.#policyMatchChanged(pid, ep),
      onMatchStopped: (pid, ep) => this.#policyMatchChanged(pid, ep),
    });
    this.state = {
      ipSets: this.#ipSets.publicSets,
      policies: this.#outPolicies.map,
      profiles: this.#outProfiles.map,
      endpoints: this.#outEndpoints.map,
      routes: this.#outRoutes.map,
      pools: this.#outPools.map,
    };
  }

  onUpdates(updates: readonly KVUpdate[]): void {
    for (const u of updates) {
      try {
        this.#onUpdate(u);
      } catch (err) {
        this.#problem(`update of ${u.key} ignored: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.#recompute();
  }

  flush(): StateChanges {
    const c = emptyChanges();
    const ip = this.#ipSets.flush();
    c.ipSets = ip.ipSets;
    c.ipSetMembers = ip.ipSetMembers;
    this.#outPolicies.flushInto(c.policies);
    this.#outProfiles.flushInto(c.profiles);
    this.#outEndpoints.flushInto(c.endpoints);
    this.#outRoutes.flushInto(c.routes);
    this.#outPools.flushInto(c.pools);
    return c;
  }

  /** Staged policies known (never enforced); for diagnostics. */
  get stagedPolicyCount(): number {
    return this.#staged.size;
  }

  // ---- dispatch ----

  #problem(message: string): void {
    this.#onProblem?.(message);
  }

  /** Runs a decoder; a throw (bad selector, bad rule) counts as an absent value. */
  #decode<T>(key: string, value: unknown, fn: () => T | undefined): T | undefined {
    if (value === null || value === undefined) return undefined;
    try {
      const out = fn();
      if (out === undefined) this.#problem(`${key}: unreadable value, treated as absent`);
      return out;
    } catch (err) {
      this.#problem(`${key}: ${err instanceof Error ? err.message : String(err)}; treated as absent`);
      return undefined;
    }
  }

  #onUpdate({ key, value }: KVUpdate): void {
    const k = classifyKey(key);
    if (k.type === "block") {
      this.#onBlock(key, value === null || value === undefined ? undefined : decodeBlock(value));
      return;
    }
    if (k.type !== "resource") return;
    const { plural, namespace: ns, name } = k;
    switch (plural) {
      case "workloadendpoints":
        if (ns === undefined) return;
        this.#onEndpoint(
          `wep/${ns}/${name}`,
          this.#decode(key, value, () => decodeWorkloadEndpoint(ns, name, value)),
        );
        return;
      case "hostendpoints":
        if (ns !== undefined) return;
        this.#onEndpoint(
          `hep/${name}`,
          this.#decode(key, value, () => decodeHostEndpoint(name, value)),
        );
        return;
      case "networkpolicies":
      case "globalnetworkpolicies": {
        if ((plural === "networkpolicies") !== (ns !== undefined)) return;
        const id = ns === undefined ? `gnp/${name}` : `np/${ns}/${name}`;
        this.#onPolicy(
          id,
          this.#decode(key, value, () => this.#decodePolicy(ns, name, value)),
        );
        return;
      }
      case "tiers":
        this.#onTier(
          name,
          this.#decode(key, value, () => decodeTier(name, value)),
        );
        return;
      case "profiles":
        this.#onProfile(
          name,
          this.#decode(key, value, () => decodeProfile(name, value, this.#logPrefix)),
        );
        return;
      case "networksets":
      case "globalnetworksets": {
        if ((plural === "networksets") !== (ns !== undefined)) return;
        const rec = this.#decode(key, value, () => decodeNetworkSet(ns, name, value));
        const id = ns === undefined ? `gns/${name}` : `ns/${ns}/${name}`;
        if (rec === undefined) this.#ipSets.deleteItem(id);
        else this.#ipSets.updateItem(id, rec.labels, rec.parents, networkSetMembers(rec));
        return;
      }
      case "ippools":
        this.#onPool(
          name,
          this.#decode(key, value, () => decodePool(name, value)),
        );
        return;
      case "nodes":
        this.#onNode(
          name,
          this.#decode(key, value, () => decodeNodeAddrs(value)),
        );
        return;
      default:
        if (STAGED_PLURALS.has(plural)) {
          const id = `${plural}/${ns ?? ""}/${name}`;
          if (specOf(value) === undefined) this.#staged.delete(id);
          else this.#staged.set(id, value);
        }
    }
  }

  #decodePolicy(ns: string | undefined, name: string, value: unknown): PolicyEntry | undefined {
    const rec = decodePolicy(ns, name, value);
    if (rec === undefined) return undefined;
    const compiled: CompiledPolicy = {
      id: rec.id,
      tier: rec.tier,
      doNotTrack: rec.doNotTrack,
      preDNAT: rec.preDNAT,
      applyOnForward: rec.applyOnForward,
    };
    const sets: IPSetSpec[] = [];
    const ctx = (dir: string) => ({ origin: `${rec.id} ${dir}`, namespace: ns, logPrefix: this.#logPrefix });
    if (rec.ingress) {
      const t = translateRules(rec.ingressRules, ctx("ingress"));
      compiled.inbound = t.rules;
      sets.push(...t.sets);
    }
    if (rec.egress) {
      const t = translateRules(rec.egressRules, ctx("egress"));
      compiled.outbound = t.rules;
      sets.push(...t.sets);
    }
    return { ...rec, compiled, sets };
  }

  // ---- handlers: mark what is affected ----

  #policyMatchChanged(pid: string, ep: string): void {
    this.#dirtyPolicies.add(pid);
    this.#dirtyEndpoints.add(ep);
  }

  #markPolicyEndpoints(pid: string): void {
    for (const ep of this.#policyIndex.itemsMatching(pid)) this.#dirtyEndpoints.add(ep);
  }

  #onPolicy(id: string, rec: PolicyEntry | undefined): void {
    const old = this.#policies.get(id);
    if (old !== undefined) {
      this.#tierPolicies.get(old.tier)?.delete(id);
      this.#markPolicyEndpoints(id);
    }
    if (rec === undefined) {
      this.#policies.delete(id);
      this.#policyIndex.deleteSelector(id);
    } else {
      this.#policies.set(id, rec);
      let t = this.#tierPolicies.get(rec.tier);
      if (t === undefined) {
        t = new Set();
        this.#tierPolicies.set(rec.tier, t);
      }
      t.add(id);
      this.#policyIndex.updateSelector(id, rec.selector);
      this.#markPolicyEndpoints(id);
    }
    this.#dirtyPolicies.add(id);
  }

  #onTier(name: string, rec: TierRecord | undefined): void {
    if (rec === undefined) this.#tiers.delete(name);
    else this.#tiers.set(name, rec);
    for (const pid of this.#tierPolicies.get(name) ?? []) {
      this.#dirtyPolicies.add(pid);
      this.#markPolicyEndpoints(pid);
    }
  }

  #onProfile(name: string, rec: ProfileRecord | undefined): void {
    if (rec === undefined) {
      this.#profiles.delete(name);
      this.#policyIndex.deleteParent(name);
      this.#ipSets.deleteParent(name);
    } else {
      this.#profiles.set(name, rec);
      this.#policyIndex.updateParent(name, rec.labels);
      this.#ipSets.updateParent(name, rec.labels);
    }
    this.#dirtyProfiles.add(name);
  }

  #isLocal(ep: EndpointRecord | undefined): boolean {
    return ep !== undefined && ep.node === this.#hostname;
  }

  #onEndpoint(key: string, rec: EndpointRecord | undefined): void {
    const old = this.#endpoints.get(key);
    if (rec === undefined) {
      this.#endpoints.delete(key);
      this.#ipSets.deleteItem(key);
    } else {
      // Only local endpoints' records are kept: a remote one lives on in the IP set index
      // (labels, parents, members), and nothing else reads it (~800 bytes each × 9,000 on the
      // bench).
      if (this.#isLocal(rec)) this.#endpoints.set(key, rec);
      else this.#endpoints.delete(key);
      this.#ipSets.updateItem(key, rec.labels, rec.profiles, endpointMembers(rec));
    }
    const local = this.#isLocal(rec);
    if (local) this.#policyIndex.updateItem(key, rec!.labels, rec!.profiles);
    else this.#policyIndex.deleteItem(key);

    const oldProfiles = new Set(this.#isLocal(old) ? old!.profiles : []);
    const newProfiles = new Set(local ? rec!.profiles : []);
    for (const p of oldProfiles) if (!newProfiles.has(p)) this.#refProfile(p, -1);
    for (const p of newProfiles) if (!oldProfiles.has(p)) this.#refProfile(p, 1);

    const routes: DesiredRoute[] = [];
    if (local && rec!.kind === "workload") {
      for (const dst of rec!.addrs)
        routes.push({ dst, type: "local-workload", interfaceName: rec!.interfaceName });
    }
    this.#routeTable.setSource(key, routes);
    this.#dirtyEndpoints.add(key);
  }

  #refProfile(name: string, d: 1 | -1): void {
    const n = (this.#profileRefs.get(name) ?? 0) + d;
    if (n <= 0) this.#profileRefs.delete(name);
    else this.#profileRefs.set(name, n);
    this.#dirtyProfiles.add(name);
  }

  #onPool(name: string, pool: PoolInfo | undefined): void {
    if (pool === undefined) this.#outPools.delete(name);
    else this.#outPools.set(name, pool);
  }

  #onNode(name: string, addrs: NodeAddrs | undefined): void {
    if (addrs === undefined) this.#nodes.delete(name);
    else this.#nodes.set(name, addrs);
    for (const b of [...(this.#nodeBlocks.get(name) ?? [])]) this.#routeBlock(b);
  }

  #onBlock(key: string, block: ReturnType<typeof decodeBlock>): void {
    if (block === undefined) this.#blockValues.delete(key);
    else this.#blockValues.set(key, block);
    this.#routeBlock(key);
  }

  /** (Re)computes one block's routes, keeping the node → block index in step. */
  #routeBlock(key: string): void {
    const source = `block:${key}`;
    for (const node of this.#blockNodes.get(key) ?? []) {
      const set = this.#nodeBlocks.get(node);
      set?.delete(key);
      if (set?.size === 0) this.#nodeBlocks.delete(node);
    }
    this.#blockNodes.delete(key);
    const block = this.#blockValues.get(key);
    if (block === undefined) {
      this.#routeTable.setSource(source, []);
      return;
    }
    const routes = blockRoutes(block, this.#hostname, this.#nodes);
    const nodes = new Set<string>();
    for (const r of routes) {
      if (r.node === undefined) continue;
      nodes.add(r.node);
      let set = this.#nodeBlocks.get(r.node);
      if (set === undefined) {
        set = new Set();
        this.#nodeBlocks.set(r.node, set);
      }
      set.add(key);
    }
    if (nodes.size > 0) this.#blockNodes.set(key, nodes);
    this.#routeTable.setSource(source, routes);
  }

  // ---- recompute what is dirty ----

  #tierOf(name: string): TierRecord | undefined {
    return this.#tiers.get(name) ?? (name === DEFAULT_TIER ? BUILTIN_DEFAULT_TIER : undefined);
  }

  /** Holds exactly `next` IP sets for `owner` (acquire first so shared sets never drop). */
  #hold(owner: string, next: IPSetSpec[]): void {
    for (const s of next) this.#ipSets.acquire(s);
    for (const s of this.#held.get(owner) ?? []) this.#ipSets.release(s.id);
    if (next.length > 0) this.#held.set(owner, next);
    else this.#held.delete(owner);
  }

  #recompute(): void {
    for (const id of this.#dirtyPolicies) {
      const p = this.#policies.get(id);
      const active =
        p !== undefined &&
        this.#tierOf(p.tier) !== undefined &&
        (p.assumeNeeded || this.#policyIndex.itemsMatching(id).size > 0);
      if (active) {
        this.#hold(`policy:${id}`, p.sets);
        this.#outPolicies.set(id, p.compiled);
      } else {
        this.#hold(`policy:${id}`, []);
        this.#outPolicies.delete(id);
      }
    }
    this.#dirtyPolicies.clear();

    for (const name of this.#dirtyProfiles) {
      if ((this.#profileRefs.get(name) ?? 0) > 0) {
        const rec = this.#profiles.get(name);
        this.#hold(`profile:${name}`, rec?.sets ?? []);
        this.#outProfiles.set(name, rec?.compiled ?? builtinProfile(name));
      } else {
        this.#hold(`profile:${name}`, []);
        this.#outProfiles.delete(name);
      }
    }
    this.#dirtyProfiles.clear();

    for (const key of this.#dirtyEndpoints) {
      const ep = this.#endpoints.get(key);
      if (ep !== undefined && this.#isLocal(ep)) this.#outEndpoints.set(key, this.#localEndpoint(ep));
      else this.#outEndpoints.delete(key);
    }
    this.#dirtyEndpoints.clear();

    for (const [k, r] of this.#routeTable.takeDirty()) {
      if (r === undefined) this.#outRoutes.delete(k);
      else this.#outRoutes.set(k, r);
    }
  }

  #localEndpoint(ep: EndpointRecord): LocalEndpoint {
    // Active policies selecting the endpoint, grouped by tier, in evaluation order.
    const byTier = new Map<string, PolicyEntry[]>();
    for (const pid of this.#policyIndex.selectorsMatching(ep.key)) {
      const p = this.#policies.get(pid);
      if (p === undefined || this.#tierOf(p.tier) === undefined) continue;
      let list = byTier.get(p.tier);
      if (list === undefined) {
        list = [];
        byTier.set(p.tier, list);
      }
      list.push(p);
    }
    const tiers = [...byTier.keys()].map((n) => this.#tierOf(n)!).sort(compareTiers);
    const build = (keep: (p: PolicyEntry) => boolean, ingressOnly = false): EndpointTier[] => {
      const out: EndpointTier[] = [];
      for (const t of tiers) {
        const ps = byTier.get(t.name)!.filter(keep).sort(comparePolicies);
        const ingress = ps.filter((p) => p.ingress).map((p) => p.id);
        const egress = ingressOnly ? [] : ps.filter((p) => p.egress).map((p) => p.id);
        if (ingress.length + egress.length > 0)
          out.push({ name: t.name, defaultAction: t.defaultAction, ingress, egress });
      }
      return out;
    };
    // Felix's split (event_sequencer tierInfoToProtoTierInfo): untracked and pre-DNAT policies
    // have their own tiers; normal ones apply to local traffic, applyOnForward ones also forwarded.
    const normal = (p: PolicyEntry): boolean => !p.doNotTrack && !p.preDNAT;
    const common = {
      key: ep.key,
      interfaceName: ep.interfaceName,
      tiers: build(normal),
      profiles: [...new Set(ep.profiles)],
    };
    if (ep.kind === "workload") {
      const v4 = ep.addrs.filter((a) => a.family === 4);
      const v6 = ep.addrs.filter((a) => a.family === 6);
      const out: LocalEndpoint = {
        kind: "workload",
        ...common,
        ipv4Nets: v4,
        ipv6Nets: v6,
        allowSpoofedSourcePrefixes: ep.allowSpoofedSourcePrefixes,
      };
      if (ep.mac !== undefined) out.mac = ep.mac;
      return out;
    }
    return {
      kind: "host",
      ...common,
      expectedIPs: ep.addrs,
      forwardTiers: build((p) => normal(p) && p.applyOnForward),
      preDNATTiers: build((p) => p.preDNAT && !p.doNotTrack, true),
      untrackedTiers: build((p) => p.doNotTrack),
    };
  }
}

function decodePool(name: string, value: unknown): PoolInfo | undefined {
  const spec = specOf(value);
  if (spec === undefined || typeof spec.cidr !== "string") return undefined;
  const cidr = parseCIDR(spec.cidr.trim());
  if (cidr === undefined) return undefined;
  return { name, cidr, natOutgoing: bool(spec.natOutgoing), disabled: bool(spec.disabled) };
}
