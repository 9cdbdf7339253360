import assert from "node:assert/strict";
import { test } from "node:test";
import { formatCIDR } from "../../api/net.js";
import { encodeMessage, isEndOfRib, MAX_MESSAGE_LENGTH, type UpdateMessage } from "../packet/index.js";
import { announce, cidr, LOCAL, LOCAL_AS, Mirror, outTable, peer, rid, seq, withdraw } from "./fixtures.js";
import { LOCAL_PEER_ID, Rib } from "./rib.js";
import { type Peer, RejectReason, type RibChanges, type RibConfig } from "./types.js";

function newRib(o: Partial<RibConfig> = {}): { rib: Rib; now: { t: number } } {
  const now = { t: 1_000 };
  return { rib: new Rib({ local: LOCAL, clock: () => now.t, ...o }), now };
}

const P = "198.19.1.0/24";
const P6 = "fd00:19:0:1::/64";

/** The UPDATEs for one peer, without End-of-RIB markers. */
const sent = (c: RibChanges, id: string): UpdateMessage[] =>
  (c.updates.get(id) ?? []).filter((m) => !isEndOfRib(m));

function outFor(rib: Rib, id: string, prefix = P) {
  return rib.adjRibOut(id).find((e) => formatCIDR(e.prefix) === prefix);
}

// ---- Adj-RIB-In and import checks ----

test("adj-rib-in: announce, implicit withdraw on re-announce, withdraw (IPv4 body and MP IPv6)", () => {
  const { rib } = newRib();
  const p2 = peer(2);
  rib.peerUp(p2);
  let c = rib.applyUpdate("p2", announce([P, P6], "198.18.0.2", { localPref: 100 }));
  assert.equal(c.locRib.length, 2);
  assert.equal(rib.adjRibIn("p2").length, 2);
  c = rib.applyUpdate("p2", announce([P], "198.18.0.22", { localPref: 100 }));
  assert.equal(rib.adjRibIn("p2").length, 2);
  assert.equal(formatCIDR(rib.decision(cidr(P))!.best.nextHop), "198.18.0.22/32");
  assert.deepEqual(
    c.locRib.map((x) => x.nextHops.map(formatCIDR)),
    [["198.18.0.22/32"]],
  );
  c = rib.applyUpdate("p2", withdraw([P, P6]));
  assert.equal(rib.adjRibIn("p2").length, 0);
  assert.equal(rib.locRibSize, 0);
  assert.deepEqual(
    c.locRib.map((x) => [formatCIDR(x.prefix), x.decision, x.nextHops]),
    [
      [P, undefined, []],
      [P6, undefined, []],
    ],
  );
});

test("adj-rib-in: treat-as-withdraw removes every NLRI of the message", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  rib.applyUpdate("p2", announce([P, P6], "fd00::2"));
  assert.equal(rib.locRibSize, 2);
  const bad = announce([P, P6], "fd00::2");
  bad.treatAsWithdraw = { subcode: 11, reason: "malformed AS_PATH" };
  rib.applyUpdate("p2", bad);
  assert.equal(rib.locRibSize, 0);
});

test("adj-rib-in: a prefix both withdrawn and announced in one UPDATE counts as announced", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  const u = announce([P], "198.18.0.2");
  u.update.withdrawn = [cidr(P)];
  rib.applyUpdate("p2", u);
  assert.equal(rib.locRibSize, 1);
});

