/**
 * The RIB (RFC 4271 §3.2, §9): Adj-RIB-In per peer → decision per prefix → Loc-RIB →
 * Adj-RIB-Out per peer. Every operation returns what changed: Loc-RIB changes for the kernel
 * and minimal UPDATEs per peer. No I/O, no timers: the speaker calls `expireStale` on its own
 * clock (RFC 4724 restart timers). See docs/bgp-rib.md.
 *
 * Memory layout (a million routes from one peer must stay near 100 bytes each): the Loc-RIB
 * map is the only per-prefix index. Its value is the one candidate route (the common case;
 * its decision is implied and computed when asked) or a `MultiDest` with every candidate and
 * the cached decision. A stored route holds its prefix key, a shared `Batch` (peer,
 * attributes, next hop, time: one per UPDATE and next hop) and its stale bit; the prefix is
 * decoded from the key on read. A peer's Adj-RIB-In is the routes of that peer in the Loc-RIB
 * map (per-peer work scans it; that happens per session event, not per UPDATE). Adj-RIB-Out
 * entries point at export results shared by every prefix of one batch.
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import {
  AFI,
  type DecodedUpdate,
  endOfRib,
  endOfRibFamily,
  type PathAttributes,
  prefixCount,
  SAFI,
  type UpdateMessage,
  wirePrefixes,
} from "../packet/index.js";
import { decide, type DecisionOptions } from "./decision.js";
import { type Advertisement, exportRoute } from "./export.js";
import { importAttributes, nextHopIsOurs } from "./import-checks.js";
import { keyPrefix, keyWords, type PrefixKey, prefixKey, wireKey, wordsKey } from "./prefix-key.js";
import { PrefixTable } from "./prefix-table.js";
import type { Decision, LocRibChange, Peer, RibChanges, RibConfig, Route } from "./types.js";
import { RejectReason } from "./types.js";
import { advertisementKey, type OutDiff, packUpdates } from "./update-packer.js";

/** The reserved peer id of locally originated routes. */
export const LOCAL_PEER_ID = "local";

interface PeerState {
  peer: Peer;
  up: boolean;
  /** Routes of this peer in the Loc-RIB map (its Adj-RIB-In size). */
  routes: number;
  adjOut: Map<PrefixKey, OutEntry>;
  /** RFC 4724 §4.2: when the peer's stale routes go (clock ms). */
  staleDeadline?: number;
  rejected: Map<RejectReason, number>;
}

interface OutEntry {
  adv: Advertisement;
  key: string;
}
/** Exports of one flush to one peer, by the best route's batch (no export policy). */
type ExportCache = Map<Batch, OutEntry | undefined>;

/** What the routes of one UPDATE (one next hop) share. */
interface Batch {
  peer: Peer;
  attributes: PathAttributes;
  nextHop: CIDR;
  receivedAt: number;
}

/** Scratch for parsing keys into StoredRoute fields. */
const keyScratch = new Int32Array(4);

/** A route as the RIB stores it: its prefix key inline as small integers (no key object per
 * route: at a million routes every object is collector work), its stale bit and the shared
 * batch; the rest is read through the batch. */
