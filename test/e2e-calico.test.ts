/**
 * End-to-end: Calico's own policy model on one dual-stack 3-host lab (issue 8, "End-to-end
 * suite"): tiers with Pass and a tier's default action, policy order, rule order, global
 * policies with namespace selectors, profiles, network sets, notNets, ICMP and ICMPv6 matches,
 * and a host endpoint with the failsafe ports — every matrix over the workloads' IPv4 and
 * their IPv6 addresses, with real packets.
 *
 * Workloads: a, b, c (label `app`) in namespaces x and y (namespace labels `ns`, `team`, carried
 * by the namespace profiles `kns.<ns>` as kube-controllers writes them), each namespace with
 * one workload on every host. Each scenario replaces the resources in force, waits until every
 * calico-node has applied the revision, forgets earlier flows (conntrack), then probes the full
 * matrix for each probe type and family at once and compares every cell with what the model
 * (helpers/e2e-calico-model.ts, written from the reference, not from src/calc) expects. A
 * mismatch prints the expected and the measured matrix side by side.
 *
 * One lab for the whole file (its own name and state directory), removed in after() whatever
 * happened; the probe agents started in the host namespaces go with it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runOk } from "../src/dataplane/netns.js";
import type { ResourceStore } from "../src/datastore/resources.js";
import { FABRIC_V4, FABRIC_V6, labAddWorkload, labDown, labUp } from "../src/lab/lab.js";
import { ProbeClient, connectivityMatrix, type MatrixCell } from "../src/lab/lab-probe.js";
import { labLocation, requireLabState, type LabState } from "../src/lab/lab-state.js";
import { ProbeAgent } from "../src/lab/probe.js";
import {
  calicoAllows,
  familyOf,
  type ModelEndpoint,
  type ModelPacket,
  type ModelResource,
} from "./helpers/e2e-calico-model.js";
import { formatMatrices } from "./helpers/e2e-netpol-model.js";
import { waitLabApplied, withLabStore } from "./helpers/e2e-lab.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (network namespaces, nftables)" : false;

const NAMESPACES = ["x", "y"] as const;
const PODS = ["a", "b", "c"] as const;
const NS_LABELS: Record<string, Record<string, string>> = {
  x: { ns: "x", team: "blue" },
  y: { ns: "y", team: "red" },
};

/** One probe type; ICMP is an echo request (ping), ICMPv6 on the IPv6 addresses. */
interface Check {
  proto: "TCP" | "UDP" | "ICMP";
  port?: number;
}
const TCP80: Check = { proto: "TCP", port: 80 };
const TCP81: Check = { proto: "TCP", port: 81 };
const UDP80: Check = { proto: "UDP", port: 80 };
const PING: Check = { proto: "ICMP" };
const BASIC = [TCP80, TCP81, UDP80];

/**
 * A cell stated by hand (`from`, `to`, probe, allowed; both families unless one is given):
 * checked against the model before any packet is sent, so the model's reading of a scenario is
 * itself checked against what the scenario means.
 */
type Spot = [from: string, to: string, check: Check, allowed: boolean, family?: 4 | 6];

const tag = process.pid.toString(36);
const root = mkdtempSync(join(tmpdir(), "cts-e2c-"));
const loc = labLocation(`e2c${tag}`.slice(0, 10), join(root, "lab"));
let state: LabState;
let endpoints: ModelEndpoint[] = [];
/** The namespace profiles, in force throughout. */
let base: ModelResource[] = [];
/** The resources the current scenario wrote (deleted again, in reverse, by the next one). */
let current: ModelResource[] = [];

const res = (
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  meta: { namespace?: string; labels?: Record<string, string> } = {},
): ModelResource => ({ apiVersion: "projectcalico.org/v3", kind, metadata: { name, ...meta }, spec });

const withStore = <T>(f: (store: ResourceStore) => Promise<T>): Promise<T> => withLabStore(state, f);
const waitApplied = (revision: number): Promise<void> => waitLabApplied(state, revision);

const flushConntrack = () =>
  Promise.all(state.hosts.map((h) => runOk("conntrack", ["-F"], { netns: h.netns })));

/** Replace the scenario's resources by `next` (in order; the old ones go in reverse), wait
 * until every agent applied them. */
