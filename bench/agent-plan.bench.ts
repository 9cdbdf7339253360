/**
 * The agent's cold-start planning, in process (issue 5): the scale scenario of agent.bench
 * (10,000 endpoints, 1,000 local, 2,000 policies) fed straight into `CalcGraph` — no kernel,
 * no datastore process — then each stage of "state → nft ops" timed on its own, with the
 * retained heap after each:
 *   calc (KV updates → DesiredState), DesiredTable.fromState, rule hashing (inside fromState,
 *   timed again alone), createAll (the diff against an empty table), renderTransaction (the
 *   script NftCli writes), and NftManager.apply's own cold start ("nft plan" of the agent's
 *   log) with a stub Nft that only renders.
 * Then the fast path: one policy rule change and one local endpoint label change through
 * calc + NftManager.apply (DesiredTable.update + planTable of the touched names), p50/p99.
 * Baseline of the in-run comparison: the same figures for the previous stage (ratios).
 *
 *   npx tsc -p . && node --expose-gc dist/bench/agent-plan.bench.js
 *   BENCH_SAMPLES=60 (fast-path samples), BENCH_PROFILE=cold|fast (stop after that part, for
 *   `node --cpu-prof`).
 */
import { resolveConfig } from "../src/agent/felix-config.js";
import { parseValue } from "../src/agent/syncer.js";
import { nullLogger } from "../src/agent/log.js";
import { CalcGraph } from "../src/calc/calc-graph.js";
import type { DesiredState, KVUpdate } from "../src/calc/types.js";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { ResourceStore } from "../src/datastore/resources.js";
import type { Nft, Rule, Transaction } from "../src/dataplane/nft/model.js";
import type { DataplaneConfig } from "../src/dataplane/types.js";
import { renderTransaction } from "../src/dataplane/nft/render.js";
import { NftManager } from "../src/dataplane/nft-manager.js";
import { ruleHash } from "../src/dataplane/rules/comment.js";
import { DesiredTable } from "../src/dataplane/rules/ruleset.js";
import { createAll } from "../src/dataplane/table-diff.js";
import { DEFAULT_SCALE, baseResources, endpointAt, wepResource } from "./agent-scenario.js";
import { machineInfo, percentile, writeReport, type BenchReport, type BenchRow } from "./report.js";

const NODE = "h1";
const PREFIX = "ctsp0";
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 60);
const PHASE_DEADLINE_MS = 30_000;
const P = DEFAULT_SCALE;
const MiB = 2 ** 20;

const gc = (globalThis as { gc?: () => void }).gc;

interface Mem {
  heapMiB: number;
  rssMiB: number;
}

