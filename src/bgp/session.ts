/**
 * One BGP peer session: the RFC 4271 §8 FSM (fsm.ts) driven by a TCP connection, the timers
 * of §10 and the codec. It connects out (unless passive), takes connections from the listener
 * (listener.ts), checks the peer's OPEN (§6.2), negotiates capabilities, resolves connection
 * collisions (§6.8) and reports what happened in words.
 *
 * Invariants: every byte from the peer goes through the codec; any decode error becomes the
 * NOTIFICATION the codec names, then the session resets and restarts after a back-off
 * (IdleHoldTimer, doubling up to `maxIdleHoldTime`). Nothing a peer sends can throw out of here.
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import {
  State,
  resolveCollision,
  step,
  type FsmAction,
  type FsmContext,
  type FsmEvent,
  type Notification,
  type Timer,
} from "./fsm.js";
import { connectSocket, fdOf, setGtsm, type PendingConnect } from "./md5.js";
import {
  AFI,
  AS_TRANS,
  BGP_PORT,
  BGP_VERSION,
  CeaseSubcode,
  ErrorCode,
  MessageType,
  OpenSubcode,
  SAFI,
  type AfiSafi,
  type BgpMessage,
  type Capability,
  type CodecContext,
  type DecodedUpdate,
  type OpenMessage,
  type RouteRefreshMessage,
  type UpdateMessage,
} from "./packet/types.js";
import { packetCodec, type MessageStream, type SessionCodec } from "./session-codec.js";

export interface SessionOptions {
  localAS: number;
  peerAS: number;
  /** Our BGP Identifier (router id) as an unsigned 32-bit number. */
  routerId: number;
  peerAddress: string;
  /** The peer's TCP port (default 179). */
  peerPort?: number;
  /** Source address for outgoing connections. */
  localAddress?: string;
  /** Seconds; proposed in our OPEN (default 90, 0 = no keepalives; 1 and 2 are illegal). */
  holdTime?: number;
  /** Seconds (default 30). Fractions allowed, for tests. */
  connectRetryTime?: number;
  /** After a connect that failed (refused, unreachable): the first retry in seconds (default
   * 0.2), doubled per consecutive failure up to `connectRetryTime`, with jitter (RFC 4271 §10). */
  firstConnectRetryTime?: number;
  /** RFC 4271 §8.1.1 DelayOpen: seconds to wait for the peer's OPEN before sending ours (0 = off). */
  delayOpenTime?: number;
  /** First automatic-restart back-off in seconds (default 1), doubled per failure up to max. */
  idleHoldTime?: number;
  maxIdleHoldTime?: number;
  /** Never connect out; wait for the peer. */
  passive?: boolean;
  /** Address families to offer (default: unicast of the peer address's family). */
  families?: AfiSafi[];
  /** Offer route refresh (RFC 2918); default true. */
  routeRefresh?: boolean;
  /** Offer graceful restart (RFC 4724). */
  gracefulRestart?: { restartTime: number; restarting?: boolean; forwardingPreserved?: boolean };
  /** TCP MD5 (RFC 2385) key. */
  password?: string;
  /** GTSM (RFC 5082): TTL 255 out, minimum TTL 254 in. */
  ttlSecurity?: boolean;
  /** Default: the real codec (src/bgp/packet). */
  codec?: SessionCodec;
}

/** What both sides agreed on (RFC 4271 §4.2, RFC 5492). */
export interface Negotiated {
  peerAS: number;
  peerId: number;
  /** Seconds, min of both; 0 = no hold timer and no keepalives. */
  holdTime: number;
  keepaliveTime: number;
  /** Both sides speak 4-octet AS (RFC 6793). */
  as4: boolean;
  /** Families both sides advertised. */
  families: AfiSafi[];
  routeRefresh: boolean;
  /** The peer's graceful-restart capability, if it sent one. */
  peerGracefulRestart?: Extract<Capability, { type: "graceful-restart" }>;
  localAddress: string;
  remoteAddress: string;
  peerOpen: OpenMessage;
}

export interface StateChange {
  at: Date;
  from: State;
  to: State;
  reason: string;
}

