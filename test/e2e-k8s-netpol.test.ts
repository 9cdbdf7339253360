/**
 * End-to-end: the Kubernetes NetworkPolicy truth tables on a 3-host lab (issue 8, "End-to-end
 * suite"), after the upstream suite's layout (`test/e2e/network/netpol`): namespaces x, y, z
 * (namespace labels `ns=<name>`, carried by the namespace profiles `kns.<ns>` as Calico's
 * kube-controllers write them), pods a, b, c in each (label `pod=<name>`), spread so that each
 * namespace has one pod on every host, every pod answering TCP and UDP on 53, 80 and 81.
 *
 * Each scenario replaces the policies (networking.k8s.io/v1, converted as the API converts
 * them), waits until every calico-node has applied the revision, forgets earlier flows
 * (conntrack: established flows survive a new policy, in Calico as in Kubernetes), then probes
 * the full matrix — 9 × 8 pairs × {TCP, UDP} × {80, 81} × {IPv4, IPv6} (a dual-stack lab),
 * real packets, all at once — and
 * compares it with what the model (helpers/e2e-netpol-model.ts) expects. A mismatch prints the
 * expected and the measured matrix side by side.
 *
 * One lab for the whole file (its own name and state directory), removed in after() whatever
 * happened.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  convertK8sNetworkPolicy,
  type K8sNetworkPolicy,
  type K8sNetworkPolicySpec,
} from "../src/api/k8s-network-policy.js";
import { runOk } from "../src/dataplane/netns.js";
import type { ResourceStore } from "../src/datastore/resources.js";
import { labAddWorkload, labDown, labUp } from "../src/lab/lab.js";
import { connectivityMatrix, type MatrixCell } from "../src/lab/lab-probe.js";
import { labLocation, requireLabState, type LabState } from "../src/lab/lab-state.js";
import { allowed, formatMatrices, type ModelPod, type Probe } from "./helpers/e2e-netpol-model.js";
import { waitLabApplied, withLabStore } from "./helpers/e2e-lab.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (network namespaces, nftables)" : false;

const NAMESPACES = ["x", "y", "z"] as const;
const PODS = ["a", "b", "c"] as const;
const PROBES: Probe[] = [
  { proto: "TCP", port: 80 },
  { proto: "TCP", port: 81 },
  { proto: "UDP", port: 80 },
  { proto: "UDP", port: 81 },
];
/** Named container ports every pod declares (the upstream suite's names). */
const NAMED_PORTS: ModelPod["namedPorts"] = {
  "serve-80-tcp": { protocol: "TCP", port: 80 },
  "serve-81-tcp": { protocol: "TCP", port: 81 },
  "serve-80-udp": { protocol: "UDP", port: 80 },
  "serve-81-udp": { protocol: "UDP", port: 81 },
};
const NS_LABELS: Record<string, Record<string, string>> = Object.fromEntries(
  NAMESPACES.map((ns) => [ns, { ns }]),
);

const tag = process.pid.toString(36);
const root = mkdtempSync(join(tmpdir(), "cts-e2e-"));
const loc = labLocation(`e2e${tag}`.slice(0, 10), join(root, "lab"));
/** The pods with their IPv4 and their IPv6 address (the model runs once per family). */
let podsByFamily: Record<4 | 6, ModelPod[]> = { 4: [], 6: [] };
let state: LabState;

const withStore = <T>(f: (store: ResourceStore) => Promise<T>): Promise<T> => withLabStore(state, f);
const waitApplied = (revision: number): Promise<void> => waitLabApplied(state, revision);

const knp = (namespace: string, name: string, spec: K8sNetworkPolicySpec): K8sNetworkPolicy => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name, namespace },
  spec,
});

/** Replace every policy in x, y, z by `policies`, wait until applied, forget earlier flows. */
async function setPolicies(policies: readonly K8sNetworkPolicy[]): Promise<void> {
  const revision = await withStore(async (store) => {
    for (const ns of NAMESPACES)
      for (const p of (await store.list("NetworkPolicy", ns)).items)
        await store.delete({ kind: "NetworkPolicy", name: p.metadata.name, namespace: ns });
    for (const p of policies) {
      const { resource, issues } = convertK8sNetworkPolicy(p);
      assert.deepEqual(issues, [], `policy ${p.metadata.name} does not convert`);
      await store.apply(resource);
    }
    return (await store.list("NetworkPolicy")).revision;
  });
  await waitApplied(revision);
  await Promise.all(state.hosts.map((h) => runOk("conntrack", ["-F"], { netns: h.netns })));
}

