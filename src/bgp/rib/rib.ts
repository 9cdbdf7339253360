/**
 * The RIB (RFC 4271 §3.2, §9): Adj-RIB-In per peer → decision per prefix → Loc-RIB →
 * Adj-RIB-Out per peer. Every operation returns what changed: Loc-RIB changes for the kernel
 * and minimal UPDATEs per peer. No I/O, no timers: the speaker calls `expireStale` on its own
 * clock (RFC 4724 restart timers). See docs/bgp-rib.md.
 */
import type { CIDR, IPFamily } from "../../api/net.js";
import {
  AFI,
  type DecodedUpdate,
  endOfRib,
  endOfRibFamily,
  type PathAttributes,
  SAFI,
  type UpdateMessage,
} from "../packet/index.js";
import { decide, type DecisionOptions } from "./decision.js";
import { type Advertisement, exportRoute } from "./export.js";
import { importAttributes, nextHopIsOurs } from "./import-checks.js";
import { type PrefixKey, prefixKey } from "./prefix-key.js";
import type { Decision, LocRibChange, Peer, RibChanges, RibConfig, Route } from "./types.js";
import { RejectReason } from "./types.js";
import { advertisementKey, type OutDiff, packUpdates } from "./update-packer.js";

/** The reserved peer id of locally originated routes. */
export const LOCAL_PEER_ID = "local";

interface PeerState {
  peer: Peer;
  up: boolean;
  adjIn: Map<PrefixKey, Route>;
  adjOut: Map<PrefixKey, { prefix: CIDR; adv: Advertisement; key: string }>;
  /** RFC 4724 §4.2: when the peer's stale routes go (clock ms). */
  staleDeadline?: number;
  rejected: Map<RejectReason, number>;
}

interface OutEntry {
  adv: Advertisement;
  key: string;
}
/** Exports of one flush to one peer, by source attributes object then source/next hop/family. */
type ExportCache = Map<PathAttributes, Map<string, OutEntry | undefined>>;

