import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSelector } from "../selector/index.js";
import { CalcGraph } from "./calc-graph.js";
import { block, del, put, wep } from "./testing.js";
import type { KVUpdate, LocalHostEndpoint, LocalWorkloadEndpoint } from "./types.js";

const HOST = "host-a";

function graph(...updates: KVUpdate[]): CalcGraph {
  const g = new CalcGraph({ hostname: HOST });
  g.onUpdates(updates);
  return g;
}

const gnp = (name: string, spec: Record<string, unknown>): KVUpdate =>
  put("globalnetworkpolicies", name, spec);
const np = (ns: string, name: string, spec: Record<string, unknown>): KVUpdate =>
  put("networkpolicies", name, spec, { ns });
const tier = (name: string, spec: Record<string, unknown>): KVUpdate => put("tiers", name, spec);

function wepState(g: CalcGraph, k: string): LocalWorkloadEndpoint {
  const ep = g.state.endpoints.get(k);
  assert.ok(ep !== undefined && ep.kind === "workload", `no local workload ${k}`);
  return ep;
}
const setId = (sel: string): string => parseSelector(sel).uniqueId();
const members = (g: CalcGraph, sel: string): string[] =>
  [...(g.state.ipSets.get(setId(sel))?.members ?? [])].sort();

describe("CalcGraph: policy ordering", () => {
  const cases: { name: string; policies: KVUpdate[]; tiers?: KVUpdate[]; want: [string, string[]][] }[] = [
    {
      name: "by order, absent order last, then name",
      policies: [
        gnp("c", { selector: "all()", types: ["Ingress"] }),
        gnp("b", { selector: "all()", order: 10, types: ["Ingress"] }),
        gnp("a", { selector: "all()", order: 20, types: ["Ingress"] }),
        gnp("a2", { selector: "all()", order: 10, types: ["Ingress"] }),
      ],
      want: [["default", ["gnp/a2", "gnp/b", "gnp/a", "gnp/c"]]],
    },
    {
      name: "tiers by order (absent last, then name), default tier at 1,000,000",
      policies: [
        gnp("p1", { selector: "all()", types: ["Ingress"] }),
        gnp("p2", { tier: "sec", selector: "all()", types: ["Ingress"] }),
        gnp("p3", { tier: "zz", selector: "all()", types: ["Ingress"] }),
        gnp("p4", { tier: "aa", selector: "all()", types: ["Ingress"] }),
      ],
      tiers: [tier("sec", { order: 100 }), tier("zz", {}), tier("aa", {})],
      want: [
        ["sec", ["gnp/p2"]],
        ["default", ["gnp/p1"]],
        ["aa", ["gnp/p4"]],
        ["zz", ["gnp/p3"]],
      ],
    },
    {
      name: "policies of a tier that does not exist are not active",
      policies: [gnp("p1", { tier: "ghost", selector: "all()", types: ["Ingress"] })],
      want: [],
    },
    {
      name: "same name: namespace then kind break the tie",
      policies: [
        np("ns1", "x", { selector: "all()", order: 1, types: ["Ingress"] }),
        gnp("x", { selector: "all()", order: 1, types: ["Ingress"] }),
      ],
      want: [["default", ["gnp/x", "np/ns1/x"]]],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const g = graph(wep("ns1", "w1", { ips: ["198.19.0.1"] }), ...(c.tiers ?? []), ...c.policies);
      const tiers = wepState(g, "wep/ns1/w1").tiers;
      assert.deepEqual(
        tiers.map((t) => [t.name, t.ingress]),
        c.want,
      );
      const active = [...g.state.policies.keys()].sort();
      assert.deepEqual(active, c.want.flatMap(([, ps]) => ps).sort());
    });
  }

  it("a tier created later activates its policies; its defaultAction is carried", () => {
    const g = graph(wep("ns1", "w1"), gnp("p", { tier: "t", selector: "all()", types: ["Ingress"] }));
    assert.equal(g.state.policies.size, 0);
    g.flush();
    g.onUpdates([tier("t", { order: 5, defaultAction: "Pass" })]);
    assert.deepEqual(wepState(g, "wep/ns1/w1").tiers, [
      { name: "t", defaultAction: "pass", ingress: ["gnp/p"], egress: [] },
    ]);
    const c = g.flush();
    assert.deepEqual([...c.policies], ["gnp/p"]);
    assert.deepEqual([...c.endpoints], ["wep/ns1/w1"]);
  });
});

