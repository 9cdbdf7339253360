import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { emptyChanges, type StateChanges } from "../calc/types.js";
import { W1, W2, asState, cidr, rule, testConfig, testState, type MutableState } from "./fixtures.js";
import { LinuxDataplane } from "./linux-dataplane.js";
import type { LinkApplier } from "./links.js";
import { FakeNft } from "./nft/fake-nft.js";
import type { Nft, TableListing, Transaction } from "./nft/model.js";
import { renderRule } from "./nft/render.js";
import { CHAIN, MAP, endpointChain, ipSetName, policyChain } from "./names.js";
import type { KernelRoute, RouteApplier } from "./routes.js";
import type { DataplaneConfig } from "./types.js";

class StubRoutes implements RouteApplier {
  last = new Map<string, KernelRoute>();
  apply(want: Map<string, KernelRoute>): Promise<number> {
    let n = 0;
    for (const [k, v] of want) if (JSON.stringify(this.last.get(k)) !== JSON.stringify(v)) n++;
    for (const k of this.last.keys()) if (!want.has(k)) n++;
    this.last = new Map(want);
    return Promise.resolve(n);
  }
}
class StubLinks implements LinkApplier {
  apply(ifaces: ReadonlySet<string>): Promise<number> {
    return Promise.resolve(ifaces.size);
  }
}

function dataplane(nft: Nft, cfg: DataplaneConfig = testConfig()): LinuxDataplane {
  return new LinuxDataplane({
    nft,
    config: cfg,
    routes: new StubRoutes(),
    links: new StubLinks(),
    resyncIntervalMs: 0,
  });
}

/** A listing without handles, comparable with deepEqual. */
function normal(l: TableListing | undefined): unknown {
  if (l === undefined) return undefined;
  const sort = <T>(m: Map<string, T>): [string, T][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    chains: sort(l.chains).map(([n, c]) => [n, c.base ?? null, c.rules.map((r) => r.comment ?? "")]),
    sets: sort(l.sets).map(([n, s]) => [n, s.spec.keyType, s.spec.interval, [...s.elements].sort()]),
    maps: sort(l.maps).map(([n, m]) => [n, sort(m.elements)]),
  };
}

async function freshListing(state: MutableState, cfg = testConfig()): Promise<unknown> {
  const nft = new FakeNft();
  await dataplane(nft, cfg).apply(asState(state), emptyChanges());
  return normal(await nft.list());
}

/** The nft text of a chain in the fake, rule by rule. */
function chainText(nft: FakeNft, name: string): string[] {
  const c = nft.ruleset()?.chains.get(name);
  assert.ok(c, `chain ${name} exists`);
  return c.rules.map((r) =>
    renderRule({ ...r.rule, comment: undefined } as never).replace(/ comment ".*"$/, ""),
  );
}

