/**
 * State sequences (STYLE.md, Felix calc_graph_fv_test.go): random sequences of datastore
 * updates — puts, deletes, garbage, replays, label churn — fed incrementally with flushes at
 * random points. The incremental result must equal a fresh graph fed only the final values
 * (in order and reversed), and the flushed changes, applied to a mirror, must rebuild the
 * state exactly, each reported ID really having changed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CalcGraph } from "./calc-graph.js";
import { deepEqual } from "./tracked-map.js";
import { block, put, wep } from "./testing.js";
import type { DesiredState, IPSet, KVUpdate, StateChanges } from "./types.js";

const HOST = "host-a";

const oneOf = <T>(...xs: T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);
const labelsArb = fc.record(
  { app: oneOf("a", "b"), role: oneOf("x", "y"), team: oneOf("red") },
  { requiredKeys: [] },
) as fc.Arbitrary<Record<string, string>>;
const selectorArb = oneOf(
  "all()",
  "app == 'a'",
  "has(role)",
  "role == 'x' || team == 'red'",
  "!has(app)",
  "pcns.env == 'prod'",
);
const ipArb = fc.integer({ min: 1, max: 6 }).map((i) => (i % 3 === 0 ? `fd00:19::${i}` : `198.19.0.${i}`));
const portsArb = fc.subarray([
  { name: "http", protocol: "TCP", port: 80 },
  { name: "http", protocol: "TCP", port: 8080 },
  { name: "dns", protocol: "UDP", port: 53 },
]);

const entityArb = fc.record(
  {
    selector: selectorArb,
    notSelector: selectorArb,
    namespaceSelector: oneOf("all()", "global()", "env == 'prod'"),
    ports: fc.subarray<string | number>([80, "http", "dns", "1000:2000"], { minLength: 1 }),
    nets: oneOf(["198.19.9.0/24"], ["fd00:19:0:9::/64"]),
    serviceAccounts: oneOf({ names: ["sa1"] }, { selector: "role == 'x'" }),
  },
  { requiredKeys: [] },
);
const ruleArb = fc.record(
  {
    action: oneOf("Allow", "Deny", "Pass", "Log"),
    protocol: oneOf("TCP", "UDP"),
    source: entityArb,
    destination: entityArb,
  },
  { requiredKeys: ["action"] },
);
const policySpecArb = fc.record(
  {
    tier: oneOf("default", "t1", "t2"),
    order: oneOf(1, 2, 3),
    selector: selectorArb,
    types: oneOf(["Ingress"], ["Egress"], ["Ingress", "Egress"]),
    ingress: fc.array(ruleArb, { maxLength: 2 }),
    egress: fc.array(ruleArb, { maxLength: 2 }),
    applyOnForward: fc.boolean(),
    doNotTrack: fc.boolean(),
    performanceHints: oneOf(["AssumeNeededOnEveryNode"]),
  },
  { requiredKeys: ["types"] },
);

/** Updates over a small universe of keys, so that keys collide and get rewritten. */
const updateArb: fc.Arbitrary<KVUpdate> = fc.oneof(
  fc
    .record({
      ns: oneOf("ns1", "ns2"),
      name: oneOf("w1", "w2", "w3"),
      node: oneOf(HOST, "host-b"),
      ips: fc
        .subarray(["198.19.0.1", "198.19.0.2", "fd00:19::3"])
        .chain((a) => ipArb.map((i) => [...new Set([...a, i])])),
      labels: labelsArb,
      profiles: fc.subarray(["p1", "p2", "kns.ns1", "missing"]),
      ports: portsArb,
      sa: oneOf("sa1", "sa2"),
    })
    .map((w) =>
      wep(w.ns, w.name, {
        node: w.node,
        ips: w.ips,
        labels: w.labels,
        profiles: w.profiles,
        ports: w.ports,
        sa: w.sa,
      }),
    ),
  fc
    .record({
      name: oneOf("h1", "h2"),
      node: oneOf(HOST, "host-b"),
      labels: labelsArb,
      ip: ipArb,
      ports: portsArb,
    })
    .map((h) =>
      put(
        "hostendpoints",
        h.name,
        { node: h.node, interfaceName: "eth0", expectedIPs: [h.ip], ports: h.ports },
        { labels: h.labels },
      ),
    ),
  fc
    .record({ name: oneOf("g1", "g2", "g3"), spec: policySpecArb })
    .map((p) => put("globalnetworkpolicies", p.name, p.spec)),
  fc.record({ ns: oneOf("ns1", "ns2"), name: oneOf("n1", "n2"), spec: policySpecArb }).map((p) => {
    const { applyOnForward: _a, doNotTrack: _d, ...spec } = p.spec;
    return put("networkpolicies", p.name, spec, { ns: p.ns });
  }),
  fc
    .record({ name: oneOf("s1"), spec: policySpecArb })
    .map((p) => put("stagedglobalnetworkpolicies", p.name, p.spec)),
  fc
    .record({
      name: oneOf("t1", "t2", "default"),
      order: fc.option(oneOf(1, 2_000_000), { nil: undefined }),
      defaultAction: oneOf("Deny", "Pass"),
    })
    .map((t) =>
      put(
        "tiers",
        t.name,
        t.order === undefined
          ? { defaultAction: t.defaultAction }
          : { order: t.order, defaultAction: t.defaultAction },
      ),
    ),
  fc
    .record({
      name: oneOf("p1", "p2", "kns.ns1"),
      labels: fc.record(
        { "pcns.env": oneOf("prod", "dev"), team: oneOf("red", "blue") },
        { requiredKeys: [] },
      ),
      ingress: fc.array(ruleArb, { maxLength: 2 }),
    })
    .map((p) => put("profiles", p.name, { labelsToApply: p.labels, ingress: p.ingress })),
  fc
    .record({
      ns: fc.option(oneOf("ns1", "ns2"), { nil: undefined }),
      name: oneOf("s1", "s2"),
      labels: labelsArb,
      nets: fc.subarray(["198.19.50.0/24", "198.19.0.1/32", "fd00:19:0:5::/64"]),
    })
    .map((s) =>
      s.ns === undefined
        ? put("globalnetworksets", s.name, { nets: s.nets }, { labels: s.labels })
        : put("networksets", s.name, { nets: s.nets }, { ns: s.ns, labels: s.labels }),
    ),
  fc
    .record({
      i: fc.integer({ min: 0, max: 2 }),
      owner: oneOf(`host:${HOST}`, "host:host-b", "host:host-c"),
      borrower: fc.option(oneOf(HOST, "host-b", "host-c"), { nil: undefined }),
    })
    .map((b) =>
      block(
        `198.19.${b.i}.0/26`,
        b.owner,
        b.borrower === undefined ? [] : [{ ordinal: 1, node: b.borrower }],
      ),
    ),
  fc
    .record({ name: oneOf("host-b", "host-c"), ip: fc.integer({ min: 1, max: 3 }) })
    .map((n) => put("nodes", n.name, { bgp: { ipv4Address: `198.18.0.${n.ip}/24` } })),
  fc
    .record({ name: oneOf("pool1"), nat: fc.boolean() })
    .map((p) => put("ippools", p.name, { cidr: "198.19.0.0/16", natOutgoing: p.nat })),
);

