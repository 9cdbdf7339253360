/**
 * Datastore benchmark: sqlite driver write throughput (one process, then 2 and 4 writer
 * processes on one file) against raw better-sqlite3 `INSERT OR REPLACE` into a WAL file in the
 * same run, and watch delivery latency within a process and across processes.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/datastore.bench.js
 *
 * Bounded: every phase stops at a count or a time limit, whichever comes first (< ~60 s).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { machineInfo, percentile, writeReport, type BenchRow } from "./report.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { MemoryDatastore } from "../src/datastore/memory.js";
import type { Datastore } from "../src/datastore/types.js";
import { killAllWorkers, spawnWorker } from "../src/datastore/testing/procs.js";
import { nowMs } from "../src/datastore/testing/worker.js";

const PHASE_MS = 1500;
const MAX_OPS = 200_000;
const LATENCY_EVENTS = 2000;
const PROC_WRITES = 3000;

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

let dirN = 0;
const root = mkdtempSync(join(tmpdir(), `calico-ts-bench-datastore-${process.pid}-`));
const freshPath = () => join(root, `db-${dirN++}`, "calico-ts.db");

/** Ops/s of `op(i)` run back to back for ~PHASE_MS (bounded by MAX_OPS). */
async function asyncOps(op: (i: number) => Promise<unknown> | void): Promise<number> {
  for (let i = 0; i < 200; i++) await op(-1 - i); // warm-up
  gc();
  const start = nowMs();
  let i = 0;
  while (i < MAX_OPS) {
    await op(i++);
    if ((i & 63) === 0 && nowMs() - start > PHASE_MS) break;
  }
  return i / ((nowMs() - start) / 1000);
}