/** Probe the full matrix for every probe type, over IPv4 and IPv6, and compare it with the model. */
async function checkMatrix(policies: readonly K8sNetworkPolicy[], probes = PROBES): Promise<void> {
  const sockets = new Map(state.workloads.map((w) => [w.name, w.socket]));
  const reports: string[] = [];
  const runs = ([4, 6] as const).flatMap((family) => probes.map((probe) => ({ family, probe })));
  await Promise.all(
    runs.map(async ({ family, probe }) => {
      const pods = podsByFamily[family];
      const byName = new Map(pods.map((p) => [p.name, p]));
      const eps = pods.map((p) => ({ name: p.name, socket: sockets.get(p.name)!, addr: p.ip }));
      const names = pods.map((p) => p.name);
      const expect = (from: string, to: string) =>
        allowed(policies, NS_LABELS, byName.get(from)!, byName.get(to)!, probe);
      const cells = await connectivityMatrix(eps, {
        proto: probe.proto === "TCP" ? "tcp" : "udp",
        port: probe.port,
        timeoutMs: 700,
        // An allowed probe that fails is re-sent (a loaded machine); a denied one costs one timeout.
        settleMs: 8000,
        expect,
      });
      const cell = new Map<string, MatrixCell>(cells.map((c) => [`${c.from} ${c.to}`, c]));
      const wrong = cells.filter((c) => c.ok !== expect(c.from, c.to));
      // Whoever answered must be the pod probed, not some other one.
      const misrouted = cells.filter((c) => c.ok && c.detail !== c.to);
      if (wrong.length > 0 || misrouted.length > 0)
        reports.push(
          [
            formatMatrices(
              `IPv${family} ${probe.proto} ${probe.port}: ${wrong.length} of ${cells.length} cells differ`,
              names,
              expect,
              (f, t) => cell.get(`${f} ${t}`)?.ok,
            ),
            ...wrong.map((c) => `  ${c.from} → ${c.to}: ${c.ok ? `answered by ${c.detail}` : c.detail}`),
            ...misrouted.map((c) => `  ${c.from} → ${c.to}: answered by ${c.detail}`),
          ].join("\n"),
        );
    }),
  );
  if (reports.length > 0) assert.fail(`connectivity differs from the model:\n${reports.join("\n\n")}`);
}

async function scenario(policies: K8sNetworkPolicy[], probes = PROBES): Promise<void> {
  await setPolicies(policies);
  await checkMatrix(policies, probes);
}

const ip = (name: string, family: 4 | 6 = 4): string => podsByFamily[family].find((p) => p.name === name)!.ip;

