/**
 * Policy semantics (reference/calico.md §1.6, §2.12, §2.13) as verdict tables over the whole
 * pipeline without a kernel: YAML resources → CalcGraph → LinuxDataplane(FakeNft) → tracer.
 * Each table lists (from, to, protocol, port) → accept/drop and is checked for IPv4 and IPv6
 * (unless the semantic is family-specific). The real-kernel layer above this is
 * test/policy-traffic.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Pipeline,
  checkTable,
  defaultConfig,
  namespaceProfileYaml,
  workloadYaml,
  type Family,
  type Row,
} from "./helpers/pipeline.js";

const doc = (o: unknown): string => `---\n${JSON.stringify(o)}\n`;
const gnp = (name: string, spec: Record<string, unknown>, labels?: Record<string, string>): string =>
  doc({
    apiVersion: "projectcalico.org/v3",
    kind: "GlobalNetworkPolicy",
    metadata: { name, ...(labels === undefined ? {} : { labels }) },
    spec,
  });
const np = (ns: string, name: string, spec: Record<string, unknown>): string =>
  doc({ apiVersion: "projectcalico.org/v3", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec });
const tier = (name: string, order: number, defaultAction?: "Deny" | "Pass"): string =>
  doc({
    apiVersion: "projectcalico.org/v3",
    kind: "Tier",
    metadata: { name },
    spec: { order, ...(defaultAction === undefined ? {} : { defaultAction }) },
  });

/** Namespaces shop (labels team=a) and web (team=b); local a, b (shop), c (web); remote r (shop, h2). */
const BASE =
  namespaceProfileYaml("shop", { team: "a" }) +
  namespaceProfileYaml("web", { team: "b" }) +
  workloadYaml("a", { ns: "shop", host: 1, labels: { app: "a", role: "client" } }) +
  workloadYaml("b", { ns: "shop", host: 2, labels: { app: "b", role: "db" } }) +
  workloadYaml("c", { ns: "web", host: 3, labels: { app: "c", role: "client" } }) +
  workloadYaml("r", { ns: "shop", host: 4, net: 1, node: "h2", labels: { app: "r", role: "client" } });

async function expectTable(
  yaml: string,
  rows: Row[],
  families: Family[] = [4, 6],
  cfg = defaultConfig(),
): Promise<Pipeline> {
  const p = await Pipeline.of(BASE + yaml, cfg);
  const bad = checkTable(p, rows, families);
  assert.deepEqual(
    bad,
    [],
    `${bad.length} row(s) wrong:\n${bad.join("\n\n")}\nproblems: ${p.problems.join("; ")}`,
  );
  return p;
}

const hep = (
  name: string,
  iface: string,
  labels: Record<string, string> = { hep: "yes" },
  profiles: string[] = [],
): string =>
  doc({
    apiVersion: "projectcalico.org/v3",
    kind: "HostEndpoint",
    metadata: { name, labels },
    spec: { node: "h1", interfaceName: iface, expectedIPs: ["198.18.0.1", "fd00::1"], profiles },
  });
const profile = (name: string, spec: Record<string, unknown>): string =>
  doc({ apiVersion: "projectcalico.org/v3", kind: "Profile", metadata: { name }, spec });
const toB = { selector: "app == 'b'", types: ["Ingress"] };

describe("pipeline verdicts: profiles and default deny", () => {
  it("allows everything via the namespace profile when no policy selects anyone", async () => {
    await expectTable("", [
      ["a", "b", "tcp", 80, "accept"],
      ["b", "a", "udp", 53, "accept"],
      ["a", "c", "icmp", { type: 8 }, "accept"],
      ["c", "a", "tcp", 5432, "accept"],
      ["r", "a", "tcp", 80, "accept"],
      ["a", "ext", "tcp", 443, "accept"],
    ]);
  });
});

