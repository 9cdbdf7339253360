/**
 * The BGP side of calico-node (Calico's BIRD + confd): keeps one `BgpSpeaker` at the
 * configuration `desiredBgp` computes from the datastore, as resources change. Peers are
 * added and removed, prefixes originated and withdrawn in place; the speaker is restarted only
 * when what it was built with changes (AS, router ID, listen address/port, default GR time).
 *
 * A BGP problem never ends the agent: a speaker that cannot start (port in use, say) is logged,
 * shown in `status()` and retried; everything else the speaker reports stays in its status.
 */
import type { PathAttributes } from "../bgp/packet/types.js";
import type { StateChange } from "../bgp/session.js";
import type { PeerConfig, SpeakerConfig, SpeakerStatus } from "../bgp/speaker.js";
import type { KVUpdate } from "../calc/types.js";
import {
  BgpResourceCache,
  desiredBgp,
  type DesiredBgp,
  type DesiredPeer,
  type PeerType,
  type SecretLookup,
} from "./bgp-config.js";
import type { Logger } from "./log.js";

/** What the runner needs of a speaker (BgpSpeaker; a fake in unit tests). */
export interface SpeakerLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  addPeer(cfg: PeerConfig): void;
  removePeer(address: string): Promise<void>;
  originate(prefix: string, attributes?: PathAttributes): void;
  withdraw(prefix: string): void;
  status(): SpeakerStatus;
}

export interface BgpRunnerOptions {
  nodename: string;
  log: Logger;
  createSpeaker(cfg: SpeakerConfig): SpeakerLike;
  /** BGP is off for a reason outside the datastore (`--no-bgp`, CALICO_NETWORKING_BACKEND=none). */
  disabledReason?: string | undefined;
  secret?: SecretLookup;
  /** Added to every speaker's configuration (session timers, netns). */
  speakerDefaults?: Partial<SpeakerConfig>;
  /** Wait this long after an update before reconciling, so a burst is one pass (default 20 ms). */
  debounceMs?: number;
  /** Retry a speaker that failed to start after this long (default 5 s). */
  retryMs?: number;
}

/** One row of `calicoctl node status`. */
export interface BgpPeerRow {
  address: string;
  type: PeerType;
  name: string;
  asn: number;
  state: string;
  since: string;
  /** "Established", or the last error in words. */
  info: string;
  lastDown?: string;
  routesReceived: number;
}

export interface BgpRunStatus {
  enabled: boolean;
  /** Why BGP is off, or why the speaker is not running. */
  reason?: string;
  asn?: number;
  routerId?: string;
  listenPort?: number;
  peers: BgpPeerRow[];
  originated: string[];
  /** Prefixes in the speaker's Loc-RIB (learned and our own). */
  locRibSize?: number;
  problems: string[];
  /** Recent speaker errors (kernel programming, sends). */
  errors: string[];
}

/** Calico's BIRD template timers (reference §5.3: `connect retry time 5; error wait time 5,30`). */
export const CALICO_SESSION_TIMERS: Partial<SpeakerConfig> = {
  connectRetryTime: 5,
  idleHoldTime: 5,
  maxIdleHoldTime: 30,
};

/** The speaker's construction parameters: a change in these means a new speaker. */
const identity = (c: DesiredBgp): string =>
  JSON.stringify([c.asn, c.routerId, c.listenPort, c.listenHost ?? "", c.gracefulRestartTime]);

const peerKey = (p: DesiredPeer): string => JSON.stringify(toPeerConfig(p));

function toPeerConfig(p: DesiredPeer): PeerConfig {
  const { type: _type, name: _name, ...cfg } = p;
  return cfg;
}

export class BgpRunner {
  readonly #opts: BgpRunnerOptions;
  readonly #cache = new BgpResourceCache();
  #speaker: SpeakerLike | undefined;
  #identity = "";
  #peers = new Map<string, DesiredPeer>();
  #prefixes = new Map<string, string>();
  #desired: DesiredBgp | undefined;
  #reason: string | undefined;
  #inSync = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** Per peer, the session-change reasons logged at info since its last Established. */
  #loggedReasons = new Map<string, Set<string>>();

  constructor(opts: BgpRunnerOptions) {
    this.#opts = opts;
    this.#reason = opts.disabledReason ?? "waiting for the datastore";
  }

  get enabled(): boolean {
    return this.#opts.disabledReason === undefined;
  }