describe("CalcGraph: types and rules", () => {
  it("a direction applies only when in types; listed types without rules give []", () => {
    const g = graph(
      wep("ns1", "w1"),
      gnp("both", { selector: "all()", types: ["Ingress", "Egress"], ingress: [{ action: "Allow" }] }),
      gnp("eg", { selector: "all()", types: ["Egress"], ingress: [{ action: "Allow" }] }),
    );
    const both = g.state.policies.get("gnp/both")!;
    assert.equal(both.inbound?.length, 1);
    assert.deepEqual(both.outbound, []);
    const eg = g.state.policies.get("gnp/eg")!;
    assert.equal(eg.inbound, undefined);
    assert.deepEqual(wepState(g, "wep/ns1/w1").tiers[0], {
      name: "default",
      defaultAction: "deny",
      ingress: ["gnp/both"],
      egress: ["gnp/both", "gnp/eg"],
    });
  });

  it("translates actions, protocols, icmp, nets and ports", () => {
    const g = graph(
      wep("ns1", "w1"),
      gnp("r", {
        selector: "all()",
        types: ["Ingress"],
        ingress: [
          { action: "Pass", protocol: "TCP", destination: { ports: [80, "8000:8080"], notPorts: ["443"] } },
          { action: "Log", protocol: "ICMP", icmp: { type: 8, code: 0 } },
          { action: "Deny", source: { nets: ["198.19.1.7/24"], notNets: ["198.19.1.9"] } },
          { action: "Allow", protocol: 17, ipVersion: 6 },
        ],
      }),
    );
    const [pass, log, deny, allow] = g.state.policies.get("gnp/r")!.inbound!;
    assert.equal(pass!.action, "pass");
    assert.equal(pass!.protocol, 6);
    assert.deepEqual(pass!.dstPorts, [
      { first: 80, last: 80 },
      { first: 8000, last: 8080 },
    ]);
    assert.deepEqual(pass!.notDstPorts, [{ first: 443, last: 443 }]);
    assert.equal(pass!.origin, "gnp/r ingress[0]");
    assert.equal(log!.action, "log");
    assert.equal(log!.logPrefix, "calico-packet");
    assert.deepEqual(log!.icmp, { type: 8, code: 0 });
    assert.equal(log!.ipVersion, 4);
    assert.deepEqual(deny!.srcNets, [{ family: 4, addr: 0xc6130100n, prefix: 24 }]);
    assert.deepEqual(deny!.notSrcNets, [{ family: 4, addr: 0xc6130109n, prefix: 32 }]);
    assert.equal(deny!.ipVersion, 4);
    assert.equal(allow!.protocol, 17);
    assert.equal(allow!.ipVersion, 6);
  });

  it("services and http matches make the rule match nothing", () => {
    const g = graph(
      wep("ns1", "w1", { ips: ["198.19.0.1"] }),
      gnp("s", {
        selector: "all()",
        types: ["Egress"],
        egress: [{ action: "Allow", destination: { services: { name: "api", namespace: "ns1" } } }],
      }),
    );
    const r = g.state.policies.get("gnp/s")!.outbound![0]!;
    assert.deepEqual(r.dstIPSets, [setId("!all()")]);
    assert.deepEqual(members(g, "!all()"), []);
    assert.match(r.origin, /services unsupported/);
  });
});