function memory(): Mem {
  gc?.();
  const m = process.memoryUsage();
  return { heapMiB: m.heapUsed / MiB, rssMiB: m.rss / MiB };
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

/** An Nft that holds nothing: `apply` renders the script as NftCli does, then drops it. */
class RenderOnlyNft implements Nft {
  lastBytes = 0;
  apply(tx: Transaction): Promise<void> {
    this.lastBytes = renderTransaction(tx).length;
    return Promise.resolve();
  }
  list(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
}

/** The scenario's datastore contents as the syncer would deliver them (JSON-parsed values). */
async function scenarioUpdates(): Promise<KVUpdate[]> {
  const ds = new MemoryDatastore();
  const store = new ResourceStore(ds);
  await store.ensureBuiltins();
  for (const r of baseResources(P, NODE)) await store.create(r);
  for (let i = 0; i < P.endpoints; i++) await store.create(wepResource(endpointAt(i, P, NODE, PREFIX)));
  const { items } = await ds.list("/calico/");
  await ds.close();
  const log = nullLogger();
  return items.map((kv) => ({ key: kv.key, value: parseValue(kv.key, kv.value, log) }));
}

async function main(): Promise<void> {
  if (gc === undefined) console.warn("agent-plan.bench: run with --expose-gc for retained-heap figures");
  const rows: BenchRow[] = [];
  const memRow = (stage: string, m: Mem, before?: Mem): BenchRow => ({
    name: `memory after ${stage} (heap used)`,
    value: m.heapMiB,
    unit: "MiB",
    ...(before === undefined ? {} : { baseline: before.heapMiB, ratio: m.heapMiB / before.heapMiB }),
    note: `RSS ${m.rssMiB.toFixed(0)} MiB`,
  });
  const cfg = resolveConfig({}).config.dataplane;
  cfg.ipv6 = true;

  let updates: KVUpdate[] | undefined = await scenarioUpdates();
  const mem0 = memory();
  rows.push(memRow("start (updates parsed)", mem0));

  // 1. calc.
  const calc = new CalcGraph({ hostname: NODE });
  const c = timed(() => {
    calc.onUpdates(updates!);
    return calc.flush();
  });
  const nUpdates = updates.length;
  updates = undefined;
  const state = calc.state;
  rows.push({
    name: "calc: KV updates → DesiredState",
    value: c.ms,
    unit: "ms",
    note: `${nUpdates} updates → ${state.endpoints.size} local endpoints, ${state.policies.size} active policies, ${state.ipSets.size} IP sets`,
  });
  const memCalc = memory();
  rows.push(memRow("calc", memCalc));

  // 2. The manager's cold start as the agent runs it (first: every cache cold); kept for the
  // fast path.
  const nft = new RenderOnlyNft();
  const mgr = new NftManager(nft, cfg);
  const cold = await mgr.apply(state, c.value);
  rows.push({
    name: "NftManager cold apply: plan (agent's nftPlanMs)",
    value: cold.planMs,
    unit: "ms",
    note: `${cold.ops} ops; target ≤ 800 ms`,
  });
  rows.push({
    name: "NftManager cold apply: render + belief record",
    value: cold.writeMs,
    unit: "ms",
    note: `${(nft.lastBytes / MiB).toFixed(1)} MiB script rendered`,
  });
  const memMgr = memory();
  rows.push(memRow("NftManager cold apply (agent steady state)", memMgr, memCalc));

  // 3. The same in stages, on a second table (dropped afterwards). The caches of parsed set
  // members and shared rules are warm now: "cold" figures are the manager's above.
  rows.push(...stages(state, cfg, cold.planMs));
  rows.push(memRow("the staged run (garbage dropped)", memory(), memMgr));

  if (process.env.BENCH_PROFILE === "cold") return;

  // 4. Fast path: one change → calc → NftManager.apply (update + planTable + record).
  const local = endpointAt(0, P, NODE, PREFIX);
  const pol = (baseResources(P, NODE) as { kind: string; metadata: { name: string } }[]).find(
    (r) => r.kind === "NetworkPolicy" && r.metadata.name === "np-0",
  )!;
  const polKey = `/calico/resources/v3/projectcalico.org/networkpolicies/ns-00/np-0`;
  const wepKey = `/calico/resources/v3/projectcalico.org/workloadendpoints/${local.namespace}/${local.name}`;
  const changes: [string, (i: number) => KVUpdate][] = [
    [
      "policy rule change",
      (i) => {
        const spec = structuredClone((pol as unknown as { spec: Record<string, unknown> }).spec) as {
          ingress: { protocol?: string; destination?: { ports?: unknown[] } }[];
        };
        spec.ingress.find((r) => r.protocol === "TCP")!.destination = { ports: [i % 2 === 0 ? 8181 : 8080] };
        return { key: polKey, value: { ...pol, spec } };
      },
    ],
    [
      "local endpoint label change",
      (i) => ({
        key: wepKey,
        value: wepResource({
          ...local,
          labels: { ...local.labels, app: i % 2 === 0 ? "app-19" : local.labels.app! },
        }),
      }),
    ],
  ];
  for (const [name, update] of changes) {
    const calcMs: number[] = [];
    const plan: number[] = [];
    const opsN: number[] = [];
    const deadline = performance.now() + PHASE_DEADLINE_MS;
    for (let i = 0; i < SAMPLES && performance.now() < deadline; i++) {
      const cc = timed(() => {
        calc.onUpdates([update(i)]);
        return calc.flush();
      });
      const s = await mgr.apply(state, cc.value);
      if (s.full) throw new Error(`${name}: the fast path fell back to a full apply`);
      calcMs.push(cc.ms);
      plan.push(s.planMs);
      opsN.push(s.ops);
    }
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    rows.push(
      { name: `${name}: calc p50`, value: percentile(sorted(calcMs), 50), unit: "ms" },
      {
        name: `${name}: update + planTable p50`,
        value: percentile(sorted(plan), 50),
        unit: "ms",
        note: `${percentile(sorted(opsN), 50)} ops per change, ${plan.length} samples`,
      },
      {
        name: `${name}: update + planTable p99`,
        value: percentile(sorted(plan), 99),
        unit: "ms",
        note: `target ≤ 5 ms; p90 ${percentile(sorted(plan), 90).toFixed(2)} ms, max ${Math.max(...plan).toFixed(1)} ms`,
      },
    );
  }
  if (process.env.BENCH_PROFILE === "fast") return;

  const report: BenchReport = {
    bench: "agent-plan",
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    params: { ...P, node: NODE, samplesPerChange: SAMPLES, ipv6: true, exposeGc: gc !== undefined },
    rows,
  };
  writeReport(report);
}

/** fromState, hashing, createAll and render one by one (objects dropped on return). */
function stages(state: DesiredState, cfg: DataplaneConfig, coldPlanMs: number): BenchRow[] {
  const rows: BenchRow[] = [];
  const t = timed(() => DesiredTable.fromState(state, cfg));
  let rulesN = 0;
  const distinct = new Set<Rule>();
  for (const ch of t.value.chains.values())
    for (const r of ch.rules) {
      rulesN++;
      distinct.add(r);
    }
  let elements = 0;
  for (const st of t.value.sets.values()) elements += st.elements.size;
  rows.push({
    name: "DesiredTable.fromState (caches warm)",
    value: t.ms,
    unit: "ms",
    note: `${t.value.chains.size} chains, ${rulesN} rules (${distinct.size} distinct objects), ${t.value.sets.size} sets, ${elements} elements`,
  });
  const h = timed(() => {
    let n = 0;
    for (const r of distinct) n += ruleHash(r).length;
    return n;
  });
  rows.push({
    name: "rule hashing alone (every distinct rule once)",
    value: h.ms,
    unit: "ms",
    baseline: t.ms,
    ratio: h.ms / t.ms,
    note: "baseline: fromState",
  });
  const ops = timed(() => createAll(t.value));
  rows.push({
    name: "createAll (diff vs empty)",
    value: ops.ms,
    unit: "ms",
    note: `${ops.value.length} ops`,
  });
  const script = timed(() => renderTransaction({ ops: ops.value }));
  rows.push({
    name: "renderTransaction (the nft -f script)",
    value: script.ms,
    unit: "ms",
    note: `${(script.value.length / MiB).toFixed(1)} MiB of text`,
  });
  rows.push({
    name: "fromState + createAll, caches warm",
    value: t.ms + ops.ms,
    unit: "ms",
    baseline: coldPlanMs,
    ratio: (t.ms + ops.ms) / coldPlanMs,
    note: "baseline: the cold apply's plan",
  });
  return rows;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
