/**
 * nft transactions over raw nfnetlink (nft/netlink-tx.ts) vs `nft -f` of the rendered script,
 * same run, same table: the agent bench's scale scenario (10,000 endpoints, 1,000 local, 2,000
 * policies) through CalcGraph → DesiredTable → createAll, applied
 *   1. cold: the whole table into an empty namespace (one netlink batch vs one `nft -f`);
 *   2. fast path: on that big table, one policy chain flushed and refilled with 5 rules
 *      (flush chain + 5 add rule), p50/p99 over BENCH_SAMPLES (default 40) per path.
 * Each path has its own namespace (created and deleted here); after the cold start the two
 * tables must list identically (`nft list table`, text), else the bench fails.
 *
 *   npx tsc -p . && node dist/bench/nft-netlink.bench.js     (root: network namespaces)
 *   BENCH_COLD_RUNS=3 (cold samples per path), BENCH_SAMPLES=40
 */
import { resolveConfig } from "../src/agent/felix-config.js";
import { parseValue } from "../src/agent/syncer.js";
import { nullLogger } from "../src/agent/log.js";
import { CalcGraph } from "../src/calc/calc-graph.js";
import type { KVUpdate } from "../src/calc/types.js";
import { MemoryDatastore } from "../src/datastore/memory.js";
import { ResourceStore } from "../src/datastore/resources.js";
import { run, runOk } from "../src/dataplane/netns.js";
import type { Rule, Transaction, TxOp } from "../src/dataplane/nft/model.js";
import { NftCli } from "../src/dataplane/nft/nft-cli.js";
import { DesiredTable } from "../src/dataplane/rules/ruleset.js";
import { createAll } from "../src/dataplane/table-diff.js";
import { DEFAULT_SCALE, baseResources, endpointAt, wepResource } from "./agent-scenario.js";
import { machineInfo, percentile, writeReport, type BenchRow } from "./report.js";

const NODE = "h1";
const PREFIX = "ctsnb0";
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 3);
const PHASE_DEADLINE_MS = 120_000;
const P = DEFAULT_SCALE;
const MiB = 2 ** 20;

async function scenarioTable(): Promise<DesiredTable> {
  const ds = new MemoryDatastore();
  const store = new ResourceStore(ds);
  await store.ensureBuiltins();
  for (const r of baseResources(P, NODE)) await store.create(r);
  for (let i = 0; i < P.endpoints; i++) await store.create(wepResource(endpointAt(i, P, NODE, PREFIX)));
  const { items } = await ds.list("/calico/");
  await ds.close();
  const log = nullLogger();
  const updates: KVUpdate[] = items.map((kv) => ({ key: kv.key, value: parseValue(kv.key, kv.value, log) }));
  const calc = new CalcGraph({ hostname: NODE });
  calc.onUpdates(updates);
  calc.flush();
  const cfg = resolveConfig({}).config.dataplane;
  cfg.ipv6 = true;
  return DesiredTable.fromState(calc.state, cfg);
}

const ns = (side: string): string => `ctsnb-${process.pid}-${side}`;

async function freshNs(name: string): Promise<void> {
  await run("ip", ["netns", "delete", name]);
  await runOk("ip", ["netns", "add", name]);
}

async function timedApply(cli: NftCli, tx: Transaction): Promise<number> {
  const t0 = performance.now();
  await cli.apply(tx);
  return performance.now() - t0;
}

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

