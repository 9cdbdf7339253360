/**
 * The one conformance suite every driver runs (STYLE.md: core plus thin drivers). It registers
 * node:test tests; a driver's test file calls it with a factory:
 *
 *   describeDatastoreConformance("sqlite", async () => ({ store, cleanup }), { spawnUrl: (s) => s.url });
 *
 * It is driver-agnostic: every test works under its own random key prefix and checks
 * revisions relative to the store's revision when it starts, so a factory may hand out one
 * long-lived server (etcd, the API server) to every test — as long as nothing else writes to
 * it while a test runs (revisions are global, and the tests count them). With `spawnUrl`, the multi-process tests fork
 * worker processes (src/datastore/testing/worker.ts) that open that URL themselves.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Datastore, KV, Watch, WatchEvent } from "./types.js";
import { DatastoreErrorCode, isAlreadyExists, isCompacted, isConflict, isNotFound } from "./types.js";
import { killAllWorkers, spawnWorker, type WorkerProc } from "./testing/procs.js";
import { casIncrement } from "./testing/worker.js";

export interface ConformanceFixture {
  store: Datastore;
  cleanup: () => Promise<void>;
}

export interface ConformanceOptions {
  /** The URL another process opens to reach the factory's store; enables the multi-process tests. */
  spawnUrl?: (store: Datastore) => string | undefined;
  /** In-process CAS load: `tasks` concurrent tasks × `increments` each (default 8 × 40). */
  casLoad?: { tasks: number; increments: number };
  /** Multi-process CAS load: `processes` workers × `increments` per key (default 4 × 60). */
  processLoad?: { processes: number; increments: number };
  /** Bound on cross-process watch delivery of one event (default 2000 ms). */
  crossProcessLatencyMs?: number;
}

const WAIT_MS = 5_000;
const TEST_TIMEOUT = 60_000;

const revOf = (e: WatchEvent): number => (e.type === "put" ? e.kv.modRevision : e.revision);
const keyOf = (e: WatchEvent): string => (e.type === "put" ? e.kv.key : e.key);
const show = (e: WatchEvent): string =>
  e.type === "put"
    ? `put ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}/c${e.kv.createRevision}${e.prev ? ` prev=${e.prev.value}@${e.prev.modRevision}` : ""}`
    : `delete ${e.key}@${e.revision}${e.prev ? ` prev=${e.prev.value}@${e.prev.modRevision}` : ""}`;

/** Poll `cond` every few ms until true; fail with `what` after `ms`. */
async function until(cond: () => boolean, what: () => string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

/** Records what a watch delivers. */
class Recorder {
  readonly events: WatchEvent[] = [];
  readonly errors: Error[] = [];
  calls = 0;
  readonly watch: Watch;

  constructor(store: Datastore, prefix: string, after: number, onBatch?: (r: Recorder) => void) {
    this.watch = store.watch(prefix, after, {
      onEvents: (events) => {
        this.calls++;
        this.events.push(...events);
        onBatch?.(this);
      },
      onError: (err) => {
        this.errors.push(err);
      },
    });
  }

  async waitForEvents(n: number, ms = WAIT_MS): Promise<WatchEvent[]> {
    await until(
      () => this.events.length >= n || this.errors.length > 0,
      () => `${n} events (have ${this.events.length}: ${this.events.map(show).join(", ")})`,
      ms,
    );
    if (this.errors.length > 0) assert.fail(`watch failed: ${this.errors[0]!.message}`);
    return this.events;
  }

  async waitForError(ms = WAIT_MS): Promise<Error> {
    await until(
      () => this.errors.length > 0,
      () => "a watch error",
      ms,
    );
    return this.errors[0]!;
  }
}

async function rejectsWith(p: Promise<unknown>, code: string, pred?: (e: unknown) => boolean): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    if (pred !== undefined) assert.ok(pred(err), `predicate for ${code} is false`);
    return true;
  });
}