describe("pipeline verdicts: selection and types", () => {
  it("denies implicitly once a policy selects the endpoint in a direction", async () => {
    await expectTable(
      gnp("db", {
        ...toB,
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "role == 'client'" },
            destination: { ports: [5432] },
          },
        ],
      }),
      [
        ["a", "b", "tcp", 5432, "accept"],
        ["a", "b", "tcp", 80, "drop"],
        ["c", "b", "tcp", 5432, "accept"], // a GNP rule selector spans namespaces
        ["r", "b", "tcp", 5432, "accept"], // a remote client
        ["ext", "b", "tcp", 5432, "drop"],
        ["b", "a", "tcp", 80, "accept"], // b's egress is not selected
        ["a", "c", "udp", 53, "accept"],
      ],
    );
  });

  it("infers Egress for a policy with only egress rules: ingress stays with profiles", async () => {
    await expectTable(
      gnp("a-out", {
        selector: "app == 'a'",
        egress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
      }),
      [
        ["a", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 81, "drop"],
        ["a", "ext", "udp", 53, "drop"],
        ["b", "a", "tcp", 81, "accept"],
        ["c", "a", "udp", 53, "accept"],
      ],
    );
  });

  it("types [Ingress, Egress] without egress rules denies all egress", async () => {
    await expectTable(
      gnp("a-both", { selector: "app == 'a'", types: ["Ingress", "Egress"], ingress: [{ action: "Allow" }] }),
      [
        ["a", "b", "tcp", 80, "drop"],
        ["a", "c", "icmp", { type: 8 }, "drop"],
        ["b", "a", "tcp", 80, "accept"],
      ],
    );
  });

  it("types [Egress] with ingress rules ignores the ingress rules", async () => {
    await expectTable(
      gnp("a-eg", {
        selector: "app == 'a'",
        types: ["Egress"],
        ingress: [{ action: "Deny" }],
        egress: [{ action: "Allow" }],
      }),
      [
        ["b", "a", "tcp", 80, "accept"],
        ["a", "b", "tcp", 80, "accept"],
      ],
    );
  });
});

describe("pipeline verdicts: tiers", () => {
  it("evaluates tiers in order; Pass skips to the next tier", async () => {
    await expectTable(
      tier("sec", 100) +
        gnp("sec-guard", {
          tier: "sec",
          selector: "all()",
          types: ["Ingress"],
          ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [23] } }, { action: "Pass" }],
        }) +
        gnp("b-web", {
          ...toB,
          ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
        }),
      [
        ["a", "b", "tcp", 23, "drop"],
        ["a", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 81, "drop"], // default tier's end-of-tier drop
        ["a", "c", "tcp", 23, "drop"],
        ["a", "c", "tcp", 81, "accept"], // passed, no default-tier policy for c: profile
      ],
    );
  });

  it("orders tiers by order, not by name", async () => {
    const y = (zOrder: number): string =>
      tier("aaa", 200) +
      tier("zzz", zOrder) +
      gnp("allow80", {
        tier: "aaa",
        ...toB,
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }, { action: "Pass" }],
      }) +
      gnp("deny80", {
        tier: "zzz",
        ...toB,
        ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }, { action: "Pass" }],
      });
    await expectTable(y(100), [
      ["a", "b", "tcp", 80, "drop"],
      ["a", "b", "tcp", 81, "accept"],
    ]);
    await expectTable(y(300), [
      ["a", "b", "tcp", 80, "accept"],
      ["a", "b", "tcp", 81, "accept"],
    ]);
  });

  it("end of tier: Deny drops, defaultAction Pass goes on", async () => {
    const y = (d: "Deny" | "Pass"): string =>
      tier("sec", 100, d) +
      gnp("sec-b", {
        tier: "sec",
        ...toB,
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
      });
    await expectTable(y("Deny"), [
      ["a", "b", "tcp", 80, "accept"],
      ["a", "b", "tcp", 81, "drop"],
      ["a", "c", "tcp", 81, "accept"],
    ]);
    await expectTable(y("Pass"), [
      ["a", "b", "tcp", 80, "accept"],
      ["a", "b", "tcp", 81, "accept"],
    ]);
  });

  it("a tier with only staged policies has no end-of-tier drop; staged policies never enforce", async () => {
    const staged = (name: string, t: string): string =>
      doc({
        apiVersion: "projectcalico.org/v3",
        kind: "StagedGlobalNetworkPolicy",
        metadata: { name },
        spec: {
          tier: t,
          selector: "all()",
          types: ["Ingress", "Egress"],
          ingress: [{ action: "Deny" }],
          egress: [{ action: "Deny" }],
        },
      });
    await expectTable(tier("sec", 100) + staged("st-sec", "sec") + staged("st-default", "default"), [
      ["a", "b", "tcp", 80, "accept"],
      ["b", "c", "udp", 53, "accept"],
      ["r", "a", "icmp", { type: 8 }, "accept"],
    ]);
  });

  it("orders policies by order, then name; no order is last", async () => {
    const deny = { ...toB, ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }] };
    const allow = { ...toB, ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }] };
    await expectTable(gnp("aaa", { ...deny, order: 10 }) + gnp("bbb", { ...allow, order: 10 }), [
      ["a", "b", "tcp", 80, "drop"],
    ]);
    await expectTable(gnp("aaa", { ...allow, order: 10 }) + gnp("bbb", { ...deny, order: 10 }), [
      ["a", "b", "tcp", 80, "accept"],
    ]);
    await expectTable(gnp("aaa", { ...deny, order: 20 }) + gnp("bbb", { ...allow, order: 10 }), [
      ["a", "b", "tcp", 80, "accept"],
    ]);
    await expectTable(gnp("aaa", deny) + gnp("zzz", { ...allow, order: 1000 }), [
      ["a", "b", "tcp", 80, "accept"],
    ]);
  });

  it("takes the first matching rule: Deny before Allow, Log continues", async () => {
    await expectTable(
      gnp("p", {
        ...toB,
        ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }, { action: "Allow" }],
      }),
      [
        ["a", "b", "tcp", 80, "drop"],
        ["a", "b", "tcp", 81, "accept"],
      ],
    );
    await expectTable(
      gnp("p", {
        ...toB,
        ingress: [{ action: "Allow" }, { action: "Deny", protocol: "TCP", destination: { ports: [80] } }],
      }),
      [["a", "b", "tcp", 80, "accept"]],
    );
    const p = await expectTable(
      gnp("p", {
        ...toB,
        ingress: [{ action: "Log" }, { action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
      }),
      [
        ["a", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 81, "drop"],
      ],
    );
    const v = p.verdict("a", "b", 4, "tcp", 80);
    assert.ok(
      v.traces.some((t) => t.result.logs.some((l) => l.startsWith("calico-packet"))),
      v.explanation,
    );
  });
});

