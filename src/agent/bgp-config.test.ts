import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCIDR } from "../api/net.js";
import { resourceKey } from "../datastore/keys.js";
import { blockKey, newBlock, serializeBlock, type Block } from "../ipam/block.js";
import { BgpResourceCache, desiredBgp, hashRouterId, type DesiredBgp } from "./bgp-config.js";

const node = (name: string, bgp: Record<string, unknown>, labels: Record<string, string> = {}) => ({
  key: resourceKey("nodes", name),
  value: { kind: "Node", metadata: { name, labels }, spec: { bgp } },
});
const res = (plural: string, name: string, spec: Record<string, unknown>) => ({
  key: resourceKey(plural, name),
  value: { metadata: { name }, spec },
});
const pool = (name: string, cidr: string, extra: Record<string, unknown> = {}) =>
  res("ippools", name, { cidr, ...extra });

function block(cidr: string, owner: string | null, borrowed: Record<number, string> = {}) {
  const b: Block = newBlock(parseCIDR(cidr)!, owner === null ? null : `host:${owner}`, 1);
  for (const [ord, n] of Object.entries(borrowed)) {
    b.attributes.push({ handleID: `h-${ord}`, secondary: { node: n } });
    b.allocations[Number(ord)] = b.attributes.length - 1;
  }
  return { key: blockKey(b.cidr), value: JSON.parse(serializeBlock(b)) as unknown };
}

const THREE = [
  node("h1", { ipv4Address: "198.18.0.1/24", ipv6Address: "fd00::1/64" }),
  node("h2", { ipv4Address: "198.18.0.2/24", ipv6Address: "fd00::2/64", asNumber: 65002 }),
  node("h3", { ipv4Address: "198.18.0.3/24" }, { rack: "b" }),
];

function want(updates: { key: string; value: unknown }[], nodename = "h1"): DesiredBgp {
  const cache = new BgpResourceCache();
  cache.onUpdates(updates);
  const d = desiredBgp(cache, nodename);
  assert.ok(d.enabled, d.enabled ? "" : d.reason);
  return d.config;
}

const peerSummary = (c: DesiredBgp) =>
  c.peers.map(
    (p) => `${p.address} ${p.asn} ${p.type}${p.passive ? " passive" : ""}${p.rrClient ? " rr-client" : ""}`,
  );

test("defaults: AS 64512, router ID from the IPv4 address, port 179, GR 120 s, full mesh v4 and v6", () => {
  const c = want(THREE);
  assert.equal(c.asn, 64512);
  assert.equal(c.routerId, "198.18.0.1");
  assert.equal(c.listenPort, 179);
  assert.equal(c.gracefulRestartTime, 120);
  // h2 keeps its own AS. Calico's rule: a peer whose address is greater than ours calls us
  // ("passive on" here), so h1, the lowest, waits for everyone.
  assert.deepEqual(peerSummary(c), [
    "198.18.0.2 65002 node-to-node mesh passive",
    "198.18.0.3 64512 node-to-node mesh passive",
    "fd00::2 65002 node-to-node mesh passive",
  ]);
  assert.equal(c.peers[0]!.name, "Mesh_198_18_0_2");
  assert.equal(c.peers[0]!.localAddress, "198.18.0.1");
  // h2 calls h1 and waits for h3.
  assert.deepEqual(peerSummary(want(THREE, "h2")), [
    "198.18.0.1 64512 node-to-node mesh",
    "198.18.0.3 64512 node-to-node mesh passive",
    "fd00::1 64512 node-to-node mesh",
  ]);
});

test("the Node's AS beats BGPConfiguration's, which beats 64512; listenPort and mesh GR time", () => {
  const c = want([
    ...THREE,
    res("bgpconfigurations", "default", { asNumber: 65000, listenPort: 1179, nodeMeshMaxRestartTime: "0s" }),
  ]);
  assert.equal(c.asn, 65000);
  assert.equal(c.listenPort, 1179);
  assert.equal(c.gracefulRestartTime, 0);
  assert.ok(c.peers.every((p) => p.gracefulRestartTime === 0));
  assert.equal(want(THREE, "h2").asn, 65002);
  // Mesh peers are called at the port they listen on.
  assert.ok(c.peers.every((p) => p.port === 1179));
  // node.<name> overrides the listen port for that node only.
  const n = want([...THREE, res("bgpconfigurations", "node.h1", { listenPort: 2179 })]);
  assert.equal(n.listenPort, 2179);
  assert.ok(n.peers.every((p) => p.port === undefined));
  assert.ok(
    want([...THREE, res("bgpconfigurations", "node.h1", { listenPort: 2179 })], "h2").peers.some(
      (p) => p.address === "198.18.0.1" && p.port === 2179,
    ),
  );
});

