/**
 * Several real processes on one sqlite file, as on a host where the node agent, CNI plugin
 * invocations and calicoctl share /var/lib/calico/calico-ts.db. Checks the file itself (the
 * event log, integrity) besides what the workers report.
 */
import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { killAllWorkers, spawnWorker, type WorkerProc } from "../src/datastore/testing/procs.js";

const dir = mkdtempSync(join(tmpdir(), `calico-ts-mp-test-${process.pid}-`));
afterEach(() => killAllWorkers());
after(async () => {
  await killAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const freshUrl = (): { path: string; url: string } => {
  const path = join(dir, `run-${n++}`, "calico-ts.db");
  return { path, url: `sqlite://${path}` };
};

interface FileFacts {
  revision: number;
  eventRevs: number[];
  integrity: string;
  counters: Map<string, number>;
  /** Values of each counter key in event-log order. */
  history: Map<string, number[]>;
}

/** Read the file directly (not through the driver) to check the invariants on disk. */
function facts(path: string): FileFacts {
  // A read-write connection: a read-only one cannot recover or create the WAL index itself.
  const db = new Database(path, { timeout: 5000 });
  try {
    const revision = db.prepare("SELECT revision FROM meta WHERE id = 1").pluck().get() as number;
    const eventRevs = db.prepare("SELECT rev FROM events ORDER BY rev").pluck().all() as number[];
    const integrity = db.pragma("integrity_check", { simple: true }) as string;
    const counters = new Map<string, number>();
    for (const r of db.prepare("SELECT key, value FROM kv").all() as { key: string; value: string }[]) {
      counters.set(r.key, r.value.startsWith("{") ? (JSON.parse(r.value) as { n: number }).n : NaN);
    }
    const history = new Map<string, number[]>();
    for (const r of db.prepare("SELECT key, value FROM events WHERE type = 'put' ORDER BY rev").all() as {
      key: string;
      value: string;
    }[]) {
      const h = history.get(r.key) ?? [];
      h.push((JSON.parse(r.value) as { n: number }).n);
      history.set(r.key, h);
    }
    return { revision, eventRevs, integrity, counters, history };
  } finally {
    db.close();
  }
}

const oneTo = (k: number) => Array.from({ length: k }, (_, i) => i + 1);
const fromTo = (a: number, b: number) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
/** SqliteDatastore's default event-log retention (revisions). */
const RETAINED = 10_000;

const startIncr = async (url: string, count: number, keysFor: (i: number) => string[], procs: number) => {
  const ws: WorkerProc[] = Array.from({ length: procs }, (_, i) =>
    spawnWorker({ kind: "incr", url, keys: keysFor(i), count, deadlineMs: 90_000 }),
  );
  await Promise.all(ws.map((w) => w.ready()));
  for (const w of ws) w.go();
  return ws;
};

describe("sqlite across processes", () => {
  test(
    "5 processes CAS-increment shared and own keys: no lost update, gap-free event log",
    { timeout: 120_000 },
    async () => {
      const { path, url } = freshUrl();
      const P = 5;
      const C = 100;
      const ws = await startIncr(url, C, (i) => ["/c/shared", `/c/own-${i}`], P);
      const dones = await Promise.all(ws.map((w) => w.finished(100_000)));
      const f = facts(path);
      assert.equal(f.integrity, "ok");
      assert.equal(f.counters.get("/c/shared"), P * C);
      for (let i = 0; i < P; i++) assert.equal(f.counters.get(`/c/own-${i}`), C);
      assert.equal(f.revision, 2 * P * C);
      assert.deepEqual(f.eventRevs, oneTo(2 * P * C), "one event row per revision, none missing or repeated");
      assert.deepEqual(
        f.history.get("/c/shared"),
        oneTo(P * C),
        "the shared counter went 1, 2, 3, … with no value twice",
      );
      const conflicts = dones.reduce((a, d) => a + d.conflicts, 0);
      console.log(`# ${P} processes × ${2 * C} increments: ${conflicts} CAS conflicts retried`);
    },
  );

  test(
    "a watcher process sees two other processes' writes, every one, in revision order, quickly",
    { timeout: 60_000 },
    async () => {
      const { url } = freshUrl();
      const count = 100;
      const watcher = spawnWorker({
        kind: "watch",
        url,
        prefix: "/w/",
        afterRevision: 0,
        report: true,
        expect: 2 * count,
        deadlineMs: 30_000,
      });
      await watcher.ready();
      const writers = [0, 1].map(() =>
        spawnWorker({
          kind: "write",
          url,
          prefix: "/w/",
          count,
          mode: "create",
          paceMs: 1,
          deadlineMs: 30_000,
        }),
      );
      await Promise.all(writers.map((w) => w.ready()));
      for (const w of writers) w.go();
      await Promise.all(writers.map((w) => w.finished(30_000)));
      const done = await watcher.finished(30_000);
      const revs = watcher.messages.flatMap((m) => (m.type === "events" ? m.events.map((e) => e.rev) : []));
      assert.deepEqual(revs, oneTo(2 * count));
      const lat = [...done.latenciesMs!].sort((a, b) => a - b);
      const p50 = lat[Math.floor(lat.length / 2)]!;
      const max = lat[lat.length - 1]!;
      console.log(`# cross-process watch latency: p50 ${p50.toFixed(2)} ms, max ${max.toFixed(2)} ms`);
      assert.ok(max < 2000, `slowest delivery took ${max} ms`);
    },
  );

  test(
    "processes SIGKILLed mid-run leave the file consistent for the others",
    { timeout: 120_000 },
    async () => {
      const { path, url } = freshUrl();
      const C = 150;
      // Victims never finish on their own (10,000 increments); they are killed soon after their
      // 40th. On a starved machine they may still write past the driver's 10,000-revision
      // event-log retention, so the log checks below allow a trimmed (but gap-free) head.
      const victims = await startIncr(url, 10_000, (i) => ["/k/shared", `/k/victim-${i}`], 2);
      const survivors = await startIncr(url, C, (i) => ["/k/shared", `/k/own-${i}`], 3);
      // Let every victim get going, then kill it without warning, mid-whatever-it-was-doing.
      await Promise.all(
        victims.map(async (v) => {
          await v.waitFor((m) => m.type === "progress" && m.done >= 40, 30_000);
          v.kill("SIGKILL");
          const { signal } = await v.exited;
          assert.equal(signal, "SIGKILL");
        }),
      );
      await Promise.all(survivors.map((w) => w.finished(100_000)));
      const f = facts(path);
      assert.equal(f.integrity, "ok");
      for (let i = 0; i < 3; i++) assert.equal(f.counters.get(`/k/own-${i}`), C);
      // Whatever the victims managed before dying, each committed increment is in the log
      // exactly once, and the counters equal their committed history.
      // The event log is gap-free up to the store revision; it starts at 1 unless the driver's
      // retention trimmed it (only possible past 10,000 revisions).
      const first = f.eventRevs[0] ?? 1;
      assert.ok(first === 1 || f.revision > RETAINED, `log starts at ${first} with revision ${f.revision}`);
      assert.deepEqual(f.eventRevs, fromTo(first, f.revision));
      // Each committed increment of each counter is in the (retained) log exactly once, in order,
      // ending at the counter's stored value.
      const counterHistory = (key: string) => {
        const h = f.history.get(key) ?? [];
        const value = f.counters.get(key)!;
        assert.deepEqual(h, fromTo(value - h.length + 1, value), `history of ${key}`);
        if (first === 1) assert.equal(h.length, value, `whole history of ${key}`);
        return value;
      };
      const shared = counterHistory("/k/shared");
      assert.ok(shared >= 3 * C + 2 * 20);
      for (let i = 0; i < 2; i++) counterHistory(`/k/victim-${i}`);
      // And a newcomer can keep going.
      const [late] = await startIncr(url, 10, () => ["/k/shared"], 1);
      await late!.finished(30_000);
      assert.equal(facts(path).counters.get("/k/shared"), shared + 10);
    },
  );

  test(
    "a process killed inside a write transaction: its half-write vanishes, the others proceed",
    { timeout: 60_000 },
    async () => {
      const { path, url } = freshUrl();
      const s = new SqliteDatastore(path);
      await s.create("/h/before", JSON.stringify({ n: 1 }));
      await s.close();
      const holder = spawnWorker({ kind: "hold", url, key: "/h/half-written", deadlineMs: 60_000 });
      await holder.ready();
      // These block on the holder's write lock…
      const ws = await startIncr(url, 20, (i) => ["/h/shared", `/h/own-${i}`], 3);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        ws.some((w) => w.messages.some((m) => m.type === "done")),
        false,
        "no write can commit while another process holds the write lock",
      );
      assert.ok(
        statSync(`${path}-wal`).size > 4 * 1024 * 1024,
        "the holder's uncommitted pages are in the WAL",
      );
      holder.kill("SIGKILL");
      await holder.exited;
      // …and go through once the kernel drops the dead process's locks.
      await Promise.all(ws.map((w) => w.finished(60_000)));
      const f = facts(path);
      assert.equal(f.integrity, "ok");
      assert.equal(f.counters.has("/h/half-written"), false);
      assert.equal(f.counters.has("/h/half-written/big"), false);
      assert.equal(f.counters.get("/h/shared"), 60);
      assert.equal(f.revision, 1 + 60 + 60);
      assert.deepEqual(f.eventRevs, oneTo(f.revision));
    },
  );

  test("processes opening a brand-new file at the same moment all succeed", { timeout: 60_000 }, async () => {
    const { path, url } = freshUrl();
    const P = 6;
    const ws: WorkerProc[] = Array.from({ length: P }, () =>
      spawnWorker({ kind: "incr", url, keys: ["/new/counter"], count: 10, deadlineMs: 30_000 }),
    );
    await Promise.all(ws.map((w) => w.ready()));
    for (const w of ws) w.go();
    await Promise.all(ws.map((w) => w.finished(30_000)));
    const f = facts(path);
    assert.equal(f.integrity, "ok");
    assert.equal(f.counters.get("/new/counter"), P * 10);
    assert.deepEqual(f.eventRevs, oneTo(P * 10));
  });
});