describe("pipeline verdicts: profiles", () => {
  it("applies profiles in order, and a missing profile's stand-in denies", async () => {
    const y =
      profile("no80", { ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }] }) +
      workloadYaml("d", { ns: "shop", host: 5, profiles: ["no80", "kns.shop"] }) +
      workloadYaml("e", { ns: "shop", host: 6, profiles: ["missing", "kns.shop"] }) +
      workloadYaml("f", { ns: "shop", host: 7, profiles: ["kns.shop", "missing"] }) +
      workloadYaml("g", { ns: "shop", host: 8, profiles: [] });
    await expectTable(y, [
      ["a", "d", "tcp", 80, "drop"],
      ["a", "d", "tcp", 81, "accept"],
      ["d", "a", "tcp", 80, "accept"],
      ["a", "e", "tcp", 81, "drop"],
      ["e", "a", "tcp", 81, "drop"],
      ["a", "f", "tcp", 81, "accept"],
      ["a", "g", "tcp", 81, "drop"], // no profile matched
      ["g", "a", "tcp", 81, "drop"],
    ]);
  });
});

describe("pipeline verdicts: namespaces and service accounts", () => {
  it("scopes a NetworkPolicy's selectors to its namespace", async () => {
    await expectTable(
      np("shop", "iso", {
        selector: "all()",
        ingress: [{ action: "Allow", source: { selector: "role == 'client'" } }],
      }),
      [
        ["a", "b", "tcp", 80, "accept"],
        ["r", "b", "tcp", 80, "accept"],
        ["c", "b", "tcp", 80, "drop"], // client, but in web
        ["c", "a", "tcp", 80, "drop"],
        ["b", "a", "tcp", 80, "drop"], // not a client
        ["b", "c", "tcp", 80, "accept"], // c (web) is not selected
      ],
    );
  });

  it("an NP rule with only notSelector is scoped to its namespace; notSelector itself is not", async () => {
    await expectTable(
      np("shop", "not", {
        selector: "app == 'b'",
        ingress: [{ action: "Allow", source: { notSelector: "role == 'client'" } }],
      }),
      [
        ["a", "b", "tcp", 80, "drop"],
        ["c", "b", "tcp", 80, "drop"], // outside shop
        ["ext", "b", "tcp", 80, "drop"],
      ],
    );
  });

  it("namespaceSelector in a rule and at policy level", async () => {
    await expectTable(
      gnp("from-b-ns", {
        ...toB,
        ingress: [{ action: "Allow", source: { namespaceSelector: "team == 'b'" } }],
      }),
      [
        ["c", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 80, "drop"],
      ],
    );
    await expectTable(
      gnp("team-a", {
        namespaceSelector: "team == 'a'",
        selector: "all()",
        types: ["Ingress"],
        ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }, { action: "Allow" }],
      }),
      [
        ["c", "a", "tcp", 80, "drop"],
        ["c", "a", "tcp", 81, "accept"],
        ["a", "c", "tcp", 80, "accept"], // c is in team b's namespace
      ],
    );
    await expectTable(
      np("shop", "ns-rule", {
        selector: "app == 'b'",
        ingress: [
          { action: "Allow", source: { namespaceSelector: "team == 'b'", selector: "role == 'client'" } },
        ],
      }),
      [
        ["c", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 80, "drop"],
      ],
    );
  });

  it("serviceAccountSelector (policy) and serviceAccounts (rule)", async () => {
    const base =
      doc({
        apiVersion: "projectcalico.org/v3",
        kind: "Profile",
        metadata: { name: "ksa.shop.api" },
        spec: { labelsToApply: { "pcsa.tier": "front" } },
      }) +
      workloadYaml("s", {
        ns: "shop",
        host: 9,
        sa: "api",
        profiles: ["kns.shop", "ksa.shop.api"],
        labels: { app: "s" },
      });
    await expectTable(
      base +
        gnp("sa-pol", {
          selector: "all()",
          serviceAccountSelector: "tier == 'front'",
          types: ["Ingress"],
          ingress: [{ action: "Deny" }],
        }),
      [
        ["a", "s", "tcp", 80, "drop"],
        ["a", "b", "tcp", 80, "accept"],
      ],
    );
    await expectTable(
      base +
        gnp("sa-rule", {
          ...toB,
          ingress: [{ action: "Allow", source: { serviceAccounts: { names: ["api"] } } }],
        }),
      [
        ["s", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 80, "drop"],
      ],
    );
    await expectTable(
      base +
        gnp("sa-rule", {
          ...toB,
          ingress: [{ action: "Allow", source: { serviceAccounts: { selector: "tier == 'front'" } } }],
        }),
      [
        ["s", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 80, "drop"],
      ],
    );
  });

  it("namespaceSelector global() matches global network sets and host endpoints only", async () => {
    const sets =
      doc({
        apiVersion: "projectcalico.org/v3",
        kind: "GlobalNetworkSet",
        metadata: { name: "gw", labels: { role: "gw" } },
        spec: { nets: ["198.18.0.2/32", "fd00::2/128"] },
      }) +
      doc({
        apiVersion: "projectcalico.org/v3",
        kind: "NetworkSet",
        metadata: { name: "gw2", namespace: "shop", labels: { role: "gw" } },
        spec: { nets: ["198.18.0.3/32", "fd00::3/128"] },
      });
    const p = await expectTable(
      sets +
        gnp("global", {
          ...toB,
          ingress: [{ action: "Allow", source: { namespaceSelector: "global()", selector: "role == 'gw'" } }],
        }),
      [
        ["ext", "b", "tcp", 80, "accept"],
        ["a", "b", "tcp", 80, "drop"],
      ],
    );
    assert.deepEqual(checkTable(p, [["@198.18.0.3", "b", "tcp", 80, "drop"]], [4]), []);
    assert.deepEqual(checkTable(p, [["@fd00::3", "b", "tcp", 80, "drop"]], [6]), []);
  });
});

