/**
 * A separate allocator process for the multi-process IPAM test and benchmark, started with
 * `fork(<compiled path>, [JSON job])`. It opens the datastore, says `ready`, waits for `go`,
 * then allocates and releases at random (seeded) and reports every address it held with the
 * system-wide monotonic time it got it and the time it started to give it back. It exits when
 * the parent disconnects, so a crashed test never leaves it behind.
 */
import { openDatastore } from "../../datastore/open.js";
import { IPAM } from "../allocator.js";
import { isPoolExhausted } from "../errors.js";

export interface IPAMWorkerJob {
  url: string;
  node: string;
  seed: number;
  /** Operations to run (bounded), and a wall-clock bound on top. */
  ops: number;
  deadlineMs: number;
  /** Most handles held at once; beyond it the worker only releases. */
  maxHeld: number;
  /** Fraction of allocations that ask for IPv6 (0 for an IPv4-only run). */
  v6Share: number;
  /** Only allocate and never release (the benchmark). */
  allocateOnly?: boolean;
}

/** One address held: [address, handle, acquired ns, release-started ns or null if still held]. */
export type Holding = [string, string, string, string | null];

export type IPAMWorkerMessage =
  | { type: "ready"; pid: number }
  | {
      type: "done";
      holdings: Holding[];
      allocations: number;
      releases: number;
      exhausted: number;
      conflicts: number;
      elapsedMs: number;
      /** CPU time (user + system) this worker used during the run. */
      cpuMs: number;
    }
  | { type: "error"; code: string; message: string };

const send = (m: IPAMWorkerMessage): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(m, undefined, {}, () => resolve());
  });

function cpuMsSince(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

/** mulberry32: a small seeded PRNG, so a failing run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// CLOCK_MONOTONIC is system-wide on Linux, so these stamps compare across processes.
const now = (): string => process.hrtime.bigint().toString();

async function run(job: IPAMWorkerJob, go: Promise<void>): Promise<void> {
  const store = await openDatastore(job.url);
  const ipam = new IPAM(store);
  await send({ type: "ready", pid: process.pid });
  await go;
  const rnd = prng(job.seed);
  const start = Date.now();
  const cpuStart = process.cpuUsage();
  const holdings: Holding[] = [];
  const held: { handle: string; rows: Holding[] }[] = [];
  let allocations = 0;
  let releases = 0;
  let exhausted = 0;
  for (let i = 0; i < job.ops && Date.now() - start < job.deadlineMs; i++) {
    const allocate =
      job.allocateOnly === true || held.length === 0 || (held.length < job.maxHeld && rnd() < 0.55);
    if (allocate) {
      const handleID = `${job.node}.${process.pid}.${i}`;
      const n = 1 + Math.floor(rnd() * 2);
      const v6 = rnd() < job.v6Share;
      try {
        const res = await ipam.autoAssign({ node: job.node, handleID, ...(v6 ? { num6: n } : { num4: n }) });
        const t = now();
        const rows = [...res.ipv4, ...res.ipv6].map((a): Holding => [a.address, handleID, t, null]);
        holdings.push(...rows);
        held.push({ handle: handleID, rows });
        allocations += rows.length;
      } catch (err) {
        if (!isPoolExhausted(err)) throw err;
        exhausted++;
      }
    } else {
      const [h] = held.splice(Math.floor(rnd() * held.length), 1);
      if (h === undefined) continue;
      const t = now();
      for (const r of h.rows) r[3] = t;
      if (rnd() < 0.5) {
        const res = await ipam.releaseIPs(h.rows.map((r) => r[0]));
        if (res.released.length !== h.rows.length) {
          throw new Error(
            `release of ${h.handle} freed ${res.released.length} of ${h.rows.length}: ${JSON.stringify(res)}`,
          );
        }
      } else {
        const n = await ipam.releaseByHandle(h.handle);
        if (n !== h.rows.length)
          throw new Error(`releaseByHandle(${h.handle}) freed ${n} of ${h.rows.length}`);
      }
      releases += h.rows.length;
    }
  }
  await send({
    type: "done",
    holdings,
    allocations,
    releases,
    exhausted,
    conflicts: ipam.stats.conflicts,
    elapsedMs: Date.now() - start,
    cpuMs: cpuMsSince(cpuStart),
  });
  await store.close();
}

if (process.send !== undefined && process.argv[2] !== undefined) {
  const job = JSON.parse(process.argv[2]) as IPAMWorkerJob;
  let letGo!: () => void;
  const go = new Promise<void>((r) => (letGo = r));
  process.on("message", (m: { type?: string }) => {
    if (m.type === "go") letGo();
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