test("mesh off: only BGPPeers; global, node specific (node / nodeSelector) and their fields", () => {
  const peers = [
    res("bgpconfigurations", "default", { nodeToNodeMeshEnabled: false }),
    res("bgppeers", "tor", {
      peerIP: "198.18.0.254",
      asNumber: 65100,
      keepOriginalNextHop: true,
      maxRestartTime: "30s",
    }),
    res("bgppeers", "only-h1", { node: "h1", peerIP: "[fd00::fe]:1179", asNumber: "1.10" }),
    res("bgppeers", "rack-b", { nodeSelector: "rack == 'b'", peerIP: "198.18.0.253", asNumber: 65101 }),
  ];
  const c = want([...THREE, ...peers]);
  assert.deepEqual(peerSummary(c), ["198.18.0.254 65100 global", "fd00::fe 65546 node specific"]);
  const tor = c.peers[0]!;
  assert.equal(tor.keepOriginalNextHop, true);
  assert.equal(tor.gracefulRestartTime, 30);
  assert.equal(tor.name, "Global_198_18_0_254");
  assert.equal(c.peers[1]!.port, 1179);
  assert.equal(c.peers[1]!.name, "Node_fd00__fe_port_1179");
  assert.deepEqual(peerSummary(want([...THREE, ...peers], "h3")), [
    "198.18.0.253 65101 node specific",
    "198.18.0.254 65100 global",
  ]);
});

test("route reflectors: peerSelector peers at the nodes' addresses and AS; RR treats non-RRs as clients; RRs are not meshed", () => {
  const nodes = [
    node("h1", { ipv4Address: "198.18.0.1/24" }),
    node("h2", { ipv4Address: "198.18.0.2/24", routeReflectorClusterID: "224.0.0.1" }, { rr: "true" }),
    node("h3", { ipv4Address: "198.18.0.3/24" }),
  ];
  const peers = [res("bgppeers", "to-rr", { nodeSelector: "all()", peerSelector: "rr == 'true'" })];
  // h1: mesh to h3 (h2 is a reflector: not meshed), selector peer to h2.
  assert.deepEqual(peerSummary(want([...nodes, ...peers])), [
    "198.18.0.2 64512 node specific passive",
    "198.18.0.3 64512 node-to-node mesh passive",
  ]);
  // h2 (the RR) matches nodeSelector all() but not itself as a peer; the clients come from a
  // second BGPPeer selecting them for the RR.
  const both = [
    ...peers,
    res("bgppeers", "rr-to-clients", { nodeSelector: "rr == 'true'", peerSelector: "!has(rr)" }),
  ];
  const rr = want([...nodes, ...both], "h2");
  assert.deepEqual(peerSummary(rr), [
    "198.18.0.1 64512 node specific rr-client",
    "198.18.0.3 64512 node specific passive rr-client",
  ]);
  assert.equal(rr.peers[0]!.clusterId, "224.0.0.1");
});

test("originated: own affine blocks of enabled pools, borrowed /32s; not disabled or disableBGPExport pools", () => {
  const c = want([
    ...THREE,
    pool("p1", "198.19.0.0/16"),
    pool("off", "198.18.128.0/20", { disabled: true }),
    pool("noexp", "198.18.144.0/20", { disableBGPExport: true }),
    block("198.19.1.0/26", "h1"),
    block("198.19.2.0/26", "h3", { 5: "h1", 6: "h3" }), // h1 borrowed .5
    block("198.19.3.0/26", "h2"),
    block("198.18.128.0/26", "h1"),
    block("198.18.144.0/26", "h1"),
  ]);
  assert.deepEqual([...c.prefixes.keys()].sort(), ["198.19.1.0/26", "198.19.2.5/32"]);
  // Deleting a block withdraws it.
  const cache = new BgpResourceCache();
  cache.onUpdates([...THREE, pool("p1", "198.19.0.0/16"), block("198.19.1.0/26", "h1")]);
  cache.onUpdates([{ key: block("198.19.1.0/26", "h1").key, value: null }]);
  const d = desiredBgp(cache, "h1");
  assert.ok(d.enabled && d.config.prefixes.size === 0);
});