describe("pipeline verdicts: rule fields", () => {
  const allowB = (rule: Record<string, unknown>): string =>
    gnp("p", { ...toB, ingress: [{ action: "Allow", ...rule }] });

  it("named ports resolve per endpoint", async () => {
    const y =
      workloadYaml("d", {
        ns: "shop",
        host: 5,
        labels: { web: "1" },
        ports: [{ name: "http", port: 8080 }],
      }) +
      workloadYaml("e", { ns: "web", host: 6, labels: { web: "1" }, ports: [{ name: "http", port: 9090 }] }) +
      gnp("http", {
        selector: "has(web)",
        types: ["Ingress"],
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: ["http"] } }],
      });
    await expectTable(y, [
      ["a", "d", "tcp", 8080, "accept"],
      ["a", "d", "tcp", 9090, "drop"],
      ["a", "e", "tcp", 9090, "accept"],
      ["a", "e", "tcp", 8080, "drop"],
      ["a", "e", "udp", 9090, "drop"],
    ]);
  });

  it("port ranges and notPorts", async () => {
    await expectTable(allowB({ protocol: "TCP", destination: { ports: ["8000:8010", 443] } }), [
      ["a", "b", "tcp", 7999, "drop"],
      ["a", "b", "tcp", 8000, "accept"],
      ["a", "b", "tcp", 8010, "accept"],
      ["a", "b", "tcp", 8011, "drop"],
      ["a", "b", "tcp", 443, "accept"],
      ["a", "b", "udp", 443, "drop"],
    ]);
    await expectTable(allowB({ protocol: "TCP", destination: { notPorts: [22, "100:200"] } }), [
      ["a", "b", "tcp", 22, "drop"],
      ["a", "b", "tcp", 150, "drop"],
      ["a", "b", "tcp", 23, "accept"],
      ["a", "b", "udp", 22, "drop"],
    ]);
    await expectTable(allowB({ protocol: "TCP", source: { ports: [40000] } }), [
      ["a", "b", "tcp", 80, "accept"],
    ]);
  });

  it("nets and notNets", async () => {
    const y = gnp("p", {
      ...toB,
      ingress: [
        { action: "Allow", source: { nets: ["198.19.0.1/32", "198.18.0.0/24"] } },
        { action: "Allow", source: { nets: ["fd00:19::1/128", "fd00::/120"] } },
      ],
    });
    await expectTable(y, [
      ["a", "b", "tcp", 80, "accept"],
      ["ext", "b", "tcp", 80, "accept"],
      ["c", "b", "tcp", 80, "drop"],
    ]);
    const n = gnp("p", {
      ...toB,
      ingress: [
        { action: "Allow", ipVersion: 4, source: { notNets: ["198.19.0.1/32"] } },
        { action: "Allow", ipVersion: 6, source: { notNets: ["fd00:19::1/128"] } },
      ],
    });
    await expectTable(n, [
      ["a", "b", "tcp", 80, "drop"],
      ["c", "b", "tcp", 80, "accept"],
      ["ext", "b", "tcp", 80, "accept"],
    ]);
    await expectTable(
      gnp("p", {
        selector: "app == 'a'",
        egress: [{ action: "Deny", destination: { nets: ["198.19.0.0/16"] } }, { action: "Allow" }],
      }),
      [
        ["a", "b", "tcp", 80, "drop"],
        ["a", "ext", "tcp", 80, "accept"],
      ],
      [4],
    );
  });

  it("notNets of one family only: the rule does not match the other family", async () => {
    const p = await Pipeline.of(BASE + allowB({ source: { notNets: ["198.19.0.1/32"] } }));
    assert.deepEqual(
      checkTable(
        p,
        [
          ["a", "b", "tcp", 80, "drop"],
          ["c", "b", "tcp", 80, "accept"],
        ],
        [4],
      ),
      [],
    );
    assert.deepEqual(
      checkTable(
        p,
        [
          ["a", "b", "tcp", 80, "drop"],
          ["c", "b", "tcp", 80, "drop"],
        ],
        [6],
      ),
      [],
    );
    const e = await Pipeline.of(
      BASE +
        gnp("p", {
          selector: "app == 'a'",
          egress: [{ action: "Allow", destination: { notNets: ["fd00:19::/48"] } }],
        }),
    );
    assert.deepEqual(checkTable(e, [["a", "ext", "tcp", 80, "drop"]], [4]), []);
    assert.deepEqual(
      checkTable(
        e,
        [
          ["a", "ext", "tcp", 80, "accept"],
          ["a", "b", "tcp", 80, "drop"],
        ],
        [6],
      ),
      [],
    );
  });

  it("notSelector (GNP: not namespaced)", async () => {
    await expectTable(
      workloadYaml("d", { ns: "web", host: 5, labels: { role: "db" } }) +
        allowB({ source: { notSelector: "role == 'client'" } }),
      [
        ["a", "b", "tcp", 80, "drop"],
        ["c", "b", "tcp", 80, "drop"],
        ["d", "b", "tcp", 80, "accept"],
        ["ext", "b", "tcp", 80, "accept"],
      ],
    );
  });

  it("ICMP type/code and notICMP (v4 ICMP, v6 ICMPv6)", async () => {
    await expectTable(
      gnp("p", {
        ...toB,
        ingress: [
          { action: "Allow", protocol: "ICMP", icmp: { type: 8, code: 0 } },
          { action: "Allow", protocol: "ICMPv6", icmp: { type: 128 } },
        ],
      }),
      [
        ["a", "b", "icmp", { type: 8, code: 0 }, "accept"],
        ["a", "b", "icmp", { type: 8, code: 1 }, "drop"],
        ["a", "b", "icmp", { type: 13, code: 0 }, "drop"],
      ],
      [4],
    );
    await expectTable(
      gnp("p", { ...toB, ingress: [{ action: "Allow", protocol: "ICMPv6", icmp: { type: 128 } }] }),
      [
        ["a", "b", "icmp", { type: 128, code: 0 }, "accept"],
        ["a", "b", "icmp", { type: 129, code: 0 }, "drop"],
      ],
      [6],
    );
    await expectTable(
      gnp("p", { ...toB, ingress: [{ action: "Allow", protocol: "ICMP", notICMP: { type: 8 } }] }),
      [
        ["a", "b", "icmp", { type: 8, code: 0 }, "drop"],
        ["a", "b", "icmp", { type: 13, code: 0 }, "accept"],
        ["a", "b", "tcp", 80, "drop"],
      ],
      [4],
    );
  });

  it("protocol and notProtocol", async () => {
    await expectTable(allowB({ protocol: "UDP" }), [
      ["a", "b", "udp", 53, "accept"],
      ["a", "b", "tcp", 53, "drop"],
      ["a", "b", "icmp", { type: 8 }, "drop"],
    ]);
    await expectTable(allowB({ notProtocol: "TCP" }), [
      ["a", "b", "tcp", 80, "drop"],
      ["a", "b", "udp", 80, "accept"],
      ["a", "b", "sctp", 80, "accept"],
    ]);
    await expectTable(allowB({ protocol: 132 }), [
      ["a", "b", "sctp", 9, "accept"],
      ["a", "b", "tcp", 9, "drop"],
    ]);
  });

  it("ipVersion", async () => {
    const p = await Pipeline.of(BASE + allowB({ ipVersion: 6 }));
    assert.deepEqual(checkTable(p, [["a", "b", "tcp", 80, "drop"]], [4]), []);
    assert.deepEqual(checkTable(p, [["a", "b", "tcp", 80, "accept"]], [6]), []);
  });

  it("NetworkSet (namespaced) and GlobalNetworkSet members", async () => {
    const sets =
      doc({
        apiVersion: "projectcalico.org/v3",
        kind: "NetworkSet",
        metadata: { name: "partners", namespace: "shop", labels: { role: "partner" } },
        spec: { nets: ["198.18.7.0/24", "fd00::7:0/112"] },
      }) +
      doc({
        apiVersion: "projectcalico.org/v3",
        kind: "GlobalNetworkSet",
        metadata: { name: "gpartners", labels: { role: "partner" } },
        spec: { nets: ["198.18.9.0/24", "fd00::9:0/112"] },
      });
    const y =
      sets +
      np("shop", "p", {
        selector: "app == 'b'",
        ingress: [{ action: "Allow", source: { selector: "role == 'partner'" } }],
      });
    const p = await expectTable(y, [["a", "b", "tcp", 80, "drop"]]);
    assert.deepEqual(
      checkTable(
        p,
        [
          ["@198.18.7.9", "b", "tcp", 80, "accept"],
          ["@198.18.9.9", "b", "tcp", 80, "drop"],
          ["@198.18.8.9", "b", "tcp", 80, "drop"],
        ],
        [4],
      ),
      [],
    );
    assert.deepEqual(
      checkTable(
        p,
        [
          ["@fd00::7:9", "b", "tcp", 80, "accept"],
          ["@fd00::9:9", "b", "tcp", 80, "drop"],
        ],
        [6],
      ),
      [],
    );
    const g = await Pipeline.of(
      BASE +
        sets +
        gnp("p", { ...toB, ingress: [{ action: "Allow", source: { selector: "role == 'partner'" } }] }),
    );
    assert.deepEqual(
      checkTable(
        g,
        [
          ["@198.18.7.9", "b", "tcp", 80, "accept"],
          ["@198.18.9.9", "b", "tcp", 80, "accept"],
          ["@198.18.8.9", "b", "tcp", 80, "drop"],
        ],
        [4],
      ),
      [],
    );
    // Egress to a set.
    const e = await Pipeline.of(
      BASE +
        sets +
        gnp("p", {
          selector: "app == 'a'",
          egress: [{ action: "Allow", destination: { selector: "role == 'partner'" } }],
        }),
    );
    assert.deepEqual(
      checkTable(
        e,
        [
          ["a", "@198.18.9.1", "tcp", 443, "accept"],
          ["a", "ext", "tcp", 443, "drop"],
        ],
        [4],
      ),
      [],
    );
  });
});

