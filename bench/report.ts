/**
 * Shared output for every benchmark: a printed table and a JSON file under bench/results/.
 * Benchmarks compare against a baseline measured in the same run (ratios), because the
 * machines are noisy; absolute figures are printed for context only.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";

export interface BenchRow {
  /** What was measured, e.g. `evaluate simple (compiled)`. */
  name: string;
  value: number;
  unit: string;
  /** Optional: the same figure for the in-run baseline, and value/baseline. */
  baseline?: number;
  ratio?: number;
  note?: string;
}

export interface BenchReport {
  bench: string;
  startedAt: string;
  machine: { cpus: number; model: string; node: string; totalMemGiB: number };
  params: Record<string, unknown>;
  rows: BenchRow[];
}

export function machineInfo(): BenchReport["machine"] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? "unknown",
    node: process.version,
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

const fmt = (n: number): string =>
  Math.abs(n) >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toPrecision(4).replace(/\.?0+$/, "");

export function printTable(report: BenchReport): void {
  const header = ["measure", "value", "unit", "baseline", "ratio", "note"];
  const body = report.rows.map((r) => [
    r.name,
    fmt(r.value),
    r.unit,
    r.baseline === undefined ? "" : fmt(r.baseline),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  console.log(`\n== ${report.bench} (${report.machine.cpus} cpu, node ${report.machine.node}) ==`);
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const row of body) console.log(line(row));
}

/** Print the table and write `bench/results/<bench>.json` (path relative to the repo root). */
export function writeReport(report: BenchReport): string {
  printTable(report);
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled to dist/bench/report.js; results go to the source tree's bench/results.
  const root = join(here, "..", "..");
  const out = join(root, "bench", "results", `${report.bench}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${out}`);
  return out;
}

/** Run `fn` repeatedly for about `ms` milliseconds (bounded by `maxIters`); ops per second. */
export function opsPerSecond(fn: () => void, ms = 500, maxIters = 50_000_000): number {
  for (let i = 0; i < 1000; i++) fn(); // warm-up
  let iters = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline && iters < maxIters) {
    for (let i = 0; i < 1000; i++) fn();
    iters += 1000;
    now = process.hrtime.bigint();
  }
  return iters / (Number(now - start) / 1e9);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Deterministic PRNG (mulberry32) so every run of a benchmark measures the same inputs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