const rejections: { name: string; from: Peer; update: ReturnType<typeof announce>; reason: RejectReason }[] =
  [
    {
      name: "our AS in the AS_PATH",
      from: peer(4, { type: "ebgp" }),
      update: announce([P], "198.18.0.4", { asPath: seq(65004, LOCAL_AS, 7) }),
      reason: RejectReason.AS_PATH_LOOP,
    },
    {
      name: "our AS inside an AS_SET (iBGP)",
      from: peer(2),
      update: announce([P], "198.18.0.2", { asPath: [{ type: "set", asns: [1, LOCAL_AS] }] }),
      reason: RejectReason.AS_PATH_LOOP,
    },
    {
      name: "first AS not the eBGP peer's",
      from: peer(4, { type: "ebgp" }),
      update: announce([P], "198.18.0.4", { asPath: seq(65099) }),
      reason: RejectReason.FIRST_AS,
    },
    {
      name: "empty AS_PATH from an eBGP peer",
      from: peer(4, { type: "ebgp" }),
      update: announce([P], "198.18.0.4", { asPath: [] }),
      reason: RejectReason.FIRST_AS,
    },
    {
      name: "ORIGINATOR_ID is our BGP identifier (RFC 4456 §8)",
      from: peer(2),
      update: announce([P], "198.18.0.2", { originatorId: rid(1) }),
      reason: RejectReason.ORIGINATOR_ID,
    },
    {
      name: "our CLUSTER_ID in the CLUSTER_LIST (RFC 4456 §8)",
      from: peer(2, { clusterId: 77 }),
      update: announce([P], "198.18.0.2", { clusterList: [5, 77] }),
      reason: RejectReason.CLUSTER_LIST,
    },
    {
      name: "next hop is our own address",
      from: peer(2),
      update: announce([P], "198.18.0.1"),
      reason: RejectReason.NEXT_HOP_SELF,
    },
    {
      name: "IPv6 next hop is our own address",
      from: peer(2),
      update: announce([P6], "fd00::1"),
      reason: RejectReason.NEXT_HOP_SELF,
    },
  ];

for (const r of rejections) {
  test(`import: rejected and counted — ${r.name}; a rejected re-announcement withdraws`, () => {
    const { rib } = newRib();
    rib.peerUp(r.from);
    const prefix = r.update.update.nlri[0] ?? r.update.update.attributes.mpReach!.nlri[0]!;
    const ok = r.from.type === "ebgp" ? { asPath: seq(r.from.asn) } : {};
    rib.applyUpdate(r.from.id, announce([formatCIDR(prefix)], formatCIDR(r.from.address).split("/")[0]!, ok));
    assert.equal(rib.locRibSize, 1);
    rib.applyUpdate(r.from.id, r.update);
    assert.equal(rib.locRibSize, 0);
    assert.equal(rib.rejected(r.from.id).get(r.reason), 1);
  });
}

test("import: a next hop of the other family is rejected (no RFC 8950)", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  const u = announce([P6], "fd00::2");
  u.update.attributes.mpReach!.nextHops = [cidr("198.18.0.2")];
  rib.applyUpdate("p2", u);
  assert.equal(rib.locRibSize, 0);
  assert.equal(rib.rejected("p2").get(RejectReason.NO_NEXT_HOP), 1);
});

test("import: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from an eBGP peer are ignored", () => {
  const { rib } = newRib();
  const e = peer(4, { type: "ebgp" });
  rib.peerUp(e);
  rib.applyUpdate(
    "p4",
    announce([P], "198.18.0.4", { asPath: seq(65004), localPref: 999, originatorId: 5, clusterList: [6] }),
  );
  const a = rib.adjRibIn("p4")[0]!.attributes;
  assert.equal(a.localPref, undefined);
  assert.equal(a.originatorId, undefined);
  assert.equal(a.clusterList, undefined);
});

test("import: the policy hook may modify or reject", () => {
  const { rib } = newRib({
    importPolicy: (prefix, a) => (prefix.prefix > 26 ? undefined : { ...a, localPref: 300 }),
  });
  rib.peerUp(peer(2));
  rib.applyUpdate("p2", announce([P, "198.19.2.0/27"], "198.18.0.2"));
  assert.equal(rib.locRibSize, 1);
  assert.equal(rib.decision(cidr(P))!.best.attributes.localPref, 300);
  assert.equal(rib.rejected("p2").get(RejectReason.POLICY), 1);
});

// ---- Loc-RIB ----

