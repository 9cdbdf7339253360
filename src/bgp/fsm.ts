/**
 * The BGP finite state machine of RFC 4271 §8, as pure data: one function per state takes an
 * event (§8.1 names) and returns the next state, the actions to perform and a reason in words.
 * No I/O and no clocks here; `session.ts` runs the timers, the socket and the codec and feeds
 * events in. OPEN validation and connection-collision detection (§6.8) need the configuration
 * and both connections, so the session does them and hands the FSM their outcome
 * (`BGPOpen`, `BGPOpenMsgErr`, `OpenCollisionDump`).
 *
 * Departures from the letter of §8.2.2, each on purpose:
 * - a received NOTIFICATION never gets a NOTIFICATION back (the peer has already closed);
 * - a passive peer (`ctx.passive`) never connects out: its ConnectRetryTimer only re-arms;
 * - the automatic restart after an error is the IdleHoldTimer of §8.1.1 (DampPeerOscillations)
 *   with exponential back-off, run by the session;
 * - an outgoing connection that fails in Connect (refused, unreachable) goes to Active and
 *   connects again when the ConnectRetryTimer, started as a short growing back-off
 *   (`retryBackoff`), expires — RFC 1771's Connect state, and what BIRD and FRR do — not to
 *   Idle: a peer that is not listening yet is not an oscillating peer, and damping it held a
 *   mesh session down for the whole IdleHoldTime after its peer came up. Active keeps
 *   accepting the peer's connection meanwhile (§8.2.2 Active, Event 17).
 */
import { CeaseSubcode, ErrorCode } from "./packet/types.js";

export const State = {
  Idle: "Idle",
  Connect: "Connect",
  Active: "Active",
  OpenSent: "OpenSent",
  OpenConfirm: "OpenConfirm",
  Established: "Established",
} as const;
export type State = (typeof State)[keyof typeof State];

/** A NOTIFICATION to send or that was received (RFC 4271 §4.5). */
export interface Notification {
  code: number;
  subcode: number;
  data?: Uint8Array;
}

/** RFC 6608: FSM error subcodes (code 5) by the state the unexpected message arrived in. */
export const FsmSubcode = {
  UNSPECIFIED: 0,
  UNEXPECTED_IN_OPENSENT: 1,
  UNEXPECTED_IN_OPENCONFIRM: 2,
  UNEXPECTED_IN_ESTABLISHED: 3,
} as const;

/** RFC 4271 §8.1 events (numbers in comments). Timer events carry nothing; message events
 * carry what the session learned while decoding. */
export type FsmEvent =
  | { type: "ManualStart" } // 1
  | { type: "ManualStop" } // 2
  | { type: "AutomaticStart" } // 3
  | { type: "ManualStartPassive" } // 4
  | { type: "AutomaticStartPassive" } // 5
  | { type: "AutomaticStop"; notification?: Notification } // 8
  | { type: "ConnectRetryTimerExpires" } // 9
  | { type: "HoldTimerExpires" } // 10
  | { type: "KeepaliveTimerExpires" } // 11
  | { type: "DelayOpenTimerExpires" } // 12
  | { type: "IdleHoldTimerExpires" } // 13
  | { type: "TcpCrAcked" } // 16: our outgoing connection completed
  | { type: "TcpConnectionConfirmed" } // 17: the peer's connection was accepted
  | { type: "TcpConnectionFails"; error?: string } // 18
  /** 19/20: a valid OPEN; `holdTime` is the negotiated one (0 = no hold/keepalive timers). */
  | { type: "BGPOpen"; holdTime: number }
  | { type: "BGPHeaderErr"; notification: Notification; error: string } // 21
  | { type: "BGPOpenMsgErr"; notification: Notification; error: string } // 22
  | { type: "OpenCollisionDump" } // 23
  | { type: "NotifMsgVerErr"; description: string } // 24
  | { type: "NotifMsg"; description: string } // 25
  | { type: "KeepAliveMsg" } // 26
  | { type: "UpdateMsg" } // 27
  | { type: "UpdateMsgErr"; notification: Notification; error: string } // 28
  /** RFC 2918: not in RFC 4271's list; valid only in Established. */
  | { type: "RouteRefreshMsg" };
