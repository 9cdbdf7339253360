import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryDatastore } from "../datastore/memory.js";
import type { Datastore, KV, Watch, WatchEvent, WatchHandlers } from "../datastore/types.js";
import { DatastoreError, DatastoreErrorCode, isCompacted } from "../datastore/types.js";
import { eventKey, eventRevision, WatchCache } from "./watch-cache.js";

/** A memory store whose watches can be broken on demand (as etcd's are when it restarts). */
class FlakyDatastore {
  readonly inner = new MemoryDatastore();
  private readonly open = new Set<{ w: Watch; h: WatchHandlers }>();
  watchCalls: number[] = [];
  /** Fail the next `n` watch() calls immediately with UNAVAILABLE. */
  failNextWatches = 0;

  store(): Datastore {
    const inner = this.inner;
    return {
      url: "flaky:",
      get: (k) => inner.get(k),
      list: (p) => inner.list(p),
      create: (k, v) => inner.create(k, v),
      update: (k, v, r) => inner.update(k, v, r),
      delete: (k, r) => inner.delete(k, r),
      revision: () => inner.revision(),
      compact: (r) => inner.compact(r),
      close: () => inner.close(),
      watch: (prefix, after, h) => {
        this.watchCalls.push(after);
        if (this.failNextWatches > 0) {
          this.failNextWatches--;
          queueMicrotask(() => h.onError(new DatastoreError(DatastoreErrorCode.UNAVAILABLE, "etcd is down")));
          return { close: () => {} };
        }
        const w = inner.watch(prefix, after, h);
        const entry = { w, h };
        this.open.add(entry);
        return {
          close: () => {
            this.open.delete(entry);
            w.close();
          },
        };
      },
    };
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Break every open watch with `code`. */
  breakWatches(code: DatastoreErrorCode): void {
    for (const e of [...this.open]) {
      this.open.delete(e);
      e.w.close();
      e.h.onError(new DatastoreError(code, `watch broken (${code})`));
    }
  }
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await settle(3);
  }
}

/** Applies a subscription's events to a map, checking revisions only ever increase. */
class Mirror {
  readonly state = new Map<string, string>();
  readonly revs: number[] = [];
  /** A snapshot is in key order, not revision order. */
  load(events: readonly WatchEvent[]): void {
    for (const e of events) if (e.type === "put") this.state.set(e.kv.key, e.kv.value);
  }

  apply(events: readonly WatchEvent[]): void {
    for (const e of events) {
      const r = eventRevision(e);
      const last = this.revs[this.revs.length - 1];
      assert.ok(last === undefined || r >= last, `revision went back: ${r} after ${last}`);
      this.revs.push(r);
      if (e.type === "put") this.state.set(e.kv.key, e.kv.value);
      else this.state.delete(eventKey(e));
    }
  }
}

/** The store's state under /calico/ as of `rev`, rebuilt from the memory store's history. */
async function storeAt(ds: MemoryDatastore, rev: number): Promise<Map<string, string> | undefined> {
  const now = await storeState(ds, "/calico/");
  const r = await ds.revision();
  if (rev === r) return now;
  // Undo the events after rev, newest first (the memory store keeps them until compaction).
  const events = await new Promise<WatchEvent[] | undefined>((resolve) => {
    const got: WatchEvent[] = [];
    const w = ds.watch("/calico/", rev, {
      onEvents: (es) => {
        got.push(...es);
        if (got.length > 0 && eventRevision(got[got.length - 1]!) >= r) {
          w.close();
          resolve(got);
        }
      },
      onError: () => resolve(undefined),
    });
  });
  if (events === undefined) return undefined;
  for (const e of events.reverse()) {
    const k = eventKey(e);
    if (e.prev !== undefined) now.set(k, e.prev.value);
    else now.delete(k);
  }
  return now;
}

async function storeState(ds: Datastore, prefix: string): Promise<Map<string, string>> {
  return new Map((await ds.list(prefix)).items.map((kv) => [kv.key, kv.value]));
}