test("loc-rib: a locally originated block wins over a learned one; withdrawing it falls back", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  rib.applyUpdate("p2", announce([P], "198.18.0.2", { localPref: 1000 }));
  let c = rib.originate(cidr(P));
  assert.equal(c.locRib[0]!.decision!.best.peer.id, LOCAL_PEER_ID);
  assert.equal(c.locRib[0]!.decision!.reason, "preference 200 > 100 (locally originated)");
  c = rib.withdrawOriginated(cidr(P));
  assert.equal(c.locRib[0]!.decision!.best.peer.id, "p2");
});

test("loc-rib: ECMP set as the kernel next-hop set (merge paths)", () => {
  const { rib } = newRib({ maxPaths: 4 });
  for (const n of [2, 3, 5]) rib.peerUp(peer(n));
  rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  let c = rib.applyUpdate("p3", announce([P], "198.18.0.3"));
  assert.deepEqual(c.locRib[0]!.nextHops.map(formatCIDR), ["198.18.0.2/32", "198.18.0.3/32"]);
  // A worse path does not join the set and changes nothing.
  c = rib.applyUpdate("p5", announce([P], "198.18.0.5", { asPath: seq(1) }));
  assert.deepEqual(c.locRib, []);
  c = rib.applyUpdate("p2", withdraw([P]));
  assert.deepEqual(c.locRib[0]!.nextHops.map(formatCIDR), ["198.18.0.3/32"]);
});

test("loc-rib: an unreachable next hop leaves the prefix without a best path", () => {
  const { rib } = newRib({ nextHopReachable: (nh) => nh.addr !== cidr("198.18.0.2").addr });
  rib.peerUp(peer(2));
  rib.peerUp(peer(3));
  const c = rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  assert.deepEqual(c.locRib, []);
  assert.equal(rib.decision(cidr(P)), undefined);
  assert.equal(outFor(rib, "p3"), undefined);
});

// ---- Adj-RIB-Out: split horizon, reflection, transformations ----

test("export: never back to the peer it came from; iBGP split horizon without reflection", () => {
  const { rib } = newRib();
  const [a, b] = [peer(2), peer(3)];
  const e = peer(4, { type: "ebgp" });
  rib.peerUp(a);
  rib.peerUp(b);
  rib.peerUp(e);
  const c = rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  assert.equal(c.updates.has("p2"), false);
  assert.equal(c.updates.has("p3"), false, "iBGP → iBGP is split horizon");
  assert.equal(sent(c, "p4").length, 1, "iBGP → eBGP is advertised");
  // eBGP-learned routes go to every iBGP peer, not back to the eBGP peer.
  const c2 = rib.applyUpdate("p4", announce(["198.19.2.0/24"], "198.18.0.4", { asPath: seq(65004) }));
  assert.deepEqual([...c2.updates.keys()].sort(), ["p2", "p3"]);
});

test("reflection: a client's route goes to clients and non-clients with ORIGINATOR_ID and CLUSTER_LIST", () => {
  const { rib } = newRib();
  const client = peer(2, { rrClient: true, clusterId: rid(1) });
  const client2 = peer(3, { rrClient: true });
  const nonClient = peer(5);
  for (const p of [client, client2, nonClient]) rib.peerUp(p);
  const c = rib.applyUpdate("p2", announce([P], "198.18.0.2", { clusterList: [9] }));
  assert.deepEqual([...c.updates.keys()].sort(), ["p3", "p5"]);
  for (const id of ["p3", "p5"]) {
    const out = outFor(rib, id)!;
    assert.equal(out.attributes.originatorId, rid(2));
    assert.deepEqual(out.attributes.clusterList, [rid(1), 9]);
    assert.equal(formatCIDR(out.nextHop), "198.18.0.2/32", "reflection keeps the next hop");
    assert.equal(out.attributes.localPref, 100);
  }
});

