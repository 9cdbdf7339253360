import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Issues } from "./check.js";
import { convertK8sNetworkPolicy, k8sSelectorToCalico, simplifyPorts } from "./k8s-network-policy.js";
import { NETWORK_POLICY } from "./kinds/network-policy.js";
import { API_VERSION } from "./resource.js";
import { parseSelector } from "../selector/index.js";

const K8S = "projectcalico.org/orchestrator == 'k8s'";

function k8s(spec: unknown, name = "test", namespace: string | undefined = "prod") {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, ...(namespace !== undefined ? { namespace } : {}) },
    spec,
  };
}

/** The Calico NetworkPolicy Calico derives, around the given spec fields. */
function calico(spec: Record<string, unknown>, name = "test", namespace = "prod") {
  return {
    apiVersion: API_VERSION,
    kind: "NetworkPolicy",
    metadata: { name: `knp.default.${name}`, namespace },
    spec: { tier: "default", order: 1000, ...spec },
  };
}

const CASES: [string, unknown, unknown][] = [
  [
    "default-deny-all ingress",
    k8s({ podSelector: {}, policyTypes: ["Ingress"] }, "default-deny"),
    calico({ selector: K8S, types: ["Ingress"] }, "default-deny"),
  ],
  [
    "default-deny-all both directions",
    k8s({ podSelector: {}, policyTypes: ["Ingress", "Egress"] }, "default-deny"),
    calico({ selector: K8S, types: ["Ingress", "Egress"] }, "default-deny"),
  ],
  [
    "policyTypes order does not matter",
    k8s({ podSelector: {}, policyTypes: ["Egress", "Ingress"] }),
    calico({ selector: K8S, types: ["Ingress", "Egress"] }),
  ],
  [
    "allow-all ingress (one empty rule) with empty podSelector",
    k8s({ podSelector: {}, ingress: [{}] }),
    calico({ selector: K8S, ingress: [{ action: "Allow" }], types: ["Ingress"] }),
  ],
  [
    "empty ingress list means deny (missing policyTypes default to Ingress)",
    k8s({ podSelector: { matchLabels: { app: "db" } }, ingress: [] }),
    calico({ selector: `${K8S} && app == 'db'`, types: ["Ingress"] }),
  ],
  [
    "allow-from-namespace",
    k8s({
      podSelector: { matchLabels: { app: "web" } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "a" } } }] }],
    }),
    calico({
      selector: `${K8S} && app == 'web'`,
      ingress: [{ action: "Allow", source: { selector: K8S, namespaceSelector: "team == 'a'" } }],
      types: ["Ingress"],
    }),
  ],
  [
    "pods in any namespace (empty namespaceSelector = all())",
    k8s({
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "mon" } } }] }],
    }),
    calico({
      selector: K8S,
      ingress: [
        { action: "Allow", source: { selector: `${K8S} && role == 'mon'`, namespaceSelector: "all()" } },
      ],
      types: ["Ingress"],
    }),
  ],
  [
    "ipBlock with except, TCP port (the Kubernetes docs example)",
    k8s({
      podSelector: { matchLabels: { role: "db" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [
            { ipBlock: { cidr: "198.19.0.0/16", except: ["198.19.1.0/24"] } },
            { namespaceSelector: { matchLabels: { project: "myproject" } } },
            { podSelector: { matchLabels: { role: "frontend" } } },
          ],
          ports: [{ protocol: "TCP", port: 6379 }],
        },
      ],
      egress: [{ to: [{ ipBlock: { cidr: "198.18.0.0/24" } }], ports: [{ protocol: "TCP", port: 5978 }] }],
    }),
    calico({
      selector: `${K8S} && role == 'db'`,
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { nets: ["198.19.0.0/16"], notNets: ["198.19.1.0/24"] },
          destination: { ports: [6379] },
        },
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: K8S, namespaceSelector: "project == 'myproject'" },
          destination: { ports: [6379] },
        },
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: `${K8S} && role == 'frontend'` },
          destination: { ports: [6379] },
        },
      ],
      egress: [{ action: "Allow", protocol: "TCP", destination: { nets: ["198.18.0.0/24"], ports: [5978] } }],
      types: ["Ingress", "Egress"],
    }),
  ],
  [
    "named port defaults to TCP",
    k8s({ podSelector: {}, ingress: [{ ports: [{ port: "http" }] }] }),
    calico({
      selector: K8S,
      ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: ["http"] } }],
      types: ["Ingress"],
    }),
  ],
  [
    "endPort range",
    k8s({
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [
        {
          to: [{ ipBlock: { cidr: "198.18.0.0/24" } }],
          ports: [{ protocol: "TCP", port: 32000, endPort: 32768 }],
        },
      ],
    }),
    calico({
      selector: K8S,
      egress: [
        {
          action: "Allow",
          protocol: "TCP",
          destination: { nets: ["198.18.0.0/24"], ports: ["32000:32768"] },
        },
      ],
      types: ["Egress"],
    }),
  ],
  [
    "egress-only DNS: one rule per protocol, protocols sorted",
    k8s({
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Egress"],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }],
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
      ],
    }),
    calico({
      selector: `${K8S} && app == 'web'`,
      egress: [
        {
          action: "Allow",
          protocol: "TCP",
          destination: {
            selector: K8S,
            namespaceSelector: "kubernetes.io/metadata.name == 'kube-system'",
            ports: [53],
          },
        },
        {
          action: "Allow",
          protocol: "UDP",
          destination: {
            selector: K8S,
            namespaceSelector: "kubernetes.io/metadata.name == 'kube-system'",
            ports: [53],
          },
        },
      ],
      types: ["Egress"],
    }),
  ],
  [
    "egress rules without policyTypes get Egress from the API server default",
    k8s({ podSelector: {}, egress: [{}] }),
    calico({ selector: K8S, egress: [{ action: "Allow" }], types: ["Ingress", "Egress"] }),
  ],
  [
    "egress rules kept but not typed when policyTypes omit Egress",
    k8s({ podSelector: {}, policyTypes: ["Ingress"], egress: [{}] }),
    calico({ selector: K8S, egress: [{ action: "Allow" }], types: ["Ingress"] }),
  ],
  [
    "peers × protocols with port merging",
    k8s({
      podSelector: {},
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { app: "a" } } },
            { podSelector: { matchLabels: { app: "b" } } },
          ],
          ports: [
            { port: 81 },
            { port: 80 },
            { protocol: "UDP", port: 53 },
            { port: 8080 },
            { port: "metrics" },
          ],
        },
      ],
    }),
    calico({
      selector: K8S,
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: `${K8S} && app == 'a'` },
          destination: { ports: ["metrics", "80:81", 8080] },
        },
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: `${K8S} && app == 'b'` },
          destination: { ports: ["metrics", "80:81", 8080] },
        },
        {
          action: "Allow",
          protocol: "UDP",
          source: { selector: `${K8S} && app == 'a'` },
          destination: { ports: [53] },
        },
        {
          action: "Allow",
          protocol: "UDP",
          source: { selector: `${K8S} && app == 'b'` },
          destination: { ports: [53] },
        },
      ],
      types: ["Ingress"],
    }),
  ],
  [
    "a protocol without a port allows all its ports and absorbs that protocol's ports",
    k8s({ podSelector: {}, ingress: [{ ports: [{ port: 80 }, { protocol: "TCP" }, { protocol: "SCTP" }] }] }),
    calico({
      selector: K8S,
      ingress: [
        { action: "Allow", protocol: "SCTP" },
        { action: "Allow", protocol: "TCP" },
      ],
      types: ["Ingress"],
    }),
  ],
  [
    "matchExpressions",
    k8s({
      podSelector: {
        matchLabels: { b: "2", a: "1" },
        matchExpressions: [
          { key: "env", operator: "In", values: ["prod", "staging"] },
          { key: "env", operator: "NotIn", values: ["dev"] },
          { key: "tier", operator: "DoesNotExist" },
          { key: "app", operator: "Exists" },
        ],
      },
    }),
    calico({
      selector: `${K8S} && a == '1' && b == '2' && env in { 'prod', 'staging' } && env not in { 'dev' } && ! has(tier) && has(app)`,
      types: ["Ingress"],
    }),
  ],
  [
    "ipBlock host bits are masked off; IPv6",
    k8s({
      podSelector: {},
      ingress: [
        { from: [{ ipBlock: { cidr: "198.19.0.1/16" } }] },
        { from: [{ ipBlock: { cidr: "fd00:19::/48", except: ["fd00:19:0:1::/64"] } }] },
      ],
    }),
    calico({
      selector: K8S,
      ingress: [
        { action: "Allow", source: { nets: ["198.19.0.0/16"] } },
        { action: "Allow", source: { nets: ["fd00:19::/48"], notNets: ["fd00:19:0:1::/64"] } },
      ],
      types: ["Ingress"],
    }),
  ],
  [
    "missing namespace means default; missing spec selects all pods",
    { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "x" } },
    calico({ selector: K8S, types: ["Ingress"] }, "x", "default"),
  ],
];

