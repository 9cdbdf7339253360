import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BGP_CONFIGURATION_KIND } from "./bgp-configuration.js";
import { communityProblem } from "./bgp-community.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = BGP_CONFIGURATION_KIND;

describe("BGPConfiguration", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "bgpconfigurations");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames], ["bgpconfiguration", "bgpconfig", "bgpconfigs"]);
  });

  it("accepts a full example modelled on Calico's BGPConfiguration reference", () => {
    const spec = {
      logSeverityScreen: "Info",
      nodeToNodeMeshEnabled: true,
      nodeMeshMaxRestartTime: "120s",
      asNumber: 63400,
      serviceClusterIPs: [{ cidr: "198.19.0.0/16" }],
      serviceExternalIPs: [{ cidr: "104.244.42.129/32" }, { cidr: "172.217.3.0/24" }],
      listenPort: 178,
      bindMode: "NodeIP",
      communities: [
        { name: "bgp-large-community", value: "63400:300:100" },
        { name: "bgp-std-community", value: "63400:100" },
      ],
      prefixAdvertisements: [
        { cidr: "172.218.4.0/26", communities: ["bgp-large-community", "63400:120"] },
        { cidr: "fd00::/48", communities: ["bgp-std-community"] },
      ],
    };
    assert.deepEqual(issuesFor(K, spec, "default"), []);
  });

  const valid: [string, Record<string, unknown>][] = [
    ["an empty spec", {}],
    ["a dotted AS", { asNumber: "1.1" }],
    ["the mesh turned off", { nodeToNodeMeshEnabled: false }],
    ["a mesh password", { nodeMeshPassword: { secretKeyRef: { name: "bgp-secrets", key: "mesh" } } }],
    ["ignored interfaces with globs", { ignoredInterfaces: ["docker0", "veth*"] }],
    [
      "workload peering addresses",
      { localWorkloadPeeringIPV4: "169.254.0.179", localWorkloadPeeringIPV6: "fe80::179" },
    ],
    ["route priorities", { ipv4NormalRoutePriority: 1024, ipv6NormalRoutePriority: 1024 }],
    [
      "LB aggregation off",
      { serviceLoadBalancerIPs: [{ cidr: "198.19.200.0/24" }], serviceLoadBalancerAggregation: "Disabled" },
    ],
    [
      "a literal community in an advertisement",
      { prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["64512:1"] }] },
    ],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec, "default"), []));
  }

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    ["a lower-case log level", { logSeverityScreen: "info" }, "spec.logSeverityScreen", /Info/],
    ["mesh as a string", { nodeToNodeMeshEnabled: "true" }, "spec.nodeToNodeMeshEnabled", /true or false/],
    ["AS 4294967296", { asNumber: 4294967296 }, "spec.asNumber", /AS number/],
    ["listenPort 0", { listenPort: 0 }, "spec.listenPort", /1 to 65535/],
    ["listenPort 65536", { listenPort: 65536 }, "spec.listenPort", /1 to 65535/],
    ["an unknown bindMode", { bindMode: "All" }, "spec.bindMode", /None, NodeIP/],
    [
      "an unmasked service CIDR",
      { serviceClusterIPs: [{ cidr: "198.19.0.1/16" }] },
      "spec.serviceClusterIPs[0].cidr",
      /host bits/,
    ],
    [
      "a malformed external IP block",
      { serviceExternalIPs: [{ cidr: "300.0.0.0/8" }] },
      "spec.serviceExternalIPs[0].cidr",
      /CIDR/,
    ],
    [
      "a typo in a service block",
      { serviceLoadBalancerIPs: [{ cdir: "198.19.0.0/24" }] },
      "spec.serviceLoadBalancerIPs[0].cdir",
      /unknown field/,
    ],
    [
      "mesh password with mesh off",
      { nodeToNodeMeshEnabled: false, nodeMeshPassword: { secretKeyRef: { name: "s", key: "k" } } },
      "spec.nodeMeshPassword",
      /nodeToNodeMeshEnabled is false/,
    ],
    [
      "mesh restart time with mesh off",
      { nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: "60s" },
      "spec.nodeMeshMaxRestartTime",
      /nodeToNodeMeshEnabled is false/,
    ],
    [
      "a bad restart time",
      { nodeMeshMaxRestartTime: "2 minutes" },
      "spec.nodeMeshMaxRestartTime",
      /duration/,
    ],
    ["ignoring every interface", { ignoredInterfaces: ["*"] }, "spec.ignoredInterfaces[0]", /not "\*" alone/],
    [
      "an over-long ignored interface",
      { ignoredInterfaces: ["a-very-long-interface"] },
      "spec.ignoredInterfaces[0]",
      /1-15/,
    ],
    [
      "an IPv6 workload peering IPv4 address",
      { localWorkloadPeeringIPV4: "fe80::1" },
      "spec.localWorkloadPeeringIPV4",
      /IPv4/,
    ],
    ["route priority 0", { ipv4NormalRoutePriority: 0 }, "spec.ipv4NormalRoutePriority", /1 to 2147483646/],
    [
      "an unknown aggregation mode",
      { serviceLoadBalancerAggregation: "On" },
      "spec.serviceLoadBalancerAggregation",
      /Enabled, Disabled/,
    ],
    [
      "a standard community above 16 bits",
      {
        communities: [{ name: "c", value: "65536:1" }],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["c"] }],
      },
      "spec.communities[0].value",
      /0-65535/,
    ],
    [
      "a large community above 32 bits",
      {
        communities: [{ name: "c", value: "1:2:4294967296" }],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["c"] }],
      },
      "spec.communities[0].value",
      /0-4294967295/,
    ],
    [
      "a community value in the wrong form",
      {
        communities: [{ name: "c", value: "64512-100" }],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["c"] }],
      },
      "spec.communities[0].value",
      /aa:nn/,
    ],
    [
      "a community without a value",
      { communities: [{ name: "c" }], prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["c"] }] },
      "spec.communities[0].value",
      /required/,
    ],
    [
      "a community without a name",
      {
        communities: [{ value: "1:1" }],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["1:1"] }],
      },
      "spec.communities[0].name",
      /required/,
    ],
    [
      "a community name that is not DNS-1123",
      {
        communities: [{ name: "My_Community", value: "1:1" }],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["1:1"] }],
      },
      "spec.communities[0].name",
      /DNS-1123/,
    ],
    [
      "a community defined twice",
      {
        communities: [
          { name: "c", value: "1:1" },
          { name: "c", value: "1:2" },
        ],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["c"] }],
      },
      "spec.communities[1].name",
      /more than once/,
    ],
    [
      "communities without advertisements",
      { communities: [{ name: "c", value: "1:1" }] },
      "spec.communities",
      /not used/,
    ],
    [
      "an advertisement naming an undefined community",
      {
        communities: [{ name: "c", value: "1:1" }],
        prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["d"] }],
      },
      "spec.prefixAdvertisements[0].communities[0]",
      /defined in spec.communities \(c\)/,
    ],
    [
      "an advertisement with a bad literal",
      { prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["70000:1"] }] },
      "spec.prefixAdvertisements[0].communities[0]",
      /0-65535/,
    ],
    [
      "an advertisement without cidr",
      { prefixAdvertisements: [{ communities: ["1:1"] }] },
      "spec.prefixAdvertisements[0].cidr",
      /required/,
    ],
    [
      "an advertisement without communities",
      { prefixAdvertisements: [{ cidr: "198.19.0.0/16" }] },
      "spec.prefixAdvertisements[0].communities",
      /required/,
    ],
    [
      "an unmasked advertisement cidr",
      { prefixAdvertisements: [{ cidr: "198.19.0.1/16", communities: ["1:1"] }] },
      "spec.prefixAdvertisements[0].cidr",
      /host bits/,
    ],
    ["a typo", { nodeToNodeMesh: true }, "spec.nodeToNodeMesh", /unknown field/],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, spec, "default");
      assert.ok(
        issues.some((i) => i.path === path && message.test(i.message)),
        `expected ${path} ~ ${String(message)}, got ${JSON.stringify(issues)}`,
      );
    });
  }

  describe("names", () => {
    for (const ok of ["default", "node.host-1", "node.node1.example.com"]) {
      it(`accepts ${ok}`, () => assert.equal(K.nameProblem?.(ok), undefined));
    }
    for (const bad of ["global", "node.", "node.Host1", "nodes.host-1"]) {
      it(`rejects ${bad}`, () => assert.match(K.nameProblem?.(bad) ?? "", /"default" or "node.<node name>"/));
    }
  });

  it("community values accept both sizes at their limits", () => {
    assert.equal(communityProblem("65535:65535"), undefined);
    assert.equal(communityProblem("4294967295:4294967295:4294967295"), undefined);
    assert.equal(communityProblem("0:0"), undefined);
  });

  it("stores a dotted AS as an integer and nothing else", () => {
    const out = K.withDefaults(resource(K, { asNumber: "1.0", logSeverityScreen: "Info" }, "default"));
    assert.deepEqual(out.spec, { asNumber: 65536, logSeverityScreen: "Info" });
  });
});
