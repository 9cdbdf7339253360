import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HOST_ENDPOINT_KIND } from "./host-endpoint.js";
import { issuesFor, resource } from "./infra-testing.js";

const K = HOST_ENDPOINT_KIND;

describe("HostEndpoint", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "hostendpoints");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames], ["hostendpoint", "hep", "heps"]);
  });

  it("accepts the example from Calico's HostEndpoint reference unchanged", () => {
    const spec = {
      interfaceName: "eth0",
      node: "myhost",
      expectedIPs: ["198.18.0.1", "198.18.0.2"],
      profiles: ["profile1", "profile2"],
      ports: [
        { name: "some-port", port: 1234, protocol: "TCP" },
        { name: "another-port", port: 5432, protocol: "UDP" },
      ],
    };
    assert.deepEqual(issuesFor(K, spec, "some.name"), []);
  });

  const valid: [string, unknown][] = [
    ["an all-interfaces endpoint", { node: "host-1", interfaceName: "*" }],
    ["an endpoint found by its IPs", { node: "host-1", expectedIPs: ["198.18.0.5", "fd00::5"] }],
    [
      "an SCTP port by number",
      { node: "host-1", interfaceName: "eth0", ports: [{ name: "sig", protocol: 132, port: 2905 }] },
    ],
    [
      "an auto-created endpoint",
      { node: "host-1", interfaceName: "*", profiles: ["projectcalico-default-allow"] },
    ],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec), []));
  }

  const invalid: [string, unknown, string, RegExp][] = [
    ["a missing node", { interfaceName: "eth0" }, "spec.node", /required/],
    ["an empty node", { node: "", interfaceName: "eth0" }, "spec.node", /required/],
    ["an upper-case node name", { node: "Host1", interfaceName: "eth0" }, "spec.node", /DNS-1123/],
    ["neither interface nor IPs", { node: "host-1" }, "spec.interfaceName", /expectedIPs/],
    [
      "an empty interface and no IPs",
      { node: "host-1", interfaceName: "", expectedIPs: [] },
      "spec.interfaceName",
      /expectedIPs/,
    ],
    [
      "an interface name over 15 characters",
      { node: "host-1", interfaceName: "a-very-long-interface" },
      "spec.interfaceName",
      /1-15/,
    ],
    [
      "an interface name with a slash",
      { node: "host-1", interfaceName: "eth0/1" },
      "spec.interfaceName",
      /interface name/,
    ],
    [
      "a malformed expected IP",
      { node: "host-1", expectedIPs: ["198.18.0.500"] },
      "spec.expectedIPs[0]",
      /IP/,
    ],
    [
      "a CIDR as expected IP",
      { node: "host-1", expectedIPs: ["198.18.0.0/24"] },
      "spec.expectedIPs[0]",
      /IP/,
    ],
    ["expectedIPs not a list", { node: "host-1", expectedIPs: "198.18.0.5" }, "spec.expectedIPs", /list/],
    [
      "a bad profile name",
      { node: "host-1", interfaceName: "*", profiles: ["Bad_Profile"] },
      "spec.profiles[0]",
      /DNS-1123/,
    ],
    [
      "a port without name",
      { node: "host-1", interfaceName: "*", ports: [{ protocol: "TCP", port: 80 }] },
      "spec.ports[0].name",
      /required/,
    ],
    [
      "a port name over 15 characters",
      {
        node: "host-1",
        interfaceName: "*",
        ports: [{ name: "a-very-long-port-name", protocol: "TCP", port: 80 }],
      },
      "spec.ports[0].name",
      /1-15/,
    ],
    [
      "a port name without letters",
      { node: "host-1", interfaceName: "*", ports: [{ name: "8080", protocol: "TCP", port: 80 }] },
      "spec.ports[0].name",
      /letter/,
    ],
    [
      "a port name with double dash",
      { node: "host-1", interfaceName: "*", ports: [{ name: "a--b", protocol: "TCP", port: 80 }] },
      "spec.ports[0].name",
      /consecutive/,
    ],
    [
      "an upper-case port name",
      { node: "host-1", interfaceName: "*", ports: [{ name: "HTTP", protocol: "TCP", port: 80 }] },
      "spec.ports[0].name",
      /a-z/,
    ],
    [
      "port 0",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: "TCP", port: 0 }] },
      "spec.ports[0].port",
      /1 to 65535/,
    ],
    [
      "port 65536",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: "TCP", port: 65536 }] },
      "spec.ports[0].port",
      /1 to 65535/,
    ],
    [
      "a port as a string",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: "TCP", port: "80" }] },
      "spec.ports[0].port",
      /integer/,
    ],
    [
      "a missing protocol",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", port: 80 }] },
      "spec.ports[0].protocol",
      /required/,
    ],
    [
      "ICMP on a named port",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: "ICMP", port: 80 }] },
      "spec.ports[0].protocol",
      /no ports/,
    ],
    [
      "a lower-case protocol",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: "tcp", port: 80 }] },
      "spec.ports[0].protocol",
      /TCP, UDP, SCTP/,
    ],
    [
      "protocol number 1",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: 1, port: 80 }] },
      "spec.ports[0].protocol",
      /no ports/,
    ],
    [
      "hostPort on a host endpoint port",
      { node: "host-1", interfaceName: "*", ports: [{ name: "x", protocol: "TCP", port: 80, hostPort: 80 }] },
      "spec.ports[0].hostPort",
      /unknown field/,
    ],
    [
      "a typo in a field name",
      { node: "host-1", interfaceName: "eth0", expectedIP: ["198.18.0.5"] },
      "spec.expectedIP",
      /unknown field/,
    ],
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

  it("stores the endpoint as written", () => {
    const r = resource(K, { node: "host-1", interfaceName: "*" });
    assert.deepEqual(K.withDefaults(r), r);
  });
});
