/**
 * A child process for the multi-process datastore tests and the benchmark, started with
 * `child_process.fork(<compiled path>, [JSON job])`. It opens the datastore named in the job,
 * says `ready`, waits for `go`, does the job and reports `done` over the IPC channel. It
 * exits when the parent disconnects, so a crashed test never leaves it behind.
 */
import Database from "better-sqlite3";
import { openDatastore, sqlitePathFromUrl } from "../open.js";
import { isAlreadyExists, isConflict, type Datastore, type WatchEvent } from "../types.js";

export type WorkerJob =
  | {
      /** CAS-increment each key `count` times, interleaved. */
      kind: "incr";
      url: string;
      keys: string[];
      count: number;
      deadlineMs: number;
    }
  | {
      /** Watch `prefix` from `afterRevision`; report events (and latencies of stamped values). */
      kind: "watch";
      url: string;
      prefix: string;
      afterRevision: number;
      /** Send every event to the parent as it arrives. */
      report: boolean;
      /** Say `done` (with latencies) after this many events. */
      expect: number;
      deadlineMs: number;
    }
  | {
      /** Write `count` values stamped with the time: creates under prefix, or updates of one key. */
      kind: "write";
      url: string;
      prefix: string;
      count: number;
      mode: "create" | "update";
      /** Pause between writes (ms); 0 writes back to back. */
      paceMs: number;
      deadlineMs: number;
    }
  | {
      /**
       * sqlite only: take the write lock with BEGIN IMMEDIATE, write half of a revision (a kv
       * row and its event row) and never commit: what a process killed mid-write leaves behind.
       */
      kind: "hold";
      url: string;
      key: string;
      deadlineMs: number;
    };

export type WorkerMessage =
  | { type: "ready"; revision: number; pid: number }
  | { type: "progress"; done: number }
  | { type: "events"; events: { rev: number; key: string; type: string; value: string | null }[] }
  | {
      type: "done";
      done: number;
      conflicts: number;
      elapsedMs: number;
      latenciesMs?: number[];
      revisions?: number[];
    }
  | { type: "error"; code: string; message: string };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

const send = (m: WorkerMessage): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(m, undefined, {}, () => resolve());
  });

const revOf = (e: WatchEvent): number => (e.type === "put" ? e.kv.modRevision : e.revision);

/** One compare-and-swap increment of the JSON counter `{"n": number}` at `key`; retries on conflict. */
export async function casIncrement(
  store: Datastore,
  key: string,
  deadline: number,
): Promise<{ conflicts: number; revision: number }> {
  let conflicts = 0;
  for (let attempt = 0; attempt < 100_000; attempt++) {
    if (Date.now() > deadline) break;
    const cur = await store.get(key);
    try {
      if (cur === undefined) {
        const kv = await store.create(key, JSON.stringify({ n: 1 }));
        return { conflicts, revision: kv.modRevision };
      }
      const n = (JSON.parse(cur.value) as { n: number }).n;
      const kv = await store.update(key, JSON.stringify({ n: n + 1 }), cur.modRevision);
      return { conflicts, revision: kv.modRevision };
    } catch (err) {
      if (!isConflict(err) && !isAlreadyExists(err)) throw err;
      conflicts++;
    }
  }
  throw new Error(`increment of "${key}" did not succeed before the deadline (${conflicts} conflicts)`);
}

