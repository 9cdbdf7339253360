import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KVUpdate } from "../calc/types.js";
import { MemoryDatastore } from "../datastore/memory.js";
import { SqliteDatastore } from "../datastore/sqlite.js";
import { DatastoreError, DatastoreErrorCode, type Datastore } from "../datastore/types.js";
import { createLogger } from "./log.js";
import { IPAM_ASSIGNMENT_PREFIX, Syncer, SyncStatus, type SyncStatus as Status } from "./syncer.js";
import { FlakyDatastore } from "./testing/flaky-datastore.js";

const R = "/calico/resources/v3/projectcalico.org/";
const pol = (name: string) => `${R}globalnetworkpolicies/${name}`;
const blk = (name: string) => `${IPAM_ASSIGNMENT_PREFIX}${name}`;

/** Collects what a syncer emits and folds it into a key → value view. */
class Recorder {
  readonly batches: KVUpdate[][] = [];
  readonly statuses: Status[] = [];
  readonly view = new Map<string, unknown>();

  onUpdates = (u: KVUpdate[]): void => {
    this.batches.push(u);
    for (const { key, value } of u) {
      if (value === null) this.view.delete(key);
      else this.view.set(key, value);
    }
  };
  onStatus = (s: Status): void => {
    this.statuses.push(s);
  };
  get status(): Status | undefined {
    return this.statuses.at(-1);
  }
  updatesSince(batch: number): KVUpdate[] {
    return this.batches.slice(batch).flat();
  }
}

async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function storeView(ds: Datastore): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const p of [R, IPAM_ASSIGNMENT_PREFIX]) {
    for (const kv of (await ds.list(p)).items) out.set(kv.key, JSON.parse(kv.value));
  }
  return out;
}

