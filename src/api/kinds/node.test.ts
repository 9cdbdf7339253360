import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NODE_KIND } from "./node.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = NODE_KIND;
const KEY = "HmNsTyzg7TKvaLsuLK8ppMWMcVzDzgJzNjJUyI8TQ1Y=";

describe("Node", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "nodes");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames], ["node", "no", "nos"]);
  });

  const valid: [string, unknown][] = [
    ["an empty spec", {}],
    ["no spec at all", undefined],
    [
      "the node example from Calico's reference",
      {
        bgp: {
          ipv4Address: "198.18.0.1/24",
          ipv6Address: "2001:db8:85a3::8a2e:370:7334/120",
          ipv4IPIPTunnelAddr: "198.18.0.2",
        },
      },
    ],
    ["an address without prefix", { bgp: { ipv4Address: "198.18.0.5" } }],
    ["an address with host bits (the prefix is the subnet)", { bgp: { ipv4Address: "198.18.0.5/24" } }],
    ["an AS number", { bgp: { asNumber: 64512, ipv4Address: "198.18.0.5/24" } }],
    ["a dotted AS number", { bgp: { asNumber: "1.10" } }],
    ["a route reflector", { bgp: { ipv4Address: "198.18.0.5/24", routeReflectorClusterID: "244.0.0.1" } }],
    [
      "tunnel addresses",
      {
        ipv4VXLANTunnelAddr: "198.19.1.0",
        vxlanTunnelMACAddr: "66:d1:ab:cd:ef:01",
        ipv6VXLANTunnelAddr: "fd00:19::1",
        vxlanTunnelMACAddrV6: "66-d1-ab-cd-ef-02",
      },
    ],
    ["orchestrator references", { orchRefs: [{ nodeName: "host-1", orchestrator: "k8s" }] }],
    [
      "wireguard addresses",
      { wireguard: { interfaceIPv4Address: "198.19.1.1", interfaceIPv6Address: "fd00:19::2" } },
    ],
    [
      "typed addresses",
      { addresses: [{ address: "198.18.0.5", type: "InternalIP" }, { address: "fd00::5" }] },
    ],
    ["interfaces", { interfaces: [{ name: "eth0", addresses: ["198.18.0.5", "fd00::5/64"] }] }],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec, "host-1"), []));
  }

  const invalid: [string, unknown, string, RegExp][] = [
    ["an empty bgp object", { bgp: {} }, "spec.bgp", /must not be empty/],
    [
      "an IPv6 address as ipv4Address",
      { bgp: { ipv4Address: "fd00::1/64" } },
      "spec.bgp.ipv4Address",
      /IPv4/,
    ],
    [
      "an IPv4 address as ipv6Address",
      { bgp: { ipv6Address: "198.18.0.5/24" } },
      "spec.bgp.ipv6Address",
      /IPv6/,
    ],
    ["a malformed address", { bgp: { ipv4Address: "198.18.0.300/24" } }, "spec.bgp.ipv4Address", /CIDR/],
    ["AS 0", { bgp: { asNumber: 0 } }, "spec.bgp.asNumber", /AS number/],
    ["an AS above 32 bits", { bgp: { asNumber: 4294967296 } }, "spec.bgp.asNumber", /AS number/],
    [
      "a dotted AS with a part above 16 bits",
      { bgp: { asNumber: "65536.1" } },
      "spec.bgp.asNumber",
      /dotted/,
    ],
    ["an AS that is words", { bgp: { asNumber: "sixty" } }, "spec.bgp.asNumber", /AS number/],
    [
      "a CIDR as IPIP tunnel address",
      { bgp: { ipv4IPIPTunnelAddr: "198.19.0.1/32" } },
      "spec.bgp.ipv4IPIPTunnelAddr",
      /IPv4 address/,
    ],
    [
      "an IPv6 cluster ID",
      { bgp: { routeReflectorClusterID: "fd00::1" } },
      "spec.bgp.routeReflectorClusterID",
      /IPv4/,
    ],
    ["a typo inside bgp", { bgp: { ipv4Adress: "198.18.0.5/24" } }, "spec.bgp.ipv4Adress", /unknown field/],
    ["a typo at spec level", { bgpp: {} }, "spec.bgpp", /unknown field/],
    ["a bad MAC", { vxlanTunnelMACAddr: "66:d1:ab" }, "spec.vxlanTunnelMACAddr", /MAC/],
    [
      "an IPv4 VXLAN address that is IPv6",
      { ipv4VXLANTunnelAddr: "fd00::1" },
      "spec.ipv4VXLANTunnelAddr",
      /IPv4/,
    ],
    [
      "an orchRef without orchestrator",
      { orchRefs: [{ nodeName: "x" }] },
      "spec.orchRefs[0].orchestrator",
      /required/,
    ],
    ["orchRefs not a list", { orchRefs: { orchestrator: "k8s" } }, "spec.orchRefs", /list/],
    [
      "an unknown address type",
      { addresses: [{ address: "198.18.0.5", type: "Public" }] },
      "spec.addresses[0].type",
      /CalicoNodeIP/,
    ],
    [
      "an address entry without address",
      { addresses: [{ type: "InternalIP" }] },
      "spec.addresses[0].address",
      /required/,
    ],
    [
      "a bad interface address",
      { interfaces: [{ name: "eth0", addresses: ["nope"] }] },
      "spec.interfaces[0].addresses[0]",
      /CIDR/,
    ],
    [
      "a wireguard v4 address that is v6",
      { wireguard: { interfaceIPv4Address: "fd00::1" } },
      "spec.wireguard.interfaceIPv4Address",
      /IPv4/,
    ],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, spec, "host-1");
      assert.ok(
        issues.some((i) => i.path === path && message.test(i.message)),
        `expected ${path} ~ ${String(message)}, got ${JSON.stringify(issues)}`,
      );
    });
  }

  it("accepts a valid WireGuard public key in status", () => {
    assert.deepEqual(
      issuesFor(K, {}, "host-1", { status: { wireguardPublicKey: KEY, podCIDRs: ["198.19.1.0/24"] } }),
      [],
    );
  });

  it("rejects a malformed WireGuard key in status", () => {
    const issues = issuesFor(K, {}, "host-1", { status: { wireguardPublicKeyV6: "not-a-key" } });
    assert.deepEqual(
      issues.map((i) => i.path),
      ["status.wireguardPublicKeyV6"],
    );
  });

  it("stores a dotted AS number as the integer Calico stores", () => {
    const out = K.withDefaults(
      resource(K, { bgp: { asNumber: "1.10", ipv4Address: "198.18.0.5/24" } }, "host-1"),
    );
    assert.deepEqual(out.spec, { bgp: { asNumber: 65546, ipv4Address: "198.18.0.5/24" } });
  });
});
