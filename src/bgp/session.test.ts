/**
 * Sessions over real loopback TCP: two of ours, or one of ours and a raw socket playing a
 * (mis)behaving peer with the real codec.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import fc from "fast-check";
import { BgpListener } from "./listener.js";
import { connectRetryBackoff, parseId, Session, type SessionOptions } from "./session.js";
import {
  encodeMessage,
  endOfRib,
  isEndOfRib,
  MessageReader,
  MessageType,
  type BgpMessage,
  type NotificationMessage,
  type OpenMessage,
} from "./packet/index.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

async function listener(): Promise<BgpListener> {
  const l = new BgpListener({ port: 0, host: "127.0.0.1" });
  await l.listen();
  cleanups.push(() => l.close());
  return l;
}

function session(opts: Partial<SessionOptions> & { peerPort: number }): Session {
  const s = new Session({
    localAS: 64512,
    peerAS: 64512,
    routerId: parseId("198.18.0.1"),
    peerAddress: "127.0.0.1",
    holdTime: 9,
    connectRetryTime: 1,
    idleHoldTime: 0.1,
    ...opts,
  });
  cleanups.push(() => s.stop());
  return s;
}

/**
 * Hold back outgoing `net.connect`s to `port` (a session's own attempts; the test's raw peers
 * connect elsewhere) until the returned function is called, or with `maxDelayMs` delay each
 * by a random time up to it. Restored after the test.
 */
function holdConnects(port: () => number | undefined, maxDelayMs?: number): () => void {
  const real = net.connect;
  let open = false;
  const held: (() => void)[] = [];
  const patched = (...args: Parameters<typeof net.connect>): net.Socket => {
    const o = args[0] as unknown as net.NetConnectOpts & { port?: number };
    if (o.port !== port()) return real(...args);
    const s = new net.Socket();
    const go = () => s.connect(o);
    if (maxDelayMs !== undefined) setTimeout(go, Math.random() * maxDelayMs);
    else if (open) go();
    else held.push(go);
    return s;
  };
  net.connect = patched as typeof net.connect;
  cleanups.push(() => {
    net.connect = real;
  });
  return () => {
    open = true;
    for (const go of held.splice(0)) go();
  };
}

const encodeEndOfRib = (): BgpMessage => endOfRib(1, 1);

/** Two of our sessions, A active and B passive unless told otherwise. */
async function pair(a: Partial<SessionOptions> = {}, b: Partial<SessionOptions> = {}) {
  const la = await listener();
  const lb = await listener();
  const A = session({ routerId: parseId("198.18.0.1"), peerPort: lb.port, ...a });
  const B = session({ routerId: parseId("198.18.0.2"), peerPort: la.port, passive: true, ...b });
  la.add(A);
  lb.add(B);
  return { A, B, la, lb };
}

/** A raw TCP peer speaking through the real codec. */
class RawPeer {
  readonly got: BgpMessage[] = [];
  closed = false;
  private readonly reader = new MessageReader({ as4: true });
  constructor(readonly socket: net.Socket) {
    socket.on("data", (d) => this.got.push(...this.reader.push(d).messages.map((m) => m.message)));
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => undefined);
    cleanups.push(() => socket.destroy());
  }
  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => resolve(new RawPeer(s)));
      s.once("error", reject);
    });
  }
  send(m: BgpMessage): void {
    this.socket.write(encodeMessage(m, { as4: true }));
  }
  notifications(): NotificationMessage[] {
    return this.got.filter((m): m is NotificationMessage => m.type === MessageType.NOTIFICATION);
  }
}

/** A raw server; `onPeer` runs for each accepted connection. */
async function rawServer(onPeer: (p: RawPeer) => void): Promise<{ port: number; peers: RawPeer[] }> {
  const peers: RawPeer[] = [];
  const srv = net.createServer((s) => {
    const p = new RawPeer(s);
    peers.push(p);
    onPeer(p);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => srv.close(r)));
  const a = srv.address();
  return { port: typeof a === "object" && a ? a.port : 0, peers };
}

