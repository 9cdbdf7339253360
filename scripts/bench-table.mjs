#!/usr/bin/env node
// Rewrites the README's benchmark table (between the bench:start/bench:end markers) from
// bench/results/*.json, so the figures quoted are the figures last measured.
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const PICK = {
  selector: ["evaluate simple (compiled)", "evaluate complex (compiled)", "parse + canonicalise (uncached)"],
  "label-index": [
    "initial load (selectors, then items)",
    "label change p50",
    "label change p99",
    "selector add p50",
    "heap after load (gc'd delta)",
  ],
  datastore: [
    "sqlite driver: sequential creates",
    "sqlite driver: sequential CAS updates, one key",
    "sqlite driver: 4 writer processes, creates (aggregate)",
    "watch latency, same process, p50",
    "watch latency, across processes, p50",
    "watch latency, across processes, p99",
  ],
  etcd: null,
  apiserver: null,
  ipam: null,
  agent: [
    "cold start: in sync → first apply done",
    "cold start: agent start → ready",
    "policy rule change: write → applied p99",
    "local endpoint label change: write → applied p99",
    "no-op write (unselected label): write → applied p50",
    "memory peak (VmHWM)",
  ],
  "policy-throughput": null,
  "nft-netlink": [
    "cold start: netlink batch",
    "flush chain + 5 rules: netlink p50",
    "flush chain + 5 rules: netlink p99",
  ],
  "bgp-bird-1m": [
    "Established → all received (median of rounds)",
    "memory per route (heap + array buffers, gc'd)",
  ],
  "bgp-mesh": ["ours: change → in all other kernels p50", "ours: change → in all other kernels p99"],
  cni: [
    "ADD via calico-node (200) p50",
    "ADD via calico-node (200) p99",
    "ADD plugin alone (bundle), interleaved (40) p50",
    "DEL via calico-node (200) p50",
    "ADD 20 concurrent, via calico-node p50",
  ],
  "lab-up": [
    "lab up, 3 hosts (4 workloads, policies, apiserver)",
    "lab up, 10 hosts (4 workloads, policies, apiserver)",
  ],
  fabric: [
    "fabric: lab workload h2 → h1 (calico-node, nft, BGP)",
    "VXLAN overlay: same hops + vxlan, no nft",
    "CNI ADD start → answers from every other host p50",
    "CNI ADD start → answers from every other host p99",
  ],
  "fabric-64k": [
    "fabric: lab workload h2 → h1 (calico-node, nft, BGP)",
    "VXLAN overlay: same hops + vxlan, no nft",
  ],
};
const num = (v) =>
  Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : Number(v.toPrecision(3)).toString();
const rows = ["| bench | measure | value | baseline | ratio |", "|---|---|---|---|---|"];
for (const [bench, names] of Object.entries(PICK)) {
  const file = `${root}bench/results/${bench}.json`;
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, "utf8"));
  for (const r of report.rows) {
    if (names !== null && !names.includes(r.name)) continue;
    rows.push(
      `| ${bench} | ${r.name} | ${num(r.value)} ${r.unit} | ${r.baseline === undefined ? "" : num(r.baseline)} | ${r.ratio === undefined ? "" : `${r.ratio < 0.1 ? r.ratio.toPrecision(2) : r.ratio.toFixed(2)}×`} |`,
    );
  }
}
const readme = `${root}README.md`;
const text = readFileSync(readme, "utf8");
const start = text.indexOf("<!-- bench:start -->");
const end = text.indexOf("<!-- bench:end -->");
if (start < 0 || end < 0) throw new Error("README.md has no bench:start/bench:end markers");
writeFileSync(
  readme,
  `${text.slice(0, start)}<!-- bench:start -->\n\n${rows.join("\n")}\n\n${text.slice(end)}`,
);
console.log(`README.md: ${rows.length - 2} benchmark rows`);