class StoredRoute implements Route {
  stale = false;
  /** `keyWords`' length (+256 for IPv6) and address words. */
  readonly #lenf: number;
  readonly #w0: number;
  readonly #w1: number;
  readonly #w2: number;
  readonly #w3: number;
  constructor(
    key: PrefixKey,
    readonly batch: Batch,
  ) {
    const k = keyScratch;
    this.#lenf = keyWords(key, k);
    this.#w0 = k[0]!;
    const v6 = this.#lenf >= 256;
    this.#w1 = v6 ? k[1]! : 0;
    this.#w2 = v6 ? k[2]! : 0;
    this.#w3 = v6 ? k[3]! : 0;
  }
  /** The prefix key (built on each read). */
  get key(): PrefixKey {
    return wordsKey(this.#lenf, this.#w0, this.#w1, this.#w2, this.#w3);
  }
  get family(): 4 | 6 {
    return this.#lenf >= 256 ? 6 : 4;
  }
  get prefix(): CIDR {
    return keyPrefix(this.key);
  }
  get peer(): Peer {
    return this.batch.peer;
  }
  get attributes(): PathAttributes {
    return this.batch.attributes;
  }
  get nextHop(): CIDR {
    return this.batch.nextHop;
  }
  get receivedAt(): number {
    return this.batch.receivedAt;
  }
}

/** A prefix with more than one candidate; the decision is cached. */
class MultiDest {
  decision: Decision | undefined;
  constructor(readonly routes: StoredRoute[]) {}
}

type Destination = StoredRoute | MultiDest;

/**
 * A prefix touched by one operation: its decision before, and its Loc-RIB entry now (kept
 * here so settling needs no second lookup in the big table). When the prefix ends up with a
 * single reachable candidate, this record is also its Loc-RIB change: the one-candidate
 * decision is built when first read (a table dump allocates one object per prefix here, and
 * no Decision when nobody reads it — no kernel).
 */
class Dirty implements LocRibChange {
  #cidr: CIDR | undefined;
  #decision: Decision | undefined;
  constructor(
    readonly key: PrefixKey,
    /** The CIDR, if the caller had one; else built from the key when read. */
    cidr: CIDR | undefined,
    /** The cached decision of a multi-candidate entry, or the single route whose decision is
     * implied (no Decision allocated for the million-route cases: table dumps, peer loss). */
    public before: Decision | StoredRoute | undefined,
    public now: Destination | undefined,
    private readonly opts: DecisionOptions,
  ) {
    this.#cidr = cidr;
  }
  get prefix(): CIDR {
    return (this.#cidr ??= keyPrefix(this.key));
  }
  /** As a change: only handed out when `now` is one reachable route. */
  get decision(): Decision {
    this.#decision ??= decide([this.now as StoredRoute], this.opts);
    return this.#decision!;
  }
  get nextHops(): CIDR[] {
    return [(this.now as StoredRoute).nextHop];
  }
}
/** The prefixes one operation touched, in order, with an index by key (a prefix table, not a
 * Map: a table dump touches hundreds per UPDATE, a peer loss a million at once). */

class DirtySet {
  readonly #index: PrefixTable<Dirty>;
  readonly list: Dirty[] = [];
  /** `index`: the RIB's one table for this, emptied here (operations never overlap; emptied at
   * the start, not the end, so an operation that threw leaves nothing behind). */
  constructor(index: PrefixTable<Dirty>) {
    index.clear();
    this.#index = index;
  }
  get(key: PrefixKey): Dirty | undefined {
    return this.#index.get(key);
  }
  add(t: Dirty): void {
    this.#index.set(t.key, t);
    this.list.push(t);
  }
}

const routesOf = (d: Destination): readonly StoredRoute[] => (d instanceof MultiDest ? d.routes : [d]);
/** Every route of a destination has its prefix's key. */
const keyOf = (d: Destination): PrefixKey => (d instanceof MultiDest ? d.routes[0]!.key : d.key);

export interface PeerUpOptions {
  /** RFC 4724 §4.2: the restarted peer's GR capability listed these families with the F bit;
   * stale routes of other families are removed at once. Omitted: all stale routes go. */
  forwardingPreserved?: IPFamily[];
  /** Send End-of-RIB after the initial table (default true). */
  endOfRib?: boolean;
}

export interface PeerDownOptions {
  /** RFC 4724 §4.2: the peer negotiated GR; keep its routes stale for `restartTime` seconds. */
  gracefulRestart?: { restartTime: number };
}

const familyOfAfi = (afi: number): IPFamily | undefined =>
  afi === AFI.IPV4 ? 4 : afi === AFI.IPV6 ? 6 : undefined;

function unspecified(family: IPFamily): CIDR {
  return { family, addr: 0n, prefix: family === 4 ? 32 : 128 };
}

function sameDecision(a: Decision | undefined, b: Decision | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.best !== b.best || a.multipath.length !== b.multipath.length) return false;
  return a.multipath.every((r, i) => r === b.multipath[i]);
}

export class Rib {
  readonly #cfg: RibConfig;
  readonly #decision: DecisionOptions;
  readonly #clock: () => number;
  readonly #peers = new Map<string, PeerState>();
  readonly #locRib = new PrefixTable<Destination>();
  readonly #dirtyIndex = new PrefixTable<Dirty>();
  readonly #local: Peer;