test("reflection: a non-client's route goes to clients only; an existing ORIGINATOR_ID is kept", () => {
  const { rib } = newRib();
  const client = peer(2, { rrClient: true });
  const nonClient = peer(5);
  const nonClient2 = peer(6);
  for (const p of [client, nonClient, nonClient2]) rib.peerUp(p);
  const c = rib.applyUpdate("p5", announce([P], "198.18.0.5", { originatorId: rid(40) }));
  assert.deepEqual([...c.updates.keys()], ["p2"]);
  assert.equal(outFor(rib, "p2")!.attributes.originatorId, rid(40));
  assert.deepEqual(outFor(rib, "p2")!.attributes.clusterList, [rid(1)]);
});

test("reflection: the loop comes back and is rejected by ORIGINATOR_ID and by CLUSTER_LIST", () => {
  // Two reflectors: we (cluster 1) reflect a client route to RR2, which would reflect it back.
  const { rib } = newRib();
  const client = peer(2, { rrClient: true });
  const rr2 = peer(7);
  rib.peerUp(client);
  rib.peerUp(rr2);
  rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  const out = outFor(rib, "p7")!;
  const back = announce([P], "198.18.0.2", {
    ...out.attributes,
    clusterList: [rid(7), ...out.attributes.clusterList!],
  });
  rib.applyUpdate("p7", back);
  assert.equal(rib.rejected("p7").get(RejectReason.CLUSTER_LIST), 1);
  // A route we originated that comes back reflected carries our ORIGINATOR_ID.
  rib.applyUpdate(
    "p7",
    announce(["198.19.9.0/24"], "198.18.0.9", { originatorId: rid(1), clusterList: [rid(7)] }),
  );
  assert.equal(rib.rejected("p7").get(RejectReason.ORIGINATOR_ID), 1);
  assert.equal(rib.decision(cidr("198.19.9.0/24")), undefined);
});

test("export to eBGP: prepend our AS, next hop self, no LOCAL_PREF/MED/ORIGINATOR_ID/CLUSTER_LIST", () => {
  const { rib } = newRib();
  const client = peer(2, { rrClient: true });
  const e = peer(4, { type: "ebgp", localAddresses: [cidr("198.18.0.1"), cidr("fd00::1")] });
  rib.peerUp(client);
  rib.peerUp(e);
  rib.applyUpdate(
    "p2",
    announce([P, P6], "198.18.0.2", {
      asPath: seq(65100),
      med: 7,
      localPref: 300,
      originatorId: rid(20),
      clusterList: [3],
      communities: [0xfc000001],
    }),
  );
  const out = outFor(rib, "p4")!;
  assert.deepEqual(out.attributes.asPath, seq(LOCAL_AS, 65100));
  assert.equal(formatCIDR(out.nextHop), "198.18.0.1/32");
  for (const k of ["localPref", "med", "originatorId", "clusterList"] as const)
    assert.equal(out.attributes[k], undefined, k);
  assert.deepEqual(out.attributes.communities, [0xfc000001]);
  assert.equal(formatCIDR(outFor(rib, "p4", P6)!.nextHop), "fd00::1/128");
  // keepOriginalNextHop keeps a learned route's next hop.
  const { rib: rib2 } = newRib();
  rib2.peerUp(client);
  rib2.peerUp({ ...e, keepOriginalNextHop: true });
  rib2.applyUpdate("p2", announce([P], "198.18.0.2", { asPath: seq(65100) }));
  assert.equal(formatCIDR(outFor(rib2, "p4")!.nextHop), "198.18.0.2/32");
});

test("export of our own blocks: next hop self, empty AS_PATH to iBGP, our AS to eBGP", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  rib.peerUp(peer(4, { type: "ebgp" }));
  const c = rib.originate(cidr(P));
  const ib = sent(c, "p2")[0]!;
  assert.deepEqual(ib.nlri.map(formatCIDR), [P]);
  assert.equal(formatCIDR(ib.attributes.nextHop!), "198.18.0.1/32");
  assert.deepEqual(ib.attributes.asPath, []);
  assert.equal(ib.attributes.localPref, 100);
  assert.equal(ib.attributes.origin, 0);
  assert.deepEqual(outFor(rib, "p4")!.attributes.asPath, seq(LOCAL_AS));
});

