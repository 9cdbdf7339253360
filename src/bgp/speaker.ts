/**
 * The BGP speaker: sessions (session.ts, listener.ts) around one RIB (rib/), and the Loc-RIB
 * programmed into the kernel (kernel-routes.ts). Usable as a library (docs/bgp.md, "Speaker"):
 *
 *   established → rib.peerUp      update → rib.applyUpdate      down → rib.peerDown (GR if the
 *   peer negotiated it; a timer calls rib.expireStale at rib.nextStaleDeadline())
 *
 * Every RibChanges is acted on the same way: per-peer UPDATEs go out on the sessions that are
 * Established, Loc-RIB changes go to the kernel (skipping prefixes whose best route is our own,
 * the "local" peer: those are the dataplane's).
 */
import net from "node:net";
import { formatCIDR, parseCIDR, parseCIDROrIP, type CIDR, type IPFamily } from "../api/net.js";
import { CalicoError } from "../errors.js";
import { KernelRoutes, BGP_ROUTE_PROTOCOL } from "./kernel-routes.js";
import { BgpListener } from "./listener.js";
import { AFI, SAFI, type AfiSafi, type PathAttributes } from "./packet/types.js";
import { LOCAL_PEER_ID, Rib, type Peer, type RibChanges } from "./rib/index.js";
import { Session, parseId, type Negotiated, type StateChange } from "./session.js";
import type { State } from "./fsm.js";

export interface SpeakerConfig {
  asn: number;
  /** Our BGP identifier, dotted quad. */
  routerId: string;
  /** Where to listen (default "::" port 179). */
  listen?: { host?: string; port?: number };
  /** Network namespace for kernel routes (name or path); the process itself must already be
   * in it for the sockets, Node cannot switch namespaces. */
  netns?: string;
  /** Route protocol number of our kernel routes (default 84; 83 is the dataplane's). */
  routeProtocol?: number;
  /** Offer graceful restart (RFC 4724) with this restart time, seconds; also keeps our kernel
   * routes when we stop. Default: not offered. */
  gracefulRestartTime?: number;
  /** ECMP width (BIRD `merge paths`); default 16. */
  maxPaths?: number;
  /** Session timers, seconds (defaults of session.ts otherwise); small values for tests. */
  holdTime?: number;
  connectRetryTime?: number;
  idleHoldTime?: number;
  maxIdleHoldTime?: number;
  /** Program the kernel (default true); false for pure-routing uses such as a reflector. */
  programKernel?: boolean;
  /** Told every session state change (logging). */
  onSessionState?: (peer: string, change: StateChange) => void;
}

export interface PeerConfig {
  address: string;
  asn: number;
  /** The peer's port (default 179). */
  port?: number;
  passive?: boolean;
  password?: string;
  ttlSecurity?: boolean;
  /** RFC 4456: this iBGP peer is our route-reflector client. */
  rrClient?: boolean;
  nextHopSelf?: boolean;
  keepOriginalNextHop?: boolean;
  /** Default: unicast of the peer address's family. */
  families?: IPFamily[];
  /** Source address for outgoing connections. */
  localAddress?: string;
  /** RFC 4456 cluster ID (dotted quad) for an `rrClient` peer; default our router ID. */
  clusterId?: string;
  /** Graceful-restart time offered to this peer, seconds (0: not offered); default the
   * speaker's `gracefulRestartTime`. */
  gracefulRestartTime?: number;
}

/** One row of `calicoctl node status`. */
export interface PeerStatus {
  address: string;
  asn: number;
  type: "ibgp" | "ebgp";
  state: State;
  since: Date;
  /** The last error in words (why the session last went down), if any. */
  info?: string;
  /** Why the session last left Established, if it ever did. */
  lastDown?: string;
  routesReceived: number;
}

export interface SpeakerStatus {
  asn: number;
  routerId: string;
  peers: PeerStatus[];
  locRibSize: number;
  /** The last kernel programming error, if the last apply failed. */
  kernelError?: string;
}