describe("WatchCache", () => {
  test("mirrors the store; subscribers get snapshot or replay, then live events", async () => {
    const ds = new MemoryDatastore();
    await ds.create("/calico/a", "1");
    await ds.create("/other/x", "1");
    const cache = new WatchCache(ds);
    try {
      await cache.start();
      assert.equal(cache.currentRevision, 2);
      assert.deepEqual(
        cache.snapshot("/calico/").items.map((kv) => kv.key),
        ["/calico/a"],
      );
      const m = new Mirror();
      const sub = cache.subscribe("/calico/", undefined, {
        onEvents: (es) => m.apply(es),
        onClose: () => {},
      });
      m.load(sub.backlog);
      await ds.create("/calico/b", "2");
      await ds.update("/calico/a", "3");
      await until(() => m.state.get("/calico/a") === "3", "live update");
      assert.deepEqual(
        [...m.state],
        [
          ["/calico/a", "3"],
          ["/calico/b", "2"],
        ],
      );
      const resumed = cache.subscribe("/calico/", 3, { onEvents: () => {}, onClose: () => {} });
      assert.deepEqual(resumed.backlog.map(eventRevision), [4]);
      sub.cancel();
      resumed.cancel();
    } finally {
      cache.close();
      await ds.close();
    }
  });

  test("the ring is bounded: resumes from before it fail REVISION_COMPACTED", async () => {
    const ds = new MemoryDatastore();
    const cache = new WatchCache(ds, { historyEvents: 5 });
    try {
      await cache.start();
      for (let i = 0; i < 20; i++) await ds.create(`/calico/${i}`, "1");
      await until(() => cache.currentRevision === 20, "revision 20");
      assert.equal(cache.oldestRevision, 15);
      assert.throws(
        () => cache.subscribe("/calico/", 14, { onEvents: () => {}, onClose: () => {} }),
        (e: unknown) => isCompacted(e),
      );
      const s = cache.subscribe("/calico/", 15, { onEvents: () => {}, onClose: () => {} });
      assert.deepEqual(s.backlog.map(eventRevision), [16, 17, 18, 19, 20]);
      s.cancel();
      // And the Datastore-semantics watch reports it through onError.
      const err = await new Promise<Error>((resolve) =>
        cache.watch("/calico/", 3, { onEvents: () => {}, onError: resolve }),
      );
      assert.ok(isCompacted(err));
    } finally {
      cache.close();
      await ds.close();
    }
  });

  test("a broken datastore watch is resumed from the cache revision: no gap, no duplicate", async () => {
    const flaky = new FlakyDatastore();
    const ds = flaky.store();
    const errors: unknown[] = [];
    const cache = new WatchCache(ds, { retryMinMs: 5, onDatastoreError: (e) => errors.push(e) });
    const m = new Mirror();
    try {
      await cache.start();
      const sub = cache.subscribe("/calico/", 0, { onEvents: (es) => m.apply(es), onClose: () => {} });
      m.apply(sub.backlog);
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 10; i++) await ds.create(`/calico/r${round}/${i}`, String(i));
        flaky.failNextWatches = 2; // the first two re-watches fail too
        flaky.breakWatches(DatastoreErrorCode.UNAVAILABLE);
        await until(() => flaky.openCount === 1, "the cache to watch again");
        for (let i = 0; i < 5; i++) await ds.delete(`/calico/r${round}/${i}`);
      }
      await until(() => cache.currentRevision === 75, "revision 75");
      await settle();
      assert.deepEqual(
        m.revs,
        Array.from({ length: 75 }, (_, i) => i + 1),
      );
      assert.deepEqual(m.state, await storeState(ds, "/calico/"));
      assert.equal(errors.length, 15);
      assert.ok(cache.inSync);
      sub.cancel();
    } finally {
      cache.close();
      await ds.close();
    }
  });

  test("a compacted datastore watch re-lists and emits exactly the difference", async () => {
    const flaky = new FlakyDatastore();
    const ds = flaky.store();
    const cache = new WatchCache(ds, { retryMinMs: 5 });
    const m = new Mirror();
    try {
      await ds.create("/calico/keep", "1");
      await ds.create("/calico/change", "1");
      await ds.create("/calico/remove", "1");
      await cache.start();
      const sub = cache.subscribe("/calico/", undefined, {
        onEvents: (es) => m.apply(es),
        onClose: () => {},
      });
      m.load(sub.backlog);
      // Take the cache's watch away, change things behind its back, then report compaction.
      flaky.failNextWatches = 1000;
      flaky.breakWatches(DatastoreErrorCode.UNAVAILABLE);
      await ds.update("/calico/change", "2");
      await ds.delete("/calico/remove");
      await ds.create("/calico/new", "1");
      await ds.update("/calico/new", "2");
      await ds.create("/calico/tmp", "1");
      await ds.delete("/calico/tmp");
      await flaky.inner.compact(await ds.revision());
      flaky.failNextWatches = 0;
      // The retry loop resumes from the old revision and is told it is compacted → re-list.
      await until(() => cache.currentRevision === 9 && cache.oldestRevision === 9, "re-list at 9");
      await settle();
      assert.deepEqual(m.state, await storeState(ds, "/calico/"));
      // One event per changed key: change(put), new(put), remove(delete) — not the 6 writes.
      assert.equal(m.revs.length, 3);
      assert.throws(
        () => cache.subscribe("/calico/", 4, { onEvents: () => {}, onClose: () => {} }),
        (e: unknown) => isCompacted(e),
      );
      sub.cancel();
    } finally {
      cache.close();
      await ds.close();
    }
  });

  test("watch() has Datastore semantics: async delivery, close stops it, prefix scoped", async () => {
    const ds = new MemoryDatastore();
    const cache = new WatchCache(ds);
    try {
      await cache.start();
      await ds.create("/calico/a/1", "1");
      await ds.create("/calico/b/1", "1");
      await until(() => cache.currentRevision === 2, "revision 2");
      let sync = true;
      const got: number[] = [];
      const w = cache.watch("/calico/a/", 0, {
        onEvents: (es) => {
          assert.equal(sync, false);
          got.push(...es.map(eventRevision));
        },
        onError: (e) => assert.fail(e),
      });
      sync = false;
      await ds.create("/calico/a/2", "1");
      await until(() => got.length === 2, "2 events");
      w.close();
      await ds.create("/calico/a/3", "1");
      await settle();
      assert.deepEqual(got, [1, 3]);
      assert.equal(await cache.revision(), 4);
    } finally {
      cache.close();
      await ds.close();
    }
  });

  test("random writes, watch failures, compactions and subscribers: every subscriber ends exact", async () => {
    type Op =
      | { t: "write"; key: number; del: boolean }
      | { t: "break"; compacted: boolean }
      | { t: "subscribe"; fromSnapshot: boolean; back: number }
      | { t: "cancel"; which: number };
    const op = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ t: fc.constant("write" as const), key: fc.nat(7), del: fc.boolean() }),
      },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("break" as const), compacted: fc.boolean() }) },
      {
        weight: 2,
        arbitrary: fc.record({
          t: fc.constant("subscribe" as const),
          fromSnapshot: fc.boolean(),
          back: fc.nat(6),
        }),
      },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("cancel" as const), which: fc.nat(10) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 60 }), async (ops: Op[]) => {
        const flaky = new FlakyDatastore();
        const ds = flaky.store();
        const cache = new WatchCache(ds, { retryMinMs: 1, retryMaxMs: 5, historyEvents: 20 });
        const subs: { m: Mirror; cancel: () => void; live: boolean }[] = [];
        try {
          await cache.start();
          for (const o of ops) {
            switch (o.t) {
              case "write": {
                const k = `/calico/k${o.key}`;
                const cur = await ds.get(k);
                if (cur === undefined) await ds.create(k, "0");
                else if (o.del) await ds.delete(k);
                else await ds.update(k, String(Number(cur.value) + 1));
                break;
              }
              case "break":
                if (o.compacted) {
                  flaky.failNextWatches = 1;
                  flaky.breakWatches(DatastoreErrorCode.UNAVAILABLE);
                  // Writes behind the cache's back, then compaction past its revision: its
                  // resume fails compacted and it must re-list.
                  const r = await ds.revision();
                  await ds.create(`/calico/c${r}`, "x");
                  await flaky.inner.compact(r + 1);
                  await ds.create(`/calico/d${r}`, "x");
                } else {
                  flaky.breakWatches(DatastoreErrorCode.UNAVAILABLE);
                }
                break;
              case "subscribe": {
                const m = new Mirror();
                const listener = { onEvents: (es: readonly WatchEvent[]) => m.apply(es), onClose: () => {} };
                try {
                  if (o.fromSnapshot) {
                    const sub = cache.subscribe("/calico/", undefined, listener);
                    m.load(sub.backlog);
                    subs.push({ m, cancel: () => sub.cancel(), live: true });
                  } else {
                    // Start from the cache's snapshot at some earlier revision: replay must bridge it.
                    const rev = Math.max(cache.oldestRevision, cache.currentRevision - o.back);
                    const base = await storeAt(flaky.inner, rev);
                    if (base === undefined) break;
                    for (const [k, v] of base) m.state.set(k, v);
                    const sub = cache.subscribe("/calico/", rev, listener);
                    m.apply(sub.backlog);
                    subs.push({ m, cancel: () => sub.cancel(), live: true });
                  }
                } catch (err) {
                  if (!isCompacted(err)) throw err;
                }
                break;
              }
              case "cancel": {
                const s = subs[o.which % Math.max(1, subs.length)];
                if (s !== undefined && s.live) {
                  s.cancel();
                  s.live = false;
                }
                break;
              }
            }
            if (o.t !== "write") await settle(2);
          }
          const rev = await ds.revision();
          await until(() => cache.currentRevision === rev && cache.inSync, `cache at ${rev}`);
          await settle(5);
          const want = await storeState(ds, "/calico/");
          for (const s of subs) if (s.live) assert.deepEqual(s.m.state, want);
          assert.deepEqual(new Map(cache.snapshot("/calico/").items.map((kv) => [kv.key, kv.value])), want);
        } finally {
          cache.close();
          await ds.close();
        }
      }),
      { numRuns: 40, interruptAfterTimeLimit: 30_000 },
    );
  });
});

