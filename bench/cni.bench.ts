/**
 * CNI plugin latency, whole process included (spawn, Node start-up, imports, datastore, ip
 * commands), as a runtime sees it: 200 sequential dual-stack ADDs then their DELs, and 20 ADDs
 * started at once (checked for address conflicts) then their DELs, against a sqlite datastore,
 * each container in its own netns. Baseline in the same run: spawning `node -e 0` the same way
 * (nsenter into the host netns), so the ratio shows what the plugin adds to a bare Node start.
 * Targets (issue 7): ADD p50 ≤ 150 ms, p99 ≤ 400 ms.
 *
 *   npx tsc -p . && node dist/bench/cni.bench.js
 *
 * Bounded: fixed counts, and each phase stops after PHASE_LIMIT_MS.
 */
import { spawnSync } from "node:child_process";
import { CniLab, labResources, type Invocation } from "../src/cni/harness.js";
import { machineInfo, percentile, writeReport, type BenchRow } from "./report.js";

const SEQUENTIAL = 200;
const CONCURRENT = 20;
const BASELINE_RUNS = 30;
const PHASE_LIMIT_MS = 240_000;
const NODE = "bench-node";
const lab = new CniLab(`ctscnb${process.pid}`);

const conf = {
  cniVersion: "1.1.0",
  name: "bench-net",
  type: "calico",
  nodename: NODE,
  datastore: lab.dbUrl,
  ipam: { type: "calico-ipam", assign_ipv6: "true" },
};

function stats(ms: number[]): { p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? 0 };
}

function baseline(): number[] {
  const out: number[] = [];
  for (let i = 0; i < BASELINE_RUNS; i++) {
    const t0 = performance.now();
    spawnSync("nsenter", [`--net=/run/netns/${lab.hostNs}`, "--", process.execPath, "-e", "0"]);
    out.push(performance.now() - t0);
  }
  return out;
}

async function invokeOk(inv: Invocation): Promise<{ ms: number; ips: string[] }> {
  const r = await lab.invoke(inv);
  if (r.code !== 0) throw new Error(`${inv.command} ${inv.containerID ?? ""} failed: ${r.stdout}${r.stderr}`);
  const ips = Array.isArray(r.json?.ips) ? (r.json.ips as { address: string }[]).map((i) => i.address) : [];
  return { ms: r.ms, ips };
}

async function main(): Promise<void> {
  await lab.start(labResources(NODE, "198.19.0.0/22", "fd00:19::/116"));
  const rows: BenchRow[] = [];
  try {
    const base = stats(baseline());
    rows.push({
      name: "baseline: nsenter + node -e 0",
      value: base.p50,
      unit: "ms p50",
      note: `p99 ${base.p99.toFixed(0)} ms`,
    });

    // Sequential.
    const seq: Invocation[] = [];
    const addMs: number[] = [];
    const deadline = Date.now() + PHASE_LIMIT_MS;
    for (let i = 0; i < SEQUENTIAL && Date.now() < deadline; i++) {
      const inv: Invocation = {
        command: "ADD",
        containerID: `seq${i}`,
        netns: await lab.container(),
        ifname: "eth0",
        conf,
      };
      addMs.push((await invokeOk(inv)).ms);
      seq.push(inv);
    }
    const delMs: number[] = [];
    for (const inv of seq) delMs.push((await invokeOk({ ...inv, command: "DEL" })).ms);
    const a = stats(addMs);
    const d = stats(delMs);
    rows.push({
      name: `ADD sequential (${addMs.length}) p50`,
      value: a.p50,
      unit: "ms",
      baseline: base.p50,
      ratio: a.p50 / base.p50,
      note: `target ≤ 150 ms: ${a.p50 <= 150 ? "met" : "MISSED"}`,
    });
    rows.push({
      name: `ADD sequential (${addMs.length}) p99`,
      value: a.p99,
      unit: "ms",
      baseline: base.p99,
      ratio: a.p99 / base.p99,
      note: `target ≤ 400 ms: ${a.p99 <= 400 ? "met" : "MISSED"}`,
    });
    rows.push({
      name: `DEL sequential (${delMs.length}) p50`,
      value: d.p50,
      unit: "ms",
      baseline: base.p50,
      ratio: d.p50 / base.p50,
    });
    rows.push({
      name: `DEL sequential (${delMs.length}) p99`,
      value: d.p99,
      unit: "ms",
      baseline: base.p99,
      ratio: d.p99 / base.p99,
    });

    // Concurrent.
    const conc: Invocation[] = [];
    for (let i = 0; i < CONCURRENT; i++) {
      conc.push({
        command: "ADD",
        containerID: `conc${i}`,
        netns: await lab.container(),
        ifname: "eth0",
        conf,
      });
    }
    const t0 = performance.now();
    const results = await Promise.all(conc.map((inv) => invokeOk(inv)));
    const wall = performance.now() - t0;
    const all = results.flatMap((r) => r.ips);
    const distinct = new Set(all).size;
    if (distinct !== all.length || all.length !== 2 * CONCURRENT) {
      throw new Error(
        `address conflict among concurrent ADDs: ${all.length} addresses, ${distinct} distinct`,
      );
    }
    const c = stats(results.map((r) => r.ms));
    const cdel = await Promise.all(conc.map((inv) => invokeOk({ ...inv, command: "DEL" })));
    const cd = stats(cdel.map((r) => r.ms));
    rows.push({
      name: `ADD ${CONCURRENT} concurrent p50`,
      value: c.p50,
      unit: "ms",
      baseline: base.p50,
      ratio: c.p50 / base.p50,
    });
    rows.push({
      name: `ADD ${CONCURRENT} concurrent p99`,
      value: c.p99,
      unit: "ms",
      note: `wall ${wall.toFixed(0)} ms; ${distinct} distinct addresses, no conflict`,
    });
    rows.push({ name: `DEL ${CONCURRENT} concurrent p50`, value: cd.p50, unit: "ms" });
    rows.push({ name: `DEL ${CONCURRENT} concurrent p99`, value: cd.p99, unit: "ms" });
    const left = await lab.hostCaliLinks();
    if (left.length > 0) throw new Error(`interfaces left after DEL: ${left.join(", ")}`);
  } finally {
    await lab.close();
  }
  writeReport({
    bench: "cni",
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    params: {
      sequential: SEQUENTIAL,
      concurrent: CONCURRENT,
      datastore: "sqlite",
      stack: "dual",
      cniVersion: "1.1.0",
    },
    rows,
  });
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => void lab.close());