describe("LinuxDataplane with FakeNft", () => {
  it("hands the conntrack clean-up the local workload addresses after each apply; its errors are warnings", async () => {
    const seen: string[][] = [];
    const dp = new LinuxDataplane({
      nft: new FakeNft(),
      config: testConfig(),
      routes: new StubRoutes(),
      links: new StubLinks(),
      resyncIntervalMs: 0,
      conntrack: {
        apply: (addrs) => {
          seen.push([...addrs].sort());
          return Promise.resolve(
            seen.length === 1 ? { removed: [], errors: [] } : { removed: [W1.v4], errors: ["no conntrack"] },
          );
        },
      },
    });
    const s = testState();
    const r1 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r1.warnings, undefined);
    s.endpoints.delete(W1.key);
    const c = emptyChanges();
    c.endpoints.add(W1.key);
    const r2 = await dp.apply(asState(s), c);
    assert.deepEqual(seen, [[W1.v4, W2.v4, W1.v6, W2.v6].sort(), [W2.v4, W2.v6].sort()]);
    assert.equal(r2.conntrackFlushed, 1);
    assert.deepEqual(r2.warnings, ["no conntrack"]);
  });

  it("programs the whole table on the first apply and nothing on a second", async () => {
    const nft = new FakeNft();
    const dp = dataplane(nft);
    const s = testState();
    const r1 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r1.full, true);
    assert.ok(r1.nftOps > 20);
    assert.ok(r1.nftScriptBytes > 1000);
    const l = await nft.list();
    assert.ok(l);
    for (const c of [
      "filter-FORWARD",
      CHAIN.fromWlDispatch,
      endpointChain("tw", W2.iface),
      endpointChain("fw", W1.iface),
      endpointChain("fh", "eth0"),
      policyChain("in", "np/shop/db"),
    ])
      assert.ok(l.chains.has(c), c);
    assert.deepEqual([...(l.maps.get(MAP.toWlDispatch)?.elements.keys() ?? [])].sort(), [W1.iface, W2.iface]);
    assert.deepEqual([...(l.sets.get(ipSetName(4, "n:pg"))?.elements ?? [])], [`${W2.v4} . 6 . 5432`]);
    const r2 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r2.full, false);
    assert.equal(r2.nftOps, 0);
  });

  it("renders §1.6 for an endpoint with two tiers, Pass and profiles", async () => {
    const nft = new FakeNft();
    await dataplane(nft).apply(asState(testState()), emptyChanges());
    const tw = chainText(nft, endpointChain("tw", W2.iface));
    assert.deepEqual(tw, [
      "ct state established,related accept",
      "ct state invalid drop",
      "meta mark set meta mark & 0xfffcffff | 0x00000000",
      "meta mark set meta mark & 0xfffdffff | 0x00000000",
      "meta mark & 0x00020000 == 0x00000000 jump filter-cali-pi-gnp_security.block-bad",
      "meta mark & 0x00010000 == 0x00010000 return",
      "meta mark & 0x00020000 == 0x00000000 jump filter-cali-pi-gnp_security.icmp",
      "meta mark & 0x00010000 == 0x00010000 return",
      "meta mark & 0x00020000 == 0x00000000 drop",
      "meta mark set meta mark & 0xfffdffff | 0x00000000",
      "meta mark & 0x00020000 == 0x00000000 jump filter-cali-pi-np_shop_db",
      "meta mark & 0x00010000 == 0x00010000 return",
      "meta mark & 0x00020000 == 0x00000000 drop",
      "jump filter-cali-pri-kns.shop",
      "meta mark & 0x00010000 == 0x00010000 return",
      "drop",
    ]);
    const fw = chainText(nft, endpointChain("fw", W1.iface));
    assert.deepEqual(fw.slice(0, 6), [
      "ct state established,related meta nfproto ipv4 ip saddr 198.19.0.1 accept",
      "ct state established,related meta nfproto ipv6 ip6 saddr fd00:19::1 accept",
      "meta nfproto ipv4 ip saddr != 198.19.0.1 drop",
      "meta nfproto ipv6 ip6 saddr != fd00:19::1 drop",
      "ct state established,related accept",
      "ct state invalid drop",
    ]);
    const pi = chainText(nft, policyChain("in", "np/shop/db"));
    assert.ok(
      pi.some((t) => t.includes("@cali40n-pg") && t.includes("@cali40s-frontend")),
      pi.join("\n"),
    );
    assert.ok(
      pi.some((t) => t.includes("@cali60n-pg")),
      "v6 named port rule",
    );
    assert.ok(
      pi.some((t) => t.startsWith("meta nfproto") || t.includes("log prefix")),
      pi.join("\n"),
    );
  });

  it("incremental applies end where a fresh full apply does", async () => {
    const nft = new FakeNft();
    const dp = dataplane(nft);
    const s = testState();
    await dp.apply(asState(s), emptyChanges());
    const steps: ((s: MutableState, c: StateChanges) => void)[] = [
      // a set member moves
      (s, c) => {
        const set = s.ipSets.get("s:frontend")!;
        s.ipSets.set("s:frontend", {
          ...set,
          members: new Set([...set.members, "198.19.0.7/32", "198.19.5.0/24", "198.19.5.9/32"]),
        });
        c.ipSetMembers.set("s:frontend", {
          added: ["198.19.0.7/32", "198.19.5.0/24", "198.19.5.9/32"],
          removed: [],
        });
      },
      // a policy changes its rules
      (s, c) => {
        const p = s.policies.get("np/shop/db")!;
        s.policies.set(p.id, {
          ...p,
          inbound: [rule("allow", { protocol: 17, dstPorts: [{ first: 53, last: 53 }] })],
        });
        c.policies.add(p.id);
      },
      // a workload goes away, another arrives with a new profile
      (s, c) => {
        s.endpoints.delete(W1.key);
        s.endpoints.set("wep/shop/new", {
          kind: "workload",
          key: "wep/shop/new",
          interfaceName: "cali3333333333c",
          tiers: [],
          profiles: ["kns.other"],
          ipv4Nets: [cidr("198.19.0.3/32")],
          ipv6Nets: [],
          allowSpoofedSourcePrefixes: [cidr("198.19.200.0/24")],
        });
        s.profiles.set("kns.other", { id: "kns.other", inbound: [rule("deny")], outbound: [rule("allow")] });
        c.endpoints.add(W1.key).add("wep/shop/new");
        c.profiles.add("kns.other");
      },
      // a set disappears (the policy naming it fails closed) and a pool changes
      (s, c) => {
        s.ipSets.delete("n:pg");
        c.ipSets.add("n:pg");
        const p = s.policies.get("np/shop/db")!;
        s.policies.set(p.id, { ...p, inbound: [rule("allow", { dstNamedPortIPSets: ["n:pg"] })] });
        c.policies.add(p.id);
        s.pools.set("p2", { name: "p2", cidr: cidr("198.19.128.0/17"), natOutgoing: false, disabled: false });
        c.pools.add("p2");
      },
      // the host endpoint gets untracked and forward policy; a policy is deleted
      (s, c) => {
        const h = s.endpoints.get("hep/node1-eth0");
        assert.ok(h?.kind === "host");
        s.policies.set("gnp/untracked", {
          id: "gnp/untracked",
          tier: "default",
          inbound: [rule("allow", { protocol: 17 })],
          outbound: [rule("allow", { protocol: 17 })],
          doNotTrack: true,
          preDNAT: false,
          applyOnForward: true,
        });
        const t = {
          name: "default",
          defaultAction: "deny" as const,
          ingress: ["gnp/untracked"],
          egress: ["gnp/untracked"],
        };
        s.endpoints.set(h.key, {
          ...h,
          untrackedTiers: [t],
          forwardTiers: [t],
          preDNATTiers: [{ ...t, egress: [] }],
        });
        s.policies.delete("gnp/security.icmp");
        c.policies.add("gnp/untracked").add("gnp/security.icmp");
        c.endpoints.add(h.key);
      },
      // the set comes back; the host endpoint goes
      (s, c) => {
        s.ipSets.set("n:pg", {
          id: "n:pg",
          type: "ip-port",
          description: "",
          members: new Set(["198.19.0.2,17,53"]),
        });
        c.ipSets.add("n:pg");
        s.endpoints.delete("hep/node1-eth0");
        c.endpoints.add("hep/node1-eth0");
      },
    ];
    for (const [i, step] of steps.entries()) {
      const c = emptyChanges();
      step(s, c);
      const r = await dp.apply(asState(s), c);
      assert.equal(r.full, false, `step ${i} is incremental`);
      assert.deepEqual(normal(await nft.list()), await freshListing(s), `step ${i}`);
    }
  });

  it("a chain, set element or map element removed by hand comes back on a full apply", async () => {
    const nft = new FakeNft();
    const dp = dataplane(nft);
    const s = testState();
    await dp.apply(asState(s), emptyChanges());
    const want = normal(await nft.list());
    const tw = endpointChain("tw", W1.iface);
    await nft.apply({
      ops: [
        { op: "delete-map-elements", map: MAP.toWlDispatch, keys: [W1.iface] },
        { op: "flush-chain", chain: tw },
        { op: "delete-chain", chain: tw },
        { op: "delete-elements", set: ipSetName(4, "s:frontend"), elements: [W1.v4] },
        { op: "flush-chain", chain: "filter-cali-failsafe-in" },
        { op: "add-chain", chain: "filter-cali-stale" },
      ],
    });
    assert.notDeepEqual(normal(await nft.list()), want);
    const r0 = await dp.apply(asState(s), emptyChanges());
    assert.equal(r0.nftOps, 0, "the fast path does not read back");
    dp.invalidate();
    const r = await dp.apply(asState(s), emptyChanges());
    assert.equal(r.full, true);
    assert.ok(r.nftOps < 20, `repairs only what differs (${r.nftOps} ops)`);
    assert.deepEqual(normal(await nft.list()), want);
  });

  it("a failed apply throws, the next is full, repeated failures replace the table", async () => {
    const inner = new FakeNft();
    let failNext = 0;
    const txs: Transaction[] = [];
    const nft: Nft = {
      apply: (tx) => {
        txs.push(tx);
        if (failNext > 0) {
          failNext--;
          return Promise.reject(new Error("injected"));
        }
        return inner.apply(tx);
      },
      list: () => inner.list(),
    };
    const dp = dataplane(nft);
    const s = testState();
    await dp.apply(asState(s), emptyChanges());
    s.endpoints.delete(W1.key);
    const c = emptyChanges();
    c.endpoints.add(W1.key);
    failNext = 2;
    await assert.rejects(dp.apply(asState(s), c), /injected/);
    await assert.rejects(dp.apply(asState(s), emptyChanges()), /injected/);
    const r = await dp.apply(asState(s), emptyChanges());
    assert.equal(r.full, true);
    assert.deepEqual(
      txs
        .at(-1)!
        .ops.slice(0, 3)
        .map((o) => o.op),
      ["ensure-table", "delete-table", "ensure-table"],
    );
    assert.deepEqual(normal(await inner.list()), await freshListing(s));
  });

  it("a config change re-renders on the next apply (Reject, no IPv6)", async () => {
    const nft = new FakeNft();
    const dp = dataplane(nft);
    const s = testState();
    await dp.apply(asState(s), emptyChanges());
    const cfg = testConfig({ denyAction: "Reject", ipv6: false, defaultEndpointToHostAction: "Accept" });
    dp.setConfig(cfg);
    const r = await dp.apply(asState(s), emptyChanges());
    assert.equal(r.full, true);
    assert.deepEqual(normal(await nft.list()), await freshListing(s, cfg));
    assert.equal((await nft.list())?.sets.has(ipSetName(6, "s:frontend")), false);
  });
});
