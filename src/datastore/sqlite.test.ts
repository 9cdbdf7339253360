import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describeDatastoreConformance } from "./conformance.js";
import { SqliteDatastore, SQLITE_SCHEMA_VERSION } from "./sqlite.js";
import { DatastoreErrorCode, isUnavailable, type Datastore } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), `calico-ts-sqlite-test-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const freshPath = () => join(dir, `store-${n++}`, "calico-ts.db");

describeDatastoreConformance(
  "sqlite",
  () => {
    const path = freshPath();
    const store = new SqliteDatastore(path);
    return Promise.resolve({
      store,
      cleanup: async () => {
        await store.close();
        rmSync(join(path, ".."), { recursive: true, force: true });
      },
    });
  },
  { spawnUrl: (s) => s.url },
);

// Two connections to one file in one process: the suite's writes go through one, its reads and
// watches through the other, so every event reaches the watches by polling data_version, as it
// does from another process. (Compaction goes through the watching side: its open watches are
// the ones it protects.)
describeDatastoreConformance("sqlite (writes through a second connection)", () => {
  const path = freshPath();
  const writer = new SqliteDatastore(path);
  const reader = new SqliteDatastore(path, { pollIntervalMs: 2 });
  const store: Datastore = {
    url: reader.url,
    get: (k) => reader.get(k),
    list: (p) => reader.list(p),
    revision: () => reader.revision(),
    watch: (p, r, h) => reader.watch(p, r, h),
    compact: (r) => reader.compact(r),
    create: (k, v) => writer.create(k, v),
    update: (k, v, r) => writer.update(k, v, r),
    delete: (k, r) => writer.delete(k, r),
    close: async () => {
      await reader.close();
      await writer.close();
    },
  };
  return Promise.resolve({
    store,
    cleanup: async () => {
      await store.close();
      rmSync(join(path, ".."), { recursive: true, force: true });
    },
  });
});

describe("sqlite driver", () => {
  test("a write through one connection reaches a watch on another connection", async () => {
    const path = freshPath();
    const a = new SqliteDatastore(path, { pollIntervalMs: 2 });
    const b = new SqliteDatastore(path);
    try {
      const got: string[] = [];
      const w = a.watch("/k/", 0, {
        onEvents: (es) => got.push(...es.map((e) => e.type)),
        onError: () => {},
      });
      await b.create("/k/1", "1");
      await b.delete("/k/1");
      const deadline = Date.now() + 2000;
      while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      w.close();
      assert.deepEqual(got, ["put", "delete"]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("creates the parent directory; data survives close and reopen", async () => {
    const path = join(dir, "deep", "er", "x.db");
    const s = new SqliteDatastore(path);
    await s.create("/a", "1");
    await s.create("/b", "2");
    await s.delete("/b");
    await s.compact(2);
    await s.close();
    const t = new SqliteDatastore(path);
    try {
      assert.equal(await t.revision(), 3);
      assert.deepEqual((await t.list("/")).items, [
        { key: "/a", value: "1", createRevision: 1, modRevision: 1 },
      ]);
      const err = await new Promise<Error>((resolve) =>
        t.watch("/", 1, { onEvents: () => {}, onError: resolve }),
      );
      assert.equal((err as { code?: string }).code, DatastoreErrorCode.REVISION_COMPACTED);
    } finally {
      await t.close();
    }
  });

  test("uses WAL mode and records the schema version", async () => {
    const path = freshPath();
    const s = new SqliteDatastore(path);
    await s.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.prepare("SELECT schema_version FROM meta").pluck().get(), SQLITE_SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  test("a file from a newer schema is refused with UNAVAILABLE naming the path", async () => {
    const path = freshPath();
    await new SqliteDatastore(path).close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET schema_version = 99").run();
    db.close();
    assert.throws(
      () => new SqliteDatastore(path),
      (e: unknown) =>
        isUnavailable(e) &&
        (e as Error).message.includes(path) &&
        /schema version 99/.test((e as Error).message),
    );
  });

  test("a file that cannot be opened fails UNAVAILABLE naming the path", () => {
    const notDir = join(dir, "plain-file");
    writeFileSync(notDir, "x");
    const cases = [join(notDir, "sub", "x.db"), dir];
    if (process.platform === "linux") cases.push("/proc/calico-ts-no-such-dir/x.db"); // must fail, not hang
    for (const p of cases) {
      assert.throws(
        () => new SqliteDatastore(p),
        (e: unknown) => isUnavailable(e) && (e as Error).message.includes(p),
      );
    }
    const garbage = join(dir, "garbage.db");
    writeFileSync(garbage, "not a database ".repeat(100));
    assert.throws(
      () => new SqliteDatastore(garbage),
      (e: unknown) => isUnavailable(e) && /not a SQLite database/.test((e as Error).message),
    );
  });

  test("a write lock held by another connection is waited for, then the write succeeds", async () => {
    const path = freshPath();
    const s = new SqliteDatastore(path, { busyTimeoutMs: 20, busyRetries: 50 });
    const locker = new Database(path);
    try {
      locker.exec("BEGIN IMMEDIATE");
      const pending = s.create("/a", "1");
      setTimeout(() => locker.exec("COMMIT"), 100);
      assert.equal((await pending).modRevision, 1);
    } finally {
      if (locker.inTransaction) locker.exec("ROLLBACK");
      locker.close();
      await s.close();
    }
  });

  test("a write lock held too long fails UNAVAILABLE after bounded retries", async () => {
    const path = freshPath();
    const s = new SqliteDatastore(path, { busyTimeoutMs: 5, busyRetries: 3 });
    const locker = new Database(path);
    try {
      locker.exec("BEGIN IMMEDIATE");
      await assert.rejects(
        s.create("/a", "1"),
        (e: unknown) => isUnavailable(e) && (e as Error).message.includes(path),
      );
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
      await s.close();
    }
  });

  test("auto-compaction keeps the last retainRevisions revisions of history", async () => {
    const path = freshPath();
    const s = new SqliteDatastore(path, { retainRevisions: 1500 });
    try {
      for (let i = 0; i < 3000; i++) await s.create(`/k/${i}`, "1");
      await new Promise((r) => setTimeout(r, 20)); // the compaction is started after the write returns
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.prepare("SELECT compacted FROM meta").pluck().get(), 1500);
        assert.equal(db.prepare("SELECT min(rev) FROM events").pluck().get(), 1501);
      } finally {
        db.close();
      }
      const err = await new Promise<Error>((resolve) =>
        s.watch("/", 1000, { onEvents: () => {}, onError: resolve }),
      );
      assert.equal((err as { code?: string }).code, DatastoreErrorCode.REVISION_COMPACTED);
      assert.equal((await s.list("/k/")).items.length, 3000);
    } finally {
      await s.close();
    }
  });

  test("a long replay is handed over in batches of at most 1,000 events", async () => {
    const s = new SqliteDatastore(freshPath());
    try {
      for (let i = 0; i < 2500; i++) await s.create(`/k/${i}`, "1");
      const sizes: number[] = [];
      const w = s.watch("/k/", 0, { onEvents: (es) => sizes.push(es.length), onError: () => {} });
      const deadline = Date.now() + 5000;
      while (sizes.reduce((a, b) => a + b, 0) < 2500 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 2));
      }
      w.close();
      assert.deepEqual(sizes, [1000, 1000, 500]);
    } finally {
      await s.close();
    }
  });

  test("another connection's commit wakes a watch through the file watch, not the slow poll", async () => {
    const path = freshPath();
    // The safety-net poll is a minute: only the directory watch can deliver within the test.
    const a = new SqliteDatastore(path, { idlePollMs: 60_000 });
    const b = new SqliteDatastore(path);
    try {
      const got: number[] = [];
      const w = a.watch("/k/", 0, {
        onEvents: (es) => got.push(...es.map((e) => (e.type === "put" ? e.kv.modRevision : e.revision))),
        onError: () => {},
      });
      // Idle first, so the slow poll is the one armed when the commits come.
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 0; i < 5; i++) {
        const kv = await b.create(`/k/${i}`, "v");
        const deadline = Date.now() + 5000;
        while (!got.includes(kv.modRevision) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 2));
        assert.ok(
          got.includes(kv.modRevision),
          `commit ${i} (revision ${kv.modRevision}) not seen within 5 s`,
        );
        await new Promise((r) => setTimeout(r, 120)); // past the burst: the slow poll again
      }
      w.close();
    } finally {
      await a.close();
      await b.close();
      rmSync(join(path, ".."), { recursive: true, force: true });
    }
  });

  test("without the file watch, the fast poll delivers", async () => {
    const path = freshPath();
    const a = new SqliteDatastore(path, { fileWatch: false, idlePollMs: 60_000 });
    const b = new SqliteDatastore(path);
    try {
      const got: number[] = [];
      const w = a.watch("/k/", 0, {
        onEvents: (es) => got.push(...es.map((e) => (e.type === "put" ? e.kv.modRevision : e.revision))),
        onError: () => {},
      });
      await new Promise((r) => setTimeout(r, 200));
      const kv = await b.create("/k/x", "v");
      const deadline = Date.now() + 5000;
      while (!got.includes(kv.modRevision) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 2));
      assert.ok(got.includes(kv.modRevision), "the commit was not seen within 5 s");
      w.close();
    } finally {
      await a.close();
      await b.close();
      rmSync(join(path, ".."), { recursive: true, force: true });
    }
  });

  test("close stops the poll timer: an idle process with a watch can exit", async () => {
    const path = freshPath();
    const s = new SqliteDatastore(path);
    const w = s.watch("/", 0, { onEvents: () => {}, onError: () => {} });
    const timer = (s as unknown as { pollTimer?: NodeJS.Timeout }).pollTimer;
    assert.ok(timer !== undefined);
    assert.equal(timer.hasRef(), false);
    w.close();
    assert.equal((s as unknown as { pollTimer?: NodeJS.Timeout }).pollTimer, undefined);
    s.watch("/", 0, { onEvents: () => {}, onError: () => {} });
    await s.close();
    assert.equal((s as unknown as { pollTimer?: NodeJS.Timeout }).pollTimer, undefined);
  });
});
