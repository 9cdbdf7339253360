import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Issues } from "../check.js";
import { findKind } from "../registry.js";
import { API_VERSION, type AnyResource } from "../resource.js";
import type { KindDef } from "./kind.js";
import {
  GLOBAL_NETWORK_POLICY,
  inferPolicyTypes,
  NETWORK_POLICY,
  STAGED_GLOBAL_NETWORK_POLICY,
  STAGED_KUBERNETES_NETWORK_POLICY,
  STAGED_NETWORK_POLICY,
} from "./network-policy.js";
import { POLICY_KINDS } from "./policy.js";

function res(
  kind: string,
  name: string,
  spec: unknown,
  namespace?: string,
  labels?: Record<string, string>,
): AnyResource {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(labels !== undefined ? { labels } : {}),
    },
    spec: spec as Record<string, unknown>,
  };
}

function paths(def: KindDef, r: AnyResource): string[] {
  const issues = new Issues();
  def.validate(r, issues);
  return issues.list.map((i) => i.path).sort();
}

const np = (spec: unknown, name = "allow-web") => res("NetworkPolicy", name, spec, "production");
const gnp = (spec: unknown, name = "allow-web") => res("GlobalNetworkPolicy", name, spec);

// Examples from Calico's reference documentation, unchanged.
const DOC_EXAMPLES: [KindDef, AnyResource][] = [
  [
    NETWORK_POLICY,
    res(
      "NetworkPolicy",
      "allow-tcp-6379",
      {
        selector: "role == 'database'",
        types: ["Ingress", "Egress"],
        ingress: [
          {
            action: "Allow",
            metadata: { annotations: { from: "frontend", to: "database" } },
            protocol: "TCP",
            source: { selector: "role == 'frontend'" },
            destination: { ports: [6379] },
          },
        ],
        egress: [{ action: "Allow" }],
      },
      "production",
    ),
  ],
  [
    GLOBAL_NETWORK_POLICY,
    gnp(
      {
        selector: "role == 'database'",
        types: ["Ingress", "Egress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "role == 'frontend'" },
            destination: { ports: [6379] },
          },
        ],
        egress: [{ action: "Allow" }],
      },
      "allow-tcp-port-6379",
    ),
  ],
  [
    GLOBAL_NETWORK_POLICY,
    gnp(
      {
        selector: "role == 'k8s-worker'",
        order: 0,
        doNotTrack: true,
        applyOnForward: true,
        ingress: [
          { action: "Allow", source: { nets: ["198.18.0.0/15"] } },
          { action: "Allow", protocol: "TCP", destination: { ports: [22, "6443:6444"] } },
        ],
        egress: [{ action: "Allow", destination: { nets: ["198.18.0.0/15"] } }],
      },
      "allow-cluster-internal-ingress",
    ),
  ],
  [
    GLOBAL_NETWORK_POLICY,
    gnp(
      {
        order: 10,
        preDNAT: true,
        applyOnForward: true,
        selector: "has(host-endpoint)",
        ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: ["30000:32767"] } }],
      },
      "deny-nodeports",
    ),
  ],
  [
    GLOBAL_NETWORK_POLICY,
    gnp(
      {
        tier: "security",
        order: 100,
        namespaceSelector: "has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system'}",
        types: ["Egress"],
        egress: [
          {
            action: "Allow",
            protocol: "UDP",
            destination: {
              selector: "k8s-app == 'kube-dns'",
              namespaceSelector: "projectcalico.org/name == 'kube-system'",
              ports: [53],
            },
          },
          { action: "Pass" },
        ],
        performanceHints: ["AssumeNeededOnEveryNode"],
      },
      "security.allow-dns",
    ),
  ],
  [
    STAGED_NETWORK_POLICY,
    res(
      "StagedNetworkPolicy",
      "default.allow-tcp-6379",
      {
        tier: "default",
        selector: "role == 'database'",
        types: ["Ingress", "Egress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "role == 'frontend'" },
            destination: { ports: [6379] },
          },
        ],
        egress: [{ action: "Allow" }],
      },
      "production",
    ),
  ],
  [
    STAGED_GLOBAL_NETWORK_POLICY,
    res("StagedGlobalNetworkPolicy", "allow-tcp-6379", {
      stagedAction: "Set",
      selector: "role == 'database'",
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: "role == 'frontend'" },
          destination: { ports: [6379] },
        },
      ],
    }),
  ],
  [
    STAGED_KUBERNETES_NETWORK_POLICY,
    res(
      "StagedKubernetesNetworkPolicy",
      "test-network-policy",
      {
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
      },
      "default",
    ),
  ],
];