describe("CalcGraph: selector translation (§2.13)", () => {
  const cases: { name: string; policy: KVUpdate; selects: string[]; ruleSel?: string }[] = [
    {
      name: "NetworkPolicy is scoped to its namespace",
      policy: np("ns1", "p", { selector: "app == 'web'", types: ["Ingress"] }),
      selects: ["wep/ns1/web1"],
    },
    {
      name: "GNP selects across namespaces",
      policy: gnp("p", { selector: "app == 'web'", types: ["Ingress"] }),
      selects: ["wep/ns1/web1", "wep/ns2/web2"],
    },
    {
      name: "GNP namespaceSelector reads pcns. labels from the namespace profile",
      policy: gnp("p", { selector: "app == 'web'", namespaceSelector: "env == 'prod'", types: ["Ingress"] }),
      selects: ["wep/ns2/web2"],
    },
    {
      name: "serviceAccountSelector reads pcsa. labels",
      policy: gnp("p", { serviceAccountSelector: "role == 'admin'", types: ["Ingress"] }),
      selects: ["wep/ns1/web1"],
    },
    {
      name: "NP rule selector is namespaced; notSelector is not",
      policy: np("ns1", "p", {
        selector: "all()",
        types: ["Ingress"],
        ingress: [{ action: "Allow", source: { selector: "app == 'web'" } }],
      }),
      selects: ["wep/ns1/web1"],
      ruleSel: '(projectcalico.org/namespace == "ns1" && app == "web")',
    },
    {
      name: "rule namespaceSelector all() means any namespace",
      policy: gnp("p", {
        selector: "app == 'none'",
        types: ["Ingress"],
        ingress: [{ action: "Allow", source: { namespaceSelector: "all()" } }],
      }),
      selects: [],
    },
  ];
  const base = [
    put("profiles", "kns.ns1", {
      labelsToApply: { "pcns.env": "dev", "pcns.projectcalico.org/name": "ns1" },
    }),
    put("profiles", "kns.ns2", {
      labelsToApply: { "pcns.env": "prod", "pcns.projectcalico.org/name": "ns2" },
    }),
    put("profiles", "ksa.ns1.admin", { labelsToApply: { "pcsa.role": "admin" } }),
    wep("ns1", "web1", {
      ips: ["198.19.0.1"],
      labels: { app: "web" },
      profiles: ["kns.ns1", "ksa.ns1.admin"],
      sa: "admin",
    }),
    wep("ns2", "web2", { ips: ["198.19.0.2"], labels: { app: "web" }, profiles: ["kns.ns2"] }),
  ];
  for (const c of cases) {
    it(c.name, () => {
      const g = graph(...base, c.policy);
      const selected = [...g.state.endpoints.values()]
        .filter((e) => e.tiers.length > 0)
        .map((e) => e.key)
        .sort();
      assert.deepEqual(selected, c.selects);
      if (c.ruleSel !== undefined) {
        const id = setId(c.ruleSel);
        assert.ok(g.state.ipSets.has(id), `set for ${c.ruleSel}`);
        assert.deepEqual(members(g, c.ruleSel), ["198.19.0.1/32"]);
      }
    });
  }

  it("rule namespaceSelector global() selects non-namespaced items; names of service accounts", () => {
    const g = graph(
      ...base,
      put("globalnetworksets", "ext", { nets: ["198.19.200.0/24"] }, { labels: { kind: "ext" } }),
      gnp("p", {
        selector: "all()",
        types: ["Ingress"],
        ingress: [
          { action: "Allow", source: { namespaceSelector: "global()" } },
          { action: "Allow", source: { serviceAccounts: { names: ["admin"] } } },
        ],
      }),
    );
    assert.deepEqual(members(g, "!has(projectcalico.org/namespace)"), ["198.19.200.0/24"]);
    assert.deepEqual(members(g, 'projectcalico.org/serviceaccount in {"admin"}'), ["198.19.0.1/32"]);
  });
});

describe("CalcGraph: profiles", () => {
  it("active only when a local endpoint refers to it; missing ⇒ deny stand-in; default-allow built in", () => {
    const g = graph(
      put("profiles", "unused", { ingress: [{ action: "Allow" }] }),
      put("profiles", "p1", { ingress: [{ action: "Allow" }], egress: [] }),
      wep("ns1", "w1", { profiles: ["p1", "ghost", "projectcalico-default-allow"] }),
      wep("ns1", "remote", { node: "host-b", profiles: ["unused"] }),
    );
    assert.deepEqual([...g.state.profiles.keys()].sort(), ["ghost", "p1", "projectcalico-default-allow"]);
    assert.deepEqual(
      g.state.profiles.get("ghost")!.inbound.map((r) => r.action),
      ["deny"],
    );
    assert.deepEqual(
      g.state.profiles.get("ghost")!.outbound.map((r) => r.action),
      ["deny"],
    );
    assert.deepEqual(
      g.state.profiles.get("projectcalico-default-allow")!.outbound.map((r) => r.action),
      ["allow"],
    );
    assert.deepEqual(wepState(g, "wep/ns1/w1").profiles, ["p1", "ghost", "projectcalico-default-allow"]);
    g.flush();
    g.onUpdates([put("profiles", "ghost", { ingress: [{ action: "Allow" }] })]);
    assert.deepEqual(
      g.state.profiles.get("ghost")!.inbound.map((r) => r.action),
      ["allow"],
    );
    assert.deepEqual([...g.flush().profiles], ["ghost"]);
  });

  it("endpoint labels inherit labelsToApply, own labels win", () => {
    const g = graph(
      put("profiles", "p", { labelsToApply: { team: "x", app: "inherited" } }),
      wep("ns1", "w1", { ips: ["198.19.0.1"], labels: { app: "own" }, profiles: ["p"] }),
      gnp("t", { selector: "team == 'x' && app == 'own'", types: ["Ingress"] }),
    );
    assert.equal(wepState(g, "wep/ns1/w1").tiers.length, 1);
    g.onUpdates([put("profiles", "p", { labelsToApply: { team: "y" } })]);
    assert.equal(wepState(g, "wep/ns1/w1").tiers.length, 0);
    assert.equal(g.state.policies.size, 0);
  });
});