async function setResources(next: readonly ModelResource[]): Promise<void> {
  const revision = await withStore(async (store) => {
    for (const r of [...current].reverse())
      await store.delete({
        kind: r.kind,
        name: r.metadata.name,
        ...(r.metadata.namespace !== undefined ? { namespace: r.metadata.namespace } : {}),
      });
    current = [];
    for (const r of next) {
      await store.apply(r);
      current.push(r);
    }
    return (await store.list("Tier")).revision;
  });
  await waitApplied(revision);
}

const packetOf = (c: Check, family: 4 | 6): ModelPacket =>
  c.proto === "ICMP"
    ? family === 4
      ? { family, proto: "ICMP", icmpType: 8, icmpCode: 0 }
      : { family, proto: "ICMPv6", icmpType: 128, icmpCode: 0 }
    : { family, proto: c.proto, port: c.port! };

const checkName = (c: Check, family: 4 | 6) =>
  `IPv${family} ${c.proto === "ICMP" ? (family === 4 ? "ICMP echo" : "ICMPv6 echo") : `${c.proto} ${c.port}`}`;

/**
 * Probe the workload matrix for every check over both families (all at once) and compare each
 * cell with the model for `eps` and `resources`. `open`: the model must expect every cell
 * allowed (a baseline); otherwise at least one denied cell (a scenario that denies nothing
 * would prove nothing).
 */
async function checkMatrices(
  checks: readonly Check[],
  resources: readonly ModelResource[],
  eps: readonly ModelEndpoint[],
  spots: readonly Spot[],
  open = false,
): Promise<void> {
  const world = { endpoints: eps, nsLabels: NS_LABELS, resources };
  const byName = new Map(eps.map((e) => [e.name, e]));
  for (const [from, to, c, allowed, fam] of spots)
    for (const family of fam !== undefined ? [fam] : ([4, 6] as const))
      assert.equal(
        calicoAllows(world, byName.get(from)!, byName.get(to)!, packetOf(c, family)),
        allowed,
        `the model's ${from} → ${to} ${checkName(c, family)}`,
      );
  const sockets = new Map(state.workloads.map((w) => [w.name, w.socket]));
  const names = eps.map((e) => e.name);
  const reports: string[] = [];
  let denied = 0;
  let total = 0;
  await Promise.all(
    checks.flatMap((c) =>
      ([4, 6] as const).map(async (family) => {
        const pkt = packetOf(c, family);
        const expect = (from: string, to: string) =>
          calicoAllows(world, byName.get(from)!, byName.get(to)!, pkt);
        for (const f of names)
          for (const t of names) {
            if (f === t) continue;
            total++;
            if (!expect(f, t)) denied++;
          }
        const cells = await connectivityMatrix(
          eps.map((e) => ({
            name: e.name,
            socket: sockets.get(e.name)!,
            addr: e.ips.find((a) => familyOf(a) === family),
          })),
          {
            proto: c.proto === "ICMP" ? "icmp" : c.proto === "TCP" ? "tcp" : "udp",
            port: c.port ?? 0,
            timeoutMs: 700,
            // An allowed probe that fails is re-sent (a loaded machine); a denied one costs one timeout.
            settleMs: 8000,
            expect,
          },
        );
        const cell = new Map<string, MatrixCell>(cells.map((x) => [`${x.from} ${x.to}`, x]));
        const wrong = cells.filter((x) => x.ok !== expect(x.from, x.to));
        // Whoever answered must be the workload probed (ping answers carry no name).
        const misrouted = c.proto === "ICMP" ? [] : cells.filter((x) => x.ok && x.detail !== x.to);
        if (wrong.length > 0 || misrouted.length > 0)
          reports.push(
            [
              formatMatrices(
                `${checkName(c, family)}: ${wrong.length} of ${cells.length} cells differ`,
                names,
                expect,
                (f, t) => cell.get(`${f} ${t}`)?.ok,
              ),
              ...wrong.map((x) => `  ${x.from} → ${x.to}: ${x.ok ? `answered by ${x.detail}` : x.detail}`),
              ...misrouted.map((x) => `  ${x.from} → ${x.to}: answered by ${x.detail}`),
            ].join("\n"),
          );
      }),
    ),
  );
  if (open) assert.equal(denied, 0, "the model expects every cell allowed here");
  else assert.ok(denied > 0 && denied < total, `the model expects ${denied} of ${total} cells denied`);
  if (reports.length > 0) assert.fail(`connectivity differs from the model:\n${reports.join("\n\n")}`);
}