test("export to iBGP: next hop kept for eBGP-learned routes unless next-hop-self", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  rib.peerUp(peer(3, { nextHopSelf: true }));
  rib.peerUp(peer(4, { type: "ebgp" }));
  rib.applyUpdate("p4", announce([P], "198.18.0.4", { asPath: seq(65004), med: 3 }));
  assert.equal(formatCIDR(outFor(rib, "p2")!.nextHop), "198.18.0.4/32");
  assert.equal(outFor(rib, "p2")!.attributes.med, 3, "MED travels inside the AS");
  assert.equal(formatCIDR(outFor(rib, "p3")!.nextHop), "198.18.0.1/32");
});

test("export: the policy hook may modify or suppress", () => {
  const { rib } = newRib({
    exportPolicy: (prefix, a, to) => (to.id === "p3" ? undefined : { ...a, communities: [prefix.prefix] }),
  });
  rib.peerUp(peer(2));
  rib.peerUp(peer(3));
  rib.originate(cidr(P));
  assert.deepEqual(outFor(rib, "p2")!.attributes.communities, [24]);
  assert.equal(rib.adjRibOut("p3").length, 0);
});

test("adj-rib-out: only changes are sent; a lost best path is withdrawn; peerUp sends the table and End-of-RIB", () => {
  const { rib } = newRib();
  const e = peer(4, { type: "ebgp" });
  rib.peerUp(peer(2));
  rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  // Same attributes again: the Loc-RIB route object changes, the advertisement does not.
  const again = rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  assert.equal(again.updates.size, 0);
  const up = rib.peerUp(e);
  const msgs = up.updates.get("p4")!;
  assert.deepEqual(msgs.filter(isEndOfRib).length, 2, "End-of-RIB for IPv4 and IPv6");
  assert.deepEqual(msgs[0]!.nlri.map(formatCIDR), [P]);
  const w = rib.applyUpdate("p2", withdraw([P]));
  assert.deepEqual(
    w.updates.get("p4")!.map((m) => m.withdrawn.map(formatCIDR)),
    [[P]],
  );
  const w6 = (rib.originate(cidr(P6)), rib.withdrawOriginated(cidr(P6)));
  assert.deepEqual(w6.updates.get("p4")![0]!.attributes.mpUnreach!.withdrawn.map(formatCIDR), [P6]);
});

test("adj-rib-out: NLRI sharing attributes pack into UPDATEs within 4096 octets", () => {
  const { rib } = newRib();
  rib.peerUp(peer(2));
  rib.peerUp(peer(3));
  const v4: string[] = [];
  const v6: string[] = [];
  for (let i = 0; i < 2000; i++) v4.push(`198.19.${i >> 4}.${(i & 15) * 16}/28`);
  for (let i = 0; i < 600; i++) v6.push(`fd00:19:0:${i.toString(16)}::/64`);
  rib.applyUpdate("p2", announce(v4.slice(0, 1000), "198.18.0.2", { localPref: 100 }));
  rib.applyUpdate("p2", announce(v4.slice(1000), "198.18.0.2", { localPref: 100 }));
  const c = rib.applyUpdate("p2", announce(v6, "fd00::2", { localPref: 100 }));
  const to4 = rib.peerUp(peer(5, { rrClient: true }));
  const msgs = [...(to4.updates.get("p5") ?? []), ...(c.updates.get("p3") ?? [])];
  for (const m of msgs) assert.ok(encodeMessage(m, { as4: true }).length <= MAX_MESSAGE_LENGTH);
  const announcements = to4.updates.get("p5")!.filter((m) => !isEndOfRib(m));
  // 2000 /28s at 5 octets each need 3 messages, 600 /64s at 9 octets need 2.
  assert.equal(announcements.length, 5);
  assert.ok(encodeMessage(announcements[0]!, { as4: true }).length > MAX_MESSAGE_LENGTH - 5, "packed tight");
  const m = new Mirror();
  m.apply(to4.updates.get("p5")!);
  assert.deepEqual(m.routes, outTable(rib.adjRibOut("p5")));
  assert.equal(m.routes.size, 2600);
});