describe("CalcGraph: IP sets", () => {
  it("named ports resolve per endpoint, cluster-wide, with protocol", () => {
    const g = graph(
      wep("ns1", "w1", {
        ips: ["198.19.0.1"],
        labels: { app: "db" },
        ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
      }),
      wep("ns1", "w2", {
        node: "host-b",
        ips: ["198.19.0.2", "fd00:19::2"],
        labels: { app: "db" },
        ports: [
          { name: "pg", protocol: "TCP", port: 5433 },
          { name: "pg", protocol: "UDP", port: 9 },
        ],
      }),
      put(
        "hostendpoints",
        "h1",
        { node: "host-c", expectedIPs: ["198.19.9.9"], ports: [{ name: "pg", protocol: "TCP", port: 1 }] },
        { labels: { app: "db" } },
      ),
      gnp("p", {
        selector: "all()",
        types: ["Egress"],
        egress: [
          { action: "Allow", protocol: "TCP", destination: { selector: "app == 'db'", ports: ["pg"] } },
        ],
      }),
    );
    const rule = g.state.policies.get("gnp/p")!.outbound![0]!;
    assert.equal(rule.dstNamedPortIPSets.length, 1);
    const set = g.state.ipSets.get(rule.dstNamedPortIPSets[0]!)!;
    assert.equal(set.type, "ip-port");
    assert.deepEqual([...set.members].sort(), [
      "198.19.0.1,6,5432",
      "198.19.0.2,6,5433",
      "198.19.9.9,6,1",
      "fd00:19::2,6,5433",
    ]);
    assert.deepEqual(rule.dstIPSets, [setId('app == "db"')]);
  });

  it("network sets are labelled items; namespaced ones carry the namespace label", () => {
    const g = graph(
      wep("ns1", "w1", { ips: ["198.19.0.1"], labels: { role: "x" } }),
      put("networksets", "n1", { nets: ["198.19.100.0/24"] }, { ns: "ns1", labels: { role: "x" } }),
      put("networksets", "n2", { nets: ["198.19.101.0/24"] }, { ns: "ns2", labels: { role: "x" } }),
      put(
        "globalnetworksets",
        "g1",
        { nets: ["198.19.102.0/24", "fd00:19:0:1::/64"] },
        { labels: { role: "x" } },
      ),
      np("ns1", "p", {
        selector: "all()",
        types: ["Ingress"],
        ingress: [{ action: "Allow", source: { selector: "role == 'x'" } }],
      }),
      gnp("g", {
        selector: "all()",
        types: ["Ingress"],
        ingress: [{ action: "Deny", source: { selector: "role == 'x'" } }],
      }),
    );
    assert.deepEqual(members(g, '(projectcalico.org/namespace == "ns1" && role == "x")'), [
      "198.19.0.1/32",
      "198.19.100.0/24",
    ]);
    assert.deepEqual(members(g, 'role == "x"'), [
      "198.19.0.1/32",
      "198.19.100.0/24",
      "198.19.101.0/24",
      "198.19.102.0/24",
      "fd00:19:0:1::/64",
    ]);
  });

  it("shared sets are refcounted; deltas are exact; unused sets go", () => {
    const sel = 'app == "a"';
    const rule = { action: "Allow", source: { selector: "app == 'a'" } };
    const g = graph(
      wep("ns1", "w1", { ips: ["198.19.0.1"] }),
      gnp("p1", { selector: "all()", ingress: [rule] }),
      gnp("p2", { selector: "all()", ingress: [rule] }),
    );
    let c = g.flush();
    assert.deepEqual([...c.ipSets], [setId(sel)]);
    g.onUpdates([
      wep("ns1", "a1", { node: "host-b", ips: ["198.19.0.5"], labels: { app: "a" } }),
      wep("ns1", "a2", { node: "host-b", ips: ["198.19.0.5"], labels: { app: "a" } }),
    ]);
    c = g.flush();
    assert.deepEqual(c.ipSetMembers.get(setId(sel)), { added: ["198.19.0.5/32"], removed: [] });
    assert.equal(c.policies.size + c.endpoints.size + c.ipSets.size, 0);
    g.onUpdates([del("workloadendpoints", "a1", "ns1")]);
    assert.deepEqual(members(g, sel), ["198.19.0.5/32"]);
    assert.equal(g.flush().ipSetMembers.size, 0);
    g.onUpdates([del("globalnetworkpolicies", "p1")]);
    assert.ok(g.state.ipSets.has(setId(sel)));
    g.onUpdates([del("globalnetworkpolicies", "p2")]);
    assert.ok(!g.state.ipSets.has(setId(sel)));
    c = g.flush();
    assert.deepEqual([...c.ipSets], [setId(sel)]);
  });
});

