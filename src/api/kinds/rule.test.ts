import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Issues } from "../check.js";
import {
  checkRule,
  normalizeRule,
  parsePort,
  parseProtocol,
  protocolSupportsPorts,
  type Rule,
  type RuleContext,
} from "./rule.js";

const NP_INGRESS: RuleContext = { direction: "ingress", owner: "namespaced" };
const NP_EGRESS: RuleContext = { direction: "egress", owner: "namespaced" };
const GNP_INGRESS: RuleContext = { direction: "ingress", owner: "global" };
const GNP_EGRESS: RuleContext = { direction: "egress", owner: "global" };
const PROFILE_EGRESS: RuleContext = { direction: "egress", owner: "profile" };

function issuesOf(rule: unknown, ctx: RuleContext = NP_INGRESS) {
  const issues = new Issues();
  checkRule(rule, "spec.ingress[0]", issues, ctx);
  return issues.list;
}

void describe("checkRule accepts valid rules", () => {
  const good: [string, unknown, RuleContext?][] = [
    ["bare allow", { action: "Allow" }],
    ["each action", { action: "Pass" }],
    ["log", { action: "Log" }],
    ["deny with notProtocol", { action: "Deny", notProtocol: "UDP" }],
    [
      "tcp with ports",
      { action: "Allow", protocol: "TCP", destination: { ports: [80, "443", "8000:8080", "http"] } },
    ],
    ["numeric protocol with ports", { action: "Allow", protocol: 6, source: { ports: [1] } }],
    ["digit-string protocol", { action: "Allow", protocol: "17", destination: { notPorts: [53] } }],
    ["sctp with ports", { action: "Allow", protocol: "SCTP", destination: { ports: [1] } }],
    ["empty ports with non-port protocol", { action: "Allow", protocol: 7, source: { ports: [] } }],
    ["named port with tcp", { action: "Allow", protocol: "TCP", source: { ports: ["foo"] } }],
    ["icmp with type", { action: "Allow", protocol: "ICMP", icmp: { type: 8 } }],
    ["icmp type+code", { action: "Allow", ipVersion: 4, protocol: "ICMP", icmp: { type: 128, code: 255 } }],
    ["icmp max type", { action: "Allow", protocol: "ICMP", icmp: { type: 254 } }],
    ["icmpv6 + ipVersion 6", { action: "Allow", ipVersion: 6, protocol: "ICMPv6", icmp: { type: 0 } }],
    ["icmp by number", { action: "Allow", protocol: 1, icmp: { type: 3, code: 1 } }],
    ["notICMP", { action: "Deny", protocol: "ICMP", notICMP: { type: 8 } }],
    [
      "v4 nets",
      { action: "Allow", source: { nets: ["198.19.0.0/16", "198.18.0.1/32"], notNets: ["198.19.1.0/24"] } },
    ],
    ["v6 nets + ipVersion", { action: "Allow", ipVersion: 6, destination: { nets: ["fd00:19::/48"] } }],
    ["selectors", { action: "Allow", source: { selector: "app == 'web'", notSelector: "has(x)" } }],
    ["namespaceSelector global()", { action: "Allow", source: { namespaceSelector: "global()" } }],
    ["namespaceSelector global() spaced", { action: "Allow", source: { namespaceSelector: "  global()  " } }],
    [
      "namespaceSelector expr",
      { action: "Allow", source: { namespaceSelector: "projectcalico.org/name == 'test'" } },
    ],
    [
      "service accounts",
      { action: "Allow", source: { serviceAccounts: { names: ["api", "web"], selector: "role == 'x'" } } },
    ],
    [
      "ingress source service",
      { action: "Allow", source: { services: { name: "svc", namespace: "default" } } },
    ],
    [
      "ingress source service with ports",
      {
        action: "Allow",
        protocol: "TCP",
        source: { services: { name: "svc" }, ports: [80] },
      },
    ],
    [
      "egress destination service",
      { action: "Allow", destination: { services: { name: "svc" } } },
      NP_EGRESS,
    ],
    [
      "http on allow",
      { action: "Allow", http: { methods: ["GET", "PUT"], paths: [{ exact: "/foo" }, { prefix: "/bar" }] } },
    ],
    ["http with tcp", { action: "Allow", protocol: "TCP", http: { methods: ["GET"] } }],
    ["http with 6", { action: "Allow", protocol: 6, http: { methods: ["GET"] } }],
    [
      "rule annotations",
      { action: "Allow", metadata: { annotations: { foo: "bar", "example.com/Key": "v" } } },
    ],
    [
      "profile egress http (Calico checks only policies)",
      { action: "Allow", http: { methods: ["GET"] } },
      PROFILE_EGRESS,
    ],
    [
      "GNP egress service with namespace",
      {
        action: "Allow",
        destination: { services: { name: "kube-dns", namespace: "kube-system" } },
      },
      GNP_EGRESS,
    ],
  ];
  for (const [name, rule, ctx] of good) {
    void it(name, () => assert.deepEqual(issuesOf(rule, ctx), []));
  }
});