/** A store whose watch and list are scripted by the test. */
function scriptedStore(script: {
  list: () => Promise<{ items: KV[]; revision: number }>;
  watch: (after: number, h: WatchHandlers) => Watch;
}): Datastore {
  const inner = new MemoryDatastore();
  return {
    url: "scripted:",
    get: (k) => inner.get(k),
    list: () => script.list(),
    create: (k, v) => inner.create(k, v),
    update: (k, v, r) => inner.update(k, v, r),
    delete: (k, r) => inner.delete(k, r),
    revision: () => inner.revision(),
    compact: (r) => inner.compact(r),
    close: () => inner.close(),
    watch: (_p, after, h) => script.watch(after, h),
  };
}

const kvAt = (key: string, rev: number) => ({ key, value: "{}", createRevision: rev, modRevision: rev });

describe("WatchCache edge cases found in review", () => {
  test("several events in one revision (a prefix delete) all reach watchers and the state", async () => {
    let handlers: WatchHandlers | undefined;
    const cache = new WatchCache(
      scriptedStore({
        list: () => Promise.resolve({ items: [kvAt("/calico/x/a", 2), kvAt("/calico/x/b", 3)], revision: 3 }),
        watch: (_after, h) => {
          handlers = h;
          return { close: () => {} };
        },
      }),
    );
    await cache.start();
    const got: string[] = [];
    const w = cache.watch("/calico/", 3, {
      onEvents: (es) => got.push(...es.map((e) => `${e.type} ${eventKey(e)}@${eventRevision(e)}`)),
      onError: () => {},
    });
    await new Promise((r) => setImmediate(r));
    handlers!.onEvents([
      { type: "delete", key: "/calico/x/a", revision: 4 },
      { type: "delete", key: "/calico/x/b", revision: 4 },
    ]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ["delete /calico/x/a@4", "delete /calico/x/b@4"]);
    assert.deepEqual(cache.snapshot("/calico/").items, []);
    w.close();
    cache.close();
  });

  test("before the first listing, subscribe refuses and watch() waits for it", async () => {
    let releaseList: (() => void) | undefined;
    const cache = new WatchCache(
      scriptedStore({
        list: () =>
          new Promise((resolve) => {
            releaseList = () => resolve({ items: [kvAt("/calico/x/b", 5)], revision: 5 });
          }),
        watch: () => ({ close: () => {} }),
      }),
    );
    void cache.start();
    assert.throws(
      () =>
        cache.subscribe("/calico/", 4, { onEvents: () => {}, onError: () => {}, onClose: () => {} } as never),
      /has not loaded the datastore yet/,
    );
    const errors: string[] = [];
    const events: string[] = [];
    cache.watch("/calico/", 4, {
      onEvents: (es) => events.push(...es.map((e) => eventKey(e))),
      onError: (e) => errors.push((e as DatastoreError).code),
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([events, errors], [[], []], "nothing is served from the unlisted state");
    releaseList!();
    await cache.ready();
    await new Promise((r) => setImmediate(r));
    // Revision 4 is before the listing's 5: the cache cannot know what was deleted in between.
    assert.deepEqual(errors, [DatastoreErrorCode.REVISION_COMPACTED]);
    cache.close();
  });

  test("a failed first listing is retried as a listing, never as a bare watch from 0", async () => {
    let lists = 0;
    const watchedFrom: number[] = [];
    const cache = new WatchCache(
      scriptedStore({
        list: () => {
          lists++;
          if (lists === 1)
            return Promise.reject(new DatastoreError(DatastoreErrorCode.UNAVAILABLE, "etcd not up"));
          return Promise.resolve({ items: [kvAt("/calico/k", 20)], revision: 20 });
        },
        watch: (after) => {
          watchedFrom.push(after);
          return { close: () => {} };
        },
      }),
      { retryMinMs: 1, retryMaxMs: 2 },
    );
    // The cache's retry timer is unref'd (it must not keep a server alive); keep the test alive.
    const keepAlive = setTimeout(() => {}, 5_000);
    await cache.start();
    clearTimeout(keepAlive);
    assert.equal(lists, 2);
    assert.deepEqual(watchedFrom, [20]);
    assert.equal(cache.currentRevision, 20);
    assert.equal(cache.oldestRevision, 20);
    cache.close();
  });
});