function rawBaseline(): number {
  const path = freshPath();
  const sd = new SqliteDatastore(path); // creates dir and file in WAL mode with our settings
  void sd.close();
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE IF NOT EXISTS raw (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
  const ins = db.prepare("INSERT OR REPLACE INTO raw (key, value) VALUES (?, ?)");
  for (let i = 0; i < 200; i++) ins.run(`/w/${i}`, "{}");
  gc();
  const start = nowMs();
  let i = 0;
  while (i < MAX_OPS) {
    ins.run(`/calico/resources/v3/projectcalico.org/workloadendpoints/ns/wep-${i}`, `{"i":${i},"spec":{}}`);
    i++;
    if ((i & 63) === 0 && nowMs() - start > PHASE_MS) break;
  }
  const ops = i / ((nowMs() - start) / 1000);
  db.close();
  return ops;
}

const value = (i: number) => `{"i":${i},"spec":{}}`;
const key = (i: number) => `/calico/resources/v3/projectcalico.org/workloadendpoints/ns/wep-${i}`;

async function creates(store: Datastore): Promise<number> {
  return asyncOps((i) => store.create(key(i), value(i)));
}

async function casUpdates(store: Datastore): Promise<number> {
  let kv = await store.create("/bench/counter", "0");
  return asyncOps(async (i) => {
    kv = await store.update("/bench/counter", value(i), kv.modRevision);
  });
}

async function multiProcessWrites(procs: number): Promise<{ opsPerSec: number; perProcess: number }> {
  const url = `sqlite://${freshPath()}`;
  const ws = Array.from({ length: procs }, () =>
    spawnWorker({
      kind: "write",
      url,
      prefix: "/bench/mp/",
      count: PROC_WRITES,
      mode: "create",
      paceMs: 0,
      deadlineMs: 30_000,
    }),
  );
  await Promise.all(ws.map((w) => w.ready()));
  const start = nowMs();
  for (const w of ws) w.go();
  const dones = await Promise.all(ws.map((w) => w.done(60_000)));
  const wall = (nowMs() - start) / 1000;
  const total = dones.reduce((a, d) => a + d.done, 0);
  const perProcess = dones.reduce((a, d) => a + d.done / (d.elapsedMs / 1000), 0) / procs;
  await Promise.all(ws.map((w) => w.exited));
  return { opsPerSec: total / wall, perProcess };
}

async function sameProcessLatency(store: Datastore): Promise<number[]> {
  const lat: number[] = [];
  let kv = await store.create("/bench/lat", "{}");
  const w = store.watch("/bench/lat", kv.modRevision, {
    onEvents(events) {
      const at = nowMs();
      for (const e of events)
        if (e.type === "put") lat.push(at - (JSON.parse(e.kv.value) as { t: number }).t);
    },
    onError(err) {
      throw err;
    },
  });
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < LATENCY_EVENTS && Date.now() < deadline; i++) {
    kv = await store.update("/bench/lat", JSON.stringify({ t: nowMs(), i }), kv.modRevision);
    await new Promise((r) => setTimeout(r, 1));
  }
  while (lat.length < LATENCY_EVENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  w.close();
  return lat.sort((a, b) => a - b);
}

async function crossProcessLatency(paceMs: number): Promise<number[]> {
  const url = `sqlite://${freshPath()}`;
  const seed = new SqliteDatastore(url.slice("sqlite://".length));
  await seed.create("/bench/x", "{}");
  await seed.close();
  const watcher = spawnWorker({
    kind: "watch",
    url,
    prefix: "/bench/x",
    afterRevision: 1,
    report: false,
    expect: LATENCY_EVENTS,
    deadlineMs: 40_000,
  });
  await watcher.ready();
  const writer = spawnWorker({
    kind: "write",
    url,
    prefix: "/bench/x",
    count: LATENCY_EVENTS,
    mode: "update",
    paceMs,
    deadlineMs: 30_000,
  });
  await writer.ready();
  writer.go();
  await writer.done(40_000);
  const done = await watcher.done(40_000);
  return [...(done.latenciesMs ?? [])].sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const started = new Date().toISOString();
  try {
    const raw = rawBaseline();
    rows.push({
      name: "raw better-sqlite3 INSERT OR REPLACE (WAL, autocommit)",
      value: raw,
      unit: "writes/s",
      note: "baseline",
    });

    const s1 = new SqliteDatastore(freshPath());
    const c = await creates(s1);
    rows.push({
      name: "sqlite driver: sequential creates",
      value: c,
      unit: "writes/s",
      baseline: raw,
      ratio: c / raw,
    });
    const u = await casUpdates(s1);
    rows.push({
      name: "sqlite driver: sequential CAS updates, one key",
      value: u,
      unit: "writes/s",
      baseline: raw,
      ratio: u / raw,
    });
    const g = await asyncOps((i) => s1.get(key(Math.abs(i) % 1000)));
    rows.push({ name: "sqlite driver: get", value: g, unit: "reads/s", note: "context" });
    await s1.close();

    const mem = new MemoryDatastore();
    const m = await creates(mem);
    rows.push({
      name: "memory driver: sequential creates",
      value: m,
      unit: "writes/s",
      baseline: raw,
      ratio: m / raw,
      note: "context",
    });
    await mem.close();

    for (const procs of [2, 4]) {
      gc();
      const r = await multiProcessWrites(procs);
      rows.push({
        name: `sqlite driver: ${procs} writer processes, creates (aggregate)`,
        value: r.opsPerSec,
        unit: "writes/s",
        baseline: raw,
        ratio: r.opsPerSec / raw,
        note: `${procs} × ${PROC_WRITES}; ${Math.round(r.perProcess)} /s per process`,
      });
    }

    gc();
    const s2 = new SqliteDatastore(freshPath());
    const same = await sameProcessLatency(s2);
    await s2.close();
    const sameP50 = percentile(same, 50);
    const sameP99 = percentile(same, 99);
    rows.push({
      name: "watch latency, same process, p50",
      value: sameP50,
      unit: "ms",
      note: `${same.length} events, 1 ms apart`,
    });
    rows.push({ name: "watch latency, same process, p99", value: sameP99, unit: "ms" });

    const cross = await crossProcessLatency(1);
    const crossP50 = percentile(cross, 50);
    const crossP99 = percentile(cross, 99);
    rows.push({
      name: "watch latency, across processes, p50",
      value: crossP50,
      unit: "ms",
      baseline: sameP50,
      ratio: crossP50 / sameP50,
      note: `${cross.length} events, 1 ms apart; baseline = same process; poll 5 ms`,
    });
    rows.push({
      name: "watch latency, across processes, p99",
      value: crossP99,
      unit: "ms",
      baseline: sameP99,
      ratio: crossP99 / sameP99,
    });
    const burst = await crossProcessLatency(0);
    rows.push({
      name: "watch latency, across processes, back-to-back writes, p50",
      value: percentile(burst, 50),
      unit: "ms",
      note: `${burst.length} events`,
    });
    rows.push({
      name: "watch latency, across processes, back-to-back writes, p99",
      value: percentile(burst, 99),
      unit: "ms",
    });

    writeReport({
      bench: "datastore",
      startedAt: started,
      machine: machineInfo(),
      params: {
        phaseMs: PHASE_MS,
        latencyEvents: LATENCY_EVENTS,
        procWrites: PROC_WRITES,
        synchronous: "normal",
        tmpdir: tmpdir(),
      },
      rows,
    });
  } finally {
    await killAllWorkers();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