/** Write `resources`, wait, forget old flows, check the matrices (`spots`: see Spot; none
 * means the scenario is open: every cell allowed). */
async function scenario(
  resources: ModelResource[],
  spots: readonly Spot[],
  checks: readonly Check[] = BASIC,
): Promise<void> {
  await setResources(resources);
  await flushConntrack();
  await checkMatrices(checks, [...base, ...resources], endpoints, spots, spots.length === 0);
}

const ep = (name: string): ModelEndpoint => endpoints.find((e) => e.name === name)!;
const v4 = (name: string) => ep(name).ips.find((a) => familyOf(a) === 4)!;
const v6 = (name: string) => ep(name).ips.find((a) => familyOf(a) === 6)!;

const gnp = (name: string, spec: Record<string, unknown>) => res("GlobalNetworkPolicy", name, spec);
const np = (namespace: string, name: string, spec: Record<string, unknown>) =>
  res("NetworkPolicy", name, spec, { namespace });

describe("Calico policy on a dual-stack 3-host lab (IPv4 and IPv6 matrices)", { skip }, () => {
  before(async () => {
    const up = await labUp(loc, { nodes: 3, ipv6: true, datastore: "sqlite", demo: false, apiserver: false });
    assert.deepEqual(up.notConverged, [], "lab converged");
    state = up.state;
    // The namespace profiles as kube-controllers writes them: allow everything, and carry the
    // namespace's labels as `pcns.*` (what a GlobalNetworkPolicy's namespaceSelector reads).
    base = NAMESPACES.map((ns) =>
      res("Profile", `kns.${ns}`, {
        ingress: [{ action: "Allow" }],
        egress: [{ action: "Allow" }],
        labelsToApply: {
          "pcns.projectcalico.org/name": ns,
          ...Object.fromEntries(Object.entries(NS_LABELS[ns]!).map(([k, v]) => [`pcns.${k}`, v])),
        },
      }),
    );
    await withStore(async (store) => {
      for (const r of base) await store.apply(r);
    });
    // Pod i of namespace j on host (i + j) mod 3: every namespace has a workload on every host.
    for (const [j, ns] of NAMESPACES.entries())
      for (const [i, pod] of PODS.entries())
        await labAddWorkload(loc, state.hosts[(i + j) % 3]!.name, `${ns}-${pod}`, { app: pod }, ns);
    state = requireLabState(loc);
    // The model sees each endpoint as stored (labels the CNI plugin added, profiles).
    const revision = await withStore(async (store) => {
      const weps = (await store.list("WorkloadEndpoint")).items;
      endpoints = state.workloads.map((w) => {
        const wep = weps.find((r) => r.spec.interfaceName === w.iface);
        assert.ok(wep, `a WorkloadEndpoint for ${w.name} (${w.iface})`);
        assert.ok(w.ipv4.length === 1 && w.ipv6.length === 1, `${w.name} has one IPv4 and one IPv6 address`);
        return {
          name: w.name,
          namespace: w.namespace,
          labels: wep.metadata.labels ?? {},
          profiles: wep.spec.profiles as string[],
          ips: [...w.ipv4, ...w.ipv6],
        };
      });
      return (await store.list("WorkloadEndpoint")).revision;
    });
    await waitApplied(revision);
  });

  after(async () => {
    await labDown(loc).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  test("no policy: the namespace profiles allow everything (TCP, UDP, ping)", async () => {
    await scenario([], [], [...BASIC, PING]);
  });

  test("tiers: Pass hands over to the default tier; Deny; a tier's default action Deny and Pass", async () => {
    await scenario(
      [
        res("Tier", "security", { order: 100, defaultAction: "Deny" }),
        res("Tier", "triage", { order: 200, defaultAction: "Pass" }),
        // a: from b → Pass (the default tier decides); TCP 81 denied; UDP allowed; anything else
        // matches no rule → the tier's default action Deny.
        gnp("security-a", {
          tier: "security",
          order: 10,
          selector: "app == 'a'",
          types: ["Ingress"],
          ingress: [
            { action: "Pass", source: { selector: "app == 'b'" } },
            { action: "Deny", protocol: "TCP", destination: { ports: [81] } },
            { action: "Allow", protocol: "UDP" },
          ],
        }),
        // c: from namespace y denied; the rest matches nothing → defaultAction Pass → no policy
        // for c in the default tier → its profile allows.
        gnp("triage-c", {
          tier: "triage",
          selector: "app == 'c'",
          types: ["Ingress"],
          ingress: [{ action: "Deny", source: { namespaceSelector: "ns == 'y'" } }],
        }),
        // What b's passed traffic to a meets: TCP 80 only.
        gnp("default-a", {
          selector: "app == 'a'",
          types: ["Ingress"],
          ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
        }),
      ],
      [
        ["x-b", "x-a", TCP80, true],
        ["y-b", "x-a", TCP81, false],
        ["y-b", "y-a", UDP80, false],
        ["x-c", "x-a", TCP81, false],
        ["x-c", "x-a", UDP80, true],
        ["y-c", "x-a", TCP80, false],
        ["y-a", "x-c", TCP80, false],
        ["x-a", "x-c", TCP80, true],
      ],
    );
  });

  test("order: of two policies in one tier the lower order decides (Deny 10 / Allow 20, then swapped)", async () => {
    const deny81 = (order: number) =>
      gnp("deny-81", {
        order,
        selector: "app == 'b'",
        types: ["Ingress"],
        ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [81] } }],
      });
    const allowAll = gnp("allow-all", {
      order: 20,
      selector: "app == 'b'",
      types: ["Ingress"],
      ingress: [{ action: "Allow" }],
    });
    await scenario(
      [deny81(10), allowAll],
      [
        ["x-a", "x-b", TCP81, false],
        ["x-a", "x-b", TCP80, true],
      ],
    );
    await scenario([deny81(30), allowAll], []);
  });

  test("rule order inside one policy: Deny before Allow, then Allow before Deny", async () => {
    // A namespaced policy's rule selector sees only its own namespace: `app == 'a'` is y-a.
    await scenario(
      [
        np("y", "y-rules", {
          selector: "all()",
          types: ["Ingress"],
          ingress: [
            { action: "Deny", source: { selector: "app == 'a'" } },
            { action: "Allow", protocol: "TCP" },
          ],
        }),
      ],
      [
        ["y-a", "y-b", TCP80, false],
        ["x-a", "y-b", TCP80, true],
        ["x-b", "y-c", UDP80, false],
      ],
    );
    await scenario(
      [
        np("y", "y-rules", {
          selector: "all()",
          types: ["Ingress"],
          ingress: [
            { action: "Allow", protocol: "TCP" },
            { action: "Deny", source: { selector: "app == 'a'" } },
            { action: "Allow", protocol: "UDP" },
          ],
        }),
      ],
      [
        ["y-a", "y-b", TCP80, true],
        ["y-a", "y-b", UDP80, false],
        ["x-a", "y-b", UDP80, true],
      ],
    );
  });

  test("GlobalNetworkPolicy with namespaceSelector and selector (egress, rule selectors across namespaces)", async () => {
    await scenario(
      [
        gnp("red-egress", {
          namespaceSelector: "team == 'red'",
          selector: "app != 'c'",
          types: ["Egress"],
          egress: [
            { action: "Allow", destination: { selector: "app == 'b'" } },
            { action: "Allow", protocol: "UDP", destination: { namespaceSelector: "ns == 'x'" } },
          ],
        }),
      ],
      [
        ["y-a", "x-b", TCP81, true],
        ["y-a", "x-a", TCP80, false],
        ["y-a", "x-c", UDP80, true],
        ["y-b", "y-c", UDP80, false],
        ["y-c", "x-a", TCP80, true],
        ["x-a", "y-a", TCP80, true],
      ],
    );
  });

  test("profiles: no policy → the endpoint's profiles in order (one denying, one passing over to kns)", async () => {
    const quarantine = res("Profile", "quarantine", {
      ingress: [
        { action: "Deny", source: { selector: "app == 'a'" } },
        { action: "Allow", protocol: "TCP" },
      ],
      egress: [{ action: "Allow" }],
    });
    const no81 = res("Profile", "no-81", {
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [81] } }],
    });
    const profilesOf: Record<string, string[]> = { "x-c": ["quarantine"], "y-b": ["no-81", "kns.y"] };
    const setProfiles = (which: (name: string) => string[]) =>
      withStore(async (store) => {
        for (const name of Object.keys(profilesOf)) {
          const w = state.workloads.find((x) => x.name === name)!;
          const wep = (await store.list("WorkloadEndpoint", w.namespace)).items.find(
            (r) => r.spec.interfaceName === w.iface,
          )!;
          wep.spec.profiles = which(name);
          await store.apply(wep);
        }
        return (await store.list("WorkloadEndpoint")).revision;
      });
    try {
      await setResources([quarantine, no81]);
      await waitApplied(await setProfiles((n) => profilesOf[n]!));
      await flushConntrack();
      const eps = endpoints.map((e) => (profilesOf[e.name] ? { ...e, profiles: profilesOf[e.name]! } : e));
      await checkMatrices(BASIC, [...base, quarantine, no81], eps, [
        ["x-a", "x-c", TCP80, false],
        ["y-b", "x-c", TCP81, true],
        ["y-b", "x-c", UDP80, false],
        ["x-a", "y-b", TCP81, false],
        ["x-a", "y-b", TCP80, true],
        ["x-c", "y-b", UDP80, true],
      ]);
    } finally {
      await waitApplied(await setProfiles((n) => ep(n).profiles));
    }
  });

  test("NetworkSet and GlobalNetworkSet selected in source and destination", async () => {
    await scenario(
      [
        res(
          "NetworkSet",
          "trusted",
          { nets: [`${v4("y-c")}/32`, `${v6("y-c")}/128`] },
          { namespace: "x", labels: { role: "trusted" } },
        ),
        res(
          "GlobalNetworkSet",
          "blocked",
          { nets: [`${v4("x-c")}/32`, `${v6("x-c")}/128`] },
          { labels: { gset: "blocked" } },
        ),
        // x-b admits the set (y-c) and its own namespace's a (x-a, not y-a).
        np("x", "b-from-trusted", {
          selector: "app == 'b'",
          types: ["Ingress"],
          ingress: [
            { action: "Allow", source: { selector: "role == 'trusted'" } },
            { action: "Allow", source: { selector: "app == 'a'" } },
          ],
        }),
        // The a workloads may not send to the global set (x-c).
        gnp("a-not-to-blocked", {
          selector: "app == 'a'",
          types: ["Egress"],
          egress: [{ action: "Deny", destination: { selector: "gset == 'blocked'" } }, { action: "Allow" }],
        }),
      ],
      [
        ["y-c", "x-b", TCP80, true],
        ["x-a", "x-b", TCP80, true],
        ["y-a", "x-b", TCP80, false],
        ["x-c", "x-b", TCP80, false],
        ["x-a", "x-c", TCP80, false],
        ["y-a", "x-c", UDP80, false],
        ["x-b", "x-c", TCP80, true],
      ],
    );
  });

  test("nets and notNets: c admits everyone but x-a (per family), UDP from the IPv4 pool", async () => {
    await scenario(
      [
        gnp("c-not-from-xa", {
          selector: "app == 'c'",
          types: ["Ingress"],
          ingress: [
            { action: "Allow", protocol: "UDP", source: { nets: ["198.19.0.0/16"] } },
            { action: "Allow", source: { notNets: [`${v4("x-a")}/32`] } },
            { action: "Allow", source: { notNets: [`${v6("x-a")}/128`] } },
          ],
        }),
      ],
      [
        ["x-a", "x-c", UDP80, true, 4],
        ["x-a", "x-c", UDP80, false, 6],
        ["x-a", "y-c", TCP80, false],
        ["x-b", "x-c", TCP81, true],
      ],
    );
  });

  test("ICMP and ICMPv6: ping only; notICMP; an ICMP type that does not match", async () => {
    await scenario(
      [
        // b: echo requests only (ICMP type 8, ICMPv6 type 128), nothing else.
        gnp("b-ping-only", {
          selector: "app == 'b'",
          types: ["Ingress"],
          ingress: [
            { action: "Allow", protocol: "ICMP", icmp: { type: 8 } },
            { action: "Allow", protocol: "ICMPv6", icmp: { type: 128 } },
          ],
        }),
        // c: ICMP but not type 13 (so ping passes); ICMPv6 type 129 only (ping's 128 does not);
        // TCP 80.
        gnp("c-icmp-types", {
          selector: "app == 'c'",
          types: ["Ingress"],
          ingress: [
            { action: "Allow", protocol: "ICMP", notICMP: { type: 13 } },
            { action: "Allow", protocol: "ICMPv6", icmp: { type: 129 } },
            { action: "Allow", protocol: "TCP", destination: { ports: [80] } },
          ],
        }),
        // a: no ping in either family, everything else.
        gnp("a-no-ping", {
          selector: "app == 'a'",
          types: ["Ingress"],
          ingress: [
            { action: "Deny", protocol: "ICMP", icmp: { type: 8, code: 0 } },
            { action: "Deny", protocol: "ICMPv6" },
            { action: "Allow" },
          ],
        }),
      ],
      [
        ["x-a", "x-b", PING, true],
        ["x-a", "x-b", TCP80, false],
        ["x-a", "x-c", PING, true, 4],
        ["x-a", "x-c", PING, false, 6],
        ["x-a", "y-c", TCP80, true],
        ["x-a", "y-c", TCP81, false],
        ["x-b", "y-a", PING, false],
        ["x-b", "y-a", TCP81, true],
      ],
      [PING, TCP80, TCP81],
    );
  });

  test("host endpoint on h1's eth0: policy denies ingress but TCP 80; failsafe 22 and 179 still reach it; BGP stays up", async () => {
    await setResources([]);
    const [h1, h2, h3] = state.hosts;
    assert.ok(h1 && h2 && h3);
    const agents = new Map<string, ProbeAgent>();
    const hepRes = [
      res(
        "HostEndpoint",
        "h1-eth0",
        { node: h1.name, interfaceName: "eth0", expectedIPs: [h1.v4, h1.v6] },
        { labels: { role: "lab-host" } },
      ),
      gnp("lab-host-in", {
        selector: "role == 'lab-host'",
        types: ["Ingress"],
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
      }),
    ];
    const sessions = (statusFile: string) =>
      (
        (
          JSON.parse(readFileSync(statusFile, "utf8")) as {
            bgp?: { peers?: { address: string; state: string; since: string }[] };
          }
        ).bgp?.peers ?? []
      )
        .map((p) => ({ address: p.address, state: p.state, since: p.since }))
        .sort((a, b) => (a.address < b.address ? -1 : 1));
    try {
      // A server on 22, 80, 81 in every host namespace; probers there and on the bridge.
      for (const [name, netns] of [
        ...state.hosts.map((h) => [h.name, h.netns] as const),
        ["fabric", state.fabricNetns] as const,
      ])
        agents.set(name, await ProbeAgent.start({ netns, name, tcpPorts: [22, 80, 81] }));
      const addrOf = (name: string, family: 4 | 6) =>
        name === "fabric"
          ? family === 4
            ? FABRIC_V4
            : FABRIC_V6
          : family === 4
            ? state.hosts.find((h) => h.name === name)!.v4
            : state.hosts.find((h) => h.name === name)!.v6!;
      // The cells: into h1 from the others on 22, 80, 81 and BGP's 179 (a speaker, not a probe
      // agent: connecting is enough); out of h1 to h2 on 80; h2 → h3 on 81 (untouched).
      const cells: { from: string; to: string; port: number }[] = [
        ...["h2", "h3", "fabric"].flatMap((from) =>
          [22, 80, 81, 179].map((port) => ({ from, to: "h1", port })),
        ),
        { from: "h1", to: "h2", port: 80 },
        { from: "h2", to: "h3", port: 81 },
      ];
      const measure = async (withHep: boolean) => {
        const lines: string[] = [];
        await Promise.all(
          cells.flatMap((c) =>
            ([4, 6] as const).map(async (family) => {
              const expected = !withHep || (c.to === "h1" ? c.port !== 81 : c.from !== "h1");
              const probe = (timeoutMs: number) =>
                agents.get(c.from)!.probe({
                  proto: "tcp",
                  addr: addrOf(c.to, family),
                  port: c.port,
                  timeoutMs,
                  connectOnly: c.port === 179,
                });
              let r = await probe(700);
              // An allowed probe that failed is re-sent a few times (a loaded machine).
              for (let i = 0; expected && !r.ok && i < 5; i++) r = await probe(2000);
              const okPeer = c.port === 179 || r.peer === c.to;
              if (r.ok !== expected || (r.ok && !okPeer))
                lines.push(
                  `  ${c.from} → ${c.to} IPv${family} TCP ${c.port}: expected ${expected ? "allowed" : "denied"}, ` +
                    `was ${r.ok ? `allowed (answered by ${r.peer ?? "?"})` : `denied (${r.error})`}`,
                );
            }),
          ),
        );
        return lines.sort();
      };
      // Without the HEP every cell passes (so a denied one later is the HEP's doing).
      // Without the HEP every cell passes (so a denied one later is the HEP's doing).
      const before = await measure(false);
      assert.deepEqual(before, [], `before the host endpoint:\n${before.join("\n")}`);
      const sessionsBefore = sessions(h1.statusFile);
      assert.equal(
        sessionsBefore.filter((p) => p.state === "Established").length,
        4,
        "h1: 4 sessions Established",
      );
      try {
        await setResources(hepRes);
        const during = await measure(true);
        assert.deepEqual(during, [], `with the host endpoint on h1:\n${during.join("\n")}`);
        // The workloads (forwarded through h1's eth0, no applyOnForward policy) are untouched.
        await checkMatrices([TCP80], [...base, ...hepRes], endpoints, [], true);
        // The BGP sessions were never interrupted: all Established, h1's with the same "since".
        for (const h of state.hosts)
          assert.deepEqual(
            sessions(h.statusFile).map((p) => p.state),
            ["Established", "Established", "Established", "Established"],
            `${h.name}: BGP sessions`,
          );
        assert.deepEqual(sessions(h1.statusFile), sessionsBefore, "h1's BGP sessions did not flap");
      } finally {
        await setResources([]);
      }
      // The host endpoint gone, h1 is open again: later scenarios see no trace of it.
      const afterwards = await measure(false);
      assert.deepEqual(afterwards, [], `after the host endpoint was removed:\n${afterwards.join("\n")}`);
    } finally {
      for (const a of agents.values()) await a.stop();
    }
  });

  test("natOutgoing: workloads reach the bridge (outside every pool, no route back) only while their pool masquerades", async () => {
    await setResources([]);
    // The bridge namespace has no route to the pools: a connection from a workload's own
    // address gets no answer there; masqueraded to its host's address, it does.
    const fabric = await ProbeAgent.start({ netns: state.fabricNetns, name: "fabric", tcpPorts: [80] });
    const clients = await Promise.all(state.workloads.map((w) => ProbeClient.connect(w.socket)));
    const setNat = async (on: boolean) => {
      const revision = await withStore(async (store) => {
        for (const name of ["lab-ipv4", "lab-ipv6"]) {
          const pool = await store.get("IPPool", name);
          pool.spec.natOutgoing = on;
          await store.apply(pool);
        }
        return (await store.list("IPPool")).revision;
      });
      await waitApplied(revision);
      await flushConntrack();
    };
    const measure = async (expected: boolean): Promise<string[]> => {
      const lines: string[] = [];
      await Promise.all(
        clients.flatMap((c, i) =>
          ([4, 6] as const).map(async (family) => {
            const w = state.workloads[i]!;
            const probe = (timeoutMs: number) =>
              c.probe({ proto: "tcp", addr: family === 4 ? FABRIC_V4 : FABRIC_V6, port: 80, timeoutMs });
            let r = await probe(700);
            for (let k = 0; expected && !r.ok && k < 5; k++) r = await probe(2000);
            if (r.ok !== expected || (r.ok && r.peer !== "fabric"))
              lines.push(
                `  ${w.name} → bridge IPv${family}: expected ${expected ? "answered" : "no answer"}, ` +
                  `got ${r.ok ? `an answer from ${r.peer ?? "?"}` : r.error}`,
              );
          }),
        ),
      );
      return lines.sort();
    };
    try {
      const off = await measure(false);
      assert.deepEqual(off, [], `pools without natOutgoing:\n${off.join("\n")}`);
      await setNat(true);
      const on = await measure(true);
      assert.deepEqual(on, [], `pools with natOutgoing:\n${on.join("\n")}`);
      // Workload to workload stays unmasqueraded (destination inside a pool): every probe is
      // answered by the workload probed, whose policy still sees the real source.
      await checkMatrices([TCP80], base, endpoints, [], true);
      await setNat(false);
      const offAgain = await measure(false);
      assert.deepEqual(offAgain, [], `natOutgoing turned off again:\n${offAgain.join("\n")}`);
    } finally {
      await setNat(false).catch(() => undefined);
      for (const c of clients) c.close();
      await fabric.stop();
    }
  });

  test("everything removed: every workload reaches every other again", async () => {
    await scenario([], [], [...BASIC, PING]);
  });
});