/** A step: an update, its deletion, garbage under its key, or a flush. */
type Step = { t: "up"; u: KVUpdate } | { t: "flush" };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: updateArb.map((u): Step => ({ t: "up", u })) },
  { weight: 2, arbitrary: updateArb.map((u): Step => ({ t: "up", u: { key: u.key, value: null } })) },
  { weight: 1, arbitrary: updateArb.map((u): Step => ({ t: "up", u: { key: u.key, value: { spec: 17 } } })) },
  { weight: 1, arbitrary: fc.constant<Step>({ t: "flush" }) },
);

interface Mirror {
  ipSets: Map<string, { type: string; members: Set<string> }>;
  maps: Record<"policies" | "profiles" | "endpoints" | "routes" | "pools", Map<string, unknown>>;
}

const emptyMirror = (): Mirror => ({
  ipSets: new Map(),
  maps: {
    policies: new Map(),
    profiles: new Map(),
    endpoints: new Map(),
    routes: new Map(),
    pools: new Map(),
  },
});

function apply(m: Mirror, c: StateChanges, s: DesiredState): void {
  for (const id of c.ipSets) {
    const now = s.ipSets.get(id);
    assert.notEqual(m.ipSets.has(id), now !== undefined, `ipSets change for ${id} without add/remove`);
    assert.ok(!c.ipSetMembers.has(id), `member delta for re-programmed set ${id}`);
    if (now === undefined) m.ipSets.delete(id);
    else m.ipSets.set(id, { type: now.type, members: new Set(now.members) });
  }
  for (const [id, d] of c.ipSetMembers) {
    const set = m.ipSets.get(id);
    assert.ok(set !== undefined, `delta for unknown set ${id}`);
    assert.ok(d.added.length + d.removed.length > 0, `empty delta for ${id}`);
    for (const x of d.removed) assert.ok(set.members.delete(x), `removed ${x} not in ${id}`);
    for (const x of d.added) {
      assert.ok(!set.members.has(x), `added ${x} already in ${id}`);
      set.members.add(x);
    }
  }
  for (const k of ["policies", "profiles", "endpoints", "routes", "pools"] as const) {
    const live = s[k] as ReadonlyMap<string, unknown>;
    for (const id of c[k]) {
      assert.ok(!deepEqual(m.maps[k].get(id), live.get(id)), `${k} ${id} reported but unchanged`);
      const v = live.get(id);
      if (v === undefined) m.maps[k].delete(id);
      else m.maps[k].set(id, v);
    }
  }
}