void describe("policy kinds accept Calico's documented examples", () => {
  for (const [def, r] of DOC_EXAMPLES) {
    void it(`${def.kind} ${r.metadata.name}`, () => {
      assert.equal(def.nameProblem?.(r.metadata.name), undefined);
      assert.deepEqual(paths(def, r), []);
      // Defaulting keeps them valid.
      assert.deepEqual(paths(def, def.withDefaults(r)), []);
    });
  }
});

void describe("policy names", () => {
  const cases: [KindDef, string, boolean][] = [
    [NETWORK_POLICY, "thing", true],
    [NETWORK_POLICY, "tier1.thing", true],
    [NETWORK_POLICY, "t.h.i.ng", false],
    [NETWORK_POLICY, "tHiNg", false],
    [NETWORK_POLICY, "knp.default.thing", true],
    [NETWORK_POLICY, "knp.default.a.b.c", true],
    [NETWORK_POLICY, "ossg.default.thing", true],
    [NETWORK_POLICY, "t~!s", false],
    [NETWORK_POLICY, "a".repeat(253), true],
    [NETWORK_POLICY, "a".repeat(254), false],
    [GLOBAL_NETWORK_POLICY, "thing", true],
    [GLOBAL_NETWORK_POLICY, "security.thing", true],
    [GLOBAL_NETWORK_POLICY, "t.h.i.ng", false],
    [GLOBAL_NETWORK_POLICY, "knp.default.thing", false],
    [GLOBAL_NETWORK_POLICY, "-thing", false],
    [STAGED_NETWORK_POLICY, "knp.default.thing", true],
    [STAGED_GLOBAL_NETWORK_POLICY, "a.b.c", false],
  ];
  for (const [def, name, ok] of cases) {
    void it(`${def.kind} ${name.length > 20 ? `${name.slice(0, 10)}…(${name.length})` : name} ${ok ? "accepted" : "rejected"}`, () => {
      assert.equal(def.nameProblem?.(name) === undefined, ok);
    });
  }
});

