import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  WORKLOAD_ENDPOINT_KIND,
  parseWorkloadEndpointName,
  workloadEndpointName,
  type WorkloadEndpointIdentity,
} from "./workload-endpoint.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = WORKLOAD_ENDPOINT_KIND;

const base = {
  orchestrator: "k8s",
  node: "host-1",
  pod: "frontend-5gs43",
  endpoint: "eth0",
  interfaceName: "cali0ef24ba",
};
const NAME = "host--1-k8s-frontend--5gs43-eth0";

describe("WorkloadEndpoint names (reference/calico.md §7.4)", () => {
  const cases: [string, WorkloadEndpointIdentity, string][] = [
    [
      "doubles every dash of a k8s identity",
      { node: "ip-10-0-0-1", orchestrator: "k8s", pod: "nginx-7d9", endpoint: "eth0" },
      "ip--10--0--0--1-k8s-nginx--7d9-eth0",
    ],
    [
      "uses the container ID for cni",
      { node: "h", orchestrator: "cni", containerID: "abc123", endpoint: "eth0" },
      "h-cni-abc123-eth0",
    ],
    [
      "uses the literal libnetwork",
      { node: "h", orchestrator: "libnetwork", endpoint: "ep1" },
      "h-libnetwork-libnetwork-ep1",
    ],
    [
      "uses the workload otherwise",
      { node: "h", orchestrator: "openstack", workload: "vm-1", endpoint: "tap1" },
      "h-openstack-vm--1-tap1",
    ],
    [
      "keeps dots",
      { node: "node1.example.com", orchestrator: "k8s", pod: "p", endpoint: "eth0" },
      "node1.example.com-k8s-p-eth0",
    ],
  ];
  for (const [name, id, expected] of cases) {
    it(name, () => {
      assert.equal(workloadEndpointName(id), expected);
      const parsed = parseWorkloadEndpointName(expected);
      const want: WorkloadEndpointIdentity =
        id.orchestrator === "libnetwork" ? { ...id, workload: "libnetwork" } : id;
      assert.deepEqual(parsed, want);
    });
  }

  const bad: [string, WorkloadEndpointIdentity, RegExp][] = [
    ["a k8s identity without pod", { node: "h", orchestrator: "k8s", endpoint: "eth0" }, /pod is required/],
    [
      "a cni identity without containerID",
      { node: "h", orchestrator: "cni", endpoint: "eth0" },
      /containerID/,
    ],
    ["an empty node", { node: "", orchestrator: "k8s", pod: "p", endpoint: "eth0" }, /node/],
    [
      "a segment starting with a dash",
      { node: "-h", orchestrator: "k8s", pod: "p", endpoint: "eth0" },
      /start or end/,
    ],
    [
      "a segment ending with a dash",
      { node: "h", orchestrator: "k8s", pod: "p-", endpoint: "eth0" },
      /start or end/,
    ],
  ];
  for (const [name, id, message] of bad) {
    it(`refuses to build from ${name}`, () => assert.throws(() => workloadEndpointName(id), message));
  }

  const unparsable = [
    "a-b-c",
    "a-b-c-d-e",
    "a---b-c-d",
    "a-b-c-",
    "-a-b-c-d",
    "h-libnetwork-other-ep",
    "a--b-c-d",
  ];
  for (const name of unparsable) {
    it(`does not parse ${JSON.stringify(name)}`, () =>
      assert.equal(parseWorkloadEndpointName(name), undefined));
  }

  it("round-trips any identity through build and parse", () => {
    const seg = fc.stringMatching(/^[a-z0-9.][a-z0-9.-]{0,20}$/).filter((s) => !s.endsWith("-"));
    const identity = fc
      .record({
        node: seg,
        orchestrator: fc.oneof(fc.constantFrom("k8s", "cni", "libnetwork", "openstack"), seg),
        third: seg,
        endpoint: seg,
      })
      .map(({ node, orchestrator, third, endpoint }): WorkloadEndpointIdentity => {
        const id: WorkloadEndpointIdentity = { node, orchestrator, endpoint };
        if (orchestrator === "k8s") id.pod = third;
        else if (orchestrator === "cni") id.containerID = third;
        else id.workload = orchestrator === "libnetwork" ? "libnetwork" : third;
        return id;
      });
    fc.assert(
      fc.property(identity, (id) => {
        assert.deepEqual(parseWorkloadEndpointName(workloadEndpointName(id)), id);
      }),
      { numRuns: 500 },
    );
  });

  it("never throws while parsing arbitrary text", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        parseWorkloadEndpointName(s);
      }),
    );
  });
});