describe("CalcGraph: member deltas", () => {
  it("a member added and removed between flushes is not reported", () => {
    const g = graph(
      wep("ns1", "w1", { ips: ["198.19.0.1"] }),
      gnp("p", {
        selector: "all()",
        types: ["Ingress"],
        ingress: [{ action: "Allow", source: { selector: "app == 'a'" } }],
      }),
    );
    g.flush();
    g.onUpdates([wep("ns1", "w2", { node: "host-b", ips: ["198.19.0.2"], labels: { app: "a" } })]);
    g.onUpdates([del("workloadendpoints", "w2", "ns1")]);
    assert.equal(g.flush().ipSetMembers.size, 0);
  });
});

describe("CalcGraph: staged policies", () => {
  for (const plural of [
    "stagedglobalnetworkpolicies",
    "stagednetworkpolicies",
    "stagedkubernetesnetworkpolicies",
  ]) {
    it(`${plural} are never enforced`, () => {
      const ns = plural === "stagedglobalnetworkpolicies" ? undefined : "ns1";
      const spec =
        plural === "stagedkubernetesnetworkpolicies"
          ? { podSelector: {}, policyTypes: ["Ingress"] }
          : { selector: "all()", types: ["Ingress"] };
      const g = graph(wep("ns1", "w1"), put(plural, "s", spec, ns === undefined ? {} : { ns }));
      assert.deepEqual(wepState(g, "wep/ns1/w1").tiers, []);
      assert.equal(g.state.policies.size, 0);
      assert.equal(g.stagedPolicyCount, 1);
    });
  }
});

describe("CalcGraph: host endpoints", () => {
  it("splits tiers into normal, forward, preDNAT and untracked", () => {
    const g = graph(
      put(
        "hostendpoints",
        "eth0",
        { node: HOST, interfaceName: "eth0", expectedIPs: ["198.18.0.1"] },
        { labels: { host: "a" } },
      ),
      gnp("n", { selector: "has(host)", types: ["Ingress", "Egress"] }),
      gnp("f", { selector: "has(host)", types: ["Ingress"], applyOnForward: true }),
      gnp("pd", { selector: "has(host)", types: ["Ingress"], preDNAT: true, applyOnForward: true }),
      gnp("u", {
        selector: "has(host)",
        types: ["Ingress", "Egress"],
        doNotTrack: true,
        applyOnForward: true,
      }),
    );
    const h = g.state.endpoints.get("hep/eth0") as LocalHostEndpoint;
    assert.equal(h.kind, "host");
    const ids = (ts: LocalHostEndpoint["tiers"]) => ts.map((t) => [t.ingress, t.egress]);
    assert.deepEqual(ids(h.tiers), [[["gnp/f", "gnp/n"], ["gnp/n"]]]);
    assert.deepEqual(ids(h.forwardTiers), [[["gnp/f"], []]]);
    assert.deepEqual(ids(h.preDNATTiers), [[["gnp/pd"], []]]);
    assert.deepEqual(ids(h.untrackedTiers), [[["gnp/u"], ["gnp/u"]]]);
    assert.equal(g.state.policies.get("gnp/u")!.doNotTrack, true);
    assert.deepEqual(h.expectedIPs, [{ family: 4, addr: 0xc6120001n, prefix: 32 }]);
  });

  it("workloads never get preDNAT or untracked policies", () => {
    const g = graph(
      wep("ns1", "w1"),
      gnp("u", { selector: "all()", types: ["Ingress"], doNotTrack: true, applyOnForward: true }),
    );
    assert.deepEqual(wepState(g, "wep/ns1/w1").tiers, []);
  });
});

