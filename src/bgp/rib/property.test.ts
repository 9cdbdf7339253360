/**
 * State-sequence properties: whatever the interleaving of announcements, withdrawals, session
 * flaps (with and without graceful restart), End-of-RIBs, expiries and local blocks, (1) the
 * Loc-RIB equals a from-scratch decision over the final Adj-RIBs-In, and (2) the UPDATEs
 * emitted, replayed into a mirror per peer, equal that peer's Adj-RIB-Out, which equals a
 * from-scratch export of the Loc-RIB.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { formatCIDR } from "../../api/net.js";
import { decide, DEFAULT_DECISION } from "./decision.js";
import { exportRoute } from "./export.js";
import { announce, cidr, LOCAL, Mirror, outTable, peer, seq, withdraw } from "./fixtures.js";
import { LOCAL_PEER_ID, Rib } from "./rib.js";
import type { Peer, RibChanges } from "./types.js";

const PEERS: Peer[] = [
  peer(2, { rrClient: true }),
  peer(3),
  peer(6),
  peer(4, { type: "ebgp" }),
  peer(5, { type: "ebgp", asn: 65004 }),
];
const PREFIXES = [
  "198.19.0.0/24",
  "198.19.1.0/24",
  "198.19.2.0/25",
  "198.19.3.0/26",
  "fd00:19:0:1::/64",
  "fd00:19:0:2::/64",
];

type Op =
  | {
      k: "announce";
      p: number;
      prefixes: number[];
      lp: number;
      path: number;
      med: number;
      origin: 0 | 2;
      nh: number;
    }
  | { k: "withdraw"; p: number; prefixes: number[] }
  | { k: "down"; p: number; gr: boolean }
  | { k: "up"; p: number; keep: boolean }
  | { k: "eor"; p: number; family: 4 | 6 }
  | { k: "expire"; ms: number }
  | { k: "originate"; prefix: number }
  | { k: "unoriginate"; prefix: number };

const pi = fc.integer({ min: 0, max: PEERS.length - 1 });
const prefixSet = fc.uniqueArray(fc.integer({ min: 0, max: PREFIXES.length - 1 }), {
  minLength: 1,
  maxLength: 4,
});
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      k: fc.constant("announce" as const),
      p: pi,
      prefixes: prefixSet,
      lp: fc.constantFrom(100, 200),
      path: fc.integer({ min: 0, max: 2 }),
      med: fc.constantFrom(0, 5, 10),
      origin: fc.constantFrom(0 as const, 2 as const),
      nh: fc.integer({ min: 10, max: 12 }),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ k: fc.constant("withdraw" as const), p: pi, prefixes: prefixSet }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant("down" as const), p: pi, gr: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("up" as const), p: pi, keep: fc.boolean() }), weight: 1 },
  {
    arbitrary: fc.record({
      k: fc.constant("eor" as const),
      p: pi,
      family: fc.constantFrom(4 as const, 6 as const),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ k: fc.constant("expire" as const), ms: fc.integer({ min: 0, max: 60_000 }) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      k: fc.constant("originate" as const),
      prefix: fc.integer({ min: 0, max: PREFIXES.length - 1 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      k: fc.constant("unoriginate" as const),
      prefix: fc.integer({ min: 0, max: PREFIXES.length - 1 }),
    }),
    weight: 1,
  },
);

function run(ops: Op[], maxPaths: number, alwaysCompareMed: boolean): void {
  const now = { t: 0 };
  const opts = { ...DEFAULT_DECISION, maxPaths, alwaysCompareMed };
  const rib = new Rib({ local: LOCAL, clock: () => now.t, maxPaths, alwaysCompareMed });
  const mirrors = new Map(PEERS.map((p) => [p.id, new Mirror()]));
  const up = new Set<string>();
  const deliver = (c: RibChanges): void => {
    for (const [id, msgs] of c.updates) mirrors.get(id)!.apply(msgs);
  };
  for (const p of PEERS) {
    deliver(rib.peerUp(p));
    up.add(p.id);
  }
  for (const o of ops) {
    switch (o.k) {
      case "announce": {
        const p = PEERS[o.p]!;
        if (!up.has(p.id)) break;
        const tail = [[], [65010], [65011, 7]][o.path]!;
        const asPath = p.type === "ebgp" ? seq(p.asn, ...tail) : tail.length === 0 ? [] : seq(...tail);
        const attrs = { localPref: o.lp, asPath, med: o.med, origin: o.origin };
        deliver(
          rib.applyUpdate(
            p.id,
            announce(
              o.prefixes.map((i) => PREFIXES[i]!),
              `198.18.0.${o.nh}`,
              attrs,
            ),
          ),
        );
        break;
      }
      case "withdraw":
        if (up.has(PEERS[o.p]!.id))
          deliver(rib.applyUpdate(PEERS[o.p]!.id, withdraw(o.prefixes.map((i) => PREFIXES[i]!))));
        break;
      case "down": {
        const p = PEERS[o.p]!;
        if (!up.has(p.id)) break;
        deliver(rib.peerDown(p.id, o.gr ? { gracefulRestart: { restartTime: 30 } } : {}));
        mirrors.get(p.id)!.clear();
        up.delete(p.id);
        break;
      }
      case "up": {
        const p = PEERS[o.p]!;
        if (up.has(p.id)) break;
        deliver(rib.peerUp(p, o.keep ? { forwardingPreserved: [4, 6] } : {}));
        up.add(p.id);
        break;
      }
      case "eor": {
        const p = PEERS[o.p]!;
        if (!up.has(p.id)) break;
        const attributes = o.family === 4 ? {} : { mpUnreach: { afi: 2, safi: 1, withdrawn: [] } };
        deliver(rib.applyUpdate(p.id, { update: { type: 2, withdrawn: [], attributes, nlri: [] } }));
        break;
      }
      case "expire":
        now.t += o.ms;
        deliver(rib.expireStale());
        break;
      case "originate":
        deliver(rib.originate(cidr(PREFIXES[o.prefix]!)));
        break;
      case "unoriginate":
        deliver(rib.withdrawOriginated(cidr(PREFIXES[o.prefix]!)));
        break;
    }
  }
  // (1) Loc-RIB = decision from scratch over the final Adj-RIBs-In.
  const all = [LOCAL_PEER_ID, ...PEERS.map((p) => p.id)].flatMap((id) => rib.adjRibIn(id));
  let count = 0;
  for (const text of PREFIXES) {
    const candidates = all.filter((r) => formatCIDR(r.prefix) === text);
    const want = candidates.length === 0 ? undefined : decide(candidates, opts);
    const got = rib.decision(cidr(text));
    assert.equal(got?.best, want?.best, text);
    assert.deepEqual(got?.multipath, want?.multipath, text);
    assert.equal(got?.reason, want?.reason, text);
    if (got !== undefined) count++;
  }
  assert.equal([...rib.locRib()].length, count);
  // (2) replayed diffs = Adj-RIB-Out = export from scratch.
  for (const p of PEERS) {
    if (!up.has(p.id)) continue;
    const table = outTable(rib.adjRibOut(p.id));
    assert.deepEqual(mirrors.get(p.id)!.routes, table, `mirror of ${p.id}`);
    const scratch = new Map<string, unknown>();
    for (const { prefix, decision } of rib.locRib()) {
      const adv = exportRoute(decision.best, p, { defaultLocalPref: 100 });
      if (adv !== undefined)
        scratch.set(formatCIDR(prefix), { attributes: adv.attributes, nextHop: adv.nextHop });
    }
    assert.deepEqual(table, scratch, `adj-rib-out of ${p.id}`);
  }
}

test("property: Loc-RIB and Adj-RIBs-Out match a from-scratch computation after any interleaving", () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.constantFrom(1, 3), fc.boolean(), (ops, maxPaths, acm) =>
      run(ops, maxPaths, acm),
    ),
    { numRuns: 300 },
  );
});
