import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BGP_PEER_KIND, parsePeerIP } from "./bgp-peer.js";
import { issuesFor, resource, SKIP_WITHOUT_SELECTORS } from "./infra-testing.js";

const K = BGP_PEER_KIND;

describe("BGPPeer", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "bgppeers");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames], ["bgppeer", "bgpp", "bgpps", "bp", "bps"]);
  });

  it("accepts the example from Calico's BGPPeer reference unchanged", () => {
    assert.deepEqual(
      issuesFor(K, { node: "rack1-host1", peerIP: "198.18.1.1", asNumber: 63400 }, "some.name"),
      [],
    );
  });

  it("accepts a route-reflector peering by selectors", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    const spec = { nodeSelector: "all()", peerSelector: "route-reflector == 'true'" };
    assert.deepEqual(issuesFor(K, spec, "peer-with-route-reflectors"), []);
  });

  it("accepts a workload peering", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    assert.deepEqual(issuesFor(K, { localWorkloadSelector: "app == 'bgp-speaker'", asNumber: 65001 }), []);
  });

  const valid: [string, Record<string, unknown>][] = [
    ["a global peer", { peerIP: "198.18.0.254", asNumber: 64513 }],
    ["an IPv4 peer with a port", { peerIP: "198.18.0.254:1790", asNumber: 64513 }],
    ["an IPv6 peer", { peerIP: "fd00::fe", asNumber: "1.10" }],
    ["an IPv6 peer with a port", { peerIP: "[fd00::fe]:179", asNumber: 64513 }],
    [
      "every optional field",
      {
        node: "host-1",
        peerIP: "198.18.0.254",
        asNumber: 64513,
        localASNumber: 64600,
        nextHopMode: "Self",
        password: { secretKeyRef: { name: "bgp-secrets", key: "rr-password" } },
        sourceAddress: "None",
        maxRestartTime: "15s",
        keepaliveTime: "20s",
        numAllowedLocalASNumbers: 1,
        ttlSecurity: 1,
        reachableBy: "198.18.0.1",
        filters: ["export-pools", "no-defaults"],
        reversePeering: "Manual",
      },
    ],
    ["keepOriginalNextHop alone", { peerIP: "198.18.0.254", asNumber: 64513, keepOriginalNextHop: true }],
    [
      "keepOriginalNextHop false with nextHopMode",
      { peerIP: "198.18.0.254", asNumber: 64513, keepOriginalNextHop: false, nextHopMode: "Keep" },
    ],
  ];
  for (const [name, spec] of valid) {
    it(`accepts ${name}`, () => assert.deepEqual(issuesFor(K, spec), []));
  }

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "node with nodeSelector",
      { node: "host-1", nodeSelector: "all()", peerIP: "198.18.0.254", asNumber: 1 },
      "spec.node",
      /nodeSelector/,
    ],
    [
      "peerIP with peerSelector",
      { peerIP: "198.18.0.254", peerSelector: "rr == 'true'" },
      "spec.peerIP",
      /peerSelector/,
    ],
    [
      "asNumber with peerSelector",
      { peerSelector: "rr == 'true'", asNumber: 64512 },
      "spec.asNumber",
      /from each selected node/,
    ],
    ["peerIP without asNumber", { peerIP: "198.18.0.254" }, "spec.asNumber", /required with peerIP/],
    [
      "localWorkloadSelector without asNumber",
      { localWorkloadSelector: "a == 'b'" },
      "spec.asNumber",
      /localWorkloadSelector/,
    ],
    [
      "localWorkloadSelector with peerIP",
      { localWorkloadSelector: "a == 'b'", asNumber: 1, peerIP: "198.18.0.1" },
      "spec.peerIP",
      /localWorkloadSelector/,
    ],
    [
      "localWorkloadSelector with peerSelector",
      { localWorkloadSelector: "a == 'b'", asNumber: 1, peerSelector: "c == 'd'" },
      "spec.peerSelector",
      /localWorkloadSelector/,
    ],
    ["a malformed peerIP", { peerIP: "198.18.0", asNumber: 1 }, "spec.peerIP", /IP address/],
    [
      "an IPv6 peer with a port but no brackets",
      { peerIP: "fd00::fe:179x", asNumber: 1 },
      "spec.peerIP",
      /\[IPv6\]:port/,
    ],
    ["port 0", { peerIP: "198.18.0.254:0", asNumber: 1 }, "spec.peerIP", /1-65535/],
    ["port 70000", { peerIP: "[fd00::1]:70000", asNumber: 1 }, "spec.peerIP", /1-65535/],
    ["an IPv4 address in brackets", { peerIP: "[198.18.0.1]:179", asNumber: 1 }, "spec.peerIP", /IP address/],
    ["a peerIP that is a number", { peerIP: 3324, asNumber: 1 }, "spec.peerIP", /IP address/],
    ["AS 0", { peerIP: "198.18.0.254", asNumber: 0 }, "spec.asNumber", /AS number/],
    [
      "a bad local AS",
      { peerIP: "198.18.0.254", asNumber: 1, localASNumber: "x" },
      "spec.localASNumber",
      /AS number/,
    ],
    [
      "keepOriginalNextHop with nextHopMode",
      { peerIP: "198.18.0.254", asNumber: 1, keepOriginalNextHop: true, nextHopMode: "Keep" },
      "spec.keepOriginalNextHop",
      /deprecated/,
    ],
    [
      "an unknown nextHopMode",
      { peerIP: "198.18.0.254", asNumber: 1, nextHopMode: "Other" },
      "spec.nextHopMode",
      /Auto, Self, Keep/,
    ],
    [
      "an unknown sourceAddress",
      { peerIP: "198.18.0.254", asNumber: 1, sourceAddress: "NodeIP" },
      "spec.sourceAddress",
      /UseNodeIP, None/,
    ],
    [
      "reachableBy without peerIP",
      { peerSelector: "a == 'b'", reachableBy: "198.18.0.1" },
      "spec.reachableBy",
      /peerIP is empty/,
    ],
    [
      "reachableBy of the other family",
      { peerIP: "198.18.0.254", asNumber: 1, reachableBy: "fd00::1" },
      "spec.reachableBy",
      /IPv4/,
    ],
    [
      "a malformed reachableBy",
      { peerIP: "198.18.0.254", asNumber: 1, reachableBy: "gateway" },
      "spec.reachableBy",
      /address/,
    ],
    [
      "a bad maxRestartTime",
      { peerIP: "198.18.0.254", asNumber: 1, maxRestartTime: "120" },
      "spec.maxRestartTime",
      /duration/,
    ],
    [
      "a bad keepaliveTime",
      { peerIP: "198.18.0.254", asNumber: 1, keepaliveTime: "-1s" },
      "spec.keepaliveTime",
      /negative/,
    ],
    [
      "ttlSecurity above 255",
      { peerIP: "198.18.0.254", asNumber: 1, ttlSecurity: 256 },
      "spec.ttlSecurity",
      /0 to 255/,
    ],
    [
      "a negative numAllowedLocalASNumbers",
      { peerIP: "198.18.0.254", asNumber: 1, numAllowedLocalASNumbers: -1 },
      "spec.numAllowedLocalASNumbers",
      /integer/,
    ],
    [
      "a bad filter name",
      { peerIP: "198.18.0.254", asNumber: 1, filters: ["Export_All"] },
      "spec.filters[0]",
      /DNS-1123/,
    ],
    [
      "a password without secretKeyRef",
      { peerIP: "198.18.0.254", asNumber: 1, password: {} },
      "spec.password.secretKeyRef",
      /required/,
    ],
    [
      "a password without key",
      { peerIP: "198.18.0.254", asNumber: 1, password: { secretKeyRef: { name: "s" } } },
      "spec.password.secretKeyRef.key",
      /required/,
    ],
    [
      "a plain-text password",
      { peerIP: "198.18.0.254", asNumber: 1, password: "hunter2" },
      "spec.password",
      /object/,
    ],
    ["an upper-case node", { node: "Host1", peerIP: "198.18.0.254", asNumber: 1 }, "spec.node", /DNS-1123/],
    ["a typo", { peerIp: "198.18.0.254", asNumber: 1 }, "spec.peerIp", /unknown field/],
    [
      "an unknown reversePeering",
      { peerIP: "198.18.0.254", asNumber: 1, reversePeering: "Both" },
      "spec.reversePeering",
      /Auto, Manual/,
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

  describe("peerIP forms", () => {
    const cases: [string, string | undefined, number | undefined][] = [
      ["198.18.0.1", "4", undefined],
      ["198.18.0.1:179", "4", 179],
      ["fd00::1", "6", undefined],
      ["[fd00::1]:1179", "6", 1179],
      ["::ffff:198.18.0.1", "6", undefined],
      ["198.18.0.1:", undefined, undefined],
      ["[fd00::1]", undefined, undefined],
      ["fd00::1:179", "6", undefined],
      ["198.18.0.1:65536", undefined, undefined],
    ];
    for (const [text, family, port] of cases) {
      it(`reads ${text}`, () => {
        const p = parsePeerIP(text);
        assert.equal(p === undefined ? undefined : String(p.ip.family), family);
        assert.equal(p?.port, port);
      });
    }
  });

  it("stores dotted AS numbers as integers", () => {
    const out = K.withDefaults(
      resource(K, { peerIP: "198.18.0.254", asNumber: "1.10", localASNumber: "65000" }),
    );
    assert.deepEqual(out.spec, { peerIP: "198.18.0.254", asNumber: 65546, localASNumber: 65000 });
  });
});