  constructor(cfg: RibConfig) {
    this.#cfg = cfg;
    this.#clock = cfg.clock ?? Date.now;
    this.#decision = {
      defaultLocalPref: cfg.defaultLocalPref ?? 100,
      alwaysCompareMed: cfg.alwaysCompareMed ?? false,
      maxPaths: cfg.maxPaths ?? 1,
      nextHopReachable: cfg.nextHopReachable ?? (() => true),
      igpCost: cfg.igpCost ?? (() => 0),
    };
    const v4 = cfg.local.addresses.find((a) => a.family === 4);
    this.#local = {
      id: LOCAL_PEER_ID,
      address: v4 ?? cfg.local.addresses[0] ?? unspecified(4),
      asn: cfg.local.asn,
      bgpId: cfg.local.bgpId,
      type: "local",
      rrClient: false,
      localAS: cfg.local.asn,
      localBgpId: cfg.local.bgpId,
      localAddresses: cfg.local.addresses,
    };
    this.#peers.set(LOCAL_PEER_ID, this.#newState(this.#local, true));
  }

  #newState(peer: Peer, up: boolean): PeerState {
    return { peer, up, routes: 0, adjOut: new Map(), rejected: new Map() };
  }

  #state(peerId: string): PeerState {
    const s = this.#peers.get(peerId);
    if (s === undefined) throw new Error(`RIB: unknown peer "${peerId}"`);
    return s;
  }

  // ---- sessions ----

  /** The session with `peer` is Established: (re)start its Adj-RIB-Out with the full table. */
  peerUp(peer: Peer, opts: PeerUpOptions = {}): RibChanges {
    if (peer.id === LOCAL_PEER_ID || peer.type === "local")
      throw new Error(`RIB: peer "${peer.id}" uses the reserved local id or type`);
    let s = this.#peers.get(peer.id);
    const dirty = this.#dirtySet();
    if (s === undefined) {
      s = this.#newState(peer, true);
      this.#peers.set(peer.id, s);
    } else {
      s.peer = peer;
      s.up = true;
      s.adjOut.clear();
      const keep = opts.forwardingPreserved ?? [];
      this.#dropStale(s, (r) => !keep.includes(r.family), dirty);
    }
    const changes = this.#settle(dirty, peer.id);
    const diff: OutDiff = { withdrawn: [], announced: [] };
    const cache: ExportCache = new Map();
    for (const d of this.#locRib.values()) {
      const key = keyOf(d);
      this.#diffOne(
        s,
        {
          key,
          get prefix() {
            return keyPrefix(key);
          },
        },
        d,
        diff,
        cache,
      );
    }
    const msgs = packUpdates(diff, peer.codec ?? { as4: true });
    if (opts.endOfRib ?? true) {
      for (const f of peer.families ?? [4, 6])
        msgs.push(endOfRib(f === 4 ? AFI.IPV4 : AFI.IPV6, SAFI.UNICAST));
    }
    changes.updates.set(peer.id, [...(changes.updates.get(peer.id) ?? []), ...msgs]);
    return changes;
  }

  /** The session went down. With graceful restart its routes stay, stale (RFC 4724 §4.2);
   * without, they are withdrawn. Its Adj-RIB-Out is forgotten either way. */
  peerDown(peerId: string, opts: PeerDownOptions = {}): RibChanges {
    const s = this.#state(peerId);
    s.up = false;
    s.adjOut.clear();
    const dirty = this.#dirtySet();
    if (opts.gracefulRestart !== undefined && s.routes > 0) {
      for (const d of this.#locRib.values())
        for (const r of routesOf(d)) if (r.peer.id === peerId) r.stale = true;
      s.staleDeadline = this.#clock() + opts.gracefulRestart.restartTime * 1000;
    } else {
      this.#dropStale(s, () => true, dirty, true);
    }
    return this.#settle(dirty);
  }

  /** Forget a peer entirely (de-configured): its routes are withdrawn. */
  removePeer(peerId: string): RibChanges {
    const changes = this.peerDown(peerId);
    this.#peers.delete(peerId);
    return changes;
  }

  /** RFC 4724 §4.2: remove stale routes whose restart/stale time has run out. */
  expireStale(): RibChanges {
    const now = this.#clock();
    const dirty = this.#dirtySet();
    for (const s of this.#peers.values()) {
      if (s.staleDeadline !== undefined && s.staleDeadline <= now) this.#dropStale(s, () => true, dirty);
    }
    return this.#settle(dirty);
  }

  /** The next stale deadline (clock ms), for the speaker's timer. */
  nextStaleDeadline(): number | undefined {
    let next: number | undefined;
    for (const s of this.#peers.values()) {
      if (s.staleDeadline !== undefined && (next === undefined || s.staleDeadline < next))
        next = s.staleDeadline;
    }
    return next;
  }

  /** Remove the peer's stale routes (or, with `all`, every route) matching `which`. */
  #dropStale(s: PeerState, which: (r: StoredRoute) => boolean, dirty: DirtySet, all = false): void {
    if (s.routes === 0) {
      delete s.staleDeadline;
      return;
    }
    // Routes only turn stale in peerDown with GR, which sets the deadline; no deadline, no
    // stale route. Without this, every End-of-RIB (one per family, in the middle of a table
    // dump) scanned the whole Loc-RIB for nothing.
    if (!all && s.staleDeadline === undefined) return;
    const id = s.peer.id;
    let staleLeft = false;
    // Collected first: the Loc-RIB table must not change while it is iterated.
    const gone: StoredRoute[] = [];
    for (const d of this.#locRib.values()) {
      for (const r of routesOf(d)) {
        if (r.peer.id !== id) continue;
        if ((all || r.stale) && which(r)) gone.push(r);
        else if (r.stale) staleLeft = true;
      }
    }
    for (const r of gone) {
      const key = r.key;
      const d = this.#locRib.get(key);
      if (d !== undefined) this.#remove(s, key, this.#touch(key, keyPrefix(key), d, dirty));
    }
    if (!staleLeft) delete s.staleDeadline;
  }

  // ---- UPDATEs ----

  /** Apply one decoded UPDATE from an Established peer. */
  applyUpdate(peerId: string, d: DecodedUpdate): RibChanges {
    const s = this.#state(peerId);
    if (!s.up) throw new Error(`RIB: UPDATE from peer "${peerId}" whose session is not up`);
    const u = d.update;
    const dirty = this.#dirtySet();
    const eor = endOfRibFamily(u);
    if (eor !== undefined) {
      const f = familyOfAfi(eor.afi);
      // RFC 4724 §4.2: End-of-RIB ends the refresh; what was not re-sent is gone.
      if (f !== undefined && eor.safi === SAFI.UNICAST) this.#dropStale(s, (r) => r.family === f, dirty);
      return this.#settle(dirty);
    }
    const a = u.attributes;
    const withdrawn: CIDR[] = [...u.withdrawn];
    if (a.mpUnreach !== undefined && a.mpUnreach.safi === SAFI.UNICAST)
      withdrawn.push(...a.mpUnreach.withdrawn);
    // Body NLRI with NEXT_HOP, MP_REACH NLRI with its first (global) next hop. A field the
    // codec left undecoded is walked in its octets: no CIDR, BigInt or other object per
    // prefix (a table dump is a million of them).
    const mp = a.mpReach !== undefined && a.mpReach.safi === SAFI.UNICAST ? a.mpReach : undefined;
    const announced: { of: object; family: IPFamily; nextHop: CIDR | undefined }[] = [];
    if (prefixCount(u, "nlri") > 0) announced.push({ of: u, family: 4, nextHop: a.nextHop });
    const mpFamily = mp === undefined ? undefined : familyOfAfi(mp.afi);
    if (mp !== undefined && mpFamily !== undefined && prefixCount(mp, "nlri") > 0)
      announced.push({ of: mp, family: mpFamily, nextHop: mp.nextHops[0] });
    // RFC 7606 §2: treat-as-withdraw applies to every NLRI of the message.
    if (d.treatAsWithdraw !== undefined) {
      for (const x of announced) withdrawn.push(...(x.of as { nlri: CIDR[] }).nlri);
      announced.length = 0;
    }
    // Withdrawals first: a prefix in both fields counts as announced (RFC 4271 §4.3).
    for (const p of withdrawn) this.#withdraw(s, prefixKey(p), p, dirty);
    if (announced.length > 0) {
      const base: PathAttributes = { ...a };
      delete base.mpReach;
      delete base.mpUnreach;
      delete base.nextHop;
      const imported = importAttributes(s.peer, base);
      const receivedAt = this.#clock();
      const policy = this.#cfg.importPolicy;
      // One batch per next hop (body NLRI and MP_REACH may differ); a policy that changes the
      // attributes of one prefix gets that route its own batch.
      let batch: Batch | undefined;
      for (const { of, family, nextHop } of announced) {
        // The next hop's checks hold for the whole list.
        let reject: RejectReason | undefined;
        if ("reject" in imported) reject = imported.reject;
        // No next hop, or one of the other family (RFC 8950 is not supported).
        else if (nextHop?.family !== family) reject = RejectReason.NO_NEXT_HOP;
        else if (nextHopIsOurs(s.peer, nextHop) || nextHopIsOurs(this.#local, nextHop))
          reject = RejectReason.NEXT_HOP_SELF;
        const one = (key: PrefixKey, cidr: CIDR | undefined): void => {
          let why = reject;
          let attrs: PathAttributes | undefined;
          if (why === undefined && !("reject" in imported)) {
            attrs = imported.attributes;
            if (policy !== undefined) {
              cidr ??= keyPrefix(key);
              attrs = policy(cidr, attrs, s.peer);
              if (attrs === undefined) why = RejectReason.POLICY;
            }
          }
          if (why !== undefined || attrs === undefined || nextHop === undefined) {
            const r = why ?? RejectReason.POLICY;
            s.rejected.set(r, (s.rejected.get(r) ?? 0) + 1);
            // A rejected re-announcement still replaces (withdraws) what the peer said before.
            this.#withdraw(s, key, cidr, dirty);
            return;
          }
          if (batch === undefined || batch.nextHop !== nextHop || batch.attributes !== attrs)
            batch = { peer: s.peer, attributes: attrs, nextHop, receivedAt };
          this.#announce(s, key, cidr, batch, dirty);
        };
        const wire = wirePrefixes(of, "nlri");
        if (wire !== undefined) {
          const b = wire.bytes;
          for (let at = 0; at < b.length; at += 1 + ((b[at]! + 7) >> 3))
            one(wireKey(b, at + 1, b[at]!, family), undefined);
        } else for (const p of (of as { nlri: CIDR[] }).nlri) one(prefixKey(p), p);
      }
    }
    return this.#settle(dirty);
  }

  // ---- local routes ----

  /** Inject a locally originated route (an IPAM block): ORIGIN IGP, empty AS_PATH, next hop self. */
  originate(prefix: CIDR, attributes: PathAttributes = {}): RibChanges {
    const s = this.#state(LOCAL_PEER_ID);
    const nextHop =
      this.#cfg.local.addresses.find((x) => x.family === prefix.family) ?? unspecified(prefix.family);
    const attrs: PathAttributes = { origin: 0, asPath: [], ...attributes };
    const dirty = this.#dirtySet();
    this.#announce(
      s,
      prefixKey(prefix),
      prefix,
      { peer: this.#local, attributes: attrs, nextHop, receivedAt: this.#clock() },
      dirty,
    );
    return this.#settle(dirty);
  }

  /** Stop originating `prefix`. */
  withdrawOriginated(prefix: CIDR): RibChanges {
    const dirty = this.#dirtySet();
    this.#withdraw(this.#state(LOCAL_PEER_ID), prefixKey(prefix), prefix, dirty);
    return this.#settle(dirty);
  }

  // ---- internals ----

  #dirtySet(): DirtySet {
    return new DirtySet(this.#dirtyIndex);
  }

  /** The decision of a destination: cached for several candidates, implied for one. */
  #decisionOf(d: Destination | undefined): Decision | undefined {
    if (d === undefined) return undefined;
    return d instanceof MultiDest ? d.decision : decide([d], this.#decision);
  }

  /** Record the decision before this operation's first change of `key`. */
  #touch(key: PrefixKey, prefix: CIDR | undefined, d: Destination | undefined, dirty: DirtySet): Dirty {
    let t = dirty.get(key);
    if (t === undefined) {
      t = new Dirty(key, prefix, d instanceof MultiDest ? d.decision : d, d, this.#decision);
      dirty.add(t);
    }
    return t;
  }

  #put(key: PrefixKey, d: Destination, t: Dirty): void {
    this.#locRib.set(key, d);
    t.now = d;
  }

  #announce(s: PeerState, key: PrefixKey, prefix: CIDR | undefined, batch: Batch, dirty: DirtySet): void {
    const d = this.#locRib.get(key);
    const t = this.#touch(key, prefix, d, dirty);
    const route = new StoredRoute(key, batch);
    const id = s.peer.id;
    // Implicit withdraw of the peer's previous route (RFC 4271 §3.1).
    if (d === undefined) {
      this.#put(key, route, t);
      s.routes++;
    } else if (d instanceof MultiDest) {
      const i = d.routes.findIndex((r) => r.peer.id === id);
      if (i >= 0) d.routes[i] = route;
      else {
        d.routes.push(route);
        s.routes++;
      }
    } else if (d.peer.id === id) this.#put(key, route, t);
    else {
      this.#put(key, new MultiDest([d, route]), t);
      s.routes++;
    }
  }

  #withdraw(s: PeerState, key: PrefixKey, prefix: CIDR | undefined, dirty: DirtySet): void {
    const d = this.#locRib.get(key);
    if (d === undefined || !routesOf(d).some((r) => r.peer.id === s.peer.id)) return;
    this.#remove(s, key, this.#touch(key, prefix, d, dirty));
  }

  /** Remove the peer's route of `key` (present) from the Loc-RIB map. */
  #remove(s: PeerState, key: PrefixKey, t: Dirty): void {
    const d = t.now!;
    s.routes--;
    if (!(d instanceof MultiDest)) {
      this.#locRib.delete(key);
      t.now = undefined;
      return;
    }
    const rest = d.routes.filter((r) => r.peer.id !== s.peer.id);
    if (rest.length === 1) this.#put(key, rest[0]!, t);
    else d.routes.splice(0, d.routes.length, ...rest);
  }

  /** Did the decision stay the same? `before` may be a single route (its implied decision). */
  #same(before: Decision | StoredRoute | undefined, after: Decision | undefined): boolean {
    if (!(before instanceof StoredRoute)) return sameDecision(before, after);
    if (!this.#decision.nextHopReachable(before.nextHop)) return after === undefined;
    return after?.best === before && after.multipath.length === 1;
  }

  /** Is `before` the same decision as the implied one of a single candidate (`best`, or
   * undefined when that candidate's next hop is unreachable)? */
  #sameAsSingle(before: Decision | StoredRoute | undefined, best: StoredRoute | undefined): boolean {
    if (before instanceof StoredRoute)
      return this.#decision.nextHopReachable(before.nextHop) ? before === best : best === undefined;
    if (before === undefined || best === undefined) return before === best;
    return before.best === best && before.multipath.length === 1;
  }

  /** Re-decide the dirty prefixes; diff every up peer's Adj-RIB-Out (except `skipPeer`, whose
   * table the caller rebuilds). */
  #settle(dirty: DirtySet, skipPeer?: string): RibChanges {
    const locRib: LocRibChange[] = [];
    const updates = new Map<string, UpdateMessage[]>();
    if (dirty.list.length === 0) return { locRib, updates };
    for (const t of dirty.list) {
      const { before, now: d } = t;
      if (d instanceof StoredRoute) {
        // One candidate (a table dump, a peer's own prefixes): its decision is implied, so
        // compare without building it, and hand out a change that builds it when read.
        const reachable = this.#decision.nextHopReachable(d.nextHop);
        if (!this.#sameAsSingle(before, reachable ? d : undefined))
          locRib.push(reachable ? t : { prefix: t.prefix, nextHops: [] });
        continue;
      }
      let after: Decision | undefined;
      if (d instanceof MultiDest) {
        after = decide(d.routes, this.#decision);
        d.decision = after;
      }
      if (!this.#same(before, after)) {
        const change: LocRibChange = {
          prefix: t.prefix,
          nextHops: after?.multipath.map((r) => r.nextHop) ?? [],
        };
        if (after !== undefined) change.decision = after;
        locRib.push(change);
      }
    }
    for (const s of this.#peers.values()) {
      if (!s.up || s.peer.id === LOCAL_PEER_ID || s.peer.id === skipPeer) continue;
      const diff: OutDiff = { withdrawn: [], announced: [] };
      const cache: ExportCache = new Map();
      for (const t of dirty.list) this.#diffOne(s, t, t.now, diff, cache);
      if (diff.withdrawn.length + diff.announced.length > 0)
        updates.set(s.peer.id, packUpdates(diff, s.peer.codec ?? { as4: true }));
    }
    return { locRib, updates };
  }

  /** Bring one prefix of one peer's Adj-RIB-Out up to date, recording the change in `diff`. */
  #diffOne(
    s: PeerState,
    /** The prefix: its key, and its CIDR if one was built already. */
    p: { readonly key: PrefixKey; readonly prefix: CIDR },
    d: Destination | undefined,
    diff: OutDiff,
    cache: ExportCache,
  ): void {
    const next = d === undefined ? undefined : this.#advertise(s.peer, p, d, cache);
    const key = p.key;
    const prev = s.adjOut.get(key);
    if (next === undefined) {
      if (prev !== undefined) {
        s.adjOut.delete(key);
        diff.withdrawn.push(p.prefix);
      }
      return;
    }
    if (prev !== undefined && prev.key === next.key) return;
    s.adjOut.set(key, next);
    diff.announced.push({ prefix: p.prefix, adv: next.adv, key: next.key });
  }

  #advertise(
    to: Peer,
    p: { readonly key: PrefixKey; readonly prefix: CIDR },
    d: Destination,
    cache: ExportCache,
  ): OutEntry | undefined {
    const best =
      d instanceof MultiDest ? d.decision?.best : this.#decision.nextHopReachable(d.nextHop) ? d : undefined;
    if (!(best instanceof StoredRoute)) return undefined;
    const policy = this.#cfg.exportPolicy;
    // Without a policy the result depends only on the route's batch (peer, attributes, next
    // hop; the family is the next hop's): every prefix of one UPDATE shares it.
    if (policy === undefined && cache.has(best.batch)) return cache.get(best.batch);
    let adv = exportRoute(best, to, { defaultLocalPref: this.#decision.defaultLocalPref });
    if (adv !== undefined && policy !== undefined) {
      const attrs = policy(p.prefix, adv.attributes, to, best);
      adv = attrs === undefined ? undefined : { attributes: attrs, nextHop: adv.nextHop };
    }
    const out = adv === undefined ? undefined : { adv, key: advertisementKey(adv) };
    if (policy === undefined) cache.set(best.batch, out);
    return out;
  }

  // ---- read side (calicoctl, tests) ----

  /** The decision for `prefix`, if it is in the Loc-RIB. */
  decision(prefix: CIDR): Decision | undefined {
    return this.#decisionOf(this.#locRib.get(prefixKey(prefix)));
  }

  /** Every Loc-RIB entry with a usable best path. */
  *locRib(): IterableIterator<{ prefix: CIDR; decision: Decision }> {
    for (const d of this.#locRib.values()) {
      const decision = this.#decisionOf(d);
      if (decision !== undefined) yield { prefix: keyPrefix(keyOf(d)), decision };
    }
  }

  get locRibSize(): number {
    return this.#locRib.size;
  }

  /** The routes accepted from a peer (`LOCAL_PEER_ID` for our own). */
  adjRibIn(peerId: string): Route[] {
    const s = this.#state(peerId);
    const out: Route[] = [];
    if (s.routes === 0) return out;
    for (const d of this.#locRib.values()) for (const r of routesOf(d)) if (r.peer.id === peerId) out.push(r);
    return out;
  }

  /** How many routes the peer's Adj-RIB-In holds (no scan). */
  adjRibInSize(peerId: string): number {
    return this.#state(peerId).routes;
  }

  /** What a peer has been told, per prefix. */
  adjRibOut(peerId: string): { prefix: CIDR; attributes: PathAttributes; nextHop: CIDR }[] {
    return [...this.#state(peerId).adjOut].map(([key, e]) => ({
      prefix: keyPrefix(key),
      attributes: e.adv.attributes,
      nextHop: e.adv.nextHop,
    }));
  }

  /** Announcements rejected on import, by reason. */
  rejected(peerId: string): ReadonlyMap<RejectReason, number> {
    return this.#state(peerId).rejected;
  }

  peers(): Peer[] {
    return [...this.#peers.values()].filter((s) => s.peer.id !== LOCAL_PEER_ID).map((s) => s.peer);
  }

  isUp(peerId: string): boolean {
    return this.#state(peerId).up;
  }
}