export interface SessionStatus {
  peerAddress: string;
  state: State;
  /** When the current state was entered. */
  since: Date;
  /** The last reason the session went down, in words (a refused connect counts). */
  lastError?: string;
  /** Why the session last left Established; kept across the failed connects that follow. */
  lastDown?: string;
  negotiated?: Negotiated;
}

export interface SessionEvents {
  state: [StateChange];
  established: [Negotiated];
  update: [DecodedUpdate];
  routeRefresh: [RouteRefreshMessage];
  down: [string];
}

/** RFC 4271 §8.2.2: hold timer while waiting for OPEN, "a large value" (4 minutes suggested). */
export const LARGE_HOLD_TIME = 240;
/** Seconds before the first retry of a connect that failed (SessionOptions.firstConnectRetryTime). */
export const FIRST_CONNECT_RETRY_TIME = 0.2;

/**
 * Seconds until the next connect after `failures` consecutive failed connects (1 = the first):
 * `first`, doubled per further failure, at most `max`; scaled by a jitter factor in [0.75, 1]
 * (RFC 4271 §10 asks for jitter on the ConnectRetryTimer). `random` is in [0, 1).
 */
export function connectRetryBackoff(failures: number, first: number, max: number, random: number): number {
  const base = Math.min(max, first * 2 ** Math.max(0, failures - 1));
  return base * (0.75 + 0.25 * random);
}
const HISTORY = 50;

type Direction = "outgoing" | "incoming";

