/**
 * The label index at cluster scale: 10,000 labelled endpoints × 2,000 selectors.
 *
 * Measured against the naive approach in the same run: on a label change, evaluate every
 * selector against the changed item and diff the result; on a selector add, evaluate it
 * against every item; load by evaluating all pairs. The naive side is sampled (bounded count),
 * the index side runs the full counts; both see the same change sequence, and their match
 * sets are compared so the speed-up is not bought with wrong answers.
 *
 * Run: npx tsc -p . && node --expose-gc dist/bench/label-index.bench.js
 */
import os from "node:os";
import { machineInfo, percentile, writeReport, type BenchRow, seededRandom } from "./report.js";
import { LabelIndex, parseSelector, type Selector } from "../src/selector/index.js";

const ITEMS = 10_000;
const SELECTORS = 2_000;
const NAMESPACES = 50;
const CHANGES = 20_000;
const NAIVE_CHANGES = 500;
const SELECTOR_ADDS = 500;
const NAIVE_SELECTOR_ADDS = 100;

const rand = seededRandom(7);
const int = (n: number): number => Math.floor(rand() * n);
/** Skewed choice: low indexes are more popular, as real app names are. */
const skew = (n: number): number => Math.floor(n * rand() * rand());

const APPS = 400;
const TIERS = ["frontend", "backend", "data", "cache", "batch"];
const ROLES = Array.from({ length: 30 }, (_, i) => `role-${i}`);
const ENVS = ["prod", "stage", "dev"];

type Labels = Record<string, string>;

function itemLabels(i: number): { labels: Labels; parents: string[] } {
  const ns = `ns${i % NAMESPACES}`;
  const labels: Labels = {
    app: `app-${skew(APPS)}`,
    tier: TIERS[int(TIERS.length)]!,
    role: ROLES[int(ROLES.length)]!,
    version: `v${int(10)}`,
    "pod-template-hash": `h${i.toString(36)}`,
    "projectcalico.org/namespace": ns,
    "projectcalico.org/orchestrator": "k8s",
  };
  if (rand() < 0.3) labels["team"] = `team-${int(20)}`;
  if (rand() < 0.05) labels["canary"] = "true";
  if (rand() < 0.01) labels["quarantine"] = "true";
  return { labels, parents: [`kns.${ns}`] };
}

/** A realistic policy mix (the share of each form is in the params of the report). */
function selectorText(i: number): string {
  const r = i % 100;
  const app = `app-${skew(APPS)}`;
  if (r < 40) return `app == "${app}"`;
  if (r < 65) return `app == "${app}" && tier == "${TIERS[int(TIERS.length)]!}"`;
  if (r < 80) return `role in {"${ROLES[int(30)]!}", "${ROLES[int(30)]!}", "${ROLES[int(30)]!}"}`;
  if (r < 88) return `has(${["team", "canary", "quarantine", "version"][int(4)]!})`;
  if (r < 95) return `(app == "${app}") && projectcalico.org/namespace == 'ns${int(NAMESPACES)}'`;
  // Broad ones: all(), namespace-wide, negations.
  return [
    "all()",
    `pcns.env == "${ENVS[int(3)]!}"`,
    "!has(quarantine)",
    `projectcalico.org/namespace == 'ns${int(NAMESPACES)}'`,
    `tier != "batch" && version not in {"v0", "v1"}`,
  ][int(5)]!;
}

/** One label change: a new app, role or version on a random item (pods relabelled in place). */
function change(): { item: number; key: string; value: string } {
  const item = int(ITEMS);
  const k = int(3);
  if (k === 0) return { item, key: "app", value: `app-${skew(APPS)}` };
  if (k === 1) return { item, key: "role", value: ROLES[int(ROLES.length)]! };
  return { item, key: "version", value: `v${int(10)}` };
}

/** The baseline: re-evaluate every selector for a changed item, every item for a new selector. */
class NaiveIndex {
  readonly sels = new Map<number, Selector>();
  readonly items = new Map<number, Labels>();
  readonly matchesOf = new Map<number, Set<number>>(); // item -> selectors
  transitions = 0;
  addSelector(id: number, sel: Selector): void {
    this.sels.set(id, sel);
    for (const [iid, labels] of this.items) {
      if (sel.evaluate(labels)) {
        this.matchesOf.get(iid)!.add(id);
        this.transitions++;
      }
    }
  }
  updateItem(id: number, labels: Labels): void {
    this.items.set(id, labels);
    let set = this.matchesOf.get(id);
    if (set === undefined) this.matchesOf.set(id, (set = new Set()));
    for (const [sid, sel] of this.sels) {
      const now = sel.evaluate(labels);
      if (now !== set.has(sid)) {
        this.transitions++;
        if (now) set.add(sid);
        else set.delete(sid);
      }
    }
  }
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error("run with node --expose-gc");
  g();
  g();
}

const us = (ns: bigint): number => Number(ns) / 1000;
const now = (): bigint => process.hrtime.bigint();

