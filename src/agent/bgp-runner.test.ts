import { test } from "node:test";
import assert from "node:assert/strict";
import type { PeerConfig, SpeakerConfig, SpeakerStatus } from "../bgp/speaker.js";
import { State } from "../bgp/fsm.js";
import { resourceKey } from "../datastore/keys.js";
import { parseCIDR } from "../api/net.js";
import { blockKey, newBlock, serializeBlock } from "../ipam/block.js";
import { BgpRunner, type SpeakerLike } from "./bgp-runner.js";
import { createLogger, nullLogger } from "./log.js";

/** Records what the runner asks of it. */
class FakeSpeaker implements SpeakerLike {
  readonly calls: string[] = [];
  readonly peers = new Map<string, PeerConfig>();
  readonly prefixes = new Set<string>();
  constructor(
    readonly cfg: SpeakerConfig,
    private readonly failStart: boolean,
  ) {}
  start(): Promise<void> {
    this.calls.push("start");
    return this.failStart
      ? Promise.reject(new Error("listen EADDRINUSE: address already in use :::179"))
      : Promise.resolve();
  }
  stop(): Promise<void> {
    this.calls.push("stop");
    return Promise.resolve();
  }
  addPeer(cfg: PeerConfig): void {
    this.calls.push(`add ${cfg.address}`);
    this.peers.set(cfg.address, cfg);
  }
  removePeer(address: string): Promise<void> {
    this.calls.push(`remove ${address}`);
    this.peers.delete(address);
    return Promise.resolve();
  }
  originate(prefix: string): void {
    this.calls.push(`originate ${prefix}`);
    this.prefixes.add(prefix);
  }
  withdraw(prefix: string): void {
    this.calls.push(`withdraw ${prefix}`);
    this.prefixes.delete(prefix);
  }
  status(): SpeakerStatus {
    return {
      asn: this.cfg.asn,
      routerId: this.cfg.routerId,
      locRibSize: 0,
      peers: [...this.peers.values()].map((p) => ({
        address: p.address,
        asn: p.asn,
        type: "ibgp",
        state: State.Active,
        since: new Date(0),
        info: "connect: Connection refused",
        routesReceived: 0,
      })),
    };
  }
}

const node = (name: string, v4: string | undefined, asNumber?: number) => ({
  key: resourceKey("nodes", name),
  value: {
    metadata: { name },
    spec: v4 === undefined ? {} : { bgp: { ipv4Address: `${v4}/24`, ...(asNumber ? { asNumber } : {}) } },
  },
});
const block = (cidr: string, owner: string) => {
  const b = newBlock(parseCIDR(cidr)!, `host:${owner}`, 1);
  return { key: blockKey(b.cidr), value: JSON.parse(serializeBlock(b)) as unknown };
};

function setup(failFirstStarts = 0) {
  const made: FakeSpeaker[] = [];
  let fails = failFirstStarts;
  const runner = new BgpRunner({
    nodename: "h1",
    log: nullLogger(),
    debounceMs: 1,
    retryMs: 20,
    createSpeaker: (cfg) => {
      const s = new FakeSpeaker(cfg, fails-- > 0);
      made.push(s);
      return s;
    },
  });
  return { runner, made };
}

test("nothing happens before InSync; then one speaker with the mesh peers and our blocks", async () => {
  const { runner, made } = setup();
  runner.onUpdates([node("h1", "198.18.0.1"), node("h2", "198.18.0.2"), block("198.19.1.0/26", "h1")]);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(made.length, 0);
  runner.onInSync();
  await runner.settled();
  assert.equal(made.length, 1);
  const sp = made[0]!;
  assert.equal(sp.cfg.asn, 64512);
  assert.equal(sp.cfg.routerId, "198.18.0.1");
  assert.deepEqual(sp.cfg.listen, { host: "::", port: 179 });
  assert.equal(sp.cfg.gracefulRestartTime, 120);
  assert.deepEqual(sp.calls, ["add 198.18.0.2", "originate 198.19.1.0/26", "start"]);
  const st = runner.status();
  assert.equal(st.enabled, true);
  assert.deepEqual(
    st.peers.map((p) => [p.address, p.type, p.state, p.info]),
    [["198.18.0.2", "node-to-node mesh", "Active", "connect: Connection refused"]],
  );
  assert.deepEqual(st.originated, ["198.19.1.0/26"]);
  await runner.stop();
  assert.deepEqual(sp.calls.slice(-1), ["stop"]);
});

test("changes are applied in place: peers added/removed, blocks originated/withdrawn, a changed peer re-added", async () => {
  const { runner, made } = setup();
  runner.onUpdates([node("h1", "198.18.0.1"), node("h2", "198.18.0.2")]);
  runner.onInSync();
  await runner.settled();
  const sp = made[0]!;
  sp.calls.length = 0;
  runner.onUpdates([node("h3", "198.18.0.3"), block("198.19.2.0/26", "h1"), block("198.19.3.0/26", "h2")]);
  await runner.settled();
  assert.deepEqual(sp.calls, ["add 198.18.0.3", "originate 198.19.2.0/26"]);
  sp.calls.length = 0;
  runner.onUpdates([
    { key: resourceKey("nodes", "h2"), value: null },
    { key: block("198.19.2.0/26", "h1").key, value: null },
    node("h3", "198.18.0.3", 65003),
  ]);
  await runner.settled();
  assert.deepEqual(sp.calls, [
    "remove 198.18.0.2",
    "remove 198.18.0.3",
    "add 198.18.0.3",
    "withdraw 198.19.2.0/26",
  ]);
  assert.equal(sp.peers.get("198.18.0.3")?.asn, 65003);
  assert.equal(made.length, 1, "no restart for peer and prefix changes");
  await runner.stop();
});

