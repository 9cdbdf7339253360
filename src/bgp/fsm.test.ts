import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  defaultFsmContext,
  resolveCollision,
  State,
  step,
  type FsmAction,
  type FsmContext,
  type FsmEvent,
} from "./fsm.js";

const n = (code: number, subcode: number) => ({ code, subcode });
const hdrErr: FsmEvent = { type: "BGPHeaderErr", notification: n(1, 1), error: "bad marker" };
const openErr: FsmEvent = { type: "BGPOpenMsgErr", notification: n(2, 2), error: "bad peer AS" };
const updErr: FsmEvent = { type: "UpdateMsgErr", notification: n(3, 1), error: "malformed" };
const notif: FsmEvent = { type: "NotifMsg", description: "Cease" };
const open: FsmEvent = { type: "BGPOpen", holdTime: 90 };
const special: Partial<Record<FsmEvent["type"], FsmEvent>> = {
  BGPHeaderErr: hdrErr,
  BGPOpenMsgErr: openErr,
  UpdateMsgErr: updErr,
  NotifMsg: notif,
  NotifMsgVerErr: { type: "NotifMsgVerErr", description: "version" },
  BGPOpen: open,
};
// The remaining events carry no data.
const ev = (type: FsmEvent["type"]): FsmEvent => special[type] ?? ({ type } as FsmEvent);

/** The parts of the actions a row asserts on: kinds, and which NOTIFICATION if any. */
function summary(actions: FsmAction[]): string[] {
  const out: string[] = [];
  for (const a of actions) {
    if (a.type === "sendNotification") out.push(`notify ${a.notification.code}/${a.notification.subcode}`);
    else if (a.type === "startTimer")
      out.push(`start ${a.timer}${a.large ? " large" : ""}${a.retryBackoff ? " backoff" : ""}`);
    else if (a.type !== "stopTimer") out.push(a.type);
  }
  return out;
}

