import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BGP_FILTER_KIND } from "./bgp-filter.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = BGP_FILTER_KIND;

describe("BGPFilter", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "bgpfilters");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames], ["bgpfilter", "bgpf", "bgpfs", "bf", "bfs"]);
  });

  it("accepts the example from Calico's BGPFilter reference unchanged", () => {
    const spec = {
      exportV4: [
        { action: "Accept", matchOperator: "In", cidr: "77.0.0.0/16", source: "RemotePeers" },
        { action: "Reject", interface: "*.calico" },
      ],
      importV4: [
        { action: "Accept", matchOperator: "In", cidr: "55.0.0.0/16", prefixLength: { min: 30 } },
        { action: "Reject", matchOperator: "NotIn", cidr: "44.0.0.0/16" },
      ],
      exportV6: [
        { action: "Reject", source: "RemotePeers" },
        { action: "Reject", interface: "*.calico" },
      ],
      importV6: [{ action: "Accept", matchOperator: "Equal", cidr: "5000::0/64" }, { action: "Reject" }],
    };
    assert.deepEqual(issuesFor(K, spec, "my-filter"), []);
  });

  const valid: [string, Record<string, unknown>][] = [
    ["an empty filter", {}],
    ["a catch-all rule", { exportV4: [{ action: "Reject" }] }],
    [
      "operations on an Accept rule",
      {
        exportV4: [
          {
            action: "Accept",
            cidr: "198.19.0.0/16",
            matchOperator: "In",
            operations: [
              { addCommunity: { value: "64512:100" } },
              { prependASPath: { prefix: [64512, "1.1"] } },
              { setPriority: { value: 512 } },
            ],
          },
        ],
      },
    ],
    [
      "community and AS path matches",
      {
        importV6: [
          {
            action: "Accept",
            communities: { values: ["64512:1:2"] },
            asPathPrefix: [65000],
            peerType: "eBGP",
            priority: 1024,
          },
        ],
      },
    ],
    [
      "a prefix length with only a max",
      {
        importV4: [
          { action: "Accept", cidr: "198.19.0.0/16", matchOperator: "In", prefixLength: { max: 26 } },
        ],
      },
    ],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec), []));
  }

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "a rule without action",
      { exportV4: [{ cidr: "198.19.0.0/16", matchOperator: "In" }] },
      "spec.exportV4[0].action",
      /required/,
    ],
    ["an unknown action", { exportV4: [{ action: "Allow" }] }, "spec.exportV4[0].action", /Accept, Reject/],
    [
      "cidr without matchOperator",
      { exportV4: [{ action: "Accept", cidr: "198.19.0.0/16" }] },
      "spec.exportV4[0].matchOperator",
      /required when cidr/,
    ],
    [
      "matchOperator without cidr",
      { exportV4: [{ action: "Accept", matchOperator: "In" }] },
      "spec.exportV4[0].cidr",
      /required when matchOperator/,
    ],
    [
      "prefixLength without cidr",
      { importV4: [{ action: "Accept", prefixLength: { min: 24 } }] },
      "spec.importV4[0].prefixLength",
      /needs cidr/,
    ],
    [
      "an IPv6 cidr in a v4 list",
      { exportV4: [{ action: "Accept", cidr: "fd00::/64", matchOperator: "In" }] },
      "spec.exportV4[0].cidr",
      /IPv4/,
    ],
    [
      "an IPv4 cidr in a v6 list",
      { importV6: [{ action: "Accept", cidr: "198.19.0.0/16", matchOperator: "In" }] },
      "spec.importV6[0].cidr",
      /IPv6/,
    ],
    [
      "an unmasked cidr",
      { exportV4: [{ action: "Accept", cidr: "198.19.0.1/16", matchOperator: "In" }] },
      "spec.exportV4[0].cidr",
      /host bits/,
    ],
    [
      "a v4 prefix length above 32",
      {
        exportV4: [
          { action: "Accept", cidr: "198.19.0.0/16", matchOperator: "In", prefixLength: { max: 33 } },
        ],
      },
      "spec.exportV4[0].prefixLength.max",
      /0 to 32/,
    ],
    [
      "a v6 prefix length above 128",
      {
        exportV6: [{ action: "Accept", cidr: "fd00::/48", matchOperator: "In", prefixLength: { min: 129 } }],
      },
      "spec.exportV6[0].prefixLength.min",
      /0 to 128/,
    ],
    [
      "prefix min above max",
      {
        exportV4: [
          {
            action: "Accept",
            cidr: "198.19.0.0/16",
            matchOperator: "In",
            prefixLength: { min: 28, max: 24 },
          },
        ],
      },
      "spec.exportV4[0].prefixLength",
      /greater than max/,
    ],
    [
      "an unknown matchOperator",
      { exportV4: [{ action: "Accept", cidr: "198.19.0.0/16", matchOperator: "Contains" }] },
      "spec.exportV4[0].matchOperator",
      /Equal, NotEqual, In, NotIn/,
    ],
    [
      "an unknown source",
      { exportV4: [{ action: "Accept", source: "Local" }] },
      "spec.exportV4[0].source",
      /RemotePeers/,
    ],
    [
      "an unknown peerType",
      { exportV4: [{ action: "Accept", peerType: "EBGP" }] },
      "spec.exportV4[0].peerType",
      /eBGP, iBGP/,
    ],
    [
      "a bad interface",
      { exportV4: [{ action: "Accept", interface: "eth0/1" }] },
      "spec.exportV4[0].interface",
      /interface name or glob/,
    ],
    [
      "two community values",
      { exportV4: [{ action: "Accept", communities: { values: ["1:1", "1:2"] } }] },
      "spec.exportV4[0].communities.values",
      /exactly one/,
    ],
    [
      "a bad community match",
      { exportV4: [{ action: "Accept", communities: { values: ["x:1"] } }] },
      "spec.exportV4[0].communities.values[0]",
      /aa:nn/,
    ],
    [
      "a bad AS in asPathPrefix",
      { exportV4: [{ action: "Accept", asPathPrefix: [0] }] },
      "spec.exportV4[0].asPathPrefix[0]",
      /AS number/,
    ],
    [
      "priority 0",
      { exportV4: [{ action: "Accept", priority: 0 }] },
      "spec.exportV4[0].priority",
      /1 to 2147483646/,
    ],
    [
      "operations on a Reject rule",
      { exportV4: [{ action: "Reject", operations: [{ setPriority: { value: 5 } }] }] },
      "spec.exportV4[0].operations",
      /only be used with action Accept/,
    ],
    [
      "an operation setting two things",
      {
        exportV4: [
          { action: "Accept", operations: [{ setPriority: { value: 5 }, addCommunity: { value: "1:1" } }] },
        ],
      },
      "spec.exportV4[0].operations[0]",
      /exactly one/,
    ],
    [
      "an empty operation",
      { exportV4: [{ action: "Accept", operations: [{}] }] },
      "spec.exportV4[0].operations[0]",
      /exactly one/,
    ],
    [
      "an empty operations list",
      { exportV4: [{ action: "Accept", operations: [] }] },
      "spec.exportV4[0].operations",
      /at least 1/,
    ],
    [
      "eleven operations",
      {
        exportV4: [
          { action: "Accept", operations: Array.from({ length: 11 }, () => ({ setPriority: { value: 5 } })) },
        ],
      },
      "spec.exportV4[0].operations",
      /at most 10/,
    ],
    [
      "a bad community to add",
      { exportV4: [{ action: "Accept", operations: [{ addCommunity: { value: "65536:1" } }] }] },
      "spec.exportV4[0].operations[0].addCommunity.value",
      /0-65535/,
    ],
    [
      "an empty AS path to prepend",
      { exportV4: [{ action: "Accept", operations: [{ prependASPath: { prefix: [] } }] }] },
      "spec.exportV4[0].operations[0].prependASPath.prefix",
      /1 to 10/,
    ],
    [
      "a bad priority to set",
      { exportV4: [{ action: "Accept", operations: [{ setPriority: { value: "high" } }] }] },
      "spec.exportV4[0].operations[0].setPriority.value",
      /integer/,
    ],
    [
      "a typo in a rule",
      { exportV4: [{ action: "Accept", cidrs: "198.19.0.0/16" }] },
      "spec.exportV4[0].cidrs",
      /unknown field/,
    ],
    ["a typo in a list name", { exportv4: [{ action: "Accept" }] }, "spec.exportv4", /unknown field/],
    ["a rule that is not an object", { exportV4: ["Accept"] }, "spec.exportV4[0]", /object/],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, spec);
      assert.ok(
        issues.some((i) => i.path === path && message.test(i.message)),
        `expected ${path} ~ ${String(message)}, got ${JSON.stringify(issues)}`,
      );
    });
  }

  it("stores dotted AS numbers as integers", () => {
    const spec = {
      exportV4: [
        { action: "Accept", asPathPrefix: ["1.1"], operations: [{ prependASPath: { prefix: ["0.5", 7] } }] },
      ],
    };
    const out = K.withDefaults(resource(K, spec));
    assert.deepEqual(out.spec, {
      exportV4: [
        { action: "Accept", asPathPrefix: [65537], operations: [{ prependASPath: { prefix: [5, 7] } }] },
      ],
    });
  });
});