export type FsmEventType = FsmEvent["type"];

export type Timer = "connectRetry" | "hold" | "keepalive" | "delayOpen";

export type FsmAction =
  | { type: "connect" }
  | { type: "dropConnection" }
  | { type: "sendOpen" }
  | { type: "sendKeepalive" }
  | { type: "sendNotification"; notification: Notification }
  /**
   * `large`: the hold timer while waiting for OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
   * `retryBackoff`: the ConnectRetryTimer after a failed connect: the session's short delay,
   * doubling per consecutive failure up to ConnectRetryTime.
   */
  | { type: "startTimer"; timer: Timer; large?: boolean; retryBackoff?: boolean }
  | { type: "stopTimer"; timer: Timer }
  | { type: "established" }
  | { type: "deliverUpdate" }
  | { type: "deliverRouteRefresh" };

export interface Transition {
  next: State;
  actions: FsmAction[];
  reason: string;
}

/** What the FSM needs to know beyond its state. */
export interface FsmContext {
  /** Passive peer: wait for the peer to connect, never connect out. */
  passive: boolean;
  /** RFC 4271 §8.1.1 DelayOpen attribute. */
  delayOpen: boolean;
  /** Whether the session's DelayOpenTimer is running now. */
  delayOpenTimerRunning: boolean;
  /** The negotiated hold time (seconds; 0 = none) once OPEN was received. */
  holdTime: number;
}

export const defaultFsmContext: FsmContext = {
  passive: false,
  delayOpen: false,
  delayOpenTimerRunning: false,
  holdTime: 90,
};

// ---- helpers ----

const start = (timer: Timer, large?: boolean): FsmAction =>
  large ? { type: "startTimer", timer, large } : { type: "startTimer", timer };
const stop = (timer: Timer): FsmAction => ({ type: "stopTimer", timer });
const notify = (code: number, subcode: number, data?: Uint8Array): FsmAction => ({
  type: "sendNotification",
  notification: data ? { code, subcode, data } : { code, subcode },
});
const stopAll: FsmAction[] = [stop("connectRetry"), stop("hold"), stop("keepalive"), stop("delayOpen")];
const toIdle = (reason: string, ...first: FsmAction[]): Transition => ({
  next: State.Idle,
  actions: [...first, ...stopAll, { type: "dropConnection" }],
  reason,
});
const stay = (state: State, reason: string, actions: FsmAction[] = []): Transition => ({
  next: state,
  actions,
  reason,
});

/** Timers once OPEN is agreed: none at all when the negotiated hold time is 0 (RFC 4271 §4.4). */
function holdAndKeepalive(ctx: { holdTime: number }): FsmAction[] {
  return ctx.holdTime === 0 ? [stop("hold"), stop("keepalive")] : [start("keepalive"), start("hold")];
}

const fsmError = (subcode: number, state: State, ev: FsmEvent): Transition =>
  toIdle(`FSM error: ${ev.type} in ${state}`, notify(ErrorCode.FSM, subcode));

const adminShutdown = (state: State): Transition =>
  toIdle(
    `stopped by the operator in ${state}`,
    notify(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN),
  );

function automaticStop(ev: { notification?: Notification }): Transition {
  const n = ev.notification ?? { code: ErrorCode.CEASE, subcode: 0 };
  return toIdle("stopped automatically", { type: "sendNotification", notification: n });
}

/** Events the "not yet talking BGP" states (Connect, Active) share. */
function tcpSuccess(state: State, ctx: FsmContext, how: string): Transition {
  if (ctx.delayOpen) {
    return stay(state, `${how}; waiting DelayOpenTime before OPEN`, [
      stop("connectRetry"),
      start("delayOpen"),
    ]);
  }
  return {
    next: State.OpenSent,
    actions: [stop("connectRetry"), { type: "sendOpen" }, start("hold", true)],
    reason: `${how}; OPEN sent`,
  };
}