async function main(): Promise<void> {
  const table = await scenarioTable();
  const cold: Transaction = { ops: [{ op: "ensure-table" }, ...createAll(table)] };
  const counts = { rules: 0, chains: table.chains.size, sets: table.sets.size };
  for (const c of table.chains.values()) counts.rules += c.rules.length;
  const rows: BenchRow[] = [];
  const sides = { netlink: ns("nl"), script: ns("nft") };
  const clis = {
    netlink: new NftCli({ netns: sides.netlink, netlink: true }),
    script: new NftCli({ netns: sides.script, netlink: false }),
  };
  try {
    // 1. cold start, alternating the two paths.
    const coldMs = { netlink: [] as number[], script: [] as number[] };
    const bytes = { netlink: 0, script: 0 };
    for (let i = 0; i < COLD_RUNS; i++) {
      for (const side of ["netlink", "script"] as const) {
        await freshNs(sides[side]);
        coldMs[side].push(await timedApply(clis[side], cold));
        bytes[side] = clis[side].lastScriptBytes;
      }
    }
    if (clis.netlink.stats.netlink !== COLD_RUNS)
      throw new Error(`cold start fell back to nft -f: ${clis.netlink.lastFallbackReason}`);
    const listing = async (side: "netlink" | "script") =>
      (
        await runOk("nft", ["list", "table", "inet", "calico"], { netns: sides[side], timeoutMs: 120_000 })
      ).trim();
    const [a, b] = [await listing("netlink"), await listing("script")];
    if (a !== b) throw new Error("the netlink and nft -f tables list differently");
    const coldNote = `${counts.rules} rules, ${counts.chains} chains, ${counts.sets} sets; median of ${COLD_RUNS}`;
    const nlCold = percentile(sorted(coldMs.netlink), 50);
    const nftCold = percentile(sorted(coldMs.script), 50);
    rows.push(
      {
        name: "cold start: nft -f (baseline)",
        value: nftCold,
        unit: "ms",
        note: `${(bytes.script / MiB).toFixed(1)} MiB script; ${coldNote}`,
      },
      {
        name: "cold start: netlink batch",
        value: nlCold,
        unit: "ms",
        baseline: nftCold,
        ratio: nlCold / nftCold,
        note: `${(bytes.netlink / MiB).toFixed(1)} MiB batch, one sendmsg; tables list identically (${(a.length / MiB).toFixed(1)} MiB text)`,
      },
    );

    // 2. one policy chain flushed and refilled with 5 rules, on the big table.
    const chain = [...table.chains.values()].find(
      (c) => c.name.startsWith("filter-cali-pi-") && c.rules.length > 0,
    );
    if (chain === undefined) throw new Error("no policy chain in the table");
    const five: Rule[] = Array.from({ length: 5 }, (_, i) => chain.rules[i % chain.rules.length]!);
    const change = (i: number): Transaction => ({
      ops: [
        { op: "ensure-table" },
        { op: "flush-chain", chain: chain.name },
        ...five.map((r, j): TxOp => ({
          op: "add-rule",
          chain: chain.name,
          rule: { ...r, comment: `bench:${i}:${j}` },
        })),
      ],
    });
    const fast = { netlink: [] as number[], script: [] as number[] };
    const deadline = performance.now() + PHASE_DEADLINE_MS;
    for (let i = 0; i < SAMPLES && performance.now() < deadline; i++) {
      for (const side of ["netlink", "script"] as const)
        fast[side].push(await timedApply(clis[side], change(i)));
    }
    if (clis.netlink.stats.netlink !== COLD_RUNS + fast.netlink.length)
      throw new Error(`a small transaction fell back to nft -f: ${clis.netlink.lastFallbackReason}`);
    const n = fast.netlink.length;
    for (const q of [50, 99]) {
      const base = percentile(sorted(fast.script), q);
      const v = percentile(sorted(fast.netlink), q);
      rows.push(
        {
          name: `flush chain + 5 rules: nft -f p${q} (baseline)`,
          value: base,
          unit: "ms",
          note: `${n} samples`,
        },
        {
          name: `flush chain + 5 rules: netlink p${q}`,
          value: v,
          unit: "ms",
          baseline: base,
          ratio: v / base,
          note: `${n} samples; ${clis.netlink.lastScriptBytes} bytes per batch`,
        },
      );
    }
  } finally {
    await run("ip", ["netns", "delete", sides.netlink]);
    await run("ip", ["netns", "delete", sides.script]);
  }
  writeReport({
    bench: "nft-netlink",
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    params: { scale: P, samples: SAMPLES, coldRuns: COLD_RUNS },
    rows,
  });
}

await main();
