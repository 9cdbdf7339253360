import assert from "node:assert/strict";
import { test } from "node:test";
import { decide, DEFAULT_DECISION, type DecisionOptions } from "./decision.js";
import { cidr, LOCAL_AS, peer, rid, route, seq } from "./fixtures.js";
import { DecisionStep, type Route } from "./types.js";

const ibgp2 = peer(2);
const ibgp3 = peer(3);
const ebgp4 = peer(4, { type: "ebgp" });
const ebgp5 = peer(5, { type: "ebgp" });
const local = peer(1, { id: "local", type: "local", asn: LOCAL_AS });

interface Row {
  name: string;
  routes: Route[];
  /** Index of the expected winner in `routes`. */
  winner: number;
  step: DecisionStep;
  reason: string;
  opts?: Partial<DecisionOptions>;
}

const rows: Row[] = [
  {
    name: "a single route wins as the only path",
    routes: [route(ibgp2, {})],
    winner: 0,
    step: DecisionStep.ONLY_PATH,
    reason: "only path",
  },
  {
    name: "an unreachable next hop is excluded",
    routes: [route(ibgp2, {}, { nextHop: cidr("198.18.9.9") }), route(ibgp3, { asPath: seq(1, 2, 3) })],
    winner: 1,
    step: DecisionStep.NEXT_HOP,
    reason: "next hop 198.18.9.9 unreachable",
    opts: { nextHopReachable: (nh) => nh.addr !== cidr("198.18.9.9").addr },
  },
  {
    name: "a locally originated route beats a learned one with a higher LOCAL_PREF",
    routes: [route(ibgp2, { localPref: 500 }), route(local, {})],
    winner: 1,
    step: DecisionStep.PREFERENCE,
    reason: "preference 200 > 100 (locally originated)",
  },
  {
    name: "highest LOCAL_PREF",
    routes: [route(ibgp2, { localPref: 100 }), route(ibgp3, { localPref: 200, asPath: seq(1, 2, 3) })],
    winner: 1,
    step: DecisionStep.LOCAL_PREF,
    reason: "local-pref 200 > 100",
  },
  {
    name: "an iBGP route without LOCAL_PREF gets the default, and loses to 150",
    routes: [route(ibgp2, {}), route(ibgp3, { localPref: 150 })],
    winner: 1,
    step: DecisionStep.LOCAL_PREF,
    reason: "local-pref 150 > 100",
  },
  {
    name: "eBGP routes get the default LOCAL_PREF (their own is ignored)",
    routes: [
      route(ebgp4, { localPref: 900, asPath: seq(65004) }),
      route(ibgp3, { localPref: 120, asPath: seq(1, 2) }),
    ],
    winner: 1,
    step: DecisionStep.LOCAL_PREF,
    reason: "local-pref 120 > 100",
  },
  {
    name: "shortest AS_PATH",
    routes: [route(ibgp2, { asPath: seq(1, 2, 3) }), route(ibgp3, { asPath: seq(7) })],
    winner: 1,
    step: DecisionStep.AS_PATH,
    reason: "as-path 1 < 3",
  },
  {
    name: "an AS_SET counts as one",
    routes: [
      route(ibgp2, {
        asPath: [
          { type: "sequence", asns: [1] },
          { type: "set", asns: [5, 6, 7, 8] },
        ],
      }),
      route(ibgp3, { asPath: seq(1, 2, 3) }),
    ],
    winner: 0,
    step: DecisionStep.AS_PATH,
    reason: "as-path 2 < 3",
  },
  {
    name: "confederation segments count zero",
    routes: [
      route(ibgp2, {
        asPath: [
          { type: "confed-sequence", asns: [9, 9, 9] },
          { type: "sequence", asns: [1] },
        ],
      }),
      route(ibgp3, { asPath: seq(1, 2) }),
    ],
    winner: 0,
    step: DecisionStep.AS_PATH,
    reason: "as-path 1 < 2",
  },
  {
    name: "lowest ORIGIN",
    routes: [route(ibgp2, { origin: 2 }), route(ibgp3, { origin: 0 })],
    winner: 1,
    step: DecisionStep.ORIGIN,
    reason: "origin IGP < INCOMPLETE",
  },
  {
    name: "lowest MED from the same neighbouring AS",
    routes: [route(ibgp2, { asPath: seq(65010), med: 50 }), route(ibgp3, { asPath: seq(65010), med: 10 })],
    winner: 1,
    step: DecisionStep.MED,
    reason: "med 10 < 50 (neighbour AS 65010)",
  },
  {
    name: "a missing MED is the lowest",
    routes: [route(ibgp2, { asPath: seq(65010), med: 5 }), route(ibgp3, { asPath: seq(65010) })],
    winner: 1,
    step: DecisionStep.MED,
    reason: "med 0 < 5 (neighbour AS 65010)",
  },
  {
    name: "MED is not compared across neighbouring ASes (falls through to router id)",
    routes: [route(ibgp3, { asPath: seq(65010), med: 1 }), route(ibgp2, { asPath: seq(65011), med: 99 })],
    winner: 1,
    step: DecisionStep.ROUTER_ID,
    reason: "router-id 198.18.0.2 < 198.18.0.3",
  },
  {
    name: "always-compare-med compares across ASes",
    routes: [route(ibgp3, { asPath: seq(65010), med: 1 }), route(ibgp2, { asPath: seq(65011), med: 99 })],
    winner: 0,
    step: DecisionStep.MED,
    reason: "med 1 < 99 (always-compare-med)",
    opts: { alwaysCompareMed: true },
  },
  {
    name: "eBGP over iBGP",
    routes: [route(ibgp2, { asPath: seq(65005) }), route(ebgp5, { asPath: seq(65005) })],
    winner: 1,
    step: DecisionStep.EBGP_OVER_IBGP,
    reason: "eBGP over iBGP",
  },
  {
    name: "lowest IGP cost",
    routes: [route(ibgp2, {}), route(ibgp3, {})],
    winner: 1,
    step: DecisionStep.IGP_COST,
    reason: "igp cost 10 < 20",
    opts: { igpCost: (nh) => (nh.addr === ibgp2.address.addr ? 20 : 10) },
  },
  {
    name: "shortest CLUSTER_LIST (RFC 4456 §9)",
    routes: [route(ibgp2, { clusterList: [7, 8] }), route(ibgp3, { clusterList: [7] })],
    winner: 1,
    step: DecisionStep.CLUSTER_LIST,
    reason: "cluster-list 1 < 2",
  },
  {
    name: "lowest ORIGINATOR_ID stands in for the BGP identifier (RFC 4456 §9)",
    routes: [route(ibgp2, { originatorId: rid(40) }), route(ibgp3, { originatorId: rid(30) })],
    winner: 1,
    step: DecisionStep.ROUTER_ID,
    reason: "router-id 198.18.0.30 < 198.18.0.40",
  },
  {
    name: "lowest peer address when router ids tie",
    routes: [route(peer(7, { bgpId: rid(9) }), {}), route(peer(6, { bgpId: rid(9) }), {})],
    winner: 1,
    step: DecisionStep.PEER_ADDRESS,
    reason: "peer address 198.18.0.6 < 198.18.0.7",
  },
];