void describe("convertK8sNetworkPolicy produces what Calico produces", () => {
  for (const [name, input, want] of CASES) {
    void it(name, () => {
      const got = convertK8sNetworkPolicy(input);
      assert.deepEqual(got.issues, []);
      assert.deepEqual(got.resource, want);
      // Key order matches Calico's JSON too (rules go through normalizeRule).
      assert.equal(JSON.stringify(got.resource), JSON.stringify(want));
    });
  }

  void it("every converted policy is a valid Calico NetworkPolicy with parseable selectors", () => {
    for (const [name, input] of CASES) {
      const got = convertK8sNetworkPolicy(input);
      assert.ok(got.resource !== undefined, name);
      const issues = new Issues();
      NETWORK_POLICY.validate(got.resource, issues);
      assert.deepEqual(issues.list, [], name);
      assert.equal(NETWORK_POLICY.nameProblem?.(got.resource.metadata.name), undefined);
    }
  });
});

void describe("convertK8sNetworkPolicy rejects malformed input with k8s paths", () => {
  const bad: [string, unknown, string[]][] = [
    ["not an object", "nope", [""]],
    ["wrong apiVersion", { ...k8s({}), apiVersion: "networking.k8s.io/v1beta1" }, ["apiVersion"]],
    ["wrong kind", { ...k8s({}), kind: "NetPol" }, ["kind"]],
    [
      "missing metadata",
      { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", spec: {} },
      ["metadata"],
    ],
    ["missing name", { ...k8s({}), metadata: { namespace: "x" } }, ["metadata.name"]],
    ["bad name", k8s({}, "Bad_Name"), ["metadata.name"]],
    ["name too long with prefix", k8s({}, "a".repeat(250)), ["metadata.name"]],
    ["bad namespace", k8s({}, "x", "a.b"), ["metadata.namespace"]],
    ["unknown top-level field", { ...k8s({}), specs: {} }, ["specs"]],
    ["spec not an object", k8s([]), ["spec"]],
    ["unknown spec field", k8s({ podselector: {} }), ["spec.podselector"]],
    ["unknown rule field", k8s({ ingress: [{ to: [] }] }), ["spec.ingress[0].to"]],
    ["egress uses from", k8s({ egress: [{ from: [] }] }), ["spec.egress[0].from"]],
    [
      "ipBlock with podSelector",
      k8s({ ingress: [{ from: [{}, { ipBlock: { cidr: "198.18.0.0/15" }, podSelector: {} }] }] }),
      ["spec.ingress[0].from[0]", "spec.ingress[0].from[1]"],
    ],
    [
      "bad cidr",
      k8s({ ingress: [{ from: [{ podSelector: {} }, { ipBlock: { cidr: "198.18.0.0/33" } }] }] }),
      ["spec.ingress[0].from[1].ipBlock.cidr"],
    ],
    [
      "bare IP cidr",
      k8s({ ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.1" } }] }] }),
      ["spec.ingress[0].from[0].ipBlock.cidr"],
    ],
    [
      "missing cidr",
      k8s({ ingress: [{ from: [{ ipBlock: {} }] }] }),
      ["spec.ingress[0].from[0].ipBlock.cidr"],
    ],
    [
      "except outside cidr",
      k8s({ ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.0/16", except: ["198.19.0.0/24"] } }] }] }),
      ["spec.ingress[0].from[0].ipBlock.except[0]"],
    ],
    [
      "except equal to cidr",
      k8s({ ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.0/16", except: ["198.18.0.0/16"] } }] }] }),
      ["spec.ingress[0].from[0].ipBlock.except[0]"],
    ],
    [
      "except other family",
      k8s({ egress: [{ to: [{ ipBlock: { cidr: "198.18.0.0/16", except: ["fd00::/64"] } }] }] }),
      ["spec.egress[0].to[0].ipBlock.except[0]"],
    ],
    [
      "ICMP protocol",
      k8s({ ingress: [{ ports: [{ protocol: "ICMP" }] }] }),
      ["spec.ingress[0].ports[0].protocol"],
    ],
    [
      "lower-case protocol",
      k8s({ ingress: [{ ports: [{ protocol: "tcp", port: 80 }] }] }),
      ["spec.ingress[0].ports[0].protocol"],
    ],
    ["port 0", k8s({ ingress: [{ ports: [{ port: 0 }] }] }), ["spec.ingress[0].ports[0].port"]],
    ["port 70000", k8s({ ingress: [{ ports: [{ port: 70000 }] }] }), ["spec.ingress[0].ports[0].port"]],
    [
      "numeric string port",
      k8s({ ingress: [{ ports: [{ port: "80" }] }] }),
      ["spec.ingress[0].ports[0].port"],
    ],
    [
      "endPort below port",
      k8s({ ingress: [{ ports: [{ port: 100, endPort: 99 }] }] }),
      ["spec.ingress[0].ports[0].endPort"],
    ],
    [
      "endPort with named port",
      k8s({ ingress: [{ ports: [{ port: "http", endPort: 99 }] }] }),
      ["spec.ingress[0].ports[0].endPort"],
    ],
    [
      "endPort without port",
      k8s({ ingress: [{ ports: [{ endPort: 99 }] }] }),
      ["spec.ingress[0].ports[0].endPort"],
    ],
    ["bad policyType", k8s({ policyTypes: ["ingress"] }), ["spec.policyTypes[0]"]],
    ["duplicate policyType", k8s({ policyTypes: ["Ingress", "Ingress"] }), ["spec.policyTypes[1]"]],
    [
      "In without values",
      k8s({ podSelector: { matchExpressions: [{ key: "a", operator: "In", values: [] }] } }),
      ["spec.podSelector.matchExpressions[0].values"],
    ],
    [
      "Exists with values",
      k8s({ podSelector: { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] } }),
      ["spec.podSelector.matchExpressions[0].values"],
    ],
    [
      "bad operator",
      k8s({ podSelector: { matchExpressions: [{ key: "a", operator: "Equals", values: ["x"] }] } }),
      ["spec.podSelector.matchExpressions[0].operator"],
    ],
    [
      "bad label value",
      k8s({ ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "a b" } } }] }] }),
      ['spec.ingress[0].from[0].namespaceSelector.matchLabels["team"]'],
    ],
    [
      "bad label key",
      k8s({ podSelector: { matchLabels: { "a b": "x" } } }),
      ['spec.podSelector.matchLabels["a b"]'],
    ],
    [
      "selector field typo",
      k8s({ podSelector: { matchLabel: { a: "b" } } }),
      ["spec.podSelector.matchLabel"],
    ],
  ];
  for (const [name, input, want] of bad) {
    void it(name, () => {
      const got = convertK8sNetworkPolicy(input);
      assert.equal(got.resource, undefined);
      assert.deepEqual(got.issues.map((i) => i.path).sort(), [...want].sort(), JSON.stringify(got.issues));
    });
  }

  void it("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (spec, port) => {
        convertK8sNetworkPolicy(k8s(spec));
        convertK8sNetworkPolicy(k8s({ ingress: [{ from: [spec], ports: [port] }], egress: spec }));
      }),
      { numRuns: 300 },
    );
  });
});