interface PeerEntry {
  cfg: PeerConfig;
  session: Session;
  /** What the last Established negotiated (the session forgets it when it goes down). */
  negotiated?: Negotiated | undefined;
}

/** How session.ts words a fall to Idle caused by the peer's NOTIFICATION. */
const NOTIFICATION_RECEIVED = /^peer sent NOTIFICATION/;

const afiOf = (f: IPFamily): AfiSafi => ({ afi: f === 4 ? AFI.IPV4 : AFI.IPV6, safi: SAFI.UNICAST });
const familyOfAfi = (afi: number): IPFamily | undefined =>
  afi === AFI.IPV4 ? 4 : afi === AFI.IPV6 ? 6 : undefined;

function hostCidr(address: string): CIDR {
  const c = parseCIDROrIP(address);
  if (!c)
    throw new CalicoError("BGP_BAD_CONFIG", `Cannot use BGP peer address "${address}": not an IP address`);
  return c;
}

export class BgpSpeaker {
  readonly rib: Rib;
  readonly kernel: KernelRoutes | undefined;
  readonly #cfg: SpeakerConfig;
  readonly #listener: BgpListener;
  readonly #peers = new Map<string, PeerEntry>();
  #staleTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #started = false;
  /** Errors from the kernel or sessions' sends that have no caller to go to. */
  readonly errors: string[] = [];

  constructor(cfg: SpeakerConfig) {
    this.#cfg = cfg;
    const bgpId = parseId(cfg.routerId);
    this.rib = new Rib({
      local: { asn: cfg.asn, bgpId, addresses: [] },
      maxPaths: cfg.maxPaths ?? 16,
    });
    this.kernel =
      cfg.programKernel === false
        ? undefined
        : new KernelRoutes({ netns: cfg.netns, protocol: cfg.routeProtocol ?? BGP_ROUTE_PROTOCOL });
    this.#listener = new BgpListener({ host: cfg.listen?.host ?? "::", port: cfg.listen?.port ?? 179 });
    this.#listener.on("error", (err) => this.#error(`BGP listener: ${err.message}`));
  }

