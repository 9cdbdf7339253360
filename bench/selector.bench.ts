/**
 * Selector evaluation and parsing throughput (src/selector).
 *
 * Evaluation: the compiled closures `parseSelector` builds, against the tree-walking
 * interpreter (the baseline, same run, same inputs), for a simple and a complex expression
 * over label maps of ~8 labels. Parsing: parse + canonicalise of varied selectors, uncached,
 * against the cached `parseSelector` path policies hit in practice.
 *
 * Run: npx tsc -p . && node --expose-gc dist/bench/selector.bench.js
 */
import { machineInfo, opsPerSecond, writeReport, type BenchRow, seededRandom } from "./report.js";
import { parseSelector, parseSelectorUncached, type Selector } from "../src/selector/index.js";
import { interpret } from "../src/selector/interpret.js";

const MS = 700;

const rand = seededRandom(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** 256 label maps of ~8 labels, shaped like pod labels. */
const LABEL_SETS: Record<string, string>[] = Array.from({ length: 256 }, (_, i) => {
  const l: Record<string, string> = {
    app: pick(["web", "api", "db", "frontend", "cache", "worker"]),
    tier: pick(["frontend", "backend", "data"]),
    role: pick(["edge-proxy", "internal", "batch", "edge"]),
    env: pick(["prod", "stage", "dev"]),
    version: pick(["v1", "v2", "v3", "v4"]),
    team: pick(["payments-sre", "search", "core-sre", "growth"]),
    "pod-template-hash": `h${i}`,
    "projectcalico.org/namespace": pick(["default", "shop", "infra"]),
  };
  if (rand() < 0.1) l["quarantine"] = "true";
  return l;
});

const SIMPLE = 'app == "web"';
const COMPLEX =
  '(app in {"web", "api", "frontend"} && !has(quarantine) && (tier starts with "front" || role contains "edge")) || ' +
  '(env == "prod" && version not in {"v1", "v2"} && team ends with "-sre" && !(projectcalico.org/namespace == "infra"))';

function evalRows(label: string, text: string): BenchRow[] {
  const sel: Selector = parseSelector(text);
  const root = sel.root;
  const n = LABEL_SETS.length;
  let matches = 0;
  // Same inputs, same order; the match count is checked equal so neither side is optimised away.
  let i = 0;
  const compiled = opsPerSecond(() => {
    if (sel.evaluate(LABEL_SETS[i++ & (n - 1)]!)) matches++;
  }, MS);
  const compiledMatches = matches;
  matches = 0;
  i = 0;
  const interpreted = opsPerSecond(() => {
    if (interpret(root, LABEL_SETS[i++ & (n - 1)]!)) matches++;
  }, MS);
  for (const l of LABEL_SETS) {
    if (sel.evaluate(l) !== interpret(root, l))
      throw new Error(`compiled and interpreted disagree on ${text}`);
  }
  const share = LABEL_SETS.filter((l) => sel.evaluate(l)).length / n;
  void compiledMatches;
  return [
    {
      name: `evaluate ${label} (compiled)`,
      value: compiled,
      unit: "evals/s",
      baseline: interpreted,
      ratio: compiled / interpreted,
      note: `baseline: tree-walking interpreter; ${Math.round(share * 100)}% of label sets match`,
    },
  ];
}

/** Varied selectors, as policies write them (spacing, quotes, sets out of order). */
const PARSE_INPUTS: string[] = Array.from({ length: 512 }, (_, i) => {
  const forms = [
    `app == "svc-${i}"`,
    `app=='svc-${i}'&&tier=="frontend"`,
    `role in {"r${i}", "a", "b", "r${i}"}`,
    `has(team-${i}) && !has(quarantine)`,
    `(app == "a${i}" || app == "b${i}") && env != "dev"`,
    `projectcalico.org/namespace == 'ns${i}' && (app starts with "web" || version not in {"v1","v2",})`,
  ];
  return forms[i % forms.length]!;
});

function parseRows(): BenchRow[] {
  const n = PARSE_INPUTS.length;
  let i = 0;
  let chars = 0;
  // Warm every path first so the first measurement does not pay for JIT compilation.
  for (let r = 0; r < 40; r++) {
    for (const t of PARSE_INPUTS)
      chars += parseSelectorUncached(t).uniqueId().length + parseSelector(t).toString().length;
  }
  const uncached = opsPerSecond(() => {
    chars += parseSelectorUncached(PARSE_INPUTS[i++ % n]!).toString().length;
  }, MS);
  i = 0;
  const cached = opsPerSecond(() => {
    chars += parseSelector(PARSE_INPUTS[i++ % n]!).toString().length;
  }, MS);
  i = 0;
  const uid = opsPerSecond(() => {
    chars += parseSelectorUncached(PARSE_INPUTS[i++ % n]!).uniqueId().length;
  }, MS);
  void chars;
  return [
    {
      name: "parse + canonicalise (uncached)",
      value: uncached,
      unit: "selectors/s",
      baseline: cached,
      ratio: uncached / cached,
      note: "baseline: parseSelector cache hit (what repeated policy selectors cost)",
    },
    {
      name: "parse + canonicalise + unique ID (SHA-224)",
      value: uid,
      unit: "selectors/s",
      baseline: uncached,
      ratio: uid / uncached,
      note: "baseline: parse + canonicalise without hashing",
    },
  ];
}

const started = new Date().toISOString();
const t0 = Date.now();
const rows = [...evalRows("simple", SIMPLE), ...evalRows("complex", COMPLEX), ...parseRows()];
writeReport({
  bench: "selector",
  startedAt: started,
  machine: machineInfo(),
  params: {
    simple: SIMPLE,
    complex: COMPLEX,
    labelSets: LABEL_SETS.length,
    labelsPerSet: "8-9",
    parseInputs: PARSE_INPUTS.length,
    msPerMeasure: MS,
    wallSeconds: (Date.now() - t0) / 1000,
  },
  rows,
});