/** One TCP connection and its stream decoder. */
class Connection {
  readonly reader: MessageStream;
  /** Read by the reader on every message: as4 flips once both OPENs are seen. */
  readonly ctx: CodecContext = { as4: false };
  closed = false;
  peerOpen: OpenMessage | undefined;
  constructor(
    readonly socket: net.Socket,
    readonly direction: Direction,
    codec: SessionCodec,
  ) {
    this.reader = codec.reader(this.ctx);
  }
  write(bytes: Uint8Array): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(bytes);
  }
  /** Close after what was written is flushed; force it after a second. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.removeAllListeners("data");
    this.socket.on("error", () => undefined);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

const normalize = (addr: string | undefined): string =>
  (addr ?? "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");

export class Session extends EventEmitter<SessionEvents> {
  readonly opts: SessionOptions;
  private readonly codec: SessionCodec;
  private stateNow: State = State.Idle;
  private sinceNow = new Date();
  private lastErrorNow: string | undefined;
  private lastDownNow: string | undefined;
  private negotiatedNow: Negotiated | undefined;
  private primary: Connection | undefined;
  private candidate: Connection | undefined;
  private pendingConnect: PendingConnect | net.Socket | undefined;
  private readonly timers = new Map<Timer, NodeJS.Timeout>();
  private idleHold: NodeJS.Timeout | undefined;
  private backoff = 0;
  /** Consecutive failed connects since the start or the last Established (connectRetryBackoff). */
  private connectFailures = 0;
  private stopped = true;
  private pendingUpdate: DecodedUpdate | undefined;
  private pendingRefresh: RouteRefreshMessage | undefined;
  /** Recent state changes, oldest first (for `calicoctl node status` and debugging). */
  readonly history: StateChange[] = [];

  constructor(opts: SessionOptions) {
    super();
    this.opts = opts;
    this.codec = opts.codec ?? packetCodec;
  }

  get state(): State {
    return this.stateNow;
  }

  get peerAddress(): string {
    return normalize(this.opts.peerAddress);
  }

  get negotiated(): Negotiated | undefined {
    return this.negotiatedNow;
  }

  status(): SessionStatus {
    const s: SessionStatus = { peerAddress: this.peerAddress, state: this.stateNow, since: this.sinceNow };
    if (this.lastErrorNow !== undefined) s.lastError = this.lastErrorNow;
    if (this.lastDownNow !== undefined) s.lastDown = this.lastDownNow;
    if (this.negotiatedNow) s.negotiated = this.negotiatedNow;
    return s;
  }

  /** ManualStart (passive peers: ManualStart_with_PassiveTcpEstablishment). */
  start(): void {
    this.stopped = false;
    this.connectFailures = 0;
    this.fire({ type: this.opts.passive ? "ManualStartPassive" : "ManualStart" });
  }

  /** ManualStop: Cease/Administrative Shutdown if a session was up, then stay Idle. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.idleHold) clearTimeout(this.idleHold);
    this.idleHold = undefined;
    const sock = this.primary?.socket;
    this.fire({ type: "ManualStop" });
    if (!sock || sock.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      sock.once("close", () => resolve());
      setTimeout(resolve, 1500).unref();
    });
  }

  /** Send an UPDATE (only in Established). */
  sendUpdate(update: UpdateMessage): void {
    if (this.stateNow !== State.Established) {
      throw new Error(
        `Cannot send UPDATE to ${this.peerAddress}: session is ${this.stateNow}, not Established`,
      );
    }
    this.send({ ...update });
  }

  /** Ask the peer to resend its routes (RFC 2918), if it supports route refresh. */
  sendRouteRefresh(afi: number = AFI.IPV4, safi: number = SAFI.UNICAST): void {
    if (this.stateNow !== State.Established || !this.negotiatedNow?.routeRefresh) {
      throw new Error(`Cannot send ROUTE-REFRESH to ${this.peerAddress}: not Established or not negotiated`);
    }
    this.send({ type: MessageType.ROUTE_REFRESH, afi, safi, subtype: 0 });
  }

  /**
   * A connection from the peer, handed over by the listener. Returns false if refused (the
   * caller has nothing more to do; a NOTIFICATION was sent and the socket closed).
   */
  acceptConnection(socket: net.Socket): boolean {
    if (this.stateNow === State.Idle && !this.stopped && this.idleHold !== undefined) {
      // Waiting out the restart back-off while the peer is ready now: start at once and take
      // its connection. Refusing it here let two active speakers whose back-offs lined up
      // refuse each other indefinitely.
      clearTimeout(this.idleHold);
      this.idleHold = undefined;
      this.fire({ type: "IdleHoldTimerExpires" });
    }
    if (this.opts.ttlSecurity) {
      const fd = fdOf(socket);
      if (fd !== undefined) setGtsm(fd, net.isIPv6(normalize(socket.remoteAddress)) ? 6 : 4);
    }
    const conn = new Connection(socket, "incoming", this.codec);
    const refuse = (subcode: number) => {
      socket.on("error", () => undefined);
      conn.write(
        this.encode({
          type: MessageType.NOTIFICATION,
          code: ErrorCode.CEASE,
          subcode,
          data: new Uint8Array(0),
        }),
      );
      conn.close();
      return false;
    };
    switch (this.stateNow) {
      case State.Idle:
        return refuse(CeaseSubcode.CONNECTION_REJECTED);
      case State.Established:
        // RFC 4271 §6.8: a collision with an Established connection closes the new one.
        return refuse(CeaseSubcode.CONNECTION_COLLISION_RESOLUTION);
      case State.Connect:
      case State.Active:
        // Our own attempt (if any) keeps going: if it completes too, §6.8 picks one of the two.
        // Cancelling it here would let two speakers that connect at once each drop the
        // connection the other just accepted, forever in step.
        if (this.primary) this.primary.close();
        this.attach(conn);
        this.primary = conn;
        this.fire({ type: "TcpConnectionConfirmed" });
        return true;
      case State.OpenSent:
      case State.OpenConfirm:
        // Keep both until the BGP Identifier decides (§6.8); the peer gets our OPEN here too.
        this.candidate?.close();
        this.attach(conn);
        this.candidate = conn;
        conn.write(this.encode(this.ourOpen()));
        return true;
    }
  }

  // ---- FSM plumbing ----

  private ctx(): FsmContext {
    return {
      passive: this.opts.passive ?? false,
      delayOpen: (this.opts.delayOpenTime ?? 0) > 0,
      delayOpenTimerRunning: this.timers.has("delayOpen"),
      holdTime: this.negotiatedNow?.holdTime ?? this.opts.holdTime ?? 90,
    };
  }

  private fire(ev: FsmEvent): void {
    const from = this.stateNow;
    const t = step(from, ev, this.ctx());
    // Socket and timer actions first; events to our listeners once the new state is in place,
    // so an "established" handler can send UPDATEs at once.
    const later: FsmAction[] = [];
    for (const a of t.actions) {
      if (a.type === "established" || a.type === "deliverUpdate" || a.type === "deliverRouteRefresh")
        later.push(a);
      else this.perform(a, ev);
    }
    // A failed connection that does not go through Idle (a refused connect retried from Active)
    // still shows as the session's last error.
    if (ev.type === "TcpConnectionFails" && t.next !== State.Idle) this.lastErrorNow = t.reason;
    if (t.next !== from) {
      this.stateNow = t.next;
      this.sinceNow = new Date();
      const change: StateChange = { at: this.sinceNow, from, to: t.next, reason: t.reason };
      this.history.push(change);
      if (this.history.length > HISTORY) this.history.shift();
      this.emit("state", change);
      if (from === State.Established) this.lastDownNow = t.reason;
      if (t.next === State.Idle) this.wentDown(t.reason);
    }
    for (const a of later) this.perform(a, ev);
  }

  private wentDown(reason: string): void {
    this.lastErrorNow = reason;
    this.negotiatedNow = undefined;
    this.candidate?.close();
    this.candidate = undefined;
    this.emit("down", reason);
    if (this.stopped) return;
    // IdleHoldTimer (RFC 4271 §8.1.1, DampPeerOscillations): exponential back-off.
    const base = this.opts.idleHoldTime ?? 1;
    const delay = Math.min(this.opts.maxIdleHoldTime ?? 60, base * 2 ** this.backoff);
    this.backoff++;
    if (this.idleHold) clearTimeout(this.idleHold);
    this.idleHold = setTimeout(() => {
      this.idleHold = undefined;
      if (!this.stopped) this.fire({ type: "IdleHoldTimerExpires" });
    }, delay * 1000);
  }

  private perform(a: FsmAction, ev: FsmEvent): void {
    switch (a.type) {
      case "connect":
        this.connectOut();
        return;
      case "dropConnection":
        this.cancelConnect();
        this.primary?.close();
        this.primary = undefined;
        return;
      case "sendOpen":
        this.primary?.write(this.encode(this.ourOpen()));
        return;
      case "sendKeepalive":
        this.send({ type: MessageType.KEEPALIVE });
        return;
      case "sendNotification":
        this.send({
          type: MessageType.NOTIFICATION,
          code: a.notification.code,
          subcode: a.notification.subcode,
          data: a.notification.data ?? new Uint8Array(0),
        });
        return;
      case "startTimer":
        this.startTimer(a.timer, a.large ?? false, a.retryBackoff ?? false);
        return;
      case "stopTimer": {
        const t = this.timers.get(a.timer);
        if (t) clearTimeout(t);
        this.timers.delete(a.timer);
        return;
      }
      case "established":
        this.backoff = 0;
        this.connectFailures = 0;
        this.lastErrorNow = undefined;
        if (this.negotiatedNow) this.emit("established", this.negotiatedNow);
        return;
      case "deliverUpdate":
        if (this.pendingUpdate) this.emit("update", this.pendingUpdate);
        return;
      case "deliverRouteRefresh":
        if (this.pendingRefresh) this.emit("routeRefresh", this.pendingRefresh);
        return;
    }
    void ev;
  }

  private startTimer(timer: Timer, large: boolean, retryBackoff = false): void {
    const old = this.timers.get(timer);
    if (old) clearTimeout(old);
    const n = this.negotiatedNow;
    let seconds: number;
    switch (timer) {
      case "connectRetry": {
        const max = this.opts.connectRetryTime ?? 30;
        if (!retryBackoff) {
          seconds = max;
          break;
        }
        this.connectFailures++;
        const first = Math.min(max, this.opts.firstConnectRetryTime ?? FIRST_CONNECT_RETRY_TIME);
        seconds = connectRetryBackoff(this.connectFailures, first, max, Math.random());
        break;
      }
      case "hold":
        seconds = large ? LARGE_HOLD_TIME : (n?.holdTime ?? this.opts.holdTime ?? 90);
        break;
      case "keepalive":
        seconds = n?.keepaliveTime ?? 30;
        break;
      case "delayOpen":
        seconds = this.opts.delayOpenTime ?? 0;
        break;
    }
    const events: Record<Timer, FsmEvent> = {
      connectRetry: { type: "ConnectRetryTimerExpires" },
      hold: { type: "HoldTimerExpires" },
      keepalive: { type: "KeepaliveTimerExpires" },
      delayOpen: { type: "DelayOpenTimerExpires" },
    };
    this.timers.set(
      timer,
      setTimeout(() => {
        this.timers.delete(timer);
        this.fire(events[timer]);
      }, seconds * 1000),
    );
  }

  // ---- connections ----

  private connectOut(): void {
    if (this.opts.passive) return;
    this.cancelConnect();
    const port = this.opts.peerPort ?? BGP_PORT;
    const fail = (err: Error) => {
      if (this.pendingConnect !== pending) return;
      this.pendingConnect = undefined;
      // Once the peer's own connection has taken over (OpenSent), our attempt failing is moot.
      if (this.stateNow === State.Connect) this.fire({ type: "TcpConnectionFails", error: err.message });
    };
    const connected = (socket: net.Socket) => {
      if (this.pendingConnect !== pending) {
        socket.destroy();
        return;
      }
      this.pendingConnect = undefined;
      const conn = new Connection(socket, "outgoing", this.codec);
      if (this.stateNow === State.Established) {
        // RFC 4271 §6.8: a collision with an Established connection closes the new one. Our
        // attempt was still in flight when the peer's connection reached Established; it must
        // not replace that connection (it did once: the Established one was orphaned, the
        // peer's OPEN on this one was "BGPOpen in Established", and the peer, still
        // Established on the orphan, refused every reconnect with Cease / collision).
        this.collisionCease(conn);
        return;
      }
      this.attach(conn);
      if (this.primary && this.stateNow !== State.Idle) {
        // The peer's connection came in while ours was in flight: keep both, let the BGP
        // Identifiers decide (§6.8). Both speakers then agree on the survivor.
        this.candidate?.close();
        this.candidate = conn;
        conn.write(this.encode(this.ourOpen()));
        return;
      }
      this.primary = conn;
      this.fire({ type: "TcpCrAcked" });
    };
    let pending: PendingConnect | net.Socket;
    if (this.opts.password || this.opts.ttlSecurity) {
      const opts: Parameters<typeof connectSocket>[0] = { remote: this.peerAddress, port };
      if (this.opts.localAddress) opts.local = this.opts.localAddress;
      if (this.opts.password) opts.md5Key = this.opts.password;
      if (this.opts.ttlSecurity) opts.gtsm = true;
      const p = connectSocket(opts);
      pending = p;
      this.pendingConnect = p;
      p.socket.then(connected, fail);
    } else {
      const o: net.NetConnectOpts = { host: this.peerAddress, port };
      if (this.opts.localAddress) o.localAddress = this.opts.localAddress;
      const s = net.connect(o);
      pending = s;
      this.pendingConnect = s;
      s.once("error", fail);
      s.once("connect", () => {
        s.removeListener("error", fail);
        connected(s);
      });
    }
  }

  private cancelConnect(): void {
    const p = this.pendingConnect;
    this.pendingConnect = undefined;
    if (!p) return;
    if (p instanceof net.Socket) {
      p.on("error", () => undefined);
      p.destroy();
    } else p.cancel();
  }

  private attach(conn: Connection): void {
    conn.socket.setNoDelay(true);
    conn.socket.on("data", (chunk: Buffer) => this.onData(conn, chunk));
    conn.socket.on("error", (err) => this.onClose(conn, err.message));
    conn.socket.on("close", () => this.onClose(conn, "connection closed by the peer"));
  }

  private onClose(conn: Connection, why: string): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.socket.destroy();
    if (conn === this.candidate) {
      this.candidate = undefined;
    } else if (conn === this.primary) {
      this.primary = undefined;
      this.fire({ type: "TcpConnectionFails", error: why });
    }
  }

  private codecCtx(): CodecContext {
    return this.primary?.ctx ?? { as4: false };
  }

  private onData(conn: Connection, chunk: Buffer): void {
    let result: ReturnType<MessageStream["push"]>;
    try {
      result = conn.reader.push(chunk);
    } catch (err) {
      result = { messages: [], error: err };
    }
    for (const decoded of result.messages) {
      if (conn.closed || (conn !== this.primary && conn !== this.candidate)) return;
      try {
        this.onMessage(conn, decoded.message, decoded.update);
      } catch (err) {
        // A bug of ours, or a listener throwing: reset the session rather than crash the agent.
        const why = `internal error handling a type ${decoded.message.type} message: ${(err as Error).message}`;
        if (conn === this.primary) {
          this.fire({
            type: "AutomaticStop",
            notification: { code: ErrorCode.CEASE, subcode: CeaseSubcode.OUT_OF_RESOURCES },
          });
          this.lastErrorNow = why;
        } else conn.close();
        return;
      }
    }
    if (result.error !== undefined && !conn.closed && (conn === this.primary || conn === this.candidate)) {
      this.decodeFailed(conn, result.error);
    }
  }

  private decodeFailed(conn: Connection, err: unknown): void {
    const n = this.codec.notificationOf(err) ?? { code: ErrorCode.CEASE, subcode: 0 };
    const error = `bad message from ${this.peerAddress}: ${(err as Error).message ?? String(err)}`;
    if (conn !== this.primary) {
      conn.write(
        this.encode({
          type: MessageType.NOTIFICATION,
          code: n.code,
          subcode: n.subcode,
          data: n.data ?? new Uint8Array(0),
        }),
      );
      conn.close();
      if (conn === this.candidate) this.candidate = undefined;
      return;
    }
    const type =
      n.code === ErrorCode.MESSAGE_HEADER
        ? "BGPHeaderErr"
        : n.code === ErrorCode.OPEN_MESSAGE
          ? "BGPOpenMsgErr"
          : "UpdateMsgErr";
    this.fire({ type, notification: n, error });
  }

  private onMessage(conn: Connection, msg: BgpMessage, update: DecodedUpdate | undefined): void {
    if (msg.type === MessageType.OPEN) {
      this.onOpen(conn, msg);
      return;
    }
    if (conn !== this.primary) {
      // Candidate connection before the collision is resolved: only OPEN or NOTIFICATION matter.
      if (msg.type === MessageType.NOTIFICATION) {
        conn.close();
        this.candidate = undefined;
      }
      return;
    }
    switch (msg.type) {
      case MessageType.KEEPALIVE:
        this.fire({ type: "KeepAliveMsg" });
        return;
      case MessageType.UPDATE:
        this.pendingUpdate = update ?? { update: msg };
        this.fire({ type: "UpdateMsg" });
        this.pendingUpdate = undefined;
        return;
      case MessageType.ROUTE_REFRESH:
        this.pendingRefresh = msg;
        this.fire({ type: "RouteRefreshMsg" });
        this.pendingRefresh = undefined;
        return;
      case MessageType.NOTIFICATION: {
        const description = this.codec.describeNotification(msg);
        if (msg.code === ErrorCode.OPEN_MESSAGE && msg.subcode === OpenSubcode.UNSUPPORTED_VERSION_NUMBER) {
          this.fire({ type: "NotifMsgVerErr", description });
        } else this.fire({ type: "NotifMsg", description });
        return;
      }
    }
  }

  private onOpen(conn: Connection, open: OpenMessage): void {
    const bad = this.checkOpen(open);
    if (bad) {
      if (conn === this.primary)
        this.fire({ type: "BGPOpenMsgErr", notification: bad.notification, error: bad.error });
      else {
        conn.write(
          this.encode({
            type: MessageType.NOTIFICATION,
            ...bad.notification,
            data: bad.notification.data ?? new Uint8Array(0),
          }),
        );
        conn.close();
        this.candidate = undefined;
      }
      return;
    }
    conn.peerOpen = open;
    // RFC 4271 §6.8: two connections to the same peer; the BGP Identifier decides — unless
    // one is Established already: then the other one closes (as BIRD does). Letting the
    // identifiers replace an Established connection would renegotiate a session under the
    // RIB's feet without a "down".
    if (this.stateNow === State.Established && conn === this.candidate) {
      this.candidate = undefined;
      this.collisionCease(conn);
      return;
    }
    const other = conn === this.primary ? this.candidate : this.primary;
    if (other && this.candidate) {
      const keep =
        resolveCollision(this.opts.routerId, open.bgpId) === "keep-outgoing" ? "outgoing" : "incoming";
      // Both the same direction (the peer reconnected): the newer one wins.
      const winner =
        this.primary?.direction === keep && this.candidate.direction !== keep ? this.primary : this.candidate;
      const loser = winner === this.primary ? this.candidate : this.primary;
      const notification = {
        type: MessageType.NOTIFICATION,
        code: ErrorCode.CEASE,
        subcode: CeaseSubcode.CONNECTION_COLLISION_RESOLUTION,
        data: new Uint8Array(0),
      } as const;
      loser?.write(this.encode(notification));
      loser?.close();
      this.candidate = undefined;
      if (winner !== this.primary && winner) {
        // The candidate takes over: it is in OpenSent (our OPEN went out on accept).
        this.primary = winner;
        const change: StateChange = {
          at: new Date(),
          from: this.stateNow,
          to: State.OpenSent,
          reason: "connection collision: kept the peer's connection (RFC 4271 §6.8)",
        };
        if (this.stateNow !== State.OpenSent) {
          this.stateNow = State.OpenSent;
          this.sinceNow = change.at;
          this.negotiatedNow = undefined;
          this.history.push(change);
          this.emit("state", change);
        }
        this.startTimer("hold", true);
        const ka = this.timers.get("keepalive");
        if (ka) clearTimeout(ka);
        this.timers.delete("keepalive");
        if (!winner.peerOpen) return;
        open = winner.peerOpen;
      } else if (conn !== this.primary) {
        return;
      }
    } else if (conn !== this.primary) {
      return;
    }
    this.negotiatedNow = this.negotiate(open, this.primary?.socket);
    if (this.primary) this.primary.ctx.as4 = this.negotiatedNow.as4;
    this.fire({ type: "BGPOpen", holdTime: this.negotiatedNow.holdTime });
  }

  // ---- OPEN ----

  private families(): AfiSafi[] {
    if (this.opts.families) return this.opts.families;
    return [{ afi: net.isIPv6(this.peerAddress) ? AFI.IPV6 : AFI.IPV4, safi: SAFI.UNICAST }];
  }

  ourOpen(): OpenMessage {
    const caps: Capability[] = this.families().map((f) => ({
      code: 1,
      type: "multiprotocol",
      afi: f.afi,
      safi: f.safi,
    }));
    if (this.opts.routeRefresh ?? true) caps.push({ code: 2, type: "route-refresh" });
    const gr = this.opts.gracefulRestart;
    if (gr) {
      caps.push({
        code: 64,
        type: "graceful-restart",
        restarting: gr.restarting ?? false,
        restartTime: gr.restartTime,
        families: this.families().map((f) => ({
          ...f,
          forwardingPreserved: gr.forwardingPreserved ?? false,
        })),
      });
    }
    caps.push({ code: 65, type: "as4", asn: this.opts.localAS });
    return {
      type: MessageType.OPEN,
      version: BGP_VERSION,
      myAS: this.opts.localAS > 0xffff ? AS_TRANS : this.opts.localAS,
      holdTime: this.opts.holdTime ?? 90,
      bgpId: this.opts.routerId >>> 0,
      capabilities: caps,
    };
  }

  /** RFC 4271 §6.2 checks; the NOTIFICATION to send when the OPEN is unacceptable. */
  checkOpen(open: OpenMessage): { notification: Notification; error: string } | undefined {
    const who = `OPEN from ${this.peerAddress} rejected`;
    const err = (subcode: number, error: string, data?: Uint8Array) => ({
      notification: data
        ? { code: ErrorCode.OPEN_MESSAGE, subcode, data }
        : { code: ErrorCode.OPEN_MESSAGE, subcode },
      error: `${who}: ${error}`,
    });
    if (open.version !== BGP_VERSION) {
      return err(
        OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
        `version ${open.version}, we speak 4`,
        new Uint8Array([0, BGP_VERSION]),
      );
    }
    const as4 = open.capabilities.find((c) => c.type === "as4");
    const peerAS = as4 && as4.type === "as4" ? as4.asn : open.myAS;
    if (peerAS !== this.opts.peerAS) {
      return err(OpenSubcode.BAD_PEER_AS, `peer AS ${peerAS}, configured ${this.opts.peerAS}`);
    }
    if (open.holdTime === 1 || open.holdTime === 2) {
      return err(
        OpenSubcode.UNACCEPTABLE_HOLD_TIME,
        `hold time ${open.holdTime} s (must be 0 or at least 3)`,
      );
    }
    const id = open.bgpId >>> 0;
    const ibgp = peerAS === this.opts.localAS;
    if (id === 0 || id === 0xffffffff || (ibgp && id === this.opts.routerId >>> 0)) {
      return err(
        OpenSubcode.BAD_BGP_IDENTIFIER,
        `BGP identifier ${formatId(id)}${id === this.opts.routerId >>> 0 ? " is our own" : " is not valid"}`,
      );
    }
    return undefined;
  }

  negotiate(open: OpenMessage, socket?: net.Socket): Negotiated {
    const hold = Math.min(open.holdTime, this.opts.holdTime ?? 90);
    const theirMp = open.capabilities.flatMap((c) =>
      c.type === "multiprotocol" ? [{ afi: c.afi, safi: c.safi }] : [],
    );
    // RFC 4760 §1: no multiprotocol capability means IPv4 unicast only.
    const theirs = theirMp.length > 0 ? theirMp : [{ afi: AFI.IPV4, safi: SAFI.UNICAST }];
    const families = this.families().filter((f) => theirs.some((t) => t.afi === f.afi && t.safi === f.safi));
    const as4cap = open.capabilities.find((c) => c.type === "as4");
    const gr = open.capabilities.find((c) => c.type === "graceful-restart");
    const n: Negotiated = {
      peerAS: as4cap?.type === "as4" ? as4cap.asn : open.myAS,
      peerId: open.bgpId >>> 0,
      holdTime: hold,
      keepaliveTime: hold === 0 ? 0 : Math.max(1, Math.floor(hold / 3)),
      as4: as4cap !== undefined,
      families,
      routeRefresh:
        (this.opts.routeRefresh ?? true) && open.capabilities.some((c) => c.type === "route-refresh"),
      localAddress: normalize(socket?.localAddress),
      remoteAddress: normalize(socket?.remoteAddress),
      peerOpen: open,
    };
    if (gr?.type === "graceful-restart") n.peerGracefulRestart = gr;
    return n;
  }

  /** Cease / Connection Collision Resolution on a connection that lost (§6.8), then close it. */
  private collisionCease(conn: Connection): void {
    conn.socket.on("error", () => undefined);
    conn.write(
      this.encode({
        type: MessageType.NOTIFICATION,
        code: ErrorCode.CEASE,
        subcode: CeaseSubcode.CONNECTION_COLLISION_RESOLUTION,
        data: new Uint8Array(0),
      }),
    );
    conn.close();
  }

  private encode(msg: BgpMessage): Uint8Array {
    return this.codec.encode(msg, this.codecCtx());
  }

  private send(msg: BgpMessage): void {
    this.primary?.write(this.encode(msg));
  }
}

export function formatId(id: number): string {
  return [24, 16, 8, 0].map((s) => (id >>> s) & 0xff).join(".");
}

/** "198.18.0.1" → 0xc6120001. */
export function parseId(text: string): number {
  const p = text.split(".").map(Number);
  if (p.length !== 4 || p.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new Error(`Invalid BGP identifier "${text}": expected a dotted quad`);
  }
  return (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
}
