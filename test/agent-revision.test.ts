/**
 * Deterministic cases behind the agent's "every write is applied, and the status says so":
 * what the stress test (agent-catchup) guards statistically, each pinned down here.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, type AgentHealth } from "../src/agent/agent.js";
import { Syncer, SyncStatus } from "../src/agent/syncer.js";
import { FakeCalculator, FakeDataplane } from "../src/agent/testing/fakes.js";
import type { KVUpdate } from "../src/calc/types.js";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";

const wep = (n: string) => `/calico/resources/v3/projectcalico.org/workloadendpoints/ns/${n}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: () => string, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await sleep(2);
  }
}

function agentFor(opts: { delayMs?: number } = {}) {
  const calc = new FakeCalculator();
  const dp = new FakeDataplane(calc);
  dp.delayMs = opts.delayMs ?? 0;
  const reports: AgentHealth[] = [];
  const ref: { syncer?: Syncer } = {};
  const agent = new Agent({
    calc,
    dataplane: dp,
    debounceMs: 1,
    resyncIntervalMs: 0,
    retryBackoff: { initialMs: 1, maxMs: 5 },
    deliveredRevision: () => ref.syncer?.deliveredRevision ?? 0,
    onApplied: (h) => reports.push(h),
  });
  return { calc, dp, agent, reports, ref };
}

describe("applied revision", () => {
  test("a re-list that finds nothing changed still brings appliedRevision to the listed revision", async () => {
    const dir = mkdtempSync(join(tmpdir(), "calico-agent-rev-"));
    const path = join(dir, "ds.db");
    // Two connections to one file: `writer` plays the other process.
    const writer = new SqliteDatastore(path, { retainRevisions: 0 });
    const reader = new SqliteDatastore(path, { retainRevisions: 0 });
    const { agent, ref } = agentFor();
    const syncer = new Syncer(reader, agent, { backoff: { initialMs: 1, maxMs: 5 } });
    ref.syncer = syncer;
    try {
      await writer.create(wep("a"), "{}");
      syncer.start();
      await until(
        () => agent.health().appliedRevision === 1,
        () => `applied ${agent.health().appliedRevision}`,
      );
      // Between two polls of the reader: a key comes and goes, and history is compacted, so
      // the reader's watches end "compacted" and re-list a store that looks unchanged.
      const tmp = await writer.create(wep("tmp"), "{}");
      await writer.delete(wep("tmp"), tmp.modRevision);
      const head = await writer.revision();
      await writer.compact(head);
      await until(
        () => syncer.deliveredRevision === head,
        () => `delivered ${syncer.deliveredRevision}, head ${head}`,
      );
      await until(
        () => agent.health().appliedRevision === head,
        () =>
          `applied ${agent.health().appliedRevision}, delivered ${syncer.deliveredRevision}, head ${head}`,
      );
    } finally {
      syncer.stop();
      await agent.stop();
      await reader.close();
      await writer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a batch the consumer throws on is delivered again, not skipped", async () => {
    const ds = new MemoryDatastore();
    const seen: KVUpdate[] = [];
    let throwOnce = true;
    const syncer = new Syncer(
      ds,
      {
        onUpdates: (u) => {
          if (throwOnce && u.some((x) => x.key === wep("b"))) {
            throwOnce = false;
            throw new Error("consumer failed (test)");
          }
          seen.push(...u);
        },
        onStatus: () => {},
      },
      { backoff: { initialMs: 1, maxMs: 5 } },
    );
    try {
      syncer.start();
      await until(
        () => syncer.currentStatus === SyncStatus.IN_SYNC,
        () => "in sync",
      );
      await ds.create(wep("b"), '{"v":1}');
      await until(
        () => seen.some((x) => x.key === wep("b")),
        () => `b never delivered again (delivered revision ${syncer.deliveredRevision})`,
      );
      assert.equal(syncer.deliveredRevision, await ds.revision());
    } finally {
      syncer.stop();
      await ds.close();
    }
  });
});

describe("agent loop: requests made during an apply", () => {
  test("a resync requested during a full apply gets a full apply of its own", async () => {
    const { dp, agent } = agentFor({ delayMs: 30 });
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(
      () => dp.inFlight === 1,
      () => "first (full) apply running",
    );
    agent.requestResync();
    await until(
      () => dp.calls.length >= 2,
      () => `applies ${JSON.stringify(dp.calls)}`,
      1_000,
    );
    await agent.idle();
    assert.deepEqual(
      dp.calls.map((c) => c.full),
      [true, true],
    );
    await agent.stop();
  });

  test("a dataplane config handed over during a full apply is applied in full", async () => {
    const { dp, agent } = agentFor({ delayMs: 30 });
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(
      () => dp.inFlight === 1,
      () => "first (full) apply running",
    );
    agent.setDataplaneConfig({} as never);
    await until(
      () => dp.calls.length >= 2,
      () => `applies ${JSON.stringify(dp.calls)}`,
      1_000,
    );
    await agent.idle();
    assert.equal(dp.calls[1]!.full, true);
    await agent.stop();
  });

  test("readiness regained without an apply is reported (the status file is not left not-ready)", async () => {
    const { dp, agent, reports } = agentFor({ delayMs: 30 });
    agent.onStatus(SyncStatus.IN_SYNC);
    await until(
      () => dp.inFlight === 1,
      () => "first apply running",
    );
    agent.onStatus(SyncStatus.WAIT_FOR_DATASTORE); // a watch cut during the apply
    await agent.idle();
    assert.equal(reports.at(-1)!.ready, false);
    agent.onStatus(SyncStatus.IN_SYNC); // resumed: nothing new to apply
    await agent.idle();
    assert.equal(reports.at(-1)!.ready, true, JSON.stringify(reports));
    await agent.stop();
  });
});