  onUpdates(updates: readonly KVUpdate[]): void {
    if (this.#cache.onUpdates(updates) && this.#inSync) this.#schedule();
  }

  /** The syncer is in sync: act on a complete view from now on. */
  onInSync(): void {
    if (this.#inSync) return;
    this.#inSync = true;
    this.#schedule();
  }

  /** Resolves once everything scheduled so far has been acted on (tests). */
  async settled(): Promise<void> {
    while (this.#timer !== undefined || this.#running !== undefined) {
      if (this.#running !== undefined) await this.#running;
      else await new Promise((r) => setTimeout(r, 5));
    }
  }

  status(): BgpRunStatus {
    const d = this.#desired;
    const out: BgpRunStatus = {
      enabled: this.enabled,
      peers: [],
      originated: [...this.#prefixes.keys()].sort(),
      problems: d?.problems ?? [],
      errors: [],
    };
    if (this.#reason !== undefined) out.reason = this.#reason;
    if (d !== undefined && this.#speaker !== undefined) {
      out.asn = d.asn;
      out.routerId = d.routerId;
      out.listenPort = d.listenPort;
    }
    const s = this.#speaker?.status();
    if (s === undefined) return out;
    out.locRibSize = s.locRibSize;
    out.errors = [...(s.kernelError !== undefined ? [`kernel: ${s.kernelError}`] : [])];
    for (const p of s.peers) {
      const want = this.#peers.get(p.address);
      const row: BgpPeerRow = {
        address: p.address,
        type: want?.type ?? "global",
        name: want?.name ?? p.address,
        asn: p.asn,
        state: p.state,
        since: p.since.toISOString(),
        info: p.state === "Established" ? "Established" : (p.info ?? p.lastDown ?? ""),
        routesReceived: p.routesReceived,
      };
      if (p.lastDown !== undefined) row.lastDown = p.lastDown;
      out.peers.push(row);
    }
    return out;
  }

  /**
   * Stop BGP. `graceful` (calico-node exiting on SIGTERM): when we offer graceful restart, the
   * sessions are left to drop with the process — no Cease — so peers keep our routes as stale
   * for the restart time (RFC 4724) and forwarding continues until the next run refreshes them;
   * our own kernel routes stay too. Otherwise every peer gets a Cease and our routes go.
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    const sp = this.#speaker;
    const graceful = [...this.#peers.values()].filter((p) => p.gracefulRestartTime > 0);
    if (opts.graceful === true && sp !== undefined && graceful.length > 0) {
      // Peers we offered no graceful restart get their Cease; the others nothing.
      for (const p of this.#peers.values())
        if (p.gracefulRestartTime <= 0) await sp.removePeer(p.address).catch(() => undefined);
      this.#opts.log.info(
        "BGP sessions left to drop with the process: peers keep our routes (graceful restart)",
        {
          peers: graceful.map((p) => `${p.address} (${p.gracefulRestartTime} s)`),
        },
      );
      this.#speaker = undefined;
      return;
    }
    await this.#stopSpeaker();
  }

  // ---- reconciling ----

  #schedule(delay = this.#opts.debounceMs ?? 20): void {
    if (this.#stopped || !this.enabled) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#reconcile()
        .catch((err: unknown) => this.#opts.log.error("BGP reconcile failed", { error: err }))
        .finally(() => {
          this.#running = undefined;
          if (this.#again) {
            this.#again = false;
            this.#schedule();
          }
        });
    }, delay);
  }

  async #reconcile(): Promise<void> {
    const log = this.#opts.log;
    const decision = desiredBgp(this.#cache, this.#opts.nodename, this.#opts.secret);
    if (!decision.enabled) {
      if (this.#reason !== decision.reason) log.warn("BGP is off", { reason: decision.reason });
      this.#reason = decision.reason;
      this.#desired = undefined;
      await this.#stopSpeaker();
      return;
    }
    const want = decision.config;
    for (const p of want.problems)
      if (!(this.#desired?.problems ?? []).includes(p))
        log.warn("BGP configuration not honoured", { problem: p });
    this.#desired = want;
    if (this.#speaker !== undefined && identity(want) !== this.#identity) {
      log.info("BGP speaker settings changed: restarting the speaker", {
        asn: want.asn,
        routerId: want.routerId,
      });
      await this.#stopSpeaker();
    }
    if (this.#speaker === undefined) {
      await this.#startSpeaker(want);
      return;
    }
    await this.#syncPeers(this.#speaker, want);
    this.#syncPrefixes(this.#speaker, want);
  }

  async #startSpeaker(want: DesiredBgp): Promise<void> {
    const log = this.#opts.log;
    const cfg: SpeakerConfig = {
      ...CALICO_SESSION_TIMERS,
      ...this.#opts.speakerDefaults,
      asn: want.asn,
      routerId: want.routerId,
      listen: { host: want.listenHost ?? "::", port: want.listenPort },
      onSessionState: (peer, change) => this.#logSessionState(peer, change),
    };
    if (want.gracefulRestartTime > 0) cfg.gracefulRestartTime = want.gracefulRestartTime;
    let sp: SpeakerLike | undefined;
    try {
      sp = this.#opts.createSpeaker(cfg);
      this.#peers = new Map();
      this.#prefixes = new Map();
      await this.#syncPeers(sp, want);
      this.#syncPrefixes(sp, want);
      await sp.start();
    } catch (err) {
      const reason = `BGP speaker cannot start: ${err instanceof Error ? err.message : String(err)}`;
      log.error(reason, { retryInMs: this.#opts.retryMs ?? 5000 });
      this.#reason = reason;
      await sp?.stop().catch(() => undefined);
      this.#peers = new Map();
      this.#prefixes = new Map();
      if (!this.#stopped) {
        const t = setTimeout(() => this.#schedule(0), this.#opts.retryMs ?? 5000);
        t.unref();
      }
      return;
    }
    this.#speaker = sp;
    this.#identity = identity(want);
    this.#reason = undefined;
    log.info("BGP speaker started", {
      asn: want.asn,
      routerId: want.routerId,
      port: want.listenPort,
      peers: want.peers.map((p) => `${p.address} (${p.type})`),
      originated: [...want.prefixes.keys()],
    });
  }

  /** Every change at info, except a reason already logged for the peer since it was last
   * Established (a peer that stays unreachable loops Connect → Active → Connect): debug. */
  #logSessionState(peer: string, c: StateChange): void {
    const seen = this.#loggedReasons.get(peer) ?? new Set<string>();
    this.#loggedReasons.set(peer, seen);
    const fields = { peer, from: c.from, to: c.to, reason: c.reason };
    if (c.to === "Established") seen.clear();
    else if (seen.has(c.reason)) {
      this.#opts.log.debug("BGP session state", fields);
      return;
    } else seen.add(c.reason);
    this.#opts.log.info("BGP session state", fields);
  }

  async #syncPeers(sp: SpeakerLike, want: DesiredBgp): Promise<void> {
    const next = new Map(want.peers.map((p) => [p.address, p]));
    for (const [addr, had] of this.#peers) {
      const now = next.get(addr);
      if (now !== undefined && peerKey(now) === peerKey(had)) continue;
      this.#opts.log.info("BGP peer removed", { peer: addr, type: had.type });
      this.#loggedReasons.delete(addr);
      await sp.removePeer(addr);
      this.#peers.delete(addr);
    }
    for (const [addr, p] of next) {
      if (!this.#peers.has(addr)) {
        try {
          sp.addPeer(toPeerConfig(p));
          this.#opts.log.info("BGP peer added", { peer: addr, type: p.type, asn: p.asn, passive: p.passive });
        } catch (err) {
          this.#opts.log.error("Cannot add BGP peer", { peer: addr, error: err });
          continue;
        }
      }
      this.#peers.set(addr, p);
    }
  }

  #syncPrefixes(sp: SpeakerLike, want: DesiredBgp): void {
    for (const prefix of this.#prefixes.keys()) {
      if (want.prefixes.has(prefix)) continue;
      sp.withdraw(prefix);
      this.#prefixes.delete(prefix);
    }
    for (const [prefix, attrs] of want.prefixes) {
      const text = JSON.stringify(attrs);
      if (this.#prefixes.get(prefix) === text) continue;
      sp.originate(prefix, attrs);
      this.#prefixes.set(prefix, text);
    }
  }

  async #stopSpeaker(): Promise<void> {
    const sp = this.#speaker;
    this.#speaker = undefined;
    this.#peers = new Map();
    this.#prefixes = new Map();
    this.#identity = "";
    if (sp === undefined) return;
    try {
      await sp.stop();
    } catch (err) {
      this.#opts.log.error("Error stopping the BGP speaker", { error: err });
    }
  }
}