describe("WorkloadEndpoint", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "workloadendpoints");
    assert.equal(K.namespaced, true);
    assert.deepEqual([...K.shortNames], ["workloadendpoint", "wep", "weps"]);
  });

  // The reference's sample, except that its containerID is quoted (unquoted, YAML reads the
  // digits as a number) and its duplicated `endpoint: eth0` key appears once.
  it("accepts the example from Calico's WorkloadEndpoint reference", () => {
    const spec = {
      node: "node1",
      orchestrator: "k8s",
      endpoint: "eth0",
      containerID: "1337495556942031415926535",
      pod: "my-nginx-b1337a",
      interfaceName: "cali0ef24ba",
      mac: "ca:fe:1d:52:bb:e9",
      ipNetworks: ["198.19.0.0/32"],
      profiles: ["profile1"],
      ports: [
        { name: "some-port", port: 1234, protocol: "TCP" },
        { name: "another-port", port: 5432, protocol: "UDP" },
      ],
    };
    assert.deepEqual(issuesFor(K, spec, "node1-k8s-my--nginx--b1337a-eth0", { namespace: "default" }), []);
  });

  it("rejects an unquoted numeric containerID as YAML would read it", () => {
    const issues = issuesFor(K, { ...base, orchestrator: "cni", containerID: 1.3374955569420314e24 }, NAME);
    assert.ok(issues.some((i) => i.path === "spec.containerID" && /string/.test(i.message)));
  });

  const valid: [string, Record<string, unknown>][] = [
    ["a minimal k8s endpoint", {}],
    [
      "addresses with gateways",
      {
        ipNetworks: ["198.19.1.5/32", "fd00:19::5/128"],
        ipv4Gateway: "169.254.1.1",
        ipv6Gateway: "fe80::ecee:eeff:feee:eeee",
      },
    ],
    ["bare addresses in ipNetworks", { ipNetworks: ["198.19.1.5", "fd00:19::5"] }],
    [
      "a floating IP",
      { ipNetworks: ["198.19.1.5/32"], ipNATs: [{ internalIP: "198.19.1.5", externalIP: "198.18.100.1" }] },
    ],
    [
      "a hostPort mapping without a name",
      { ports: [{ protocol: "TCP", port: 80, hostPort: 8080, hostIP: "198.18.0.5" }] },
    ],
    ["spoofable prefixes", { allowSpoofedSourcePrefixes: ["198.19.2.0/24"] }],
    ["a service account", { serviceAccountName: "default" }],
    ["QoS controls", { qosControls: { ingressBandwidth: 1000000, egressBurst: 4294967296, dscp: 46 } }],
  ];
  for (const [name, extra] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, { ...base, ...extra }, NAME), []));
  }

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    ["a missing interfaceName", { interfaceName: undefined }, "spec.interfaceName", /required/],
    [
      "an interface name over 15 characters",
      { interfaceName: "cali0123456789abcdef" },
      "spec.interfaceName",
      /1-15/,
    ],
    ["a range in ipNetworks", { ipNetworks: ["198.19.1.0/24"] }, "spec.ipNetworks[0]", /single address/],
    ["an unmasked network", { ipNetworks: ["198.19.1.5/24"] }, "spec.ipNetworks[0]", /host bits/],
    ["a malformed network", { ipNetworks: ["198.19.1"] }, "spec.ipNetworks[0]", /CIDR/],
    ["an IPv6 ipv4Gateway", { ipv4Gateway: "fe80::1" }, "spec.ipv4Gateway", /IPv4/],
    ["an IPv4 ipv6Gateway", { ipv6Gateway: "169.254.1.1" }, "spec.ipv6Gateway", /IPv6/],
    [
      "a NAT outside the networks",
      { ipNetworks: ["198.19.1.5/32"], ipNATs: [{ internalIP: "198.19.1.6", externalIP: "198.18.100.1" }] },
      "spec.ipNATs[0].internalIP",
      /ipNetworks/,
    ],
    [
      "a NAT mixing families",
      { ipNetworks: ["198.19.1.5/32"], ipNATs: [{ internalIP: "198.19.1.5", externalIP: "fd00::1" }] },
      "spec.ipNATs[0].externalIP",
      /IPv4/,
    ],
    [
      "a NAT with a bad address",
      { ipNATs: [{ internalIP: "x", externalIP: "198.18.100.1" }] },
      "spec.ipNATs[0].internalIP",
      /address/,
    ],
    ["a bad MAC", { mac: "ca:fe:1d:52:bb" }, "spec.mac", /MAC/],
    ["a bad container ID", { containerID: "abc_123" }, "spec.containerID", /letters, digits/],
    ["an upper-case pod name", { pod: "Frontend" }, "spec.pod", /DNS-1123/],
    [
      "a port with neither name nor hostPort",
      { ports: [{ protocol: "TCP", port: 80 }] },
      "spec.ports[0].name",
      /unless hostPort/,
    ],
    [
      "a hostPort above 65535",
      { ports: [{ name: "x", protocol: "TCP", port: 80, hostPort: 70000 }] },
      "spec.ports[0].hostPort",
      /0 to 65535/,
    ],
    [
      "a bad hostIP",
      { ports: [{ name: "x", protocol: "TCP", port: 80, hostIP: "local" }] },
      "spec.ports[0].hostIP",
      /IP/,
    ],
    [
      "a bad spoofable prefix",
      { allowSpoofedSourcePrefixes: ["198.19.2.0/40"] },
      "spec.allowSpoofedSourcePrefixes[0]",
      /CIDR/,
    ],
    [
      "a negative QoS value",
      { qosControls: { ingressBandwidth: -1 } },
      "spec.qosControls.ingressBandwidth",
      /integer/,
    ],
    [
      "a typo in QoS controls",
      { qosControls: { ingresBandwidth: 1 } },
      "spec.qosControls.ingresBandwidth",
      /unknown field/,
    ],
    ["a typo at spec level", { ipNetwork: ["198.19.1.5/32"] }, "spec.ipNetwork", /unknown field/],
    ["a k8s endpoint without pod", { pod: undefined }, "spec.pod", /required/],
    ["an endpoint without node", { node: undefined }, "spec.node", /required/],
  ];
  for (const [name, extra, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, { ...base, ...extra }, NAME);
      assert.ok(
        issues.some((i) => i.path === path && message.test(i.message)),
        `expected ${path} ~ ${String(message)}, got ${JSON.stringify(issues)}`,
      );
    });
  }

  it("rejects a name that does not match the identifiers, naming the right one", () => {
    const issues = issuesFor(K, base, "host-1-k8s-frontend-5gs43-eth0");
    assert.deepEqual(issues, [
      {
        path: "metadata.name",
        value: "host-1-k8s-frontend-5gs43-eth0",
        message: `must be "${NAME}" (<node>-<orchestrator>-<pod|containerID|workload>-<endpoint>, with each '-' doubled)`,
      },
    ]);
  });

  it("matches cni endpoints by container ID", () => {
    const spec = { ...base, orchestrator: "cni", pod: undefined, containerID: "abc123" };
    assert.deepEqual(issuesFor(K, spec, "host--1-cni-abc123-eth0"), []);
  });

  it("stores the endpoint as written", () => {
    const r = resource(K, base, NAME);
    assert.deepEqual(K.withDefaults(r), r);
  });
});
