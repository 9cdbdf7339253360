/**
 * State sequences through the whole pipeline (STYLE.md "state sequences"; Felix
 * calc_graph_fv_test.go): fast-check sequences of datastore changes — policies, endpoints,
 * labels, profiles, network sets, host endpoints, tiers, deletes interleaved, replays — are
 * applied incrementally through CalcGraph + LinuxDataplane(FakeNft) after every step. After
 * each step the FakeNft listing must equal a FRESH pipeline's full apply of the same final
 * datastore state, and sample packets must get the same verdicts. Every sequence also runs
 * reversed. Bounds: `PIPELINE_SEQ_RUNS` (default 100) runs of ≤ 30 steps.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { KVUpdate } from "../src/calc/types.js";
import {
  Pipeline,
  namespaceProfileYaml,
  updatesFromYaml,
  workloadYaml,
  type Family,
  type Row,
} from "./helpers/pipeline.js";

const doc = (o: unknown): string => `---\n${JSON.stringify(o)}\n`;
const res = (
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  md: Record<string, unknown> = {},
): string => doc({ apiVersion: "projectcalico.org/v3", kind, metadata: { name, ...md }, spec });

/** One datastore key and the values it may take (null = deleted). */
interface Slot {
  key: string;
  values: unknown[];
}

function slot(...yamls: string[]): Slot {
  const ups = yamls.map((y) => {
    const [u] = updatesFromYaml(y);
    if (u === undefined) throw new Error("no resource");
    return u;
  });
  const key = ups[0]!.key;
  for (const u of ups) assert.equal(u.key, key);
  return { key, values: ups.map((u) => u.value) };
}

const wl = (pod: string, host: number, ns: string, node = "h1") =>
  slot(
    workloadYaml(pod, { ns, host, node, labels: { app: pod, role: "client" } }),
    workloadYaml(pod, {
      ns,
      host,
      node,
      labels: { app: pod, role: "db" },
      ports: [{ name: "http", port: 8080 + host }],
    }),
    workloadYaml(pod, { ns, host, node, labels: { app: pod }, profiles: [`kns.${ns}`, "extra"] }),
    workloadYaml(pod, { ns, host, node, labels: { app: pod, role: "db" }, profiles: [] }),
  );

const SLOTS: Slot[] = [
  slot(namespaceProfileYaml("shop", { team: "a" }), namespaceProfileYaml("shop", { team: "b" })),
  slot(namespaceProfileYaml("web", { team: "b" })),
  slot(
    res("Profile", "extra", { ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }] }),
    res("Profile", "extra", { ingress: [{ action: "Allow" }], labelsToApply: { role: "client" } }),
  ),
  wl("a", 1, "shop"),
  wl("b", 2, "shop"),
  wl("c", 3, "web"),
  wl("r", 4, "shop", "h2"),
  slot(
    res("GlobalNetworkPolicy", "db", {
      selector: "role == 'db'",
      types: ["Ingress"],
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: "role == 'client'" },
          destination: { ports: [80, "http"] },
        },
      ],
    }),
    res("GlobalNetworkPolicy", "db", {
      selector: "role == 'db'",
      order: 5,
      ingress: [
        { action: "Deny", protocol: "UDP" },
        { action: "Allow", source: { selector: "has(app)" } },
      ],
      egress: [{ action: "Allow", destination: { notNets: ["198.18.0.0/16"] } }],
    }),
  ),
  slot(
    res(
      "NetworkPolicy",
      "iso",
      { selector: "all()", ingress: [{ action: "Allow", source: { selector: "role == 'client'" } }] },
      { namespace: "shop" },
    ),
    res(
      "NetworkPolicy",
      "iso",
      {
        selector: "app == 'a'",
        types: ["Egress"],
        egress: [{ action: "Allow", destination: { selector: "role == 'partner'" } }],
      },
      { namespace: "shop" },
    ),
  ),
  slot(res("Tier", "sec", { order: 100 }), res("Tier", "sec", { order: 100, defaultAction: "Pass" })),
  slot(
    res("GlobalNetworkPolicy", "sec-guard", {
      tier: "sec",
      selector: "all()",
      types: ["Ingress"],
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [23] } }, { action: "Pass" }],
    }),
    res("GlobalNetworkPolicy", "sec-guard", {
      tier: "sec",
      selector: "app == 'b'",
      types: ["Ingress"],
      ingress: [{ action: "Log" }],
    }),
  ),
  slot(
    res("StagedGlobalNetworkPolicy", "st", {
      tier: "sec",
      selector: "all()",
      types: ["Ingress"],
      ingress: [{ action: "Deny" }],
    }),
  ),
  slot(
    res(
      "NetworkSet",
      "partners",
      { nets: ["198.18.7.0/24", "fd00::7:0/112"] },
      { namespace: "shop", labels: { role: "partner" } },
    ),
    res(
      "NetworkSet",
      "partners",
      { nets: ["198.18.0.2/32", "fd00::2/128"] },
      { namespace: "shop", labels: { role: "partner" } },
    ),
  ),
  slot(
    res("GlobalNetworkSet", "gw", { nets: ["198.18.0.0/24", "fd00::/120"] }, { labels: { role: "client" } }),
  ),
  slot(
    res(
      "HostEndpoint",
      "h1-eth0",
      { node: "h1", interfaceName: "eth0", expectedIPs: ["198.18.0.1", "fd00::1"] },
      { labels: { hep: "yes" } },
    ),
    res(
      "HostEndpoint",
      "h1-eth0",
      {
        node: "h1",
        interfaceName: "*",
        expectedIPs: ["198.18.0.1"],
        profiles: ["projectcalico-default-allow"],
      },
      { labels: { hep: "yes" } },
    ),
  ),
  slot(
    res("GlobalNetworkPolicy", "hep", {
      selector: "has(hep)",
      applyOnForward: true,
      types: ["Ingress"],
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [81] } }, { action: "Allow" }],
    }),
    res("GlobalNetworkPolicy", "hep", {
      selector: "has(hep)",
      applyOnForward: true,
      preDNAT: true,
      types: ["Ingress"],
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [82] } }],
    }),
    res("GlobalNetworkPolicy", "hep", {
      selector: "has(hep)",
      applyOnForward: true,
      doNotTrack: true,
      types: ["Ingress"],
      ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [9100] } }],
    }),
  ),
];