  /** Listen, remove leftover routes of ours from the kernel (unless we offer graceful restart:
   * then they stay until refreshed or the restart time is up), and start the peers. */
  async start(): Promise<void> {
    if (this.kernel) {
      if (this.#cfg.gracefulRestartTime === undefined) await this.kernel.sweep();
      else {
        const sweep = () => void this.kernel?.sweep().catch((e: unknown) => this.#error(String(e)));
        setTimeout(sweep, this.#cfg.gracefulRestartTime * 1000).unref();
      }
    }
    // Listen only now: a connection accepted while our sessions are still Idle would be
    // rejected (Cease / Connection Rejected) and both sides would back off.
    await this.#listener.listen();
    this.#started = true;
    for (const p of this.#peers.values()) p.session.start();
  }

  get port(): number {
    return this.#listener.port;
  }

  addPeer(cfg: PeerConfig): void {
    const address = formatCIDR(hostCidr(cfg.address)).replace(/\/(32|128)$/, "");
    if (this.#peers.has(address))
      throw new CalicoError("BGP_PEER_EXISTS", `BGP peer ${address} is already configured`);
    const family = net.isIPv6(address) ? 6 : 4;
    const families = (cfg.families ?? [family]).map(afiOf);
    const gr = cfg.gracefulRestartTime ?? this.#cfg.gracefulRestartTime;
    const session = new Session({
      localAS: this.#cfg.asn,
      peerAS: cfg.asn,
      routerId: parseId(this.#cfg.routerId),
      peerAddress: address,
      families,
      ...(cfg.port !== undefined ? { peerPort: cfg.port } : {}),
      ...(cfg.localAddress !== undefined ? { localAddress: cfg.localAddress } : {}),
      ...(cfg.passive ? { passive: true } : {}),
      ...(cfg.password ? { password: cfg.password } : {}),
      ...(cfg.ttlSecurity ? { ttlSecurity: true } : {}),
      ...(this.#cfg.holdTime !== undefined ? { holdTime: this.#cfg.holdTime } : {}),
      ...(this.#cfg.connectRetryTime !== undefined ? { connectRetryTime: this.#cfg.connectRetryTime } : {}),
      ...(this.#cfg.idleHoldTime !== undefined ? { idleHoldTime: this.#cfg.idleHoldTime } : {}),
      ...(this.#cfg.maxIdleHoldTime !== undefined ? { maxIdleHoldTime: this.#cfg.maxIdleHoldTime } : {}),
      ...(gr !== undefined && gr > 0
        ? { gracefulRestart: { restartTime: gr, forwardingPreserved: true } }
        : {}),
    });
    const entry: PeerEntry = { cfg: { ...cfg, address }, session };
    session.on("established", (n) => this.#established(entry, n));
    session.on("update", (d) => {
      if (this.#isUp(address)) this.#act(this.rib.applyUpdate(address, d));
    });
    session.on("down", (reason: string) => this.#down(entry, reason));
    const onState = this.#cfg.onSessionState;
    if (onState) session.on("state", (change) => onState(address, change));
    this.#peers.set(address, entry);
    this.#listener.add(session);
    if (this.#started && !this.#stopped) session.start();
  }

  async removePeer(address: string): Promise<void> {
    const key = formatCIDR(hostCidr(address)).replace(/\/(32|128)$/, "");
    const p = this.#peers.get(key);
    if (!p) return;
    this.#peers.delete(key);
    this.#listener.remove(p.session);
    p.session.removeAllListeners();
    await p.session.stop();
    if (this.#known(key)) this.#act(this.rib.removePeer(key));
  }

  /** Advertise one of our prefixes (an IPAM block, a borrowed /32 or /128), optionally with
   * attributes such as communities; originating it again replaces the attributes. */
  originate(prefix: string, attributes: PathAttributes = {}): void {
    this.#act(this.rib.originate(this.#prefix(prefix), attributes));
  }

  withdraw(prefix: string): void {
    this.#act(this.rib.withdrawOriginated(this.#prefix(prefix)));
  }

  status(): SpeakerStatus {
    const peers = [...this.#peers.values()].map(({ cfg, session }): PeerStatus => {
      const s = session.status();
      const row: PeerStatus = {
        address: cfg.address,
        asn: cfg.asn,
        type: cfg.asn === this.#cfg.asn ? "ibgp" : "ebgp",
        state: s.state,
        since: s.since,
        routesReceived: this.#isUp(cfg.address) ? this.rib.adjRibInSize(cfg.address) : 0,
      };
      if (s.lastError !== undefined) row.info = s.lastError;
      if (s.lastDown !== undefined) row.lastDown = s.lastDown;
      return row;
    });
    const out: SpeakerStatus = {
      asn: this.#cfg.asn,
      routerId: this.#cfg.routerId,
      peers,
      locRibSize: this.rib.locRibSize,
    };
    if (this.kernel?.lastError !== undefined) out.kernelError = this.kernel.lastError;
    return out;
  }

  /** Wait until everything the RIB decided so far is in the kernel. */
  async settled(): Promise<void> {
    await this.kernel?.apply();
  }

  /** Cease to every peer, close the listener. Our kernel routes are removed, unless we offer
   * graceful restart: then they stay for the restarted speaker to refresh (RFC 4724). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#staleTimer) clearTimeout(this.#staleTimer);
    await Promise.all(
      [...this.#peers.values()].map((p) => {
        p.session.removeAllListeners();
        return p.session.stop();
      }),
    );
    await this.#listener.close();
    if (this.kernel && this.#cfg.gracefulRestartTime === undefined) {
      this.kernel.clear();
      await this.kernel.apply();
    }
    // The long-lived `ip -batch` process: an apply after this would start a new one.
    this.kernel?.close();
  }

  // ---- session events ----

  #established(p: PeerEntry, n: Negotiated): void {
    p.negotiated = n;
    const families = n.families.flatMap((f) => {
      const fam = familyOfAfi(f.afi);
      return fam === undefined || f.safi !== SAFI.UNICAST ? [] : [fam];
    });
    const local = parseCIDROrIP(n.localAddress);
    const peer: Peer = {
      id: p.cfg.address,
      address: hostCidr(p.cfg.address),
      asn: n.peerAS,
      bgpId: n.peerId,
      type: n.peerAS === this.#cfg.asn ? "ibgp" : "ebgp",
      rrClient: p.cfg.rrClient ?? false,
      ...(p.cfg.clusterId !== undefined ? { clusterId: parseId(p.cfg.clusterId) } : {}),
      localAS: this.#cfg.asn,
      localBgpId: parseId(this.#cfg.routerId),
      families,
      nextHopSelf: p.cfg.nextHopSelf ?? false,
      keepOriginalNextHop: p.cfg.keepOriginalNextHop ?? false,
      codec: { as4: n.as4 },
      ...(local ? { localAddresses: [local] } : {}),
    };
    const gr = n.peerGracefulRestart;
    const forwardingPreserved = (gr?.families ?? []).flatMap((f) => {
      const fam = familyOfAfi(f.afi);
      return f.forwardingPreserved && fam !== undefined ? [fam] : [];
    });
    this.#act(this.rib.peerUp(peer, { forwardingPreserved }));
  }

  #down(p: PeerEntry, reason: string): void {
    const id = p.cfg.address;
    if (!this.#isUp(id)) return;
    // RFC 4724 §4: a NOTIFICATION (e.g. the peer's Cease when it is stopped) ends the session
    // the normal way; only a session lost without one keeps the peer's routes as stale.
    const gr = NOTIFICATION_RECEIVED.test(reason) ? undefined : p.negotiated?.peerGracefulRestart;
    p.negotiated = undefined;
    this.#act(
      gr && gr.restartTime > 0
        ? this.rib.peerDown(id, { gracefulRestart: { restartTime: gr.restartTime } })
        : this.rib.peerDown(id),
    );
  }

  // ---- acting on RIB changes ----

  #act(changes: RibChanges): void {
    for (const [peerId, msgs] of changes.updates) {
      const p = this.#peers.get(peerId);
      if (!p || !this.#isUp(peerId)) continue;
      for (const m of msgs) {
        try {
          p.session.sendUpdate(m);
        } catch (err) {
          // The session went down between the RIB's decision and now; peerDown follows.
          this.#error(err instanceof Error ? err.message : String(err));
          break;
        }
      }
    }
    if (this.kernel && changes.locRib.length > 0) {
      for (const c of changes.locRib) {
        if (c.decision === undefined || c.decision.best.peer.id === LOCAL_PEER_ID)
          this.kernel.delete(c.prefix);
        else this.kernel.set(c.prefix, c.nextHops);
      }
      this.kernel.apply().catch((err: unknown) => this.#error(String(err)));
    }
    this.#armStaleTimer();
  }

  #armStaleTimer(): void {
    if (this.#staleTimer) clearTimeout(this.#staleTimer);
    this.#staleTimer = undefined;
    const at = this.rib.nextStaleDeadline();
    if (at === undefined || this.#stopped) return;
    this.#staleTimer = setTimeout(() => this.#act(this.rib.expireStale()), Math.max(0, at - Date.now()) + 10);
    this.#staleTimer.unref();
  }

  /** The RIB knows the peer (it was Established once) and it is up. */
  #isUp(id: string): boolean {
    return this.#known(id) && this.rib.isUp(id);
  }

  #known(id: string): boolean {
    return this.rib.peers().some((x) => x.id === id);
  }

  #prefix(text: string): CIDR {
    const c = parseCIDR(text);
    if (!c) throw new CalicoError("BGP_BAD_PREFIX", `Cannot originate "${text}": not a prefix (addr/len)`);
    return c;
  }

  #error(msg: string): void {
    this.errors.push(msg);
    if (this.errors.length > 50) this.errors.shift();
  }
}