type Row = [State, FsmEvent["type"], State, string[], Partial<FsmContext>?];
// RFC 4271 §8.2.2, state by state. Actions list everything but timer stops.
const table: Row[] = [
  // Idle
  ["Idle", "ManualStart", "Connect", ["start connectRetry", "connect"]],
  ["Idle", "AutomaticStart", "Connect", ["start connectRetry", "connect"]],
  ["Idle", "ManualStartPassive", "Active", ["start connectRetry"]],
  ["Idle", "ManualStart", "Active", ["start connectRetry"], { passive: true }],
  ["Idle", "IdleHoldTimerExpires", "Connect", ["start connectRetry", "connect"]],
  ["Idle", "ManualStop", "Idle", []],
  ["Idle", "HoldTimerExpires", "Idle", []],
  ["Idle", "TcpConnectionConfirmed", "Idle", ["dropConnection"]],
  ["Idle", "UpdateMsg", "Idle", []],
  // Connect
  ["Connect", "ManualStart", "Connect", []],
  ["Connect", "ManualStop", "Idle", ["dropConnection"]],
  ["Connect", "ConnectRetryTimerExpires", "Connect", ["dropConnection", "start connectRetry", "connect"]],
  ["Connect", "TcpCrAcked", "OpenSent", ["sendOpen", "start hold large"]],
  ["Connect", "TcpConnectionConfirmed", "OpenSent", ["sendOpen", "start hold large"]],
  ["Connect", "TcpCrAcked", "Connect", ["start delayOpen"], { delayOpen: true }],
  ["Connect", "DelayOpenTimerExpires", "OpenSent", ["sendOpen", "start hold large"]],
  [
    "Connect",
    "BGPOpen",
    "OpenConfirm",
    ["sendOpen", "sendKeepalive", "start keepalive", "start hold"],
    { delayOpen: true, delayOpenTimerRunning: true },
  ],
  // A failed connect retries from Active after a short back-off (fsm.ts header), not via Idle.
  ["Connect", "TcpConnectionFails", "Active", ["dropConnection", "start connectRetry backoff"]],
  [
    "Connect",
    "TcpConnectionFails",
    "Active",
    ["start connectRetry", "dropConnection"],
    { delayOpen: true, delayOpenTimerRunning: true },
  ],
  ["Connect", "BGPHeaderErr", "Idle", ["notify 1/1", "dropConnection"]],
  ["Connect", "NotifMsg", "Idle", ["dropConnection"]],
  ["Connect", "KeepAliveMsg", "Idle", ["dropConnection"]],
  ["Connect", "UpdateMsg", "Idle", ["dropConnection"]],
  // Active
  ["Active", "ManualStop", "Idle", ["dropConnection"]],
  ["Active", "ConnectRetryTimerExpires", "Connect", ["dropConnection", "start connectRetry", "connect"]],
  ["Active", "ConnectRetryTimerExpires", "Active", ["start connectRetry"], { passive: true }],
  ["Active", "TcpConnectionConfirmed", "OpenSent", ["sendOpen", "start hold large"]],
  ["Active", "TcpConnectionFails", "Idle", ["dropConnection"]],
  ["Active", "BGPOpenMsgErr", "Idle", ["notify 2/2", "dropConnection"]],
  ["Active", "UpdateMsg", "Idle", ["dropConnection"]],
  // OpenSent
  ["OpenSent", "ManualStop", "Idle", ["notify 6/2", "dropConnection"]],
  ["OpenSent", "HoldTimerExpires", "Idle", ["notify 4/0", "dropConnection"]],
  ["OpenSent", "TcpConnectionFails", "Active", ["dropConnection", "start connectRetry"]],
  ["OpenSent", "BGPOpen", "OpenConfirm", ["sendKeepalive", "start keepalive", "start hold"]],
  ["OpenSent", "BGPHeaderErr", "Idle", ["notify 1/1", "dropConnection"]],
  ["OpenSent", "BGPOpenMsgErr", "Idle", ["notify 2/2", "dropConnection"]],
  ["OpenSent", "OpenCollisionDump", "Idle", ["notify 6/7", "dropConnection"]],
  ["OpenSent", "NotifMsg", "Idle", ["dropConnection"]],
  ["OpenSent", "NotifMsgVerErr", "Idle", ["dropConnection"]],
  ["OpenSent", "UpdateMsg", "Idle", ["notify 5/1", "dropConnection"]],
  ["OpenSent", "KeepAliveMsg", "Idle", ["notify 5/1", "dropConnection"]],
  ["OpenSent", "ConnectRetryTimerExpires", "Idle", ["notify 5/1", "dropConnection"]],
  ["OpenSent", "KeepaliveTimerExpires", "Idle", ["notify 5/1", "dropConnection"]],
  ["OpenSent", "TcpConnectionConfirmed", "OpenSent", []],
  // OpenConfirm
  ["OpenConfirm", "ManualStop", "Idle", ["notify 6/2", "dropConnection"]],
  ["OpenConfirm", "HoldTimerExpires", "Idle", ["notify 4/0", "dropConnection"]],
  ["OpenConfirm", "KeepaliveTimerExpires", "OpenConfirm", ["sendKeepalive", "start keepalive"]],
  ["OpenConfirm", "TcpConnectionFails", "Idle", ["dropConnection"]],
  ["OpenConfirm", "NotifMsg", "Idle", ["dropConnection"]],
  ["OpenConfirm", "BGPHeaderErr", "Idle", ["notify 1/1", "dropConnection"]],
  ["OpenConfirm", "OpenCollisionDump", "Idle", ["notify 6/7", "dropConnection"]],
  ["OpenConfirm", "KeepAliveMsg", "Established", ["start hold", "established"]],
  ["OpenConfirm", "KeepAliveMsg", "Established", ["established"], { holdTime: 0 }],
  ["OpenConfirm", "UpdateMsg", "Idle", ["notify 5/2", "dropConnection"]],
  ["OpenConfirm", "BGPOpen", "Idle", ["notify 5/2", "dropConnection"]],
  ["OpenConfirm", "ConnectRetryTimerExpires", "Idle", ["notify 5/2", "dropConnection"]],
  // Established
  ["Established", "ManualStop", "Idle", ["notify 6/2", "dropConnection"]],
  ["Established", "HoldTimerExpires", "Idle", ["notify 4/0", "dropConnection"]],
  ["Established", "KeepaliveTimerExpires", "Established", ["sendKeepalive", "start keepalive"]],
  ["Established", "KeepAliveMsg", "Established", ["start hold"]],
  ["Established", "KeepAliveMsg", "Established", [], { holdTime: 0 }],
  ["Established", "UpdateMsg", "Established", ["start hold", "deliverUpdate"]],
  ["Established", "RouteRefreshMsg", "Established", ["start hold", "deliverRouteRefresh"]],
  ["Established", "UpdateMsgErr", "Idle", ["notify 3/1", "dropConnection"]],
  ["Established", "TcpConnectionFails", "Idle", ["dropConnection"]],
  ["Established", "NotifMsg", "Idle", ["dropConnection"]],
  ["Established", "OpenCollisionDump", "Idle", ["notify 6/7", "dropConnection"]],
  ["Established", "BGPOpen", "Idle", ["notify 5/3", "dropConnection"]],
  ["Established", "TcpConnectionConfirmed", "Established", []],
];