function summarise(samples: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

const started = new Date().toISOString();
const loadAtStart = os.loadavg()[0]!;
const faster = (value: number, baseline: number): string => `${(baseline / value).toFixed(1)}x faster`;
const t0 = Date.now();

// ---- inputs ------------------------------------------------------------------------------
const items = Array.from({ length: ITEMS }, (_, i) => itemLabels(i));
const selTexts = Array.from({ length: SELECTORS }, (_, i) => selectorText(i));
const profiles = Array.from({ length: NAMESPACES }, (_, n) => ({
  id: `kns.ns${n}`,
  labels: { "pcns.env": ENVS[n % 3]!, "pcns.projectcalico.org/name": `ns${n}` },
}));
const changes = Array.from({ length: CHANGES }, change);
const extraSelTexts = Array.from({ length: SELECTOR_ADDS }, (_, i) => selectorText(i * 7 + 3));
// Parse up front: both sides get parsed selectors, so neither measure includes parsing.
const selectors = selTexts.map((t) => parseSelector(t));
const extraSelectors = extraSelTexts.map((t) => parseSelector(t));

/** Effective labels for the naive side (profile labels under the item's own). */
const profileLabels = new Map(profiles.map((p) => [p.id, p.labels]));
const effective = (own: Labels, parents: readonly string[]): Labels => ({
  ...profileLabels.get(parents[0]!)!,
  ...own,
});

// ---- index: load -------------------------------------------------------------------------
let transitions = 0;
gc();
const heapBefore = process.memoryUsage().heapUsed;
const index = new LabelIndex<number, number>({
  onMatchStarted: () => void transitions++,
  onMatchStopped: () => void transitions++,
});
let t = now();
for (const p of profiles) index.updateParent(p.id, p.labels);
for (let s = 0; s < SELECTORS; s++) index.updateSelector(s, selectors[s]!);
for (let i = 0; i < ITEMS; i++) index.updateItem(i, items[i]!.labels, items[i]!.parents);
const loadSelectorsFirstMs = us(now() - t) / 1000;
const loadEvaluations = index.stats().evaluations;
const loadMatches = transitions;
const distinctExpressions = index.stats().expressions;
const unanchoredExpressions = index.stats().unanchoredExpressions;
gc();
const heapIndex = process.memoryUsage().heapUsed - heapBefore;

// The other arrival order (items first, then selectors), on a fresh index.
function loadItemsFirst(): { ms: number; evaluations: number } {
  const other = new LabelIndex<number, number>();
  const start = now();
  for (const p of profiles) other.updateParent(p.id, p.labels);
  for (let i = 0; i < ITEMS; i++) other.updateItem(i, items[i]!.labels, items[i]!.parents);
  for (let s = 0; s < SELECTORS; s++) other.updateSelector(s, selectors[s]!);
  return { ms: us(now() - start) / 1000, evaluations: other.stats().evaluations };
}
const { ms: loadItemsFirstMs, evaluations: loadItemsFirstEvaluations } = loadItemsFirst();

// ---- naive: load -------------------------------------------------------------------------
gc();
const heapBeforeNaive = process.memoryUsage().heapUsed;
const naive = new NaiveIndex();
t = now();
for (let s = 0; s < SELECTORS; s++) naive.addSelector(s, selectors[s]!);
for (let i = 0; i < ITEMS; i++) naive.updateItem(i, effective(items[i]!.labels, items[i]!.parents));
const naiveLoadMs = us(now() - t) / 1000;
gc();
const heapNaive = process.memoryUsage().heapUsed - heapBeforeNaive;
if (naive.transitions !== loadMatches) {
  throw new Error(`match count differs after load: index ${loadMatches}, naive ${naive.transitions}`);
}

// ---- label changes -----------------------------------------------------------------------
const ownLabels = items.map((x) => ({ ...x.labels }));
const indexChange: number[] = [];
const evalsBefore = index.stats().evaluations;
const transBefore = transitions;
for (const c of changes) {
  const own = ownLabels[c.item]!;
  own[c.key] = c.value;
  const t1 = now();
  index.updateItem(c.item, own, items[c.item]!.parents);
  indexChange.push(us(now() - t1));
}
const evalsPerChange = (index.stats().evaluations - evalsBefore) / CHANGES;
const transPerChange = (transitions - transBefore) / CHANGES;

const naiveChange: number[] = [];
const naiveOwn = items.map((x) => ({ ...x.labels }));
for (let k = 0; k < NAIVE_CHANGES; k++) {
  const c = changes[k]!;
  naiveOwn[c.item]![c.key] = c.value;
  const labels = effective(naiveOwn[c.item]!, items[c.item]!.parents);
  const t1 = now();
  naive.updateItem(c.item, labels);
  naiveChange.push(us(now() - t1));
}
// Spot-check: after the same prefix of changes, a fresh index agrees with the naive one.
{
  const check = new LabelIndex<number, number>();
  for (const p of profiles) check.updateParent(p.id, p.labels);
  for (let s = 0; s < SELECTORS; s++) check.updateSelector(s, selectors[s]!);
  for (let i = 0; i < ITEMS; i++) check.updateItem(i, naiveOwn[i]!, items[i]!.parents);
  for (let i = 0; i < ITEMS; i += 97) {
    const a = [...check.selectorsMatching(i)].sort((x, y) => x - y).join(",");
    const b = [...naive.matchesOf.get(i)!].sort((x, y) => x - y).join(",");
    if (a !== b) throw new Error(`index and naive disagree on item ${i}: ${a} vs ${b}`);
  }
}

// ---- selector adds -----------------------------------------------------------------------
const indexAdd: number[] = [];
const evalsBeforeAdd = index.stats().evaluations;
for (let k = 0; k < SELECTOR_ADDS; k++) {
  const t1 = now();
  index.updateSelector(SELECTORS + k, extraSelectors[k]!);
  indexAdd.push(us(now() - t1));
}
const evalsPerAdd = (index.stats().evaluations - evalsBeforeAdd) / SELECTOR_ADDS;
const naiveAdd: number[] = [];
for (let k = 0; k < NAIVE_SELECTOR_ADDS; k++) {
  const t1 = now();
  naive.addSelector(SELECTORS + k, extraSelectors[k]!);
  naiveAdd.push(us(now() - t1));
}

// ---- report ------------------------------------------------------------------------------
const ic = summarise(indexChange);
const nc = summarise(naiveChange);
const ia = summarise(indexAdd);
const na = summarise(naiveAdd);
const mib = (b: number): number => b / 2 ** 20;
const rows: BenchRow[] = [
  {
    name: "initial load (selectors, then items)",
    value: loadSelectorsFirstMs,
    unit: "ms",
    baseline: naiveLoadMs,
    ratio: loadSelectorsFirstMs / naiveLoadMs,
    note: `${faster(loadSelectorsFirstMs, naiveLoadMs)}; ${loadEvaluations.toLocaleString("en-US")} evaluations vs ${(ITEMS * SELECTORS).toLocaleString("en-US")}; ${loadMatches.toLocaleString("en-US")} matches`,
  },
  {
    name: "initial load (items, then selectors)",
    value: loadItemsFirstMs,
    unit: "ms",
    baseline: naiveLoadMs,
    ratio: loadItemsFirstMs / naiveLoadMs,
    note: `${faster(loadItemsFirstMs, naiveLoadMs)}; ${loadItemsFirstEvaluations.toLocaleString("en-US")} evaluations`,
  },
  {
    name: "label change p50",
    value: ic.p50,
    unit: "µs",
    baseline: nc.p50,
    ratio: ic.p50 / nc.p50,
    note: `${faster(ic.p50, nc.p50)}; index ${CHANGES} changes, naive ${NAIVE_CHANGES}; ${evalsPerChange.toFixed(1)} evals/change vs ${SELECTORS}`,
  },
  {
    name: "label change p99",
    value: ic.p99,
    unit: "µs",
    baseline: nc.p99,
    ratio: ic.p99 / nc.p99,
    note: `${faster(ic.p99, nc.p99)}; ${transPerChange.toFixed(2)} match transitions per change`,
  },
  {
    name: "label change mean",
    value: ic.mean,
    unit: "µs",
    baseline: nc.mean,
    ratio: ic.mean / nc.mean,
    note: faster(ic.mean, nc.mean),
  },
  {
    name: "selector add p50",
    value: ia.p50,
    unit: "µs",
    baseline: na.p50,
    ratio: ia.p50 / na.p50,
    note: `${faster(ia.p50, na.p50)}; index ${SELECTOR_ADDS} adds, naive ${NAIVE_SELECTOR_ADDS}; ${evalsPerAdd.toFixed(0)} evals/add vs ${ITEMS}`,
  },
  {
    name: "selector add p99",
    value: ia.p99,
    unit: "µs",
    baseline: na.p99,
    ratio: ia.p99 / na.p99,
    note: `${faster(ia.p99, na.p99)}; the slow adds are broad selectors (all(), !has) matching most items`,
  },
  {
    name: "heap after load (gc'd delta)",
    value: mib(heapIndex),
    unit: "MiB",
    baseline: mib(heapNaive),
    ratio: heapIndex / heapNaive,
    note: "baseline: naive maps of labels + per-item match sets",
  },
];

writeReport({
  bench: "label-index",
  startedAt: started,
  machine: machineInfo(),
  params: {
    items: ITEMS,
    selectors: SELECTORS,
    distinctSelectorExpressions: distinctExpressions,
    unanchoredExpressions,
    namespaces: NAMESPACES,
    labelsPerItem: "7-10 own + 2 from the namespace profile",
    selectorMix:
      "40% app==X, 25% app==X && tier==Y, 15% role in {3}, 8% has(k), 7% app && namespace, 5% broad (all(), pcns.env, !has, namespace, != / not in)",
    changes: CHANGES,
    naiveChanges: NAIVE_CHANGES,
    selectorAdds: SELECTOR_ADDS,
    naiveSelectorAdds: NAIVE_SELECTOR_ADDS,
    wallSeconds: (Date.now() - t0) / 1000,
    loadAverage1m: { atStart: loadAtStart, atEnd: os.loadavg()[0]! },
  },
  rows,
});
