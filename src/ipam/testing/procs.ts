/**
 * Parent side of the multi-process IPAM test and benchmark: fork allocator workers
 * (worker.ts), start them together, collect their reports with a timeout, kill leftovers.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { IPAMWorkerJob, IPAMWorkerMessage } from "./worker.js";

export type { Holding, IPAMWorkerJob, IPAMWorkerMessage } from "./worker.js";

export type DoneMessage = Extract<IPAMWorkerMessage, { type: "done" }>;

function workerPath(): string {
  const p = fileURLToPath(new URL("./worker.js", import.meta.url));
  if (!existsSync(p)) throw new Error(`IPAM worker script "${p}" is missing; run the build (npx tsc -p .)`);
  return p;
}

const live = new Set<ChildProcess>();

/** Fork one worker per job, wait until all are ready, say go, and collect every `done`. */
export async function runWorkers(jobs: IPAMWorkerJob[], timeoutMs: number): Promise<DoneMessage[]> {
  const out = await runWorkersKilling(jobs, timeoutMs, new Map());
  return out.map((d, i) => {
    if (d === null) throw new Error(`IPAM worker ${jobs[i]?.node} was killed`);
    return d;
  });
}

/**
 * Like runWorkers, but SIGKILL worker i `kill.get(i)` ms after go (a crash mid-operation);
 * a killed worker's entry is null.
 */
export async function runWorkersKilling(
  jobs: IPAMWorkerJob[],
  timeoutMs: number,
  kill: ReadonlyMap<number, number>,
): Promise<(DoneMessage | null)[]> {
  const procs = jobs.map((job) => {
    const child = fork(workerPath(), [JSON.stringify(job)], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
    live.add(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.length < 20_000) stderr += d.toString();
    });
    const messages: IPAMWorkerMessage[] = [];
    let wake: (() => void) | undefined;
    let exited = false;
    child.on("message", (m: IPAMWorkerMessage) => {
      messages.push(m);
      wake?.();
    });
    child.on("exit", () => {
      exited = true;
      live.delete(child);
      wake?.();
    });
    const waitFor = async <T extends IPAMWorkerMessage["type"]>(
      type: T,
      deadline: number,
    ): Promise<Extract<IPAMWorkerMessage, { type: T }>> => {
      for (;;) {
        const err = messages.find((m) => m.type === "error");
        if (err !== undefined && err.type === "error") {
          throw new Error(`IPAM worker ${job.node} (pid ${child.pid}) failed: ${err.code}: ${err.message}`);
        }
        const m = messages.find((x) => x.type === type);
        if (m !== undefined) return m as Extract<IPAMWorkerMessage, { type: T }>;
        if (exited) throw new Error(`IPAM worker ${job.node} exited early; stderr: ${stderr.slice(-2000)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`IPAM worker ${job.node}: no "${type}" within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    };
    return { child, waitFor };
  });
  const deadline = Date.now() + timeoutMs;
  await Promise.all(procs.map((p) => p.waitFor("ready", deadline)));
  for (const p of procs) p.child.send({ type: "go" });
  const timers: NodeJS.Timeout[] = [];
  const killed = new Set<number>();
  for (const [i, ms] of kill) {
    timers.push(
      setTimeout(() => {
        killed.add(i);
        procs[i]?.child.kill("SIGKILL");
      }, ms),
    );
  }
  try {
    return await Promise.all(
      procs.map((p, i) =>
        p.waitFor("done", deadline).catch((err: unknown) => {
          if (killed.has(i)) return null;
          throw err;
        }),
      ),
    );
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}

/** Kill every worker still running (cleanup; idempotent). */
export function killAllWorkers(): void {
  for (const c of live) c.kill("SIGKILL");
  live.clear();
}
