/**
 * API server benchmark (issue 3): calico-apiserver's watch fan-out and raw-API overhead.
 *
 * 1. 1,000 concurrent watchers (HttpDatastore watches) spread over 4 child processes, all fed
 *    from the server's one watch cache: delivery latency of one update to all of them (p50,
 *    p99, and the time until the last watcher has it), and server heap/RSS per watcher.
 * 2. Raw-API CRUD (create, get, CAS update, delete) through the API server from a child
 *    process versus straight to the same sqlite datastore in-process, same concurrency, same
 *    run: requests per second and the ratio.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/apiserver.bench.js
 *
 * Bounded: every phase stops at a count or a time limit (< ~60 s in all). The server runs in
 * this process; the watchers and the HTTP CRUD client run in forked copies of this script.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { machineInfo, percentile, writeReport, type BenchRow } from "./report.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { HttpDatastore } from "../src/datastore/http.js";
import type { Datastore } from "../src/datastore/types.js";
import { ApiServer } from "../src/apiserver/server.js";

const WATCHERS = 1000;
const PROCS = 4;
const UPDATES = 20;
const UPDATE_GAP_MS = 150;
const CRUD_MS = 2500;
const CRUD_CONCURRENCY = 16;
const PREFIX = "/calico/resources/v3/projectcalico.org/";

const nowMs = (): number => performance.timeOrigin + performance.now();
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type ToWorker =
  | { cmd: "watch"; url: string; count: number }
  | { cmd: "crud"; url: string; ms: number; concurrency: number };
type FromWorker =
  | { type: "watching"; count: number }
  | { type: "latencies"; ms: number[] }
  | { type: "crud"; requests: number; seconds: number; errors: number }
  | { type: "error"; message: string };

/** One create → get → CAS update → delete cycle: 4 requests. */
async function crudCycle(ds: Datastore, key: string): Promise<void> {
  const kv = await ds.create(key, '{"spec":{"cidr":"198.19.0.0/26"}}');
  await ds.get(key);
  const kv2 = await ds.update(key, '{"spec":{"cidr":"198.19.0.64/26"}}', kv.modRevision);
  await ds.delete(key, kv2.modRevision);
}