describe("BGP FSM (RFC 4271 §8.2.2)", () => {
  for (const [from, type, to, actions, ctx] of table) {
    const name = `${from} + ${type}${ctx ? ` ${JSON.stringify(ctx)}` : ""} → ${to} [${actions.join(", ")}]`;
    it(name, () => {
      const t = step(from, ev(type), { ...defaultFsmContext, ...ctx });
      assert.equal(t.next, to, t.reason);
      assert.deepEqual(summary(t.actions), actions);
      assert.ok(t.reason.length > 0);
    });
  }

  it("the BGPOpen hold time decides the timers: 0 means no hold and no keepalive timer", () => {
    const t = step("OpenSent", { type: "BGPOpen", holdTime: 0 });
    assert.deepEqual(summary(t.actions), ["sendKeepalive"]);
  });

  it("the hold-timer-expired reason and NOTIFICATION (RFC 4271 §6.5)", () => {
    const t = step("Established", { type: "HoldTimerExpires" });
    assert.match(t.reason, /hold timer expired/);
    assert.deepEqual(t.actions[0], { type: "sendNotification", notification: { code: 4, subcode: 0 } });
  });

  it("every transition to Idle drops the connection and stops every timer", () => {
    const states = Object.values(State);
    const types: FsmEvent["type"][] = [
      "ManualStart",
      "ManualStop",
      "AutomaticStart",
      "ManualStartPassive",
      "AutomaticStartPassive",
      "AutomaticStop",
      "ConnectRetryTimerExpires",
      "HoldTimerExpires",
      "KeepaliveTimerExpires",
      "DelayOpenTimerExpires",
      "IdleHoldTimerExpires",
      "TcpCrAcked",
      "TcpConnectionConfirmed",
      "TcpConnectionFails",
      "BGPOpen",
      "BGPHeaderErr",
      "BGPOpenMsgErr",
      "OpenCollisionDump",
      "NotifMsgVerErr",
      "NotifMsg",
      "KeepAliveMsg",
      "UpdateMsg",
      "UpdateMsgErr",
      "RouteRefreshMsg",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...states),
        fc.constantFrom(...types),
        fc.record({
          passive: fc.boolean(),
          delayOpen: fc.boolean(),
          delayOpenTimerRunning: fc.boolean(),
          holdTime: fc.constantFrom(0, 3, 90),
        }),
        (s, t, ctx) => {
          const tr = step(s, ev(t), ctx);
          if (tr.next === "Idle" && s !== "Idle") {
            assert.ok(tr.actions.some((a) => a.type === "dropConnection"));
            for (const timer of ["connectRetry", "hold", "keepalive", "delayOpen"]) {
              assert.ok(
                tr.actions.some((a) => a.type === "stopTimer" && a.timer === timer),
                `${s}+${t} stops ${timer}`,
              );
            }
          }
          // A NOTIFICATION is never answered with one.
          if (t === "NotifMsg" || t === "NotifMsgVerErr") {
            assert.ok(!tr.actions.some((a) => a.type === "sendNotification"));
          }
        },
      ),
    );
  });
});

describe("collision resolution (RFC 4271 §6.8)", () => {
  it("keeps the connection initiated by the higher BGP Identifier", () => {
    assert.equal(resolveCollision(0xc6120002, 0xc6120001), "keep-outgoing");
    assert.equal(resolveCollision(0xc6120001, 0xc6120002), "keep-incoming");
    // unsigned comparison: 255.0.0.1 > 10.0.0.1
    assert.equal(resolveCollision(0xff000001, 0x0a000001), "keep-outgoing");
  });
  it("both sides agree on which connection survives", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.integer({ min: 1, max: 0xffffffff }),
        (a, b) => {
          fc.pre(a !== b);
          // A's outgoing is B's incoming: A keeps outgoing iff B keeps incoming.
          assert.equal(
            resolveCollision(a, b) === "keep-outgoing",
            resolveCollision(b, a) === "keep-incoming",
          );
        },
      ),
    );
  });
});