void describe("k8sSelectorToCalico", () => {
  const cases: [string, Parameters<typeof k8sSelectorToCalico>, string][] = [
    ["absent pod selector", [undefined, "pod"], K8S],
    ["absent namespace selector", [undefined, "namespace"], ""],
    ["empty namespace selector", [{}, "namespace"], "all()"],
    ["labels sorted", [{ matchLabels: { z: "1", a: "2" } }, "namespace"], "a == '2' && z == '1'"],
  ];
  for (const [name, args, want] of cases) {
    void it(name, () => {
      const got = k8sSelectorToCalico(...args);
      assert.equal(got, want);
      if (got !== "") parseSelector(got);
    });
  }
});

void describe("simplifyPorts (Calico's SimplifyPorts)", () => {
  const r = (min: number, max = min) => ({ kind: "range" as const, min, max });
  const n = (name: string) => ({ kind: "named" as const, name });
  const cases: [string, Parameters<typeof simplifyPorts>[0], ReturnType<typeof simplifyPorts>][] = [
    ["empty", [], []],
    ["one", [r(80)], [r(80)]],
    ["named first, numeric merged", [r(80), r(81), r(82), r(9090), n("foo")], [n("foo"), r(80, 82), r(9090)]],
    ["one numeric keeps input order", [r(80), n("foo")], [r(80), n("foo")]],
    ["duplicates and overlaps merge", [r(10, 20), r(15, 25), r(20)], [r(10, 25)]],
    ["sorted output", [r(9000), r(22)], [r(22), r(9000)]],
  ];
  for (const [name, input, want] of cases) void it(name, () => assert.deepEqual(simplifyPorts(input), want));
});
