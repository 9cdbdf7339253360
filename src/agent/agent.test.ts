import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Agent, type AgentOptions } from "./agent.js";
import { AgentMetrics } from "./metrics.js";
import { healthHandler, listen, metricsHandler } from "./http.js";
import { SyncStatus } from "./syncer.js";
import { FakeCalculator, FakeDataplane } from "./testing/fakes.js";
import { resolveConfig } from "./felix-config.js";

const wep = (n: string) => `/calico/resources/v3/projectcalico.org/workloadendpoints/ns/${n}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function setup(opts: Partial<AgentOptions> = {}) {
  const calc = new FakeCalculator();
  const dp = new FakeDataplane(calc);
  const metrics = new AgentMetrics();
  const fatal: Error[] = [];
  const agent = new Agent({
    calc,
    dataplane: dp,
    metrics,
    debounceMs: 2,
    resyncIntervalMs: 0,
    retryBackoff: { initialMs: 2, maxMs: 10 },
    onFatal: (e) => fatal.push(e),
    ...opts,
  });
  return { calc, dp, metrics, agent, fatal };
}

describe("agent loop", () => {
  test("nothing is applied before InSync; the first apply after it is full", async () => {
    const { dp, agent } = setup();
    agent.onStatus(SyncStatus.RESYNC_IN_PROGRESS);
    agent.onUpdates([{ key: wep("a"), value: {} }]);
    await sleep(20);
    assert.equal(dp.calls.length, 0);
    assert.equal(agent.health().ready, false);
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.calls.length === 1, "first apply");
    await agent.idle();
    assert.equal(dp.calls[0]!.full, true);
    assert.deepEqual(dp.calls[0]!.keys, [wep("a")]);
    agent.onUpdates([{ key: wep("b"), value: {} }]);
    await until(() => dp.calls.length === 2, "second apply");
    assert.deepEqual(dp.calls[1], { full: false, changed: [wep("b")], keys: [wep("a"), wep("b")] });
    await agent.stop();
  });

  test("applies never overlap, and updates during an apply are coalesced into the next", async () => {
    const { dp, calc, agent } = setup();
    dp.delayMs = 30;
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.inFlight === 1, "first apply running");
    for (let i = 0; i < 50; i++) agent.onUpdates([{ key: wep(`w${i % 5}`), value: { i } }]);
    await until(() => dp.calls.length >= 2, "second apply");
    await agent.idle();
    assert.equal(dp.maxInFlight, 1);
    assert.equal(dp.calls.length, 2, "50 updates during one apply make one more apply");
    assert.deepEqual(
      dp.calls[1]!.changed,
      [0, 1, 2, 3, 4].map((i) => wep(`w${i}`)),
    );
    assert.deepEqual(calc.values.get(wep("w4")), { i: 49 }, "last value wins");
    await agent.stop();
  });

  test("a burst between applies is debounced into one apply", async () => {
    const { dp, agent } = setup({ debounceMs: 20 });
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.calls.length === 1, "first apply");
    await agent.idle();
    for (let i = 0; i < 20; i++) agent.onUpdates([{ key: wep(`b${i}`), value: {} }]);
    await sleep(5);
    await agent.idle();
    assert.equal(dp.calls.length, 2);
    assert.equal(dp.calls[1]!.changed.length, 20);
    await agent.stop();
  });

  test("a failed apply is retried as a full apply; readiness follows", async () => {
    const { dp, agent, metrics } = setup();
    dp.failNext = 2;
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.calls.length === 1, "first apply");
    await until(() => agent.health().lastApplyOk === false, "failure seen");
    assert.equal(agent.health().ready, false);
    assert.equal(agent.health().live, true);
    await until(() => agent.health().ready, "ready after retries");
    assert.deepEqual(
      dp.calls.map((c) => c.full),
      [true, true, true],
    );
    assert.equal(dp.invalidations, 2);
    assert.equal((await metrics.applyErrors.get()).values[0]!.value, 2);
    // A later failure in the incremental path also turns the retry into a full apply.
    dp.failNext = 1;
    agent.onUpdates([{ key: wep("x"), value: {} }]);
    await until(() => dp.calls.length === 5, "failed incremental + full retry");
    assert.deepEqual(
      dp.calls.slice(3).map((c) => c.full),
      [false, true],
    );
    await agent.stop();
  });

  test("after N consecutive failures it gives up (fail closed) and stops applying", async () => {
    const { dp, agent, fatal } = setup({ maxConsecutiveFailures: 3 });
    dp.failNext = 100;
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => fatal.length === 1, "fatal");
    await sleep(30);
    assert.equal(dp.calls.length, 3);
    assert.equal(agent.health().live, false);
    assert.equal(agent.health().ready, false);
    assert.match(fatal[0]!.message, /3 consecutive failed dataplane applies/);
    agent.onUpdates([{ key: wep("late"), value: {} }]);
    await sleep(20);
    assert.equal(dp.calls.length, 3);
    await agent.stop();
  });

  test("routes waiting for their interface are retried with back-off, not counted as failures", async () => {
    const { dp, agent, fatal } = setup({
      maxConsecutiveFailures: 2,
      waitingRetry: { initialMs: 10, maxMs: 40 },
    });
    dp.waitingNext = [2, 2, 1, 1];
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.calls.length === 5, "four retries after the first apply");
    await sleep(60);
    assert.equal(dp.calls.length, 5, "no retry once nothing waits");
    assert.deepEqual(
      dp.calls.map((c) => c.full),
      [true, false, false, false, false],
      "retries are incremental",
    );
    assert.equal(fatal.length, 0);
    assert.equal(agent.health().ready, true);

    // A change is not held behind a pending (long) retry, and idle() does not wait for one.
    const slow = setup({ waitingRetry: { initialMs: 60_000, maxMs: 60_000 } });
    slow.dp.waitingNext = [1];
    slow.agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => slow.dp.calls.length === 1, "first apply");
    await slow.agent.idle();
    slow.agent.onUpdates([{ key: wep("new"), value: {} }]);
    await until(() => slow.dp.calls.length === 2, "the change applied at once");
    assert.deepEqual(slow.dp.calls[1]!.changed, [wep("new")]);
    await slow.agent.stop();
    await agent.stop();
  });

  test("the resync timer forces full applies", async () => {
    const { dp, agent, metrics } = setup({ resyncIntervalMs: 15 });
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.calls.length >= 4, "periodic applies");
    await agent.stop();
    assert.ok(dp.calls.every((c) => c.full));
    assert.ok((await metrics.resyncs.get()).values[0]!.value >= 4);
  });

  test("readiness drops while out of sync after the first sync, and applies continue", async () => {
    const { dp, agent } = setup();
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => agent.health().ready, "ready");
    agent.onStatus(SyncStatus.RESYNC_IN_PROGRESS);
    assert.equal(agent.health().ready, false);
    agent.onUpdates([{ key: wep("during-resync"), value: {} }]);
    await until(() => dp.calls.length === 2, "applied during resync");
    agent.onStatus(SyncStatus.IN_SYNC);
    assert.equal(agent.health().ready, true);
    await agent.stop();
  });

  test("a new dataplane config is handed over and applied in full", async () => {
    const { dp, agent } = setup();
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(() => dp.calls.length === 1, "first apply");
    await agent.idle();
    agent.setDataplaneConfig(resolveConfig({ env: { FELIX_LOGPREFIX: "x" } }).config.dataplane);
    await until(() => dp.calls.length === 2, "apply after config");
    assert.equal(dp.calls[1]!.full, true);
    assert.equal(dp.configs[0]!.logPrefix, "x");
    await agent.stop();
  });
});

describe("agent health and metrics over HTTP", () => {
  test("/liveness, /readiness and /metrics", async () => {
    const { agent, metrics, dp } = setup();
    const health = await listen(
      "127.0.0.1",
      0,
      healthHandler(() => agent.health()),
    );
    const prom = await listen("127.0.0.1", 0, metricsHandler(metrics.registry));
    const get = async (port: number, p: string) => {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      return { status: r.status, body: await r.text() };
    };
    try {
      assert.equal((await get(health.port, "/liveness")).status, 200);
      assert.equal((await get(health.port, "/readiness")).status, 503);
      assert.equal((await get(health.port, "/nope")).status, 404);
      agent.onUpdates([{ key: wep("a"), value: {} }]);
      agent.onStatus(SyncStatus.IN_SYNC);
      await until(() => agent.health().ready, "ready");
      const ready = await get(health.port, "/readiness");
      assert.equal(ready.status, 200);
      assert.equal(JSON.parse(ready.body).inSync, true);

      const m = await get(prom.port, "/metrics");
      assert.equal(m.status, 200);
      for (const name of [
        "felix_int_dataplane_apply_time_seconds_bucket",
        "felix_resyncs_started 1",
        "felix_active_local_endpoints 1",
        "felix_active_local_policies 0",
        "felix_ipsets_calico 0",
        "felix_int_dataplane_failures 0",
        "felix_in_sync 1",
        "felix_resync_state 3",
      ]) {
        assert.ok(m.body.includes(name), `metrics include ${name}`);
      }
      dp.failNext = 1;
      agent.onUpdates([{ key: wep("b"), value: {} }]);
      await until(() => agent.health().lastApplyOk === false, "failed apply");
      assert.equal((await get(health.port, "/readiness")).status, 503);
      await until(() => agent.health().ready, "ready again");
      assert.equal((await get(health.port, "/readiness")).status, 200);
    } finally {
      await agent.stop();
      await health.close();
      await prom.close();
    }
  });
});