void describe("policy spec validation", () => {
  const bad: [string, KindDef, AnyResource, string[]][] = [
    ["spec not an object", NETWORK_POLICY, np("x"), ["spec"]],
    ["unknown spec field", NETWORK_POLICY, np({ selectr: "a == 'b'" }), ["spec.selectr"]],
    ["GNP-only field on NP", NETWORK_POLICY, np({ doNotTrack: true }), ["spec.doNotTrack"]],
    [
      "namespaceSelector on NP",
      NETWORK_POLICY,
      np({ namespaceSelector: "all()" }),
      ["spec.namespaceSelector"],
    ],
    ["stagedAction on NP", NETWORK_POLICY, np({ stagedAction: "Set" }), ["spec.stagedAction"]],
    ["tier with dot", NETWORK_POLICY, np({ tier: "a.b" }), ["spec.tier"]],
    ["tier upper case", NETWORK_POLICY, np({ tier: "Security" }), ["spec.tier"]],
    ["order string", NETWORK_POLICY, np({ order: "100" }), ["spec.order"]],
    ["bad selector", NETWORK_POLICY, np({ selector: "role = 'db'" }), ["spec.selector"]],
    ["global() selector", NETWORK_POLICY, np({ selector: "global()" }), ["spec.selector"]],
    [
      "global() SA selector",
      NETWORK_POLICY,
      np({ serviceAccountSelector: "global()" }),
      ["spec.serviceAccountSelector"],
    ],
    [
      "global() GNP namespaceSelector",
      GLOBAL_NETWORK_POLICY,
      gnp({ namespaceSelector: "global()" }),
      ["spec.namespaceSelector"],
    ],
    ["repeated type", NETWORK_POLICY, np({ types: ["Egress", "Egress"] }), ["spec.types[1]"]],
    ["unexpected type", NETWORK_POLICY, np({ types: ["unexpected"] }), ["spec.types[0]"]],
    ["lower-case type", GLOBAL_NETWORK_POLICY, gnp({ types: ["ingress"] }), ["spec.types[0]"]],
    [
      "three types",
      NETWORK_POLICY,
      np({ types: ["Ingress", "Egress", "Ingress"] }),
      ["spec.types", "spec.types[2]"],
    ],
    ["types not a list", NETWORK_POLICY, np({ types: "Ingress" }), ["spec.types"]],
    ["ingress not a list", NETWORK_POLICY, np({ ingress: { action: "Allow" } }), ["spec.ingress"]],
    [
      "rule problems carry the full path",
      NETWORK_POLICY,
      np({
        ingress: [
          { action: "Allow" },
          { action: "Allow" },
          { action: "Allow", protocol: "UDP", destination: { ports: ["x y"] } },
        ],
      }),
      ["spec.ingress[2].destination.ports[0]"],
    ],
    [
      "HTTP in egress",
      NETWORK_POLICY,
      np({ egress: [{ action: "Allow", http: { methods: ["GET"] } }] }),
      ["spec.egress[0].http"],
    ],
    [
      "service in ingress destination",
      NETWORK_POLICY,
      np({ ingress: [{ action: "Allow", destination: { services: { name: "s" } } }] }),
      ["spec.ingress[0].destination.services"],
    ],
    [
      "service in egress source",
      GLOBAL_NETWORK_POLICY,
      gnp({ egress: [{ action: "Allow", source: { services: { name: "s", namespace: "d" } } }] }),
      ["spec.egress[0].source.services"],
    ],
    [
      "GNP service needs namespace",
      GLOBAL_NETWORK_POLICY,
      gnp({ egress: [{ action: "Allow", destination: { services: { name: "s" } } }] }),
      ["spec.egress[0].destination.services.namespace"],
    ],
    [
      "bad performance hint",
      NETWORK_POLICY,
      np({ performanceHints: ["GoFast"] }),
      ["spec.performanceHints[0]"],
    ],
    [
      "duplicate performance hint",
      NETWORK_POLICY,
      np({ performanceHints: ["AssumeNeededOnEveryNode", "AssumeNeededOnEveryNode"] }),
      ["spec.performanceHints[1]"],
    ],
    [
      "preDNAT and doNotTrack",
      GLOBAL_NETWORK_POLICY,
      gnp({ preDNAT: true, doNotTrack: true, applyOnForward: true }),
      ["spec.preDNAT"],
    ],
    [
      "preDNAT with egress rules",
      GLOBAL_NETWORK_POLICY,
      gnp({ preDNAT: true, applyOnForward: true, egress: [{ action: "Allow" }] }),
      ["spec.egress"],
    ],
    [
      "preDNAT with Egress type",
      GLOBAL_NETWORK_POLICY,
      gnp({ preDNAT: true, applyOnForward: true, types: ["Ingress", "Egress"] }),
      ["spec.types"],
    ],
    [
      "preDNAT without applyOnForward",
      GLOBAL_NETWORK_POLICY,
      gnp({ preDNAT: true }),
      ["spec.applyOnForward"],
    ],
    [
      "doNotTrack without applyOnForward",
      GLOBAL_NETWORK_POLICY,
      gnp({ doNotTrack: true, applyOnForward: false }),
      ["spec.applyOnForward"],
    ],
    ["doNotTrack not a bool", GLOBAL_NETWORK_POLICY, gnp({ doNotTrack: "yes" }), ["spec.doNotTrack"]],
    [
      "bad stagedAction",
      STAGED_NETWORK_POLICY,
      res("StagedNetworkPolicy", "p", { stagedAction: "Remove" }, "ns"),
      ["spec.stagedAction"],
    ],
    [
      "staged Delete with rules",
      STAGED_NETWORK_POLICY,
      res(
        "StagedNetworkPolicy",
        "p",
        { stagedAction: "Delete", tier: "t1", selector: "all()", ingress: [{ action: "Allow" }] },
        "ns",
      ),
      ["spec.ingress", "spec.selector"],
    ],
    [
      "staged global Delete with order",
      STAGED_GLOBAL_NETWORK_POLICY,
      res("StagedGlobalNetworkPolicy", "p", { stagedAction: "Delete", order: 5, applyOnForward: true }),
      ["spec.applyOnForward", "spec.order"],
    ],
    [
      "staged global checks GNP rules",
      STAGED_GLOBAL_NETWORK_POLICY,
      res("StagedGlobalNetworkPolicy", "p", { stagedAction: "Learn", preDNAT: true }),
      ["spec.applyOnForward"],
    ],
    [
      "SKNP bad stagedAction",
      STAGED_KUBERNETES_NETWORK_POLICY,
      res("StagedKubernetesNetworkPolicy", "p", { stagedAction: "x" }, "ns"),
      ["spec.stagedAction"],
    ],
    [
      "SKNP delete with podSelector",
      STAGED_KUBERNETES_NETWORK_POLICY,
      res(
        "StagedKubernetesNetworkPolicy",
        "p",
        { stagedAction: "Delete", podSelector: { matchLabels: { a: "b" } } },
        "ns",
      ),
      ["spec.podSelector"],
    ],
    [
      "SKNP bad peer",
      STAGED_KUBERNETES_NETWORK_POLICY,
      res(
        "StagedKubernetesNetworkPolicy",
        "p",
        { ingress: [{ from: [{ ipBlock: { cidr: "nope" } }] }] },
        "ns",
      ),
      ["spec.ingress[0].from[0].ipBlock.cidr"],
    ],
    [
      "SKNP calico field",
      STAGED_KUBERNETES_NETWORK_POLICY,
      res("StagedKubernetesNetworkPolicy", "p", { selector: "all()" }, "ns"),
      ["spec.selector"],
    ],
  ];
  for (const [name, def, r, want] of bad) {
    void it(name, () => assert.deepEqual(paths(def, r), [...want].sort()));
  }

  const good: [string, KindDef, AnyResource][] = [
    ["empty spec", NETWORK_POLICY, np({})],
    ["missing spec", NETWORK_POLICY, { ...np({}), spec: undefined as unknown as Record<string, unknown> }],
    [
      "egress rules but types [Ingress] (Calico allows it)",
      NETWORK_POLICY,
      np({ types: ["Ingress"], egress: [{ action: "Allow" }] }),
    ],
    [
      "ingress rules but types [Egress]",
      GLOBAL_NETWORK_POLICY,
      gnp({ types: ["Egress"], ingress: [{ action: "Allow" }] }),
    ],
    ["empty types", NETWORK_POLICY, np({ types: [] })],
    ["applyOnForward alone", GLOBAL_NETWORK_POLICY, gnp({ applyOnForward: true })],
    [
      "preDNAT with Ingress type",
      GLOBAL_NETWORK_POLICY,
      gnp({ preDNAT: true, applyOnForward: true, types: ["Ingress"] }),
    ],
    [
      "staged Delete with only tier",
      STAGED_NETWORK_POLICY,
      res("StagedNetworkPolicy", "p", { stagedAction: "Delete", tier: "t1" }, "ns"),
    ],
    [
      "staged Delete with empty lists",
      STAGED_GLOBAL_NETWORK_POLICY,
      res("StagedGlobalNetworkPolicy", "p", { stagedAction: "Delete", ingress: [], doNotTrack: false }),
    ],
    [
      "SKNP delete",
      STAGED_KUBERNETES_NETWORK_POLICY,
      res("StagedKubernetesNetworkPolicy", "p", { stagedAction: "Delete" }, "ns"),
    ],
    ["negative and fractional order", NETWORK_POLICY, np({ order: -1.5 })],
    ["non-default tier", NETWORK_POLICY, np({ tier: "security" }, "security.allow")],
    ["modern name in non-default tier", NETWORK_POLICY, np({ tier: "security" }, "allow")],
  ];
  for (const [name, def, r] of good) {
    void it(`accepts ${name}`, () => assert.deepEqual(paths(def, r), []));
  }
});