void describe("checkRule rejects bad rules at the right path", () => {
  // [name, rule, expected issue paths (exact, in any order), ctx]
  const bad: [string, unknown, string[], RuleContext?][] = [
    ["not an object", "Allow", ["spec.ingress[0]"]],
    ["missing action", { protocol: "TCP" }, ["spec.ingress[0].action"]],
    ["bad action", { action: "allow" }, ["spec.ingress[0].action"]],
    ["typo field", { action: "Allow", destinaton: {} }, ["spec.ingress[0].destinaton"]],
    ["entity typo", { action: "Allow", source: { selectr: "a == 'b'" } }, ["spec.ingress[0].source.selectr"]],
    ["bad ipVersion", { action: "Allow", ipVersion: 5 }, ["spec.ingress[0].ipVersion"]],
    ["lower-case protocol", { action: "Allow", protocol: "tcp" }, ["spec.ingress[0].protocol"]],
    ["unknown protocol", { action: "Allow", protocol: "footcp" }, ["spec.ingress[0].protocol"]],
    ["protocol 0", { action: "Allow", protocol: 0 }, ["spec.ingress[0].protocol"]],
    ["protocol 256", { action: "Allow", protocol: "256" }, ["spec.ingress[0].protocol"]],
    ["bad notProtocol", { action: "Allow", notProtocol: "http" }, ["spec.ingress[0].notProtocol"]],
    [
      "ports without protocol",
      { action: "Allow", destination: { ports: [80] } },
      ["spec.ingress[0].destination.ports"],
    ],
    [
      "named port without protocol",
      { action: "Allow", source: { ports: ["http"] } },
      ["spec.ingress[0].source.ports"],
    ],
    [
      "ports with udplite",
      { action: "Allow", protocol: "UDPLite", destination: { ports: [1] } },
      ["spec.ingress[0].destination.ports"],
    ],
    [
      "notPorts with protocol 100",
      { action: "Allow", protocol: 100, source: { notPorts: [1] } },
      ["spec.ingress[0].source.notPorts"],
    ],
    [
      "ports with icmp",
      { action: "Allow", ipVersion: 4, protocol: "ICMP", destination: { notPorts: [1] } },
      ["spec.ingress[0].destination.notPorts"],
    ],
    [
      "port 0",
      { action: "Allow", protocol: "TCP", destination: { notPorts: [0] } },
      ["spec.ingress[0].destination.notPorts[0]"],
    ],
    [
      "port 65536",
      { action: "Allow", protocol: "TCP", destination: { ports: [65536] } },
      ["spec.ingress[0].destination.ports[0]"],
    ],
    [
      "reversed range",
      { action: "Allow", protocol: "TCP", source: { ports: ["200:100"] } },
      ["spec.ingress[0].source.ports[0]"],
    ],
    [
      "range from 0",
      { action: "Allow", protocol: "TCP", destination: { notPorts: ["0:100"] } },
      ["spec.ingress[0].destination.notPorts[0]"],
    ],
    [
      "bad port name",
      { action: "Allow", protocol: "TCP", destination: { ports: ["a b"] } },
      ["spec.ingress[0].destination.ports[0]"],
    ],
    [
      "port name too long",
      { action: "Allow", protocol: "TCP", destination: { ports: ["abcdefghijklmnop"] } },
      ["spec.ingress[0].destination.ports[0]"],
    ],
    [
      "port name upper case",
      { action: "Allow", protocol: "TCP", destination: { ports: ["HTTP"] } },
      ["spec.ingress[0].destination.ports[0]"],
    ],
    [
      "port as bool",
      { action: "Allow", protocol: "TCP", destination: { ports: [true] } },
      ["spec.ingress[0].destination.ports[0]"],
    ],
    ["icmp without protocol", { action: "Allow", ipVersion: 4, icmp: { type: 0 } }, ["spec.ingress[0].icmp"]],
    ["icmp with tcp", { action: "Allow", protocol: "TCP", icmp: { type: 0 } }, ["spec.ingress[0].icmp"]],
    [
      "icmp code without type",
      { action: "Allow", protocol: "ICMP", icmp: { code: 0 } },
      ["spec.ingress[0].icmp.code"],
    ],
    [
      "icmp type 255",
      { action: "Allow", protocol: "ICMP", icmp: { type: 255 } },
      ["spec.ingress[0].icmp.type"],
    ],
    [
      "icmp code 256",
      { action: "Allow", protocol: "ICMP", icmp: { type: 128, code: 256 } },
      ["spec.ingress[0].icmp.code"],
    ],
    [
      "icmp unknown field",
      { action: "Allow", protocol: "ICMP", icmp: { typ: 1 } },
      ["spec.ingress[0].icmp.typ"],
    ],
    [
      "notICMP code without type",
      { action: "Allow", protocol: "ICMP", notICMP: { code: 1 } },
      ["spec.ingress[0].notICMP.code"],
    ],
    [
      "ICMP with ipVersion 6",
      { action: "Allow", protocol: "ICMP", ipVersion: 6 },
      ["spec.ingress[0].ipVersion"],
    ],
    [
      "ICMPv6 with ipVersion 4",
      { action: "Allow", protocol: "ICMPv6", ipVersion: 4 },
      ["spec.ingress[0].ipVersion"],
    ],
    [
      "notProtocol ICMPv6 with ipVersion 4",
      { action: "Allow", notProtocol: "ICMPv6", ipVersion: 4 },
      ["spec.ingress[0].ipVersion"],
    ],
    [
      "bare IP in nets",
      { action: "Allow", source: { nets: ["198.19.0.1"] } },
      ["spec.ingress[0].source.nets[0]"],
    ],
    ["garbage net", { action: "Allow", source: { nets: ["nope"] } }, ["spec.ingress[0].source.nets[0]"]],
    [
      "host bits set",
      { action: "Allow", destination: { nets: ["198.19.0.1/16"] } },
      ["spec.ingress[0].destination.nets[0]"],
    ],
    [
      "prefix too long",
      { action: "Allow", destination: { nets: ["198.19.0.0/33"] } },
      ["spec.ingress[0].destination.nets[0]"],
    ],
    [
      "mixed families in one list",
      { action: "Allow", source: { nets: ["198.19.0.0/16", "fd00:19::/48"] } },
      ["spec.ingress[0].source.nets[1]"],
    ],
    [
      "mixed families src/dst",
      {
        action: "Allow",
        source: { nets: ["198.19.0.0/26"] },
        destination: { nets: ["fd00:19::/122"] },
      },
      ["spec.ingress[0].destination.nets[0]"],
    ],
    [
      "mixed families nets/notNets",
      {
        action: "Allow",
        source: { nets: ["198.19.0.0/26"] },
        destination: { notNets: ["fd00:19::/122"] },
      },
      ["spec.ingress[0].destination.notNets[0]"],
    ],
    [
      "ipVersion vs nets",
      { action: "Allow", ipVersion: 6, source: { nets: ["198.19.0.0/16"] } },
      ["spec.ingress[0].source.nets[0]"],
    ],
    [
      "notNets everything",
      { action: "Allow", source: { notNets: ["0.0.0.0/0"] } },
      ["spec.ingress[0].source.notNets[0]"],
    ],
    [
      "notNets everything v6",
      { action: "Allow", source: { notNets: ["::/0"] } },
      ["spec.ingress[0].source.notNets[0]"],
    ],
    [
      "nets not a list",
      { action: "Allow", source: { nets: "198.19.0.0/16" } },
      ["spec.ingress[0].source.nets"],
    ],
    [
      "global() in selector",
      { action: "Allow", source: { selector: "global()" } },
      ["spec.ingress[0].source.selector"],
    ],
    [
      "global() combined in namespaceSelector",
      { action: "Allow", source: { namespaceSelector: "global() && all()" } },
      ["spec.ingress[0].source.namespaceSelector"],
    ],
    [
      "global() or'd in namespaceSelector",
      { action: "Allow", source: { namespaceSelector: "global()||all()" } },
      ["spec.ingress[0].source.namespaceSelector"],
    ],
    [
      "bad selector syntax",
      { action: "Allow", destination: { selector: "app = 'x'" } },
      ["spec.ingress[0].destination.selector"],
    ],
    [
      "selector too long",
      { action: "Allow", destination: { selector: `a == '${"x".repeat(1030)}'` } },
      ["spec.ingress[0].destination.selector"],
    ],
    [
      "service accounts bad selector",
      { action: "Allow", source: { serviceAccounts: { selector: "a ==" } } },
      ["spec.ingress[0].source.serviceAccounts.selector"],
    ],
    [
      "service accounts duplicate name",
      { action: "Allow", source: { serviceAccounts: { names: ["a", "a"] } } },
      ["spec.ingress[0].source.serviceAccounts.names[1]"],
    ],
    [
      "service accounts unknown field",
      { action: "Allow", source: { serviceAccounts: { name: ["a"] } } },
      ["spec.ingress[0].source.serviceAccounts.name"],
    ],
    [
      "services without name",
      { action: "Allow", source: { services: { namespace: "default" } } },
      ["spec.ingress[0].source.services.name"],
    ],
    [
      "services bad name",
      { action: "Allow", source: { services: { name: "Bad_Name" } } },
      ["spec.ingress[0].source.services.name"],
    ],
    [
      "services + selector",
      { action: "Allow", source: { services: { name: "s" }, selector: "x == 'y'" } },
      ["spec.ingress[0].source.selector"],
    ],
    [
      "services + notSelector",
      { action: "Allow", source: { services: { name: "s" }, notSelector: "x == 'y'" } },
      ["spec.ingress[0].source.notSelector"],
    ],
    [
      "services + namespaceSelector",
      { action: "Allow", source: { services: { name: "s" }, namespaceSelector: "x == 'y'" } },
      ["spec.ingress[0].source.namespaceSelector"],
    ],
    [
      "services + nets",
      { action: "Allow", source: { services: { name: "s" }, nets: ["198.19.0.0/16"] } },
      ["spec.ingress[0].source.nets"],
    ],
    [
      "services + notNets",
      { action: "Allow", source: { services: { name: "s" }, notNets: ["198.19.0.0/16"] } },
      ["spec.ingress[0].source.notNets"],
    ],
    [
      "services + serviceAccounts",
      { action: "Allow", source: { services: { name: "s" }, serviceAccounts: { names: ["a"] } } },
      ["spec.ingress[0].source.serviceAccounts"],
    ],
    [
      "ingress destination services",
      { action: "Allow", destination: { services: { name: "s" } } },
      ["spec.ingress[0].destination.services"],
    ],
    [
      "egress source services",
      { action: "Allow", source: { services: { name: "s" } } },
      ["spec.ingress[0].source.services"],
      NP_EGRESS,
    ],
    [
      "destination services + ports",
      {
        action: "Allow",
        protocol: "TCP",
        destination: { services: { name: "s", namespace: "d" }, ports: [80] },
      },
      ["spec.ingress[0].destination.ports"],
      NP_EGRESS,
    ],
    [
      "destination services + notPorts",
      {
        action: "Allow",
        protocol: "TCP",
        destination: { services: { name: "s", namespace: "d" }, notPorts: [80] },
      },
      ["spec.ingress[0].destination.notPorts"],
      NP_EGRESS,
    ],
    [
      "GNP egress service without namespace",
      { action: "Allow", destination: { services: { name: "s" } } },
      ["spec.ingress[0].destination.services.namespace"],
      GNP_EGRESS,
    ],
    [
      "GNP ingress service without namespace",
      { action: "Allow", source: { services: { name: "s" } } },
      ["spec.ingress[0].source.services.namespace"],
      GNP_INGRESS,
    ],
    ["http on deny", { action: "Deny", http: { methods: ["GET"] } }, ["spec.ingress[0].http"]],
    [
      "http with udp",
      { action: "Allow", protocol: "UDP", http: { methods: ["GET"] } },
      ["spec.ingress[0].protocol"],
    ],
    ["http in egress", { action: "Allow", http: { methods: ["GET"] } }, ["spec.ingress[0].http"], NP_EGRESS],
    [
      "http duplicate methods",
      { action: "Allow", http: { methods: ["GET", "GET", "Foo"] } },
      ["spec.ingress[0].http.methods[1]"],
    ],
    [
      "http exact and prefix",
      { action: "Allow", http: { paths: [{ exact: "/foo", prefix: "/bar" }] } },
      ["spec.ingress[0].http.paths[0]"],
    ],
    ["http empty path", { action: "Allow", http: { paths: [{}] } }, ["spec.ingress[0].http.paths[0]"]],
    [
      "http path with ?",
      { action: "Allow", http: { paths: [{ exact: "/fo?o" }] } },
      ["spec.ingress[0].http.paths[0].exact"],
    ],
    [
      "http path with space",
      { action: "Allow", http: { paths: [{ exact: "/fo o" }] } },
      ["spec.ingress[0].http.paths[0].exact"],
    ],
    [
      "http path with #",
      { action: "Allow", http: { paths: [{ prefix: "/f#oo" }] } },
      ["spec.ingress[0].http.paths[0].prefix"],
    ],
    [
      "http path without /",
      { action: "Allow", http: { paths: [{ prefix: "foo" }] } },
      ["spec.ingress[0].http.paths[0].prefix"],
    ],
    ["http unknown field", { action: "Allow", http: { method: ["GET"] } }, ["spec.ingress[0].http.method"]],
    [
      "bad annotation key",
      { action: "Allow", metadata: { annotations: { "...": "bar" } } },
      ['spec.ingress[0].metadata.annotations["..."]'],
    ],
    [
      "metadata unknown field",
      { action: "Allow", metadata: { labels: {} } },
      ["spec.ingress[0].metadata.labels"],
    ],
  ];
  for (const [name, rule, paths, ctx] of bad) {
    void it(name, () => {
      const got = issuesOf(rule, ctx);
      assert.deepEqual(
        got.map((i) => i.path).sort(),
        [...paths].sort(),
        `issues: ${JSON.stringify(got, null, 1)}`,
      );
      for (const i of got) assert.ok(i.message.length > 0);
    });
  }

  void it("reports every problem of a rule at once", () => {
    const got = issuesOf({
      action: "Nope",
      protocol: "tcp",
      source: { nets: ["1.2.3.4"], selector: "global()" },
      destinaton: {},
    });
    assert.equal(got.length, 5);
  });

  void it("says what is allowed and quotes the value", () => {
    const [issue] = issuesOf({ action: "Allow", protocol: "tcp" });
    assert.equal(issue?.value, "tcp");
    assert.match(issue?.message ?? "", /TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite/);
    assert.match(issue?.message ?? "", /did you mean TCP/);
  });
});