describe("CalcGraph: routes and pools", () => {
  it("local workloads, local blocks (blackhole), remote blocks via the node address, borrowed addresses", () => {
    const g = graph(
      put("nodes", "host-b", { bgp: { ipv4Address: "198.18.0.2/24", ipv6Address: "fd00::2/64" } }),
      wep("ns1", "w1", { ips: ["198.19.0.1", "fd00:19::1"], iface: "cali1" }),
      block("198.19.0.0/26", `host:${HOST}`, [{ ordinal: 7, node: "host-b" }]),
      block("198.19.0.64/26", "host:host-b"),
      block("fd00:19::/122", "host:host-b"),
      put("ippools", "p4", { cidr: "198.19.0.0/16", natOutgoing: true }),
    );
    const r = Object.fromEntries(
      [...g.state.routes].map(([k, v]) => [k, [v.type, v.interfaceName ?? v.gateway ?? null]]),
    );
    assert.deepEqual(r, {
      "198.19.0.1/32": ["local-workload", "cali1"],
      "fd00:19::1/128": ["local-workload", "cali1"],
      "198.19.0.0/26": ["local-block", null],
      "198.19.0.7/32": ["remote-block", "198.18.0.2"],
      "198.19.0.64/26": ["remote-block", "198.18.0.2"],
      "fd00:19::/122": ["remote-block", "fd00::2"],
    });
    assert.deepEqual(g.state.pools.get("p4"), {
      name: "p4",
      cidr: { family: 4, addr: 0xc6130000n, prefix: 16 },
      natOutgoing: true,
      disabled: false,
    });
    g.flush();
    g.onUpdates([put("nodes", "host-b", { bgp: { ipv4Address: "198.18.0.3/24" } })]);
    const c = g.flush();
    assert.deepEqual([...c.routes].sort(), ["198.19.0.64/26", "198.19.0.7/32", "fd00:19::/122"]);
    assert.equal(g.state.routes.get("fd00:19::/122")!.gateway, undefined);
  });
});

describe("CalcGraph: robustness", () => {
  const garbage: unknown[] = [
    42,
    "x",
    [],
    { spec: 7 },
    { spec: { node: 3 } },
    { spec: { selector: "a ==" } },
    { spec: { ingress: [{ action: "Explode" }] } },
  ];
  for (const plural of [
    "workloadendpoints",
    "hostendpoints",
    "networkpolicies",
    "globalnetworkpolicies",
    "profiles",
    "tiers",
    "networksets",
    "ippools",
    "nodes",
  ]) {
    it(`garbage ${plural} values count as absent and never throw`, () => {
      const g = graph(
        wep("ns1", "w1", { ips: ["198.19.0.1"] }),
        gnp("p", { selector: "all()", ingress: [{ action: "Allow" }] }),
      );
      const before = JSON.stringify([...g.state.endpoints], (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      );
      for (const v of garbage)
        g.onUpdates([
          { key: `/calico/resources/v3/projectcalico.org/${plural}/ns9/x`, value: v },
          { key: `/calico/resources/v3/projectcalico.org/${plural}/x`, value: v },
        ]);
      g.onUpdates([
        { key: "/calico/ipam/v2/assignment/ipv4/block/x", value: { junk: true } },
        { key: "/nonsense", value: 1 },
      ]);
      const after = JSON.stringify([...g.state.endpoints], (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      );
      if (plural !== "workloadendpoints" && plural !== "globalnetworkpolicies") assert.equal(after, before);
    });
  }

  it("replays and spurious delete/re-add between flushes report nothing", () => {
    const ups = [
      wep("ns1", "w1", { ips: ["198.19.0.1"], labels: { a: "b" } }),
      gnp("p", { selector: "all()", ingress: [{ action: "Allow", source: { selector: "a == 'b'" } }] }),
    ];
    const g = graph(...ups);
    g.flush();
    g.onUpdates([del("workloadendpoints", "w1", "ns1"), del("globalnetworkpolicies", "p")]);
    g.onUpdates([...ups, ...ups]);
    const c = g.flush();
    assert.equal(
      c.policies.size +
        c.endpoints.size +
        c.ipSets.size +
        c.ipSetMembers.size +
        c.routes.size +
        c.profiles.size,
      0,
    );
  });
});