function openWhileDelayed(ctx: FsmContext, ev: { holdTime: number }): Transition {
  return {
    next: State.OpenConfirm,
    actions: [
      stop("connectRetry"),
      stop("delayOpen"),
      { type: "sendOpen" },
      { type: "sendKeepalive" },
      ...holdAndKeepalive(ev),
    ],
    reason: "OPEN received during DelayOpen",
  };
}

// ---- one function per state (RFC 4271 §8.2.2) ----

export function idle(ctx: FsmContext, ev: FsmEvent): Transition {
  const passiveStart = (why: string): Transition => ({
    next: State.Active,
    actions: [start("connectRetry")],
    reason: `${why}; waiting for the peer to connect`,
  });
  const activeStart = (why: string): Transition => ({
    next: State.Connect,
    actions: [start("connectRetry"), { type: "connect" }],
    reason: `${why}; connecting`,
  });
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
      return ctx.passive ? passiveStart(ev.type) : activeStart(ev.type);
    case "ManualStartPassive":
    case "AutomaticStartPassive":
      return passiveStart(ev.type);
    case "IdleHoldTimerExpires":
      return ctx.passive ? passiveStart("restart after back-off") : activeStart("restart after back-off");
    case "TcpCrAcked":
    case "TcpConnectionConfirmed":
      // A connection while Idle is refused (§8.2.2 Idle: "refuses all incoming connections").
      return stay(State.Idle, `${ev.type} while Idle: connection refused`, [{ type: "dropConnection" }]);
    case "ManualStop":
    case "AutomaticStop":
    case "ConnectRetryTimerExpires":
    case "HoldTimerExpires":
    case "KeepaliveTimerExpires":
    case "DelayOpenTimerExpires":
    case "TcpConnectionFails":
    case "BGPOpen":
    case "BGPHeaderErr":
    case "BGPOpenMsgErr":
    case "OpenCollisionDump":
    case "NotifMsgVerErr":
    case "NotifMsg":
    case "KeepAliveMsg":
    case "UpdateMsg":
    case "UpdateMsgErr":
    case "RouteRefreshMsg":
      return stay(State.Idle, `${ev.type} ignored in Idle`);
  }
}

/** Connect and Active differ only in connect-retry and connection-failure handling. */
function connectOrActive(state: "Connect" | "Active", ctx: FsmContext, ev: FsmEvent): Transition {
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
    case "ManualStartPassive":
    case "AutomaticStartPassive":
    case "IdleHoldTimerExpires":
      return stay(state, `${ev.type} ignored in ${state}`);
    case "ManualStop":
      return toIdle(`stopped by the operator in ${state}`);
    case "AutomaticStop":
      return toIdle(`stopped automatically in ${state}`);
    case "ConnectRetryTimerExpires":
      if (ctx.passive)
        return stay(state, "ConnectRetry expired; passive peer, still waiting", [start("connectRetry")]);
      return {
        next: State.Connect,
        actions: [{ type: "dropConnection" }, stop("delayOpen"), start("connectRetry"), { type: "connect" }],
        reason: "ConnectRetry expired; connecting again",
      };
    case "DelayOpenTimerExpires":
      return {
        next: State.OpenSent,
        actions: [{ type: "sendOpen" }, start("hold", true)],
        reason: "DelayOpen expired; OPEN sent",
      };
    case "TcpCrAcked":
      return tcpSuccess(state, ctx, "connected to the peer");
    case "TcpConnectionConfirmed":
      return tcpSuccess(state, ctx, "accepted the peer's connection");
    case "TcpConnectionFails":
      if (state === State.Connect && ctx.delayOpenTimerRunning) {
        return {
          next: State.Active,
          actions: [start("connectRetry"), stop("delayOpen"), { type: "dropConnection" }],
          reason: `connection failed${ev.error ? `: ${ev.error}` : ""}`,
        };
      }
      if (state === State.Connect) {
        // Our connect failed: retry after the back-off, listening meanwhile (see the header).
        return {
          next: State.Active,
          actions: [
            { type: "dropConnection" },
            stop("delayOpen"),
            { type: "startTimer", timer: "connectRetry", retryBackoff: true },
          ],
          reason: `connection failed${ev.error ? `: ${ev.error}` : ""}; retrying`,
        };
      }
      return toIdle(`connection failed${ev.error ? `: ${ev.error}` : ""}`);
    case "BGPOpen":
      if (ctx.delayOpenTimerRunning) return openWhileDelayed(ctx, ev);
      return toIdle(
        `OPEN received in ${state} before our OPEN`,
        notify(ErrorCode.FSM, FsmSubcode.UNSPECIFIED),
      );
    case "BGPHeaderErr":
    case "BGPOpenMsgErr":
      return toIdle(ev.error, { type: "sendNotification", notification: ev.notification });
    case "NotifMsgVerErr":
    case "NotifMsg":
      return toIdle(`peer sent NOTIFICATION: ${ev.description}`);
    case "HoldTimerExpires":
    case "KeepaliveTimerExpires":
    case "OpenCollisionDump":
    case "KeepAliveMsg":
    case "UpdateMsg":
    case "UpdateMsgErr":
    case "RouteRefreshMsg":
      return toIdle(`${ev.type} in ${state}`);
  }
}