void describe("parseProtocol / parsePort", () => {
  const protocols: [unknown, unknown][] = [
    ["TCP", "TCP"],
    ["UDPLite", "UDPLite"],
    [1, 1],
    [255, 255],
    ["255", 255],
    ["1", 1],
    [0, undefined],
    ["0", undefined],
    [256, undefined],
    ["256", undefined],
    ["tcp", undefined],
    [1.5, undefined],
    [null, undefined],
  ];
  for (const [input, want] of protocols) {
    void it(`protocol ${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
      const r = parseProtocol(input);
      assert.equal(r.ok ? r.value : undefined, want);
    });
  }

  void it("knows which protocols have ports", () => {
    assert.deepEqual(
      (["TCP", "UDP", "SCTP", "ICMP", "UDPLite", 6, 17, 132, 1, 100] as const).map(protocolSupportsPorts),
      [true, true, true, false, false, true, true, true, false, false],
    );
  });

  const ports: [unknown, string | undefined][] = [
    [80, "80-80"],
    ["80", "80-80"],
    ["1:65535", "1-65535"],
    ["80:80", "80-80"],
    ["http", "http"],
    ["web-8080", "web-8080"],
    [0, undefined],
    ["0", undefined],
    [65536, undefined],
    ["70000", undefined],
    ["2:1", undefined],
    ["a--b", undefined],
    ["-ab", undefined],
    ["123", "123-123"],
    ["1234567890123456", undefined],
  ];
  for (const [input, want] of ports) {
    void it(`port ${JSON.stringify(input)} → ${String(want)}`, () => {
      const r = parsePort(input);
      const got = !r.ok ? undefined : r.kind === "named" ? r.name : `${r.min}-${r.max}`;
      assert.equal(got, want);
    });
  }

  void it("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        parsePort(v);
        parseProtocol(v);
        issuesOf(v);
        issuesOf({ action: "Allow", protocol: v, source: { ports: [v], nets: [v] }, icmp: v });
      }),
      { numRuns: 300 },
    );
  });

  void it("accepts every port range 1..65535 with min ≤ max", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), (a, b) => {
        const r = parsePort(`${a}:${b}`);
        assert.equal(r.ok, a <= b);
      }),
    );
  });
});

void describe("normalizeRule", () => {
  const cases: [string, Rule, Rule][] = [
    [
      "numeric strings become numbers, single-port ranges become ports",
      {
        action: "Allow",
        protocol: "6" as unknown as number,
        destination: { ports: ["80", "90:90", "1000:2000", "http"] },
      },
      { action: "Allow", protocol: 6, destination: { ports: [80, 90, "1000:2000", "http"] } },
    ],
    [
      "empty entity rules and lists disappear",
      { action: "Deny", source: {}, destination: { nets: [], ports: [], selector: "" } },
      { action: "Deny" },
    ],
    [
      "fields keep Calico's field order",
      {
        action: "Allow",
        destination: { notNets: ["198.19.1.0/24"], selector: "a == 'b'", nets: ["198.19.0.0/16"] },
      },
      {
        action: "Allow",
        destination: { nets: ["198.19.0.0/16"], selector: "a == 'b'", notNets: ["198.19.1.0/24"] },
      },
    ],
  ];
  for (const [name, input, want] of cases) {
    void it(name, () => {
      const got = normalizeRule(input);
      assert.deepEqual(got, want);
      assert.deepEqual(JSON.stringify(got), JSON.stringify(want));
    });
  }

  void it("is idempotent", () => {
    const r: Rule = { action: "Allow", protocol: "TCP", source: { ports: ["1:2", 3] } };
    assert.deepEqual(normalizeRule(normalizeRule(r)), normalizeRule(r));
  });
});
