/**
 * Parent side of the multi-process datastore tests: fork workers (worker.ts), wait
 * for their messages with timeouts, and kill every one still running in cleanup.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { WorkerJob, WorkerMessage } from "./worker.js";

export type { WorkerJob, WorkerMessage } from "./worker.js";

/** The compiled worker script (dist/src/datastore/testing/worker.js). */
export function workerPath(): string {
  const p = fileURLToPath(new URL("./worker.js", import.meta.url));
  if (!existsSync(p))
    throw new Error(`datastore worker script "${p}" is missing; run the build (npx tsc -p .)`);
  return p;
}

const live = new Set<WorkerProc>();

export class WorkerProc {
  readonly child: ChildProcess;
  readonly messages: WorkerMessage[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = "";
  private waiters: (() => void)[] = [];
  private hasExited = false;

  constructor(readonly job: WorkerJob) {
    this.child = fork(workerPath(), [JSON.stringify(job)], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
    live.add(this);
    this.child.stderr?.on("data", (d: Buffer) => {
      if (this.stderr.length < 20_000) this.stderr += d.toString();
    });
    this.child.on("message", (m: WorkerMessage) => {
      this.messages.push(m);
      this.wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.hasExited = true;
        live.delete(this);
        this.wake();
        resolve({ code, signal });
      });
    });
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** The first message (from the start) matching `pred`; rejects on a worker error, exit or timeout. */
  async waitFor<T extends WorkerMessage>(pred: (m: WorkerMessage) => m is T, timeoutMs: number): Promise<T>;
  async waitFor(pred: (m: WorkerMessage) => boolean, timeoutMs: number): Promise<WorkerMessage>;
  async waitFor(pred: (m: WorkerMessage) => boolean, timeoutMs: number): Promise<WorkerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(pred);
      if (found !== undefined) return found;
      const err = this.messages.find((m) => m.type === "error");
      if (err !== undefined && err.type === "error") {
        throw new Error(`worker ${this.child.pid} (${this.job.kind}) failed: ${err.code}: ${err.message}`);
      }
      if (this.hasExited) {
        throw new Error(
          `worker ${this.child.pid} (${this.job.kind}) exited early; stderr: ${this.stderr.slice(-2000)}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`worker ${this.child.pid} (${this.job.kind}): timed out after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  ready(timeoutMs = 20_000) {
    return this.waitFor((m): m is Extract<WorkerMessage, { type: "ready" }> => m.type === "ready", timeoutMs);
  }

  done(timeoutMs: number) {
    return this.waitFor((m): m is Extract<WorkerMessage, { type: "done" }> => m.type === "done", timeoutMs);
  }

  /** The `done` message, once the worker has also exited (closed its store and gone). */
  async finished(timeoutMs: number) {
    const start = Date.now();
    const done = await this.done(timeoutMs);
    const left = Math.max(1, timeoutMs - (Date.now() - start));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`worker ${this.child.pid} did not exit after done`)), left);
    });
    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return done;
  }

  go(): void {
    if (this.child.connected) this.child.send({ type: "go" });
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.hasExited) this.child.kill(signal);
  }
}

export function spawnWorker(job: WorkerJob): WorkerProc {
  return new WorkerProc(job);
}

/** Kill every worker still running (by its own pid) and wait for them to exit. */
export async function killAllWorkers(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
}
