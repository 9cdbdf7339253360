/**
 * The agent catches up with every write (the invariant behind the bench's "write → applied"):
 * a writer process makes thousands of rapid writes to a sqlite file while, in this process,
 * (a) a Syncer ends with exactly the final values and the final revision, and (b) an Agent over
 * a fake calculation and a dataplane whose applies take random time (sometimes blocking the
 * event loop, sometimes failing) ends with appliedRevision = the last write's revision and
 * the calculation holding the final value of every key. Every wait is bounded.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent } from "../src/agent/agent.js";
import { AGENT_SYNC_PREFIXES, Syncer, SyncStatus } from "../src/agent/syncer.js";
import { FakeCalculator } from "../src/agent/testing/fakes.js";
import type { ApplyResult, Dataplane, DataplaneConfig } from "../src/dataplane/types.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import type { Datastore } from "../src/datastore/types.js";

const WRITER = join(dirname(fileURLToPath(import.meta.url)), "helpers", "catchup-writer.js");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface WriterArgs {
  path: string;
  count: number;
  keys: number;
  seed: number;
  retainRevisions?: number;
  deadlineMs: number;
  tail?: "create-delete";
}

/** Run the writer process to completion (bounded); its last write's revision. */
function runWriter(args: WriterArgs): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const kill = setTimeout(() => child.kill("SIGKILL"), args.deadlineMs + 15_000);
    child.on("exit", (code) => {
      clearTimeout(kill);
      if (code !== 0) reject(new Error(`writer exited ${code}: ${err}`));
      else resolve((JSON.parse(out) as { revision: number }).revision);
    });
  });
}

async function until(cond: () => boolean, what: () => string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await sleep(5);
  }
}

async function finalView(ds: Datastore): Promise<{ view: Map<string, unknown>; revision: number }> {
  const view = new Map<string, unknown>();
  let revision = 0;
  for (const p of AGENT_SYNC_PREFIXES) {
    const l = await ds.list(p);
    revision = Math.max(revision, l.revision);
    for (const kv of l.items) view.set(kv.key, JSON.parse(kv.value));
  }
  return { view, revision };
}

let seedState = Number(process.env.CATCHUP_SEED ?? Date.now()) >>> 0 || 1;
const rnd = (): number => {
  seedState ^= seedState << 13;
  seedState >>>= 0;
  seedState ^= seedState >>> 17;
  seedState ^= seedState << 5;
  seedState >>>= 0;
  return seedState / 2 ** 32;
};

/** Applies that take random time, sometimes block the event loop, sometimes fail. */
class RandomDataplane implements Dataplane {
  applies = 0;
  failures = 0;
  constructor(private readonly opts: { failRate: number; maxDelayMs: number; blockRate: number }) {}
  async apply(): Promise<ApplyResult> {
    this.applies++;
    if (rnd() < this.opts.blockRate) {
      const until = Date.now() + 5 + rnd() * 40; // a synchronous stall: polls are late
      while (Date.now() < until) {
        /* busy */
      }
    }
    const delay = rnd() * this.opts.maxDelayMs;
    if (delay >= 1) await sleep(delay);
    else await Promise.resolve();
    if (rnd() < this.opts.failRate) {
      this.failures++;
      throw new Error("apply failed (test)");
    }
    return {
      full: false,
      nftOps: 0,
      nftScriptBytes: 0,
      routesChanged: 0,
      linksChanged: 0,
      durationMs: delay,
    };
  }
  invalidate(): void {}
  setConfig(_c: DataplaneConfig): void {}
}

interface Round {
  count: number;
  keys: number;
  retainRevisions?: number;
  tail?: "create-delete";
  dataplane: { failRate: number; maxDelayMs: number; blockRate: number };
}

async function round(r: Round): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "calico-catchup-"));
  const path = join(dir, "store.db");
  const seed = Math.floor(rnd() * 2 ** 31) + 1;
  const opts = r.retainRevisions !== undefined ? { retainRevisions: r.retainRevisions } : {};
  const ds = new SqliteDatastore(path, opts);
  const calc = new FakeCalculator();
  const dp = new RandomDataplane(r.dataplane);
  const mirror = new Map<string, unknown>();
  const agent = new Agent({
    calc,
    dataplane: dp,
    debounceMs: 1 + Math.floor(rnd() * 5),
    resyncIntervalMs: 0,
    maxConsecutiveFailures: 1_000_000,
    retryBackoff: { initialMs: 1, maxMs: 20 },
    deliveredRevision: () => syncer.deliveredRevision,
  });
  const syncer: Syncer = new Syncer(
    ds,
    {
      onUpdates: (updates) => {
        for (const u of updates) {
          if (u.value === null) mirror.delete(u.key);
          else mirror.set(u.key, u.value);
        }
        agent.onUpdates(updates);
      },
      onStatus: (s) => agent.onStatus(s),
    },
    { backoff: { initialMs: 5, maxMs: 50 } },
  );
  const ctx = () => `seed ${seed} (CATCHUP_SEED to replay the run), round ${JSON.stringify(r)}`;
  try {
    syncer.start();
    await until(() => syncer.currentStatus === SyncStatus.IN_SYNC, ctx, 5_000);
    const last = await runWriter({ path, seed, deadlineMs: 20_000, ...r });
    const want = await finalView(ds);
    assert.equal(want.revision, last, "the writer's last write is the store's head");
    // (a) the syncer: exactly the final values, up to the last revision.
    await until(
      () => syncer.deliveredRevision === last,
      () => `syncer delivered ${syncer.deliveredRevision}, last write ${last}; ${ctx()}`,
      5_000,
    );
    assert.deepEqual(new Map([...mirror].sort()), new Map([...want.view].sort()), ctx());
    // (b) the agent: every write applied — appliedRevision reaches the last write by itself.
    await until(
      () => agent.health().appliedRevision === last && agent.health().lastApplyOk === true,
      () =>
        `agent applied ${agent.health().appliedRevision} (lastApplyOk ${agent.health().lastApplyOk}), syncer delivered ${syncer.deliveredRevision}, last write ${last}; ${ctx()}`,
      10_000,
    );
    await agent.idle();
    assert.deepEqual(new Map([...calc.values].sort()), new Map([...want.view].sort()), ctx());
  } finally {
    syncer.stop();
    await agent.stop();
    await ds.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("agent catch-up against a writer process (sqlite)", () => {
  test("rapid writes, quick applies: the syncer and the agent end at the last write", async () => {
    for (let i = 0; i < 4; i++) {
      await round({ count: 3_000, keys: 40, dataplane: { failRate: 0, maxDelayMs: 3, blockRate: 0 } });
    }
  });

  test("rapid writes, slow and failing applies that stall the event loop", async () => {
    for (let i = 0; i < 4; i++) {
      await round({ count: 3_000, keys: 40, dataplane: { failRate: 0.15, maxDelayMs: 25, blockRate: 0.2 } });
    }
  });

  test("history trimmed under a watcher that falls behind (compacted → re-list)", async () => {
    for (let i = 0; i < 3; i++) {
      await round({
        count: 4_000,
        keys: 30,
        retainRevisions: 20,
        dataplane: { failRate: 0.1, maxDelayMs: 20, blockRate: 0.5 },
      });
    }
  });

  test("a re-list that finds nothing changed still moves appliedRevision to the listed revision", async () => {
    for (let i = 0; i < 3; i++) {
      await round({
        count: 2_000,
        keys: 20,
        retainRevisions: 5,
        tail: "create-delete",
        dataplane: { failRate: 0, maxDelayMs: 10, blockRate: 0.6 },
      });
    }
  });
});