/** Every value any slot can hold, so pipelines know every workload's addresses. */
const ALL_UPDATES: KVUpdate[] = SLOTS.flatMap((s) => s.values.map((value) => ({ key: s.key, value })));

const SAMPLE: Row[] = [
  ["a", "b", "tcp", 80, "accept"],
  ["b", "a", "tcp", 80, "accept"],
  ["a", "b", "tcp", 8082, "accept"],
  ["c", "b", "udp", 53, "accept"],
  ["r", "a", "tcp", 23, "accept"],
  ["a", "c", "icmp", { type: 8 }, "accept"],
  ["ext", "host", "tcp", 80, "accept"],
  ["ext", "host", "tcp", 9100, "accept"],
  ["ext", "a", "tcp", 81, "accept"],
  ["ext", "b", "tcp", 82, "accept"],
  ["a", "ext", "tcp", 443, "accept"],
  ["host", "ext", "tcp", 443, "accept"],
  ["@198.18.7.7", "a", "tcp", 80, "accept"],
  ["@fd00::7:7", "a", "tcp", 80, "accept"],
];

const familyOf = (peer: string): Family | undefined =>
  peer.startsWith("@") ? (peer.includes(":") ? 6 : 4) : undefined;

function verdicts(p: Pipeline): string[] {
  const out: string[] = [];
  for (const f of [4, 6] as Family[])
    for (const [from, to, proto, port] of SAMPLE)
      if ((familyOf(from) ?? f) === f)
        out.push(
          `v${f} ${from}>${to} ${String(proto)}:${JSON.stringify(port)} ${p.verdict(from, to, f, proto, port).verdict}`,
        );
  return out;
}

/** A step: 1–3 updates (slot, value index; index past the end = delete; replay = same again). */
type Step = [slot: number, value: number][];

const stepArb: fc.Arbitrary<Step> = fc.array(fc.tuple(fc.nat(SLOTS.length - 1), fc.nat(3)), {
  minLength: 1,
  maxLength: 3,
});

function updateOf([si, vi]: [number, number]): KVUpdate {
  const s = SLOTS[si]!;
  return { key: s.key, value: vi < s.values.length ? s.values[vi] : null };
}

const freshCache = new Map<string, { listing: unknown; verdicts: string[] }>();

/** A fresh pipeline fed only the final values (one batch, in key order, deletes left out). */
async function fresh(current: Map<string, unknown>): Promise<{ listing: unknown; verdicts: string[] }> {
  const ups = [...current].filter(([, v]) => v !== null).sort(([a], [b]) => (a < b ? -1 : 1));
  const sig = JSON.stringify(ups);
  const hit = freshCache.get(sig);
  if (hit !== undefined) return hit;
  const p = new Pipeline();
  p.learnWorkloads(ALL_UPDATES);
  await p.apply(ups.map(([key, value]) => ({ key, value })));
  const out = { listing: await p.listing(), verdicts: verdicts(p) };
  freshCache.set(sig, out);
  return out;
}

async function runSequence(steps: Step[]): Promise<void> {
  const p = new Pipeline();
  p.learnWorkloads(ALL_UPDATES);
  const current = new Map<string, unknown>();
  for (const [i, step] of steps.entries()) {
    const ups = step.map(updateOf);
    for (const u of ups) current.set(u.key, u.value);
    await p.apply(ups);
    const want = await fresh(current);
    assert.deepEqual(
      await p.listing(),
      want.listing,
      `listing differs after step ${i}: ${JSON.stringify(step)}`,
    );
    assert.deepEqual(verdicts(p), want.verdicts, `verdicts differ after step ${i}: ${JSON.stringify(step)}`);
  }
}

const RUNS = Number(process.env.PIPELINE_SEQ_RUNS ?? 100);
const SEED =
  process.env.PIPELINE_SEQ_SEED === undefined ? {} : { seed: Number(process.env.PIPELINE_SEQ_SEED) };

describe("pipeline state sequences", () => {
  it("incremental apply == fresh full apply after every step, forwards and reversed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 30 }), async (steps) => {
        await runSequence(steps);
        await runSequence([...steps].reverse());
      }),
      { numRuns: RUNS, ...SEED },
    );
  });

  it("a scripted sequence: build up, replay, delete everything, rebuild", async () => {
    const build: Step[] = SLOTS.map((_, i) => [[i, 0]]);
    const change: Step[] = SLOTS.map((s, i) => [[i, s.values.length - 1]]);
    const replay: Step[] = SLOTS.map((_, i) => [[i, SLOTS[i]!.values.length - 1]]);
    const del: Step[] = SLOTS.map((_, i) => [[i, 3]]);
    await runSequence([...build, ...change, ...replay, ...del, ...build]);
    await runSequence([...build, ...change, ...replay, ...del, ...build].reverse());
  });
});
