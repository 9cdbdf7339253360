/**
 * IPAM benchmark: allocations per second with 1, 4 and 16 allocator processes (one node
 * each, so they work in different blocks) on one sqlite file, and on etcd when installed; the
 * conflict-retry rate (CAS writes lost and retried per allocation).
 *
 *   npx tsc -p . && node dist/bench/ipam.bench.js
 *
 * Bounded: each phase stops at a count or a time limit per worker (whichever first).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { machineInfo, writeReport, type BenchRow } from "./report.js";
import { SqliteDatastore } from "../src/datastore/sqlite.js";
import { openEtcdDatastore } from "../src/datastore/etcd.js";
import type { Datastore } from "../src/datastore/types.js";
import { ETCD_BIN, EtcdServer } from "../src/datastore/testing/etcd-server.js";
import { API_VERSION } from "../src/api/resource.js";
import { IPAM } from "../src/ipam/allocator.js";
import { killAllWorkers, runWorkers } from "../src/ipam/testing/procs.js";

const OPS = 3000;
const PHASE_MS = 4000;
const root = mkdtempSync(join(tmpdir(), `calico-ts-bench-ipam-${process.pid}-`));
let n = 0;

async function seed(ds: Datastore): Promise<void> {
  // No cap on blocks per node (the default cap of 20 would end a long phase in exhaustion).
  await new IPAM(ds).resources.create({
    apiVersion: API_VERSION,
    kind: "IPAMConfiguration",
    metadata: { name: "default" },
    spec: { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 100_000 },
  });
  await new IPAM(ds).resources.create({
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: "bench" },
    spec: { cidr: "198.19.0.0/16" },
  });
}

async function phase(label: string, procs: number, open: () => Promise<Opened>): Promise<BenchRow[]> {
  const { ds, url, done, serverCpuMs } = await open();
  try {
    await seed(ds);
    const serverCpu0 = serverCpuMs();
    const reports = await runWorkers(
      Array.from({ length: procs }, (_, i) => ({
        url,
        node: `bench-node-${i}`,
        seed: i,
        ops: OPS,
        deadlineMs: PHASE_MS,
        maxHeld: OPS,
        v6Share: 0,
        allocateOnly: true,
      })),
      PHASE_MS + 60_000,
    );
    const allocs = reports.reduce((s, r) => s + r.allocations, 0);
    const conflicts = reports.reduce((s, r) => s + r.conflicts, 0);
    const exhausted = reports.reduce((s, r) => s + r.exhausted, 0);
    if (exhausted > 0) throw new Error(`${label}: ${exhausted} requests found the pool exhausted`);
    const secs = Math.max(...reports.map((r) => r.elapsedMs)) / 1000;
    // CPU per allocation, allocator processes plus the datastore server (etcd): on a machine
    // with C cores no number of allocators can go past C / (CPU per allocation).
    const workerCpuMs = reports.reduce((s, r) => s + r.cpuMs, 0);
    const serverCpu = serverCpuMs() - serverCpu0;
    const cpuMs = workerCpuMs + serverCpu;
    const cpuPerAlloc = allocs === 0 ? NaN : cpuMs / allocs;
    const cores = availableParallelism();
    return [
      {
        name: `${label}: ${procs} allocator process(es)`,
        value: allocs / secs,
        unit: "allocations/s",
        note: `${allocs} in ${secs.toFixed(1)} s`,
      },
      {
        name: `${label}: ${procs} process(es) conflict retries`,
        value: allocs === 0 ? 0 : conflicts / allocs,
        unit: "retries/allocation",
      },
      {
        name: `${label}: ${procs} process(es) CPU per allocation`,
        value: cpuPerAlloc,
        unit: "ms",
        note:
          `allocators ${(workerCpuMs / allocs).toFixed(2)} ms` +
          (label === "etcd" ? ` + etcd ${(serverCpu / allocs).toFixed(2)} ms` : "") +
          `; CPU-bound ceiling on ${cores} cores ${Math.round((cores * 1000) / cpuPerAlloc)}/s`,
      },
    ];
  } finally {
    await done();
  }
}

interface Opened {
  ds: Datastore;
  url: string;
  done: () => Promise<void>;
  /** CPU time the datastore's server process has used so far (0 when it is in-process). */
  serverCpuMs: () => number;
}

/** utime + stime of a process, from /proc (clock ticks of 10 ms on Linux). */
function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const sqlite = (): Promise<Opened> => {
  const path = join(root, `db-${n++}`, "calico-ts.db");
  const ds = new SqliteDatastore(path);
  return Promise.resolve({ ds, url: `sqlite://${path}`, done: () => ds.close(), serverCpuMs: () => 0 });
};

const etcd = async (): Promise<Opened> => {
  const server = await EtcdServer.start();
  const ds = openEtcdDatastore(server.url());
  return {
    ds,
    url: server.url(),
    serverCpuMs: () => procCpuMs(server.pid),
    done: async () => {
      await ds.close();
      await server.remove();
    },
  };
};

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  for (const p of [1, 4, 16]) rows.push(...(await phase("sqlite", p, sqlite)));
  if (existsSync(ETCD_BIN)) {
    for (const p of [1, 4, 16]) rows.push(...(await phase("etcd", p, etcd)));
  } else {
    rows.push({ name: "etcd", value: NaN, unit: "", note: `skipped: ${ETCD_BIN} not installed` });
  }
  writeReport({
    bench: "ipam",
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    params: { opsPerWorker: OPS, phaseMs: PHASE_MS, pool: "198.19.0.0/16", blockSize: 26 },
    rows,
  });
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    killAllWorkers();
    rmSync(root, { recursive: true, force: true });
  });