describe("Kubernetes NetworkPolicy truth tables on a 3-host lab", { skip }, () => {
  before(async () => {
    const up = await labUp(loc, {
      nodes: 3,
      ipv6: true,
      datastore: "sqlite",
      demo: false,
      apiserver: false,
    });
    assert.deepEqual(up.notConverged, [], "lab converged");
    state = up.state;
    // The namespaces: Calico's kube-controllers write one profile per namespace, allowing
    // everything, whose labelsToApply carry the namespace's labels as `pcns.*` (the
    // namespaceSelector reads those); without it an endpoint's profile is missing: deny all.
    await withStore(async (store) => {
      for (const ns of NAMESPACES)
        await store.apply({
          apiVersion: "projectcalico.org/v3",
          kind: "Profile",
          metadata: { name: `kns.${ns}` },
          spec: {
            ingress: [{ action: "Allow" }],
            egress: [{ action: "Allow" }],
            labelsToApply: {
              "pcns.projectcalico.org/name": ns,
              ...Object.fromEntries(Object.entries(NS_LABELS[ns]!).map(([k, v]) => [`pcns.${k}`, v])),
            },
          },
        });
    });
    // Pod i of namespace j on host (i + j) mod 3: every namespace has a pod on every host.
    for (const [j, ns] of NAMESPACES.entries())
      for (const [i, pod] of PODS.entries())
        await labAddWorkload(loc, state.hosts[(i + j) % 3]!.name, `${ns}-${pod}`, { pod }, ns);
    state = requireLabState(loc);
    const podsOf = (f: 4 | 6): ModelPod[] =>
      state.workloads.map((w) => ({
        name: w.name,
        namespace: w.namespace,
        labels: w.labels,
        ip: (f === 4 ? w.ipv4 : w.ipv6)[0]!,
        namedPorts: NAMED_PORTS,
      }));
    podsByFamily = { 4: podsOf(4), 6: podsOf(6) };
    for (const f of [4, 6] as const) assert.equal(podsByFamily[f].length, 9, `IPv${f} addresses`);
    // The CNI plugin does not know the pod's container ports; a Kubernetes pod's endpoint
    // carries them (named ports), so write them as Calico's pod conversion would.
    const revision = await withStore(async (store) => {
      for (const ns of NAMESPACES)
        for (const wep of (await store.list("WorkloadEndpoint", ns)).items) {
          const spec = wep.spec;
          spec.ports = Object.entries(NAMED_PORTS).map(([name, p]) => ({ name, ...p }));
          await store.apply(wep);
        }
      return (await store.list("WorkloadEndpoint")).revision;
    });
    await waitApplied(revision);
  });

  after(async () => {
    await labDown(loc).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  test("no policy: every pod reaches every pod on every port", async () => {
    await scenario([]);
  });

  test("default deny ingress in x", async () => {
    await scenario([knp("x", "deny-ingress", { podSelector: {}, policyTypes: ["Ingress"] })]);
  });

  test("podSelector: x/a admits only pods labelled pod=b of its own namespace", async () => {
    await scenario([
      knp("x", "a-from-b", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }],
      }),
    ]);
  });

  test("namespaceSelector: x/a admits every pod of namespaces y and z (matchExpressions In)", async () => {
    await scenario([
      knp("x", "a-from-yz", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchExpressions: [{ key: "ns", operator: "In", values: ["y", "z"] }] },
              },
            ],
          },
        ],
      }),
    ]);
  });

  test("podSelector AND namespaceSelector in one peer: x/a admits only y/b", async () => {
    await scenario([
      knp("x", "a-from-y-and-b", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "b" } } },
            ],
          },
        ],
      }),
    ]);
  });

  test("podSelector OR namespaceSelector as two peers: x/a admits all of y, and x/b", async () => {
    await scenario([
      knp("x", "a-from-y-or-b", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: "y" } } },
              { podSelector: { matchLabels: { pod: "b" } } },
            ],
          },
        ],
      }),
    ]);
  });

  test("default deny egress in x, then egress allowed to TCP 80 only", async () => {
    await scenario([knp("x", "deny-egress", { podSelector: {}, policyTypes: ["Egress"] })]);
    await scenario([
      knp("x", "deny-egress", { podSelector: {}, policyTypes: ["Egress"] }),
      knp("x", "egress-tcp-80", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ ports: [{ protocol: "TCP", port: 80 }] }],
      }),
    ]);
  });

  test("ipBlock with except: x/a admits the IPv4 pool except y/b's address (and no IPv6 peer)", async () => {
    await scenario([
      knp("x", "a-from-block", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ ipBlock: { cidr: "198.19.0.0/16", except: [`${ip("y-b")}/32`] } }] }],
      }),
    ]);
  });

  test("ipBlock per family: x/a admits the IPv6 pool except z/c's address, and IPv4 only from y/a", async () => {
    await scenario([
      knp("x", "a-from-blocks", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [
              { ipBlock: { cidr: "fd00:19::/48", except: [`${ip("z-c", 6)}/128`] } },
              { ipBlock: { cidr: `${ip("y-a")}/32` } },
            ],
          },
        ],
      }),
    ]);
  });

  test("named ports: pods of x admit only serve-81-tcp and serve-80-udp", async () => {
    await scenario([
      knp("x", "named-ports", {
        podSelector: {},
        policyTypes: ["Ingress"],
        ingress: [{ ports: [{ port: "serve-81-tcp" }, { protocol: "UDP", port: "serve-80-udp" }] }],
      }),
    ]);
  });

  test("endPort: x/a admits TCP 75-80 and UDP 81-90 from everyone", async () => {
    await scenario([
      knp("x", "a-port-ranges", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            ports: [
              { protocol: "TCP", port: 75, endPort: 80 },
              { protocol: "UDP", port: 81, endPort: 90 },
            ],
          },
        ],
      }),
    ]);
  });

  test("several policies together: ingress and egress in three namespaces", async () => {
    await scenario([
      // x: deny all ingress, then x/a from z on TCP 80 and from y/c on anything.
      knp("x", "deny-ingress", { podSelector: {}, policyTypes: ["Ingress"] }),
      knp("x", "a-from-z-80", {
        podSelector: { matchLabels: { pod: "a" } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "z" } } }], ports: [{ port: 80 }] }],
      }),
      knp("x", "a-from-y-c", {
        podSelector: { matchLabels: { pod: "a" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "c" } } },
            ],
          },
        ],
      }),
      // y: pods b and c may send only to namespace x and to UDP 81 anywhere.
      knp("y", "bc-egress", {
        podSelector: { matchExpressions: [{ key: "pod", operator: "NotIn", values: ["a"] }] },
        policyTypes: ["Egress"],
        egress: [
          { to: [{ namespaceSelector: { matchLabels: { ns: "x" } } }] },
          { ports: [{ protocol: "UDP", port: 81 }] },
        ],
      }),
      // z: z/c admits only its own namespace.
      knp("z", "c-from-own-ns", {
        podSelector: { matchLabels: { pod: "c" } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: {} }] }],
      }),
    ]);
  });

  test("egress to a DNS-like service: x may send only to z/c on TCP and UDP 53, and to y on TCP 80", async () => {
    await scenario(
      [
        knp("x", "deny-egress", { podSelector: {}, policyTypes: ["Egress"] }),
        knp("x", "egress-dns", {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [
            {
              to: [
                {
                  namespaceSelector: { matchLabels: { ns: "z" } },
                  podSelector: { matchLabels: { pod: "c" } },
                },
              ],
              ports: [
                { protocol: "UDP", port: 53 },
                { protocol: "TCP", port: 53 },
              ],
            },
            {
              to: [{ namespaceSelector: { matchLabels: { ns: "y" } } }],
              ports: [{ protocol: "TCP", port: 80 }],
            },
          ],
        }),
      ],
      [...PROBES, { proto: "UDP", port: 53 }, { proto: "TCP", port: 53 }],
    );
  });

  test("after removing every policy, everything is allowed again", async () => {
    await scenario([]);
  });
});