export function describeDatastoreConformance(
  name: string,
  factory: () => Promise<ConformanceFixture>,
  opts: ConformanceOptions = {},
): void {
  const run = randomUUID().slice(0, 8);
  let n = 0;
  /** Run `fn` on a fresh store under a fresh key prefix; always clean up. */
  const withStore = async (fn: (store: Datastore, p: string) => Promise<void>): Promise<void> => {
    const { store, cleanup } = await factory();
    try {
      await fn(store, `/conformance/${run}/${n++}/`);
    } finally {
      await cleanup();
    }
  };
  const t = (title: string, fn: (store: Datastore, p: string) => Promise<void>): void => {
    test(title, { timeout: TEST_TIMEOUT }, () => withStore(fn));
  };

  describe(`datastore conformance: ${name}`, () => {
    describe("reads and writes", () => {
      t("get of a missing key is undefined; create then get returns the value", async (s, p) => {
        assert.equal(await s.get(`${p}a`), undefined);
        const kv = await s.create(`${p}a`, '{"x":1}');
        assert.deepEqual(await s.get(`${p}a`), kv);
        assert.equal(kv.key, `${p}a`);
        assert.equal(kv.value, '{"x":1}');
      });

      t("create stamps createRevision == modRevision == the previous store revision + 1", async (s, p) => {
        const r0 = await s.revision();
        const kv = await s.create(`${p}a`, "1");
        assert.equal(kv.createRevision, r0 + 1);
        assert.equal(kv.modRevision, r0 + 1);
        assert.equal(await s.revision(), r0 + 1);
      });

      t("create of an existing key fails ALREADY_EXISTS and changes nothing", async (s, p) => {
        const kv = await s.create(`${p}a`, "1");
        await rejectsWith(s.create(`${p}a`, "2"), DatastoreErrorCode.ALREADY_EXISTS, (e) => {
          assert.equal((e as { key?: string }).key, `${p}a`);
          return isAlreadyExists(e);
        });
        assert.deepEqual(await s.get(`${p}a`), kv);
        assert.equal(await s.revision(), kv.modRevision);
      });

      t(
        "update without a revision replaces the value, keeps createRevision, bumps modRevision",
        async (s, p) => {
          const a = await s.create(`${p}a`, "1");
          await s.create(`${p}b`, "x");
          const b = await s.update(`${p}a`, "2");
          assert.deepEqual(b, {
            key: `${p}a`,
            value: "2",
            createRevision: a.createRevision,
            modRevision: a.modRevision + 2,
          });
          assert.deepEqual(await s.get(`${p}a`), b);
        },
      );

      t("update with a stale revision fails CONFLICT; with the current one it succeeds", async (s, p) => {
        const a = await s.create(`${p}a`, "1");
        const b = await s.update(`${p}a`, "2", a.modRevision);
        await rejectsWith(s.update(`${p}a`, "3", a.modRevision), DatastoreErrorCode.CONFLICT, isConflict);
        await rejectsWith(
          s.update(`${p}a`, "3", b.modRevision + 100),
          DatastoreErrorCode.CONFLICT,
          isConflict,
        );
        assert.equal((await s.get(`${p}a`))?.value, "2");
        const c = await s.update(`${p}a`, "3", b.modRevision);
        assert.equal(c.value, "3");
      });

      t("update and delete of a missing key fail NOT_FOUND, with or without a revision", async (s, p) => {
        const r0 = await s.revision();
        await rejectsWith(s.update(`${p}nope`, "1"), DatastoreErrorCode.NOT_FOUND, isNotFound);
        await rejectsWith(s.update(`${p}nope`, "1", 1), DatastoreErrorCode.NOT_FOUND, isNotFound);
        await rejectsWith(s.delete(`${p}nope`), DatastoreErrorCode.NOT_FOUND, isNotFound);
        await rejectsWith(s.delete(`${p}nope`, 1), DatastoreErrorCode.NOT_FOUND, isNotFound);
        assert.equal(await s.get(`${p}nope`), undefined);
        assert.equal(await s.revision(), r0);
      });

      t("delete returns the previous KV; a re-create starts a new createRevision", async (s, p) => {
        const a = await s.create(`${p}a`, "1");
        const b = await s.update(`${p}a`, "2");
        const gone = await s.delete(`${p}a`, b.modRevision);
        assert.deepEqual(gone, b);
        assert.equal(await s.get(`${p}a`), undefined);
        assert.equal(await s.revision(), b.modRevision + 1);
        const c = await s.create(`${p}a`, "3");
        assert.equal(c.createRevision, b.modRevision + 2);
        assert.notEqual(c.createRevision, a.createRevision);
      });

      t("delete with a stale revision fails CONFLICT and keeps the key", async (s, p) => {
        const a = await s.create(`${p}a`, "1");
        const b = await s.update(`${p}a`, "2");
        await rejectsWith(s.delete(`${p}a`, a.modRevision), DatastoreErrorCode.CONFLICT, isConflict);
        assert.deepEqual(await s.get(`${p}a`), b);
      });

      t("every successful write bumps the revision by exactly 1, a failed one by 0", async (s, p) => {
        let rev = await s.revision();
        const step = async (op: () => Promise<unknown>, ok: boolean) => {
          if (ok) await op();
          else await assert.rejects(op());
          if (ok) rev++;
          assert.equal(await s.revision(), rev);
        };
        await step(() => s.create(`${p}a`, "1"), true);
        await step(() => s.create(`${p}a`, "1"), false);
        await step(() => s.update(`${p}a`, "2"), true);
        await step(() => s.update(`${p}a`, "3", 0), false);
        await step(() => s.create(`${p}b`, "1"), true);
        await step(() => s.delete(`${p}a`), true);
        await step(() => s.delete(`${p}a`), false);
        await step(() => s.update(`${p}a`, "x"), false);
      });

      t("values round-trip exactly: empty, unicode, 256 KiB", async (s, p) => {
        const values = [
          "",
          "ünïcødé ✓ 𝄞 \u0000 \n\t\"'\\",
          "x".repeat(256 * 1024),
          '{"spec":{"cidr":"198.19.0.0/16"}}',
        ];
        for (const [i, v] of values.entries()) {
          const kv = await s.create(`${p}${i}`, v);
          assert.equal(kv.value, v);
          assert.equal((await s.get(`${p}${i}`))?.value, v);
        }
        const { items } = await s.list(p);
        assert.deepEqual(
          items.map((kv) => kv.value),
          values,
        );
      });

      t("malformed arguments fail INVALID_ARGUMENT", async (s, p) => {
        const bad = DatastoreErrorCode.INVALID_ARGUMENT;
        await rejectsWith(s.create("", "1"), bad);
        await rejectsWith(s.get(""), bad);
        await rejectsWith(s.create(`${p}\ud800`, "1"), bad);
        await s.create(`${p}a`, "1");
        await rejectsWith(s.update(`${p}a`, "1", -1), bad);
        await rejectsWith(s.update(`${p}a`, "1", 1.5), bad);
        await rejectsWith(s.compact(-1), bad);
      });

      t("keys with unusual characters are stored as given", async (s, p) => {
        const keys = [`${p}with space`, `${p}%20`, `${p}'quote"`, `${p}a/b/c/`, `${p}*?[]`, `${p}ünï/𝄞`];
        for (const k of keys) await s.create(k, k);
        for (const k of keys) assert.equal((await s.get(k))?.value, k);
        assert.equal((await s.list(`${p}*?[`)).items.length, 1);
        assert.equal((await s.list(`${p}%`)).items.length, 1);
      });
    });

    describe("list", () => {
      t("is sorted by key (code point order) and scoped by plain string prefix", async (s, p) => {
        const keys = [
          "foo/b",
          "foo2",
          "foo/",
          "fo",
          "foo/a",
          "foo/\u{10000}",
          "foo/\uE000",
          "foo/a/deeper",
          "foo",
        ];
        for (const k of keys) await s.create(`${p}${k}`, JSON.stringify(k));
        const names = async (prefix: string) =>
          (await s.list(`${p}${prefix}`)).items.map((kv) => kv.key.slice(p.length));
        assert.deepEqual(await names("foo/"), [
          "foo/",
          "foo/a",
          "foo/a/deeper",
          "foo/b",
          "foo/\uE000",
          "foo/\u{10000}",
        ]);
        assert.deepEqual(await names("foo"), [
          "foo",
          "foo/",
          "foo/a",
          "foo/a/deeper",
          "foo/b",
          "foo/\uE000",
          "foo/\u{10000}",
          "foo2",
        ]);
        assert.deepEqual(await names("foo/a"), ["foo/a", "foo/a/deeper"]);
        assert.deepEqual(await names("foo/\u{10000}"), ["foo/\u{10000}"]);
        assert.deepEqual(await names("zzz"), []);
        assert.equal((await names("")).length, keys.length);
      });

      t("returns the store revision the listing reflects, and full KVs", async (s, p) => {
        const a = await s.create(`${p}a`, "1");
        const b = await s.create(`${p}b`, "2");
        const b2 = await s.update(`${p}b`, "3");
        const l = await s.list(p);
        assert.equal(l.revision, await s.revision());
        assert.ok(l.revision >= b2.modRevision);
        assert.deepEqual(l.items, [a, b2]);
        assert.equal(b.createRevision, b2.createRevision);
        const empty = await s.list(`${p}none/`);
        assert.deepEqual(empty.items, []);
        assert.equal(empty.revision, l.revision);
      });
    });

    describe("watch", () => {
      t("delivers every later event under the prefix, in order, with prev values", async (s, p) => {
        const r0 = await s.revision();
        const w = new Recorder(s, `${p}foo/`, r0);
        try {
          const a = await s.create(`${p}foo/a`, "1");
          await s.create(`${p}foo2`, "sibling"); // not under `foo/`
          const a2 = await s.update(`${p}foo/a`, "2", a.modRevision);
          const b = await s.create(`${p}foo/b`, "3");
          await s.delete(`${p}foo/a`);
          await s.update(`${p}foo2`, "sibling2");
          const events = await w.waitForEvents(4);
          await settle();
          assert.deepEqual(events.map(show), [
            `put ${p}foo/a=1@${r0 + 1}/c${r0 + 1}`,
            `put ${p}foo/a=2@${r0 + 3}/c${r0 + 1} prev=1@${r0 + 1}`,
            `put ${p}foo/b=3@${r0 + 4}/c${r0 + 4}`,
            `delete ${p}foo/a@${r0 + 5} prev=2@${r0 + 3}`,
          ]);
          const [e0, e1, e2, e3] = events;
          assert.deepEqual(e0, { type: "put", kv: a });
          assert.deepEqual(e1, { type: "put", kv: a2, prev: a });
          assert.deepEqual(e2, { type: "put", kv: b });
          assert.deepEqual(e3, { type: "delete", key: `${p}foo/a`, revision: r0 + 5, prev: a2 });
          assert.deepEqual(w.errors, []);
        } finally {
          w.watch.close();
        }
      });

      t("calls handlers asynchronously, never inside the write call", async (s, p) => {
        let inside = false;
        const during: boolean[] = [];
        const w = s.watch(p, await s.revision(), {
          onEvents: () => during.push(inside),
          onError: () => during.push(inside),
        });
        try {
          for (let i = 0; i < 5; i++) {
            inside = true;
            const pending = s.create(`${p}${i}`, "1");
            inside = false;
            await pending;
          }
          await until(
            () => during.length > 0,
            () => "an event",
          );
          await settle();
          assert.ok(!during.includes(true), "a handler ran synchronously inside a write call");
        } finally {
          w.close();
        }
      });

      t("from a past revision replays history, then continues live", async (s, p) => {
        const r0 = await s.revision();
        await s.create(`${p}a`, "1");
        await s.create(`${p}b`, "1");
        await s.update(`${p}a`, "2");
        await s.delete(`${p}b`);
        const w = new Recorder(s, p, r0 + 1);
        try {
          await w.waitForEvents(3);
          await s.create(`${p}c`, "1");
          const events = await w.waitForEvents(4);
          assert.deepEqual(
            events.map((e) => `${e.type} ${keyOf(e).slice(p.length)}@${revOf(e) - r0}`),
            ["put b@2", "put a@3", "delete b@4", "put c@5"],
          );
        } finally {
          w.watch.close();
        }
      });

      t("from the current revision delivers nothing until a write", async (s, p) => {
        await s.create(`${p}a`, "1");
        const w = new Recorder(s, p, await s.revision());
        try {
          await settle(60);
          assert.equal(w.calls, 0);
          await s.create(`${p}b`, "1");
          const [e] = await w.waitForEvents(1);
          assert.equal(keyOf(e!), `${p}b`);
        } finally {
          w.watch.close();
        }
      });

      t(
        "resumed from the last seen revision after close, misses nothing and repeats nothing",
        async (s, p) => {
          const r0 = await s.revision();
          const seen: WatchEvent[] = [];
          let w = new Recorder(s, p, r0);
          for (let i = 0; i < 10; i++) await s.create(`${p}${i}`, String(i));
          await w.waitForEvents(10);
          seen.push(...w.events);
          w.watch.close();
          for (let i = 0; i < 10; i++) await s.update(`${p}${i}`, `${i}'`);
          for (let i = 0; i < 5; i++) await s.delete(`${p}${i}`);
          w = new Recorder(s, p, revOf(seen[seen.length - 1]!));
          try {
            await s.create(`${p}late`, "x");
            await w.waitForEvents(16);
            await settle();
            seen.push(...w.events);
            assert.deepEqual(
              seen.map((e) => revOf(e) - r0),
              Array.from({ length: 26 }, (_, i) => i + 1),
            );
          } finally {
            w.watch.close();
          }
        },
      );

      t("no handler runs after Watch.close(), even when closed inside onEvents", async (s, p) => {
        const r0 = await s.revision();
        for (let i = 0; i < 3; i++) await s.create(`${p}${i}`, "1");
        const w = new Recorder(s, p, r0, (r) => r.watch.close());
        await until(
          () => w.calls > 0,
          () => "the first batch",
        );
        for (let i = 3; i < 6; i++) await s.create(`${p}${i}`, "1");
        const outside = new Recorder(s, p, r0);
        outside.watch.close(); // closed before any delivery: never called
        await settle(100);
        assert.equal(w.calls, 1);
        assert.equal(outside.calls, 0);
        assert.deepEqual(w.errors, []);
      });

      t("watches on overlapping prefixes each get their own complete stream", async (s, p) => {
        const r0 = await s.revision();
        const all = new Recorder(s, p, r0);
        const foo = new Recorder(s, `${p}foo/`, r0);
        const bar = new Recorder(s, `${p}bar/`, r0 + 2);
        try {
          await s.create(`${p}foo/1`, "1");
          await s.create(`${p}bar/1`, "1");
          await s.create(`${p}foo/2`, "1");
          await s.create(`${p}bar/2`, "1");
          await all.waitForEvents(4);
          await foo.waitForEvents(2);
          await bar.waitForEvents(1);
          await settle();
          assert.deepEqual(all.events.map(revOf), [r0 + 1, r0 + 2, r0 + 3, r0 + 4]);
          assert.deepEqual(foo.events.map(revOf), [r0 + 1, r0 + 3]);
          assert.deepEqual(bar.events.map(revOf), [r0 + 4]);
        } finally {
          all.watch.close();
          foo.watch.close();
          bar.watch.close();
        }
      });

      t("a handler that throws ends the watch with that error", async (s, p) => {
        const errors: Error[] = [];
        let calls = 0;
        const w = s.watch(p, await s.revision(), {
          onEvents: () => {
            calls++;
            throw new Error("handler bug");
          },
          onError: (e) => errors.push(e),
        });
        try {
          await s.create(`${p}a`, "1");
          await until(
            () => errors.length > 0,
            () => "onError",
          );
          await s.create(`${p}b`, "1");
          await settle();
          assert.equal(calls, 1);
          assert.equal(errors.length, 1);
          assert.equal(errors[0]!.message, "handler bug");
        } finally {
          w.close();
        }
      });

      t("a long history replays completely and in order", async (s, p) => {
        const r0 = await s.revision();
        const N = 2500;
        for (let i = 0; i < N; i++) await s.create(`${p}${String(i).padStart(5, "0")}`, String(i));
        const w = new Recorder(s, p, r0);
        try {
          const events = await w.waitForEvents(N, 20_000);
          assert.equal(events.length, N);
          events.forEach((e, i) => assert.equal(revOf(e), r0 + 1 + i));
        } finally {
          w.watch.close();
        }
      });
    });

    describe("compaction", () => {
      t("a watch from below the compaction point fails REVISION_COMPACTED; from it, works", async (s, p) => {
        const r0 = await s.revision();
        for (let i = 0; i < 5; i++) await s.create(`${p}${i}`, "1");
        await s.compact(r0 + 3);
        const below = new Recorder(s, p, r0 + 2);
        const err = await below.waitForError();
        assert.ok(isCompacted(err), `expected REVISION_COMPACTED, got ${String(err)}`);
        assert.equal(below.calls, 0);
        const at = new Recorder(s, p, r0 + 3);
        try {
          const events = await at.waitForEvents(2);
          assert.deepEqual(events.map(revOf), [r0 + 4, r0 + 5]);
          assert.equal((await s.list(p)).items.length, 5);
        } finally {
          at.watch.close();
        }
      });

      t("compacting beyond the current revision fails; compacting lower again is harmless", async (s, p) => {
        await s.create(`${p}a`, "1");
        const r = await s.revision();
        await rejectsWith(s.compact(r + 10), DatastoreErrorCode.INVALID_ARGUMENT);
        await s.compact(r);
        await s.compact(r - 1);
        await s.compact(r);
        const w = new Recorder(s, p, r);
        try {
          await s.update(`${p}a`, "2");
          await w.waitForEvents(1);
        } finally {
          w.watch.close();
        }
      });

      t("an open watch of this client that is caught up is not broken by compaction", async (s, p) => {
        const r0 = await s.revision();
        const w = new Recorder(s, p, r0);
        try {
          for (let i = 0; i < 5; i++) await s.create(`${p}${i}`, "1");
          await s.compact(r0 + 5);
          for (let i = 5; i < 8; i++) await s.create(`${p}${i}`, "1");
          const events = await w.waitForEvents(8);
          assert.deepEqual(
            events.map((e) => revOf(e) - r0),
            [1, 2, 3, 4, 5, 6, 7, 8],
          );
        } finally {
          w.watch.close();
        }
      });
    });

    describe("concurrency", () => {
      const { tasks, increments } = opts.casLoad ?? { tasks: 8, increments: 40 };
      t(`${tasks} concurrent tasks × ${increments} CAS increments lose no update`, async (s, p) => {
        const key = `${p}counter`;
        const r0 = await s.revision();
        const w = new Recorder(s, key, r0);
        try {
          const deadline = Date.now() + 30_000;
          await Promise.all(
            Array.from({ length: tasks }, async () => {
              for (let i = 0; i < increments; i++) await casIncrement(s, key, deadline);
            }),
          );
          const total = tasks * increments;
          const kv = (await s.get(key))!;
          assert.equal((JSON.parse(kv.value) as { n: number }).n, total);
          const events = await w.waitForEvents(total);
          assert.deepEqual(
            events.map((e) => (e.type === "put" ? (JSON.parse(e.kv.value) as { n: number }).n : -1)),
            Array.from({ length: total }, (_, i) => i + 1),
          );
          assert.equal(await s.revision(), r0 + total);
        } finally {
          w.watch.close();
        }
      });

      t("concurrent creates of one key: exactly one wins", async (s, p) => {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) => s.create(`${p}x`, String(i))),
        );
        const won = results.filter((r): r is PromiseFulfilledResult<KV> => r.status === "fulfilled");
        assert.equal(won.length, 1);
        for (const r of results) if (r.status === "rejected") assert.ok(isAlreadyExists(r.reason));
        assert.deepEqual(await s.get(`${p}x`), won[0]!.value);
      });
    });

    test(
      "close: later operations fail CLOSED and open watches end with CLOSED",
      { timeout: TEST_TIMEOUT },
      async () => {
        const { store: s, cleanup } = await factory();
        try {
          const p = `/conformance/${run}/${n++}/`;
          await s.create(`${p}a`, "1");
          const w = new Recorder(s, p, await s.revision());
          await s.close();
          const err = await w.waitForError();
          assert.equal((err as { code?: string }).code, DatastoreErrorCode.CLOSED);
          const closed = DatastoreErrorCode.CLOSED;
          await rejectsWith(s.get(`${p}a`), closed);
          await rejectsWith(s.list(p), closed);
          await rejectsWith(s.create(`${p}b`, "1"), closed);
          await rejectsWith(s.update(`${p}a`, "1"), closed);
          await rejectsWith(s.delete(`${p}a`), closed);
          await rejectsWith(s.revision(), closed);
          const late = new Recorder(s, p, 0);
          assert.equal(((await late.waitForError()) as { code?: string }).code, closed);
          await s.close(); // idempotent
        } finally {
          await cleanup();
        }
      },
    );

    describeProcesses(name, factory, opts, () => `/conformance/${run}/${n++}/`);
  });
}

