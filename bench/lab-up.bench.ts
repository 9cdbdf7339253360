/**
 * `calicoctl lab up` time (issue 8, "Show"): the built CLI run as a user runs it, for 3 and 10
 * hosts, R rounds each, interleaved with the baseline: the same lab without workloads or
 * calico-apiserver (`--no-demo --no-apiserver`: hosts, datastore, agents, BGP mesh converged).
 * Reported: the time `lab up` itself reports (until every agent has programmed the workloads
 * and has its sessions Established), the command's wall time (plus the connectivity matrix
 * measured with real packets), and `lab down`. Medians; every lab has its own name.
 *
 *   npx tsc -p . && node dist/bench/lab-up.bench.js          (root)
 *   BENCH_LAB_HOSTS=3,10 BENCH_LAB_ROUNDS=3 …
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { machineInfo, writeReport, type BenchReport, type BenchRow } from "./report.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const HOSTS = (process.env.BENCH_LAB_HOSTS ?? "3,10").split(",").map(Number);
const ROUNDS = Number(process.env.BENCH_LAB_ROUNDS ?? 3);
const root = mkdtempSync(join(tmpdir(), "cts-labbench-"));

function cli(args: string[]): Promise<{ code: number; out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const t = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 1, out, ms: performance.now() - t0 });
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
};

interface Sample {
  up: number;
  wall: number;
  down: number;
}

let seq = 0;
async function once(hosts: number, extra: string[]): Promise<Sample> {
  const name = `b${process.pid.toString(36)}${(seq++).toString(36)}`.slice(0, 12);
  const flags = ["--name", name, "--state-dir", join(root, name)];
  try {
    const up = await cli(["lab", "up", "--nodes", String(hosts), ...extra, ...flags]);
    if (up.code !== 0) throw new Error(`lab up failed:\n${up.out}`);
    const m = /up in ([\d.]+) s/.exec(up.out);
    if (m === null) throw new Error(`no "up in" line:\n${up.out}`);
    if (/differs from the demo policy|Still converging/.test(up.out))
      console.log(`note: ${name} not clean:\n${up.out}`);
    const down = await cli(["lab", "down", ...flags]);
    if (down.code !== 0) throw new Error(`lab down failed: ${down.out}`);
    return { up: Number(m[1]) * 1000, wall: up.ms, down: down.ms };
  } finally {
    await cli(["lab", "down", ...flags]);
  }
}

const runs = (xs: Sample[]): string => xs.map((s) => (s.up / 1000).toFixed(1)).join(", ");
const load0 = loadavg()[0]!;
const rows: BenchRow[] = [];
try {
  for (const n of HOSTS) {
    const full: Sample[] = [];
    const base: Sample[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await once(n, ["--no-demo", "--no-apiserver"]));
      full.push(await once(n, []));
    }
    const b = median(base.map((s) => s.up));
    const f = median(full.map((s) => s.up));
    rows.push(
      {
        name: `lab up, ${n} hosts (4 workloads, policies, apiserver)`,
        value: f / 1000,
        unit: "s",
        baseline: b / 1000,
        ratio: f / b,
        note: `baseline: --no-demo --no-apiserver; runs ${runs(full)}; baseline runs ${runs(base)}`,
      },
      {
        name: `  same, command wall time (with the measured matrix)`,
        value: median(full.map((s) => s.wall)) / 1000,
        unit: "s",
      },
      { name: `lab down, ${n} hosts`, value: median(full.map((s) => s.down)) / 1000, unit: "s" },
    );
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const report: BenchReport = {
  bench: "lab-up",
  startedAt: new Date().toISOString(),
  machine: machineInfo(),
  params: {
    hosts: HOSTS,
    rounds: ROUNDS,
    loadAverage: [load0, loadavg()[0]!].map((l) => Number(l.toFixed(1))),
  },
  rows,
};
writeReport(report);