void describe("types inference (§2.12)", () => {
  const cases: [string, { ingress?: unknown[]; egress?: unknown[] }, string[]][] = [
    ["no rules", {}, ["Ingress"]],
    ["ingress only", { ingress: [{}] }, ["Ingress"]],
    ["egress only", { egress: [{}] }, ["Egress"]],
    ["both", { ingress: [{}], egress: [{}] }, ["Ingress", "Egress"]],
    ["empty lists", { ingress: [], egress: [] }, ["Ingress"]],
  ];
  for (const [name, spec, want] of cases) void it(name, () => assert.deepEqual(inferPolicyTypes(spec), want));
});

void describe("policy withDefaults", () => {
  void it("fills tier, types and the tier label, normalises rules", () => {
    const out = NETWORK_POLICY.withDefaults(
      res(
        "NetworkPolicy",
        "p",
        {
          selector: "app == 'x'",
          egress: [{ action: "Allow", protocol: "17", destination: { ports: ["53"], nets: [] }, source: {} }],
        },
        "ns",
        { app: "x" },
      ),
    );
    assert.deepEqual(out, {
      apiVersion: API_VERSION,
      kind: "NetworkPolicy",
      metadata: { name: "p", namespace: "ns", labels: { app: "x", "projectcalico.org/tier": "default" } },
      spec: {
        selector: "app == 'x'",
        egress: [{ action: "Allow", protocol: 17, destination: { ports: [53] } }],
        tier: "default",
        types: ["Egress"],
      },
    });
  });

  void it("keeps explicit types and tier", () => {
    const out = GLOBAL_NETWORK_POLICY.withDefaults(
      gnp({ tier: "security", types: ["Ingress", "Egress"], ingress: [{ action: "Deny" }] }, "security.p"),
    );
    assert.deepEqual(out.spec.types, ["Ingress", "Egress"]);
    assert.equal(out.spec.tier, "security");
    assert.equal(out.metadata.labels?.["projectcalico.org/tier"], "security");
  });

  void it("infers [Ingress, Egress] when both rule lists are present", () => {
    const out = GLOBAL_NETWORK_POLICY.withDefaults(
      gnp({ ingress: [{ action: "Deny" }], egress: [{ action: "Allow" }] }),
    );
    assert.deepEqual(out.spec.types, ["Ingress", "Egress"]);
  });

  void it("drops empty rule lists and infers from what remains", () => {
    const out = NETWORK_POLICY.withDefaults(np({ ingress: [], egress: [{ action: "Allow" }] }));
    assert.equal("ingress" in out.spec, false);
    assert.deepEqual(out.spec.types, ["Egress"]);
  });

  void it("does not infer types for a staged Delete", () => {
    const out = STAGED_NETWORK_POLICY.withDefaults(
      res("StagedNetworkPolicy", "p", { stagedAction: "Delete" }, "ns"),
    );
    assert.deepEqual(out.spec, { stagedAction: "Delete", tier: "default" });
    assert.deepEqual(paths(STAGED_NETWORK_POLICY, out), []);
  });

  void it("does not modify its input", () => {
    const input = np({ ingress: [{ action: "Allow", protocol: "6" }] });
    const copy = structuredClone(input);
    NETWORK_POLICY.withDefaults(input);
    assert.deepEqual(input, copy);
  });

  void it("is idempotent", () => {
    const once = NETWORK_POLICY.withDefaults(
      np({ egress: [{ action: "Allow", protocol: "TCP", destination: { ports: ["80:80"] } }] }),
    );
    assert.deepEqual(NETWORK_POLICY.withDefaults(once), once);
  });
});