const setView = (s: ReadonlyMap<string, IPSet | { type: string; members: ReadonlySet<string> }>) =>
  new Map([...s].map(([id, v]) => [id, { type: v.type, members: new Set(v.members) }]));

function assertSameState(a: DesiredState, b: DesiredState, what: string): void {
  assert.ok(deepEqual(setView(a.ipSets), setView(b.ipSets)), `${what}: ipSets differ`);
  for (const k of ["policies", "profiles", "endpoints", "routes", "pools"] as const) {
    assert.ok(
      deepEqual(a[k], b[k]),
      `${what}: ${k} differ\n${[...a[k].keys()].join(",")}\nvs\n${[...b[k].keys()].join(",")}`,
    );
  }
}

describe("CalcGraph: state sequences", () => {
  it("incremental == from scratch (in order and reversed); changes rebuild the state", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 80 }), (steps) => {
        const g = new CalcGraph({ hostname: HOST });
        const mirror = emptyMirror();
        const final = new Map<string, KVUpdate>();
        let batch: KVUpdate[] = [];
        const flush = (): void => {
          g.onUpdates(batch);
          batch = [];
          apply(mirror, g.flush(), g.state);
        };
        for (const s of steps) {
          if (s.t === "flush") flush();
          else {
            batch.push(s.u);
            final.set(s.u.key, s.u);
            // Replays: sometimes the same update twice in a row.
            if (s.u.key.length % 5 === 0) batch.push(s.u);
          }
        }
        flush();
        // The mirror holds exactly the state.
        assert.ok(deepEqual(setView(mirror.ipSets), setView(g.state.ipSets)), "mirror ipSets");
        for (const k of ["policies", "profiles", "endpoints", "routes", "pools"] as const) {
          assert.ok(deepEqual(mirror.maps[k], g.state[k]), `mirror ${k}`);
        }
        const present = [...final.values()].filter((u) => u.value !== null);
        const fresh = new CalcGraph({ hostname: HOST });
        fresh.onUpdates(present);
        assertSameState(g.state, fresh.state, "fresh");
        const reversed = new CalcGraph({ hostname: HOST });
        for (const u of [...present].reverse()) reversed.onUpdates([u]);
        assertSameState(g.state, reversed.state, "reversed");
        // A flush with nothing new reports nothing.
        const again = g.flush();
        assert.equal(
          again.ipSets.size + again.ipSetMembers.size + again.policies.size + again.endpoints.size,
          0,
        );
      }),
      { numRuns: 300 },
    );
  });
});