test("a change of our AS or router ID restarts the speaker; losing our address stops it", async () => {
  const { runner, made } = setup();
  runner.onUpdates([node("h1", "198.18.0.1"), node("h2", "198.18.0.2")]);
  runner.onInSync();
  await runner.settled();
  runner.onUpdates([
    { key: resourceKey("bgpconfigurations", "default"), value: { spec: { asNumber: 65000 } } },
  ]);
  await runner.settled();
  assert.equal(made.length, 2);
  assert.deepEqual(made[0]!.calls.slice(-1), ["stop"]);
  assert.equal(made[1]!.cfg.asn, 65000);
  runner.onUpdates([node("h1", undefined)]);
  await runner.settled();
  assert.deepEqual(made[1]!.calls.slice(-1), ["stop"]);
  const st = runner.status();
  assert.match(st.reason ?? "", /Node "h1" has no BGP address/);
  assert.deepEqual(st.peers, []);
  await runner.stop();
});

test("a speaker that cannot start is reported and retried; the agent carries on", async () => {
  const { runner, made } = setup(1);
  runner.onUpdates([node("h1", "198.18.0.1"), node("h2", "198.18.0.2")]);
  runner.onInSync();
  await runner.settled();
  assert.match(runner.status().reason ?? "", /BGP speaker cannot start: listen EADDRINUSE/);
  const end = Date.now() + 2000;
  while (made.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  await runner.settled();
  assert.equal(made.length, 2);
  assert.deepEqual(made[0]!.calls, ["add 198.18.0.2", "start", "stop"]);
  assert.equal(runner.status().reason, undefined);
  assert.equal(runner.status().peers.length, 1);
  await runner.stop();
});

test("disabled from outside (--no-bgp): no speaker, the reason in status", async () => {
  const made: SpeakerConfig[] = [];
  const runner = new BgpRunner({
    nodename: "h1",
    log: nullLogger(),
    disabledReason: "disabled with --no-bgp",
    createSpeaker: (cfg) => {
      made.push(cfg);
      return new FakeSpeaker(cfg, false);
    },
  });
  runner.onUpdates([node("h1", "198.18.0.1"), node("h2", "198.18.0.2")]);
  runner.onInSync();
  await runner.settled();
  assert.equal(made.length, 0);
  assert.deepEqual(runner.status(), {
    enabled: false,
    reason: "disabled with --no-bgp",
    peers: [],
    originated: [],
    problems: [],
    errors: [],
  });
});

test("graceful stop: peers offered GR get nothing (the sessions drop with the process), the others a Cease", async () => {
  const { runner, made } = setup();
  runner.onUpdates([
    node("h1", "198.18.0.1"),
    node("h2", "198.18.0.2"),
    {
      key: resourceKey("bgppeers", "tor"),
      value: { spec: { peerIP: "198.18.0.254", asNumber: 65100, maxRestartTime: "0s" } },
    },
  ]);
  runner.onInSync();
  await runner.settled();
  const sp = made[0]!;
  sp.calls.length = 0;
  await runner.stop({ graceful: true });
  assert.deepEqual(sp.calls, ["remove 198.18.0.254"]);

  // Graceful restart off everywhere: a normal stop, even when asked to be graceful.
  const b = setup();
  b.runner.onUpdates([
    node("h1", "198.18.0.1"),
    node("h2", "198.18.0.2"),
    { key: resourceKey("bgpconfigurations", "default"), value: { spec: { nodeMeshMaxRestartTime: "0s" } } },
  ]);
  b.runner.onInSync();
  await b.runner.settled();
  await b.runner.stop({ graceful: true });
  assert.deepEqual(b.made[0]!.calls.slice(-1), ["stop"]);
});

test("session state changes are logged; a reason repeated before Established goes to debug", async () => {
  const lines: { level: string; msg: string; to?: string; reason?: string }[] = [];
  const made: FakeSpeaker[] = [];
  const runner = new BgpRunner({
    nodename: "h1",
    log: createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l) as (typeof lines)[number]) }),
    debounceMs: 1,
    createSpeaker: (cfg) => {
      const s = new FakeSpeaker(cfg, false);
      made.push(s);
      return s;
    },
  });
  runner.onUpdates([node("h1", "198.18.0.1"), node("h2", "198.18.0.2")]);
  runner.onInSync();
  await runner.settled();
  const tell = made[0]!.cfg.onSessionState!;
  const change = (from: State, to: State, reason: string) => ({ at: new Date(), from, to, reason });
  const refused = "connection failed: connect ECONNREFUSED 198.18.0.2:179; retrying";
  const again = "ConnectRetry expired; connecting again";
  for (let i = 0; i < 3; i++) {
    tell("198.18.0.2", change(State.Connect, State.Active, refused));
    tell("198.18.0.2", change(State.Active, State.Connect, again));
  }
  tell("198.18.0.2", change(State.OpenConfirm, State.Established, "KEEPALIVE received"));
  tell("198.18.0.2", change(State.Connect, State.Active, refused));
  const got = lines.filter((l) => l.msg === "BGP session state").map((l) => `${l.level} ${l.to}`);
  assert.deepEqual(got, [
    "info Active",
    "info Connect",
    "debug Active",
    "debug Connect",
    "debug Active",
    "debug Connect",
    "info Established",
    "info Active",
  ]);
  await runner.stop();
});