describe("pipeline verdicts: host endpoints", () => {
  it("a named HEP with no policy: default deny to/from the host except failsafes; forwarding allowed", async () => {
    await expectTable(hep("h1-eth0", "eth0"), [
      ["ext", "host", "tcp", 22, "accept"], // failsafe in
      ["ext", "host", "tcp", 179, "accept"],
      ["ext", "host", "tcp", 80, "drop"],
      ["host", "ext", "udp", 53, "accept"], // failsafe out
      ["host", "ext", "tcp", 443, "drop"],
      ["ext", "a", "tcp", 80, "accept"], // forwarded: no applyOnForward policy
      ["a", "ext", "tcp", 443, "accept"],
      ["host", "a", "tcp", 80, "accept"], // host → workload is not policed
    ]);
    const p = await Pipeline.of(BASE + hep("h1-eth0", "eth0"));
    // Another interface has no HEP: not policed.
    assert.equal(p.verdict("ext", "host", 4, "tcp", 80, { iifname: "eth1" }).verdict, "accept");
    assert.equal(p.verdict("ext", "host", 4, "tcp", 80, { ct: "established" }).verdict, "accept");
  });

  it("a `*` HEP covers every host interface", async () => {
    const p = await expectTable(hep("h1-all", "*"), [
      ["ext", "host", "tcp", 80, "drop"],
      ["ext", "host", "tcp", 22, "accept"],
      ["host", "ext", "tcp", 443, "drop"],
      ["ext", "a", "tcp", 80, "accept"],
    ]);
    assert.equal(p.verdict("ext", "host", 4, "tcp", 80, { iifname: "eth1" }).verdict, "drop");
  });

  it("HEP profiles allow; normal HEP policy does not see forwarded traffic, applyOnForward does", async () => {
    await expectTable(hep("h1-eth0", "eth0", { hep: "yes" }, ["projectcalico-default-allow"]), [
      ["ext", "host", "tcp", 80, "accept"],
      ["host", "ext", "tcp", 443, "accept"],
    ]);
    const sel = { selector: "has(hep)", types: ["Ingress"] };
    await expectTable(
      hep("h1-eth0", "eth0") +
        gnp("hep-in", {
          ...sel,
          ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
        }),
      [
        ["ext", "host", "tcp", 80, "accept"],
        ["ext", "host", "tcp", 81, "drop"],
        ["ext", "a", "tcp", 81, "accept"],
      ],
    );
    await expectTable(
      hep("h1-eth0", "eth0") +
        gnp("hep-fw", {
          ...sel,
          applyOnForward: true,
          ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [81] } }, { action: "Allow" }],
        }),
      [
        ["ext", "a", "tcp", 81, "drop"],
        ["ext", "a", "tcp", 80, "accept"],
        ["ext", "host", "tcp", 81, "drop"],
        ["ext", "host", "tcp", 80, "accept"],
        ["a", "ext", "tcp", 81, "accept"], // egress direction has no applyOnForward policy
      ],
    );
    await expectTable(
      hep("h1-eth0", "eth0") +
        gnp("hep-fw-out", {
          selector: "has(hep)",
          types: ["Egress"],
          applyOnForward: true,
          egress: [{ action: "Deny", protocol: "TCP", destination: { ports: [25] } }],
        }),
      [
        ["a", "ext", "tcp", 25, "drop"],
        ["a", "ext", "tcp", 26, "drop"], // a policy applies: end of tier
        ["ext", "a", "tcp", 25, "accept"],
      ],
    );
  });

  it("preDNAT policy drops before forwarding and input", async () => {
    await expectTable(
      hep("h1-eth0", "eth0", { hep: "yes" }, ["projectcalico-default-allow"]) +
        gnp("pre", {
          selector: "has(hep)",
          preDNAT: true,
          applyOnForward: true,
          types: ["Ingress"],
          ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [80] } }],
        }),
      [
        ["ext", "a", "tcp", 80, "drop"],
        ["ext", "host", "tcp", 80, "drop"],
        ["ext", "a", "tcp", 81, "accept"],
        ["ext", "host", "tcp", 81, "accept"], // no end-of-tier drop in preDNAT chains
      ],
    );
  });

  it("doNotTrack policy: untracked allow, failsafes still first, both directions explicit", async () => {
    const p = await expectTable(
      hep("h1-eth0", "eth0") +
        gnp("raw", {
          selector: "has(hep)",
          doNotTrack: true,
          applyOnForward: true,
          types: ["Ingress", "Egress"],
          ingress: [
            { action: "Allow", protocol: "TCP", destination: { ports: [9100] } },
            { action: "Deny", protocol: "TCP", destination: { ports: [22] } },
          ],
          egress: [{ action: "Allow", protocol: "TCP", source: { ports: [9100] } }],
        }),
      [
        ["ext", "host", "tcp", 9100, "accept"],
        ["ext", "host", "tcp", 9101, "drop"],
        ["ext", "host", "tcp", 22, "accept"], // failsafe before the untracked deny
      ],
    );
    const v = p.verdict("ext", "host", 4, "tcp", 9100);
    assert.ok(
      v.traces.some((t) => t.result.notrack),
      v.explanation,
    );
    // No end-of-tier drop in untracked chains: unmatched traffic meets normal policy.
    const q = await Pipeline.of(
      BASE +
        hep("h1-eth0", "eth0", { hep: "yes" }, ["projectcalico-default-allow"]) +
        gnp("raw", {
          selector: "has(hep)",
          doNotTrack: true,
          applyOnForward: true,
          types: ["Ingress"],
          ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [23] } }],
        }),
    );
    assert.deepEqual(
      checkTable(q, [
        ["ext", "host", "tcp", 23, "drop"],
        ["ext", "host", "tcp", 80, "accept"],
        ["ext", "a", "tcp", 80, "accept"],
      ]),
      [],
    );
    // The reply is untracked too: the egress rule must allow it.
    assert.equal(p.verdict("host", "ext", 4, "tcp", 40000, { sport: 9100 }).verdict, "accept");
    assert.equal(p.verdict("host", "ext", 4, "tcp", 40000, { sport: 9101 }).verdict, "drop");
  });
});

