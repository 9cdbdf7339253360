import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IP_POOL_KIND } from "./ip-pool.js";
import { issuesFor, resource, SKIP_WITHOUT_SELECTORS } from "./infra-testing.js";

const K = IP_POOL_KIND;

describe("IPPool", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "ippools");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames].sort(), ["ipp", "ippool", "ipps", "pool", "pools"]);
  });

  it("accepts the example from Calico's IPPool reference unchanged", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    const spec = {
      cidr: "198.19.0.0/16",
      ipipMode: "CrossSubnet",
      natOutgoing: true,
      disabled: false,
      nodeSelector: "all()",
      allowedUses: ["Workload", "Tunnel"],
    };
    assert.deepEqual(issuesFor(K, spec, "my.ippool-1"), []);
  });

  const valid: [string, Record<string, unknown>][] = [
    ["a minimal IPv4 pool", { cidr: "198.19.0.0/16" }],
    ["a minimal IPv6 pool", { cidr: "fd00:19::/48" }],
    ["an IPv6 pool with VXLAN", { cidr: "fd00:19::/48", vxlanMode: "Always", blockSize: 122 }],
    ["a pool exactly one block big", { cidr: "198.19.0.0/26" }],
    ["a disabled pool smaller than a block", { cidr: "198.19.0.0/28", disabled: true }],
    ["blockSize at the v4 bounds", { cidr: "198.19.0.0/16", blockSize: 20 }],
    ["blockSize 32", { cidr: "198.19.0.0/16", blockSize: 32 }],
    ["blockSize at the v6 bounds", { cidr: "fd00:19::/48", blockSize: 116 }],
    ["blockSize 0 meaning default", { cidr: "198.19.0.0/16", blockSize: 0 }],
    ["a LoadBalancer pool", { cidr: "198.19.128.0/24", allowedUses: ["LoadBalancer"] }],
    ["ipip with vxlan Never", { cidr: "198.19.0.0/16", ipipMode: "Always", vxlanMode: "Never" }],
    ["manual assignment", { cidr: "198.19.0.0/16", assignmentMode: "Manual" }],
    ["a bare address pool that is disabled", { cidr: "198.19.0.1", disabled: true }],
    ["empty selectors", { cidr: "198.19.0.0/16", nodeSelector: "", namespaceSelector: "" }],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec), []));
  }

  const invalid: [string, unknown, string, RegExp][] = [
    ["a missing cidr", {}, "spec.cidr", /required/],
    ["a missing spec", undefined, "spec.cidr", /required/],
    ["a spec that is not an object", ["x"], "spec", /object/],
    ["a cidr with host bits set", { cidr: "198.19.0.1/16" }, "spec.cidr", /strictly masked/],
    ["a malformed cidr", { cidr: "198.19.0.0/33" }, "spec.cidr", /CIDR/],
    ["a cidr that is text", { cidr: "pool" }, "spec.cidr", /CIDR/],
    ["a cidr that is a number", { cidr: 42 }, "spec.cidr", /CIDR/],
    [
      "an over-long cidr",
      { cidr: "0000:0000:0000:0000:0000:ffff:255.255.255.255/128" },
      "spec.cidr",
      /48 characters/,
    ],
    ["the IPv4 link-local range", { cidr: "169.254.0.0/16" }, "spec.cidr", /link-local/],
    ["a range containing link-local", { cidr: "169.0.0.0/8" }, "spec.cidr", /link-local/],
    ["a range inside link-local", { cidr: "169.254.10.0/24" }, "spec.cidr", /link-local/],
    ["the IPv6 link-local range", { cidr: "fe80::/64" }, "spec.cidr", /link-local/],
    ["blockSize below 20 on IPv4", { cidr: "198.19.0.0/16", blockSize: 19 }, "spec.blockSize", /20 to 32/],
    ["blockSize above 32 on IPv4", { cidr: "198.19.0.0/16", blockSize: 33 }, "spec.blockSize", /20 to 32/],
    ["an IPv4 blockSize on IPv6", { cidr: "fd00:19::/48", blockSize: 26 }, "spec.blockSize", /116 to 128/],
    ["blockSize above 128", { cidr: "fd00:19::/48", blockSize: 129 }, "spec.blockSize", /integer/],
    ["a fractional blockSize", { cidr: "198.19.0.0/16", blockSize: 26.5 }, "spec.blockSize", /integer/],
    ["blockSize as a string", { cidr: "198.19.0.0/16", blockSize: "26" }, "spec.blockSize", /integer/],
    ["a pool smaller than one block", { cidr: "198.19.0.0/28" }, "spec.cidr", /smaller than one block/],
    [
      "a pool smaller than its blockSize",
      { cidr: "198.19.0.0/24", blockSize: 20 },
      "spec.cidr",
      /smaller than one block/,
    ],
    [
      "ipipMode in lower case",
      { cidr: "198.19.0.0/16", ipipMode: "always" },
      "spec.ipipMode",
      /Never, Always, CrossSubnet/,
    ],
    ["an unknown vxlanMode", { cidr: "198.19.0.0/16", vxlanMode: "Sometimes" }, "spec.vxlanMode", /one of/],
    [
      "IPIP and VXLAN both on",
      { cidr: "198.19.0.0/16", ipipMode: "Always", vxlanMode: "CrossSubnet" },
      "spec.vxlanMode",
      /both/,
    ],
    ["IPIP on an IPv6 pool", { cidr: "fd00:19::/48", ipipMode: "CrossSubnet" }, "spec.ipipMode", /IPv6/],
    [
      "natOutgoing as a string",
      { cidr: "198.19.0.0/16", natOutgoing: "yes" },
      "spec.natOutgoing",
      /true or false/,
    ],
    ["disabled as a number", { cidr: "198.19.0.0/16", disabled: 1 }, "spec.disabled", /true or false/],
    [
      "a typo in a field name",
      { cidr: "198.19.0.0/16", natOutgoin: true },
      "spec.natOutgoin",
      /unknown field/,
    ],
    ["the v1 ipip field", { cidr: "198.19.0.0/16", ipip: { enabled: true } }, "spec.ipip", /unknown field/],
    [
      "an unknown allowed use",
      { cidr: "198.19.0.0/16", allowedUses: ["Workload", "Pods"] },
      "spec.allowedUses[1]",
      /one of/,
    ],
    [
      "a repeated allowed use",
      { cidr: "198.19.0.0/16", allowedUses: ["Workload", "Workload"] },
      "spec.allowedUses[1]",
      /more than once/,
    ],
    [
      "allowedUses not a list",
      { cidr: "198.19.0.0/16", allowedUses: "Workload" },
      "spec.allowedUses",
      /list/,
    ],
    [
      "LoadBalancer with Workload",
      { cidr: "198.19.0.0/16", allowedUses: ["LoadBalancer", "Workload"] },
      "spec.allowedUses",
      /cannot be combined with Workload/,
    ],
    [
      "LoadBalancer with Tunnel",
      { cidr: "198.19.0.0/16", allowedUses: ["Tunnel", "LoadBalancer"] },
      "spec.allowedUses",
      /Tunnel/,
    ],
    [
      "LoadBalancer with IPIP",
      { cidr: "198.19.0.0/16", allowedUses: ["LoadBalancer"], ipipMode: "Always" },
      "spec.ipipMode",
      /LoadBalancer/,
    ],
    [
      "LoadBalancer with VXLAN",
      { cidr: "198.19.0.0/16", allowedUses: ["LoadBalancer"], vxlanMode: "CrossSubnet" },
      "spec.vxlanMode",
      /LoadBalancer/,
    ],
    [
      "LoadBalancer without BGP export",
      { cidr: "198.19.0.0/16", allowedUses: ["LoadBalancer"], disableBGPExport: true },
      "spec.disableBGPExport",
      /LoadBalancer/,
    ],
    [
      "an unknown assignmentMode",
      { cidr: "198.19.0.0/16", assignmentMode: "Auto" },
      "spec.assignmentMode",
      /Automatic, Manual/,
    ],
    [
      "a nodeSelector that is not a string",
      { cidr: "198.19.0.0/16", nodeSelector: 5 },
      "spec.nodeSelector",
      /selector/,
    ],
    [
      "a nodeSelector using global()",
      { cidr: "198.19.0.0/16", nodeSelector: "global()" },
      "spec.nodeSelector",
      /./,
    ],
    [
      "namespaceSelector on a Tunnel pool",
      { cidr: "198.19.0.0/16", allowedUses: ["Tunnel"], namespaceSelector: "x == 'y'" },
      "spec.namespaceSelector",
      /./,
    ],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, spec);
      const hit = issues.find((i) => i.path === path && message.test(i.message));
      assert.ok(
        hit,
        `expected an issue at ${path} matching ${String(message)}, got ${JSON.stringify(issues)}`,
      );
    });
  }

  it("rejects a LoadBalancer pool limited to some nodes", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    const issues = issuesFor(K, {
      cidr: "198.19.0.0/16",
      allowedUses: ["LoadBalancer"],
      nodeSelector: "rack == 'a'",
    });
    assert.deepEqual(
      issues.map((i) => i.path),
      ["spec.nodeSelector"],
    );
  });

  it("accepts a LoadBalancer pool with nodeSelector all()", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    assert.deepEqual(
      issuesFor(K, { cidr: "198.19.0.0/16", allowedUses: ["LoadBalancer"], nodeSelector: "all()" }),
      [],
    );
  });

  it("records the bad value with the issue", () => {
    const [issue] = issuesFor(K, { cidr: "198.19.0.0/16", ipipMode: "always" });
    assert.equal(issue?.value, "always");
  });

  it("reports every problem at once", () => {
    const issues = issuesFor(K, { cidr: "fd00:19::/48", blockSize: 26, ipipMode: "Always", typo: 1 });
    assert.deepEqual(issues.map((i) => i.path).sort(), ["spec.blockSize", "spec.ipipMode", "spec.typo"]);
  });

  describe("defaults", () => {
    it("fills what Calico stores for an IPv4 pool", () => {
      const out = K.withDefaults(resource(K, { cidr: "198.19.0.0/16" }));
      assert.deepEqual(out.spec, {
        cidr: "198.19.0.0/16",
        blockSize: 26,
        ipipMode: "Never",
        vxlanMode: "Never",
        nodeSelector: "all()",
        allowedUses: ["Workload", "Tunnel"],
        assignmentMode: "Automatic",
      });
    });

    it("uses /122 blocks for IPv6", () => {
      assert.equal(K.withDefaults(resource(K, { cidr: "fd00:19::/48" })).spec.blockSize, 122);
    });

    it("keeps values that were set", () => {
      const spec = {
        cidr: "198.19.0.0/16",
        blockSize: 24,
        ipipMode: "Always",
        vxlanMode: "Never",
        nodeSelector: "rack == 'a'",
        allowedUses: ["Workload"],
        assignmentMode: "Manual",
      };
      assert.deepEqual(K.withDefaults(resource(K, spec)).spec, spec);
    });

    it("does not modify its input", () => {
      const r = resource(K, { cidr: "198.19.0.0/16" });
      K.withDefaults(r);
      assert.deepEqual(r.spec, { cidr: "198.19.0.0/16" });
    });

    it("produces a resource that still validates", () => {
      const out = K.withDefaults(resource(K, { cidr: "198.19.0.0/16" }));
      const issues = issuesFor(K, out.spec).filter((i) => i.path !== "spec.nodeSelector");
      assert.deepEqual(issues, []);
    });
  });
});