/** Tests with real worker processes opening the same store by URL. */
function describeProcesses(
  name: string,
  factory: () => Promise<ConformanceFixture>,
  opts: ConformanceOptions,
  nextPrefix: () => string,
): void {
  const skip =
    opts.spawnUrl === undefined ? `the ${name} driver is not reachable from other processes` : false;
  const { processes, increments } = opts.processLoad ?? { processes: 4, increments: 60 };
  const bound = opts.crossProcessLatencyMs ?? 2_000;

  describe("across processes", { skip }, () => {
    /** Fresh store + URL; kills every worker and cleans up even when the test fails. */
    const withUrl = async (fn: (s: Datastore, url: string, p: string) => Promise<void>) => {
      const { store, cleanup } = await factory();
      try {
        const url = opts.spawnUrl?.(store);
        assert.ok(url !== undefined, "spawnUrl returned no URL");
        await fn(store, url, nextPrefix());
      } finally {
        await killAllWorkers();
        await cleanup();
      }
    };

    test(
      `${processes} processes CAS-incrementing a shared key and their own lose no update`,
      { timeout: 120_000 },
      () =>
        withUrl(async (s, url, p) => {
          const r0 = await s.revision();
          const procs: WorkerProc[] = Array.from({ length: processes }, (_, i) =>
            spawnWorker({
              kind: "incr",
              url,
              keys: [`${p}shared`, `${p}own/${i}`],
              count: increments,
              deadlineMs: 90_000,
            }),
          );
          await Promise.all(procs.map((w) => w.ready()));
          for (const w of procs) w.go();
          const dones = await Promise.all(procs.map((w) => w.finished(100_000)));
          const total = processes * increments;
          const value = async (k: string) => (JSON.parse((await s.get(k))!.value) as { n: number }).n;
          assert.equal(await value(`${p}shared`), total);
          for (let i = 0; i < processes; i++) assert.equal(await value(`${p}own/${i}`), increments);
          // Every write got its own revision: the revisions the workers saw are unique and,
          // with nothing else writing, exactly r0+1 .. r0+2·total.
          const revs = dones.flatMap((d) => d.revisions ?? []).sort((a, b) => a - b);
          assert.deepEqual(
            revs,
            Array.from({ length: 2 * total }, (_, i) => r0 + 1 + i),
          );
          assert.equal(await s.revision(), r0 + 2 * total);
          // The event log replays the shared counter 1..total with no value twice.
          const w = new Recorder(s, `${p}shared`, r0);
          try {
            const events = await w.waitForEvents(total, 20_000);
            assert.deepEqual(
              events.map((e) => (e.type === "put" ? (JSON.parse(e.kv.value) as { n: number }).n : -1)),
              Array.from({ length: total }, (_, i) => i + 1),
            );
          } finally {
            w.watch.close();
          }
          const conflicts = dones.reduce((a, d) => a + d.conflicts, 0);
          assert.ok(conflicts >= 0);
        }),
    );

    test(
      "a watcher in one process sees another process's writes, in order, within a bounded time",
      { timeout: 60_000 },
      () =>
        withUrl(async (s, url, p) => {
          const count = 50;
          const r0 = await s.revision();
          const watcher = spawnWorker({
            kind: "watch",
            url,
            prefix: p,
            afterRevision: r0,
            report: true,
            expect: count,
            deadlineMs: 30_000,
          });
          await watcher.ready();
          const writer = spawnWorker({
            kind: "write",
            url,
            prefix: p,
            count,
            mode: "create",
            paceMs: 2,
            deadlineMs: 30_000,
          });
          await writer.ready();
          writer.go();
          await writer.finished(30_000);
          const done = await watcher.done(30_000);
          const events = watcher.messages.flatMap((m) => (m.type === "events" ? m.events : []));
          assert.deepEqual(
            events.map((e) => e.rev),
            Array.from({ length: count }, (_, i) => r0 + 1 + i),
          );
          const lat = [...(done.latenciesMs ?? [])].sort((a, b) => a - b);
          assert.equal(lat.length, count);
          assert.ok(
            lat[lat.length - 1]! < bound,
            `slowest cross-process delivery ${lat[lat.length - 1]} ms ≥ ${bound} ms`,
          );
          // And this process's own watch sees the other process's writes too.
          const here = new Recorder(s, p, r0);
          try {
            await here.waitForEvents(count);
          } finally {
            here.watch.close();
          }
        }),
    );
  });
}
