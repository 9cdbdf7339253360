/**
 * etcd driver benchmark: operations per second of the etcd driver (against a real etcd started
 * here on loopback, temp data dir, removed at the end) versus the sqlite driver in the same run:
 * sequential creates, 16 creates in flight, CAS updates of one key, gets, and lists of a
 * 1,000-key prefix. The ratio column is etcd / sqlite.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/etcd.bench.js
 *
 * Bounded: every phase stops at a count or after PHASE_MS, whichever comes first (< ~40 s in all).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { machineInfo, writeReport, type BenchRow } from "./report.js";
import { openEtcdDatastore } from "../src/datastore/etcd.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { EtcdServer, etcdSkipReason } from "../src/datastore/testing/etcd-server.js";
import type { Datastore } from "../src/datastore/types.js";

const PHASE_MS = 2000;
const MAX_OPS = 100_000;
const LIST_KEYS = 1000;
const IN_FLIGHT = 16;

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const now = () => performance.now();

const value = (i: number) =>
  `{"i":${i},"spec":{"node":"bench-host","ipNetworks":["198.19.0.${i % 250}/32"]}}`;

/** Ops/s of `op(i)`, `parallel` at a time, for ~PHASE_MS (bounded by MAX_OPS). */
async function opsPerSec(op: (i: number) => Promise<unknown>, parallel = 1, warm = 50): Promise<number> {
  for (let i = 0; i < warm; i++) await op(-1 - i);
  gc();
  const start = now();
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < MAX_OPS && now() - start < PHASE_MS) {
      await op(next++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return done / ((now() - start) / 1000);
}

async function measure(store: Datastore, tag: string): Promise<Record<string, number>> {
  const p = `/calico/bench/${tag}/`;
  const r: Record<string, number> = {};
  r.creates = await opsPerSec((i) => store.create(`${p}seq/${i}`, value(i)));
  r.parallelCreates = await opsPerSec((i) => store.create(`${p}par/${i}`, value(i)), IN_FLIGHT);
  let kv = await store.create(`${p}counter`, "0");
  r.cas = await opsPerSec(async (i) => {
    kv = await store.update(`${p}counter`, value(i), kv.modRevision);
  });
  r.gets = await opsPerSec((i) => store.get(`${p}seq/${Math.abs(i) % 100}`));
  for (let i = 0; i < LIST_KEYS; i++) await store.create(`${p}list/${String(i).padStart(4, "0")}`, value(i));
  r.lists = await opsPerSec(
    async () => {
      const { items } = await store.list(`${p}list/`);
      if (items.length !== LIST_KEYS) throw new Error(`listed ${items.length} keys`);
    },
    1,
    5,
  );
  return r;
}

async function main(): Promise<void> {
  const skip = etcdSkipReason();
  if (skip !== false) {
    console.log(`etcd bench skipped: ${skip}`);
    return;
  }
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `calico-ts-bench-etcd-${process.pid}-`));
  let server: EtcdServer | undefined;
  try {
    server = await EtcdServer.start();
    const etcd = openEtcdDatastore(server.url(), { env: {} });
    const sqlite = new SqliteDatastore(join(dir, "calico-ts.db"));
    let e: Record<string, number>;
    let s: Record<string, number>;
    try {
      e = await measure(etcd, "etcd");
      s = await measure(sqlite, "sqlite");
    } finally {
      await etcd.close();
      await sqlite.close();
    }
    const names: [string, string, string][] = [
      ["creates", "sequential creates", "writes/s"],
      ["parallelCreates", `creates, ${IN_FLIGHT} in flight`, "writes/s"],
      ["cas", "CAS updates of one key", "writes/s"],
      ["gets", "gets", "reads/s"],
      ["lists", `lists of ${LIST_KEYS} keys`, "lists/s"],
    ];
    const rows: BenchRow[] = names.map(([k, name, unit]) => ({
      name: `etcd driver: ${name}`,
      value: e[k]!,
      unit,
      baseline: s[k]!,
      ratio: e[k]! / s[k]!,
      note: "baseline: sqlite driver, same run",
    }));
    writeReport({
      bench: "etcd",
      startedAt: new Date(started).toISOString(),
      machine: machineInfo(),
      params: {
        phaseMs: PHASE_MS,
        maxOps: MAX_OPS,
        listKeys: LIST_KEYS,
        inFlight: IN_FLIGHT,
        etcd: "3.4, one member on loopback, data dir under os.tmpdir()",
        sqlite: "WAL, synchronous=NORMAL, file under os.tmpdir()",
        seconds: Math.round((Date.now() - started) / 100) / 10,
      },
      rows,
    });
  } finally {
    await server?.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