async function run(job: WorkerJob, go: Promise<void>): Promise<void> {
  if (job.kind === "hold") return hold(job);
  const store = await openDatastore(job.url);
  await send({ type: "ready", revision: await store.revision(), pid: process.pid });
  const deadline = Date.now() + job.deadlineMs;
  switch (job.kind) {
    case "incr": {
      await go;
      const start = nowMs();
      let done = 0;
      let conflicts = 0;
      const revisions: number[] = [];
      for (let i = 0; i < job.count; i++) {
        for (const key of job.keys) {
          const r = await casIncrement(store, key, deadline);
          conflicts += r.conflicts;
          revisions.push(r.revision);
          done++;
        }
        if (i % 20 === 19) void send({ type: "progress", done });
      }
      await send({ type: "done", done, conflicts, elapsedMs: nowMs() - start, revisions });
      break;
    }
    case "write": {
      await go;
      const start = nowMs();
      let prev = job.mode === "update" ? await store.get(job.prefix) : undefined;
      if (job.mode === "update" && prev === undefined) prev = await store.create(job.prefix, "{}");
      for (let i = 0; i < job.count && Date.now() < deadline; i++) {
        const value = JSON.stringify({ t: nowMs(), i, pid: process.pid });
        if (job.mode === "create") await store.create(`${job.prefix}${process.pid}-${i}`, value);
        else prev = await store.update(job.prefix, value, prev!.modRevision);
        if (job.paceMs > 0) await new Promise((r) => setTimeout(r, job.paceMs));
      }
      await send({ type: "done", done: job.count, conflicts: 0, elapsedMs: nowMs() - start });
      break;
    }
    case "watch": {
      const start = nowMs();
      const latencies: number[] = [];
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`watch saw ${seen} of ${job.expect} events before the deadline`)),
          job.deadlineMs,
        );
        const w = store.watch(job.prefix, job.afterRevision, {
          onEvents(events) {
            const at = nowMs();
            for (const e of events) {
              const value = e.type === "put" ? e.kv.value : null;
              if (value !== null && value.startsWith('{"t":'))
                latencies.push(at - (JSON.parse(value) as { t: number }).t);
            }
            seen += events.length;
            if (job.report) {
              void send({
                type: "events",
                events: events.map((e) => ({
                  rev: revOf(e),
                  key: e.type === "put" ? e.kv.key : e.key,
                  type: e.type,
                  value: e.type === "put" ? e.kv.value : null,
                })),
              });
            }
            if (seen >= job.expect) {
              clearTimeout(timer);
              w.close();
              resolve();
            }
          },
          onError(err) {
            clearTimeout(timer);
            reject(err);
          },
        });
      });
      await send({
        type: "done",
        done: seen,
        conflicts: 0,
        elapsedMs: nowMs() - start,
        latenciesMs: latencies,
      });
      break;
    }
  }
  await store.close();
}

async function hold(job: Extract<WorkerJob, { kind: "hold" }>): Promise<void> {
  const db = new Database(sqlitePathFromUrl(job.url), { timeout: 5000 });
  db.exec("BEGIN IMMEDIATE");
  const rev = (db.prepare("SELECT revision FROM meta WHERE id = 1").pluck().get() as number) + 1;
  db.prepare("INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, '{\"n\":-1}', ?, ?)").run(
    job.key,
    rev,
    rev,
  );
  db.prepare(
    "INSERT INTO events (rev, key, type, value, create_rev) VALUES (?, ?, 'put', '{\"n\":-1}', ?)",
  ).run(rev, job.key, rev);
  // More than the page cache holds (16 MB), so SQLite spills uncommitted frames into the WAL
  // file: the others must ignore them once this process is gone.
  db.pragma("cache_size = -2000");
  db.prepare("INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)").run(
    `${job.key}/big`,
    "x".repeat(8 * 1024 * 1024),
    rev,
    rev,
  );
  await send({ type: "ready", revision: rev - 1, pid: process.pid });
  await new Promise((r) => setTimeout(r, job.deadlineMs)); // killed long before this
}

if (process.send !== undefined && process.argv[2] !== undefined) {
  const job = JSON.parse(process.argv[2]) as WorkerJob;
  let letGo!: () => void;
  const go = new Promise<void>((r) => (letGo = r));
  process.on("message", (m: { type?: string }) => {
    if (m.type === "go") letGo();
    if (m.type === "stop") process.exit(0);
  });
  process.on("disconnect", () => process.exit(0));
  run(job, go).then(
    () => process.disconnect(),
    async (err: unknown) => {
      const e = err as { code?: string; message?: string };
      await send({ type: "error", code: e.code ?? "ERROR", message: e.message ?? String(err) });
      process.disconnect();
    },
  );
}