/** Requests per second of `concurrency` loops of CRUD cycles for ~ms. */
async function crudLoad(
  ds: Datastore,
  tag: string,
  ms: number,
  concurrency: number,
): Promise<{ requests: number; seconds: number; errors: number }> {
  let cycles = 0;
  let errors = 0;
  const start = nowMs();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, t) => {
      for (let i = 0; nowMs() - start < ms && i < 1_000_000; i++) {
        try {
          await crudCycle(ds, `${PREFIX}benchkeys/${tag}-${t}-${i}`);
          cycles++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { requests: cycles * 4, seconds: (nowMs() - start) / 1000, errors };
}

// ---- worker side -------------------------------------------------------------------------

async function worker(): Promise<void> {
  const send = (m: FromWorker) => process.send?.(m);
  const job = await new Promise<ToWorker>((resolve) => process.once("message", (m: ToWorker) => resolve(m)));
  const ds = new HttpDatastore(job.url);
  if (job.cmd === "crud") {
    send({ type: "crud", ...(await crudLoad(ds, `p${process.pid}`, job.ms, job.concurrency)) });
    await ds.close();
    process.exit(0);
  }
  const latencies: number[] = [];
  let reporting = false;
  const rev = await ds.revision();
  for (let i = 0; i < job.count; i++) {
    ds.watch(`${PREFIX}ippools/`, rev, {
      onEvents: (events) => {
        const at = nowMs();
        for (const e of events) {
          if (e.type === "put") latencies.push(at - (JSON.parse(e.kv.value) as { t: number }).t);
        }
      },
      onError: (err) => {
        if (!reporting) send({ type: "error", message: err.message });
      },
    });
  }
  send({ type: "watching", count: job.count });
  process.on("message", (m: { cmd: string }) => {
    if (m.cmd === "report") {
      reporting = true;
      send({ type: "latencies", ms: latencies });
      void ds.close().then(() => process.exit(0));
    }
  });
}

// ---- parent side -------------------------------------------------------------------------

class Child {
  readonly proc: ChildProcess;
  readonly messages: FromWorker[] = [];
  constructor() {
    this.proc = fork(fileURLToPath(import.meta.url), ["worker"], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.proc.on("message", (m: FromWorker) => this.messages.push(m));
  }
  async waitFor<T extends FromWorker["type"]>(
    type: T,
    ms: number,
  ): Promise<Extract<FromWorker, { type: T }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const err = this.messages.find((m) => m.type === "error");
      if (err !== undefined && err.type === "error") throw new Error(`worker failed: ${err.message}`);
      const m = this.messages.find((x) => x.type === type);
      if (m !== undefined) return m as Extract<FromWorker, { type: T }>;
      if (Date.now() > deadline) throw new Error(`worker: no ${type} within ${ms} ms`);
      if (this.proc.exitCode !== null) throw new Error(`worker exited (${this.proc.exitCode})`);
      await sleep(10);
    }
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `calico-ts-bench-apiserver-${process.pid}-`));
  const children: Child[] = [];
  const store = new SqliteDatastore(join(dir, "calico-ts.db"));
  const server = new ApiServer({ store, k8sApi: null });
  const rows: BenchRow[] = [];
  try {
    await server.start();
    await server.cache.ready();
    await store.create(`${PREFIX}ippools/bench`, JSON.stringify({ t: nowMs() }));

    // ---- 1. fan-out --------------------------------------------------------------------------
    gc();
    await sleep(100);
    gc();
    const mem0 = process.memoryUsage();
    const per = Math.ceil(WATCHERS / PROCS);
    for (let i = 0; i < PROCS; i++) children.push(new Child());
    children.forEach((c, i) =>
      c.proc.send({
        cmd: "watch",
        url: server.url,
        count: Math.min(per, WATCHERS - i * per),
      } satisfies ToWorker),
    );
    await Promise.all(children.map((c) => c.waitFor("watching", 30_000)));
    const connectStart = Date.now();
    while (server.watcherCount < WATCHERS && Date.now() - connectStart < 30_000) await sleep(20);
    if (server.watcherCount < WATCHERS) throw new Error(`only ${server.watcherCount} watchers connected`);
    await sleep(300);
    gc();
    await sleep(100);
    gc();
    const mem1 = process.memoryUsage();

    let kv = (await store.get(`${PREFIX}ippools/bench`))!;
    for (let u = 0; u < UPDATES; u++) {
      kv = await store.update(kv.key, JSON.stringify({ t: nowMs(), u }), kv.modRevision);
      await sleep(UPDATE_GAP_MS);
    }
    await sleep(500);
    for (const c of children) c.proc.send({ cmd: "report" });
    const lat = (await Promise.all(children.map((c) => c.waitFor("latencies", 30_000)))).flatMap((m) => m.ms);
    lat.sort((a, b) => a - b);
    const expected = WATCHERS * UPDATES;
    rows.push(
      {
        name: `deliveries (${WATCHERS} watchers × ${UPDATES} updates)`,
        value: lat.length,
        unit: "events",
        note: `expected ${expected}`,
      },
      { name: "delivery latency p50", value: percentile(lat, 50), unit: "ms" },
      { name: "delivery latency p99", value: percentile(lat, 99), unit: "ms" },
      { name: "delivery latency max (last watcher)", value: lat[lat.length - 1] ?? NaN, unit: "ms" },
      {
        name: "server heap per watcher",
        value: (mem1.heapUsed - mem0.heapUsed) / WATCHERS / 1024,
        unit: "KiB",
      },
      {
        name: "server RSS per watcher",
        value: (mem1.rss - mem0.rss) / WATCHERS / 1024,
        unit: "KiB",
        note: "includes socket buffers",
      },
    );
    await Promise.all(
      children.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(0) : c.proc.once("exit", r)))),
    );
    children.length = 0;

    // ---- 2. CRUD through the API server vs straight to the datastore -------------------------
    const direct = await crudLoad(store, "direct", CRUD_MS, CRUD_CONCURRENCY);
    const client = new Child();
    children.push(client);
    client.proc.send({
      cmd: "crud",
      url: server.url,
      ms: CRUD_MS,
      concurrency: CRUD_CONCURRENCY,
    } satisfies ToWorker);
    const viaHttp = await client.waitFor("crud", CRUD_MS + 30_000);
    const directRps = direct.requests / direct.seconds;
    const httpRps = viaHttp.requests / viaHttp.seconds;
    rows.push(
      {
        name: `raw-API CRUD via API server (${CRUD_CONCURRENCY} concurrent)`,
        value: httpRps,
        unit: "req/s",
        baseline: directRps,
        ratio: httpRps / directRps,
        note: `baseline: same sqlite store in-process; errors ${viaHttp.errors}/${direct.errors}`,
      },
      { name: "CRUD straight to the sqlite datastore", value: directRps, unit: "req/s" },
    );
  } finally {
    for (const c of children) c.proc.kill("SIGKILL");
    await server.stop(500);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  writeReport({
    bench: "apiserver",
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    params: { WATCHERS, PROCS, UPDATES, UPDATE_GAP_MS, CRUD_MS, CRUD_CONCURRENCY, datastore: "sqlite" },
    rows,
  });
}

if (process.argv[2] === "worker") {
  await worker();
} else {
  const timer = setTimeout(() => {
    console.error("apiserver bench: exceeded 110 s, aborting");
    process.exit(1);
  }, 110_000);
  timer.unref();
  await main();
}