describe("pipeline verdicts: workloads and the host", () => {
  it("workload → host follows egress policy then defaultEndpointToHostAction", async () => {
    const y = gnp("a-out", {
      selector: "app == 'a'",
      egress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
    });
    await expectTable(
      y,
      [
        ["a", "host", "tcp", 80, "drop"],
        ["b", "host", "tcp", 80, "drop"],
      ],
      [4, 6],
      defaultConfig({ defaultEndpointToHostAction: "Drop" }),
    );
    await expectTable(
      y,
      [
        ["a", "host", "tcp", 80, "accept"],
        ["a", "host", "tcp", 81, "drop"],
        ["b", "host", "tcp", 81, "accept"],
      ],
      [4, 6],
      defaultConfig({ defaultEndpointToHostAction: "Accept" }),
    );
    await expectTable(
      y,
      [
        ["a", "host", "tcp", 80, "accept"],
        ["a", "host", "tcp", 81, "drop"],
        ["b", "host", "tcp", 81, "accept"],
      ],
      [4, 6],
      defaultConfig({ defaultEndpointToHostAction: "Return" }),
    );
    // IPv6 neighbour discovery reaches the host even with Drop.
    const p = await Pipeline.of(BASE + y);
    assert.deepEqual(checkTable(p, [["a", "host", "icmp", { type: 135, code: 0 }, "accept"]], [6]), []);
  });

  it("drops a workload sending from an address not its own", async () => {
    const p = await Pipeline.of(BASE);
    assert.equal(p.verdict("a", "b", 4, "tcp", 80, { saddr: "198.19.0.3" }).verdict, "drop");
    assert.equal(p.verdict("a", "b", 6, "tcp", 80, { saddr: "fd00:19::3" }).verdict, "drop");
    assert.equal(
      p.verdict("a", "b", 4, "tcp", 80, { saddr: "198.19.0.3", ct: "established" }).verdict,
      "drop",
    );
    assert.equal(p.verdict("a", "ext", 4, "tcp", 80, { saddr: "198.18.0.9" }).verdict, "drop");
    assert.equal(p.verdict("a", "b", 4, "tcp", 80).verdict, "accept");
  });

  it("drops traffic from or to an unknown cali* interface, also of established flows", async () => {
    const p = await Pipeline.of(BASE, defaultConfig({ defaultEndpointToHostAction: "Accept" }));
    for (const f of [4, 6] as const)
      for (const ct of ["new", "established"] as const) {
        const from = { iifname: "caliunknown0", ct };
        assert.equal(p.verdict("a", "b", f, "tcp", 80, from).verdict, "drop");
        assert.equal(p.verdict("a", "r", f, "tcp", 80, from).verdict, "drop");
        assert.equal(p.verdict("r", "b", f, "tcp", 80, from).verdict, "drop");
        if (ct === "new") assert.equal(p.verdict("a", "host", f, "tcp", 80, from).verdict, "drop");
        const to = { oifname: "caliunknown0", ct };
        assert.equal(p.verdict("r", "b", f, "tcp", 80, to).verdict, "drop");
        // An established flow from a known workload is accepted by its own chain, before the
        // destination's dispatch (as before the fast path).
        assert.equal(p.verdict("a", "b", f, "tcp", 80, to).verdict, ct === "new" ? "drop" : "accept");
      }
  });

  it("takes a flow's later packets straight to the workload's chain (the forward fast path)", async () => {
    const p = await Pipeline.of(BASE + gnp("closed", { selector: "all()", types: ["Ingress", "Egress"] }));
    for (const f of [4, 6] as const)
      for (const [from, to] of [
        ["a", "r"],
        ["r", "a"],
        ["a", "b"],
      ] as const) {
        assert.equal(p.verdict(from, to, f, "tcp", 80).verdict, "drop", `${from}→${to} new`);
        const v = p.verdict(from, to, f, "tcp", 80, { ct: "established" });
        assert.equal(v.verdict, "accept", v.explanation);
        const fwd = v.traces.find((t) => t.hook === "forward")!.result;
        // One fast-path rule and the workload chain's conntrack rule: no dispatch chain.
        assert.ok(
          fwd.matched.every((s) => !s.chain.includes("dispatch")),
          `${from}→${to}: ${v.explanation}`,
        );
      }
  });

  it("accepts established replies of flows that policy would not start", async () => {
    const p = await Pipeline.of(
      BASE + gnp("b-closed", { selector: "app == 'b'", types: ["Ingress", "Egress"] }),
    );
    assert.deepEqual(
      checkTable(p, [
        ["a", "b", "tcp", 80, "drop"],
        ["b", "a", "tcp", 80, "drop"],
      ]),
      [],
    );
    assert.deepEqual(
      checkTable(
        p,
        [
          ["b", "a", "tcp", 80, "accept"],
          ["a", "b", "tcp", 80, "accept"],
        ],
        [4, 6],
        { ct: "established" },
      ),
      [],
    );
  });
});