export function connect(ctx: FsmContext, ev: FsmEvent): Transition {
  return connectOrActive(State.Connect, ctx, ev);
}

export function active(ctx: FsmContext, ev: FsmEvent): Transition {
  return connectOrActive(State.Active, ctx, ev);
}

export function openSent(ctx: FsmContext, ev: FsmEvent): Transition {
  const S = State.OpenSent;
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
    case "ManualStartPassive":
    case "AutomaticStartPassive":
    case "IdleHoldTimerExpires":
    case "TcpCrAcked":
    case "TcpConnectionConfirmed":
      // A second connection in OpenSent is the collision case: the session tracks it (§6.8).
      return stay(S, `${ev.type} ignored in ${S}`);
    case "ManualStop":
      return adminShutdown(S);
    case "AutomaticStop":
      return automaticStop(ev);
    case "HoldTimerExpires":
      return toIdle("hold timer expired waiting for OPEN", notify(ErrorCode.HOLD_TIMER_EXPIRED, 0));
    case "TcpConnectionFails":
      return {
        next: State.Active,
        actions: [{ type: "dropConnection" }, stop("hold"), start("connectRetry")],
        reason: `connection lost in ${S}${ev.error ? `: ${ev.error}` : ""}`,
      };
    case "BGPOpen":
      return {
        next: State.OpenConfirm,
        actions: [
          stop("delayOpen"),
          stop("connectRetry"),
          { type: "sendKeepalive" },
          ...holdAndKeepalive(ev),
        ],
        reason: "OPEN received",
      };
    case "BGPHeaderErr":
    case "BGPOpenMsgErr":
    case "UpdateMsgErr":
      return toIdle(ev.error, { type: "sendNotification", notification: ev.notification });
    case "OpenCollisionDump":
      return toIdle(
        "connection collision: this connection lost (RFC 4271 §6.8)",
        notify(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION),
      );
    case "NotifMsgVerErr":
    case "NotifMsg":
      return toIdle(`peer sent NOTIFICATION: ${ev.description}`);
    case "ConnectRetryTimerExpires":
    case "KeepaliveTimerExpires":
    case "DelayOpenTimerExpires":
    case "KeepAliveMsg":
    case "UpdateMsg":
    case "RouteRefreshMsg":
      return fsmError(FsmSubcode.UNEXPECTED_IN_OPENSENT, S, ev);
  }
}