/** A loopback port nobody listens on (bound, then released): connects to it are refused. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const a = srv.address();
  await new Promise((r) => srv.close(r));
  return typeof a === "object" && a ? a.port : 0;
}

const open = (o: Partial<OpenMessage> = {}): OpenMessage => ({
  type: MessageType.OPEN,
  version: 4,
  myAS: 64512,
  holdTime: 3,
  bgpId: parseId("198.18.0.9"),
  capabilities: [
    { code: 1, type: "multiprotocol", afi: 1, safi: 1 },
    { code: 65, type: "as4", asn: 64512 },
  ],
  ...o,
});

describe("BGP session over loopback TCP", () => {
  it("establishes between two of our sessions and negotiates hold time and capabilities", async () => {
    const { A, B } = await pair({ holdTime: 9 }, { holdTime: 6 });
    const estA: unknown[] = [];
    A.on("established", (n) => estA.push(n));
    B.start();
    A.start();
    await until("both Established", () => A.state === "Established" && B.state === "Established");
    const n = A.negotiated;
    assert.ok(n);
    assert.equal(n.holdTime, 6);
    assert.equal(n.keepaliveTime, 2);
    assert.equal(n.as4, true);
    assert.equal(n.routeRefresh, true);
    assert.deepEqual(n.families, [{ afi: 1, safi: 1 }]);
    assert.equal(n.peerId, parseId("198.18.0.2"));
    assert.equal(estA.length, 1);
    const states = A.history.map((h) => h.to);
    assert.deepEqual(states, ["Connect", "OpenSent", "OpenConfirm", "Established"]);
    assert.ok(A.status().since instanceof Date);
  });

  it("an established handler can send at once; the peer gets it as an update event (End-of-RIB)", async () => {
    const { A, B } = await pair();
    A.on("established", () => {
      assert.equal(A.state, "Established");
      A.sendUpdate(endOfRib(1, 1));
    });
    const got: boolean[] = [];
    B.on("update", (d) => got.push(isEndOfRib(d.update)));
    B.start();
    A.start();
    await until("B got the End-of-RIB", () => got.length > 0);
    assert.deepEqual(got, [true]);
  });

  it("DelayOpen (RFC 4271 §8.1.1): the delayed side answers the peer's OPEN at once", async () => {
    const { A, B } = await pair({ delayOpenTime: 5 }, {});
    B.start();
    A.start();
    // B (passive, no DelayOpen) sends OPEN on accept; A, waiting, answers it well before 5 s.
    await until("both Established", () => A.state === "Established" && B.state === "Established", 3000);
    assert.ok(
      A.history.some((h) => h.from === "Connect" && h.to === "OpenConfirm"),
      JSON.stringify(A.history),
    );
  });

  it("keepalives keep it up for more than two hold periods (hold 3 s)", async () => {
    const { A, B } = await pair({ holdTime: 3 }, { holdTime: 3 });
    B.start();
    A.start();
    await until("Established", () => A.state === "Established" && B.state === "Established");
    const downs: string[] = [];
    A.on("down", (r) => downs.push(r));
    B.on("down", (r) => downs.push(r));
    await sleep(7000);
    assert.deepEqual(downs, []);
    assert.equal(A.state, "Established");
    assert.equal(B.state, "Established");
  });

  it("hold timer expiry when the peer goes silent: HOLD_TIMER_EXPIRED NOTIFICATION", async () => {
    const la = await listener();
    const A = session({ passive: true, peerPort: 1, holdTime: 3 });
    la.add(A);
    A.start();
    const raw = await RawPeer.connect(la.port);
    raw.send(open({ holdTime: 3 }));
    await until("our OPEN", () => raw.got.some((m) => m.type === MessageType.OPEN));
    raw.send({ type: MessageType.KEEPALIVE });
    await until("Established", () => A.state === "Established");
    const t0 = Date.now();
    await until("the NOTIFICATION", () => raw.notifications().length > 0, 6000);
    const waited = Date.now() - t0;
    assert.ok(waited > 2000 && waited < 4500, `expired after ${waited} ms`);
    assert.deepEqual(
      raw.notifications().map((n) => [n.code, n.subcode]),
      [[4, 0]],
    );
    await until("closed", () => raw.closed);
    assert.match(A.status().lastError ?? "", /hold timer expired/);
    assert.match(A.status().lastDown ?? "", /hold timer expired/, "it left Established for this reason");
  });

  it("a wrong peer AS gets OPEN Message Error / Bad Peer AS and both sides say why", async () => {
    const { A, B } = await pair({ peerAS: 64513 }, {});
    const downA: string[] = [];
    const downB: string[] = [];
    A.on("down", (r) => downA.push(r));
    B.on("down", (r) => downB.push(r));
    B.start();
    A.start();
    await until("both down", () => downA.length > 0 && downB.length > 0);
    assert.match(downA[0] ?? "", /peer AS 64512, configured 64513/);
    assert.match(downB[0] ?? "", /NOTIFICATION: OPEN Message Error \/ Bad Peer AS/i);
    assert.notEqual(A.state, "Established");
  });

  const badOpens: [string, Partial<OpenMessage>, [number, number], RegExp][] = [
    ["version 3", { version: 3 }, [2, 1], /version 3/],
    [
      "wrong AS (2-octet field, no as4 capability)",
      { myAS: 65000, capabilities: [] },
      [2, 2],
      /peer AS 65000/,
    ],
    [
      "wrong AS in the 4-octet capability",
      { myAS: 23456, capabilities: [{ code: 65, type: "as4", asn: 4200000000 }] },
      [2, 2],
      /peer AS 4200000000/,
    ],
    ["hold time 2", { holdTime: 2 }, [2, 6], /hold time 2/],
    ["our own BGP identifier on iBGP", { bgpId: parseId("198.18.0.1") }, [2, 3], /our own/],
    ["BGP identifier 0", { bgpId: 0 }, [2, 3], /BGP identifier 0/],
  ];
  for (const [name, o, [code, subcode], why] of badOpens) {
    it(`OPEN check (RFC 4271 §6.2): ${name} → NOTIFICATION ${code}/${subcode}`, async () => {
      const la = await listener();
      const A = session({ passive: true, peerPort: 1 });
      la.add(A);
      A.start();
      const raw = await RawPeer.connect(la.port);
      raw.send(open(o));
      await until("NOTIFICATION", () => raw.notifications().length > 0);
      assert.deepEqual(
        raw.notifications().map((n) => [n.code, n.subcode]),
        [[code, subcode]],
      );
      assert.match(A.status().lastError ?? "", why);
    });
  }

  it("an UPDATE before the OPEN exchange is an FSM error (5/1, RFC 6608)", async () => {
    const la = await listener();
    const A = session({ passive: true, peerPort: 1 });
    la.add(A);
    A.start();
    const raw = await RawPeer.connect(la.port);
    await until("our OPEN", () => raw.got.length > 0);
    raw.send(endOfRib(1, 1));
    await until("NOTIFICATION", () => raw.notifications().length > 0);
    assert.deepEqual(
      raw.notifications().map((n) => [n.code, n.subcode]),
      [[5, 1]],
    );
  });

  it("route refresh: negotiated, sent, and delivered as an event", async () => {
    const { A, B } = await pair();
    const got: number[] = [];
    B.on("routeRefresh", (m) => got.push(m.afi));
    B.start();
    A.start();
    await until("Established", () => A.state === "Established" && B.state === "Established");
    A.sendRouteRefresh(1, 1);
    await until("B got it", () => got.length > 0);
    assert.deepEqual(got, [1]);
  });

  for (const [remote, keep] of [
    ["198.18.0.200", "the peer's connection"],
    ["198.18.0.0", "our connection"],
  ] as const) {
    it(`collision (RFC 4271 §6.8): remote id ${remote} vs ours 198.18.0.1 keeps ${keep}`, async () => {
      // A connects out to a raw server that answers nothing; meanwhile "the peer" connects in.
      const la = await listener();
      const srv = await rawServer(() => undefined);
      const A = session({ peerPort: srv.port, holdTime: 9 });
      la.add(A);
      A.start();
      await until(
        "A in OpenSent on its outgoing connection",
        () => A.state === "OpenSent" && srv.peers.length === 1,
      );
      const outgoing = srv.peers[0];
      assert.ok(outgoing);
      const incoming = await RawPeer.connect(la.port);
      await until("A's OPEN on the incoming connection", () =>
        incoming.got.some((m) => m.type === MessageType.OPEN),
      );
      incoming.send(open({ bgpId: parseId(remote) }));
      const [loser, winner] = keep === "our connection" ? [incoming, outgoing] : [outgoing, incoming];
      await until(
        "Cease/Connection Collision Resolution on the loser",
        () => loser.notifications().length > 0,
      );
      assert.deepEqual(
        loser.notifications().map((n) => [n.code, n.subcode]),
        [[6, 7]],
      );
      await until("loser closed", () => loser.closed);
      if (winner === outgoing) winner.send(open({ bgpId: parseId(remote) }));
      await until("KEEPALIVE on the winner", () => winner.got.some((m) => m.type === MessageType.KEEPALIVE));
      winner.send({ type: MessageType.KEEPALIVE });
      await until("Established", () => A.state === "Established");
      assert.equal(winner.notifications().length, 0);
    });
  }

  for (const remote of ["198.18.0.200", "198.18.0.0"]) {
    it(`collision (RFC 4271 §6.8): our connect completing after the peer's connection is Established is closed (remote id ${remote})`, async () => {
      // Our outgoing attempt is held back until the peer's incoming connection is Established
      // (as on a loaded machine). It used to replace the Established connection: the peer's
      // OPEN on it was then "BGPOpen in Established", and the peer, still Established on the
      // orphaned connection, refused every reconnect with Cease / Connection Collision.
      const la = await listener();
      const srv = await rawServer((p) => p.send(open({ bgpId: parseId(remote) })));
      const release = holdConnects(() => srv.port);
      const A = session({ peerPort: srv.port, holdTime: 9 });
      la.add(A);
      const updates: unknown[] = [];
      A.on("update", (u) => updates.push(u));
      A.start();
      const incoming = await RawPeer.connect(la.port);
      await until("A's OPEN on the incoming connection", () =>
        incoming.got.some((m) => m.type === MessageType.OPEN),
      );
      incoming.send(open({ bgpId: parseId(remote) }));
      incoming.send({ type: MessageType.KEEPALIVE });
      await until("Established on the incoming connection", () => A.state === "Established");
      release();
      await until("our late connection reached the peer", () => srv.peers.length === 1);
      const late = srv.peers[0]!;
      await until("Cease on the late connection", () => late.notifications().length > 0);
      assert.deepEqual(
        late.notifications().map((n) => [n.code, n.subcode]),
        [[6, 7]],
      );
      await until("late connection closed", () => late.closed);
      // The Established connection is still the session's.
      incoming.send(encodeEndOfRib());
      await until("UPDATE on the Established connection delivered", () => updates.length === 1);
      assert.equal(A.state, "Established");
      assert.equal(incoming.closed, false);
      assert.deepEqual(
        A.history.filter((h) => h.from === "Established"),
        [],
        "never left Established",
      );
    });
  }

  for (const round of [1, 2, 3, 4, 5]) {
    it(`two active sessions connecting at once converge on one Established session (round ${round})`, async () => {
      const { A, B } = await pair({}, { passive: false });
      A.start();
      B.start();
      await until(
        "both Established",
        () => A.state === "Established" && B.state === "Established",
        10000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nA: ${JSON.stringify(A.history)}\nB: ${JSON.stringify(B.history)}`);
      });
      await sleep(1500);
      assert.equal(A.state, "Established");
      assert.equal(B.state, "Established");
    });
  }

  it("reconnects after a drop, backing off exponentially (IdleHoldTimer)", async () => {
    // A peer that answers every connection with Cease and closes.
    const times: number[] = [];
    const srv = await rawServer((p) => {
      times.push(Date.now());
      p.send({ type: MessageType.NOTIFICATION, code: 6, subcode: 4, data: new Uint8Array(0) });
      p.socket.end();
    });
    const A = session({ peerPort: srv.port, idleHoldTime: 0.1 });
    const downs: string[] = [];
    A.on("down", (r) => downs.push(r));
    A.start();
    await until("5 attempts", () => times.length >= 5, 8000);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    // 100, 200, 400, 800 ms (+ connection time)
    for (let i = 1; i < gaps.length; i++)
      assert.ok((gaps[i] ?? 0) > (gaps[i - 1] ?? 0) * 1.5, `gaps ${gaps.join(",")}`);
    assert.match(downs[0] ?? "", /peer sent NOTIFICATION: Cease \/ administrative reset/i);
  });

  it("a refused connect is retried from Active within a fraction of a second, not after IdleHoldTime", async () => {
    // The mesh at start-up: the active side connects before its peer listens. With Calico's
    // timers (ConnectRetry 5 s, IdleHold 5 s) the session used to wait 5 s in Idle.
    const port = await freePort();
    const A = session({ peerPort: port, connectRetryTime: 5, idleHoldTime: 5 });
    A.start();
    await until("connect refused", () => A.history.some((h) => h.from === "Connect"));
    assert.equal(A.state, "Active", JSON.stringify(A.history));
    assert.match(A.status().lastError ?? "", /connection failed: .*ECONNREFUSED.*; retrying/);
    assert.ok(!A.history.some((h) => h.to === "Idle"), "a refused connect is not a peer oscillation");
    const lb = new BgpListener({ port, host: "127.0.0.1" });
    await lb.listen();
    cleanups.push(() => lb.close()); // after B's stop: close() waits for B's connection to end
    const B = session({ routerId: parseId("198.18.0.2"), peerPort: 1, passive: true });
    lb.add(B);
    B.start();
    const t0 = Date.now();
    await until("both Established", () => A.state === "Established" && B.state === "Established", 4000);
    assert.ok(Date.now() - t0 < 2500, `Established ${Date.now() - t0} ms after the peer listened`);
  });

  it("refused connects back off: first retry, doubled per failure, capped at ConnectRetryTime", async () => {
    const port = await freePort();
    const A = session({ peerPort: port, connectRetryTime: 0.4, firstConnectRetryTime: 0.05 });
    const connects: number[] = [];
    A.on("state", (c) => {
      if (c.to === "Connect") connects.push(Date.now());
    });
    A.start();
    await until("7 attempts", () => connects.length >= 7, 8000);
    const gaps = connects.slice(1).map((t, i) => t - (connects[i] ?? 0));
    // 50, 100, 200, 400, 400, 400 ms, each scaled by a jitter in [0.75, 1]: growing, then flat.
    const base = [50, 100, 200, 400, 400, 400];
    gaps.forEach((g, i) => {
      const b = base[i] ?? 400;
      assert.ok(
        g >= b * 0.75 - 5 && g <= b + 150,
        `gap ${i} ${g} ms, want ${b * 0.75}-${b}: ${gaps.join(",")}`,
      );
    });
    assert.ok(!A.history.some((h) => h.to === "Idle"));
  });

  it("in Active after a refused connect, the peer's own connection is accepted (§8.2.2 Active, Event 17)", async () => {
    const la = await listener();
    const A = session({ peerPort: await freePort(), connectRetryTime: 5 });
    la.add(A);
    A.start();
    await until("connect refused", () => A.state === "Active");
    const raw = await RawPeer.connect(la.port);
    await until("our OPEN", () => raw.got.some((m) => m.type === MessageType.OPEN));
    assert.equal(A.state, "OpenSent");
    raw.send(open());
    raw.send({ type: MessageType.KEEPALIVE });
    await until("Established", () => A.state === "Established");
  });

  it("a real session comes back after the peer stops and starts again", async () => {
    const { A, B } = await pair({ idleHoldTime: 0.1 }, {});
    B.start();
    A.start();
    await until("Established", () => A.state === "Established");
    const downs: string[] = [];
    A.on("down", (r) => downs.push(r));
    await B.stop();
    await until("A down", () => downs.length > 0);
    assert.match(downs[0] ?? "", /Cease \/ administrative shutdown/i);
    B.start();
    await until("Established again", () => A.state === "Established" && B.state === "Established", 8000);
  });

  it("garbage from a raw socket gets Message Header Error / Connection Not Synchronized, no crash", async () => {
    const la = await listener();
    const A = session({ passive: true, peerPort: 1, idleHoldTime: 0.1 });
    la.add(A);
    A.start();
    const raw = await RawPeer.connect(la.port);
    await until("our OPEN", () => raw.got.length > 0);
    raw.socket.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until("NOTIFICATION", () => raw.notifications().length > 0);
    assert.deepEqual(
      raw.notifications().map((n) => [n.code, n.subcode]),
      [[1, 1]],
    );
    await until("closed", () => raw.closed);
    assert.match(A.status().lastError ?? "", /marker/);
    await until("back to Active after back-off", () => A.state === "Active");
  });

  it("random bytes after the OPEN never crash the session (fuzz)", async () => {
    const la = await listener();
    const A = session({ passive: true, peerPort: 1, idleHoldTime: 0.01, maxIdleHoldTime: 0.01 });
    la.add(A);
    A.start();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.boolean(),
        async (bytes, withOpen) => {
          await until("Active", () => A.state === "Active");
          const raw = await RawPeer.connect(la.port);
          await until("our OPEN", () => raw.got.length > 0);
          if (withOpen) raw.send(open());
          // A marker then junk, so the length/type checks are reached too.
          raw.socket.write(Buffer.concat([Buffer.alloc(16, 0xff), Buffer.from(bytes)]));
          raw.socket.end();
          await until("A reset", () => raw.closed, 3000);
          raw.socket.destroy();
        },
      ),
      { numRuns: 30 },
    );
    await until("A still alive and listening", () => A.state === "Active");
  });

  it("GTSM (RFC 5082): two sessions with TTL security establish (outgoing socket made with koffi)", async () => {
    const { A, B } = await pair({ ttlSecurity: true }, { ttlSecurity: true });
    B.start();
    A.start();
    await until("both Established", () => A.state === "Established" && B.state === "Established");
  });

  it("GTSM: a peer sending with the default TTL (64) is never heard", async () => {
    const la = await listener();
    const A = session({ passive: true, peerPort: 1, ttlSecurity: true });
    la.add(A);
    A.start();
    const raw = await RawPeer.connect(la.port);
    raw.socket.setNoDelay(true);
    await sleep(200);
    raw.send(open());
    raw.send({ type: MessageType.KEEPALIVE });
    await sleep(1500);
    assert.equal(A.state, "OpenSent", "segments with TTL 64 < 254 must be dropped by the kernel");
  });

  it("TCP-MD5 over loopback: keyed listener + keyed koffi connect establish", async () => {
    const { A, B } = await pair({ password: "loopback-secret" }, { password: "loopback-secret" });
    B.start();
    A.start();
    await until("both Established", () => A.state === "Established" && B.state === "Established");
  });

  it("TCP-MD5: a keyed listener never hears an unkeyed peer", async () => {
    const { A, B } = await pair({}, { password: "only-b-has-it" });
    B.start();
    A.start();
    await sleep(1500);
    assert.notEqual(B.state, "Established");
    assert.ok(!B.history.some((h) => h.to === "OpenSent"), "the kernel drops the unsigned SYN");
  });

  it("the listener refuses an unknown peer with Cease / Connection Rejected", async () => {
    const l = await listener();
    const raw = await RawPeer.connect(l.port);
    await until("NOTIFICATION", () => raw.notifications().length > 0);
    assert.deepEqual(
      raw.notifications().map((n) => [n.code, n.subcode]),
      [[6, 5]],
    );
  });
});

describe("connectRetryBackoff", () => {
  const rows: [failures: number, random: number, seconds: number][] = [
    [1, 0, 0.15], // first retry: 0.2 s × jitter 0.75
    [1, 0.999999, 0.2],
    [2, 0.999999, 0.4],
    [3, 0.999999, 0.8],
    [5, 0.999999, 3.2],
    [6, 0.999999, 5], // capped at ConnectRetryTime
    [40, 0, 3.75],
  ];
  for (const [failures, random, seconds] of rows) {
    it(`failure ${failures}, random ${random}: ${seconds} s`, () => {
      assert.ok(Math.abs(connectRetryBackoff(failures, 0.2, 5, random) - seconds) < 1e-5);
    });
  }
});