test("prefixAdvertisements add named and literal communities to the originated prefixes they cover", () => {
  const c = want([
    ...THREE,
    pool("p1", "198.19.0.0/16"),
    block("198.19.1.0/26", "h1"),
    res("bgpconfigurations", "default", {
      communities: [{ name: "mine", value: "65001:100" }],
      prefixAdvertisements: [{ cidr: "198.19.0.0/16", communities: ["mine", "65001:200", "1:2:3"] }],
    }),
  ]);
  assert.deepEqual(c.prefixes.get("198.19.1.0/26"), {
    communities: [65001 * 65536 + 100, 65001 * 65536 + 200],
    largeCommunities: [[1, 2, 3]],
  });
});

test("passwords: secretKeyRef resolved through the lookup; unavailable ⇒ peer left out and said why", () => {
  const updates = [
    ...THREE,
    res("bgpconfigurations", "default", { nodeToNodeMeshEnabled: false }),
    res("bgppeers", "tor", {
      peerIP: "198.18.0.254",
      asNumber: 65100,
      password: { secretKeyRef: { name: "bgp", key: "tor" } },
    }),
  ];
  const cache = new BgpResourceCache();
  cache.onUpdates(updates);
  const ok = desiredBgp(cache, "h1", (n, k) => (n === "bgp" && k === "tor" ? "s3cret" : undefined));
  assert.ok(ok.enabled);
  assert.equal(ok.config.peers[0]!.password, "s3cret");
  const missing = desiredBgp(cache, "h1");
  assert.ok(missing.enabled);
  assert.equal(missing.config.peers.length, 0);
  assert.match(
    missing.config.problems.join("\n"),
    /BGPPeer "tor": password secret "bgp" key "tor" is not available/,
  );
});

test("off without a Node or without a BGP address; IPv6-only nodes get a hashed router ID", () => {
  const cache = new BgpResourceCache();
  const d = desiredBgp(cache, "h1");
  assert.deepEqual(d, { enabled: false, reason: 'Node "h1" is not in the datastore' });
  cache.onUpdates([{ key: resourceKey("nodes", "h1"), value: { metadata: { name: "h1" }, spec: {} } }]);
  const e = desiredBgp(cache, "h1");
  assert.ok(!e.enabled && /no BGP address/.test(e.reason));
  cache.onUpdates([node("h1", { ipv6Address: "fd00::1/64" })]);
  const f = desiredBgp(cache, "h1");
  assert.ok(f.enabled);
  assert.equal(f.config.routerId, hashRouterId("h1"));
  assert.match(f.config.routerId, /^\d+\.\d+\.\d+\.\d+$/);
});

test("bad input never throws: unreadable values, bad selectors and peers are named in problems", () => {
  const c = want([
    ...THREE,
    { key: resourceKey("bgppeers", "junk"), value: "not an object" },
    res("bgppeers", "badsel", { peerSelector: "rack ==" }),
    res("bgppeers", "noip", { asNumber: 65000 }),
    res("bgppeers", "lw", { localWorkloadSelector: "all()", asNumber: 65000 }),
    { key: "/calico/ipam/v2/assignment/ipv4/block/198-19-9-0-26", value: { garbage: true } },
  ]);
  assert.equal(c.peers.length, 3);
  const text = c.problems.join("\n");
  assert.match(text, /BGPPeer "badsel" peerSelector: bad selector "rack =="/);
  assert.match(text, /BGPPeer "noip": neither peerIP nor peerSelector/);
  assert.match(text, /BGPPeer "lw": localWorkloadSelector is not supported/);
});