export function openConfirm(ctx: FsmContext, ev: FsmEvent): Transition {
  const S = State.OpenConfirm;
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
    case "ManualStartPassive":
    case "AutomaticStartPassive":
    case "IdleHoldTimerExpires":
    case "TcpCrAcked":
    case "TcpConnectionConfirmed":
      return stay(S, `${ev.type} ignored in ${S}`);
    case "ManualStop":
      return adminShutdown(S);
    case "AutomaticStop":
      return automaticStop(ev);
    case "HoldTimerExpires":
      return toIdle("hold timer expired", notify(ErrorCode.HOLD_TIMER_EXPIRED, 0));
    case "KeepaliveTimerExpires":
      return stay(S, "keepalive sent", [{ type: "sendKeepalive" }, start("keepalive")]);
    case "TcpConnectionFails":
      return toIdle(`connection lost in ${S}${ev.error ? `: ${ev.error}` : ""}`);
    case "NotifMsgVerErr":
    case "NotifMsg":
      return toIdle(`peer sent NOTIFICATION: ${ev.description}`);
    case "BGPHeaderErr":
    case "BGPOpenMsgErr":
    case "UpdateMsgErr":
      return toIdle(ev.error, { type: "sendNotification", notification: ev.notification });
    case "OpenCollisionDump":
      return toIdle(
        "connection collision: this connection lost (RFC 4271 §6.8)",
        notify(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION),
      );
    case "KeepAliveMsg":
      return {
        next: State.Established,
        actions: [...(ctx.holdTime === 0 ? [] : [start("hold")]), { type: "established" }],
        reason: "KEEPALIVE received",
      };
    case "ConnectRetryTimerExpires":
    case "DelayOpenTimerExpires":
    case "BGPOpen":
    case "UpdateMsg":
    case "RouteRefreshMsg":
      return fsmError(FsmSubcode.UNEXPECTED_IN_OPENCONFIRM, S, ev);
  }
}

export function established(ctx: FsmContext, ev: FsmEvent): Transition {
  const S = State.Established;
  const restartHold: FsmAction[] = ctx.holdTime === 0 ? [] : [start("hold")];
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
    case "ManualStartPassive":
    case "AutomaticStartPassive":
    case "IdleHoldTimerExpires":
    case "TcpCrAcked":
    case "TcpConnectionConfirmed":
      return stay(S, `${ev.type} ignored in ${S}`);
    case "ManualStop":
      return adminShutdown(S);
    case "AutomaticStop":
      return automaticStop(ev);
    case "HoldTimerExpires":
      return toIdle("hold timer expired", notify(ErrorCode.HOLD_TIMER_EXPIRED, 0));
    case "KeepaliveTimerExpires":
      return stay(S, "keepalive sent", [{ type: "sendKeepalive" }, start("keepalive")]);
    case "TcpConnectionFails":
      return toIdle(`connection lost${ev.error ? `: ${ev.error}` : ""}`);
    case "NotifMsgVerErr":
    case "NotifMsg":
      return toIdle(`peer sent NOTIFICATION: ${ev.description}`);
    case "KeepAliveMsg":
      return stay(S, "KEEPALIVE received", restartHold);
    case "UpdateMsg":
      return stay(S, "UPDATE received", [...restartHold, { type: "deliverUpdate" }]);
    case "RouteRefreshMsg":
      return stay(S, "ROUTE-REFRESH received", [...restartHold, { type: "deliverRouteRefresh" }]);
    case "BGPHeaderErr":
    case "BGPOpenMsgErr":
    case "UpdateMsgErr":
      return toIdle(ev.error, { type: "sendNotification", notification: ev.notification });
    case "OpenCollisionDump":
      return toIdle(
        "connection collision: this connection lost (RFC 4271 §6.8)",
        notify(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION),
      );
    case "ConnectRetryTimerExpires":
    case "DelayOpenTimerExpires":
    case "BGPOpen":
      return fsmError(FsmSubcode.UNEXPECTED_IN_ESTABLISHED, S, ev);
  }
}

const byState: Record<State, (ctx: FsmContext, ev: FsmEvent) => Transition> = {
  Idle: idle,
  Connect: connect,
  Active: active,
  OpenSent: openSent,
  OpenConfirm: openConfirm,
  Established: established,
};

/** One step of the FSM. */
export function step(state: State, ev: FsmEvent, ctx: FsmContext = defaultFsmContext): Transition {
  return byState[state](ctx, ev);
}

/**
 * RFC 4271 §6.8: of two connections between the same pair of speakers, keep the one initiated
 * by the speaker with the higher BGP Identifier (compared as unsigned 32-bit integers).
 */
export function resolveCollision(localId: number, remoteId: number): "keep-outgoing" | "keep-incoming" {
  return localId >>> 0 > remoteId >>> 0 ? "keep-outgoing" : "keep-incoming";
}