const drivers: { name: string; open: () => { ds: Datastore; cleanup: () => void } }[] = [
  { name: "memory", open: () => ({ ds: new MemoryDatastore(), cleanup: () => {} }) },
  {
    name: "sqlite",
    open: () => {
      const dir = mkdtempSync(join(tmpdir(), "calico-ts-syncer-"));
      return {
        ds: new SqliteDatastore(join(dir, "ds.db"), { retainRevisions: 0 }),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];

for (const driver of drivers) {
  describe(`syncer over ${driver.name}`, () => {
    const fast = { initialMs: 5, maxMs: 20 };

    test("lists, reports InSync, then streams updates and deletes", async () => {
      const { ds, cleanup } = driver.open();
      const rec = new Recorder();
      const syncer = new Syncer(ds, rec, { backoff: fast });
      try {
        await ds.create(pol("a"), JSON.stringify({ spec: { order: 1 } }));
        await ds.create(blk("198.19.0.0-26"), JSON.stringify({ cidr: "198.19.0.0/26" }));
        await ds.create("/calico/other/ignored", "{}");
        syncer.start();
        assert.equal(rec.statuses[0], SyncStatus.WAIT_FOR_DATASTORE);
        await until(() => rec.status === SyncStatus.IN_SYNC, "in sync");
        assert.deepEqual(rec.statuses, ["WaitForDatastore", "ResyncInProgress", "InSync"]);
        assert.deepEqual(rec.view, await storeView(ds));
        assert.equal(syncer.size, 2);

        await ds.update(pol("a"), JSON.stringify({ spec: { order: 2 } }));
        await ds.create(pol("b"), "{}");
        await ds.delete(blk("198.19.0.0-26"));
        await until(() => rec.view.size === 2 && !rec.view.has(blk("198.19.0.0-26")), "updates");
        assert.deepEqual(rec.view, await storeView(ds));
        assert.deepEqual(rec.view.get(pol("a")), { spec: { order: 2 } });
      } finally {
        syncer.stop();
        await ds.close();
        cleanup();
      }
    });

    test("an unparsable value is delivered as null with a warning", async () => {
      const { ds, cleanup } = driver.open();
      const rec = new Recorder();
      const lines: string[] = [];
      const log = createLogger({ write: (l) => lines.push(l) });
      const syncer = new Syncer(ds, rec, { backoff: fast, log });
      try {
        await ds.create(pol("bad"), "{not json");
        syncer.start();
        await until(() => rec.status === SyncStatus.IN_SYNC, "in sync");
        assert.deepEqual(rec.updatesSince(0), [{ key: pol("bad"), value: null }]);
        assert.ok(lines.some((l) => l.includes("unparsable") && l.includes(pol("bad"))));
      } finally {
        syncer.stop();
        await ds.close();
        cleanup();
      }
    });

    test("after a compacted ('too old') resume it re-lists and emits only the differences", async () => {
      const { ds: inner, cleanup } = driver.open();
      const ds = new FlakyDatastore(inner);
      const rec = new Recorder();
      const syncer = new Syncer(ds, rec, { backoff: fast });
      try {
        for (const n of ["keep", "change", "gone"]) await ds.create(pol(n), JSON.stringify({ n }));
        syncer.start();
        await until(() => rec.status === SyncStatus.IN_SYNC, "in sync");
        const listsBefore = ds.listCalls;

        ds.down();
        await until(() => rec.status !== SyncStatus.IN_SYNC, "out of sync");
        // Meanwhile others write, and the history is compacted past our revision.
        await inner.update(pol("change"), JSON.stringify({ n: "changed" }));
        await inner.delete(pol("gone"));
        await inner.create(pol("new"), "{}");
        await inner.compact(await inner.revision());
        const mark = rec.batches.length;
        ds.up();

        await until(() => rec.status === SyncStatus.IN_SYNC, "back in sync");
        assert.ok(ds.listCalls > listsBefore, "re-listed");
        const diff = rec.updatesSince(mark);
        assert.deepEqual(
          diff.map((u) => [u.key, u.value]).sort(),
          [
            [pol("change"), { n: "changed" }],
            [pol("gone"), null],
            [pol("new"), {}],
          ].sort(),
        );
        assert.deepEqual(rec.view, await storeView(inner));
        assert.equal(syncer.resyncs, 2, "both prefixes re-listed (the revision is global)");
        assert.deepEqual(rec.statuses.slice(-2), ["ResyncInProgress", "InSync"]);

        // And it keeps watching afterwards.
        await ds.create(pol("later"), "{}");
        await until(() => rec.view.has(pol("later")), "later update");
      } finally {
        syncer.stop();
        await ds.close();
        cleanup();
      }
    });

    test("a cut watch resumes from its revision without a re-list when history allows", async () => {
      const { ds: inner, cleanup } = driver.open();
      const ds = new FlakyDatastore(inner);
      const rec = new Recorder();
      const syncer = new Syncer(ds, rec, { backoff: fast });
      try {
        await ds.create(pol("a"), "{}");
        syncer.start();
        await until(() => rec.status === SyncStatus.IN_SYNC, "in sync");
        const lists = ds.listCalls;
        ds.breakWatches();
        await inner.create(pol("b"), "{}");
        await until(() => rec.view.has(pol("b")), "missed event replayed");
        await until(() => rec.status === SyncStatus.IN_SYNC, "back in sync");
        assert.equal(ds.listCalls, lists, "no re-list");
        assert.equal(syncer.resyncs, 0);
      } finally {
        syncer.stop();
        await ds.close();
        cleanup();
      }
    });

    test("datastore down at start: waits, then syncs when it comes up", async () => {
      const { ds: inner, cleanup } = driver.open();
      const ds = new FlakyDatastore(inner);
      const rec = new Recorder();
      const syncer = new Syncer(ds, rec, { backoff: fast });
      try {
        await inner.create(pol("a"), "{}");
        ds.down();
        syncer.start();
        await until(() => ds.listCalls >= 3, "retries");
        assert.deepEqual(rec.statuses, ["WaitForDatastore"]);
        ds.up();
        await until(() => rec.status === SyncStatus.IN_SYNC, "in sync");
        assert.deepEqual(rec.view, await storeView(inner));
      } finally {
        syncer.stop();
        await ds.close();
        cleanup();
      }
    });
  });
}

test("syncer: a watch failing 'too old' straight away forces a re-list", async () => {
  const ds = new FlakyDatastore(new MemoryDatastore());
  const rec = new Recorder();
  const syncer = new Syncer(ds, rec, { backoff: { initialMs: 5, maxMs: 10 }, prefixes: [R] });
  try {
    await ds.create(pol("a"), "{}");
    syncer.start();
    await until(() => rec.status === SyncStatus.IN_SYNC, "in sync");
    ds.breakWatches(new DatastoreError(DatastoreErrorCode.REVISION_COMPACTED, "too old (test)"));
    await until(() => syncer.resyncs === 1 && rec.status === SyncStatus.IN_SYNC, "re-listed");
    assert.equal(rec.updatesSince(1).length, 0, "nothing changed, nothing re-emitted");
  } finally {
    syncer.stop();
    await ds.close();
  }
});