// ---- graceful restart (RFC 4724 §4.2) ----

function grSetup() {
  const { rib, now } = newRib();
  const p2 = peer(2);
  rib.peerUp(p2);
  rib.peerUp(peer(3, { rrClient: true }));
  rib.applyUpdate("p2", announce([P, "198.19.2.0/24"], "198.18.0.2"));
  rib.applyUpdate("p2", announce([P6], "fd00::2"));
  return { rib, now, p2 };
}

test("graceful restart: routes stay stale in the Loc-RIB while the peer is down", () => {
  const { rib } = grSetup();
  const c = rib.peerDown("p2", { gracefulRestart: { restartTime: 120 } });
  assert.deepEqual(c.locRib, [], "no kernel change");
  assert.equal(c.updates.size, 0, "no withdrawals to other peers");
  assert.equal(rib.locRibSize, 3);
  assert.ok(rib.adjRibIn("p2").every((r) => r.stale));
  assert.equal(rib.nextStaleDeadline(), 1_000 + 120_000);
});

test("graceful restart: re-sent routes are refreshed; End-of-RIB removes the rest of that family", () => {
  const { rib, p2 } = grSetup();
  rib.peerDown("p2", { gracefulRestart: { restartTime: 120 } });
  rib.peerUp(p2, { forwardingPreserved: [4, 6] });
  rib.applyUpdate("p2", announce([P], "198.18.0.2"));
  assert.equal(rib.adjRibIn("p2").filter((r) => r.stale).length, 2);
  const c = rib.applyUpdate("p2", { update: { type: 2, withdrawn: [], attributes: {}, nlri: [] } });
  assert.deepEqual(
    c.locRib.map((x) => [formatCIDR(x.prefix), x.decision]),
    [["198.19.2.0/24", undefined]],
  );
  assert.deepEqual(sent(c, "p3")[0]!.withdrawn.map(formatCIDR), ["198.19.2.0/24"]);
  assert.equal(rib.decision(cidr(P6))?.best.stale, true, "IPv6 waits for its own End-of-RIB");
  rib.applyUpdate("p2", {
    update: {
      type: 2,
      withdrawn: [],
      attributes: { mpUnreach: { afi: 2, safi: 1, withdrawn: [] } },
      nlri: [],
    },
  });
  assert.equal(rib.decision(cidr(P6)), undefined);
  assert.equal(rib.nextStaleDeadline(), undefined);
});

test("graceful restart: stale routes expire when the restart time runs out", () => {
  const { rib, now } = grSetup();
  rib.peerDown("p2", { gracefulRestart: { restartTime: 120 } });
  now.t += 119_999;
  assert.deepEqual(rib.expireStale().locRib, []);
  now.t += 1;
  const c = rib.expireStale();
  assert.equal(c.locRib.length, 3);
  assert.equal(rib.locRibSize, 0);
  assert.equal(sent(c, "p3").length, 2, "IPv4 and IPv6 withdrawals to the client");
});

test("graceful restart: a re-established session without F bits drops stale routes at once", () => {
  const { rib, p2 } = grSetup();
  rib.peerDown("p2", { gracefulRestart: { restartTime: 120 } });
  const c = rib.peerUp(p2, { forwardingPreserved: [6] });
  assert.deepEqual(c.locRib.map((x) => formatCIDR(x.prefix)).sort(), [P, "198.19.2.0/24"].sort());
  assert.equal(rib.locRibSize, 1);
});

test("peer down without graceful restart withdraws everything it sent", () => {
  const { rib } = grSetup();
  const c = rib.peerDown("p2");
  assert.equal(c.locRib.length, 3);
  assert.equal(rib.locRibSize, 0);
  assert.throws(() => rib.applyUpdate("p2", announce([P], "198.18.0.2")), /not up/);
});