void describe("kind registry names", () => {
  const names: [string, string][] = [
    ["networkpolicy", "NetworkPolicy"],
    ["networkpolicies", "NetworkPolicy"],
    ["policy", "NetworkPolicy"],
    ["policies", "NetworkPolicy"],
    ["np", "NetworkPolicy"],
    ["pol", "NetworkPolicy"],
    ["pols", "NetworkPolicy"],
    ["gnp", "GlobalNetworkPolicy"],
    ["gnps", "GlobalNetworkPolicy"],
    ["GlobalNetworkPolicies", "GlobalNetworkPolicy"],
    ["snp", "StagedNetworkPolicy"],
    ["stagedpolicy", "StagedNetworkPolicy"],
    ["sgnp", "StagedGlobalNetworkPolicy"],
    ["sknp", "StagedKubernetesNetworkPolicy"],
    ["tier", "Tier"],
    ["tiers", "Tier"],
    ["pro", "Profile"],
    ["profiles", "Profile"],
    ["netsets", "NetworkSet"],
    ["networksets", "NetworkSet"],
    ["gnetsets", "GlobalNetworkSet"],
    ["globalnetworkset", "GlobalNetworkSet"],
  ];
  for (const [name, kind] of names)
    void it(`${name} → ${kind}`, () => assert.equal(findKind(name)?.kind, kind));

  void it("namespaced kinds are the namespaced ones (§2.0)", () => {
    assert.deepEqual(
      [
        NETWORK_POLICY,
        GLOBAL_NETWORK_POLICY,
        STAGED_NETWORK_POLICY,
        STAGED_GLOBAL_NETWORK_POLICY,
        STAGED_KUBERNETES_NETWORK_POLICY,
      ].map((k) => [k.plural, k.namespaced]),
      [
        ["networkpolicies", true],
        ["globalnetworkpolicies", false],
        ["stagednetworkpolicies", true],
        ["stagedglobalnetworkpolicies", false],
        ["stagedkubernetesnetworkpolicies", true],
      ],
    );
  });
});

void describe("robustness", () => {
  void it("validate never throws on arbitrary specs, for every policy-side kind", () => {
    const spec = fc.oneof(
      fc.anything(),
      fc.dictionary(
        fc.constantFrom(
          "tier",
          "order",
          "selector",
          "types",
          "ingress",
          "egress",
          "stagedAction",
          "nets",
          "podSelector",
          "labelsToApply",
          "preDNAT",
        ),
        fc.anything(),
      ),
      fc.record({
        ingress: fc.array(
          fc.dictionary(
            fc.constantFrom("action", "protocol", "source", "destination", "icmp", "http", "ipVersion"),
            fc.anything(),
          ),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...POLICY_KINDS), spec, (def, s) => {
        const r = res(def.kind, "p", s, def.namespaced ? "ns" : undefined);
        const issues = new Issues();
        def.validate(r, issues);
        if (issues.ok) def.withDefaults(r);
      }),
      { numRuns: 500 },
    );
  });
});