for (const row of rows) {
  test(`decision: ${row.name}`, () => {
    for (const order of [row.routes, [...row.routes].reverse()]) {
      const d = decide(order, { ...DEFAULT_DECISION, ...row.opts });
      assert.ok(d);
      assert.equal(d.best, row.routes[row.winner]);
      assert.equal(d.step, row.step);
      assert.equal(d.reason, row.reason);
    }
  });
}

test("decision: every step that removed a candidate is recorded in order", () => {
  const rs = [
    route(ibgp2, { localPref: 50 }),
    route(ibgp3, { asPath: seq(1, 2) }),
    route(peer(6), { asPath: seq(1) }),
    route(peer(7), { asPath: seq(1), origin: 2 }),
  ];
  const d = decide(rs);
  assert.ok(d);
  assert.equal(d.best, rs[2]);
  assert.deepEqual(
    d.eliminations.map((e) => [e.step, e.text, e.eliminated.length]),
    [
      ["local-pref", "local-pref 100 > 50", 1],
      ["as-path", "as-path 1 < 2", 1],
      ["origin", "origin IGP < INCOMPLETE", 1],
    ],
  );
});

test("decision: no reachable candidate means no best path", () => {
  assert.equal(decide([route(ibgp2, {})], { ...DEFAULT_DECISION, nextHopReachable: () => false }), undefined);
  assert.equal(
    decide([route(ibgp2, {}), route(ibgp3, {})], { ...DEFAULT_DECISION, nextHopReachable: () => false }),
    undefined,
  );
});

test("decision: the ECMP set is the routes equal through the IGP-cost step, best first, capped", () => {
  const a = route(ebgp4, { asPath: seq(65004, 9) }, { nextHop: cidr("198.18.0.4") });
  const b = route(ebgp5, { asPath: seq(65005, 9) }, { nextHop: cidr("198.18.0.5") });
  const c = route(peer(6, { type: "ebgp" }), { asPath: seq(65006, 9) }, { nextHop: cidr("198.18.0.6") });
  const worse = route(peer(7, { type: "ebgp" }), { asPath: seq(65007, 8, 9) });
  const ibgp = route(ibgp2, { asPath: seq(65002, 9) });
  const all = [worse, c, ibgp, b, a];
  const off = decide(all);
  assert.deepEqual(off?.multipath, [a]);
  const on = decide(all, { ...DEFAULT_DECISION, maxPaths: 8 });
  assert.equal(on?.best, a);
  assert.deepEqual(on?.multipath, [a, b, c]);
  assert.deepEqual(decide(all, { ...DEFAULT_DECISION, maxPaths: 2 })?.multipath, [a, b]);
  // A lower MED within one neighbouring AS removes a route from the set.
  const sameAs = [
    route(ebgp4, { asPath: seq(65004), med: 5 }),
    route(peer(8, { type: "ebgp", asn: 65004 }), { asPath: seq(65004), med: 1 }),
  ];
  assert.equal(decide(sameAs, { ...DEFAULT_DECISION, maxPaths: 8 })?.multipath.length, 1);
});
