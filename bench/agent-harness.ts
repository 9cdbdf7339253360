/**
 * A real `calico-node` process for the agent-level benchmarks (agent, policy-throughput): spawn
 * it against a sqlite datastore and a network namespace, follow its JSON log lines, wait for
 * its status file (`--status-file`, written after every apply) to reach a datastore revision,
 * and read its memory from /proc. Every wait is bounded in time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../src/dataplane/netns.js";

/** Compiled layout: dist/bench/agent-harness.js → dist/src/agent/main.js. */
const NODE_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "agent", "main.js");

export interface AgentLogLine {
  time?: string;
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

export interface AgentStatus {
  ready: boolean;
  appliedRevision: number;
}

export interface BenchAgentOptions {
  datastoreUrl: string;
  nodename: string;
  netns: string;
  statusFile: string;
  /** Extra environment, e.g. FELIX_LOGSEVERITYSCREEN=debug. */
  env?: Record<string, string>;
  args?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class BenchAgent {
  readonly child: ChildProcess;
  readonly startedAt = performance.now();
  readonly lines: AgentLogLine[] = [];
  private buf = "";
  /** The last 20 kB of raw output, for error messages. */
  tail = "";

  constructor(private readonly opts: BenchAgentOptions) {
    // BENCH_AGENT_NODE_ARGS: extra node flags for the agent, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`.
    const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const args = [
      ...nodeArgs,
      NODE_MAIN,
      "--datastore",
      opts.datastoreUrl,
      "--nodename",
      opts.nodename,
      "--netns",
      opts.netns,
      "--status-file",
      opts.statusFile,
      "--ip",
      "none",
      // The policy benches measure the dataplane; no BGP child speaker beside it.
      "--no-bgp",
      ...(opts.args ?? []),
    ];
    this.child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
    });
    for (const s of [this.child.stdout!, this.child.stderr!]) {
      s.setEncoding("utf8");
      s.on("data", (d: string) => this.onData(d));
    }
  }

  private onData(d: string): void {
    this.tail = (this.tail + d).slice(-20_000);
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (!line.startsWith("{")) continue;
      try {
        this.lines.push(JSON.parse(line) as AgentLogLine);
      } catch {
        // not a log line
      }
    }
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  status(): AgentStatus | undefined {
    try {
      return JSON.parse(readFileSync(this.opts.statusFile, "utf8")) as AgentStatus;
    } catch {
      return undefined;
    }
  }

  /**
   * Poll the status file (every ~1 ms) until it is ready and covers `revision`; returns the
   * time (performance.now()) it was first seen so.
   */
  async waitApplied(revision: number, timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = this.status();
      if (s !== undefined && s.ready && s.appliedRevision >= revision) return performance.now();
      if (this.exited) throw new Error(`calico-node exited (${this.child.exitCode}):\n${this.tail}`);
      if (performance.now() > deadline)
        throw new Error(
          `calico-node did not apply revision ${revision} within ${timeoutMs} ms (status ${JSON.stringify(s)}):\n${this.tail.slice(-4000)}`,
        );
      await sleep(1);
    }
  }

  /** The first log line with this message at or after index `from`, waiting up to `timeoutMs`. */
  async waitLine(msg: string, from = 0, timeoutMs = 5000): Promise<{ line: AgentLogLine; index: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) {
        const l = this.lines[i]!;
        if (l.msg === msg) return { line: l, index: i };
      }
      if (this.exited || performance.now() > deadline)
        throw new Error(
          `no "${msg}" log line from calico-node within ${timeoutMs} ms:\n${this.tail.slice(-4000)}`,
        );
      await sleep(2);
    }
  }

  /** Resident and peak resident memory in MiB (/proc/PID/status VmRSS, VmHWM). */
  memory(): { rssMiB: number; hwmMiB: number } {
    const text = readFileSync(`/proc/${this.child.pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
    return { rssMiB: kb("VmRSS") / 1024, hwmMiB: kb("VmHWM") / 1024 };
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
    const t = await Promise.race([exited.then(() => "ok"), sleep(5000).then(() => "timeout")]);
    if (t === "timeout") {
      this.child.kill("SIGKILL");
      await exited;
    }
  }
}

/** Wall time of a command (ms), failing on a non-zero exit. */
export async function timeCommand(
  cmd: string,
  args: string[],
  opts: { netns?: string; input?: string } = {},
): Promise<number> {
  const t0 = performance.now();
  const r = await run(cmd, args, opts);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr.trim()}`);
  return ms;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}