interface Destination {
  prefix: CIDR;
  routes: Route[];
  decision?: Decision;
}

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
  readonly #locRib = new Map<PrefixKey, Destination>();
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
    return { peer, up, adjIn: new Map(), adjOut: new Map(), rejected: new Map() };
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
    const dirty = new Map<PrefixKey, CIDR>();
    if (s === undefined) {
      s = this.#newState(peer, true);
      this.#peers.set(peer.id, s);
    } else {
      s.peer = peer;
      s.up = true;
      s.adjOut.clear();
      const keep = opts.forwardingPreserved ?? [];
      this.#dropStale(s, (r) => !keep.includes(r.prefix.family), dirty);
    }
    const changes = this.#settle(dirty, peer.id);
    const diff: OutDiff = { withdrawn: [], announced: [] };
    const cache: ExportCache = new Map();
    for (const [key, dest] of this.#locRib) this.#diffOne(s, key, dest, diff, cache);
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
    const dirty = new Map<PrefixKey, CIDR>();
    if (opts.gracefulRestart !== undefined && s.adjIn.size > 0) {
      for (const r of s.adjIn.values()) r.stale = true;
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
    const dirty = new Map<PrefixKey, CIDR>();
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

  /** Remove stale routes (or, with `all`, every route) matching `which`. */
  #dropStale(s: PeerState, which: (r: Route) => boolean, dirty: Map<PrefixKey, CIDR>, all = false): void {
    for (const [key, r] of s.adjIn) {
      if ((all || r.stale) && which(r)) {
        s.adjIn.delete(key);
        this.#setCandidate(key, r.prefix, s.peer.id, undefined);
        dirty.set(key, r.prefix);
      }
    }
    if (![...s.adjIn.values()].some((r) => r.stale)) delete s.staleDeadline;
  }

  // ---- UPDATEs ----

  /** Apply one decoded UPDATE from an Established peer. */
  applyUpdate(peerId: string, d: DecodedUpdate): RibChanges {
    const s = this.#state(peerId);
    if (!s.up) throw new Error(`RIB: UPDATE from peer "${peerId}" whose session is not up`);
    const u = d.update;
    const dirty = new Map<PrefixKey, CIDR>();
    const eor = endOfRibFamily(u);
    if (eor !== undefined) {
      const f = familyOfAfi(eor.afi);
      // RFC 4724 §4.2: End-of-RIB ends the refresh; what was not re-sent is gone.
      if (f !== undefined && eor.safi === SAFI.UNICAST)
        this.#dropStale(s, (r) => r.prefix.family === f, dirty);
      return this.#settle(dirty);
    }
    const a = u.attributes;
    const withdrawn: CIDR[] = [...u.withdrawn];
    if (a.mpUnreach !== undefined && a.mpUnreach.safi === SAFI.UNICAST)
      withdrawn.push(...a.mpUnreach.withdrawn);
    const announced: { prefix: CIDR; nextHop: CIDR | undefined }[] = [];
    for (const p of u.nlri) announced.push({ prefix: p, nextHop: a.nextHop });
    if (a.mpReach !== undefined && a.mpReach.safi === SAFI.UNICAST) {
      for (const p of a.mpReach.nlri) announced.push({ prefix: p, nextHop: a.mpReach.nextHops[0] });
    }
    // RFC 7606 §2: treat-as-withdraw applies to every NLRI of the message.
    if (d.treatAsWithdraw !== undefined) {
      withdrawn.push(...announced.map((x) => x.prefix));
      announced.length = 0;
    }
    // Withdrawals first: a prefix in both fields counts as announced (RFC 4271 §4.3).
    for (const p of withdrawn) this.#withdraw(s, p, dirty);
    if (announced.length > 0) {
      const base: PathAttributes = { ...a };
      delete base.mpReach;
      delete base.mpUnreach;
      delete base.nextHop;
      const imported = importAttributes(s.peer, base);
      const now = this.#clock();
      for (const { prefix, nextHop } of announced) {
        let reject: RejectReason | undefined;
        let attrs: PathAttributes | undefined;
        if ("reject" in imported) reject = imported.reject;
        // No next hop, or one of the other family (RFC 8950 is not supported).
        else if (nextHop?.family !== prefix.family) reject = RejectReason.NO_NEXT_HOP;
        else if (nextHopIsOurs(s.peer, nextHop) || nextHopIsOurs(this.#local, nextHop))
          reject = RejectReason.NEXT_HOP_SELF;
        else {
          attrs = imported.attributes;
          const policy = this.#cfg.importPolicy;
          if (policy !== undefined) {
            attrs = policy(prefix, attrs, s.peer);
            if (attrs === undefined) reject = RejectReason.POLICY;
          }
        }
        if (reject !== undefined || attrs === undefined || nextHop === undefined) {
          s.rejected.set(
            reject ?? RejectReason.POLICY,
            (s.rejected.get(reject ?? RejectReason.POLICY) ?? 0) + 1,
          );
          // A rejected re-announcement still replaces (withdraws) what the peer said before.
          this.#withdraw(s, prefix, dirty);
          continue;
        }
        const route: Route = {
          prefix,
          peer: s.peer,
          attributes: attrs,
          nextHop,
          stale: false,
          receivedAt: now,
        };
        this.#announce(s, route, dirty);
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
    const route: Route = {
      prefix,
      peer: this.#local,
      attributes: attrs,
      nextHop,
      stale: false,
      receivedAt: this.#clock(),
    };
    const dirty = new Map<PrefixKey, CIDR>();
    this.#announce(s, route, dirty);
    return this.#settle(dirty);
  }

  /** Stop originating `prefix`. */
  withdrawOriginated(prefix: CIDR): RibChanges {
    const dirty = new Map<PrefixKey, CIDR>();
    this.#withdraw(this.#state(LOCAL_PEER_ID), prefix, dirty);
    return this.#settle(dirty);
  }

  // ---- internals ----

  #announce(s: PeerState, route: Route, dirty: Map<PrefixKey, CIDR>): void {
    const key = prefixKey(route.prefix);
    s.adjIn.set(key, route); // implicit withdraw of the previous route (RFC 4271 §3.1)
    this.#setCandidate(key, route.prefix, s.peer.id, route);
    dirty.set(key, route.prefix);
  }

  #withdraw(s: PeerState, prefix: CIDR, dirty: Map<PrefixKey, CIDR>): void {
    const key = prefixKey(prefix);
    if (!s.adjIn.delete(key)) return;
    this.#setCandidate(key, prefix, s.peer.id, undefined);
    dirty.set(key, prefix);
  }

  #setCandidate(key: PrefixKey, prefix: CIDR, peerId: string, route: Route | undefined): void {
    let dest = this.#locRib.get(key);
    if (dest === undefined) {
      if (route === undefined) return;
      dest = { prefix, routes: [] };
      this.#locRib.set(key, dest);
    }
    const i = dest.routes.findIndex((r) => r.peer.id === peerId);
    if (route === undefined) {
      if (i >= 0) dest.routes.splice(i, 1);
    } else if (i >= 0) dest.routes[i] = route;
    else dest.routes.push(route);
  }

  /** Re-decide the dirty prefixes; diff every up peer's Adj-RIB-Out (except `skipPeer`, whose
   * table the caller rebuilds). */
  #settle(dirty: Map<PrefixKey, CIDR>, skipPeer?: string): RibChanges {
    const locRib: LocRibChange[] = [];
    const updates = new Map<string, UpdateMessage[]>();
    if (dirty.size === 0) return { locRib, updates };
    for (const [key, prefix] of dirty) {
      const dest = this.#locRib.get(key);
      const before = dest?.decision;
      let after: Decision | undefined;
      if (dest !== undefined) {
        after = dest.routes.length === 0 ? undefined : decide(dest.routes, this.#decision);
        if (after === undefined) delete dest.decision;
        else dest.decision = after;
        if (dest.routes.length === 0) this.#locRib.delete(key);
      }
      if (!sameDecision(before, after)) {
        const change: LocRibChange = { prefix, nextHops: after?.multipath.map((r) => r.nextHop) ?? [] };
        if (after !== undefined) change.decision = after;
        locRib.push(change);
      }
    }
    for (const s of this.#peers.values()) {
      if (!s.up || s.peer.id === LOCAL_PEER_ID || s.peer.id === skipPeer) continue;
      const diff: OutDiff = { withdrawn: [], announced: [] };
      const cache: ExportCache = new Map();
      for (const [key, prefix] of dirty) {
        const dest = this.#locRib.get(key);
        if (dest === undefined) {
          if (s.adjOut.delete(key)) diff.withdrawn.push(prefix);
        } else this.#diffOne(s, key, dest, diff, cache);
      }
      if (diff.withdrawn.length + diff.announced.length > 0)
        updates.set(s.peer.id, packUpdates(diff, s.peer.codec ?? { as4: true }));
    }
    return { locRib, updates };
  }

  /** Bring one prefix of one peer's Adj-RIB-Out up to date, recording the change in `diff`. */
  #diffOne(s: PeerState, key: PrefixKey, dest: Destination, diff: OutDiff, cache: ExportCache): void {
    const next = this.#advertise(s.peer, dest, cache);
    const prev = s.adjOut.get(key);
    if (next === undefined) {
      if (prev !== undefined) {
        s.adjOut.delete(key);
        diff.withdrawn.push(dest.prefix);
      }
      return;
    }
    if (prev !== undefined && prev.key === next.key) return;
    s.adjOut.set(key, { prefix: dest.prefix, adv: next.adv, key: next.key });
    diff.announced.push({ prefix: dest.prefix, adv: next.adv, key: next.key });
  }

  #advertise(to: Peer, dest: Destination, cache: ExportCache): OutEntry | undefined {
    const best = dest.decision?.best;
    if (best === undefined) return undefined;
    const policy = this.#cfg.exportPolicy;
    // Without a policy the result depends only on the route's attributes object, source peer,
    // next hop and family: routes from one UPDATE share it.
    const ck = policy === undefined ? best.attributes : undefined;
    let perAttrs: Map<string, OutEntry | undefined> | undefined;
    const sub = `${best.peer.id}|${best.nextHop.addr}|${best.prefix.family}`;
    if (ck !== undefined) {
      perAttrs = cache.get(ck);
      if (perAttrs === undefined) {
        perAttrs = new Map();
        cache.set(ck, perAttrs);
      }
      if (perAttrs.has(sub)) return perAttrs.get(sub);
    }
    let adv = exportRoute(best, to, { defaultLocalPref: this.#decision.defaultLocalPref });
    if (adv !== undefined && policy !== undefined) {
      const attrs = policy(dest.prefix, adv.attributes, to, best);
      adv = attrs === undefined ? undefined : { attributes: attrs, nextHop: adv.nextHop };
    }
    const out = adv === undefined ? undefined : { adv, key: advertisementKey(adv) };
    perAttrs?.set(sub, out);
    return out;
  }

  // ---- read side (calicoctl, tests) ----

  /** The decision for `prefix`, if it is in the Loc-RIB. */
  decision(prefix: CIDR): Decision | undefined {
    return this.#locRib.get(prefixKey(prefix))?.decision;
  }

  /** Every Loc-RIB entry with a usable best path. */
  *locRib(): IterableIterator<{ prefix: CIDR; decision: Decision }> {
    for (const d of this.#locRib.values())
      if (d.decision !== undefined) yield { prefix: d.prefix, decision: d.decision };
  }

  get locRibSize(): number {
    return this.#locRib.size;
  }

  /** The routes accepted from a peer (`LOCAL_PEER_ID` for our own). */
  adjRibIn(peerId: string): Route[] {
    return [...this.#state(peerId).adjIn.values()];
  }

  /** What a peer has been told, per prefix. */
  adjRibOut(peerId: string): { prefix: CIDR; attributes: PathAttributes; nextHop: CIDR }[] {
    return [...this.#state(peerId).adjOut.values()].map((e) => ({
      prefix: e.prefix,
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
